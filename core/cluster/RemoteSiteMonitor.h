#pragma once

#include "cluster/ClusterSnapshot.h"
#include "model/Host.h"
#include "model/Site.h"
#include "upstreams/RequestCounts.h"
#include "util/Result.h"

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QTimer>

#include <functional>
#include <memory>

namespace corral {

class SshHost;

/// A production site seen through its balancer host, once per tick, in the same
/// ClusterSnapshot shape as a LocalCluster so the console's table and charts show it too:
///  - requests per backend from the balancer itself: nginx's or Apache's access log
///    (NginxLogFollower) or HAProxy's `show stat` (HaproxyStatFollower), counted from the
///    first tick on;
///  - each backend's health as the balancer host sees it: one batched curl of every
///    backend's health path (or /) from that host;
///  - pid, CPU and memory of the workers Corral runs (RemoteWorkers' pid files), through
///    RemoteProcSampler: loopback backends on the balancer host, in the same command; others
///    on the inventory host with their address (setWorkerHosts()), each host asked in
///    parallel on its own thread and shown from its latest answer.
/// Every command runs on the SshHost's own thread, so the UI thread never blocks on SSH;
/// a tick still in flight when the next is due is skipped.
///
/// The monitor never goes quiet: a host that could not be read gives a snapshot all the
/// same, its rows unknown (WorkerRow::reachable false, with when they were last seen) and
/// the host in unreachableHosts; a host object that went away (the console replaces a host
/// whose settings changed) is looked up again by name through the resolver of
/// setWorkerHosts(), and until one is found each tick says so.
class RemoteSiteMonitor : public QObject {
    Q_OBJECT

public:
    /// `balancerHost` is the SSH host named by site.balancer (not owned; watched: when it is
    /// deleted, the next tick resolves the balancer's host by name, see setWorkerHosts()).
    RemoteSiteMonitor(const Site &site, SshHost *balancerHost, QObject *parent = nullptr);
    ~RemoteSiteMonitor() override;

    /// Fails, with the reason, for a site without a balancer or with a balancer format
    /// Corral does not know.
    static Result<void> supports(const Site &site);

    /// Gives an SshHost for an inventory host name (e.g. from the console's SshPool).
    using HostResolver = std::function<SshHost *(const Host &host)>;
    /// The inventory's hosts: a backend whose address is one of theirs (workerHostFor()) is
    /// sampled there. Without this only the balancer host's workers have pid, CPU and memory.
    /// `resolve` also gives the balancer's host again when the one in use went away. Calling
    /// it again with the same hosts keeps what was sampled so far.
    void setWorkerHosts(const QList<Host> &hosts, HostResolver resolve);

    /// The site changed (backends added or removed): the next tick shows the new set.
    void setSite(const Site &site);
    const Site &site() const { return m_site; }

    void start(int intervalMs = 1000);
    void stop();
    /// One tick now (skipped while the previous one runs).
    void tick();

    /// Wall time of the last completed tick: every SSH command of it, round trips included.
    qint64 lastTickMs() const { return m_lastTickMs; }

    /// The last snapshot delivered (empty rows before the first tick completes).
    const ClusterSnapshot &snapshot() const { return m_snapshot; }

    /// The curl command that probes `urls` from the balancer host and prints one
    /// "CODE URL" line per URL (CODE 000 when nothing answered). Pure, for tests.
    static QString healthProbeCommand(const QStringList &urls, int timeoutSeconds = 1);

Q_SIGNALS:
    void snapshotReady(const corral::ClusterSnapshot &snapshot);
    /// A tick failed (host offline, log unreadable); the next tick tries again.
    void pollFailed(const QString &error);

private:
    struct Probe; // what runs on the SSH thread: followers and sampler, reused every tick
    struct TickResult;
    struct WorkerHostProbe; // one other host that runs workers of the site
    /// Builds and emits the snapshot of a tick: from `result`, or with every row unknown
    /// when the balancer's host could not be read (`result` null, `error` says why).
    void deliver(const TickResult *result, const QString &error = QString());
    void tickWorkerHosts();
    /// The balancer's SshHost: the one given, or, once it is gone, the resolver's for the
    /// inventory host of that name; null when there is none.
    SshHost *balancerHost();
    SshHost *resolveHost(const QString &name) const;
    /// The inventory host a backend's worker runs on (workerHostFor()); empty if none.
    QString hostNameOf(const Backend &backend) const;

    Site m_site;
    QPointer<SshHost> m_host;
    std::shared_ptr<Probe> m_probe;
    QTimer m_timer;
    QElapsedTimer m_sinceLastTick;
    QElapsedTimer m_tickClock;
    qint64 m_lastTickMs = 0;
    bool m_inFlight = false;
    quint64 m_generation = 0; ///< bumped by setSite(): results of an older site are dropped
    ClusterSnapshot m_snapshot;
    QList<Host> m_hosts;
    HostResolver m_resolve;
    QHash<QString, std::shared_ptr<WorkerHostProbe>> m_workerHosts; ///< by backend address
};

/// Adds one tick's `delta` to each row's requestsTotal and sets its requestsPerSecond over a
/// tick of `seconds`; a row is matched by "ADDRESS:PORT" where `addressOf` gives the address
/// the balancer knows it by (e.g. its host's address). Rows absent from `delta` get 0/s.
void applyRequestCounts(QList<WorkerRow> &rows, const RequestCounts &delta, double seconds,
                        const std::function<QString(const WorkerRow &)> &addressOf);

} // namespace corral
