#pragma once

#include <QHash>
#include <QString>

namespace corral {

/// Requests per backend since the last tick, keyed like Backend::key() ("ADDRESS:PORT"):
/// the same shape the embedded proxy's counters give the console. The balancer followers
/// (NginxLogFollower, HaproxyStatFollower) only count; the cluster layer puts the counts into
/// its rows (applyRequestCounts() in cluster/RemoteSiteMonitor.h), so core/upstreams does not
/// depend on core/cluster.
using RequestCounts = QHash<QString, quint64>;

} // namespace corral
