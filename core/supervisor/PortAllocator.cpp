#include "supervisor/PortAllocator.h"

#include "util/PortRule.h"

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
    return pickPorts(
        count, basePort, remembered, reserved, [&](quint16 port) { return !isFree(address, port); },
        address.toString(), lastPort);
}

} // namespace corral
