#include "cli/ProxySettingOptions.h"

#include "model/FieldText.h"

#include <QDir>
#include <QFileInfo>

namespace corral::cli {

OptionSpec proxySettingOptionSpec() {
    return OptionSpec{{QStringLiteral("static-follow-symlinks"), QStringLiteral("gzip"),
                       QStringLiteral("no-gzip"), QStringLiteral("tls"), QStringLiteral("no-tls")},
                      {QStringLiteral("static"), QStringLiteral("cache-control"),
                       QStringLiteral("access-log"), QStringLiteral("cert"), QStringLiteral("key"),
                       QStringLiteral("redirect-http")}};
}

QString proxySettingOptionsHelp() {
    return QStringLiteral(
        "  --static DIR       files under DIR are served by the proxy itself for GET and HEAD\n"
        "                     (nginx's try_files $uri @backend); the rest goes to the workers\n"
        "  --static-follow-symlinks  symlinks may lead out of DIR (refused by default)\n"
        "  --cache-control VALUE  Cache-Control header of static files (default: none)\n"
        "  --gzip, --no-gzip  compress text responses above 1 KiB for clients that accept it\n"
        "                     (default on)\n"
        "  --access-log FILE|-|off  one line per request (nginx combined + upstream fields);\n"
        "                     - for standard output (default: access.log in the site's log\n"
        "                     directory; off for `corralctl proxy`)\n"
        "  --tls              HTTPS on the listen address (TLS 1.2+); without --cert/--key the\n"
        "                     certificate comes from Corral's local development CA\n"
        "  --cert FILE --key FILE  PEM certificate chain and private key (both; imply --tls)\n"
        "  --no-tls           (site update) back to plain HTTP\n"
        "  --redirect-http ADDR:PORT  also answer plain HTTP there with a 301 to https://\n"
        "                     (needs --tls)\n");
}

/// `value` made absolute from the current directory (unchanged when it is empty).
static QString absolute(const QString &value) {
    if (value.isEmpty()) return value;
    return QDir::cleanPath(QDir::current().absoluteFilePath(value));
}

QStringList applyProxySettingOptions(const ParsedOptions &options, Site &site,
                                     ProxyPathCheck check) {
    QStringList problems;
    const bool local = check == ProxyPathCheck::Local;
    const auto has = [&](const char *name) { return options.has(QLatin1String(name)); };
    const auto value = [&](const char *name) { return options.value(QLatin1String(name)); };
    // Every path: no control character or quote (it is shown, logged, maybe rendered).
    const auto textOk = [&](const char *name, const QString &text) {
        if (const QString problem = textProblem(text); !problem.isEmpty()) {
            problems.append(
                QStringLiteral("--%1: %2 %3").arg(QLatin1String(name), shown(text), problem));
            return false;
        }
        return true;
    };

    if (has("static")) {
        const QString directory = value("static");
        if (directory.isEmpty()) { // --static= clears it
            site.staticRoot.clear();
        } else if (textOk("static", directory)) {
            const QFileInfo info(absolute(directory));
            if (local && !info.exists())
                problems.append(
                    QStringLiteral("--static: %1 does not exist").arg(shown(directory)));
            else if (local && !info.isDir())
                problems.append(
                    QStringLiteral("--static: %1 is not a directory").arg(shown(directory)));
            else if (!isSafePath(info.absoluteFilePath()))
                problems.append(QStringLiteral("--static: %1 is not a path of letters, digits "
                                               "and ._/+@~- (it is written into balancer "
                                               "configs)")
                                    .arg(shown(info.absoluteFilePath())));
            site.staticRoot = info.absoluteFilePath();
        }
    }
    if (has("static-follow-symlinks")) site.staticFollowSymlinks = true;
    if (has("cache-control")) {
        site.cacheControl = value("cache-control");
        if (const QString problem = cacheControlProblem(site.cacheControl); !problem.isEmpty())
            problems.append(
                QStringLiteral("--cache-control: %1 %2").arg(shown(site.cacheControl), problem));
    }
    if (has("gzip") && has("no-gzip"))
        problems.append(QStringLiteral("--gzip and --no-gzip exclude each other"));
    else if (has("gzip") || has("no-gzip"))
        site.gzip = has("gzip");
    if (has("access-log")) {
        const QString log = value("access-log");
        if (log.isEmpty()) {
            problems.append(QStringLiteral("--access-log: expected FILE, - (standard output) or "
                                           "off"));
        } else if (log == Site::AccessLogStdout || log == Site::AccessLogOff) {
            site.accessLog = log;
        } else if (textOk("access-log", log)) {
            site.accessLog = absolute(log);
            const QFileInfo parent(QFileInfo(site.accessLog).absolutePath());
            if (local && QFileInfo(site.accessLog).isDir())
                problems.append(
                    QStringLiteral("--access-log: %1 is a directory").arg(shown(site.accessLog)));
            else if (local && parent.exists() && !parent.isDir())
                problems.append(QStringLiteral("--access-log: %1 is not a directory")
                                    .arg(shown(parent.filePath())));
        }
    }
    if (has("no-tls")) {
        if (has("tls") || has("cert") || has("key") || has("redirect-http"))
            problems.append(QStringLiteral("--no-tls excludes --tls, --cert, --key and "
                                           "--redirect-http"));
        site.tls = false;
        site.tlsCert.clear();
        site.tlsKey.clear();
        site.redirectHttp.clear();
    }
    if (has("tls")) site.tls = true;
    for (const auto &[name, target] :
         {std::pair{"cert", &site.tlsCert}, std::pair{"key", &site.tlsKey}}) {
        if (!has(name)) continue;
        site.tls = true;
        const QString file = value(name);
        if (file.isEmpty()) {
            problems.append(QStringLiteral("--%1: expected a PEM file").arg(QLatin1String(name)));
            continue;
        }
        if (!textOk(name, file)) continue;
        *target = absolute(file);
        const QFileInfo info(*target);
        if (local && (!info.isFile() || !info.isReadable()))
            problems.append(QStringLiteral("--%1: %2 is not a readable file")
                                .arg(QLatin1String(name), shown(file)));
    }
    if (has("cert") != has("key") && (has("cert") ? site.tlsKey : site.tlsCert).isEmpty())
        problems.append(QStringLiteral("--cert and --key go together (neither: a certificate "
                                       "from Corral's development CA)"));
    if (has("redirect-http")) {
        const QString address = value("redirect-http");
        if (auto endpoint = Endpoint::parse(address); !endpoint)
            problems.append(QStringLiteral("--redirect-http: ") + endpoint.error());
        else if (!site.tls)
            problems.append(QStringLiteral("--redirect-http needs --tls (it redirects to "
                                           "https://)"));
        site.redirectHttp = address;
    }
    return problems;
}

QStringList proxySettingLines(const Site &site) {
    QStringList lines;
    lines.append(QStringLiteral("static files: ") +
                 (site.staticRoot.isEmpty()
                      ? QStringLiteral("-")
                      : site.staticRoot + (site.staticFollowSymlinks
                                               ? QStringLiteral(" (symlinks followed)")
                                               : QStringLiteral(" (symlinks out of it refused)"))));
    lines.append(QStringLiteral("cache-control: ") +
                 (site.cacheControl.isEmpty() ? QStringLiteral("-") : site.cacheControl));
    lines.append(QStringLiteral("gzip:         ") +
                 (site.gzip ? QStringLiteral("on") : QStringLiteral("off")));
    lines.append(QStringLiteral("access log:   ") +
                 (site.accessLog.isEmpty() ? QStringLiteral("access.log in the site's log "
                                                            "directory")
                  : site.accessLog == Site::AccessLogStdout ? QStringLiteral("- (standard output)")
                                                            : site.accessLog));
    QString tls = site.tls
                      ? (site.tlsCert.isEmpty()
                             ? QStringLiteral("on, certificate from the development CA")
                             : QStringLiteral("on, cert %1, key %2").arg(site.tlsCert, site.tlsKey))
                      : QStringLiteral("off");
    if (!site.redirectHttp.isEmpty())
        tls += QStringLiteral("; http://%1 redirects to https").arg(site.redirectHttp);
    lines.append(QStringLiteral("tls:          ") + tls);
    return lines;
}

} // namespace corral::cli
