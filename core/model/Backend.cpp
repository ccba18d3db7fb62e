#include "model/Backend.h"

#include "util/JsonReader.h"

#include <QHostAddress>
#include <QRegularExpression>

namespace corral {

static bool isValidHostName(const QString &host) {
    if (QHostAddress(host).protocol() != QAbstractSocket::UnknownNetworkLayerProtocol) return true;
    static const QRegularExpression hostName(
        QStringLiteral("^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$"));
    return hostName.match(host).hasMatch();
}

QString Endpoint::toString() const {
    const QString shown =
        host.contains(QLatin1Char(':')) ? QLatin1Char('[') + host + QLatin1Char(']') : host;
    return shown + QLatin1Char(':') + QString::number(port);
}

Result<Endpoint> Endpoint::parse(const QString &text) {
    QString host;
    QString portText;
    if (text.startsWith(QLatin1Char('['))) {
        const qsizetype close = text.indexOf(QStringLiteral("]:"));
        if (close < 0) return fail(QStringLiteral("\"%1\" is not HOST:PORT").arg(text));
        host = text.mid(1, close - 1);
        portText = text.mid(close + 2);
    } else {
        const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
        if (colon <= 0 || text.count(QLatin1Char(':')) != 1)
            return fail(QStringLiteral("\"%1\" is not HOST:PORT").arg(text));
        host = text.left(colon);
        portText = text.mid(colon + 1);
    }
    bool numeric = false;
    const uint port = portText.toUInt(&numeric);
    if (!numeric || port == 0 || port > 65535)
        return fail(QStringLiteral("\"%1\": port \"%2\" is not in 1..65535").arg(text, portText));
    if (!isValidHostName(host))
        return fail(
            QStringLiteral("\"%1\": \"%2\" is not a host name or IP address").arg(text, host));
    return Endpoint{host, quint16(port)};
}

Result<void> Backend::validate(const QString &path) const {
    const auto field = [&](const char *name) -> QString {
        return path + QLatin1Char('.') + QLatin1String(name);
    };
    if (!isValidHostName(address))
        return fail(field("address") +
                    QStringLiteral(": \"%1\" is not a host name or IP address").arg(address));
    if (port == 0) return fail(field("port") + QStringLiteral(": 0 is out of range (1..65535)"));
    if (weight < 1 || weight > MaxWeight)
        return fail(field("weight") +
                    QStringLiteral(": %1 is out of range (1..%2)").arg(weight).arg(MaxWeight));
    return {};
}

QJsonObject Backend::toJson() const {
    QJsonObject object{{QStringLiteral("address"), address}, {QStringLiteral("port"), port}};
    if (weight != 1) object.insert(QStringLiteral("weight"), weight);
    if (backup) object.insert(QStringLiteral("backup"), true);
    if (down) object.insert(QStringLiteral("down"), true);
    return object;
}

Result<Backend> Backend::fromJson(const QJsonObject &object, const QString &path) {
    JsonReader reader(object, path);
    Backend backend;
    backend.address = reader.string(QStringLiteral("address"), {}, true);
    backend.port = quint16(reader.integer(QStringLiteral("port"), 0, 1, 65535, true));
    backend.weight = reader.integer(QStringLiteral("weight"), 1, 1, MaxWeight);
    backend.backup = reader.boolean(QStringLiteral("backup"), false);
    backend.down = reader.boolean(QStringLiteral("down"), false);
    if (const auto error = reader.finish()) return fail(*error);
    if (auto valid = backend.validate(path); !valid) return fail(valid.error());
    return backend;
}

Result<Backend> Backend::parse(const QString &spec) {
    const QStringList parts = spec.trimmed().split(QLatin1Char(';'));
    auto endpoint = Endpoint::parse(parts.first().trimmed());
    if (!endpoint) return fail(QStringLiteral("backend ") + endpoint.error());
    Backend backend;
    backend.address = endpoint->host;
    backend.port = endpoint->port;
    for (qsizetype i = 1; i < parts.size(); ++i) {
        const QString option = parts.at(i).trimmed();
        if (option == QLatin1String("backup")) {
            backend.backup = true;
        } else if (option == QLatin1String("down")) {
            backend.down = true;
        } else if (option.startsWith(QLatin1String("weight="))) {
            bool numeric = false;
            backend.weight = option.mid(7).toInt(&numeric);
            if (!numeric || backend.weight < 1 || backend.weight > MaxWeight)
                return fail(QStringLiteral("backend \"%1\": weight must be 1..%2")
                                .arg(spec)
                                .arg(MaxWeight));
        } else {
            return fail(QStringLiteral("backend \"%1\": unknown option \"%2\" "
                                       "(expected weight=N, backup or down)")
                            .arg(spec, option));
        }
    }
    return backend;
}

Result<QList<Backend>> Backend::parseList(const QString &specs) {
    QList<Backend> backends;
    for (const QString &spec : specs.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        auto backend = parse(spec);
        if (!backend) return fail(backend.error());
        for (const Backend &existing : backends)
            if (existing.key() == backend->key())
                return fail(QStringLiteral("backend %1 is listed twice").arg(backend->key()));
        backends.append(std::move(backend).value());
    }
    if (backends.isEmpty()) return fail(QStringLiteral("no backends given"));
    return backends;
}

QString Backend::toSpec() const {
    QString spec = key();
    if (weight != 1) spec += QStringLiteral(";weight=") + QString::number(weight);
    if (backup) spec += QStringLiteral(";backup");
    if (down) spec += QStringLiteral(";down");
    return spec;
}

} // namespace corral
