#pragma once

#include "model/Host.h"
#include "model/Site.h"
#include "remote/RemoteWorkers.h"
#include "upstreams/ConfigApplier.h"
#include "util/Result.h"

#include <QHash>
#include <QList>
#include <QString>
#include <QStringList>

#include <functional>

namespace corral {

class SshSession;

/// The inventory host that runs the worker behind `backend`: 127.0.0.1, ::1 and localhost
/// run on the balancer's host (`balancerHost`, an inventory host name); otherwise the host of
/// `hosts` whose address equals the backend's; otherwise any other loopback address is the
/// balancer's host too, and a host whose name equals the address is that host. An error
/// names the backend when nothing matches.
Result<QString> workerHostFor(const Backend &backend, const QString &balancerHost,
                              const QList<Host> &hosts);
/// True for 127.0.0.0/8, ::1 and "localhost" (brackets around IPv6 allowed).
bool isLoopbackAddress(const QString &address);

/// One step of a rolling restart as it happens: `step` is host, drain, restart, health or
/// enable (or an apply step of a drain/enable through the balancer's config, prefixed
/// "drain/" or "enable/").
struct RollingStep {
    QString backend; ///< Backend::key()
    QString step;
    bool ok = true;
    QString detail;
};

/// Where one backend stands after a rolling restart ended, as far as Corral knows.
struct RollingBackendState {
    enum class State {
        Restarted,      ///< a new worker serves it and it is back in rotation
        Untouched,      ///< neither taken out of rotation nor restarted
        BackInRotation, ///< was taken out, then put back after the run failed at it
        OutOfRotation,  ///< still drained or marked down in the installed config (detail: why)
    };
    QString backend; ///< Backend::key()
    State state = State::Untouched;
    QString detail; ///< one sentence: what is true of it now

    /// "127.0.0.1:3001 back in rotation (DETAIL)", as the CLI and the console show it.
    QString describe() const;
};

struct RollingRestartReport {
    QStringList restarted; ///< backend keys, in order, that were restarted and are back
    QString failedBackend; ///< the backend the run stopped at; empty on success
    QList<RollingStep> steps;
    QString error; ///< "BACKEND: STEP: reason"; empty on success
    /// Every backend of the site, in order, once the run ended (empty when it refused to
    /// start: then nothing was touched).
    QList<RollingBackendState> backends;

    bool ok() const { return error.isEmpty(); }
    /// "A restarted; B back in rotation (...); C untouched": what each backend's state is.
    QString describeBackends() const;
};

/// What the preflight found behind one backend before anything was touched.
struct BackendCheck {
    QString backend; ///< Backend::key()
    QString host;    ///< the inventory host that runs its worker (workerHostFor())
    WorkerInspection worker;
    /// Corral can restart it: its pid file names a live process that holds the port (or
    /// nothing holds it yet), or its systemd unit is installed, or nothing runs there and the
    /// site has a command to start it with.
    bool restartable = false;
    /// Not restartable, but adopt() can record the process that holds the port.
    bool adoptable = false;
    QString detail; ///< what runs there, or why Corral cannot restart it
};

/// A worker Corral did not start, to be recorded as the site's (RemoteRollingRestart::adopt).
struct WorkerAdoption {
    QString backend;
    QString host;
    quint16 port = 0;
    PortHolder process;
    QString pidFile; ///< absolute, on the host
};

/// What adopting a site's foreign workers would do, to show before it is confirmed.
struct AdoptionPlan {
    QList<WorkerAdoption> workers;
    /// The site with command, args (and working directory) taken from the first worker's
    /// command line when it had no command; otherwise unchanged.
    Site site;
    bool siteChanged = false;
    QStringList notes; ///< doubts to read before confirming (differing or port-less commands)
};

/// Restarts a site's backends one at a time through its production balancer, so the site
/// keeps serving:
///  1. drain: HAProxy: the runtime API on the balancer's host (`set server corral-SITE/NAME
///     state drain` through socat on the stats socket in the balancer's runtimeDirectory),
///     then wait until the server's current sessions (`show stat` scur) reach 0 or the drain
///     timeout passes (the restart goes ahead then). nginx and Apache have no runtime API in
///     their free versions: the config is applied again with that backend marked down
///     (ConfigApplier: validated, reloaded gracefully, verified, rolled back on failure).
///  2. restart: RemoteWorkers::restart() of the worker on its host (workerHostFor()).
///  3. health: RemoteWorkers::waitHealthy() there.
///  4. enable: HAProxy `set server ... state ready`, then wait until HAProxy's own health
///     check reports the server UP (`show stat` status) before the next backend is drained:
///     right after a restart its check may still hold it DOWN (rise 2 × inter 2 s), and
///     draining the next one then leaves no server. nginx/Apache: the site's config applied
///     as it is in the inventory (no active checks: the reloaded config routes to it at once).
/// Before any of that, a preflight (preflight()) checks every backend: it must be a worker
/// Corral can restart. Workers Corral did not start (a site made with --backends or by
/// import) are named with the process holding their port, and the run refuses without
/// touching anything; adopt() records them so a later run can replace them.
/// The run stops at the first failing step. A backend it took out of rotation is put back
/// (step "enable" again: HAProxy `state ready`; nginx/Apache: the site's config applied
/// again, without waiting for the failed worker to be healthy), unless the site's
/// lock was lost; the backends after it are not touched; those before it were restarted and
/// are back in rotation. The report says where each backend stands (backends).
/// Backends marked down in the site are restarted without drain and enable. A site needs at
/// least two backends in rotation: draining the only one would stop the service; and at
/// HAProxy a backend is drained only once another one is UP there (waited for up to the
/// balancer-up timeout, else the run stops at "drain" with nothing drained).
/// Blocking, like ConfigApplier: run it in a command-line tool or on an SshHost thread.
class RemoteRollingRestart {
public:
    /// A connected session to an inventory host, by name (the balancer's host included). The
    /// sessions stay owned by the resolver's owner.
    using SessionResolver = std::function<Result<SshSession *>(const QString &hostName)>;

