#pragma once

#include "cluster/ClusterSnapshot.h"
#include "supervisor/WorkerProcess.h"
#include "util/Result.h"

#include <QObject>
#include <QSet>
#include <QTimer>

#include <memory>

namespace corral {

class MetricsCollector;
class ProxyEngine;
class Supervisor;
struct ProxyConfig;
struct ProxyStats;

/// The embedded proxy's settings of `site` onto `config`: static files (staticRoot,
/// staticFollowSymlinks, cacheControl), gzip, the access log and TLS (certificate, key,
/// the dev certificate's names from serverNames, the HTTP redirect). The access log's
/// default ("") is `siteLogDirectory`/access.log, "off" none. One mapping for `corralctl
/// proxy`, `up`, `start` (the agent) and the console.
void applySiteProxySettings(const Site &site, const QString &siteLogDirectory, ProxyConfig &config);
/// The access log file `site` writes, or an empty string when it writes none to a file
/// ("off", "-"): what `corralctl logs` and the console's log view read.
QString siteAccessLogPath(const Site &site, const QString &siteLogDirectory);

/// One site running on this machine: its supervised workers, the embedded proxy in front of
/// them (when the site has a `listen` address) and the metrics sampler, wired together. Each
/// worker joins the proxy once it is ready, is drained before it is stopped, and is watched by
/// the sampler while it runs. Once per tick it delivers one ClusterSnapshot.
///
/// Used by both `corralctl up` and the console, so both behave the same.
class LocalCluster : public QObject {
    Q_OBJECT
public:
    explicit LocalCluster(const SupervisionPolicy &policy = {}, QObject *parent = nullptr);
    /// A cluster sampled by a collector shared with other clusters (the agent's: one scan of
    /// /proc per tick for every site instead of one per site). It has no timer of its own:
    /// the owner calls sampleNow() on the collector, then tickNow() on each cluster.
    LocalCluster(const SupervisionPolicy &policy, MetricsCollector &sharedMetrics,
                 QObject *parent = nullptr);
    ~LocalCluster() override;

    /// Starts the proxy first (a taken listen address fails before any worker starts), then
    /// the workers and the tick timer.
    Result<void> start(const Site &site, int proxyThreads = 0);
    /// Drains and stops every worker, then the proxy; emits stopped().
    void stop();
    bool isRunning() const { return m_running; }

    const Site &site() const { return m_site; }
    Supervisor &supervisor() { return *m_supervisor; }
    const Supervisor &supervisor() const { return *m_supervisor; }
    /// Null when the site has no listen address.
    ProxyEngine *proxy() const { return m_proxy.get(); }
    /// The proxy's access log file; empty without a proxy or a log file.
    QString accessLogPath() const;
    MetricsCollector &metrics() { return *m_metrics; }
    /// The latest snapshot (empty before the first tick).
    const ClusterSnapshot &snapshot() const { return m_snapshot; }

    /// One more worker on a newly allocated port; it joins the proxy once healthy.
    Result<void> addWorker();
    /// Drains the worker at the proxy, waits for its in-flight requests, stops and removes it.
    Result<void> removeWorker(quint16 port);
    Result<void> setWorkerCount(int count);
    Result<void> restartWorker(quint16 port);
    Result<void> rollingRestart();
    Result<void> setPolicy(BalancingPolicy policy);
    /// Takes a backend out of rotation (disabled) or puts it back, without stopping the worker.
    Result<void> setBackendEnabled(quint16 port, bool enabled);

    /// Tick interval of snapshots and sampling (default 1000 ms; own collector only).
    void setTickInterval(int ms);
    /// Delivers a snapshot now (sampling first when the collector is the cluster's own).
    void tickNow() { tick(); }

Q_SIGNALS:
    void snapshotReady(const corral::ClusterSnapshot &snapshot);
    void workerStateChanged(quint16 port, qint64 pid, corral::WorkerState state,
                            const QString &cause);
    void rollingRestartProgress(int replaced, int total);
    void rollingRestartFinished(bool succeeded, const QString &message);
    void stopped();

private:
    void wire();
    void tick();
    QString backendKey(quint16 port) const;
    QString metricsKey(quint16 port) const;

    Site m_site;
    QString m_logDirectory; ///< SupervisionPolicy::logDirectory
    std::unique_ptr<Supervisor> m_supervisor;
    std::unique_ptr<ProxyEngine> m_proxy;
    std::unique_ptr<MetricsCollector> m_ownMetrics; ///< null with a shared collector
    MetricsCollector *m_metrics = nullptr;
    QSet<QString> m_watchedKeys;
    QTimer m_tickTimer;
    ClusterSnapshot m_snapshot;
    struct Previous {
        quint64 requests = 0;
        quint64 errors = 0;
    };
    QHash<quint16, Previous> m_previous;
    quint64 m_previousProxyErrors = 0;
    qint64 m_previousTickMs = 0;
    bool m_running = false;
    bool m_stopping = false;
};

} // namespace corral
