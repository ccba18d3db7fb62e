#pragma once

#include "model/Host.h"
#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "util/Result.h"

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

struct RollingRestartReport {
    QStringList restarted; ///< backend keys, in order, that were restarted and are back
    QString failedBackend; ///< the backend the run stopped at; empty on success
    QList<RollingStep> steps;
    QString error; ///< "BACKEND: STEP: reason"; empty on success

    bool ok() const { return error.isEmpty(); }
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
/// The run stops at the first failing step. The failed backend then stays out of rotation
/// (drained, or marked down in the installed config) and the backends after it are not
/// touched; those before it were restarted and are back in rotation. `corralctl apply` (or a
/// new rolling restart) puts the failed one back once it is fixed.
/// Backends marked down in the site are restarted without drain and enable. A site needs at
/// least two backends in rotation: draining the only one would stop the service.
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

    /// `site` with its balancer, `target` from RemoteBalancer::fromSite() (or adjusted),
    /// `hosts` the inventory's hosts for workerHostFor().
    RollingRestartReport run(const Site &site, const RemoteBalancer &target,
                             const QList<Host> &hosts);

    /// The runtime API command `command` sent to an HAProxy stats socket (socat on the host).
    static QString haproxyCommand(const QString &socketPath, const QString &command);
    /// HAProxy's name of a backend's server, as the renderer writes it ("ADDRESS:PORT").
    static QString haproxyServerName(const Backend &backend);
    /// The current sessions (scur) of server `server` of proxy `backend` in `show stat` CSV.
    static Result<int> parseCurrentSessions(const QByteArray &csv, const QString &backend,
                                            const QString &server);
    /// Column `column` (scur, status, check_status...) of server `server` of proxy `backend`
    /// in `show stat` CSV.
    static Result<QString> parseStatField(const QByteArray &csv, const QString &backend,
                                          const QString &server, const QString &column);

private:
    Result<void> haproxy(const QString &socket, const QString &command);
    Result<QString> drainHaproxy(const QString &socket, const QString &proxy,
                                 const QString &server);
    Result<QByteArray> haproxyStat(const QString &socket);
    /// Polls `show stat` until the server's status is UP; the detail says how long it took.
    Result<QString> waitHaproxyUp(const QString &socket, const QString &proxy,
                                  const QString &server);

    SshSession &m_balancer;
    SessionResolver m_sessions;
    std::function<void(const RollingStep &)> m_onStep;
    std::function<bool()> m_lockHeld;
    int m_drainTimeoutMs = 30000;
    int m_healthTimeoutMs = 15000;
    int m_balancerUpTimeoutMs = 30000;
    int m_verifyTimeoutMs = 10000;
};

} // namespace corral
