#include "agent/AgentSites.h"

#include "cluster/LocalCluster.h"
#include "metrics/MetricsCollector.h"
#include "supervisor/FailureReport.h"
#include "supervisor/RotatingLog.h"
#include "supervisor/Supervisor.h"
#include "util/AtomicFile.h"
#include "util/ListeningSockets.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QPointer>
#include <QTimer>

namespace corral::agent {

struct AgentSites::Entry {
    Site site;
    SiteState state = SiteState::Stopped;
    QString error;
    bool ephemeral = false;
    Timeouts timeouts; ///< persisted with the site
    /// Persisted: the next agent starts the site. Cleared only by an explicit stop.
    bool wantRunning = false;
    /// Set when a start failed: the cluster is being stopped and the site ends failed.
    bool failing = false;
    qint64 startedMs = 0;
    QPointer<LocalCluster> cluster;
    std::deque<ClusterSnapshot> history;
    int rollingGeneration = 0; ///< incremented when a rolling restart finishes
    Result<void> rollingOutcome;
};

namespace {

QJsonObject ok(QJsonObject result = {}) {
    return result;
}

bool isBroken(WorkerState state) {
    return state == WorkerState::Crashed || state == WorkerState::Backoff ||
           state == WorkerState::Failed;
}

} // namespace

AgentSites::AgentSites(SupervisionPolicy policy, QString stateFile, QObject *parent)
    : QObject(parent)
    , m_policy(std::move(policy))
    , m_stateFile(std::move(stateFile))
    , m_metrics(std::make_unique<MetricsCollector>()) {
    m_tickTimer.setInterval(MetricsCollector::defaultIntervalMs);
    connect(&m_tickTimer, &QTimer::timeout, this, &AgentSites::tick);
    m_tickTimer.start();
}

void AgentSites::setTickInterval(int ms) {
    m_tickTimer.setInterval(ms);
    m_metrics->setInterval(ms);
}

void AgentSites::tick() {
    bool anyRunning = false;
    for (const auto &[name, entry] : m_sites)
        anyRunning = anyRunning || entry->cluster;
    if (!anyRunning) return;
    m_metrics->sampleNow();
    for (const auto &[name, entry] : m_sites)
        if (entry->cluster) entry->cluster->tickNow();
}

AgentSites::~AgentSites() {
    m_waiters.clear();
    // The clusters (children) kill whatever still runs, before the collector they use goes.
    // Stopped ones waiting for deleteLater included.
    qDeleteAll(findChildren<LocalCluster *>(QString(), Qt::FindDirectChildrenOnly));
}

AgentSites::Entry *AgentSites::find(const QString &name) {
    auto it = m_sites.find(name);
    return it == m_sites.end() ? nullptr : it->second.get();
}

const AgentSites::Entry *AgentSites::find(const QString &name) const {
    auto it = m_sites.find(name);
    return it == m_sites.end() ? nullptr : it->second.get();
}

void AgentSites::restore() {
    QFile file(m_stateFile);
    if (!file.exists()) return;
    if (!file.open(QIODevice::ReadOnly)) {
        qWarning("corral-agent: cannot read %s: %s", qPrintable(m_stateFile),
                 qPrintable(file.errorString()));
        return;
    }
    const QJsonObject root = QJsonDocument::fromJson(file.readAll()).object();
    const QJsonArray sites = root.value(QStringLiteral("sites")).toArray();
    for (qsizetype i = 0; i < sites.size(); ++i) {
        const QJsonObject item = sites.at(i).toObject();
        auto site = Site::fromJson(item.value(QStringLiteral("site")).toObject(),
                                   QStringLiteral("%1: sites[%2].site").arg(m_stateFile).arg(i));
        if (!site) {
            qWarning("corral-agent: %s", qPrintable(site.error()));
            continue;
        }
        auto entry = std::make_unique<Entry>();
        entry->site = site.value();
        entry->wantRunning = item.value(QStringLiteral("running")).toBool();
        entry->timeouts.startMs = item.value(QStringLiteral("startTimeoutMs")).toInt();
        entry->timeouts.killMs = item.value(QStringLiteral("killTimeoutMs")).toInt();
        Entry &stored = *entry;
        m_sites[site->name] = std::move(entry);
        if (stored.wantRunning)
            launch(stored, [name = site->name](Result<QJsonObject> started) {
                if (!started)
                    qWarning("corral-agent: site %s not restored: %s", qPrintable(name),
                             qPrintable(started.error()));
            });
    }
    publishSites();
}

void AgentSites::start(const Site &site, bool ephemeral, Timeouts timeouts, Done done) {
    if (auto valid = site.validate(QStringLiteral("site")); !valid)
        return done(fail(valid.error()));
    if (site.command.isEmpty())
        return done(fail(QStringLiteral("site %1: nothing to run (no command)").arg(site.name)));
    Entry *entry = find(site.name);
    if (!entry) {
        auto created = std::make_unique<Entry>();
        entry = created.get();
        m_sites[site.name] = std::move(created);
    }
    if (entry->cluster && entry->state == SiteState::Running) {
        Site same = site;
        same.ports = entry->site.ports;
        same.workers = entry->site.workers;
        if (same == entry->site && site.workers == int(entry->site.ports.size()))
            return done(QJsonObject{{QStringLiteral("status"), siteStatusToJson(statusOf(*entry))},
                                    {QStringLiteral("alreadyRunning"), true}});
    }
    if (entry->cluster) {
        // Running with other settings: stop it, then start it as asked.
        if (entry->state == SiteState::Stopping || entry->state == SiteState::Starting)
            return done(fail(QStringLiteral("site %1 is %2; try again when it has finished")
                                 .arg(site.name, siteStateName(entry->state))));
        entry->state = SiteState::Stopping;
        entry->cluster->stop();
        publishSites();
        wait(
            site.name,
            [this, name = site.name]() -> std::optional<Result<QJsonObject>> {
                const Entry *current = find(name);
                if (!current) return Result<QJsonObject>(fail(QStringLiteral("site removed")));
                if (current->cluster) return std::nullopt;
                return Result<QJsonObject>(QJsonObject{});
            },
            [this, site, ephemeral, timeouts, done](Result<QJsonObject> stopped) {
                if (!stopped) return done(stopped);
                start(site, ephemeral, timeouts, done);
            });
        return;
    }
    entry->site = site;
    entry->ephemeral = ephemeral;
    entry->timeouts = timeouts;
    entry->wantRunning = !ephemeral;
    launch(*entry, std::move(done));
}

void AgentSites::launch(Entry &entry, Done done) {
    const QString name = entry.site.name;
    entry.error.clear();
    entry.failing = false;
    entry.history.clear();
    const auto failLaunch = [&](const QString &message) {
        entry.state = SiteState::Failed;
        entry.error = message;
        publishSites();
        persist();
        done(fail(message));
    };
    // One address, one owner: a program holding the listen address is named, not shared.
    if (!entry.site.listen.isEmpty()) {
        auto endpoint = Endpoint::parse(entry.site.listen);
        if (!endpoint)
            return failLaunch(QStringLiteral("site %1: listen: %2").arg(name, endpoint.error()));
        if (auto free = checkListenAddressFree(QHostAddress(endpoint->host), endpoint->port); !free)
            return failLaunch(QStringLiteral("site %1: listen: %2").arg(name, free.error()));
    }
    SupervisionPolicy policy = m_policy;
    if (entry.timeouts.startMs > 0) policy.startTimeoutMs = entry.timeouts.startMs;
    if (entry.timeouts.killMs > 0) policy.killTimeoutMs = entry.timeouts.killMs;
    auto *cluster = new LocalCluster(policy, *m_metrics, this);
    QSet<quint16> reserved;
    for (const auto &[otherName, other] : m_sites)
        if (otherName != name)
            for (quint16 port : other->site.ports)
                reserved.insert(port);
    cluster->supervisor().setReservedPorts(reserved);
    entry.cluster = cluster;

    connect(cluster, &LocalCluster::snapshotReady, this, [this, name](const ClusterSnapshot &s) {
        Entry *current = find(name);
        if (!current) return;
        current->history.push_back(s);
        while (current->history.size() > size_t(HistoryTicks))
            current->history.pop_front();
        if (m_subscribed)
            Q_EMIT event(encodeLine({{QStringLiteral("event"), QStringLiteral("snapshot")},
                                     {QStringLiteral("snapshot"), snapshotToJson(s)}}));
        settleWaiters();
    });
    connect(cluster, &LocalCluster::workerStateChanged, this,
            [this, name](quint16 port, qint64 pid, WorkerState state, const QString &cause) {
                if (m_subscribed)
                    Q_EMIT event(encodeLine({{QStringLiteral("event"), QStringLiteral("worker")},
                                             {QStringLiteral("site"), name},
                                             {QStringLiteral("port"), port},
                                             {QStringLiteral("pid"), pid},
                                             {QStringLiteral("state"), workerStateName(state)},
                                             {QStringLiteral("cause"), cause}}));
                settleWaiters();
            });
    connect(cluster, &LocalCluster::rollingRestartProgress, this,
            [this, name](int replaced, int total) {
                if (m_subscribed)
                    Q_EMIT event(encodeLine({{QStringLiteral("event"), QStringLiteral("rolling")},
                                             {QStringLiteral("site"), name},
                                             {QStringLiteral("replaced"), replaced},
                                             {QStringLiteral("total"), total}}));
            });
    connect(cluster, &LocalCluster::rollingRestartFinished, this,
            [this, name](bool succeeded, const QString &message) {
                Entry *current = find(name);
                if (!current) return;
                current->rollingOutcome = succeeded ? Result<void>() : Result<void>(fail(message));
                ++current->rollingGeneration;
                publishSites();
                settleWaiters();
            });
    connect(&cluster->supervisor(), &Supervisor::portsChanged, this,
            [this, name](const QString &, const QList<quint16> &ports) {
                Entry *current = find(name);
                if (!current) return;
                current->site.ports = ports;
                current->site.workers = int(ports.size());
                persist();
                publishSites();  // clients learn the new worker list without asking
                settleWaiters(); // a scale-in is done when the port list has shrunk
            });
    connect(cluster, &LocalCluster::stopped, this, [this, name, cluster] {
        cluster->deleteLater();
        Entry *current = find(name);
        if (!current || current->cluster != cluster) return;
        current->cluster = nullptr;
        current->state = current->failing ? SiteState::Failed : SiteState::Stopped;
        publishSites();
        persist();
        settleWaiters();
    });

    if (auto started = cluster->start(entry.site); !started) {
        entry.cluster = nullptr;
        delete cluster;
        return failLaunch(started.error());
    }
    entry.state = SiteState::Starting;
    entry.startedMs = QDateTime::currentMSecsSinceEpoch();
    publishSites();
    persist();
    wait(
        name,
        [this, name]() -> std::optional<Result<QJsonObject>> {
            Entry *current = find(name);
            if (!current || !current->cluster)
                return Result<QJsonObject>(
                    fail(QStringLiteral("site %1 stopped while it was starting").arg(name)));
            const auto workers = current->cluster->supervisor().workers(name);
            for (const WorkerProcess *worker : workers) {
                if (!isBroken(worker->state())) continue;
                const QString failure =
                    failureOf(*current, worker->port(), worker->worker().cause());
                // Nothing half started stays behind: the site stops and is shown failed.
                current->failing = true;
                current->error = failure;
                current->state = SiteState::Stopping;
                QTimer::singleShot(0, current->cluster, &LocalCluster::stop);
                return Result<QJsonObject>(fail(failure));
            }
            for (const WorkerProcess *worker : workers)
                if (worker->state() != WorkerState::Running) return std::nullopt;
            current->state = SiteState::Running;
            publishSites();
            return Result<QJsonObject>(
                QJsonObject{{QStringLiteral("status"), siteStatusToJson(statusOf(*current))}});
        },
        std::move(done));
}

void AgentSites::stop(const QString &name, Done done) {
    Entry *entry = find(name);
    if (!entry) return done(fail(QStringLiteral("the agent has no site %1").arg(name)));
    if (!m_stoppingAll) entry->wantRunning = false;
    if (!entry->cluster) {
        persist();
        return done(ok());
    }
    if (entry->state != SiteState::Stopping) {
        entry->state = SiteState::Stopping;
        entry->cluster->stop();
        publishSites();
    }
    persist();
    wait(
        name,
        [this, name]() -> std::optional<Result<QJsonObject>> {
            const Entry *current = find(name);
            if (current && current->cluster) return std::nullopt;
            return Result<QJsonObject>(QJsonObject{});
        },
        std::move(done));
}

void AgentSites::restart(const QString &name, std::optional<quint16> port, Done done) {
    Entry *entry = find(name);
    if (!entry || !entry->cluster || entry->state != SiteState::Running)
        return done(fail(QStringLiteral("site %1 is not running in the agent").arg(name)));
    LocalCluster *cluster = entry->cluster;
    if (!port) {
        if (auto started = cluster->rollingRestart(); !started) return done(fail(started.error()));
        publishSites();
        const int generation = entry->rollingGeneration;
        wait(
            name,
            [this, name, generation]() -> std::optional<Result<QJsonObject>> {
                const Entry *current = find(name);
                if (!current)
                    return Result<QJsonObject>(fail(QStringLiteral("site %1 removed").arg(name)));
                if (current->rollingGeneration == generation) {
                    if (!current->cluster)
                        return Result<QJsonObject>(
                            fail(QStringLiteral("site %1 stopped during the restart").arg(name)));
                    return std::nullopt;
                }
                if (!current->rollingOutcome)
                    return Result<QJsonObject>(fail(current->rollingOutcome.error()));
                return Result<QJsonObject>(
                    QJsonObject{{QStringLiteral("status"), siteStatusToJson(statusOf(*current))}});
            },
            std::move(done));
        return;
    }
    qint64 previousPid = 0;
    for (const WorkerProcess *worker : cluster->supervisor().workers(name))
        if (worker->port() == *port) previousPid = worker->pid();
    if (auto restarted = cluster->restartWorker(*port); !restarted)
        return done(fail(restarted.error()));
    wait(
        name,
        [this, name, port = *port, previousPid]() -> std::optional<Result<QJsonObject>> {
            const Entry *current = find(name);
            if (!current || !current->cluster)
                return Result<QJsonObject>(
                    fail(QStringLiteral("site %1 stopped during the restart").arg(name)));
            for (const WorkerProcess *worker : current->cluster->supervisor().workers(name)) {
                if (worker->port() != port) continue;
                if (worker->state() == WorkerState::Failed)
                    return Result<QJsonObject>(
                        fail(failureOf(*current, port, worker->worker().cause())));
                if (worker->state() == WorkerState::Running && worker->pid() != previousPid)
                    return Result<QJsonObject>(
                        QJsonObject{{QStringLiteral("port"), port},
                                    {QStringLiteral("pid"), worker->pid()},
                                    {QStringLiteral("previousPid"), previousPid}});
                return std::nullopt;
            }
            return Result<QJsonObject>(fail(
                QStringLiteral("site %1 no longer has a worker on port %2").arg(name).arg(port)));
        },
        std::move(done));
}

void AgentSites::scale(const QString &name, int workers, Done done) {
    Entry *entry = find(name);
    if (!entry || !entry->cluster || entry->state != SiteState::Running)
        return done(fail(QStringLiteral("site %1 is not running in the agent").arg(name)));
    if (workers < 0 || workers > Site::MaxWorkers)
        return done(
            fail(QStringLiteral("workers: %1 is not in 0..%2").arg(workers).arg(Site::MaxWorkers)));
    if (auto scaled = entry->cluster->setWorkerCount(workers); !scaled)
        return done(fail(scaled.error()));
    wait(
        name,
        [this, name, workers]() -> std::optional<Result<QJsonObject>> {
            const Entry *current = find(name);
            if (!current || !current->cluster)
                return Result<QJsonObject>(
                    fail(QStringLiteral("site %1 stopped while scaling").arg(name)));
            const auto running = current->cluster->supervisor().workers(name);
            for (const WorkerProcess *worker : running)
                if (worker->state() == WorkerState::Failed)
                    return Result<QJsonObject>(
                        fail(failureOf(*current, worker->port(), worker->worker().cause())));
            if (running.size() != workers) return std::nullopt;
            for (const WorkerProcess *worker : running)
                if (worker->state() != WorkerState::Running) return std::nullopt;
            return Result<QJsonObject>(
                QJsonObject{{QStringLiteral("status"), siteStatusToJson(statusOf(*current))}});
        },
        std::move(done));
}

void AgentSites::removeWorker(const QString &name, quint16 port, Done done) {
    Entry *entry = find(name);
    if (!entry || !entry->cluster || entry->state != SiteState::Running)
        return done(fail(QStringLiteral("site %1 is not running in the agent").arg(name)));
    if (auto removed = entry->cluster->removeWorker(port); !removed)
        return done(fail(removed.error()));
    wait(
        name,
        [this, name, port]() -> std::optional<Result<QJsonObject>> {
            const Entry *current = find(name);
            if (!current || !current->cluster)
                return Result<QJsonObject>(
                    fail(QStringLiteral("site %1 stopped while removing a worker").arg(name)));
            if (current->cluster->supervisor().ports(name).contains(port)) return std::nullopt;
            return Result<QJsonObject>(
                QJsonObject{{QStringLiteral("status"), siteStatusToJson(statusOf(*current))}});
        },
        std::move(done));
}

Result<void> AgentSites::setPolicy(const QString &name, BalancingPolicy policy) {
    Entry *entry = find(name);
    if (!entry) return fail(QStringLiteral("the agent has no site %1").arg(name));
    if (entry->cluster)
        if (auto changed = entry->cluster->setPolicy(policy); !changed) return changed;
    entry->site.policy = policy;
    persist();
    publishSites();
    return {};
}

Result<void> AgentSites::setBackendEnabled(const QString &name, quint16 port, bool enabled) {
    Entry *entry = find(name);
    if (!entry || !entry->cluster)
        return fail(QStringLiteral("site %1 is not running in the agent").arg(name));
    return entry->cluster->setBackendEnabled(port, enabled);
}

Result<void> AgentSites::forget(const QString &name) {
    Entry *entry = find(name);
    if (!entry) return fail(QStringLiteral("the agent has no site %1").arg(name));
    if (entry->cluster)
        return fail(
            QStringLiteral("site %1 is %2; stop it first").arg(name, siteStateName(entry->state)));
    m_sites.erase(name);
    persist();
    publishSites();
    settleWaiters();
    return {};
}

QList<SiteStatus> AgentSites::status(const QString &name) const {
    QList<SiteStatus> list;
    for (const auto &[siteName, entry] : m_sites)
        if (name.isEmpty() || siteName == name) list.append(statusOf(*entry));
    return list;
}

Result<QJsonArray> AgentSites::history(const QString &name) const {
    const Entry *entry = find(name);
    if (!entry) return fail(QStringLiteral("the agent has no site %1").arg(name));
    QJsonArray snapshots;
    for (const ClusterSnapshot &snapshot : entry->history)
        snapshots.append(snapshotToJson(snapshot));
    return snapshots;
}

void AgentSites::stopAll(std::function<void()> done) {
    m_stoppingAll = true;
    auto remaining = std::make_shared<int>(1);
    auto one = [remaining, done] {
        if (--*remaining == 0) done();
    };
    for (const auto &[name, entry] : m_sites) {
        if (!entry->cluster) continue;
        ++*remaining;
        stop(name, [one](const Result<QJsonObject> &) { one(); });
    }
    one();
}

SiteStatus AgentSites::statusOf(const Entry &entry) const {
    SiteStatus status;
    status.site = entry.site;
    status.state = entry.state;
    status.error = entry.error;
    status.ephemeral = entry.ephemeral;
    status.startedMs = entry.cluster ? entry.startedMs : 0;
    if (!entry.history.empty()) status.snapshot = entry.history.back();
    if (entry.cluster) {
        const Supervisor &supervisor = entry.cluster->supervisor();
        status.rollingOut = supervisor.isRollingOut(entry.site.name);
        status.hasProxy = entry.cluster->proxy() != nullptr;
        for (const WorkerProcess *worker : supervisor.workers(entry.site.name))
            status.workers.append(
                WorkerStatus{worker->port(), worker->pid(), worker->state(), worker->log().path()});
    }
    return status;
}

QString AgentSites::failureOf(const Entry &entry, quint16 port, const QString &cause) const {
    if (entry.cluster)
        for (const WorkerProcess *worker : entry.cluster->supervisor().workers(entry.site.name))
            if (worker->port() == port) return workerFailureReport(*worker).toText();
    return QStringLiteral("worker %1 of %2 failed: %3").arg(port).arg(entry.site.name, cause);
}

void AgentSites::wait(const QString &site,
                      std::function<std::optional<Result<QJsonObject>>()> check, Done done) {
    m_waiters.push_back(Waiter{site, std::move(check), std::move(done)});
    settleWaiters();
}

void AgentSites::settleWaiters() {
    // A finished operation's callback may start another (start after stop): loop until no
    // waiter finishes, and never re-enter from inside a check.
    if (m_settling) return;
    m_settling = true;
    for (bool progressed = true; progressed;) {
        progressed = false;
        for (auto it = m_waiters.begin(); it != m_waiters.end(); ++it) {
            auto outcome = it->check();
            if (!outcome) continue;
            Done done = std::move(it->done);
            m_waiters.erase(it);
            if (done) done(std::move(*outcome));
            progressed = true;
            break;
        }
    }
    m_settling = false;
}

void AgentSites::publishSites() {
    if (!m_subscribed) return;
    QJsonArray sites;
    for (const auto &[name, entry] : m_sites)
        sites.append(siteStatusToJson(statusOf(*entry)));
    Q_EMIT event(encodeLine(
        {{QStringLiteral("event"), QStringLiteral("sites")}, {QStringLiteral("sites"), sites}}));
}

void AgentSites::persist() {
    QJsonArray sites;
    for (const auto &[name, entry] : m_sites) {
        if (entry->ephemeral) continue;
        QJsonObject item{{QStringLiteral("site"), entry->site.toJson()},
                         {QStringLiteral("running"), entry->wantRunning}};
        if (entry->timeouts.startMs > 0)
            item.insert(QStringLiteral("startTimeoutMs"), entry->timeouts.startMs);
        if (entry->timeouts.killMs > 0)
            item.insert(QStringLiteral("killTimeoutMs"), entry->timeouts.killMs);
        sites.append(item);
    }
    const QJsonObject root{{QStringLiteral("version"), 1}, {QStringLiteral("sites"), sites}};
    QDir().mkpath(QFileInfo(m_stateFile).absolutePath());
    AtomicWriteOptions options;
    options.mode = 0600;
    if (auto written = writeFileAtomically(
            m_stateFile, QJsonDocument(root).toJson(QJsonDocument::Indented), options);
        !written)
        qWarning("corral-agent: state not saved: %s", qPrintable(written.error()));
}

} // namespace corral::agent
