#include "model/Site.h"

#include "model/FieldText.h"
#include "model/Host.h"
#include "util/JsonReader.h"

#include <QRegularExpression>
#include <QSet>
#include <QUrl>

namespace corral {

static const std::pair<BalancingPolicy, const char *> policyTable[] = {
    {BalancingPolicy::RoundRobin, "round-robin"}, {BalancingPolicy::LeastConn, "least-conn"},
    {BalancingPolicy::Weighted, "weighted"},      {BalancingPolicy::StickyCookie, "sticky-cookie"},
    {BalancingPolicy::IpHash, "ip-hash"},
};

QString policyName(BalancingPolicy policy) {
    for (const auto &[value, name] : policyTable)
        if (value == policy) return QLatin1String(name);
    return {};
}

std::optional<BalancingPolicy> policyFromName(const QString &name) {
    for (const auto &[value, text] : policyTable)
        if (name == QLatin1String(text)) return value;
    return std::nullopt;
}

QString policyNames() {
    QStringList names;
    for (const auto &entry : policyTable)
        names.append(QLatin1String(entry.second));
    return names.join(QStringLiteral(", "));
}

QList<BalancingPolicy> allPolicies() {
    QList<BalancingPolicy> policies;
    for (const auto &entry : policyTable)
        policies.append(entry.first);
    return policies;
}

QStringList Site::argsForPort(quint16 port) const {
    QStringList result = args;
    for (QString &arg : result)
        arg.replace(PortPlaceholder, QString::number(port));
    return result;
}

QStringList SiteBalancer::formatNames() {
    return {QStringLiteral("nginx"), QStringLiteral("haproxy"), QStringLiteral("apache")};
}

SiteBalancer SiteBalancer::stockDebian(const QString &format, const QString &siteName) {
    SiteBalancer balancer;
    balancer.format = format;
    if (format == QLatin1String("nginx")) {
        balancer.configPath = QStringLiteral("/etc/nginx/sites-enabled/") + siteName;
        balancer.validate = {QStringLiteral("nginx"), QStringLiteral("-t")};
        balancer.reload = {QStringLiteral("systemctl"), QStringLiteral("reload"),
                           QStringLiteral("nginx")};
        balancer.errorLog = QStringLiteral("/var/log/nginx/error.log");
        balancer.logDirectory = QStringLiteral("/var/log/nginx");
    } else if (format == QLatin1String("haproxy")) {
        balancer.configPath = QStringLiteral("/etc/haproxy/haproxy.cfg");
        balancer.validate = {QStringLiteral("haproxy"), QStringLiteral("-c"), QStringLiteral("-f"),
                             QStringLiteral("/etc/haproxy/haproxy.cfg")};
        balancer.reload = {QStringLiteral("systemctl"), QStringLiteral("reload"),
                           QStringLiteral("haproxy")};
        balancer.runtimeDirectory = QStringLiteral("/run/haproxy");
    } else if (format == QLatin1String("apache")) {
        balancer.configPath =
            QStringLiteral("/etc/apache2/sites-enabled/") + siteName + QStringLiteral(".conf");
        balancer.validate = {QStringLiteral("apache2ctl"), QStringLiteral("-t")};
        balancer.reload = {QStringLiteral("systemctl"), QStringLiteral("reload"),
                           QStringLiteral("apache2")};
        balancer.errorLog = QStringLiteral("/var/log/apache2/error.log");
        balancer.logDirectory = QStringLiteral("/var/log/apache2");
    }
    return balancer;
}

Result<void> SiteBalancer::setListen(const QString &text) {
    const bool anyAddress = text.startsWith(QLatin1String("*:"));
    // "*:PORT" is parsed with a placeholder address: only its port is kept.
    auto endpoint = Endpoint::parse(anyAddress ? QStringLiteral("0.0.0.0") + text.mid(1) : text);
    if (!endpoint)
        return fail(anyAddress ? shown(text) + QStringLiteral(": port is not in 1..65535")
                               : endpoint.error());
    listenAddress = anyAddress ? QString() : endpoint->host;
    httpPort = endpoint->port;
    return {};
}

QString SiteBalancer::listenText() const {
    const quint16 port = httpPort == 0 ? 80 : httpPort;
    return listenAddress.isEmpty() ? QStringLiteral("*:") + QString::number(port)
                                   : Endpoint{listenAddress, port}.toString();
}

QStringList SiteBalancer::problems(const QString &path) const {
    QStringList found;
    const auto add = [&](const QString &field, const QString &message) {
        found.append(fieldPath(path, field) + QStringLiteral(": ") + message);
    };
    // An absolute path without control characters or quotes; `label` says which.
    const auto checkPath = [&](const char *field, const QString &value) {
        if (const QString problem = textProblem(value); !problem.isEmpty())
            add(QLatin1String(field), shown(value) + QLatin1Char(' ') + problem);
        else if (!value.startsWith(QLatin1Char('/')))
            add(QLatin1String(field),
                QStringLiteral("%1 must be an absolute path").arg(shown(value)));
    };
    // Printed bare into the rendered config.
    const auto checkConfigPath = [&](const char *field, const QString &value) {
        if (!isSafePath(value))
            add(QLatin1String(field),
                QStringLiteral("%1 is not an absolute path of letters, digits and ._/+@~-")
                    .arg(shown(value)));
    };
    const auto checkCommand = [&](const char *field, const QStringList &argv,
                                  const QString &example) {
        if (argv.isEmpty() || argv.first().isEmpty())
            add(QLatin1String(field),
                QStringLiteral("a command is required, e.g. %1").arg(example));
        for (qsizetype i = 0; i < argv.size(); ++i)
            if (const QString problem = textProblem(argv.at(i), FieldText::CommandWord);
                !problem.isEmpty())
                add(QStringLiteral("%1[%2]").arg(QLatin1String(field)).arg(i),
                    shown(argv.at(i)) + QLatin1Char(' ') + problem);
    };
    if (!isValidName(host))
        add(QStringLiteral("host"), QStringLiteral("%1 is not a valid host name").arg(shown(host)));
    if (!formatNames().contains(format))
        add(QStringLiteral("format"),
            QStringLiteral("%1 is not one of %2")
                .arg(shown(format), formatNames().join(QStringLiteral(", "))));
    checkPath("configPath", configPath);
    checkCommand("validate", validate, QStringLiteral("[\"nginx\", \"-t\"]"));
    checkCommand("reload", reload, QStringLiteral("[\"systemctl\", \"reload\", \"nginx\"]"));
    if (stepTimeout < 1 || stepTimeout > MaxStepTimeout)
        add(QStringLiteral("stepTimeout"),
            QStringLiteral("%1 is out of range (1..%2)").arg(stepTimeout).arg(MaxStepTimeout));
    if (!probeUrl.isEmpty()) {
        const QUrl url(probeUrl, QUrl::StrictMode);
        if (const QString problem = textProblem(probeUrl); !problem.isEmpty())
            add(QStringLiteral("probeUrl"), shown(probeUrl) + QLatin1Char(' ') + problem);
        else if (!url.isValid() || url.host().isEmpty() ||
                 (url.scheme() != QLatin1String("http") && url.scheme() != QLatin1String("https")))
            add(QStringLiteral("probeUrl"),
                QStringLiteral("%1 is not an http(s) URL").arg(shown(probeUrl)));
    }
    if (!errorLog.isEmpty()) checkPath("errorLog", errorLog);
    if (!listenAddress.isEmpty() && !isIpAddress(listenAddress))
        add(QStringLiteral("listenAddress"),
            QStringLiteral("%1 is not an IP address").arg(shown(listenAddress)));
    if (!logDirectory.isEmpty()) checkConfigPath("logDirectory", logDirectory);
    if (!runtimeDirectory.isEmpty()) checkConfigPath("runtimeDirectory", runtimeDirectory);
    if (!stateDirectory.isEmpty()) checkPath("stateDirectory", stateDirectory);
    return found;
}

Result<void> SiteBalancer::validateFields(const QString &path) const {
    const QStringList found = problems(path);
    if (!found.isEmpty()) return fail(found.join(QStringLiteral("; ")));
    return {};
}

QJsonObject SiteBalancer::toJson() const {
    QJsonObject object{{QStringLiteral("host"), host},
                       {QStringLiteral("format"), format},
                       {QStringLiteral("configPath"), configPath},
                       {QStringLiteral("validate"), QJsonArray::fromStringList(validate)},
                       {QStringLiteral("reload"), QJsonArray::fromStringList(reload)}};
    if (stepTimeout != DefaultStepTimeout)
        object.insert(QStringLiteral("stepTimeout"), stepTimeout);
    if (!probeUrl.isEmpty()) object.insert(QStringLiteral("probeUrl"), probeUrl);
    if (!errorLog.isEmpty()) object.insert(QStringLiteral("errorLog"), errorLog);
    if (!listenAddress.isEmpty()) object.insert(QStringLiteral("listenAddress"), listenAddress);
    if (httpPort != 0) object.insert(QStringLiteral("httpPort"), httpPort);
    if (!logDirectory.isEmpty()) object.insert(QStringLiteral("logDirectory"), logDirectory);
    if (!runtimeDirectory.isEmpty())
        object.insert(QStringLiteral("runtimeDirectory"), runtimeDirectory);
    if (!stateDirectory.isEmpty()) object.insert(QStringLiteral("stateDirectory"), stateDirectory);
    return object;
}

Result<SiteBalancer> SiteBalancer::fromJson(const QJsonObject &object, const QString &path) {
    JsonReader reader(object, path);
    SiteBalancer balancer;
    balancer.host = reader.string(QStringLiteral("host"), {}, true);
    balancer.format = reader.string(QStringLiteral("format"), {}, true);
    balancer.configPath = reader.string(QStringLiteral("configPath"), {}, true);
    balancer.stepTimeout =
        reader.integer(QStringLiteral("stepTimeout"), DefaultStepTimeout, 1, MaxStepTimeout);
    balancer.validate = reader.stringList(QStringLiteral("validate"));
    balancer.reload = reader.stringList(QStringLiteral("reload"));
    balancer.probeUrl = reader.string(QStringLiteral("probeUrl"));
    balancer.errorLog = reader.string(QStringLiteral("errorLog"));
    balancer.listenAddress = reader.string(QStringLiteral("listenAddress"));
    balancer.httpPort = quint16(reader.integer(QStringLiteral("httpPort"), 0, 0, 65535));
    balancer.logDirectory = reader.string(QStringLiteral("logDirectory"));
    balancer.runtimeDirectory = reader.string(QStringLiteral("runtimeDirectory"));
    balancer.stateDirectory = reader.string(QStringLiteral("stateDirectory"));
    if (const auto error = reader.finish()) return fail(*error);
    if (auto valid = balancer.validateFields(path); !valid) return fail(valid.error());
    return balancer;
}

// Printable ASCII only: no CR, LF or other control character could split the response.
QString cacheControlProblem(const QString &value) {
    constexpr qsizetype maxLength = 1024;
    if (value.size() > maxLength)
        return QStringLiteral("is longer than %1 characters").arg(maxLength);
    for (const QChar c : value)
        if (c.unicode() < 0x20 || c.unicode() > 0x7e)
            return QStringLiteral("contains %1 (only printable ASCII may reach a header)")
                .arg(c.unicode() < 0x20 || c.unicode() == 0x7f
                         ? QStringLiteral("a control character")
                         : QStringLiteral("a non-ASCII character"));
    if (value != value.trimmed()) return QStringLiteral("starts or ends with a space");
    return {};
}

/// The embedded proxy's settings (static files, gzip, access log, TLS), each naming its field.
static QStringList proxyFeatureProblems(const Site &site, const QString &path) {
    QStringList found;
    const auto add = [&](const char *field, const QString &message) {
        found.append(fieldPath(path, QLatin1String(field)) + QStringLiteral(": ") + message);
    };
    // An absolute path without control characters or quotes.
    const auto checkPath = [&](const char *field, const QString &value) {
        if (const QString problem = textProblem(value); !problem.isEmpty())
            add(field, shown(value) + QLatin1Char(' ') + problem);
        else if (!value.startsWith(QLatin1Char('/')))
            add(field, QStringLiteral("%1 must be an absolute path").arg(shown(value)));
    };
    if (const QString problem = cacheControlProblem(site.cacheControl); !problem.isEmpty())
        add("cacheControl", shown(site.cacheControl) + QLatin1Char(' ') + problem);
    if (site.accessLog != Site::AccessLogOff && site.accessLog != Site::AccessLogStdout &&
        !site.accessLog.isEmpty())
        checkPath("accessLog", site.accessLog);
    if (!site.tlsCert.isEmpty()) checkPath("tlsCert", site.tlsCert);
    if (!site.tlsKey.isEmpty()) checkPath("tlsKey", site.tlsKey);
    if (site.tlsCert.isEmpty() != site.tlsKey.isEmpty())
        add(site.tlsCert.isEmpty() ? "tlsCert" : "tlsKey",
            QStringLiteral("tlsCert and tlsKey are given together or not at all (neither: "
                           "a certificate from the local development CA)"));
    if (!site.tls && !site.tlsCert.isEmpty())
        add("tls", QStringLiteral("false while tlsCert is set (a certificate needs tls)"));
    if (!site.redirectHttp.isEmpty()) {
        if (auto endpoint = Endpoint::parse(site.redirectHttp); !endpoint)
            add("redirectHttp", endpoint.error());
        else if (!site.tls)
            add("redirectHttp", QStringLiteral("needs tls (it redirects to https://)"));
    }
    return found;
}

QStringList Site::problems(const QString &path) const {
    QStringList found;
    const auto add = [&](const QString &field, const QString &message) {
        found.append(fieldPath(path, field) + QStringLiteral(": ") + message);
    };
    const auto checkText = [&](const QString &field, const QString &value, FieldText kind) {
        if (const QString problem = textProblem(value, kind); !problem.isEmpty()) {
            add(field, shown(value) + QLatin1Char(' ') + problem);
            return false;
        }
        return true;
    };
    if (!isValidName(name))
        add(QStringLiteral("name"),
            QStringLiteral("%1 is not a valid name (letters, digits, '.', '_', '-'; at most 63 "
                           "characters)")
                .arg(shown(name)));
    checkText(QStringLiteral("command"), command, FieldText::CommandWord);
    for (qsizetype i = 0; i < args.size(); ++i)
        checkText(QStringLiteral("args[%1]").arg(i), args.at(i), FieldText::CommandWord);
    checkText(QStringLiteral("workingDirectory"), workingDirectory, FieldText::Plain);
    static const QRegularExpression variableName(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*\\z"));
    for (auto it = environment.cbegin(); it != environment.cend(); ++it) {
        if (!variableName.match(it.key()).hasMatch())
            add(QStringLiteral("environment"),
                QStringLiteral("%1 is not a variable name (letters, digits and '_', not starting "
                               "with a digit)")
                    .arg(shown(it.key())));
        else
            checkText(QStringLiteral("environment.") + it.key(), it.value(),
                      FieldText::CommandWord);
    }
    if (workers < 0 || workers > MaxWorkers)
        add(QStringLiteral("workers"),
            QStringLiteral("%1 is out of range (0..%2)").arg(workers).arg(MaxWorkers));
    if (basePort == 0)
        add(QStringLiteral("basePort"), QStringLiteral("0 is out of range (1..65535)"));
    if (!healthPath.isEmpty() && !healthPath.startsWith(QLatin1Char('/')))
        add(QStringLiteral("healthPath"),
            QStringLiteral("%1 must start with '/'").arg(shown(healthPath)));
    else if (!healthPath.isEmpty() && !isSafeUrlPath(healthPath))
        add(QStringLiteral("healthPath"),
            QStringLiteral("%1 is not a path of letters, digits and ._~/%?&=+- (at most 1024)")
                .arg(shown(healthPath)));
    for (qsizetype i = 0; i < serverNames.size(); ++i)
        if (!isServerName(serverNames.at(i)))
            add(QStringLiteral("serverNames[%1]").arg(i),
                QStringLiteral("%1 is not a valid server name (a DNS name, optionally starting "
                               "with \"*.\")")
                    .arg(shown(serverNames.at(i))));
    if (!staticRoot.isEmpty() && !isSafePath(staticRoot))
        add(QStringLiteral("staticRoot"),
            QStringLiteral("%1 is not an absolute path of letters, digits and ._/+@~-")
                .arg(shown(staticRoot)));
    if (!listen.isEmpty()) {
        if (auto endpoint = Endpoint::parse(listen); !endpoint)
            add(QStringLiteral("listen"), endpoint.error());
    }
    found += proxyFeatureProblems(*this, path);
    if (retries < 0 || retries > MaxRetries)
        add(QStringLiteral("retries"),
            QStringLiteral("%1 is out of range (0..%2)").arg(retries).arg(MaxRetries));
    QSet<QString> seen;
    for (qsizetype i = 0; i < backends.size(); ++i) {
        const QString backendPath = indexPath(path, QStringLiteral("backends"), i);
        const QStringList backendProblems = backends.at(i).problems(backendPath);
        found += backendProblems;
        if (backendProblems.isEmpty() && seen.contains(backends.at(i).key()))
            found.append(backendPath +
                         QStringLiteral(": duplicate backend %1").arg(backends.at(i).key()));
        seen.insert(backends.at(i).key());
    }
    for (qsizetype i = 0; i < hosts.size(); ++i)
        if (!isValidName(hosts.at(i)))
            found.append(indexPath(path, QStringLiteral("hosts"), i) +
                         QStringLiteral(": %1 is not a valid host name").arg(shown(hosts.at(i))));
    QSet<quint16> seenPorts;
    for (qsizetype i = 0; i < ports.size(); ++i) {
        if (ports.at(i) == 0 || seenPorts.contains(ports.at(i)))
            found.append(indexPath(path, QStringLiteral("ports"), i) +
                         QStringLiteral(": %1 is zero or listed twice").arg(ports.at(i)));
        seenPorts.insert(ports.at(i));
    }
    if (balancer) found += balancer->problems(fieldPath(path, QStringLiteral("balancer")));
    return found;
}

Result<void> Site::validate(const QString &path) const {
    const QStringList found = problems(path);
    if (!found.isEmpty()) return fail(found.join(QStringLiteral("; ")));
    return {};
}

QJsonObject Site::toJson() const {
    QJsonObject object{{QStringLiteral("name"), name}};
    if (!command.isEmpty()) object.insert(QStringLiteral("command"), command);
    if (!args.isEmpty()) object.insert(QStringLiteral("args"), QJsonArray::fromStringList(args));
    if (!workingDirectory.isEmpty())
        object.insert(QStringLiteral("workingDirectory"), workingDirectory);
    if (!environment.isEmpty()) {
        QJsonObject env;
        for (auto it = environment.cbegin(); it != environment.cend(); ++it)
            env.insert(it.key(), it.value());
        object.insert(QStringLiteral("environment"), env);
    }
    object.insert(QStringLiteral("workers"), workers);
    object.insert(QStringLiteral("basePort"), basePort);
    if (!healthPath.isEmpty()) object.insert(QStringLiteral("healthPath"), healthPath);
    if (!serverNames.isEmpty())
        object.insert(QStringLiteral("serverNames"), QJsonArray::fromStringList(serverNames));
    if (!staticRoot.isEmpty()) object.insert(QStringLiteral("staticRoot"), staticRoot);
    // Defaults are left out, so an inventory written before these fields existed stays as it is.
    if (staticFollowSymlinks) object.insert(QStringLiteral("staticFollowSymlinks"), true);
    if (!cacheControl.isEmpty()) object.insert(QStringLiteral("cacheControl"), cacheControl);
    if (!gzip) object.insert(QStringLiteral("gzip"), false);
    if (!accessLog.isEmpty()) object.insert(QStringLiteral("accessLog"), accessLog);
    if (tls) object.insert(QStringLiteral("tls"), true);
    if (!tlsCert.isEmpty()) object.insert(QStringLiteral("tlsCert"), tlsCert);
    if (!tlsKey.isEmpty()) object.insert(QStringLiteral("tlsKey"), tlsKey);
    if (!redirectHttp.isEmpty()) object.insert(QStringLiteral("redirectHttp"), redirectHttp);
    object.insert(QStringLiteral("policy"), policyName(policy));
    if (!listen.isEmpty()) object.insert(QStringLiteral("listen"), listen);
    if (retries != 1) object.insert(QStringLiteral("retries"), retries);
    QJsonArray backendArray;
    for (const Backend &backend : backends)
        backendArray.append(backend.toJson());
    object.insert(QStringLiteral("backends"), backendArray);
    if (!hosts.isEmpty()) object.insert(QStringLiteral("hosts"), QJsonArray::fromStringList(hosts));
    if (!ports.isEmpty()) {
        QJsonArray portArray;
        for (quint16 port : ports)
            portArray.append(port);
        object.insert(QStringLiteral("ports"), portArray);
    }
    if (balancer) object.insert(QStringLiteral("balancer"), balancer->toJson());
    return object;
}

Result<Site> Site::fromJson(const QJsonObject &object, const QString &path) {
    JsonReader reader(object, path);
    Site site;
    site.name = reader.string(QStringLiteral("name"), {}, true);
    site.command = reader.string(QStringLiteral("command"));
    site.args = reader.stringList(QStringLiteral("args"));
    site.workingDirectory = reader.string(QStringLiteral("workingDirectory"));
    const QJsonObject env = reader.object(QStringLiteral("environment"));
    for (auto it = env.constBegin(); it != env.constEnd(); ++it) {
        if (!it.value().isString()) {
            reader.fail(QStringLiteral("environment.") + it.key(),
                        QStringLiteral("expected a string value"));
            break;
        }
        site.environment.insert(it.key(), it.value().toString());
    }
    site.workers = reader.integer(QStringLiteral("workers"), 2, 0, MaxWorkers);
    site.basePort = quint16(reader.integer(QStringLiteral("basePort"), 3000, 1, 65535));
    site.healthPath = reader.string(QStringLiteral("healthPath"));
    site.serverNames = reader.stringList(QStringLiteral("serverNames"));
    site.staticRoot = reader.string(QStringLiteral("staticRoot"));
    site.staticFollowSymlinks = reader.boolean(QStringLiteral("staticFollowSymlinks"), false);
    site.cacheControl = reader.string(QStringLiteral("cacheControl"));
    site.gzip = reader.boolean(QStringLiteral("gzip"), true);
    site.accessLog = reader.string(QStringLiteral("accessLog"));
    site.tls = reader.boolean(QStringLiteral("tls"), false);
    site.tlsCert = reader.string(QStringLiteral("tlsCert"));
    site.tlsKey = reader.string(QStringLiteral("tlsKey"));
    site.redirectHttp = reader.string(QStringLiteral("redirectHttp"));
    const QString policy = reader.string(QStringLiteral("policy"), QStringLiteral("round-robin"));
    if (const auto parsed = policyFromName(policy))
        site.policy = *parsed;
    else
        reader.fail(QStringLiteral("policy"),
                    QStringLiteral("\"%1\" is not one of %2").arg(policy, policyNames()));
    site.listen = reader.string(QStringLiteral("listen"));
    site.retries = reader.integer(QStringLiteral("retries"), 1, 0, MaxRetries);
    const QJsonArray backends = reader.array(QStringLiteral("backends"));
    for (qsizetype i = 0; i < backends.size() && !reader.failed(); ++i) {
        const QString backendPath = indexPath(path, QStringLiteral("backends"), i);
        if (!backends.at(i).isObject()) {
            reader.fail(QStringLiteral("backends[%1]").arg(i),
                        QStringLiteral("expected an object"));
            break;
        }
        auto backend = Backend::fromJson(backends.at(i).toObject(), backendPath);
        if (!backend) return fail(backend.error());
        site.backends.append(std::move(backend).value());
    }
    site.hosts = reader.stringList(QStringLiteral("hosts"));
    const QJsonArray ports = reader.array(QStringLiteral("ports"));
    for (qsizetype i = 0; i < ports.size(); ++i) {
        const double port = ports.at(i).toDouble(-1);
        if (!ports.at(i).isDouble() || port < 1 || port > 65535 || port != double(int(port))) {
            reader.fail(QStringLiteral("ports[%1]").arg(i),
                        QStringLiteral("expected a port number in 1..65535"));
            break;
        }
        site.ports.append(quint16(port));
    }
    if (object.contains(QStringLiteral("balancer")) && !reader.failed()) {
        const QJsonValue value = object.value(QStringLiteral("balancer"));
        reader.accept(QStringLiteral("balancer"));
        if (!value.isObject()) {
            reader.fail(QStringLiteral("balancer"), QStringLiteral("expected an object"));
        } else {
            auto balancer = SiteBalancer::fromJson(value.toObject(),
                                                   fieldPath(path, QStringLiteral("balancer")));
            if (!balancer) return fail(balancer.error());
            site.balancer = std::move(balancer).value();
        }
    }
    if (const auto error = reader.finish()) return fail(*error);
    if (auto valid = site.validate(path); !valid) return fail(valid.error());
    return site;
}

} // namespace corral
