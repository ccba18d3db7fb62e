#pragma once

#include "util/Result.h"

#include <QHostAddress>
#include <QList>
#include <QSet>

namespace corral {

/// Picks ports that are free right now on a bind address: it tries a bind (SO_REUSEADDR, as
/// Node.js and most servers listen) and skips ports another process holds.
class PortAllocator {
public:
    /// True when a listener could bind `port` on `address` at this moment.
    static bool isFree(const QHostAddress &address, quint16 port);

    /// `count` distinct free ports by the rule remote hosts use too (pickPorts() in
    /// util/PortRule.h), isFree() telling what is taken. Remembered ports (the site's ports from
    /// an earlier run) come first while they are still free; then basePort upwards. Ports in
    /// `reserved` (held by other workers Corral manages, of any site) are never returned. Fails
    /// naming the range when not enough ports are free up to `lastPort`.
    static Result<QList<quint16>> allocate(const QHostAddress &address, quint16 basePort, int count,
                                           const QList<quint16> &remembered = {},
                                           const QSet<quint16> &reserved = {},
                                           quint16 lastPort = 65535);
};

} // namespace corral
