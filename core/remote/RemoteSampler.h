#pragma once

#include "metrics/MetricsSnapshot.h"
#include "remote/RemoteProcSampler.h"

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QTimer>

namespace corral {

class SshHost;

/// Samples the workers of several remote hosts: per tick, one batched command per host,
/// all hosts at once (each SshHost has its own thread), so a tick over N hosts takes about
/// as long as the slowest host, not N times one host.
class RemoteSampler : public QObject {
    Q_OBJECT

public:
    explicit RemoteSampler(QObject *parent = nullptr);

    /// Samples `host` (not owned; must outlive this sampler or be removed first).
    void addHost(SshHost *host);
    void removeHost(const QString &hostName);
    void watch(const QString &hostName, const QString &key, qint64 pid);
    void unwatch(const QString &hostName, const QString &key);

    /// One tick now. A host whose previous command is still running is skipped.
    void tick();
    void start(int intervalMs = 1000);
    void stop();

    int commandTimeoutMs() const { return m_timeoutMs; }
    void setCommandTimeoutMs(int ms) { m_timeoutMs = ms; }

Q_SIGNALS:
    /// One host's values for this tick, in the same structures as the local sampler's.
    void sampled(const QString &hostName, const corral::MetricsSnapshot &snapshot);
    void sampleFailed(const QString &hostName, const QString &error);
    /// Every host of the tick has answered (or failed); `elapsedMs` is the tick's wall time.
    void tickFinished(qint64 elapsedMs);

private:
    struct HostState {
        QPointer<SshHost> host;
        RemoteProcSampler sampler;
        bool inFlight = false;
    };
    void finishOne();

    QHash<QString, HostState> m_hosts;
    QTimer m_timer;
    QElapsedTimer m_tickClock;
    int m_pending = 0;
    int m_timeoutMs = 10000;
};

} // namespace corral
