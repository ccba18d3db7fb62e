#include "cluster/RemoteSiteMonitor.h"

#include "remote/RemoteProcSampler.h"
#include "remote/RemoteWorkers.h"
#include "ssh/BatchedCommand.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshHost.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/HaproxyRuntime.h"
#include "upstreams/NginxLogFollower.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QDateTime>
#include <QHostAddress>

#include <algorithm>
#include <optional>
#include <tuple>

namespace corral {

namespace {

// Where a backend's worker runs: the balancer's own host for loopback addresses, else the
// inventory host with that address (workerHostFor(); a host's own loopback address, as the
// tests use, counts as that host).
bool onBalancerHost(const Backend &backend, const Site &site, const QList<Host> &hosts) {
    const auto host = workerHostFor(backend, site.balancer->host, hosts);
    return host ? host.value() == site.balancer->host : isLoopbackAddress(backend.address);
}

// The balancer host probes each backend where the balancer reaches it.
QString backendHealthUrl(const Site &site, const Backend &backend) {
    return healthUrl(Endpoint{backend.address, backend.port}, site.healthPath);
}

/// Pid, CPU and memory of a site's workers on one host: the status of their pid files, then
/// their process trees, watched from the tick after they were first seen running (CPU needs
/// two readings anyway). Lives on that host's SSH thread while a tick runs.
struct WorkerSampling {
    RemoteProcSampler sampler;
    QHash<quint16, qint64> watched; ///< port -> pid given to the sampler

    struct Reading {
        QHash<quint16, RemoteWorkerStatus> workers;
        QHash<quint16, ProcessSample> samples;
        MachineSample machine;
    };

    void addTo(BatchedCommand &batch, const QString &site, const QList<quint16> &ports) const {
        batch.add(QStringLiteral("status"), RemoteWorkers::statusCommand(site, ports));
        if (!watched.isEmpty()) batch.add(QStringLiteral("sample"), sampler.command());
    }

