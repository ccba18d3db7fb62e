#include "agent/AgentClient.h"
#include "cli/Context.h"
#include "cli/ProxySettingOptions.h"
#include "model/FieldText.h"
#include "ssh/ShellQuote.h"
#include "upstreams/BalancerConventions.h"

#include <QJsonArray>
#include <QJsonDocument>

namespace corral::cli {

static const char siteUsage[] =
    "Usage:\n"
    "  corralctl site add NAME [--backends=HOST:PORT[;weight=N][;backup][;down],...]\n"
    "                          [--host SERVER_NAME]... [--static PATH] [--policy P]\n"
    "                          [--listen ADDR:PORT] [--workers N] [--base-port P]\n"
    "                          [--health PATH] [--command CMD [--arg A]...]\n"
    "                          [--worker-host HOST]...\n"
    "                          [--static-follow-symlinks] [--cache-control VALUE]\n"
    "                          [--gzip|--no-gzip] [--access-log FILE|-|off]\n"
    "                          [--tls [--cert FILE --key FILE] [--redirect-http ADDR:PORT]]\n"
    "                          [--balancer nginx|haproxy|apache --balancer-host HOST]\n"
    "                          [--balancer-listen ADDR:PORT] [--config-path P]\n"
    "                          [--validate CMD] [--reload CMD] [--probe-url URL]\n"
    "                          [--error-log P] [--log-dir P] [--runtime-dir P]\n"
    "                          [--state-dir P] [--step-timeout S]\n"
    "  corralctl site update NAME [same options as add; only those given change]\n"
    "                             [--no-balancer]\n"
    "  corralctl site remove NAME\n"
    "  corralctl site list [--json]\n"
    "  corralctl site show NAME [--json]\n"
    "\n"
    "Options:\n"
    "  --backends LIST  upstream servers, comma-separated\n"
    "  --host NAME      server name (virtual host); repeat or comma-separate\n"
    "  --static PATH    directory served directly by the front proxy (the embedded one and\n"
    "                   the rendered nginx/Apache site)\n"
    "  --policy P       round-robin, least-conn, weighted, sticky-cookie or ip-hash\n"
    "                   (update: a local site running in the Corral agent switches at once)\n"
    "  --listen A:P     address of Corral's embedded balancer for this site\n"
    "  --workers N      worker processes (default 2)\n"
    "  --base-port P    first port for workers (default 3000)\n"
    "  --health PATH    HTTP path a healthy worker answers with 2xx\n"
    "  --command CMD    program the workers run (one word: the executable)\n"
    "  --arg A          one argument of the workers' command, {port} is the worker's port;\n"
    "                   repeat for each (given on update: they replace all the old ones)\n"
    "  --worker-host H  inventory host the workers run on; repeat for each (default: the\n"
    "                   balancer's host for a site with a production balancer, else local)\n"
    "\n"
    "The embedded proxy's settings (corralctl up, start and the console; --host names the\n"
    "development certificate's hosts):\n"
    "%1"
    "\n"
    "Production balancer (nginx, HAProxy or Apache on an SSH host, see 'corralctl apply'):\n"
    "  --balancer KIND      nginx, haproxy or apache; adds the balancer (or changes its kind)\n"
    "                       with the defaults of a stock Debian install below for every\n"
    "                       option not given\n"
    "  --balancer-host H    inventory SSH host the balancer runs on (required with it)\n"
    "  --balancer-listen A:P  address and port the rendered site listens on\n"
    "                       (*:PORT for every address; default port 80)\n"
    "  --config-path P      absolute path of the site's config file on the host\n"
    "  --validate CMD       command that checks the config, e.g. \"nginx -t\"\n"
    "  --reload CMD         command that reloads the balancer\n"
    "                       (CMD is split into words like a shell would, with '...' and\n"
    "                       \"...\" quoting, but runs without a shell: | & ; < > ( ) $ `\n"
    "                       must be quoted)\n"
    "  --probe-url URL      http(s) URL fetched through the balancer after a reload\n"
    "  --error-log P        balancer error log checked for new [emerg] lines after a reload\n"
    "  --log-dir P          directory of the site's access and error logs\n"
    "  --runtime-dir P      HAProxy: directory of the stats socket (default /run/haproxy)\n"
    "  --state-dir P        where apply keeps backups and the site's lock on the host\n"
    "                       (default /var/lib/corral/NAME)\n"
    "  --step-timeout S     seconds validate or reload may run on the host (default 60)\n"
    "  --no-balancer        (update) remove the production balancer from the site\n"
    "  An empty value (--error-log=) clears an optional path.\n"
    "\n"
    "Defaults per kind (stock Debian):\n"
    "  nginx    config /etc/nginx/sites-enabled/NAME, validate \"nginx -t\",\n"
    "           reload \"systemctl reload nginx\", error log /var/log/nginx/error.log,\n"
    "           log dir /var/log/nginx\n"
    "  haproxy  config /etc/haproxy/haproxy.cfg,\n"
    "           validate \"haproxy -c -f /etc/haproxy/haproxy.cfg\",\n"
    "           reload \"systemctl reload haproxy\", runtime dir /run/haproxy\n"
    "  apache   config /etc/apache2/sites-enabled/NAME.conf, validate \"apache2ctl -t\",\n"
    "           reload \"systemctl reload apache2\", error log /var/log/apache2/error.log,\n"
    "           log dir /var/log/apache2\n";

/// The options that only make sense with a production balancer.
static const QStringList balancerOptions{
    QStringLiteral("balancer-host"), QStringLiteral("balancer-listen"),
    QStringLiteral("config-path"),   QStringLiteral("validate"),
    QStringLiteral("reload"),        QStringLiteral("probe-url"),
    QStringLiteral("error-log"),     QStringLiteral("log-dir"),
    QStringLiteral("runtime-dir"),   QStringLiteral("state-dir"),
    QStringLiteral("step-timeout")};

static const OptionSpec siteSpec{
    QStringList{QStringLiteral("no-balancer")} + proxySettingOptionSpec().flags,
    QStringList{QStringLiteral("backends"), QStringLiteral("host"), QStringLiteral("policy"),
                QStringLiteral("listen"), QStringLiteral("workers"), QStringLiteral("base-port"),
                QStringLiteral("health"), QStringLiteral("command"), QStringLiteral("arg"),
                QStringLiteral("worker-host"), QStringLiteral("balancer")} +
        balancerOptions + proxySettingOptionSpec().valued};

/// --validate and --reload split into words; checked before anything else, since a command
/// line that cannot be split is a malformed command line (exit 2), not a bad value.
struct BalancerCommands {
    std::optional<QStringList> validate;
    std::optional<QStringList> reload;
};

static Result<BalancerCommands> splitBalancerCommands(const ParsedOptions &options) {
    BalancerCommands commands;
    for (const auto &[name, target] : {std::pair{QStringLiteral("validate"), &commands.validate},
                                       std::pair{QStringLiteral("reload"), &commands.reload}}) {
        if (!options.has(name)) continue;
        auto words = splitShellWords(options.value(name));
        if (!words) return fail(QStringLiteral("--%1: %2").arg(name, words.error()));
        *target = std::move(words).value();
    }
    return commands;
}

/// The balancer part of applySiteOptions: --no-balancer, --balancer (a new balancer or a new
/// kind gets the stock defaults for every kind-specific field not given), then each field.
static void applyBalancerOptions(const ParsedOptions &options, const BalancerCommands &commands,
                                 const Inventory &inventory, Site &site, QStringList &problems) {
    if (options.has(QStringLiteral("no-balancer"))) site.balancer.reset();
    if (options.has(QStringLiteral("balancer"))) {
        const QString format = options.value(QStringLiteral("balancer"));
        if (!SiteBalancer::formatNames().contains(format)) {
            problems.append(
                QStringLiteral("--balancer: %1 is not one of %2")
                    .arg(shown(format), SiteBalancer::formatNames().join(QStringLiteral(", "))));
        } else if (!site.balancer || site.balancer->format != format) {
            SiteBalancer balancer = SiteBalancer::stockDebian(format, site.name);
            if (site.balancer) { // what does not depend on the kind stays
                balancer.host = site.balancer->host;
                balancer.listenAddress = site.balancer->listenAddress;
                balancer.httpPort = site.balancer->httpPort;
                balancer.probeUrl = site.balancer->probeUrl;
                balancer.stepTimeout = site.balancer->stepTimeout;
                balancer.stateDirectory = site.balancer->stateDirectory;
            }
            site.balancer = balancer;
        }
    }
    if (options.has(QStringLiteral("balancer-host"))) {
        const QString name = options.value(QStringLiteral("balancer-host"));
        const Host *host = inventory.host(name);
        if (!host || host->kind != Host::Kind::Ssh)
            problems.append(QStringLiteral("--balancer-host: %1 is not an SSH host of the "
                                           "inventory (add it with 'corralctl host add')")
                                .arg(shown(name)));
        // Set even when refused, so the balancer's own check does not add "host is empty".
        if (site.balancer) site.balancer->host = name;
    }
    if (!site.balancer) return; // only when --balancer was refused: said above
    SiteBalancer &balancer = *site.balancer;
    if (options.has(QStringLiteral("balancer-listen"))) {
        const QString listen = options.value(QStringLiteral("balancer-listen"));
        if (auto set = balancer.setListen(listen); !set)
            problems.append(QStringLiteral("--balancer-listen: ") + set.error());
    }
    if (commands.validate) balancer.validate = *commands.validate;
    if (commands.reload) balancer.reload = *commands.reload;
    const std::pair<const char *, QString *> paths[] = {
        {"config-path", &balancer.configPath},       {"probe-url", &balancer.probeUrl},
        {"error-log", &balancer.errorLog},           {"log-dir", &balancer.logDirectory},
        {"runtime-dir", &balancer.runtimeDirectory}, {"state-dir", &balancer.stateDirectory}};
    for (const auto &[name, field] : paths)
        if (options.has(QLatin1String(name))) *field = options.value(QLatin1String(name));
    if (options.has(QStringLiteral("step-timeout"))) {
        bool numeric = false;
        const int seconds = options.value(QStringLiteral("step-timeout")).toInt(&numeric);
        if (numeric && seconds >= 1 && seconds <= SiteBalancer::MaxStepTimeout)
            balancer.stepTimeout = seconds;
        else
            problems.append(QStringLiteral("--step-timeout: %1 is not a number of seconds in 1..%2")
                                .arg(shown(options.value(QStringLiteral("step-timeout"))))
                                .arg(SiteBalancer::MaxStepTimeout));
    }
}

/// Applies the options given on the command line to `site`; leaves the others alone.
/// Returns every value that could not be applied (each naming its option); the values that
/// could be applied are checked with the rest of the site by Site::problems().
static QStringList applySiteOptions(const ParsedOptions &options, const BalancerCommands &commands,
                                    const Inventory &inventory, Site &site) {
    QStringList problems;
    if (options.has(QStringLiteral("backends"))) {
        auto backends = Backend::parseList(
            options.values.value(QStringLiteral("backends")).join(QLatin1Char(',')));
        if (backends)
            site.backends = backends.value();
        else
            problems.append(QStringLiteral("--backends: ") + backends.error());
    }
    if (options.has(QStringLiteral("host")))
        site.serverNames = options.list(QStringLiteral("host"));
    // --static and the embedded proxy's other settings; the paths may be a production
    // host's, so they are not looked for here.
    problems += applyProxySettingOptions(options, site, ProxyPathCheck::Anywhere);
    if (options.has(QStringLiteral("policy"))) {
        const QString name = options.value(QStringLiteral("policy"));
        if (const auto policy = policyFromName(name))
            site.policy = *policy;
        else
            problems.append(
                QStringLiteral("--policy: %1 is not one of %2").arg(shown(name), policyNames()));
    }
    if (options.has(QStringLiteral("listen"))) {
        const QString listen = options.value(QStringLiteral("listen"));
        if (auto endpoint = Endpoint::parse(listen))
            site.listen = listen;
        else
            problems.append(QStringLiteral("--listen: ") + endpoint.error());
    }
    if (options.has(QStringLiteral("workers"))) {
        bool numeric = false;
        const int workers = options.value(QStringLiteral("workers")).toInt(&numeric);
        if (numeric && workers >= 0 && workers <= Site::MaxWorkers)
            site.workers = workers;
        else
            problems.append(QStringLiteral("--workers: %1 is not a number in 0..%2")
                                .arg(shown(options.value(QStringLiteral("workers"))))
                                .arg(Site::MaxWorkers));
    }
    if (options.has(QStringLiteral("base-port"))) {
        bool numeric = false;
        const uint port = options.value(QStringLiteral("base-port")).toUInt(&numeric);
        if (numeric && port >= 1 && port <= 65535)
            site.basePort = quint16(port);
        else
            problems.append(QStringLiteral("--base-port: %1 is not a port in 1..65535")
                                .arg(shown(options.value(QStringLiteral("base-port")))));
    }
    if (options.has(QStringLiteral("health")))
        site.healthPath = options.value(QStringLiteral("health"));
    if (options.has(QStringLiteral("command")))
        site.command = options.value(QStringLiteral("command"));
    if (options.has(QStringLiteral("arg"))) // not comma-split: an argument may hold commas
        site.args = options.values.value(QStringLiteral("arg"));
    if (options.has(QStringLiteral("worker-host"))) {
        const QStringList hosts = options.list(QStringLiteral("worker-host"));
        for (const QString &host : hosts)
            if (host != Host::LocalName && !inventory.host(host))
                problems.append(QStringLiteral("--worker-host: no host named %1 in the inventory "
                                               "(add it with 'corralctl host add')")
                                    .arg(shown(host)));
        site.hosts = hosts;
    }
    applyBalancerOptions(options, commands, inventory, site, problems);
    return problems;
}

static QString usage() {
    return QString::fromLatin1(siteUsage).arg(proxySettingOptionsHelp());
}

static void printSite(const Context &context, const Site &site) {
    if (context.json) {
        context.out << QJsonDocument(site.toJson()).toJson(QJsonDocument::Indented) << Qt::flush;
        return;
    }
    QStringList backends;
    for (const Backend &backend : site.backends)
        backends.append(backend.toSpec());
    QTextStream &out = context.out;
    out << "name:         " << site.name << '\n'
        << "policy:       " << policyName(site.policy) << '\n'
        << "backends:     "
        << (backends.isEmpty() ? QStringLiteral("-") : backends.join(QStringLiteral(", "))) << '\n'
        << "server names: "
        << (site.serverNames.isEmpty() ? QStringLiteral("-")
                                       : site.serverNames.join(QStringLiteral(", ")))
        << '\n'
        << "listen:       " << (site.listen.isEmpty() ? QStringLiteral("-") : site.listen) << '\n'
        << "workers:      " << site.workers << " from port " << site.basePort << '\n'
        << "health path:  "
        << (site.healthPath.isEmpty() ? QStringLiteral("- (TCP connect)") : site.healthPath) << '\n'
        << "hosts:        "
        << (!site.hosts.isEmpty() ? site.hosts.join(QStringLiteral(", "))
            : site.balancer       ? site.balancer->host + QStringLiteral(" (the balancer's host)")
                                  : Host::LocalName)
        << '\n'
        << "command:      "
        << (site.command.isEmpty() ? QStringLiteral("- (proxy only)")
                                   : shellCommand(QStringList{site.command} + site.args))
        << '\n';
    for (const QString &line : proxySettingLines(site))
        out << line << '\n';
    if (!site.balancer) {
        out << "balancer:     -" << Qt::endl;
        return;
    }
    const SiteBalancer &balancer = *site.balancer;
    const auto orDefault = [](const QString &value, const QString &fallback) {
        return value.isEmpty() ? fallback : value;
    };
    out << "balancer:     " << balancer.format << " on " << balancer.host << ", listening on "
        << balancer.listenText() << '\n'
        << "  config:       " << balancer.configPath << '\n'
        << "  validate:     " << shellCommand(balancer.validate) << '\n'
        << "  reload:       " << shellCommand(balancer.reload) << '\n'
        << "  step timeout: " << balancer.stepTimeout << " s\n"
        << "  probe URL:    " << orDefault(balancer.probeUrl, QStringLiteral("- (none)")) << '\n'
        << "  error log:    " << orDefault(balancer.errorLog, QStringLiteral("- (not checked)"))
        << '\n'
        << "  log dir:      "
        << orDefault(balancer.logDirectory, QStringLiteral("- (the balancer's default)")) << '\n';
    if (balancer.format == QLatin1String("haproxy"))
        out << "  runtime dir:  "
            << orDefault(balancer.runtimeDirectory, defaultHaproxyRuntimeDirectory()) << '\n';
    out << "  state dir:    "
        << orDefault(balancer.stateDirectory, QStringLiteral("/var/lib/corral/") + site.name)
        << Qt::endl;
}

static int saveOrFail(const Context &context, const Inventory &inventory) {
    if (auto saved = inventory.save(context.inventoryPath); !saved)
        return context.error(saved.error());
    return Success;
}

/// A local site the agent runs takes a new policy at once (its embedded balancer switches;
/// no worker restarts), so that the fix 'corralctl check' offers works as printed. No agent is
/// started for this; one that cannot take it leaves the change for the next start.
static void followPolicyInAgent(const Context &context, const Site &site) {
    agent::AgentClient agentClient;
    if (!agentClient.connectToAgent(false)) return;
    const auto running = agentClient.status(site.name);
    if (!running || running->isEmpty()) return;
    const agent::SiteState state = running->first().state;
    if (state != agent::SiteState::Running && state != agent::SiteState::Starting) return;
    auto changed =
        agentClient.call(QString::fromLatin1(agent::op::Policy),
                         QJsonObject{{QStringLiteral("site"), site.name},
                                     {QStringLiteral("policy"), policyName(site.policy)}});
    if (!changed)
        context.err << "corralctl: warning: site " << site.name
                    << " runs in the Corral agent with its old policy (" << changed.error()
                    << "); 'corralctl start " << site.name << "' restarts it with the new one"
                    << Qt::endl;
    else if (!context.json)
        context.out << "the running site " << site.name << " balances " << policyName(site.policy)
                    << " now" << Qt::endl;
}

static int siteCommand(Context &context, const QStringList &args) {
    if (args.isEmpty())
        return context.usageError(QStringLiteral("site: missing subcommand"), usage());
    const QString sub = args.first();
    auto options = parseOptions(
        args.mid(1),
        sub == QLatin1String("add") || sub == QLatin1String("update") ? siteSpec : OptionSpec{});
    if (!options)
        return context.usageError(QStringLiteral("site %1: ").arg(sub) + options.error(), usage());
    const QStringList &positional = options->positional;
    const auto expectArgs = [&](qsizetype count) { return positional.size() == count; };

    if (sub == QLatin1String("list")) {
        if (!expectArgs(0))
            return context.usageError(QStringLiteral("site list takes no arguments"), usage());
        auto inventory = context.loadInventory();
        if (!inventory) return context.error(inventory.error());
        if (context.json) {
            QJsonArray sites;
            for (const Site &site : inventory->sites())
                sites.append(site.toJson());
            context.out << QJsonDocument(QJsonObject{{QStringLiteral("sites"), sites}})
                               .toJson(QJsonDocument::Indented)
                        << Qt::flush;
            return Success;
        }
        if (inventory->sites().isEmpty()) {
            context.out << "no sites in " << context.inventoryPath << Qt::endl;
            return Success;
        }
        context.out << QStringLiteral("%1 %2 %3 %4\n")
                           .arg(QStringLiteral("NAME"), -20)
                           .arg(QStringLiteral("POLICY"), -14)
                           .arg(QStringLiteral("BACKENDS"), -9)
                           .arg(QStringLiteral("SERVER NAMES"));
        for (const Site &site : inventory->sites())
            context.out << QStringLiteral("%1 %2 %3 %4\n")
                               .arg(site.name, -20)
                               .arg(policyName(site.policy), -14)
                               .arg(site.backends.size(), -9)
                               .arg(site.serverNames.join(QLatin1Char(',')));
        context.out << Qt::flush;
        return Success;
    }

    if (sub != QLatin1String("add") && sub != QLatin1String("update") &&
        sub != QLatin1String("remove") && sub != QLatin1String("show"))
        return context.usageError(QStringLiteral("site: unknown subcommand %1").arg(shown(sub)));
    if (!expectArgs(1))
        return context.usageError(
            QStringLiteral("site %1: expected exactly one site NAME").arg(sub), usage());
    const QString name = positional.first();
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());

