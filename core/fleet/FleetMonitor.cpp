#include "fleet/FleetMonitor.h"

#include "cluster/RemoteSiteMonitor.h"
#include "metrics/ProcessSampler.h"
#include "remote/RemoteProcSampler.h"
#include "remote/RemoteWorkers.h"
#include "ssh/BatchedCommand.h"
#include "ssh/SshHost.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/HaproxyRuntime.h"
#include "upstreams/NginxLogFollower.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QDateTime>
#include <QFile>
#include <QTimer>

#include <optional>
#include <string_view>

namespace corral {

namespace {

// BatchedCommand part names are letters only: PREFIX + "a", "b", ... "z", "ba", ...
QString partName(const QString &prefix, qsizetype index) {
    QString suffix;
    do {
        suffix.prepend(QChar(char16_t(u'a' + index % 26)));
        index /= 26;
    } while (index > 0);
    return prefix + suffix;
}

// The scheduler's done() exactly once: from the answer, or when the SshHost that was to give
// it is deleted first (its undelivered callbacks are dropped then).
struct PendingPoll {
    PollScheduler::Done done;
    QMetaObject::Connection watch;
    void finish(bool ok, const QString &error) {
        if (!done) return;
        QObject::disconnect(watch);
        const PollScheduler::Done call = std::move(done);
        done = nullptr;
        call(ok, error);
    }
};

std::string_view view(const QByteArray &bytes) {
    return std::string_view(bytes.constData(), std::size_t(bytes.size()));
}

QByteArray readProcFile(const QString &path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

} // namespace

struct FleetMonitor::HostProbe {
    /// The workers of one site on this host, read from their pid files.
    struct WorkerPlan {
        QString site;
        QList<quint16> ports;
    };
    /// The counters of one site whose balancer runs on this host.
    struct CounterPlan {
        QString site;
        QString key;           ///< balancer host, kind and path: another key starts a new follower
        bool accessLog = true; ///< nginx or Apache; false: HAProxy's stats socket
        QString path;          ///< the access log, or the stats socket
        QString proxy;         ///< HAProxy's backend (balancerBlockName())
    };
    struct SiteCounts {
        QString site;
        QString key;
        QString error; ///< the counters could not be read
        RequestCounts requests;
        RequestCounts errors;
        double seconds = 0; ///< since the follower's previous reading (host clock); 0: first
    };
    struct Answer {
        MachineSample machine;
        QHash<QString, QHash<quint16, RemoteWorkerStatus>> workers; ///< site -> port -> status
        QList<SiteCounts> counts;
    };
    /// What only the host's SSH thread touches, one poll at a time (the scheduler never
    /// polls a host twice at once): the sampler's and followers' positions.
    struct Remote {
        struct Follower {
            QString key;
            std::optional<NginxLogFollower> log;
            std::optional<HaproxyStatFollower> haproxy;
            double lastUptime = -1; ///< the host's /proc/uptime at its previous reading
        };
        RemoteProcSampler sampler;          // no watches: the machine part only
        QHash<QString, Follower> followers; ///< by site
    };

    // The plan, on the UI thread; each poll takes a copy.
    Host host;
    QList<WorkerPlan> workers;
    QList<CounterPlan> counters;
    std::shared_ptr<Remote> remote = std::make_shared<Remote>();

    // The latest state, on the UI thread.
    bool polled = false;
    bool reachable = false;
    bool answered = false; ///< `last` holds an answer
    QString error;
    qint64 lastSeenMs = 0;
    qint64 pollMs = 0;
    Answer last;

    static Result<Answer> run(SshSession &session, const QList<WorkerPlan> &workers,
                              const QList<CounterPlan> &counters, Remote &remote, int timeoutMs);
};

struct FleetMonitor::SiteCounters {
    QString key; ///< CounterPlan::key these counts were read with
    bool known = false;
    QString error;
    QHash<QString, double> requestsPerSecond; ///< by backend key
    QHash<QString, double> errorsPerSecond;
    QHash<QString, quint64> requestsTotal;
};

struct FleetMonitor::LocalVitals {
    std::optional<CpuTimes> lastCpu;

