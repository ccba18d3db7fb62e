#pragma once

#include "util/Result.h"

#include <QList>
#include <QSet>
#include <QString>

#include <functional>

namespace corral {

/// The one rule for choosing worker ports, shared by local sites (PortAllocator: a bind test
/// on this machine) and production hosts (RemoteWorkers::allocatePorts(): the host's listening
/// sockets), so a site gets the same ports from either:
///  - `remembered` ports (the site's ports from an earlier run) come first, in their order;
///  - then every port from `basePort` upwards to `lastPort` (65535 unless narrowed);
///  - a port is usable when it is not 0, not picked already, not in `reserved` (held by other
///    workers Corral manages, which may not be listening right now) and `isTaken` says nothing
///    holds it (asked only for ports that pass the other checks, as it may cost a syscall);
///  - fewer than `count` usable ports fail with "only N of COUNT ports are free on WHERE in
///    BASE..LAST", `where` naming the address or host.
/// `count` <= 0 gives no ports.
Result<QList<quint16>> pickPorts(int count, quint16 basePort, const QList<quint16> &remembered,
                                 const QSet<quint16> &reserved,
                                 const std::function<bool(quint16)> &isTaken, const QString &where,
                                 quint16 lastPort = 65535);

} // namespace corral
