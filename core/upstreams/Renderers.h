#pragma once

#include "model/Site.h"
#include "upstreams/RenderOptions.h"
#include "util/Result.h"

#include <QString>

#include <optional>

namespace corral {

/// Production balancer configs generated from a site (issue 7). Each returns the whole file
/// the tool expects, or an error naming the offending field when a name or path from the
/// inventory could change the meaning of the config (';', '{', '}', quotes, whitespace,
/// newlines, '$', '#' are never let through).
///
/// Policy mapping (see README "Production balancers"):
///   policy         nginx                         HAProxy                       Apache
///   round-robin    (default)                     balance roundrobin            lbmethod=byrequests
///   weighted       (default) + weight=N          roundrobin + weight N         byrequests +
///   loadfactor=N least-conn     least_conn                    balance leastconn
///   lbmethod=bybusyness ip-hash        ip_hash                       balance source byrequests +
///   stickysession sticky-cookie  hash $cookie_NAME consistent  roundrobin + cookie SERVERID
///   byrequests + stickysession
///                  (ip_hash without a cookie)    insert indirect nocache       =ROUTEID
enum class RenderFormat { Nginx, Haproxy, Apache };

std::optional<RenderFormat> renderFormatFromName(const QString &name);

/// An nginx sites-enabled file (http context): log_format, map, upstream and server blocks.
Result<QString> renderNginx(const Site &site, const RenderOptions &options = {});
/// A complete HAProxy file: global (stats socket), defaults, frontend and backend.
Result<QString> renderHaproxy(const Site &site, const RenderOptions &options = {});
/// An Apache sites-enabled VirtualHost file using mod_proxy_balancer.
Result<QString> renderApache(const Site &site, const RenderOptions &options = {});
Result<QString> render(RenderFormat format, const Site &site, const RenderOptions &options = {});

} // namespace corral
