#include "model/Backend.h"

#include "model/FieldText.h"
#include "util/JsonReader.h"

#include <QHostAddress>
#include <QRegularExpression>

namespace corral {

static bool isHostName(const QString &host) {
    static const QRegularExpression hostName(
        QStringLiteral("^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\\z"));
    return host.size() <= 253 && hostName.match(host).hasMatch();
}

// The address part before any '%': only the characters an IP address is written with, so
// nothing QHostAddress tolerates around it (whitespace, other notations) gets through.
static bool isPlainIpAddress(const QString &text) {
    static const QRegularExpression characters(QStringLiteral("^[0-9A-Fa-f:.]{2,45}\\z"));
    return characters.match(text).hasMatch() &&
           QHostAddress(text).protocol() != QAbstractSocket::UnknownNetworkLayerProtocol;
}

static bool isZoneId(const QString &zone) {
    static const QRegularExpression pattern(QStringLiteral("^[A-Za-z0-9_.-]{1,15}\\z"));
    return pattern.match(zone).hasMatch();
}

bool isIpAddress(const QString &text) {
    const qsizetype percent = text.indexOf(QLatin1Char('%'));
    if (percent < 0) return isPlainIpAddress(text);
    const QString address = text.left(percent);
    return isPlainIpAddress(address) && address.contains(QLatin1Char(':')) &&
           isZoneId(text.mid(percent + 1));
}

bool isHostNameOrAddress(const QString &text) {
    return isIpAddress(text) || isHostName(text);
}

QString hostProblem(const QString &host) {
    if (isHostNameOrAddress(host)) return {};
    const qsizetype percent = host.indexOf(QLatin1Char('%'));
    if (percent >= 0 && isPlainIpAddress(host.left(percent)) &&
        host.left(percent).contains(QLatin1Char(':')))
        return QStringLiteral("%1 has an invalid IPv6 zone id (1 to 15 letters, digits, '_', "
                              "'.' or '-', e.g. fe80::1%eth0)")
            .arg(shown(host));
    if (const QString problem = textProblem(host); !problem.isEmpty())
        return QStringLiteral("%1 %2; it is not a host name or IP address")
            .arg(shown(host), problem);
    return QStringLiteral("%1 is not a host name or IP address").arg(shown(host));
}

QString Endpoint::toString() const {
    const QString bracketed =
        host.contains(QLatin1Char(':')) ? QLatin1Char('[') + host + QLatin1Char(']') : host;
    return bracketed + QLatin1Char(':') + QString::number(port);
}

QString healthRequestPath(const QString &healthPath) {
    if (healthPath.isEmpty()) return QStringLiteral("/");
    return healthPath.startsWith(QLatin1Char('/')) ? healthPath : QLatin1Char('/') + healthPath;
}

QString healthUrl(const Endpoint &worker, const QString &healthPath) {
    return QStringLiteral("http://") + worker.toString() + healthRequestPath(healthPath);
}

Result<Endpoint> Endpoint::parse(const QString &text) {
    QString host;
    QString portText;
    if (text.startsWith(QLatin1Char('['))) {
        const qsizetype close = text.indexOf(QStringLiteral("]:"));
        if (close < 0) return fail(QStringLiteral("%1 is not HOST:PORT").arg(shown(text)));
        host = text.mid(1, close - 1);
        portText = text.mid(close + 2);
    } else {
        const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
        if (colon <= 0 || text.count(QLatin1Char(':')) != 1)
            return fail(QStringLiteral("%1 is not HOST:PORT").arg(shown(text)));
        host = text.left(colon);
        portText = text.mid(colon + 1);
    }
    bool numeric = false;
    const uint port = portText.toUInt(&numeric);
    static const QRegularExpression digits(QStringLiteral("^[0-9]{1,5}\\z"));
    if (!numeric || !digits.match(portText).hasMatch() || port == 0 || port > 65535)
        return fail(
            QStringLiteral("%1: port %2 is not in 1..65535").arg(shown(text), shown(portText)));
    if (const QString problem = hostProblem(host); !problem.isEmpty())
        return fail(shown(text) + QStringLiteral(": ") + problem);
    return Endpoint{host, quint16(port)};
}

QStringList Backend::problems(const QString &path) const {
    QStringList found;
    if (const QString problem = hostProblem(address); !problem.isEmpty())
        found.append(fieldPath(path, QStringLiteral("address")) + QStringLiteral(": ") + problem);
    if (port == 0)
        found.append(fieldPath(path, QStringLiteral("port")) +
                     QStringLiteral(": 0 is out of range (1..65535)"));
    if (weight < 1 || weight > MaxWeight)
        found.append(fieldPath(path, QStringLiteral("weight")) +
                     QStringLiteral(": %1 is out of range (1..%2)").arg(weight).arg(MaxWeight));
    return found;
}

Result<void> Backend::validate(const QString &path) const {
    const QStringList found = problems(path);
    if (!found.isEmpty()) return fail(found.join(QStringLiteral("; ")));
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
                return fail(QStringLiteral("backend %1: weight must be 1..%2")
                                .arg(shown(spec))
                                .arg(MaxWeight));
        } else {
            return fail(QStringLiteral("backend %1: unknown option %2 "
                                       "(expected weight=N, backup or down)")
                            .arg(shown(spec), shown(option)));
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