    void sample(FleetHostRow &row) {
        const QByteArray stat = readProcFile(QStringLiteral("/proc/stat"));
        row.cores = countCpus(view(stat));
        if (const auto cpu = parseCpuTimes(view(stat))) {
            if (lastCpu && cpu->total > lastCpu->total)
                row.cpuBusyPercent = std::clamp(double(qint64(cpu->busy - lastCpu->busy)) * 100.0 /
                                                    double(cpu->total - lastCpu->total),
                                                0.0, 100.0);
            lastCpu = cpu;
        }
        if (const auto memory = parseMeminfo(view(readProcFile(QStringLiteral("/proc/meminfo"))))) {
            row.memoryTotalBytes = memory->totalBytes;
            row.memoryUsedBytes = memory->totalBytes - memory->availableBytes;
        }
        if (const auto load = parseLoadavg(view(readProcFile(QStringLiteral("/proc/loadavg")))))
            row.load1 = load->load1;
    }
};

Result<FleetMonitor::HostProbe::Answer>
FleetMonitor::HostProbe::run(SshSession &session, const QList<WorkerPlan> &workers,
                             const QList<CounterPlan> &counters, Remote &remote, int timeoutMs) {
    // Followers for this plan: a site gone or changed loses its position.
    for (auto it = remote.followers.begin(); it != remote.followers.end();) {
        const bool planned = std::any_of(counters.cbegin(), counters.cend(),
                                         [&](const CounterPlan &c) { return c.site == it.key(); });
        it = planned ? std::next(it) : remote.followers.erase(it);
    }
    for (const CounterPlan &plan : counters) {
        Remote::Follower &follower = remote.followers[plan.site];
        if (follower.key == plan.key) continue;
        follower = Remote::Follower{};
        follower.key = plan.key;
        if (plan.accessLog)
            follower.log.emplace(plan.path);
        else
            follower.haproxy.emplace(plan.path, plan.proxy);
    }

    // One exec per host and round, whatever it runs: SSH round trips dominate a poll.
    BatchedCommand batch;
    batch.add(QStringLiteral("machine"), remote.sampler.command());
    for (qsizetype i = 0; i < workers.size(); ++i)
        batch.add(partName(QStringLiteral("status"), i),
                  RemoteWorkers::statusCommand(workers.at(i).site, workers.at(i).ports));
    for (qsizetype i = 0; i < counters.size(); ++i) {
        const Remote::Follower &follower = remote.followers[counters.at(i).site];
        batch.add(partName(QStringLiteral("counts"), i),
                  follower.log ? follower.log->command() : follower.haproxy->command());
    }
    auto ran = session.exec(batch.command(), timeoutMs);
    if (!ran) return fail(ran.error());
    const QString stderrText = QString::fromUtf8(ran->stdErr).trimmed();
    auto parts = batch.split(ran->stdOut);
    if (!parts)
        return fail(parts.error() +
                    (stderrText.isEmpty() ? QString() : QStringLiteral(": ") + stderrText));

    Answer answer;
    const BatchedCommand::Part machine = parts->value(QStringLiteral("machine"));
    if (machine.status != 0)
        return fail(QStringLiteral("reading /proc failed (exit status %1)%2")
                        .arg(machine.status)
                        .arg(stderrText.isEmpty() ? QString() : QStringLiteral(": ") + stderrText));
    QList<ProcessSample> noProcesses;
    if (auto ingested = remote.sampler.ingest(machine.output, noProcesses, answer.machine);
        !ingested)
        return fail(ingested.error());
    const double uptime = remote.sampler.uptimeSeconds();

    for (qsizetype i = 0; i < workers.size(); ++i) {
        QHash<quint16, RemoteWorkerStatus> &statuses = answer.workers[workers.at(i).site];
        for (const RemoteWorkerStatus &status :
             RemoteWorkers::parseStatus(parts->value(partName(QStringLiteral("status"), i)).output))
            statuses.insert(status.port, status);
    }

    for (qsizetype i = 0; i < counters.size(); ++i) {
        const CounterPlan &plan = counters.at(i);
        Remote::Follower &follower = remote.followers[plan.site];
        SiteCounts counts;
        counts.site = plan.site;
        counts.key = plan.key;
        const BatchedCommand::Part part = parts->value(partName(QStringLiteral("counts"), i));
        if (part.status != 0) {
            counts.error =
                QStringLiteral("reading the request counts failed (exit status %1)%2")
                    .arg(part.status)
                    .arg(stderrText.isEmpty() ? QString() : QStringLiteral(": ") + stderrText);
        } else if (auto consumed = follower.log ? follower.log->consume(part.output)
                                                : follower.haproxy->consume(part.output);
                   !consumed) {
            counts.error = consumed.error();
        } else {
            counts.requests = consumed.value();
            counts.errors =
                follower.log ? follower.log->lastErrors() : follower.haproxy->lastErrors();
            counts.seconds = follower.lastUptime >= 0 ? uptime - follower.lastUptime : 0;
            follower.lastUptime = uptime;
        }
        answer.counts.append(counts);
    }
    return answer;
}

FleetMonitor::FleetMonitor(QObject *parent)
    : QObject(parent)
    , m_local(std::make_unique<LocalVitals>()) {
    m_scheduler = new PollScheduler(
        [this](const QString &host, PollScheduler::Done done) { poll(host, std::move(done)); },
        this);
    m_emitTimer = new QTimer(this);
    m_emitTimer->setInterval(m_scheduler->options().intervalMs);
    // One timer paces both the rounds and updated(): a round that finishes is shown at once;
    // one still open when the next is due (a slow host holds it) is shown as it stands, so
    // live hosts update every interval whatever the slow ones do.
    connect(m_emitTimer, &QTimer::timeout, this, [this] {
        if (m_roundOpen) emitSnapshot();
        tick();
    });
    connect(m_scheduler, &PollScheduler::polled, this,
            [this](const QString &host, bool ok, const QString &error, qint64 elapsedMs) {
                const std::shared_ptr<HostProbe> probe = m_probes.value(host);
                if (!probe) return;
                probe->polled = true;
                probe->reachable = ok;
                probe->error = ok ? QString() : error;
                if (ok) probe->pollMs = elapsedMs;
            });
    connect(m_scheduler, &PollScheduler::roundFinished, this, [this](qint64 elapsedMs) {
        m_lastRoundMs = elapsedMs;
        m_roundOpen = false;
        emitSnapshot();
        Q_EMIT roundFinished(elapsedMs);
    });
    rebuildSnapshot();
}

FleetMonitor::~FleetMonitor() = default;

void FleetMonitor::setOptions(const PollOptions &options) {
    m_scheduler->setOptions(options);
    m_emitTimer->setInterval(std::max(1, options.intervalMs));
}

const PollOptions &FleetMonitor::options() const {
    return m_scheduler->options();
}

void FleetMonitor::setInventory(const QList<Host> &hosts, const QList<Site> &sites,
                                HostResolver resolve) {
    m_resolve = std::move(resolve);
    if (hosts == m_hosts && sites == m_sites && !m_probes.isEmpty()) return;
    m_hosts = hosts;
    m_sites = sites;

    QStringList polled;
    QHash<QString, std::shared_ptr<HostProbe>> probes;
    for (const Host &host : hosts) {
        if (host.kind != Host::Kind::Ssh) continue;
        std::shared_ptr<HostProbe> probe = m_probes.value(host.name);
        // Another address or login: another machine, sampled afresh.
        if (!probe || probe->host != host) probe = std::make_shared<HostProbe>();
        probe->host = host;
        probe->workers.clear();
        probe->counters.clear();
        probes.insert(host.name, probe);
        polled.append(host.name);
    }

    QHash<QString, std::shared_ptr<SiteCounters>> counters;
    m_workerHosts.clear();
    for (const Site &site : sites) {
        if (!site.balancer) continue;
        // Workers: where workerHostFor() puts them (loopback ones on the balancer's host),
        // as the site monitor and the rolling restart do.
        QHash<QString, QString> &workerHosts = m_workerHosts[site.name];
        QHash<QString, QList<quint16>> portsByHost;
        for (const Backend &backend : site.backends) {
            const auto host = workerHostFor(backend, site.balancer->host, hosts);
            const QString name = host ? host.value() : QString();
            workerHosts.insert(backend.key(), name);
            if (probes.contains(name)) portsByHost[name].append(backend.port);
        }
        for (auto it = portsByHost.cbegin(); it != portsByHost.cend(); ++it)
            probes.value(it.key())->workers.append({site.name, it.value()});

        // Counters: the access log or stats socket RemoteSiteMonitor reads.
        const std::shared_ptr<HostProbe> balancer = probes.value(site.balancer->host);
        if (!balancer || !RemoteSiteMonitor::supports(site)) continue;
        auto target = RemoteBalancer::fromSite(*site.balancer);
        if (!target) continue;
        HostProbe::CounterPlan plan;
        plan.site = site.name;
        plan.accessLog = target->format != RenderFormat::Haproxy;
        plan.path =
            plan.accessLog
                ? accessLogPath(logDirectoryFor(target->format, target->renderOptions), site.name)
                : haproxyStatsSocket(target->renderOptions.runtimeDirectory, site.name);
        plan.proxy = balancerBlockName(site.name);
        plan.key =
            QStringList{site.balancer->host, site.balancer->format, plan.path, plan.proxy}.join(
                QLatin1Char('\n'));
        balancer->counters.append(plan);
        std::shared_ptr<SiteCounters> kept = m_counters.value(site.name);
        if (!kept || kept->key != plan.key) {
            kept = std::make_shared<SiteCounters>();
            kept->key = plan.key;
        }
        counters.insert(site.name, kept);
    }
    m_probes = probes;
    m_counters = counters;
    m_scheduler->setHosts(polled);
    rebuildSnapshot();
}

void FleetMonitor::start() {
    m_emitTimer->start();
    tick();
}

void FleetMonitor::stop() {
    m_emitTimer->stop();
}

void FleetMonitor::tick() {
    // Open until the scheduler reports the round finished (a round of no host never is: the
    // next interval shows it).
    m_roundOpen = true;
    m_scheduler->tick();
}

int FleetMonitor::maxSessionsInFlight() const {
    return m_scheduler->maxInFlightSeen();
}

void FleetMonitor::poll(const QString &hostName, PollScheduler::Done done) {
    const std::shared_ptr<HostProbe> probe = m_probes.value(hostName);
    SshHost *ssh = probe && m_resolve ? m_resolve(probe->host) : nullptr;
    if (!ssh) {
        done(false, QStringLiteral("not connected"));
        return;
    }
    // A host whose session comes back (SshHost keeps it connected) is polled at the next
    // round, not after the rest of its back-off: the tree shows it online at once.
    if (m_onlineWatched.value(hostName) != ssh) {
        m_onlineWatched.insert(hostName, ssh);
        connect(ssh, &SshHost::online, this,
                [this, hostName] { m_scheduler->endBackOff(hostName); });
    }
    auto pending = std::make_shared<PendingPoll>();
    pending->done = std::move(done);
    pending->watch = connect(ssh, &QObject::destroyed, this, [pending] {
        pending->finish(false, QStringLiteral("its SSH connection was closed"));
    });
    const QList<HostProbe::WorkerPlan> workers = probe->workers;
    const QList<HostProbe::CounterPlan> counters = probe->counters;
    const std::shared_ptr<HostProbe::Remote> remote = probe->remote;
    const int timeoutMs = std::max(1, m_scheduler->options().timeoutMs);
    ssh->call<HostProbe::Answer>(
        [workers, counters, remote, timeoutMs](SshSession &session) {
            return HostProbe::run(session, workers, counters, *remote, timeoutMs);
        },
        this,
        [this, probe, pending](Result<HostProbe::Answer> result) {
            if (result) {
                // Also a late answer (after its timeout was reported): its counts are real
                // requests, and the followers have moved past them.
                probe->answered = true;
                probe->lastSeenMs = QDateTime::currentMSecsSinceEpoch();
                probe->last = result.value();
                for (const HostProbe::SiteCounts &counts : std::as_const(probe->last.counts)) {
                    const std::shared_ptr<SiteCounters> site = m_counters.value(counts.site);
                    if (!site || site->key != counts.key) continue; // the site changed since
                    site->error = counts.error;
                    if (!counts.error.isEmpty()) {
                        site->known = false;
                        continue;
                    }
                    for (auto it = counts.requests.cbegin(); it != counts.requests.cend(); ++it)
                        site->requestsTotal[it.key()] += it.value();
                    // Rates need two readings a measurable time apart (uptime has 10 ms steps).
                    site->known = counts.seconds > 0;
                    site->requestsPerSecond.clear();
                    site->errorsPerSecond.clear();
                    if (!site->known) continue;
                    for (auto it = counts.requests.cbegin(); it != counts.requests.cend(); ++it)
                        site->requestsPerSecond.insert(it.key(),
                                                       double(it.value()) / counts.seconds);
                    for (auto it = counts.errors.cbegin(); it != counts.errors.cend(); ++it)
                        site->errorsPerSecond.insert(it.key(), double(it.value()) / counts.seconds);
                }
            }
            pending->finish(result.ok(), result.ok() ? QString() : result.error());
        });
}

void FleetMonitor::emitSnapshot() {
    rebuildSnapshot();
    Q_EMIT updated(m_snapshot);
}

void FleetMonitor::rebuildSnapshot() {
    FleetSnapshot snapshot;
    snapshot.timestampMs = QDateTime::currentMSecsSinceEpoch();
    snapshot.lastRoundMs = m_lastRoundMs;
    snapshot.sessionsInFlight = m_scheduler->inFlight();

    FleetHostRow local;
    local.name = Host::LocalName;
    for (const Host &host : std::as_const(m_hosts))
        if (host.kind == Host::Kind::Local) local.name = host.name;
    local.local = true;
    local.reachable = true;
    local.polled = true;
    local.lastSeenMs = snapshot.timestampMs;
    m_local->sample(local);
    snapshot.hosts.append(local);

    for (const Host &host : std::as_const(m_hosts)) {
        const std::shared_ptr<HostProbe> probe = m_probes.value(host.name);
        if (!probe) continue; // the local machine: the first row
        FleetHostRow row;
        row.name = host.name;
        row.address = host.address;
        row.polled = probe->polled;
        row.reachable = probe->reachable;
        row.error = probe->error;
        row.lastSeenMs = probe->lastSeenMs;
        row.pollMs = probe->pollMs;
        row.retryInMs = probe->reachable ? 0 : m_scheduler->retryInMs(host.name);
        if (probe->answered) {
            const MachineSample &machine = probe->last.machine;
            row.cores = machine.cores;
            row.load1 = machine.load1;
            row.cpuBusyPercent = machine.cpuBusyPercent;
            row.memoryUsedBytes = machine.memoryUsedBytes;
            row.memoryTotalBytes = machine.memoryTotalBytes;
        }
        snapshot.hosts.append(row);
    }
    // Polled hosts by name; the rows do not move from here on.
    QHash<QString, FleetHostRow *> hostRows;
    for (qsizetype i = 1; i < snapshot.hosts.size(); ++i)
        hostRows.insert(snapshot.hosts[i].name, &snapshot.hosts[i]);
    const auto noteUnreachable = [](FleetSiteRow &row, const FleetHostRow *host) {
        if (host->polled && !host->reachable && !row.unreachableHosts.contains(host->name))
            row.unreachableHosts.append(host->name);
    };

    for (const Site &site : std::as_const(m_sites)) {
        if (!site.balancer) continue;
        FleetSiteRow row;
        row.name = site.name;
        row.balancerHost = site.balancer->host;
        row.balancerFormat = site.balancer->format;
        row.backends = int(site.backends.size());
        const std::shared_ptr<SiteCounters> counters = m_counters.value(site.name);
        FleetHostRow *balancer = hostRows.value(site.balancer->host);
        if (auto supported = RemoteSiteMonitor::supports(site); !supported)
            row.error = supported.error();
        else if (!balancer)
            row.error = QStringLiteral("no SSH host %1 in the inventory to read the balancer "
                                       "through")
                            .arg(site.balancer->host);
        else if (counters)
            row.error = counters->error;
        if (balancer) noteUnreachable(row, balancer);
        row.countsKnown = counters && counters->known && balancer && balancer->reachable;

        const QHash<QString, QString> workerHosts = m_workerHosts.value(site.name);
        for (const Backend &backend : site.backends) {
            const QString key = backend.key();
            const QString hostName = workerHosts.value(key);
            row.backendHost.insert(key, hostName);
            row.backendRequestsTotal.insert(key, counters ? counters->requestsTotal.value(key) : 0);
            const double requests = row.countsKnown ? counters->requestsPerSecond.value(key) : 0;
            const double errors = row.countsKnown ? counters->errorsPerSecond.value(key) : 0;
            row.backendRequestsPerSecond.insert(key, requests);
            row.requestsPerSecond += requests;
            row.errorsPerSecond += errors;

            FleetHostRow *worker = hostRows.value(hostName);
            if (!worker) continue; // no polled host runs it: not a worker Corral can see
            ++row.workersTotal;
            ++worker->workersTotal;
            worker->requestsPerSecond += requests;
            worker->errorsPerSecond += errors;
            noteUnreachable(row, worker);
            const std::shared_ptr<HostProbe> probe = m_probes.value(hostName);
            if (worker->reachable && probe->answered &&
                probe->last.workers.value(site.name).value(backend.port).running) {
                ++row.workersRunning;
                ++worker->workersRunning;
            }
        }
        snapshot.sites.append(row);
    }
    m_snapshot = std::move(snapshot);
}

} // namespace corral
