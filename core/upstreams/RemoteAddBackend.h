#pragma once

#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "util/Result.h"

namespace corral {

class SshSession;

/// Remote one-click add-backend, end to end over one session: picks a free port on the host,
/// starts a worker there (RemoteWorkers' detached-process fallback), waits until it answers
/// its health path (curl on the host), adds "backendAddress:PORT" to the site's backends and
/// applies the balancer config with `applier` (validate, reload, verify, rollback). Any
/// failure stops the half-started worker; the applier has already restored the config.
/// Returns the site with the new backend (and port) for the caller to save; errors name the
/// step ("allocate: ", "start: ", "health: ", or the apply step).
Result<Site> addRemoteBackend(SshSession &session, ConfigApplier &applier, const Site &site,
                              const RemoteBalancer &target, const QString &backendAddress,
                              int healthTimeoutMs = 15000);

} // namespace corral
