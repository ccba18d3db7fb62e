#pragma once

#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "util/Result.h"

#include <functional>

namespace corral {

class SshSession;

/// How a remove-backend runs (what corralctl remove-backend passes).
struct RemoveBackendOptions {
    /// How long the drained backend may keep requests in flight before its worker is stopped
    /// anyway.
    int drainTimeoutMs = 30000;
    /// nginx/Apache: in flight counts as none once the access log had no new line answered by
    /// the backend for this long.
    int idleMs = 2000;
    /// How long a worker started again after a failure may take to answer its health path.
    int healthTimeoutMs = 15000;
    int verifyTimeoutMs = 10000; ///< of the applies
    /// HAProxy: how long a backend put back after a failure may take until its check reports
    /// it UP (the restore then fails, saying so).
    int balancerUpTimeoutMs = 30000;
    /// Remove the last backend in rotation too (the site then stops serving).
    bool force = false;
    /// Sees every step as it ends: check, drain (or drain/APPLYSTEP), wait, stop,
    /// apply/APPLYSTEP, verify, and after a failure restore/... .
    std::function<void(const ApplyStep &)> onStep;
    /// Asked before each step that changes something: false when the site's lock was lost
    /// (SiteLock::isHeld()). The run stops there (step "lock") and puts nothing back, since
    /// another operation may own the balancer by now. Unset: always held.
    std::function<bool()> lockHeld;
};

/// Takes one backend out of a production site, end to end, without failing a request:
///  1. check: the backend is one of the site's; it is not the last one in rotation (unless
///     `force`).
///  2. drain: HAProxy: `set server corral-SITE/ADDRESS:PORT state drain` on the balancer's
///     stats socket (HaproxyRuntime.h); nginx/Apache: the site's
///     config applied with the backend marked down (validate, reload, verify, rollback).
///  3. wait: until nothing is in flight on it: HAProxy's `show stat` scur reaches 0;
///     nginx/Apache: the access log (Corral's format, NginxLogFollower) had no new line
///     answered by it for `idleMs`. At `drainTimeoutMs` it goes ahead anyway (the detail
///     says how many were left).
///  4. stop: its worker on `workerSession`'s host (stopSiteWorker(): systemctl stop, or the
///     fallback's SIGTERM with the pid file removed).
///  5. apply: the site's config without the backend (validate, reload, verify, rollback).
///  6. verify: the installed config no longer names it.
/// Returns the site without the backend (and its port, unless another backend uses it) for
/// the caller to save. A failure before 5 succeeded leaves the previous config serving: the
/// apply has rolled back, and the backend is put back ("restore": its worker started again
/// and healthy when it was stopped, then HAProxy `state ready` until its check reports it UP,
/// or the site's config applied again). The error names the step ("check: ", "drain: ", "wait: ",
/// "stop: ", "apply/validate: "...) and says what was put back.
Result<Site> removeRemoteBackend(SshSession &balancerSession, SshSession &workerSession,
                                 const Site &site, const RemoteBalancer &target,
                                 const Backend &backend, const RemoveBackendOptions &options);

} // namespace corral
