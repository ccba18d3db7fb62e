#pragma once

#include "model/Site.h"
#include "supervisor/WorkerProcess.h"
#include "util/Result.h"

#include <QHash>
#include <QObject>
#include <QPointer>

#include <functional>

namespace corral {

/// How a balancer in front learns about workers. All optional; without a drain hook a worker
/// is stopped at once.
struct BackendHooks {
    /// A worker became ready: put it into rotation.
    std::function<void(const QString &site, quint16 port)> workerReady;
    /// A worker is about to be stopped: stop sending it requests and call `drained` once its
    /// in-flight requests finished.
    std::function<void(const QString &site, quint16 port, std::function<void()> drained)>
        drainWorker;
    /// A worker left service (crashed, failed or being stopped): take it out of rotation.
    std::function<void(const QString &site, quint16 port)> workerGone;
    /// A worker was removed for good (scaled down, site stopped): forget the backend.
    std::function<void(const QString &site, quint16 port)> workerRemoved;
};

/// Runs the workers of local sites: allocates their ports, supervises each process, scales,
/// and performs rolling restarts. Never hands one port to two workers of any site.
class Supervisor : public QObject {
    Q_OBJECT
public:
    explicit Supervisor(SupervisionPolicy policy = {}, QObject *parent = nullptr);
    ~Supervisor() override;

    void setBackendHooks(BackendHooks hooks) { m_hooks = std::move(hooks); }
    /// Ports held by sites outside this supervisor (e.g. remembered in the inventory).
    void setReservedPorts(const QSet<quint16> &ports) { m_reserved = ports; }

    /// Allocates `site.workers` ports (its remembered `site.ports` first) and starts a worker on
    /// each. Fails without starting anything when the site has no command or ports run out.
    Result<void> startSite(const Site &site);
    /// Drains and stops every worker of the site; emits siteStopped() when all are stopped.
    void stopSite(const QString &site);
    /// Stops every site; emits allStopped() when done (at once when nothing runs).
    void stopAll();

    /// Starts or drains-and-stops workers (highest ports first) to reach `count`.
    Result<void> setWorkerCount(const QString &site, int count);
    /// Drains, stops and removes one worker; its port is given up.
    Result<void> removeWorker(const QString &site, quint16 port);
    /// Restarts one worker (drained first when it is serving).
    Result<void> restartWorker(const QString &site, quint16 port);
    /// Replaces workers one at a time with `newConfig` (the site's command may have changed):
    /// each replacement must be ready before the next worker is touched. A replacement that
    /// fails halts the rollout; the workers not yet replaced keep serving.
    Result<void> rollingRestart(const Site &newConfig);
    bool isRollingOut(const QString &site) const { return m_rollouts.contains(site); }

    QStringList sites() const { return m_sites.keys(); }
    bool hasSite(const QString &site) const { return m_sites.contains(site); }
    const Site *site(const QString &name) const;
    QList<quint16> ports(const QString &site) const;
    QList<const WorkerProcess *> workers(const QString &site) const;
    const WorkerProcess *worker(const QString &site, quint16 port) const;
    /// Every port any managed worker holds.
    QSet<quint16> usedPorts() const;

Q_SIGNALS:
    void workerStateChanged(const QString &site, quint16 port, qint64 pid,
                            corral::WorkerState state, const QString &cause);
    /// The site's ports changed (started, scaled); persist them to keep ports stable.
    void portsChanged(const QString &site, const QList<quint16> &ports);
    void rollingRestartProgress(const QString &site, int replaced, int total);
    void rollingRestartFinished(const QString &site, bool succeeded, const QString &message);
    void siteStopped(const QString &site);
    void allStopped();

private:
    struct SiteRun {
        Site config;
        QList<WorkerProcess *> workers; // ordered by port
    };
    struct Rollout {
        Site config;
        QList<quint16> pending;
        int total = 0;
        quint16 current = 0;
    };

    WorkerSpec specFor(const Site &site, quint16 port) const;
    WorkerProcess *addWorker(SiteRun &run, quint16 port);
    static void sortByPort(QList<WorkerProcess *> &workers);
    /// A free port for `worker`, whose port `taken` another process holds.
    Result<quint16> relocate(const WorkerProcess *worker, quint16 taken);
    void onWorkerMoved(WorkerProcess *worker, quint16 from, quint16 to, const QString &reason);
    WorkerProcess *findWorker(const QString &site, quint16 port) const;
    /// Takes the worker out of the site and retires it; workerRemoved fires once it stopped.
    void detachWorker(SiteRun &run, WorkerProcess *worker);
    /// Drains (through the hook) then stops; `then` runs once the worker is stopped.
    void retire(WorkerProcess *worker, std::function<void()> then);
    void onWorkerState(WorkerProcess *worker, WorkerState state, const QString &cause);
    void continueRollout(const QString &site);
    void finishRollout(const QString &site, bool succeeded, const QString &message);
    void checkStopped(const QString &site);

    SupervisionPolicy m_policy;
    BackendHooks m_hooks;
    QSet<quint16> m_reserved;
    QHash<QString, SiteRun> m_sites;
    QHash<QString, Rollout> m_rollouts;
    QSet<QString> m_stoppingSites;
    bool m_stoppingAll = false;
    QHash<WorkerProcess *, std::function<void()>> m_afterStop;
};

} // namespace corral
