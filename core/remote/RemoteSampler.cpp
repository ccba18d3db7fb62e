#include "remote/RemoteSampler.h"

#include "ssh/SshHost.h"

#include <QDateTime>

namespace corral {

RemoteSampler::RemoteSampler(QObject *parent)
    : QObject(parent) {
    connect(&m_timer, &QTimer::timeout, this, &RemoteSampler::tick);
}

void RemoteSampler::addHost(SshHost *host) {
    const QString name = host->name();
    m_hosts[name].host = host;
    // A host destroyed with a command out never answers; do not let that stall every tick.
    connect(host, &QObject::destroyed, this, [this, name] {
        auto it = m_hosts.find(name);
        if (it == m_hosts.end() || !it->inFlight) return;
        it->inFlight = false;
        finishOne();
    });
}

void RemoteSampler::removeHost(const QString &hostName) {
    m_hosts.remove(hostName);
}

void RemoteSampler::watch(const QString &hostName, const QString &key, qint64 pid) {
    m_hosts[hostName].sampler.watch(key, pid);
}

void RemoteSampler::unwatch(const QString &hostName, const QString &key) {
    if (auto it = m_hosts.find(hostName); it != m_hosts.end()) it->sampler.unwatch(key);
}

void RemoteSampler::start(int intervalMs) {
    m_timer.start(intervalMs);
}

void RemoteSampler::stop() {
    m_timer.stop();
}

void RemoteSampler::tick() {
    if (m_pending > 0) return; // the previous tick is still out
    m_tickClock.start();
    for (auto it = m_hosts.begin(); it != m_hosts.end(); ++it) {
        HostState &state = it.value();
        if (!state.host || state.inFlight) continue;
        state.inFlight = true;
        ++m_pending;
        const QString name = it.key();
        state.host->exec(
            state.sampler.command(), m_timeoutMs, this, [this, name](Result<ExecResult> result) {
                auto found = m_hosts.find(name);
                if (found == m_hosts.end()) return finishOne();
                found->inFlight = false;
                if (!result || result->exitStatus != 0) {
                    Q_EMIT sampleFailed(name, result ? QString::fromUtf8(result->stdErr).trimmed()
                                                     : result.error());
                    return finishOne();
                }
                MetricsSnapshot snapshot;
                snapshot.timestampMs = QDateTime::currentMSecsSinceEpoch();
                if (auto parsed =
                        found->sampler.ingest(result->stdOut, snapshot.processes, snapshot.machine);
                    !parsed)
                    Q_EMIT sampleFailed(name, parsed.error());
                else
                    Q_EMIT sampled(name, snapshot);
                finishOne();
            });
    }
    if (m_pending == 0) Q_EMIT tickFinished(m_tickClock.elapsed());
}

void RemoteSampler::finishOne() {
    if (m_pending > 0 && --m_pending == 0) Q_EMIT tickFinished(m_tickClock.elapsed());
}

} // namespace corral