    if (sub == QLatin1String("show")) {
        const Site *site = inventory->site(name);
        if (!site)
            return context.error(
                QStringLiteral("no site named %1 in %2").arg(shown(name), context.inventoryPath));
        printSite(context, *site);
        return Success;
    }
    if (sub == QLatin1String("remove")) {
        // The agent's list follows the inventory: a site running there must be stopped
        // first (its workers would outlive their only record); a stopped one is forgotten.
        // No agent is started for this.
        agent::AgentClient agentClient;
        if (agentClient.connectToAgent(false)) {
            const auto running = agentClient.status(name);
            if (running && !running->isEmpty()) {
                const agent::SiteState state = running->first().state;
                if (state != agent::SiteState::Stopped && state != agent::SiteState::Failed)
                    return context.error(
                        QStringLiteral("site %1 is %2 in the Corral agent; stop it first "
                                       "(corralctl stop %1)")
                            .arg(shown(name), agent::siteStateName(state)));
                (void)agentClient.call(QString::fromLatin1(agent::op::Forget),
                                       {{QStringLiteral("site"), name}});
            }
        }
        if (auto removed = inventory->removeSite(name); !removed)
            return context.error(removed.error() + QStringLiteral(" in ") + context.inventoryPath);
        if (int code = saveOrFail(context, inventory.value()); code != Success) return code;
        if (!context.json) context.out << "removed site " << name << Qt::endl;
        return Success;
    }

