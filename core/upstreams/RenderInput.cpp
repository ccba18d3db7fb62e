#include "upstreams/RenderInput.h"

#include "upstreams/BalancerConventions.h"

#include <QRegularExpression>

namespace corral {

QString RenderInput::listenOn(quint16 port) const {
    const QString address = options.listenAddress;
    if (address.isEmpty()) return QString::number(port);
    const QString host = address.contains(QLatin1Char(':'))
                             ? QLatin1Char('[') + address + QLatin1Char(']')
                             : address;
    return host + QLatin1Char(':') + QString::number(port);
}

static Result<qint64> parseBodySize(const QString &text) {
    static const QRegularExpression pattern(QStringLiteral("^([0-9]{1,10})([kKmMgG]?)\\z"));
    const auto match = pattern.match(text);
    if (!match.hasMatch()) return fail(QString());
    qint64 value = match.captured(1).toLongLong();
    const QString unit = match.captured(2).toLower();
    if (unit == QLatin1String("k")) value *= 1024;
    if (unit == QLatin1String("m")) value *= 1024 * 1024;
    if (unit == QLatin1String("g")) value *= 1024 * 1024 * 1024;
    return value;
}

Result<RenderInput> prepareRender(const Site &site, const RenderOptions &options,
                                  const QString &defaultLogDirectory) {
    const QString where = QStringLiteral("site %1: ").arg(shown(site.name));
    if (auto valid = site.validate(); !valid) return fail(where + valid.error());

    RenderInput input;
    input.name = site.name;
    input.identifier = site.name;
    static const QRegularExpression notIdentifier(QStringLiteral("[^A-Za-z0-9_]"));
    input.identifier.replace(notIdentifier, QStringLiteral("_"));
    input.policy = site.policy;

    // Site::validate above checked every field with the sets a config needs (FieldText.h):
    // server names, static root and health path included.
    input.serverNames = site.serverNames;
    input.staticRoot = site.staticRoot;
    input.healthPath = site.healthPath;

    // Backend addresses and ports were checked by Site::validate (host name or IP address,
    // zone ids restricted).
    input.backends = site.backends;
    if (input.backends.isEmpty()) {
        // A site without explicit backends balances over its own local workers.
        for (int i = 0; i < site.workers; ++i) {
            const int port = i < site.ports.size() ? site.ports.at(i) : site.basePort + i;
            if (port > 65535) break;
            input.backends.append(Backend{QStringLiteral("127.0.0.1"), quint16(port)});
        }
    }
    if (input.backends.isEmpty())
        return fail(where + QStringLiteral("backends: none listed and no workers to balance over"));

    // Every bad option at once.
    QStringList problems;
    RenderOptions checked = options;
    if (!checked.listenAddress.isEmpty() &&
        (!isIpAddress(checked.listenAddress) || checked.listenAddress.contains(QLatin1Char('%'))))
        problems.append(QStringLiteral("listen address: %1 is not an IP address without a "
                                       "zone id")
                            .arg(shown(checked.listenAddress)));
    if (checked.httpPort == 0 || (checked.tls() && checked.httpsPort == 0))
        problems.append(QStringLiteral("listen port: 0 is out of range (1..65535)"));
    if (checked.tls()) {
        if (checked.tlsCertificate.isEmpty() || checked.tlsKey.isEmpty())
            problems.append(QStringLiteral("tls: a certificate needs a key and a key needs "
                                           "a certificate"));
        if (!isSafePath(checked.tlsCertificate))
            problems.append(QStringLiteral("tlsCertificate: %1 is not an absolute path of "
                                           "letters, digits and ._/+@~-")
                                .arg(shown(checked.tlsCertificate)));
        if (!isSafePath(checked.tlsKey))
            problems.append(QStringLiteral("tlsKey: %1 is not an absolute path of letters, "
                                           "digits and ._/+@~-")
                                .arg(shown(checked.tlsKey)));
    }
    if (checked.logDirectory.isEmpty()) checked.logDirectory = defaultLogDirectory;
    if (!isSafePath(checked.logDirectory))
        problems.append(QStringLiteral("logDirectory: %1 is not an absolute path of letters, "
                                       "digits and ._/+@~-")
                            .arg(shown(checked.logDirectory)));
    if (checked.runtimeDirectory.isEmpty())
        checked.runtimeDirectory = defaultHaproxyRuntimeDirectory();
    if (!isSafePath(checked.runtimeDirectory))
        problems.append(QStringLiteral("runtimeDirectory: %1 is not an absolute path of "
                                       "letters, digits and ._/+@~-")
                            .arg(shown(checked.runtimeDirectory)));
    const auto bodySize = parseBodySize(checked.clientMaxBodySize);
    if (bodySize)
        input.clientMaxBodyBytes = bodySize.value();
    else
        problems.append(QStringLiteral("clientMaxBodySize: %1 is not N, Nk, Nm or Ng")
                            .arg(shown(checked.clientMaxBodySize)));
    if (checked.maxFails < 0 || checked.maxFails > 100)
        problems.append(
            QStringLiteral("maxFails: %1 is out of range (0..100)").arg(checked.maxFails));
    if (checked.failTimeoutSeconds < 1 || checked.failTimeoutSeconds > 3600)
        problems.append(QStringLiteral("failTimeout: %1 s is out of range (1..3600)")
                            .arg(checked.failTimeoutSeconds));
    if (checked.keepalive < 0 || checked.keepalive > 10000)
        problems.append(
            QStringLiteral("keepalive: %1 is out of range (0..10000)").arg(checked.keepalive));
    if (!checked.maintenancePage.isEmpty() && !isSafePath(checked.maintenancePage))
        problems.append(QStringLiteral("maintenancePage: %1 is not an absolute path of letters, "
                                       "digits and ._/+@~-")
                            .arg(shown(checked.maintenancePage)));
    static const QRegularExpression cookieName(QStringLiteral("^[A-Za-z0-9_]{1,64}\\z"));
    if (!checked.stickyCookie.isEmpty() && !cookieName.match(checked.stickyCookie).hasMatch())
        problems.append(QStringLiteral("stickyCookie: %1 is not a cookie name of letters, "
                                       "digits and '_'")
                            .arg(shown(checked.stickyCookie)));
    if (!problems.isEmpty()) return fail(where + problems.join(QStringLiteral("; ")));
    input.options = checked;
    return input;
}

} // namespace corral
