#include "cli/Context.h"
#include "model/FieldText.h"
#include "upstreams/Renderers.h"

#include <tuple>

namespace corral::cli {

static const char renderUsage[] =
    "Usage: corralctl render SITE --format nginx|haproxy|apache\n"
    "                        [--tls-cert PATH --tls-key PATH] [--listen-address IP]\n"
    "                        [--http-port N] [--https-port N] [--log-dir DIR] [--run-dir DIR]\n"
    "                        [--sticky-cookie NAME]\n"
    "\n"
    "Prints a production balancer config for an inventory site on stdout:\n"
    "  nginx    a sites-enabled file (http context): log_format, upstream and server blocks\n"
    "  haproxy  a complete file: global (stats socket), defaults, frontend, backend\n"
    "  apache   a sites-enabled VirtualHost file using mod_proxy_balancer\n"
    "\n"
    "Options:\n"
    "  --format F           nginx, haproxy or apache\n"
    "  --tls-cert PATH      terminate TLS with this certificate (PEM) ...\n"
    "  --tls-key PATH       ... and key; HAProxy wants the key in the certificate file or\n"
    "                       in CERT.key\n"
    "  --listen-address IP  bind this address only (default: all)\n"
    "  --http-port N        plain HTTP port (default 80)\n"
    "  --https-port N       TLS port (default 443)\n"
    "  --log-dir DIR        access and error logs (default /var/log/nginx, /var/log/apache2)\n"
    "  --run-dir DIR        HAProxy stats socket directory (default /run/haproxy)\n"
    "  --sticky-cookie NAME nginx sticky-cookie policy: hash this application cookie\n"
    "                       (default: ip_hash)\n";

static Result<quint16> parsePort(const ParsedOptions &options, const QString &name,
                                 quint16 fallback) {
    if (!options.has(name)) return fallback;
    bool numeric = false;
    const uint port = options.value(name).toUInt(&numeric);
    if (!numeric || port == 0 || port > 65535)
        return fail(QStringLiteral("--%1: %2 is not a port in 1..65535")
                        .arg(name, shown(options.value(name))));
    return quint16(port);
}

static int renderCommand(Context &context, const QStringList &args) {
    const OptionSpec spec{{},
                          {QStringLiteral("format"), QStringLiteral("tls-cert"),
                           QStringLiteral("tls-key"), QStringLiteral("listen-address"),
                           QStringLiteral("http-port"), QStringLiteral("https-port"),
                           QStringLiteral("log-dir"), QStringLiteral("run-dir"),
                           QStringLiteral("sticky-cookie")}};
    auto options = parseOptions(args, spec);
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1)
        return context.usageError(QStringLiteral("expected exactly one site NAME"));
    if (!options->has(QStringLiteral("format")))
        return context.usageError(QStringLiteral("--format is required"));
    if (options->has(QStringLiteral("tls-cert")) != options->has(QStringLiteral("tls-key")))
        return context.usageError(QStringLiteral("--tls-cert and --tls-key go together"));

    // Every bad value at once.
    QStringList problems;
    const QString formatName = options->value(QStringLiteral("format"));
    const auto format = renderFormatFromName(formatName);
    if (!format)
        problems.append(
            QStringLiteral("--format: %1 is not nginx, haproxy or apache").arg(shown(formatName)));
    RenderOptions renderOptions;
    renderOptions.tlsCertificate = options->value(QStringLiteral("tls-cert"));
    renderOptions.tlsKey = options->value(QStringLiteral("tls-key"));
    renderOptions.listenAddress = options->value(QStringLiteral("listen-address"));
    renderOptions.logDirectory = options->value(QStringLiteral("log-dir"));
    renderOptions.runtimeDirectory = options->value(QStringLiteral("run-dir"));
    renderOptions.stickyCookie = options->value(QStringLiteral("sticky-cookie"));
    for (const auto &[name, fallback, target] :
         {std::tuple{QStringLiteral("http-port"), quint16(80), &renderOptions.httpPort},
          std::tuple{QStringLiteral("https-port"), quint16(443), &renderOptions.httpsPort}}) {
        if (auto port = parsePort(options.value(), name, fallback))
            *target = port.value();
        else
            problems.append(port.error());
    }
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("render: "));

    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const QString name = options->positional.first();
    const Site *site = inventory->site(name);
    if (!site)
        return context.error(
            QStringLiteral("no site named %1 in %2").arg(shown(name), context.inventoryPath));
    // The site and the options are checked again here, whatever wrote the inventory.
    auto rendered = render(*format, *site, renderOptions);
    if (!rendered) return context.error(rendered.error());
    context.out << rendered.value() << Qt::flush;
    return Success;
}

QList<Command> renderCommands() {
    return {Command{QStringLiteral("render"),
                    QStringLiteral("Print an nginx, HAProxy or Apache config for a site"),
                    QString::fromLatin1(renderUsage), renderCommand}};
}

} // namespace corral::cli