    RemoteRollingRestart(SshSession &balancerSession, SessionResolver workerSessions);

    void setStepCallback(std::function<void(const RollingStep &)> callback) {
        m_onStep = std::move(callback);
    }
    /// How long a drained HAProxy server may keep sessions before the restart goes ahead.
    void setDrainTimeoutMs(int ms) { m_drainTimeoutMs = ms; }
    void setHealthTimeoutMs(int ms) { m_healthTimeoutMs = ms; }
    /// How long an enabled HAProxy server may take until HAProxy's check reports it UP.
    void setBalancerUpTimeoutMs(int ms) { m_balancerUpTimeoutMs = ms; }
    /// Verify timeout of the applies that drain and enable through nginx/Apache configs.
    void setVerifyTimeoutMs(int ms) { m_verifyTimeoutMs = ms; }
    /// Asked before each backend is taken out of rotation and before it is put back: false
    /// when the site's lock is gone (SiteLock::isHeld(): its connection died, and a session
    /// that reconnected carries on without it). The run then stops there (step "lock"), since
    /// another operation may already be running on the site.
    void setLockCheck(std::function<bool()> stillHeld) { m_lockHeld = std::move(stillHeld); }
    /// Restart only the backend whose Backend::key() is `backendKey` (corralctl restart SITE
    /// --worker): the same preflight, drain, restart, health and enable, the others untouched.
    /// An unknown key fails naming the site's backends. Empty: every backend.
    void setOnly(const QString &backendKey) { m_only = backendKey; }
    /// With setOnly(): when that backend is the only one in rotation, restart it anyway,
    /// without drain and enable (the site does not answer while it restarts). Without it such
    /// a run refuses before anything is touched.
    void setForce(bool force) { m_force = force; }

    /// `site` with its balancer, `target` from RemoteBalancer::fromSite() (or adjusted),
    /// `hosts` the inventory's hosts for workerHostFor().
    RollingRestartReport run(const Site &site, const RemoteBalancer &target,
                             const QList<Host> &hosts);

    /// Inspects every backend's worker on its host (one command each, nothing changed). Fails
    /// only when a host cannot be resolved or reached.
    Result<QList<BackendCheck>> preflight(const Site &site, const QList<Host> &hosts);
    /// The refusal for checks with backends that are not restartable: each one with its host,
    /// who holds its port (pid and command) and how to adopt it.
    static QString describeRefusal(const Site &site, const QList<BackendCheck> &checks);
    /// What adopting the foreign workers among `checks` would record; fails naming every
    /// backend that can be neither restarted nor adopted.
    static Result<AdoptionPlan> planAdoption(const Site &site, const QList<BackendCheck> &checks);
    /// Writes the pid file of each worker of `plan` on its host (RemoteWorkers::adopt()).
    /// Stops at the first failure; the error says which were recorded before it.
    Result<void> adopt(const AdoptionPlan &plan);

private:
    // HAProxy's runtime API (upstreams/HaproxyRuntime.h) over the balancer's session.
    Result<void> haproxy(const QString &socket, const QString &command);
    Result<QString> drainHaproxy(const QString &socket, const QString &proxy,
                                 const QString &server);
    Result<QByteArray> haproxyStat(const QString &socket);
    /// Polls `show stat` until the server's status is UP; the detail says how long it took.
    /// Polls `show stat` until one of `servers` is UP (returns it), or fails at the
    /// balancer-up timeout naming each one's status.
    Result<QString> waitAnotherUp(const QString &socket, const QString &proxy,
                                  const QStringList &servers);
    Result<QString> waitHaproxyUp(const QString &socket, const QString &proxy,
                                  const QString &server);

    /// $HOME on the session's host, asked once per session for absolute paths in messages.
    QString homeOf(SshSession &session);

    SshSession &m_balancer;
    SessionResolver m_sessions;
    QHash<SshSession *, QString> m_homes;
    std::function<void(const RollingStep &)> m_onStep;
    std::function<bool()> m_lockHeld;
    QString m_only;
    bool m_force = false;
    int m_drainTimeoutMs = 30000;
    int m_healthTimeoutMs = 15000;
    int m_balancerUpTimeoutMs = 30000;
    int m_verifyTimeoutMs = 10000;
};

} // namespace corral
