#include "cli/Context.h"
#include "cli/DevCaNotice.h"
#include "cli/ProxySettingOptions.h"
#include "cluster/LocalCluster.h"
#include "model/FieldText.h"

#include "proxy/ProxyEngine.h"

#include <csignal>
#include <pthread.h>

namespace corral::cli {

static const char proxyUsage[] =
    "Usage:\n"
    "  corralctl proxy --listen ADDR:PORT --backends HOST:PORT[;weight=N][;backup],...\n"
    "                  [--policy P] [--threads N] [--admin [unix:PATH|127.0.0.1:PORT]]\n"
    "                  [--health PATH] [--retries N] [--splice-min-bytes N]\n"
    "                  [--static DIR [--static-follow-symlinks] [--cache-control VALUE]]\n"
    "                  [--gzip|--no-gzip] [--access-log FILE|-]\n"
    "                  [--tls [--cert FILE --key FILE] [--host NAME]...\n"
    "                   [--redirect-http ADDR:PORT]]\n"
    "\n"
    "Runs Corral's load balancer in the foreground until SIGINT or SIGTERM, then lets\n"
    "in-flight requests finish (up to 10 s) and exits 0.\n"
    "\n"
    "Options:\n"
    "  --listen A:P     address to accept HTTP on\n"
    "  --backends LIST  upstream servers, comma-separated\n"
    "  --policy P       round-robin (default), weighted, least-conn, sticky-cookie, ip-hash\n"
    "  --threads N      event-loop threads (default: one per core)\n"
    "  --admin [WHERE]  admin API (GET /stats, /backends, ...): alone, on the Unix socket\n"
    "                   $XDG_RUNTIME_DIR/corral/proxy-PID.sock (/tmp/corral-UID without\n"
    "                   XDG_RUNTIME_DIR); unix:PATH for another socket; 127.0.0.1:PORT for\n"
    "                   loopback TCP, where each request needs \"Authorization: Bearer\n"
    "                   TOKEN\" with the token from the 0600 file it names at start\n"
    "  --health PATH    actively check each backend with GET PATH\n"
    "  --retries N      other backends a failed request may be retried on once it was\n"
    "                   sent (default 1, 0..10): idempotent requests only (GET, HEAD,\n"
    "                   OPTIONS, TRACE; PUT and DELETE without a body), never once a\n"
    "                   response byte arrived or after a response timeout\n"
    "  --splice-min-bytes N  a Content-Length response body with at least N bytes to come\n"
    "                   goes backend -> pipe -> client with splice(2), never through the\n"
    "                   proxy's memory (default 0: always copy; e.g. 65536)\n"
    "  --host NAME      (with --tls) a name the development certificate covers besides\n"
    "                   localhost and 127.0.0.1; repeat or comma-separate\n"
    "%1"
    "\n"
    "Backend state changes (down, up, drained) are logged on stderr with their reason.\n";

static QString proxyUsageText();

static int runProxy(Context &context, const QStringList &rawArgs) {
    // A bare --admin (last, or followed by another option) means the default Unix socket.
    QStringList args = rawArgs;
    for (qsizetype i = 0; i < args.size(); ++i)
        if (args[i] == QLatin1String("--admin") &&
            (i + 1 == args.size() || args[i + 1].startsWith(QLatin1String("--"))))
            args[i] = QStringLiteral("--admin=");
    OptionSpec spec{{},
                    {QStringLiteral("listen"), QStringLiteral("backends"), QStringLiteral("policy"),
                     QStringLiteral("threads"), QStringLiteral("admin"), QStringLiteral("health"),
                     QStringLiteral("retries"), QStringLiteral("splice-min-bytes"),
                     QStringLiteral("host")}};
    spec.flags += proxySettingOptionSpec().flags;
    spec.valued += proxySettingOptionSpec().valued;
    const auto parsed = parseOptions(args, spec);
    const QString usage = proxyUsageText();
    if (!parsed) return context.usageError(parsed.error(), usage);
    const ParsedOptions &options = parsed.value();
    if (!options.positional.isEmpty())
        return context.usageError(
            QStringLiteral("unexpected argument \"%1\"").arg(options.positional.first()), usage);
    ProxyConfig config;
    if (!options.has(QStringLiteral("listen")) || !options.has(QStringLiteral("backends")))
        return context.usageError(QStringLiteral("--listen and --backends are required"), usage);
    // Every bad value at once, exit 1 (the command line itself was fine).
    QStringList problems;
    if (const auto listen = Endpoint::parse(options.value(QStringLiteral("listen")))) {
        config.listenAddress = listen->host;
        config.listenPort = listen->port;
    } else {
        problems.append(QStringLiteral("--listen: ") + listen.error());
    }
    const auto backends =
        Backend::parseList(options.values.value(QStringLiteral("backends")).join(QLatin1Char(',')));
    if (backends)
        config.backends = backends.value();
    else
        problems.append(QStringLiteral("--backends: ") + backends.error());
    if (options.has(QStringLiteral("policy"))) {
        const QString name = options.value(QStringLiteral("policy"));
        if (const auto policy = policyFromName(name))
            config.policy = *policy;
        else
            problems.append(
                QStringLiteral("--policy: %1 is not one of %2").arg(shown(name), policyNames()));
    }
    if (options.has(QStringLiteral("threads"))) {
        bool numeric = false;
        config.threads = options.value(QStringLiteral("threads")).toInt(&numeric);
        if (!numeric || config.threads < 1 || config.threads > 256)
            problems.append(QStringLiteral("--threads: expected 1..256"));
    }
    if (options.has(QStringLiteral("admin"))) {
        const QString where = options.value(QStringLiteral("admin"));
        if (auto admin = AdminEndpoint::parse(where); !admin)
            problems.append(QStringLiteral("--admin: ") + admin.error());
        config.adminEnabled = true;
        config.adminListen = where;
    }
    if (options.has(QStringLiteral("health")))
        config.health.path = options.value(QStringLiteral("health"));
    if (options.has(QStringLiteral("retries"))) {
        bool numeric = false;
        config.retries = options.value(QStringLiteral("retries")).toInt(&numeric);
        if (!numeric || config.retries < 0 || config.retries > ProxyConfig::MaxRetries)
            problems.append(
                QStringLiteral("--retries: expected 0..%1").arg(ProxyConfig::MaxRetries));
    }
    if (options.has(QStringLiteral("splice-min-bytes"))) {
        bool numeric = false;
        config.limits.spliceMinBytes =
            options.value(QStringLiteral("splice-min-bytes")).toInt(&numeric);
        if (!numeric || config.limits.spliceMinBytes < 0)
            problems.append(QStringLiteral("--splice-min-bytes: expected 0 or more bytes"));
    }
    // Static files, gzip, access log and TLS: read into a site's fields by the same rules as
    // `up` and `site add`, then mapped onto the config as a site's are. No site, no log
    // directory: the access log is off unless --access-log names one.
    Site settings;
    settings.accessLog = Site::AccessLogOff;
    problems += applyProxySettingOptions(options, settings, ProxyPathCheck::Local);
    if (options.has(QStringLiteral("host"))) {
        settings.serverNames = options.list(QStringLiteral("host"));
        for (const QString &name : std::as_const(settings.serverNames))
            if (!isServerName(name) && !isIpAddress(name))
                problems.append(QStringLiteral("--host: %1 is not a DNS name or an IP address")
                                    .arg(shown(name)));
        if (!settings.tls)
            problems.append(QStringLiteral("--host needs --tls (it names the development "
                                           "certificate's hosts)"));
    }
    if (options.has(QStringLiteral("no-tls")))
        problems.append(QStringLiteral("--no-tls: only for 'corralctl site update'"));
    applySiteProxySettings(settings, QString(), config);
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("proxy: "));
    printDevCaNotice(context, settings);

