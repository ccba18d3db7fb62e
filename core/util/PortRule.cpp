#include "util/PortRule.h"

namespace corral {

Result<QList<quint16>> pickPorts(int count, quint16 basePort, const QList<quint16> &remembered,
                                 const QSet<quint16> &reserved,
                                 const std::function<bool(quint16)> &isTaken, const QString &where,
                                 quint16 lastPort) {
    QList<quint16> ports;
    if (count <= 0) return ports;
    const auto take = [&](quint16 port) {
        if (port != 0 && !ports.contains(port) && !reserved.contains(port) && !isTaken(port))
            ports.append(port);
    };
    for (quint16 port : remembered) {
        if (ports.size() == count) break;
        take(port);
    }
    // uint: a quint16 loop variable would wrap at 65535 and never end.
    for (uint port = basePort; port <= lastPort && ports.size() < count; ++port)
        take(quint16(port));
    if (ports.size() < count)
        return fail(QStringLiteral("only %1 of %2 ports are free on %3 in %4..%5")
                        .arg(ports.size())
                        .arg(count)
                        .arg(where)
                        .arg(basePort)
                        .arg(lastPort));
    return ports;
}

} // namespace corral
