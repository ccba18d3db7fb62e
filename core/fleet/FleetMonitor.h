#pragma once

#include "fleet/FleetSnapshot.h"
#include "fleet/PollScheduler.h"
#include "model/Host.h"
#include "model/Site.h"

#include <QHash>
#include <QObject>
#include <QPointer>

#include <functional>
#include <memory>

namespace corral {

class SshHost;

/// Every host and every production site of the inventory, polled for the fleet overview:
/// per host and round, ONE batched command (BatchedCommand) over the host's kept SSH
/// session: its load, CPU and memory (RemoteProcSampler's machine part), the pid-file status
/// of every production worker on it (RemoteWorkers::statusCommand, per site), and, for each
/// site whose balancer runs there, the balancer's counters (NginxLogFollower for nginx and
/// Apache, HaproxyStatFollower), requests and 5xx per backend. Rounds are paced by a
/// PollScheduler (bounded concurrency, per-host timeout, back-off), so a slow or dead host
/// is shown as such within its timeout and never delays the others.
///
/// updated() is emitted once per interval with the latest answer of every host (a host that
/// has not answered again keeps its last values, its row marked unreachable once its poll
/// failed), so live hosts update every tick whatever the slow ones do. The local machine is
/// the first host row (local = true), read from /proc here; its sites belong to the agent
/// and are not in `sites` rows.
class FleetMonitor : public QObject {
    Q_OBJECT

public:
    /// The SshHost that polls an inventory host (the console's HostConnections::host(),
    /// bench_fleet's own pool); null: that host is shown unreachable ("not connected").
    using HostResolver = std::function<SshHost *(const Host &host)>;

    explicit FleetMonitor(QObject *parent = nullptr);
    ~FleetMonitor() override;

    void setOptions(const PollOptions &options);
    const PollOptions &options() const;

    /// The inventory's SSH hosts (polled) and its sites (those with a balancer are counted);
    /// calling it again with an unchanged inventory keeps every follower and rate.
    void setInventory(const QList<Host> &hosts, const QList<Site> &sites, HostResolver resolve);

    void start(); ///< polls now and every options().intervalMs
    void stop();
    void tick(); ///< one round now (hosts still in flight are skipped)

    /// The latest state (what updated() last carried).
    const FleetSnapshot &snapshot() const { return m_snapshot; }
    /// The most polls that ran at once so far (never above options().maxConcurrent).
    int maxSessionsInFlight() const;

Q_SIGNALS:
    void updated(const corral::FleetSnapshot &snapshot);
    /// Every host of a round answered, failed or timed out: the round's wall time.
    void roundFinished(qint64 elapsedMs);

private:
    struct HostProbe; // per host: its sampler, followers and last answer (lives on its SSH thread
                      // while a poll runs)
    struct SiteCounters; // per production site: requests and 5xx per backend, rates (UI thread)
    struct LocalVitals;  // the console's own machine, from /proc
    void poll(const QString &hostName, PollScheduler::Done done);
    void rebuildSnapshot();
    void emitSnapshot();

    PollScheduler *m_scheduler = nullptr;
    QList<Host> m_hosts;
    QList<Site> m_sites;
    HostResolver m_resolve;
    QHash<QString, std::shared_ptr<HostProbe>> m_probes;
    FleetSnapshot m_snapshot;
    QTimer *m_emitTimer = nullptr; ///< every intervalMs: a round, and updated() if one overran
    QHash<QString, std::shared_ptr<SiteCounters>> m_counters; ///< by site name
    /// site -> backend key -> the inventory host its worker runs on (workerHostFor()), or "".
    QHash<QString, QHash<QString, QString>> m_workerHosts;
    std::unique_ptr<LocalVitals> m_local;
    qint64 m_lastRoundMs = 0;
    bool m_roundOpen = false; ///< tick() started a round the scheduler has not finished
    /// The SshHost whose online() ends the host's back-off, per host (null once deleted).
    QHash<QString, QPointer<SshHost>> m_onlineWatched;
};

} // namespace corral