    // Block the stop signals before the engine's threads exist, so they inherit the mask
    // and only sigwait() below ever sees SIGINT/SIGTERM.
    sigset_t stopSignals, previous;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    sigaddset(&stopSignals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopSignals, &previous);
    ProxyEngine engine;
    if (auto started = engine.start(config); !started) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        return context.error(started.error());
    }
    context.out << "corralctl proxy: listening on "
                << Endpoint{config.listenAddress, engine.port()}.toString() << " ("
                << engine.threadCount() << " threads, " << policyName(config.policy) << ")\n";
    for (const Backend &b : config.backends)
        context.out << "  backend " << b.toSpec() << "\n";
    if (!config.staticFiles.root.isEmpty())
        context.out << "  static files from " << config.staticFiles.root << "\n";
    if (!config.accessLog.path.isEmpty())
        context.out << "  access log " << config.accessLog.path << "\n";
    if (config.tls.enabled)
        context.out
            << "  https (" << (config.tls.certFile.isEmpty() ? "development CA" : "cert ")
            << config.tls.certFile << ")"
            << (config.tls.redirectHttpListen.isEmpty()
                    ? QString()
                    : QStringLiteral(", http://%1 redirects").arg(config.tls.redirectHttpListen))
            << "\n";
    // The token file's path, never the token: logs are read by more people than the file.
    if (const AdminEndpoint admin = engine.adminEndpoint(); admin.isUnix())
        context.out << "  admin API on " << admin.toString() << "\n";
    else if (admin.port)
        context.out << "  admin API on " << admin.toString() << " (bearer token in "
                    << admin.tokenFile << ")\n";
    context.out.flush();
    // Wait for the stop signal, logging backend state changes as they come (a 200 ms poll:
    // the engine's threads never block on this log).
    int signal = 0;
    const timespec tick{0, 200 * 1000 * 1000};
    for (;;) {
        signal = sigtimedwait(&stopSignals, nullptr, &tick);
        const QList<BackendEvent> events = engine.takeBackendEvents();
        for (const BackendEvent &event : events)
            context.err << event.toString() << "\n";
        if (!events.isEmpty()) context.err.flush();
        if (signal > 0) break;
    }
    context.out << "corralctl proxy: " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
                << ", draining\n";
    context.out.flush();
    const bool clean = engine.drainAndStop(std::chrono::seconds(10));
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (!clean) context.err << "corralctl proxy: drain timed out; open requests were cut\n";
    return Success;
}

static QString proxyUsageText() {
    return QString::fromLatin1(proxyUsage).arg(proxySettingOptionsHelp());
}

QList<Command> proxyCommands() {
    return {Command{QStringLiteral("proxy"), QStringLiteral("Run the embedded load balancer"),
                    proxyUsageText(), runProxy}};
}

} // namespace corral::cli