    Reading read(const QHash<QString, BatchedCommand::Part> &parts) {
        Reading reading;
        for (const RemoteWorkerStatus &status :
             RemoteWorkers::parseStatus(parts.value(QStringLiteral("status")).output))
            reading.workers.insert(status.port, status);
        if (const auto sampled = parts.find(QStringLiteral("sample"));
            sampled != parts.end() && sampled->status == 0) {
            QList<ProcessSample> processes;
            if (sampler.ingest(sampled->output, processes, reading.machine))
                for (const ProcessSample &sample : std::as_const(processes))
                    reading.samples.insert(quint16(sample.key.toUInt()), sample);
        }
        for (auto it = watched.begin(); it != watched.end();) {
            const RemoteWorkerStatus status = reading.workers.value(it.key());
            if (status.running && status.pid == it.value()) {
                ++it;
                continue;
            }
            sampler.unwatch(QString::number(it.key()));
            it = watched.erase(it);
        }
        for (const RemoteWorkerStatus &status : std::as_const(reading.workers)) {
            if (!status.running || watched.contains(status.port)) continue;
            sampler.watch(QString::number(status.port), status.pid);
            watched.insert(status.port, status.pid);
        }
        return reading;
    }
};

} // namespace

struct RemoteSiteMonitor::Probe {
    QString balancerKey; ///< what the followers were made for; a change starts afresh
    std::optional<NginxLogFollower> logFollower; // nginx or Apache access log
    std::optional<HaproxyStatFollower> haproxy;
    WorkerSampling workers; ///< loopback backends on the balancer host
};

struct RemoteSiteMonitor::TickResult {
    quint64 generation = 0;
    RequestCounts counts;
    QString countsError;
    QHash<QString, int> health; ///< backend key -> HTTP status, 0 when nothing answered
    WorkerSampling::Reading workers;
};

struct RemoteSiteMonitor::WorkerHostProbe {
    QString hostName; ///< empty: an address no inventory host has (health and counts only)
    QPointer<SshHost> host;
    std::shared_ptr<WorkerSampling> sampling = std::make_shared<WorkerSampling>();
    bool inFlight = false;
    WorkerSampling::Reading last; ///< the latest answer; empty after a failure
    QString error;                ///< why the host could not be read; empty while it can
};

RemoteSiteMonitor::RemoteSiteMonitor(const Site &site, SshHost *balancerHost, QObject *parent)
    : QObject(parent)
    , m_site(site)
    , m_host(balancerHost)
    , m_probe(std::make_shared<Probe>()) {
    m_snapshot.site = site.name;
    m_snapshot.policy = site.policy;
    connect(&m_timer, &QTimer::timeout, this, &RemoteSiteMonitor::tick);
}

RemoteSiteMonitor::~RemoteSiteMonitor() = default;

Result<void> RemoteSiteMonitor::supports(const Site &site) {
    if (!site.balancer)
        return fail(QStringLiteral("site %1 has no production balancer").arg(site.name));
    if (!renderFormatFromName(site.balancer->format))
        return fail(QStringLiteral("site %1: request counts are read from nginx and Apache access "
                                   "logs and HAProxy stats; \"%2\" is none of them")
                        .arg(site.name, site.balancer->format));
    return {};
}

void RemoteSiteMonitor::setSite(const Site &site) {
    if (site.balancer != m_site.balancer) m_probe = std::make_shared<Probe>();
    // Another balancer host: looked up by name on the next tick (when there is a resolver).
    if (m_resolve && site.balancer && m_site.balancer &&
        site.balancer->host != m_site.balancer->host)
        m_host = nullptr;
    m_site = site;
    m_snapshot.site = site.name;
    m_snapshot.policy = site.policy;
    ++m_generation;
}

void RemoteSiteMonitor::start(int intervalMs) {
    m_timer.start(intervalMs);
    tick();
}

void RemoteSiteMonitor::stop() {
    m_timer.stop();
}

QString RemoteSiteMonitor::healthProbeCommand(const QStringList &urls, int timeoutSeconds) {
    // One curl for every URL, in parallel (-Z), so a hung backend costs one timeout per tick,
    // not one per backend.
    QStringList argv{QStringLiteral("curl"),       QStringLiteral("-sZ"),
                     QStringLiteral("--max-time"), QString::number(timeoutSeconds),
                     QStringLiteral("-w"),         QStringLiteral("%{http_code} %{url}\\n")};
    for (const QString &url : urls)
        argv << QStringLiteral("-o") << QStringLiteral("/dev/null") << url;
    // curl exits non-zero when any transfer failed; the lines still say which.
    return shellCommand(argv) + QStringLiteral(" || true");
}

void RemoteSiteMonitor::setWorkerHosts(const QList<Host> &hosts, HostResolver resolve) {
    if (hosts != m_hosts) m_workerHosts.clear();
    m_hosts = hosts;
    m_resolve = std::move(resolve);
}

SshHost *RemoteSiteMonitor::resolveHost(const QString &name) const {
    if (!m_resolve) return nullptr;
    for (const Host &host : m_hosts)
        if (host.name == name) return m_resolve(host);
    return nullptr;
}

SshHost *RemoteSiteMonitor::balancerHost() {
    if (m_host) return m_host;
    // A call out on a host that was deleted is never answered: do not wait for it.
    m_inFlight = false;
    if (m_site.balancer) m_host = resolveHost(m_site.balancer->host);
    return m_host;
}

QString RemoteSiteMonitor::hostNameOf(const Backend &backend) const {
    if (!m_site.balancer) return {};
    const auto name = workerHostFor(backend, m_site.balancer->host, m_hosts);
    return name ? name.value() : QString();
}

void RemoteSiteMonitor::tickWorkerHosts() {
    if (!m_resolve || !m_site.balancer) return;
    QHash<QString, QList<quint16>> portsByAddress;
    for (const Backend &backend : std::as_const(m_site.backends))
        if (!onBalancerHost(backend, m_site, m_hosts))
            portsByAddress[backend.address].append(backend.port);
    for (auto it = portsByAddress.cbegin(); it != portsByAddress.cend(); ++it) {
        std::shared_ptr<WorkerHostProbe> &probe = m_workerHosts[it.key()];
        if (!probe) {
            probe = std::make_shared<WorkerHostProbe>();
            // An address no inventory host has: health and counts only, as before.
            const QString name = hostNameOf(Backend{it.key(), it.value().first()});
            if (name != m_site.balancer->host) probe->hostName = name;
        }
        if (probe->hostName.isEmpty()) continue;
        if (!probe->host) {
            // Never resolved, or deleted (with any call it had out): look it up again.
            probe->inFlight = false;
            probe->host = resolveHost(probe->hostName);
            if (!probe->host) {
                probe->last = {};
                probe->error = QStringLiteral("no SSH host %1 to read its workers through")
                                   .arg(probe->hostName);
                continue;
            }
        }
        if (probe->inFlight) continue;
        probe->inFlight = true;
        const QString siteName = m_site.name;
        const QList<quint16> ports = it.value();
        const std::shared_ptr<WorkerSampling> sampling = probe->sampling;
        const quint64 generation = m_generation;
        probe->host->call<WorkerSampling::Reading>(
            [siteName, ports, sampling](SshSession &session) -> Result<WorkerSampling::Reading> {
                BatchedCommand batch;
                sampling->addTo(batch, siteName, ports);
                auto ran = session.exec(batch.command(), 15000);
                if (!ran) return fail(ran.error());
                auto parts = batch.split(ran->stdOut);
                if (!parts) return fail(parts.error());
                return sampling->read(parts.value());
            },
            this,
            [this, probe, generation](Result<WorkerSampling::Reading> reading) {
                probe->inFlight = false;
                if (generation != m_generation) return;
                probe->last = reading ? reading.value() : WorkerSampling::Reading{};
                probe->error = reading ? QString() : reading.error();
                if (!reading)
                    Q_EMIT pollFailed(
                        QStringLiteral("workers on %1: %2").arg(probe->hostName, reading.error()));
            });
    }
}

void RemoteSiteMonitor::tick() {
    if (auto supported = supports(m_site); !supported) {
        Q_EMIT pollFailed(supported.error());
        return;
    }
    tickWorkerHosts();
    SshHost *host = balancerHost();
    if (!host) {
        const QString error =
            QStringLiteral("no SSH host %1 to reach the balancer through (not in the inventory?)")
                .arg(m_site.balancer->host);
        deliver(nullptr, error);
        Q_EMIT pollFailed(error);
        return;
    }
    if (m_inFlight) return;
    m_inFlight = true;
    m_tickClock.start();
    const Site site = m_site;
    const std::shared_ptr<Probe> probe = m_probe;
    const quint64 generation = m_generation;
    QList<quint16> ports; // of the workers on the balancer host
    for (const Backend &backend : site.backends)
        if (onBalancerHost(backend, site, m_hosts)) ports.append(backend.port);
    host->call<TickResult>(
        [site, probe, generation, ports](SshSession &session) -> Result<TickResult> {
            TickResult result;
            result.generation = generation;
            auto target = RemoteBalancer::fromSite(*site.balancer);
            if (!target) return fail(target.error());
            const RenderOptions &options = target->renderOptions;
            // nginx and Apache: the access log in Corral's format; HAProxy: show stat.
            const bool accessLog = target->format != RenderFormat::Haproxy;

            // Requests per backend since the previous tick.
            if (accessLog && !probe->logFollower) {
                probe->logFollower.emplace(
                    accessLogPath(logDirectoryFor(target->format, options), site.name));
            } else if (!accessLog && !probe->haproxy) {
                probe->haproxy.emplace(haproxyStatsSocket(options.runtimeDirectory, site.name),
                                       balancerBlockName(site.name));
            }
            // One command per tick, whatever the site needs: SSH round trips (and the host's
            // per-session cost) dominate a tick, not the commands themselves.
            QStringList urls;
            for (const Backend &backend : site.backends)
                urls.append(backendHealthUrl(site, backend));
            BatchedCommand batch;
            batch.add(QStringLiteral("counts"),
                      accessLog ? probe->logFollower->command() : probe->haproxy->command());
            if (!urls.isEmpty()) batch.add(QStringLiteral("health"), healthProbeCommand(urls));
            if (!ports.isEmpty()) probe->workers.addTo(batch, site.name, ports);
            auto ran = session.exec(batch.command(), 15000);
            if (!ran) return fail(ran.error());
            auto parts = batch.split(ran->stdOut);
            if (!parts)
                return fail(parts.error() + QStringLiteral(": ") +
                            QString::fromUtf8(ran->stdErr).trimmed());
            const auto part = [&](const QString &name) { return parts->value(name); };
            const QString stderrText = QString::fromUtf8(ran->stdErr).trimmed();

            // Requests per backend since the previous tick.
            const BatchedCommand::Part countsPart = part(QStringLiteral("counts"));
            if (countsPart.status != 0) {
                result.countsError =
                    QStringLiteral("reading the request counts failed (exit status %1)%2")
                        .arg(countsPart.status)
                        .arg(stderrText.isEmpty() ? QString() : QStringLiteral(": ") + stderrText);
            } else {
                auto counts = accessLog ? probe->logFollower->consume(countsPart.output)
                                        : probe->haproxy->consume(countsPart.output);
                if (counts)
                    result.counts = counts.value();
                else
                    result.countsError = counts.error();
            }

            // Health of every backend, from where the balancer stands.
            for (const QByteArray &line : part(QStringLiteral("health")).output.split('\n')) {
                if (line.indexOf(' ') != 3) continue;
                const qsizetype at = urls.indexOf(QString::fromUtf8(line.mid(4)));
                if (at >= 0) result.health.insert(site.backends.at(at).key(), line.left(3).toInt());
            }

            // Workers Corral runs on this host: pid, then CPU and memory of their trees.
            if (!ports.isEmpty()) result.workers = probe->workers.read(parts.value());
            return result;
        },
        this,
        [this, generation](Result<TickResult> result) {
            m_inFlight = false;
            m_lastTickMs = m_tickClock.elapsed();
            if (generation != m_generation) return; // made for an older site
            if (!result) {
                deliver(nullptr, result.error());
                Q_EMIT pollFailed(result.error());
                return;
            }
            deliver(&result.value());
        });
}

void RemoteSiteMonitor::deliver(const TickResult *result, const QString &error) {
    // Requests counted since the last tick that read them: an outage's requests are spread
    // over the outage, not shown as a spike.
    double seconds = 1.0;
    if (result) {
        seconds = m_sinceLastTick.isValid() ? qMax(0.001, m_sinceLastTick.restart() / 1000.0) : 1.0;
        if (!m_sinceLastTick.isValid()) m_sinceLastTick.start();
    }

    QHash<QString, WorkerRow> previous;
    for (const WorkerRow &row : std::as_const(m_snapshot.workers))
        previous.insert(Endpoint{row.host, row.port}.toString(), row);

    ClusterSnapshot snapshot;
    snapshot.timestampMs = QDateTime::currentMSecsSinceEpoch();
    snapshot.site = m_site.name;
    snapshot.policy = m_site.policy;
    snapshot.listen = m_site.balancer->host + QLatin1Char(':') +
                      QString::number(m_site.balancer->httpPort ? m_site.balancer->httpPort : 80);
    snapshot.requestsKnown = result != nullptr;
    if (result)
        snapshot.machine = result->workers.machine;
    else
        snapshot.unreachableHosts.append(m_site.balancer->host);

    // Nothing live in the row: its last state stays for reference, the rest is cleared.
    const auto markUnknown = [](WorkerRow &row, const QString &why) {
        row.reachable = false;
        row.cause = why;
        row.pid = 0;
        row.uptimeMs = 0;
        row.cpuValid = false;
        row.cpuPercent = 0;
        row.rssBytes = 0;
        row.requestsPerSecond = 0;
        row.errorsPerSecond = 0;
        row.inFlight = 0;
    };
    for (const Backend &backend : m_site.backends) {
        WorkerRow row = previous.value(backend.key());
        row.site = m_site.name;
        row.host = backend.address;
        row.port = backend.port;
        row.hostName = hostNameOf(backend);
        row.inProxy = true;
        row.backendState = backend.down     ? QStringLiteral("down")
                           : backend.backup ? QStringLiteral("backup")
                                            : QStringLiteral("up");
        if (!result) {
            markUnknown(
                row, QStringLiteral("%1 cannot be reached: %2").arg(m_site.balancer->host, error));
            snapshot.workers.append(row);
            continue;
        }
        // Workers on the balancer host are read with its tick, others on their own host.
        const bool local = onBalancerHost(backend, m_site, m_hosts);
        const auto remote = local ? nullptr : m_workerHosts.value(backend.address);
        if (remote && !remote->error.isEmpty()) {
            markUnknown(
                row,
                QStringLiteral("%1 cannot be reached: %2").arg(remote->hostName, remote->error));
            if (!snapshot.unreachableHosts.contains(remote->hostName))
                snapshot.unreachableHosts.append(remote->hostName);
            snapshot.workers.append(row);
            continue;
        }
        row.reachable = true;
        row.lastSeenMs = snapshot.timestampMs;
        const int code = result->health.value(backend.key(), -1);
        if (code < 0) {
            row.state = WorkerState::Starting;
            row.cause = QStringLiteral("not probed yet");
        } else if (code == 0) {
            row.state = WorkerState::Stopped;
            row.cause = QStringLiteral("nothing answers on %1 (from %2)")
                            .arg(backend.key(), m_site.balancer->host);
        } else if (code >= 200 && code < 400) {
            row.state = WorkerState::Running;
            row.cause = QStringLiteral("GET %1 answered %2 (from %3)")
                            .arg(backendHealthUrl(m_site, backend))
                            .arg(code)
                            .arg(m_site.balancer->host);
        } else {
            row.state = WorkerState::Unhealthy;
            row.cause = QStringLiteral("GET %1 answered %2")
                            .arg(backendHealthUrl(m_site, backend))
                            .arg(code);
        }
        const WorkerSampling::Reading *reading = local    ? &result->workers
                                                 : remote ? &remote->last
                                                          : nullptr;
        const RemoteWorkerStatus worker =
            reading ? reading->workers.value(backend.port) : RemoteWorkerStatus{};
        const bool supervised = reading && worker.port == backend.port;
        row.pid = supervised && worker.running ? worker.pid : 0;
        if (const auto sample = supervised ? reading->samples.find(backend.port)
                                           : QHash<quint16, ProcessSample>::const_iterator{};
            supervised && sample != reading->samples.cend() && sample->alive) {
            row.cpuValid = sample->cpuValid;
            row.cpuPercent = sample->cpuPercent;
            row.rssBytes = sample->rssBytes;
            row.uptimeMs = sample->ageMs;
        } else {
            row.cpuValid = false;
            row.cpuPercent = 0;
            row.rssBytes = 0;
            row.uptimeMs = 0;
        }
        snapshot.workers.append(row);
    }
    if (result)
        applyRequestCounts(snapshot.workers, result->counts, seconds,
                           [](const WorkerRow &row) { return row.host; });
    std::sort(snapshot.workers.begin(), snapshot.workers.end(),
              [](const WorkerRow &a, const WorkerRow &b) {
                  return std::tie(a.host, a.port) < std::tie(b.host, b.port);
              });
    for (const WorkerRow &row : std::as_const(snapshot.workers)) {
        snapshot.requestsPerSecond += row.requestsPerSecond;
        if (row.state == WorkerState::Running && row.reachable) ++snapshot.running;
    }
    m_snapshot = snapshot;
    if (result && !result->countsError.isEmpty()) Q_EMIT pollFailed(result->countsError);
    Q_EMIT snapshotReady(m_snapshot);
}

void applyRequestCounts(QList<WorkerRow> &rows, const RequestCounts &delta, double seconds,
                        const std::function<QString(const WorkerRow &)> &addressOf) {
    for (WorkerRow &row : rows) {
        const QString key = addressOf(row) + QLatin1Char(':') + QString::number(row.port);
        const quint64 added = delta.value(key);
        row.requestsTotal += added;
        row.requestsPerSecond = seconds > 0 ? double(added) / seconds : 0;
    }
}

} // namespace corral
