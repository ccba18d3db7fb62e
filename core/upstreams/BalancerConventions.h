#pragma once

#include "model/Backend.h"
#include "upstreams/Renderers.h"

#include <QString>

namespace corral {

// The names and paths Corral's balancer configs use, in one place: the renderers write them,
// and the steps, the monitor and the importer that work with a running balancer find things
// by them. A change here changes every config and every lookup together.

/// The block a site's config defines in every balancer format: nginx's upstream, HAProxy's
/// frontend and backend (its "proxy" in the runtime API and `show stat`), Apache's
/// balancer://NAME: "corral-SITE".
QString balancerBlockName(const QString &site);

/// The site a block was rendered for: "corral-shop" gives "shop"; any other name (a
/// hand-written config, or "corral-" alone) is returned as it is.
QString siteNameOfBlock(const QString &blockName);

/// HAProxy's server name for a backend: its key ("ADDRESS:PORT") without IPv6 brackets
/// ("::1:3001"). Server names allow letters, digits, '-', '_', '.' and ':'; naming servers
/// after their address lets the runtime API (drain, enable) find a backend by its inventory key.
QString haproxyServerName(const Backend &backend);

/// The log directory a renderer uses when RenderOptions::logDirectory is empty:
/// /var/log/nginx, /var/log/haproxy or /var/log/apache2 (Debian's stock layout).
QString defaultLogDirectory(RenderFormat format);
/// `options.logDirectory`, or the format's default when it is empty.
QString logDirectoryFor(RenderFormat format, const RenderOptions &options);
/// DIRECTORY/SITE.access.log: the access log nginx and Apache write in Corral's format, which
/// the monitor counts requests per backend from.
QString accessLogPath(const QString &logDirectory, const QString &site);
/// DIRECTORY/SITE.error.log.
QString errorLogPath(const QString &logDirectory, const QString &site);

/// The directory of HAProxy's stats socket when RenderOptions::runtimeDirectory is empty.
QString defaultHaproxyRuntimeDirectory();
/// RUNTIMEDIR/corral-SITE.sock: the stats socket (runtime API, level admin) Corral's HAProxy
/// config opens for `site`; an empty `runtimeDirectory` means defaultHaproxyRuntimeDirectory().
QString haproxyStatsSocket(const QString &runtimeDirectory, const QString &site);

} // namespace corral