    Site site;
    if (sub == QLatin1String("update")) {
        const Site *existing = inventory->site(name);
        if (!existing)
            return context.error(
                QStringLiteral("no site named %1 in %2").arg(shown(name), context.inventoryPath));
        site = *existing;
    } else {
        site.name = name;
    }
    // Every bad value at once: those the options could not take, then the site's own checks
    // (the name, paths and names that reach balancer configs...).
    // Balancer options that cannot apply are a malformed command line, like a missing value.
    const bool hasBalancer =
        site.balancer.has_value() && !options->has(QStringLiteral("no-balancer"));
    for (const QString &option : balancerOptions + QStringList{QStringLiteral("balancer")}) {
        if (!options->has(option)) continue;
        if (options->has(QStringLiteral("no-balancer")))
            return context.usageError(
                QStringLiteral("site %1: --no-balancer and --%2 exclude each other")
                    .arg(sub, option));
        if (!hasBalancer && !options->has(QStringLiteral("balancer")))
            return context.usageError(
                QStringLiteral("site %1: --%2 needs --balancer nginx|haproxy|apache (the site has "
                               "no production balancer)")
                    .arg(sub, option));
    }
    if (!hasBalancer && options->has(QStringLiteral("balancer")) &&
        !options->has(QStringLiteral("balancer-host")))
        return context.usageError(
            QStringLiteral(
                "site %1: --balancer needs --balancer-host HOST (the SSH host it runs on)")
                .arg(sub));
    auto commands = splitBalancerCommands(options.value());
    if (!commands)
        return context.usageError(QStringLiteral("site %1: ").arg(sub) + commands.error());
    QStringList problems =
        applySiteOptions(options.value(), commands.value(), inventory.value(), site);
    problems += site.problems();
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("site %1: ").arg(sub));
    auto changed =
        sub == QLatin1String("add") ? inventory->addSite(site) : inventory->updateSite(site);
    if (!changed)
        return context.error(QStringLiteral("site %1 %2: ").arg(sub, name) + changed.error());
    if (int code = saveOrFail(context, inventory.value()); code != Success) return code;
    if (context.json)
        printSite(context, site);
    else
        context.out << (sub == QLatin1String("add") ? "added" : "updated") << " site " << name
                    << " (" << site.backends.size() << " backends)" << Qt::endl;
    if (sub == QLatin1String("update") && options->has(QStringLiteral("policy")) && !site.balancer)
        followPolicyInAgent(context, site);
    return Success;
}

QList<Command> siteCommands() {
    return {Command{QStringLiteral("site"),
                    QStringLiteral("Add, update, remove, list and show sites"), usage(),
                    siteCommand}};
}

} // namespace corral::cli
