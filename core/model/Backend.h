#pragma once

#include "util/Result.h"

#include <QJsonObject>
#include <QList>
#include <QString>

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

/// One upstream server of a site's balancer, with nginx's per-server flags.
struct Backend {
    static constexpr int MaxWeight = 1000;

    QString address;
    quint16 port = 0;
    int weight = 1;
    bool backup = false;
    bool down = false;

    QString key() const { return Endpoint{address, port}.toString(); }

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
