#include "supervisor/PortAllocator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace corral {

bool PortAllocator::isFree(const QHostAddress &address, quint16 port) {
    const bool v6 = address.protocol() == QAbstractSocket::IPv6Protocol;
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = -1;
    if (v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        const Q_IPV6ADDR raw = address.toIPv6Address();
        std::memcpy(&sa.sin6_addr, &raw, sizeof raw);
        rc = ::bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(address.isNull() ? INADDR_ANY : address.toIPv4Address());
        rc = ::bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa);
    }
    // A bind can succeed while another socket listens on the wildcard address with
    // SO_REUSEADDR set on both; listening settles it the way the worker would.
    if (rc == 0) rc = ::listen(fd, 1);
    ::close(fd);
    return rc == 0;
}

Result<QList<quint16>> PortAllocator::allocate(const QHostAddress &address, quint16 basePort,
                                               int count, const QList<quint16> &remembered,
                                               const QSet<quint16> &reserved, quint16 lastPort) {
    QList<quint16> ports;
    if (count <= 0) return ports;
    const auto take = [&](quint16 port) {
        if (port != 0 && !ports.contains(port) && !reserved.contains(port) && isFree(address, port))
            ports.append(port);
    };
    for (quint16 port : remembered) {
        if (ports.size() == count) break;
        take(port);
    }
    for (uint port = basePort; port <= lastPort && ports.size() < count; ++port)
        take(quint16(port));
    if (ports.size() < count)
        return fail(QStringLiteral("only %1 of %2 ports are free on %3 in %4..%5")
                        .arg(ports.size())
                        .arg(count)
                        .arg(address.toString())
                        .arg(basePort)
                        .arg(lastPort));
    return ports;
}

} // namespace corral
