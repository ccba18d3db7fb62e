#pragma once

#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteRollingRestart.h"
#include "util/Result.h"

#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>

namespace corral {

class HostSessions;
class Inventory;
class SiteLock;
class SshSession;

/// Who runs an operation and how it behaves around the site's lock: the same for every
/// operation of one front end.
struct RemoteSiteOptions {
    QString inventoryPath;
    /// Names the front end in lock holders and journals: "corralctl" or "Corral console".
    QString actor = QStringLiteral("corralctl");
    /// Fail at once, naming the holder, when another operation holds the site.
    bool noWait = false;
    /// Called once when the site is locked by `holder` and the operation waits for it.
    std::function<void(const QString &holder)> onWaiting;
    /// Progress lines that are not steps ("reconciling an interrupted add-backend ...").
    std::function<void(const QString &note)> onNote;
};

/// How an operation on a production site ended.
struct SiteOutcome {
    QString error;     ///< empty on success; names the step that failed and what is now true
    Site site;         ///< the site as saved in the inventory afterwards (on success)
    QString backend;   ///< the backend added or removed (Backend::key()); empty otherwise
    QStringList notes; ///< things to know that are not failures (a journal not cleared)
    bool ok() const { return error.isEmpty(); }
};

/// A rolling restart as a front end asks for it.
struct RollingRestartRequest {
    int drainTimeoutMs = 30000;
    int healthTimeoutMs = 15000;
    /// Record running workers Corral did not start before restarting (see
    /// RemoteRollingRestart::adopt); `confirm` is asked with the plan and may decline.
    bool adopt = false;
    std::function<bool(const AdoptionPlan &plan)> confirmAdoption;
    std::function<void(const RollingStep &step)> onStep;
};

/// What a rolling restart did, beyond its report.
struct RollingRestartOutcome {
    RollingRestartReport report;
    QStringList adopted; ///< backends whose workers were adopted first
};

/// One add or remove of a scale (RemoteSite::scaleTo), reported as it begins (`done` false)
/// and as it ends.
struct ScaleChange {
    bool adding = true;
    QString host;    ///< the inventory host of the worker added or removed
    QString backend; ///< Backend::key(); for an add, empty until it is done
    int from = 0;    ///< the site's backends before this change
    int to = 0;      ///< and after it, once it succeeded
    bool done = false;
    QString error; ///< when done: why it failed (then the scale stops); empty on success
};

/// A remove-backend, restart of one worker, stop, start or scale as a front end asks for it.
struct SiteChangeRequest {
    int drainTimeoutMs = 30000;  ///< a drained backend may keep requests this long
    int healthTimeoutMs = 15000; ///< a started worker may take this long to answer
    /// Remove the last backend in rotation too / restart the only one without drain.
    bool force = false;
    /// stop: the HTML page the balancer answers while the site is stopped
    /// (SiteStopOptions::maintenancePage); empty: its own 502/503.
    QByteArray maintenancePage;
    /// Every step as it ends (backend empty for the balancer's own steps and for the steps
    /// of an add, whose backend exists only at its end).
    std::function<void(const RollingStep &step)> onStep;
    /// scaleTo: each add or remove as it begins and as it ends.
    std::function<void(const ScaleChange &change)> onScaleChange;
};

/// What to read of a production site's logs, and where each piece goes.
struct LogRequest {
    QString only; ///< a backend "ADDRESS:PORT", "balancer", or empty: every log
    int lines = 50;
    bool follow = false;
    const std::atomic<bool> *cancel = nullptr; ///< ends a follow when set
    /// The logs that will be read, by name, before any is (e.g. to align their prefixes).
    std::function<void(const QStringList &names)> onSources;
    /// A log that cannot be read (its host unreachable, its reader failed), with why.
    std::function<void(const QString &name, const QString &error)> onUnreadable;
    /// Every host is connected (any prompt answered); following starts now.
    std::function<void()> onFollowing;
    std::function<void(const QString &name, const QByteArray &line)> onLine;
};

/// An apply as a front end asks for it.
struct ApplyRequest {
    bool dryRun = false; ///< diff only: nothing written, no lock taken
    /// The diff the user reviewed (the console's Apply dialog): when the host's file changed
    /// since, nothing is applied and the outcome is `stale` with the new diff.
    std::optional<QString> reviewedDiff;
    std::function<void(const QString &diff)> onDiff;
    std::function<void(const ApplyStep &step)> onStep;
};

struct SiteApplyOutcome {
    QString error;      ///< refused before the apply ran (site, session, lock, journal)
    ApplyReport report; ///< the apply's own report (its error says what is true on the host)
    bool stale = false; ///< reviewedDiff no longer matches: nothing applied, report.diff is new
    QString where;      ///< "HOST:CONFIGPATH"
    bool ok() const { return error.isEmpty() && !stale && report.ok(); }
};

/// A production site (one with a balancer, its workers on SSH hosts) and every operation on
/// it, the same for corralctl and the console, which only present them: each one loads the
/// inventory, opens the sessions it needs through `sessions` (one per host), takes the site's
/// lock on the balancer host (SiteLock: one operation at a time, from any front end),
/// settles an interrupted add-backend first (the journal next to the inventory), runs its
/// steps (core/upstreams: RemoteAddBackend, RemoteRollingRestart, ConfigApplier...), and
/// saves the inventory atomically when the site changed. Every remote command runs under an
/// SshTrace::Operation labelled "OPERATION SITE". Blocking: call it from a command-line tool
/// or a worker thread (the console runs it on the balancer host's SshHost thread).
class RemoteSite {
public:
    RemoteSite(QString siteName, HostSessions &sessions, RemoteSiteOptions options);
    ~RemoteSite();
    RemoteSite(const RemoteSite &) = delete;
    RemoteSite &operator=(const RemoteSite &) = delete;

