#pragma once

#include "model/Backend.h"
#include "model/Site.h"
#include "util/Result.h"

#include <QList>
#include <QString>

namespace corral {

/// One `server` line of an nginx upstream block.
struct NginxUpstreamServer {
    Backend backend;  ///< address, port (80 when omitted), weight, backup, down
    int maxFails = 1; ///< nginx's defaults when the line does not say
    int failTimeoutMs = 10000;
    int line = 0;
};

/// An nginx `upstream NAME { ... }` block.
struct NginxUpstream {
    QString name;
    /// The balancing directive as written: "round-robin" (none), "least_conn", "ip_hash",
    /// "random ...", "hash KEY [consistent]".
    QString method;
    BalancingPolicy policy = BalancingPolicy::RoundRobin; ///< closest inventory policy
    int keepalive = 0;
    QList<NginxUpstreamServer> servers;
    int line = 0;
};

/// One `server` line of an HAProxy backend or listen section.
struct HaproxyServer {
    QString name;
    Backend backend; ///< `disabled` maps to down
    QString cookie;  ///< the server's `cookie` value, if any
    int line = 0;
};

/// An HAProxy `backend NAME` (or `listen NAME`) section.
struct HaproxyBackend {
    QString name;
    QString balance = QStringLiteral("roundrobin"); ///< the algorithm as written
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    QString cookie; ///< the `cookie NAME ...` stickiness cookie, if any
    QList<HaproxyServer> servers;
    int line = 0;
};

/// Reads every upstream block from nginx configuration text (read-only import of a host's
/// existing setup). Comments, quoting and other blocks are understood; errors name the line.
Result<QList<NginxUpstream>> parseNginxUpstreams(const QString &text);

/// Reads every backend and listen section from HAProxy configuration text; errors name the
/// line.
Result<QList<HaproxyBackend>> parseHaproxyBackends(const QString &text);

} // namespace corral
