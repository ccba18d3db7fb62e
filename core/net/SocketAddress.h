#pragma once

// An IP address and port as the sockaddr that bind() and connect() take.

#include <QHostAddress>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

namespace corral::net {

/// Fills `out` with `host`:`port` (IPv4 or IPv6, as `host` is) and returns its length.
inline socklen_t ipSocketAddress(const QHostAddress &host, quint16 port, sockaddr_storage &out) {
    out = sockaddr_storage{};
    if (host.protocol() == QAbstractSocket::IPv6Protocol) {
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        const Q_IPV6ADDR raw = host.toIPv6Address();
        std::memcpy(&in6.sin6_addr, &raw, sizeof in6.sin6_addr);
        std::memcpy(&out, &in6, sizeof in6);
        return sizeof in6;
    }
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(host.toIPv4Address());
    std::memcpy(&out, &in, sizeof in);
    return sizeof in;
}

} // namespace corral::net
