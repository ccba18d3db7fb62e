#pragma once

#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "util/Result.h"

#include <functional>

namespace corral {

class SshSession;

/// Remote one-click add-backend, end to end: picks a free port on the worker's host, starts a
/// worker there (RemoteWorkers' detached-process fallback), waits until it answers its health
/// path (RemoteWorkers::waitHealthy: curl on that host), adds "backendAddress:PORT" to the
/// site's backends and applies the balancer config with `applier` (validate, reload, verify,
/// rollback). Any failure stops the half-started worker; the applier has already restored the
/// config. Returns the site with the new backend (and port) for the caller to save; errors
/// name the step ("allocate: ", "start: ", "health: ", "backend: " or the apply step).
///
/// `workerSession` runs the worker; `applier` is bound to the balancer host's session (the
/// same session when the worker runs on the balancer's host).
Result<Site> addRemoteBackend(SshSession &workerSession, ConfigApplier &applier, const Site &site,
                              const RemoteBalancer &target, const QString &backendAddress,
                              int healthTimeoutMs = 15000);

/// The same with the worker's host and the balancer's host as separate sessions (they may be
/// the same object): an applier is made on `balancerSession`. `onStep` sees the worker steps
/// (allocate, start, health) and then the apply's steps as they finish.
Result<Site> addRemoteBackend(SshSession &workerSession, SshSession &balancerSession,
                              const Site &site, const RemoteBalancer &target,
                              const QString &backendAddress, int healthTimeoutMs,
                              const std::function<void(const ApplyStep &)> &onStep);

} // namespace corral
