#pragma once

// What the affinity check (issue 22) asks about a site, built the same way for every front
// end: the console's Check session affinity and `corralctl check` ask the same endpoints.

#include "affinity/AffinityCheck.h"
#include "model/Host.h"
#include "model/Site.h"
#include "util/Result.h"

#include <QList>
#include <QStringList>

#include <atomic>

namespace corral {

class HostSessions;

/// A local site: its workers on 127.0.0.1 at `workerPorts` (as the agent runs them) and its
/// embedded balancer at `listen` (TLS with site.tls; a wildcard address asked on loopback),
/// all from this machine. `paths` empty: "/".
AffinityTarget localAffinityTarget(const Site &site, const QList<quint16> &workerPorts,
                                   const QStringList &paths);

/// A production site: its backends that are not down (backups last), each asked with curl on
/// the inventory host that runs it (workerHostFor()), and its balancer at its listen address
/// (SiteBalancer::listenText(), a wildcard asked on loopback) from the balancer's host. Fails
/// when the site has no balancer or a backend's host is not in `hosts`.
Result<AffinityTarget> productionAffinityTarget(const Site &site, const QList<Host> &hosts,
                                                const QStringList &paths);

/// Runs the check on a production site over `sessions` (curlFetch(); the fixes say to apply
/// the balancer config). Blocking, bounded by the check's per-request timeouts; a target that
/// cannot be built is the report's error. sticky-broken also names the likeliest cause on a
/// production site: a policy saved but not applied (the balancer runs the config applied
/// before). `*cancel` set: the requests still to make are not made (curlFetch()).
AffinityReport checkProductionAffinity(const Site &site, HostSessions &sessions,
                                       const QStringList &paths,
                                       const std::atomic<bool> *cancel = nullptr);

} // namespace corral
