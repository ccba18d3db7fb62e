#include "cluster/LocalCluster.h"

#include "metrics/MetricsCollector.h"
#include "proxy/ProxyEngine.h"
#include "supervisor/Supervisor.h"

#include <QDateTime>
#include <QDir>

namespace corral {

void applySiteProxySettings(const Site &site, const QString &siteLogDirectory,
                            ProxyConfig &config) {
    config.staticFiles.root = site.staticRoot;
    config.staticFiles.followSymlinks = site.staticFollowSymlinks;
    config.staticFiles.cacheControl = site.cacheControl;
    config.compression.gzip = site.gzip;
    config.accessLog.path = site.accessLog == Site::AccessLogStdout
                                ? Site::AccessLogStdout
                                : siteAccessLogPath(site, siteLogDirectory);
    config.tls.enabled = site.tls;
    config.tls.certFile = site.tlsCert;
    config.tls.keyFile = site.tlsKey;
    config.tls.hostNames = site.serverNames;
    config.tls.redirectHttpListen = site.redirectHttp;
}

QString siteAccessLogPath(const Site &site, const QString &siteLogDirectory) {
    if (site.accessLog == Site::AccessLogOff || site.accessLog == Site::AccessLogStdout) return {};
    if (site.accessLog.isEmpty()) return siteLogDirectory + QStringLiteral("/access.log");
    return site.accessLog;
}

LocalCluster::LocalCluster(const SupervisionPolicy &policy, QObject *parent)
    : QObject(parent)
    , m_logDirectory(policy.logDirectory)
    , m_supervisor(std::make_unique<Supervisor>(policy))
    , m_ownMetrics(std::make_unique<MetricsCollector>())
    , m_metrics(m_ownMetrics.get()) {
    wire();
}

LocalCluster::LocalCluster(const SupervisionPolicy &policy, MetricsCollector &sharedMetrics,
                           QObject *parent)
    : QObject(parent)
    , m_logDirectory(policy.logDirectory)
    , m_supervisor(std::make_unique<Supervisor>(policy))
    , m_metrics(&sharedMetrics) {
    wire();
}

void LocalCluster::wire() {
    m_tickTimer.setInterval(MetricsCollector::defaultIntervalMs);
    connect(&m_tickTimer, &QTimer::timeout, this, &LocalCluster::tick);
    connect(m_supervisor.get(), &Supervisor::workerStateChanged, this,
            [this](const QString &, quint16 port, qint64 pid, WorkerState state,
                   const QString &cause) { Q_EMIT workerStateChanged(port, pid, state, cause); });
    connect(m_supervisor.get(), &Supervisor::rollingRestartProgress, this,
            [this](const QString &, int replaced, int total) {
                Q_EMIT rollingRestartProgress(replaced, total);
            });
    connect(m_supervisor.get(), &Supervisor::rollingRestartFinished, this,
            [this](const QString &, bool succeeded, const QString &message) {
                Q_EMIT rollingRestartFinished(succeeded, message);
            });
    connect(m_supervisor.get(), &Supervisor::allStopped, this, [this] {
        if (!m_stopping) return;
        if (m_proxy) m_proxy->drainAndStop(std::chrono::milliseconds(2000));
        m_tickTimer.stop();
        // A shared collector outlives the cluster: leave nothing of this site watched there.
        for (const QString &key : std::as_const(m_watchedKeys))
            m_metrics->unwatch(key);
        m_watchedKeys.clear();
        m_running = false;
        m_stopping = false;
        Q_EMIT stopped();
    });
}

LocalCluster::~LocalCluster() {
    m_tickTimer.stop();
    // Workers first (their destructors kill what is left), then the proxy in front of them.
    m_supervisor.reset();
    if (m_proxy) m_proxy->stop();
}

QString LocalCluster::accessLogPath() const {
    if (!m_proxy) return {};
    return siteAccessLogPath(m_site, siteLogDirectory(m_logDirectory, m_site.name));
}

QString LocalCluster::backendKey(quint16 port) const {
    return Endpoint{QStringLiteral("127.0.0.1"), port}.toString();
}

QString LocalCluster::metricsKey(quint16 port) const {
    return m_site.name + QLatin1Char(':') + QString::number(port);
}

Result<void> LocalCluster::start(const Site &site, int proxyThreads) {
    if (m_running) return fail(QStringLiteral("cluster %1 is already running").arg(m_site.name));
    m_site = site;
    if (!site.listen.isEmpty()) {
        auto endpoint = Endpoint::parse(site.listen);
        if (!endpoint)
            return fail(QStringLiteral("site %1: listen: ").arg(site.name) + endpoint.error());
        ProxyConfig config;
        config.listenAddress = endpoint->host;
        config.listenPort = endpoint->port;
        config.threads = proxyThreads;
        config.policy = site.policy;
        // Active checks only with a health path; its request target as healthUrl() builds it.
        config.health.path =
            site.healthPath.isEmpty() ? QString() : healthRequestPath(site.healthPath);
        config.retries = site.retries;
        const QString logDirectory = siteLogDirectory(m_logDirectory, site.name);
        applySiteProxySettings(site, logDirectory, config);
        // The default access log opens before any worker made the site's log directory.
        if (site.accessLog.isEmpty() && !QDir().mkpath(logDirectory))
            return fail(QStringLiteral("site %1: cannot create the log directory %2")
                            .arg(site.name, logDirectory));
        m_proxy = std::make_unique<ProxyEngine>();
        if (auto started = m_proxy->start(config); !started) {
            m_proxy.reset();
            return fail(QStringLiteral("site %1: proxy on %2: ").arg(site.name, site.listen) +
                        started.error());
        }
    }

    BackendHooks hooks;
    hooks.workerReady = [this](const QString &, quint16 port) {
        if (const WorkerProcess *worker = m_supervisor->worker(m_site.name, port))
            if (m_metrics->watch(worker->pid(), metricsKey(port)))
                m_watchedKeys.insert(metricsKey(port));
        if (!m_proxy) return;
        const QString key = backendKey(port);
        bool known = false;
        for (const Backend &backend : m_proxy->backends())
            known = known || backend.key() == key;
        if (known)
            (void)m_proxy->enableBackend(key);
        else
            (void)m_proxy->addBackend(Backend{QStringLiteral("127.0.0.1"), port});
    };
    hooks.drainWorker = [this](const QString &, quint16 port, std::function<void()> drained) {
        if (!m_proxy || !m_proxy->drainBackend(backendKey(port), drained).ok()) drained();
    };
    hooks.workerGone = [this](const QString &, quint16 port) {
        if (m_proxy) (void)m_proxy->disableBackend(backendKey(port));
    };
    hooks.workerRemoved = [this](const QString &, quint16 port) {
        m_metrics->unwatch(metricsKey(port));
        m_watchedKeys.remove(metricsKey(port));
        m_previous.remove(port);
        if (m_proxy) (void)m_proxy->removeBackend(backendKey(port));
    };
    m_supervisor->setBackendHooks(std::move(hooks));
    if (auto started = m_supervisor->startSite(site); !started) {
        if (m_proxy) {
            m_proxy->stop();
            m_proxy.reset();
        }
        return started;
    }
    m_running = true;
    m_previousTickMs = 0;
    m_previousProxyErrors = 0;
    if (m_ownMetrics) {
        m_metrics->setInterval(m_tickTimer.interval());
        m_tickTimer.start();
    }
    tick();
    return {};
}

void LocalCluster::stop() {
    if (!m_running || m_stopping) return;
    m_stopping = true;
    m_supervisor->stopAll();
}

void LocalCluster::setTickInterval(int ms) {
    m_tickTimer.setInterval(ms);
    if (m_ownMetrics) m_metrics->setInterval(ms);
}

Result<void> LocalCluster::addWorker() {
    if (!m_running) return fail(QStringLiteral("cluster is not running"));
    return m_supervisor->setWorkerCount(m_site.name,
                                        int(m_supervisor->ports(m_site.name).size()) + 1);
}

Result<void> LocalCluster::removeWorker(quint16 port) {
    if (!m_running) return fail(QStringLiteral("cluster is not running"));
    return m_supervisor->removeWorker(m_site.name, port);
}

Result<void> LocalCluster::setWorkerCount(int count) {
    if (!m_running) return fail(QStringLiteral("cluster is not running"));
    return m_supervisor->setWorkerCount(m_site.name, count);
}

Result<void> LocalCluster::restartWorker(quint16 port) {
    if (!m_running) return fail(QStringLiteral("cluster is not running"));
    return m_supervisor->restartWorker(m_site.name, port);
}

Result<void> LocalCluster::rollingRestart() {
    if (!m_running) return fail(QStringLiteral("cluster is not running"));
    return m_supervisor->rollingRestart(*m_supervisor->site(m_site.name));
}

Result<void> LocalCluster::setPolicy(BalancingPolicy policy) {
    if (!m_proxy)
        return fail(
            QStringLiteral("site %1 has no embedded proxy (no listen address)").arg(m_site.name));
    m_proxy->setPolicy(policy);
    m_site.policy = policy;
    return {};
}

Result<void> LocalCluster::setBackendEnabled(quint16 port, bool enabled) {
    if (!m_proxy)
        return fail(
            QStringLiteral("site %1 has no embedded proxy (no listen address)").arg(m_site.name));
    return m_proxy->setEnabled(backendKey(port), enabled);
}

void LocalCluster::tick() {
    if (!m_supervisor) return;
    if (m_ownMetrics) m_metrics->sampleNow();
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const double seconds =
        m_previousTickMs > 0 ? qMax(0.001, (now - m_previousTickMs) / 1000.0) : 0;
    const qint64 previousTickMs = m_previousTickMs;
    m_previousTickMs = now;

    QHash<quint16, const ProcessSample *> samples;
    const MetricsSnapshot &metrics = m_metrics->snapshot();
    // A shared collector also samples other sites' workers: only this site's keys count.
    const QString keyPrefix = m_site.name + QLatin1Char(':');
    for (const ProcessSample &sample : metrics.processes)
        if (sample.key.startsWith(keyPrefix))
            samples.insert(sample.key.mid(keyPrefix.size()).toUShort(), &sample);
    ProxyStats proxyStats;
    QHash<quint16, const BackendStats *> backends;
    if (m_proxy) {
        proxyStats = m_proxy->snapshot();
        for (const BackendStats &stats : proxyStats.backends)
            backends.insert(stats.backend.port, &stats);
    }

    ClusterSnapshot snapshot;
    snapshot.timestampMs = now;
    snapshot.site = m_site.name;
    snapshot.listen = m_proxy ? m_site.listen : QString();
    snapshot.policy = m_proxy ? proxyStats.policy : m_site.policy;
    snapshot.machine = metrics.machine;
    for (const WorkerProcess *worker : m_supervisor->workers(m_site.name)) {
        WorkerRow row;
        row.site = m_site.name;
        row.port = worker->port();
        row.pid = worker->pid();
        row.state = worker->state();
        row.cause = worker->worker().cause();
        row.restarts = worker->restarts();
        row.crashes = worker->crashes();
        row.lastCrashMs = worker->lastCrash().atMs;
        row.lastCrashCause = worker->lastCrash().cause;
        // A crash recovered between two ticks still shows as "crashed" for one tick: a worker
        // that crashes and is back within a second must not look as if nothing happened.
        if (row.lastCrashMs > previousTickMs && row.state != WorkerState::Crashed &&
            row.state != WorkerState::Failed) {
            row.cause =
                QStringLiteral("%1; now %2").arg(row.lastCrashCause, workerStateName(row.state));
            row.state = WorkerState::Crashed;
        }
        row.uptimeMs = worker->runningSinceMs() > 0 ? now - worker->runningSinceMs() : 0;
        if (const ProcessSample *sample = samples.value(row.port);
            sample && sample->alive && sample->pid == row.pid) {
            row.cpuValid = sample->cpuValid;
            row.cpuPercent = sample->cpuPercent;
            row.rssBytes = sample->rssBytes;
        }
        if (const BackendStats *stats = backends.value(row.port)) {
            row.inProxy = true;
            row.backendState = backendStateName(stats->state);
            row.requestsTotal = stats->requests;
            row.inFlight = stats->inFlight;
            row.p99Ms = stats->p99Ms;
            const quint64 errors = stats->responses[3] + stats->failures;
            Previous &previous = m_previous[row.port];
            if (seconds > 0 && stats->requests >= previous.requests) {
                row.requestsPerSecond = (stats->requests - previous.requests) / seconds;
                row.errorsPerSecond =
                    errors >= previous.errors ? (errors - previous.errors) / seconds : 0;
            }
            previous = Previous{stats->requests, errors};
        }
        snapshot.requestsPerSecond += row.requestsPerSecond;
        snapshot.errorsPerSecond += row.errorsPerSecond;
        if (row.state == WorkerState::Running) ++snapshot.running;
        snapshot.workers.append(row);
    }
    // Requests the balancer answered itself (502 with no usable backend) are requests of the
    // site and errors: with every worker gone they are all there is to see.
    snapshot.proxyErrorsTotal = proxyStats.noBackend;
    if (seconds > 0 && proxyStats.noBackend >= m_previousProxyErrors)
        snapshot.proxyErrorsPerSecond = (proxyStats.noBackend - m_previousProxyErrors) / seconds;
    m_previousProxyErrors = proxyStats.noBackend;
    snapshot.requestsPerSecond += snapshot.proxyErrorsPerSecond;
    snapshot.errorsPerSecond += snapshot.proxyErrorsPerSecond;
    m_snapshot = snapshot;
    Q_EMIT snapshotReady(m_snapshot);
}

} // namespace corral
