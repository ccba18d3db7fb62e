#include "cli/Context.h"
#include "model/FieldText.h"

#include <QJsonArray>
#include <QJsonDocument>

namespace corral::cli {

static const char siteUsage[] =
    "Usage:\n"
    "  corralctl site add NAME [--backends=HOST:PORT[;weight=N][;backup][;down],...]\n"
    "                          [--host SERVER_NAME]... [--static PATH] [--policy P]\n"
    "                          [--listen ADDR:PORT] [--workers N] [--base-port P]\n"
    "                          [--health PATH]\n"
    "  corralctl site update NAME [same options as add; only those given change]\n"
    "  corralctl site remove NAME\n"
    "  corralctl site list [--json]\n"
    "  corralctl site show NAME [--json]\n"
    "\n"
    "Options:\n"
    "  --backends LIST  upstream servers, comma-separated\n"
    "  --host NAME      server name (virtual host); repeat or comma-separate\n"
    "  --static PATH    directory served directly by the front proxy\n"
    "  --policy P       round-robin, least-conn, weighted, sticky-cookie or ip-hash\n"
    "  --listen A:P     address of Corral's embedded balancer for this site\n"
    "  --workers N      worker processes (default 2)\n"
    "  --base-port P    first port for workers (default 3000)\n"
    "  --health PATH    HTTP path a healthy worker answers with 2xx\n";

static const OptionSpec siteSpec{{},
                                 {QStringLiteral("backends"), QStringLiteral("host"),
                                  QStringLiteral("static"), QStringLiteral("policy"),
                                  QStringLiteral("listen"), QStringLiteral("workers"),
                                  QStringLiteral("base-port"), QStringLiteral("health")}};

/// Applies the options given on the command line to `site`; leaves the others alone.
/// Returns every value that could not be applied (each naming its option); the values that
/// could be applied are checked with the rest of the site by Site::problems().
static QStringList applySiteOptions(const ParsedOptions &options, Site &site) {
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
    if (options.has(QStringLiteral("static")))
        site.staticRoot = options.value(QStringLiteral("static"));
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
    return problems;
}

static QString usage() {
    return QString::fromLatin1(siteUsage);
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
        << "static root:  " << (site.staticRoot.isEmpty() ? QStringLiteral("-") : site.staticRoot)
        << '\n'
        << "listen:       " << (site.listen.isEmpty() ? QStringLiteral("-") : site.listen) << '\n'
        << "workers:      " << site.workers << " from port " << site.basePort << '\n'
        << "health path:  "
        << (site.healthPath.isEmpty() ? QStringLiteral("- (TCP connect)") : site.healthPath) << '\n'
        << "hosts:        "
        << (site.hosts.isEmpty() ? Host::LocalName : site.hosts.join(QStringLiteral(", ")))
        << Qt::endl;
}

static int saveOrFail(const Context &context, const Inventory &inventory) {
    if (auto saved = inventory.save(context.inventoryPath); !saved)
        return context.error(saved.error());
    return Success;
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
    QStringList problems = applySiteOptions(options.value(), site);
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
    return Success;
}

QList<Command> siteCommands() {
    return {Command{QStringLiteral("site"),
                    QStringLiteral("Add, update, remove, list and show sites"), usage(),
                    siteCommand}};
}

} // namespace corral::cli
