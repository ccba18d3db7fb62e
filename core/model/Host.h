#pragma once

#include "util/Result.h"

#include <QJsonObject>
#include <QString>
#include <QStringList>

#include <optional>

namespace corral {

/// A machine Corral manages: the local one, or a server reached over SSH.
/// Holds no secret: passwords and passphrases live in the OS keychain.
struct Host {
    enum class Kind { Local, Ssh };
    enum class Auth { Agent, KeyFile, Password };

    static constexpr quint16 DefaultSshPort = 22;
    static inline const QString LocalName = QStringLiteral("local");

    QString name;
    Kind kind = Kind::Local;
    QString address;
    quint16 port = DefaultSshPort;
    QString user;
    Auth auth = Auth::Agent;
    QString keyPath;

    static Host local();

    /// Every broken invariant, each naming its field under `path`; empty when valid.
    QStringList problems(const QString &path = QString()) const;
    /// Checks the invariants; the error names the offending fields under `path`.
    Result<void> validate(const QString &path = QString()) const;

    QJsonObject toJson() const;
    /// Parses and validates; errors name the JSON path, e.g. "hosts[1].port: ...".
    static Result<Host> fromJson(const QJsonObject &object, const QString &path);

    static QString kindName(Kind kind);
    static std::optional<Kind> kindFromName(const QString &name);
    static QString authName(Auth auth);
    static std::optional<Auth> authFromName(const QString &name);

    bool operator==(const Host &) const = default;
};

/// Names of hosts and sites end up in file paths and systemd unit names, so they are
/// restricted to a portable set: letters, digits, '.', '_' and '-', not starting with '.' or '-'.
bool isValidName(const QString &name);

} // namespace corral