    const QString &name() const { return m_name; }

    /// One more worker on inventory host `workerHost` (empty: the balancer's host), behind
    /// the balancer (addRemoteBackend()), recorded in the journal until the inventory holds it.
    /// The new worker may take `healthTimeoutMs` to answer its health path.
    SiteOutcome addBackend(const QString &workerHost,
                           const std::function<void(const ApplyStep &)> &onStep,
                           int healthTimeoutMs = 15000);

    /// Restarts every backend one at a time through the balancer (RemoteRollingRestart).
    RollingRestartOutcome rollingRestart(const RollingRestartRequest &request);

    /// Takes backend `backend` (Backend::key(), "ADDRESS:PORT") out of the site without
    /// failing a request (removeRemoteBackend(): drain, wait, stop, apply without it, verify)
    /// and saves the inventory without it. Refuses the last backend in rotation unless forced.
    SiteOutcome removeBackend(const QString &backend, const SiteChangeRequest &request);
    /// Restarts the worker of one backend through the balancer (drain, restart, health, port
    /// held by the new process, enable), the others untouched.
    RollingRestartOutcome restartWorker(const QString &backend, const SiteChangeRequest &request);
    /// Every backend marked down at the balancer (it answers 502/503 itself), then every
    /// worker stopped (stopRemoteSite()). The inventory is unchanged.
    SiteOutcome stop(const SiteChangeRequest &request);
    /// The reverse, verified through the balancer (startRemoteSite()).
    SiteOutcome start(const SiteChangeRequest &request);
    /// Grows or shrinks the site to `workers` backends, one add or remove at a time (each a
    /// whole operation with its own lock, journal and inventory save), stopping at the first
    /// failure: the changes before it stay done and saved. New workers go to the host with the
    /// fewest of the site's workers (ties: the first listed) among `hosts` (inventory SSH
    /// hosts, checked before anything changes) or, when empty, the site's worker hosts: its
    /// `hosts` that are SSH hosts, then those running its backends (the balancer's host only
    /// when it runs one, or when there is no other). Removal takes backends out of rotation
    /// first (down, then backup), then one on the host with the most of the site's workers,
    /// the most recently added there. Scaling to 0 needs `request.force`. `onStep` sees the
    /// steps of every add and remove, `onScaleChange` each change.
    SiteOutcome scaleTo(int workers, const QStringList &hosts, const SiteChangeRequest &request);

    /// The logs of the site, read where they are (RemoteLogs: journalctl or the fallback log
    /// of each worker on its host, the balancer's error log as "balancer"): `request.only` one
    /// backend ("ADDRESS:PORT") or "balancer", empty for all. Every host is connected once
    /// before anything is read; a log whose host cannot be reached is named once (onUnreadable)
    /// and the others are read. The last `lines` lines of each go to onLine with the log's
    /// name; with `follow`, every line written after them too, until `*cancel` is set (the
    /// readers on the hosts end with their channels). Reads only: no lock. Fails when the
    /// site has no such log, or a followed reader ends by itself.
    Result<void> logs(const LogRequest &request);

    /// Renders the site's balancer config and applies it transactionally (ConfigApplier:
    /// validate, reload, verify, roll back), or only diffs it (dryRun, reviewedDiff check).
    SiteApplyOutcome apply(const ApplyRequest &request);

    /// Settles an interrupted add-backend recorded in the journal (adopts or stops it).
    /// Succeeds with notes "nothing pending" when there is none.
    SiteOutcome reconcile();

    /// The inventory host that runs the worker of `backend` ("ADDRESS:PORT") of `site`
    /// (loopback backends: the balancer's host); an error names the backend.
    static Result<QString> workerHostOf(const Site &site, const QString &backend,
                                        const QList<Host> &hosts);

    /// The balancer target of `site`, or an error naming the site and what is missing.
    static Result<RemoteBalancer> targetOf(const Site &site, const QString &operation,
                                           const QString &inventoryPath);

private:
    /// What an operation holds while it runs: the inventory as loaded, the site, its
    /// balancer target and session, and the lock.
    struct Held;
    /// Loads the inventory, the site and its balancer target, for `operation`.
    Result<std::unique_ptr<Held>> begin(const QString &operation);
    /// Opens the balancer's session and takes the site's lock there.
    Result<void> lock(Held &held);
    Result<void> reconcilePending(Held &held);
    /// begin(), lock() and reconcilePending() for operations that change the site; the error
    /// is prefixed "OPERATION SITE: " like every refusal of that operation.
    Result<std::unique_ptr<Held>> beginLocked(const QString &operation);
    SiteOutcome stopOrStart(bool stopping, const SiteChangeRequest &request);
    /// " (site S also has an interrupted operation pending in JOURNAL: run ...)" or empty.
    QString pendingNote() const;
    void note(const QString &line) const;

    QString m_name;
    HostSessions &m_sessions;
    RemoteSiteOptions m_options;
};

} // namespace corral
