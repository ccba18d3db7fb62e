#pragma once

#include "util/Result.h"

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

namespace corral {

/// host:port, the address of a listener.
struct Endpoint {
    QString host;
    quint16 port = 0;

    QString toString() const;
    /// Parses "HOST:PORT" or "[IPV6]:PORT".
    static Result<Endpoint> parse(const QString &text);
    bool operator==(const Endpoint &) const = default;
};

/// The request target a worker's health is checked with: `healthPath` itself, "/" when it is
/// empty, and a relative one ("health") taken from the root ("/health").
QString healthRequestPath(const QString &healthPath);
/// The one health-URL builder, for every check of a worker (the local readiness probe's Host,
/// curl on a production host, the monitor's probes): "http://HOST:PORT" with an IPv6 address
/// in brackets (Endpoint::toString()), then healthRequestPath(healthPath).
QString healthUrl(const Endpoint &worker, const QString &healthPath);

/// True for an IPv4 or IPv6 address as Corral writes it into configs: digits, hex digits,
/// '.' and ':' only, and for IPv6 an optional zone id ("fe80::1%eth0") of 1 to 15 letters,
/// digits, '_', '.' or '-' (an interface name or number; QHostAddress alone takes anything
/// after the '%', quotes and newlines included).
bool isIpAddress(const QString &text);
/// True for an IP address (isIpAddress) or a DNS host name of letters, digits and '-' labels.
bool isHostNameOrAddress(const QString &text);
/// Why `host` is not a host name or IP address, or an empty string when it is one.
QString hostProblem(const QString &host);

/// One upstream server of a site's balancer, with nginx's per-server flags.
struct Backend {
    static constexpr int MaxWeight = 1000;

    QString address;
    quint16 port = 0;
    int weight = 1;
    bool backup = false;
    bool down = false;

    QString key() const { return Endpoint{address, port}.toString(); }

    /// Every problem of the backend, each naming its field under `path`; empty when valid.
    QStringList problems(const QString &path) const;
    /// The problems joined with "; ".
    Result<void> validate(const QString &path) const;
    QJsonObject toJson() const;
    static Result<Backend> fromJson(const QJsonObject &object, const QString &path);

    /// Parses "HOST:PORT[;weight=N][;backup][;down]".
    static Result<Backend> parse(const QString &spec);
    /// Parses a comma-separated list of specs, as in --backends=a:1,b:2.
    static Result<QList<Backend>> parseList(const QString &specs);
    /// The inverse of parse().
    QString toSpec() const;

    bool operator==(const Backend &) const = default;
};

} // namespace corral
