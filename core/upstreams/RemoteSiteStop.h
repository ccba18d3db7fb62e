#pragma once

#include "model/Host.h"
#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteRollingRestart.h"
#include "util/Result.h"

#include <QList>
#include <QString>

#include <functional>

namespace corral {

class SshSession;

/// Stops the worker of `site` on `port` on the session's host the way it runs there, as
/// RemoteWorkers::restart() decides it (restartModeCommand()): `systemctl stop` of the
/// instance corral-SITE@PORT where the host runs systemd with the template unit installed and
/// no fallback pid file exists; otherwise RemoteWorkers::stop() (SIGTERM, SIGKILL after
/// `graceMs`, pid file removed, confirmed by the host). The detail says which.
Result<QString> stopSiteWorker(SshSession &session, const Site &site, quint16 port,
                               int graceMs = 5000);
/// The reverse: `systemctl start` of the instance, or RemoteWorkers::start() (which leaves a
/// live worker of the pid file as it is). The detail names the pid when it is known.
Result<QString> startSiteWorker(SshSession &session, const Site &site, quint16 port);

/// How a production site is stopped or started (corralctl stop|start SITE).
struct SiteStopOptions {
    int healthTimeoutMs = 15000; ///< start: how long each worker may take to answer
    int verifyTimeoutMs = 10000; ///< the applies' verify, and stop's check of the 502/503
    /// stop: an HTML page the balancer answers while the site is stopped (nginx: the body of
    /// its 502/503; HAProxy: of its 503; not for Apache). Uploaded to the balancer's state
    /// directory (STATEDIR/SITE-maintenance.html, for HAProxy as a complete HTTP response in
    /// SITE-maintenance.http) and named in the config (RenderOptions::maintenancePage).
    QByteArray maintenancePage;
    /// Each step as it ends: backend empty for the balancer's steps ("down/validate",
    /// "verify", "apply/reload"...), else the worker's ("host", "stop", "start", "health").
    std::function<void(const RollingStep &)> onStep;
};

/// Stops a production site: first the balancer, then the workers.
///  0. maintenance (with a maintenance page): the page uploaded next to the balancer's backups.
///  1. down: the site's config applied with every backend marked down (ConfigApplier:
///     validate, reload, verify, rollback), so the balancer answers every request itself
///     (nginx 502, HAProxy and Apache 503), and a reload keeps it so (HAProxy: `disabled`).
///     Its verify only checks the error log: the probe cannot answer 2xx now.
///  2. verify: the probe URL through the balancer answers 502 or 503 (three times in a row).
///  3. stop: each backend's worker on its host (workerHostFor(), stopSiteWorker()), in order.
/// The inventory is not changed: 'start' brings the site back as it is there. Stops at the
/// first failure; the error names the step ("down/validate: ", "verify: ",
/// "BACKEND: stop: ") and says what is true then: after a failed down nothing changed (the
/// config was rolled back), after it the balancer answers 502/503 and the error lists the
/// workers stopped and those still running. Returns a summary on success.
Result<QString> stopRemoteSite(SshSession &balancer,
                               const RemoteRollingRestart::SessionResolver &sessions,
                               const Site &site, const RemoteBalancer &target,
                               const QList<Host> &hosts, const SiteStopOptions &options = {});

/// Starts a production site stopped by stopRemoteSite() (or never started):
///  1. start: every backend's worker that is not marked down in the inventory, on its host
///     (startSiteWorker(); a running one is left as it is);
///  2. health: each answers its health path there (RemoteWorkers::waitHealthy());
///  3. apply: the site's config as in the inventory (validate, reload, verify: the probe
///     through the balancer answers 2xx/3xx again; rollback on failure).
/// Stops at the first failure, naming the step ("BACKEND: start: ", "BACKEND: health: ",
/// "apply/verify: "); until the apply the balancer still answers 502/503, and the error lists
/// the workers already started (left running: a second start finds them).
Result<QString> startRemoteSite(SshSession &balancer,
                                const RemoteRollingRestart::SessionResolver &sessions,
                                const Site &site, const RemoteBalancer &target,
                                const QList<Host> &hosts, const SiteStopOptions &options = {});

} // namespace corral
