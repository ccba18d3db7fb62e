#include "model/Host.h"

#include "model/Backend.h"
#include "model/FieldText.h"
#include "util/JsonReader.h"

#include <QRegularExpression>

namespace corral {

bool isValidName(const QString &name) {
    static const QRegularExpression pattern(QStringLiteral("^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}\\z"));
    return pattern.match(name).hasMatch();
}

Host Host::local() {
    Host host;
    host.name = LocalName;
    host.kind = Kind::Local;
    return host;
}

QString Host::kindName(Kind kind) {
    return kind == Kind::Local ? QStringLiteral("local") : QStringLiteral("ssh");
}

std::optional<Host::Kind> Host::kindFromName(const QString &name) {
    if (name == QLatin1String("local")) return Kind::Local;
    if (name == QLatin1String("ssh")) return Kind::Ssh;
    return std::nullopt;
}

QString Host::authName(Auth auth) {
    switch (auth) {
    case Auth::Agent:
        return QStringLiteral("agent");
    case Auth::KeyFile:
        return QStringLiteral("key");
    case Auth::Password:
        return QStringLiteral("password");
    }
    return {};
}

std::optional<Host::Auth> Host::authFromName(const QString &name) {
    for (Auth auth : {Auth::Agent, Auth::KeyFile, Auth::Password})
        if (authName(auth) == name) return auth;
    return std::nullopt;
}

QStringList Host::problems(const QString &path) const {
    QStringList found;
    const auto add = [&](const char *field, const QString &message) {
        found.append(fieldPath(path, QLatin1String(field)) + QStringLiteral(": ") + message);
    };
    if (!isValidName(name))
        add("name", QStringLiteral("%1 is not a valid name (letters, digits, '.', '_', '-'; at "
                                   "most 63 characters)")
                        .arg(shown(name)));
    if (kind == Kind::Ssh && address.isEmpty())
        add("address", QStringLiteral("an ssh host needs an address"));
    else if (!address.isEmpty())
        // Also keeps "-oProxyCommand=..." from ever looking like an ssh option.
        if (const QString problem = hostProblem(address); !problem.isEmpty())
            add("address", problem);
    if (kind == Kind::Ssh && port == 0) add("port", QStringLiteral("0 is out of range (1..65535)"));
    if (const QString problem = textProblem(user); !problem.isEmpty())
        add("user", shown(user) + QLatin1Char(' ') + problem);
    else if (user.contains(QLatin1Char(' ')) || user.contains(QLatin1Char('@')) ||
             user.startsWith(QLatin1Char('-')))
        add("user", QStringLiteral("%1 is not a user name (no spaces or '@', not starting with "
                                   "'-')")
                        .arg(shown(user)));
    if (const QString problem = textProblem(keyPath); !problem.isEmpty())
        add("keyPath", shown(keyPath) + QLatin1Char(' ') + problem);
    else if (kind == Kind::Ssh && auth == Auth::KeyFile && keyPath.isEmpty())
        add("keyPath", QStringLiteral("auth \"key\" needs a key file path"));
    return found;
}

Result<void> Host::validate(const QString &path) const {
    const QStringList found = problems(path);
    if (!found.isEmpty()) return fail(found.join(QStringLiteral("; ")));
    return {};
}

QJsonObject Host::toJson() const {
    QJsonObject object{{QStringLiteral("name"), name}, {QStringLiteral("kind"), kindName(kind)}};
    if (kind == Kind::Ssh) {
        object.insert(QStringLiteral("address"), address);
        object.insert(QStringLiteral("port"), port);
        if (!user.isEmpty()) object.insert(QStringLiteral("user"), user);
        object.insert(QStringLiteral("auth"), authName(auth));
        if (!keyPath.isEmpty()) object.insert(QStringLiteral("keyPath"), keyPath);
    }
    return object;
}

Result<Host> Host::fromJson(const QJsonObject &object, const QString &path) {
    JsonReader reader(object, path);
    Host host;
    host.name = reader.string(QStringLiteral("name"), {}, true);
    const QString kind = reader.string(QStringLiteral("kind"), QStringLiteral("ssh"));
    if (const auto parsed = kindFromName(kind))
        host.kind = *parsed;
    else
        reader.fail(QStringLiteral("kind"),
                    QStringLiteral("\"%1\" is not one of local, ssh").arg(kind));
    host.address = reader.string(QStringLiteral("address"));
    host.port = quint16(reader.integer(QStringLiteral("port"), DefaultSshPort, 1, 65535));
    host.user = reader.string(QStringLiteral("user"));
    const QString auth = reader.string(QStringLiteral("auth"), QStringLiteral("agent"));
    if (const auto parsed = authFromName(auth))
        host.auth = *parsed;
    else
        reader.fail(QStringLiteral("auth"),
                    QStringLiteral("\"%1\" is not one of agent, key, password").arg(auth));
    host.keyPath = reader.string(QStringLiteral("keyPath"));
    if (const auto error = reader.finish()) return fail(*error);
    if (auto valid = host.validate(path); !valid) return fail(valid.error());
    return host;
}

} // namespace corral
