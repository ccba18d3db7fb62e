#include "cli/Context.h"
#include "cluster/RemoteSite.h"
#include "model/FieldText.h"
#include "ssh/HostSessions.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/ConfigImport.h"
#include "upstreams/SiteLock.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>

namespace corral::cli {

static const char applyUsage[] =
    "Usage: corralctl apply SITE [--dry-run] [--no-wait] [--accept-new]\n"
    "\n"
    "Renders the site's production balancer config and installs it on the site's balancer\n"
    "host (the site's \"balancer\" object in the inventory: host, format, configPath,\n"
    "validate, reload, probeUrl, errorLog, stateDirectory) transactionally: prints the unified\n"
    "diff against the host's file, uploads to a hidden temporary file next to it\n"
    "(.FILE.corral-new-ID), backs the current file up to STATEDIR/FILE.ID.bak, moves the new\n"
    "one into place, validates, reloads, verifies (GET probeUrl through the balancer asking\n"
    "for the site's first server name as Host, and as the TLS name for an https URL, until\n"
    "it answers 2xx or 3xx: a 5xx fails; no new [emerg] line in errorLog), then records the\n"
    "content as verified live (STATEDIR/FILE.verified). STATEDIR is the balancer's\n"
    "stateDirectory, by default /var/lib/corral/SITE (~/.local/state/corral/balancer/SITE\n"
    "when the SSH user cannot write there): outside the config's directory, so no include\n"
    "glob reads backups.\n"
    "A step that fails after install restores the backup and reloads again. When the\n"
    "connection to the host is lost after install began, nothing more runs and the message\n"
    "says the state on the host is unknown; run with --dry-run to see it (it says whether the\n"
    "installed file was verified live), and again without to converge: an installed file\n"
    "that was never verified live is validated, reloaded and verified, not \"up to date\".\n"
    "A site without backends is refused before anything changes (add one with\n"
    "'corralctl add-backend SITE' or 'corralctl site update SITE --backends ...').\n"
    "\n"
    "One operation at a time per site: apply takes the site's lock on this machine and on\n"
    "the balancer host (STATEDIR/lock, released when the operation ends or its connection\n"
    "drops) and waits, saying who holds it, while another apply, add-backend or\n"
    "rolling-restart runs.\n"
    "\n"
    "Options:\n"
    "  --dry-run     print the diff and change nothing on the host (takes no lock)\n"
    "  --no-wait     fail at once, naming the holder, when another operation holds the site\n"
    "  --accept-new  trust the host key of a host never seen before (as in 'host test')\n"
    "\n"
    "Exit codes: 0 applied (or nothing to change), 1 a step failed (the message says whether\n"
    "it was rolled back or the host's state is unknown), 2 usage.\n";

static const char importUsage[] =
    "Usage: corralctl import HOST --nginx PATH|--haproxy PATH [--dry-run] [--replace]\n"
    "                        [--accept-new]\n"
    "\n"
    "Reads an existing nginx or HAProxy config file on HOST over SSH (read-only) and adds one\n"
    "site per nginx upstream block or HAProxy backend to the inventory: its servers become\n"
    "the site's backends, its balancing method the closest policy. Site names are the block\n"
    "names with characters other than letters, digits, '.', '_' and '-' replaced by '-' (and a\n"
    "leading \"corral-\" removed). The host is not changed.\n"
    "\n"
    "Options:\n"
    "  --nginx PATH    an nginx file with upstream blocks\n"
    "  --haproxy PATH  an HAProxy file with backend or listen sections\n"
    "  --dry-run       print the sites that would be added; do not save\n"
    "  --replace       replace sites that already exist (else they are an error)\n"
    "  --accept-new    trust the host key of a host never seen before\n";

static QJsonObject stepJson(const ApplyStep &step) {
    return {{QStringLiteral("step"), step.name},
            {QStringLiteral("ok"), step.ok},
            {QStringLiteral("detail"), step.detail}};
}

static int applyCommand(Context &context, const QStringList &args) {
    const QString usage = QString::fromLatin1(applyUsage);
    auto options =
        parseOptions(args, OptionSpec{{QStringLiteral("dry-run"), QStringLiteral("no-wait"),
                                       QStringLiteral("accept-new")},
                                      {}});
    if (!options) return context.usageError(QStringLiteral("apply: ") + options.error(), usage);
    if (options->positional.size() != 1)
        return context.usageError(QStringLiteral("apply: expected exactly one site NAME"), usage);
    const bool dryRun = options->has(QStringLiteral("dry-run"));
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const QString name = options->positional.first();
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite remote(name, sessions,
                      remoteSiteOptions(context, QStringLiteral("apply"), name,
                                        options->has(QStringLiteral("no-wait"))));
    ApplyRequest request;
    request.dryRun = dryRun;
    if (!context.json) {
        request.onDiff = [&](const QString &diff) {
            context.out << (diff.isEmpty() ? QStringLiteral("(no change)\n") : diff) << Qt::flush;
        };
        request.onStep = [&](const ApplyStep &step) {
            context.out << (step.ok ? "  ok    " : "  FAIL  ") << step.name << ": " << step.detail
                        << Qt::endl;
        };
    }
    const SiteApplyOutcome outcome = remote.apply(request);
    if (!outcome.error.isEmpty()) return context.error(outcome.error);
    const ApplyReport &report = outcome.report;
    const Site *site = inventory->site(name);
    const QString &where = outcome.where;
    if (context.json) {
        QJsonArray steps;
        for (const ApplyStep &step : report.steps)
            steps.append(stepJson(step));
        QJsonObject object{{QStringLiteral("site"), name},
                           {QStringLiteral("target"), where},
                           {QStringLiteral("dryRun"), dryRun},
                           {QStringLiteral("diff"), report.diff},
                           {QStringLiteral("changed"), report.changed},
                           {QStringLiteral("applied"), report.applied},
                           {QStringLiteral("rolledBack"), report.rolledBack},
                           {QStringLiteral("outcome"), applyOutcomeName(report.outcome)},
                           {QStringLiteral("verifiedLive"), report.verifiedLive},
                           {QStringLiteral("steps"), steps}};
        if (!report.ok()) object.insert(QStringLiteral("error"), report.error);
        context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
    }
    const QString said = describeApply(report, name, site->balancer->host);
    if (!report.ok())
        return context.error(QStringLiteral("apply %1 to %2: %3").arg(name, where, said));
    if (!context.json) context.out << said << Qt::endl;
    return Success;
}

Result<std::unique_ptr<SiteLock>> lockSite(Context &context, SshSession &session,
                                           const RemoteBalancer &target, const QString &hostName,
                                           const QString &command, bool noWait) {
    SiteLock::Options options;
    options.noWait = noWait;
    options.command = QStringLiteral("corralctl %1 %2").arg(command, target.site);
    options.onWaiting = [&](const QString &holder) {
        context.err << "corralctl: " << command << " " << target.site << ": waiting: the site is "
                    << "locked by " << holder << " (--no-wait fails instead)" << Qt::endl;
    };
    return SiteLock::acquire(session, target, hostName, options);
}

/// A block name turned into a valid site name.
static QString siteNameFor(const QString &blockName) {
    QString name = siteNameOfBlock(blockName);
    static const QRegularExpression unsafe(QStringLiteral("[^A-Za-z0-9._-]+"));
    name.replace(unsafe, QStringLiteral("-"));
    while (name.startsWith(QLatin1Char('-')) || name.startsWith(QLatin1Char('.')))
        name.remove(0, 1);
    name = name.left(63);
    return name.isEmpty() ? QStringLiteral("imported") : name;
}

static int importCommand(Context &context, const QStringList &args) {
    const QString usage = QString::fromLatin1(importUsage);
    auto options =
        parseOptions(args, OptionSpec{{QStringLiteral("dry-run"), QStringLiteral("replace"),
                                       QStringLiteral("accept-new")},
                                      {QStringLiteral("nginx"), QStringLiteral("haproxy")}});
    if (!options) return context.usageError(QStringLiteral("import: ") + options.error(), usage);
    if (options->positional.size() != 1)
        return context.usageError(QStringLiteral("import: expected exactly one HOST"), usage);
    const bool nginx = options->has(QStringLiteral("nginx"));
    if (nginx == options->has(QStringLiteral("haproxy")))
        return context.usageError(QStringLiteral("import: give exactly one of --nginx PATH and "
                                                 "--haproxy PATH"),
                                  usage);
    const QString path =
        options->value(nginx ? QStringLiteral("nginx") : QStringLiteral("haproxy"));
    if (path.isEmpty())
        return context.usageError(QStringLiteral("import: the PATH is empty"), usage);
    const QString hostName = options->positional.first();
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    auto session = openHostSession(context, inventory.value(), hostName,
                                   options->has(QStringLiteral("accept-new")));
    if (!session) return context.error(QStringLiteral("import: ") + session.error());
    auto read = session.value()->exec(
        shellCommand({QStringLiteral("cat"), QStringLiteral("--"), path}), 60000);
    if (!read)
        return context.error(QStringLiteral("import %1:%2: %3").arg(hostName, path, read.error()));
    if (read->exitStatus != 0)
        return context.error(QStringLiteral("import %1:%2: %3")
                                 .arg(hostName, path, QString::fromUtf8(read->stdErr).trimmed()));
    const QString text = QString::fromUtf8(read->stdOut);

    struct Found {
        QString block;
        BalancingPolicy policy;
        QList<Backend> backends;
    };
    QList<Found> found;
    if (nginx) {
        auto upstreams = parseNginxUpstreams(text);
        if (!upstreams)
            return context.error(
                QStringLiteral("import %1:%2: %3").arg(hostName, path, upstreams.error()));
        for (const NginxUpstream &upstream : upstreams.value()) {
            Found entry{upstream.name, upstream.policy, {}};
            for (const NginxUpstreamServer &server : upstream.servers)
                entry.backends.append(server.backend);
            found.append(entry);
        }
    } else {
        auto backends = parseHaproxyBackends(text);
        if (!backends)
            return context.error(
                QStringLiteral("import %1:%2: %3").arg(hostName, path, backends.error()));
        for (const HaproxyBackend &backend : backends.value()) {
            Found entry{backend.name, backend.policy, {}};
            for (const HaproxyServer &server : backend.servers)
                entry.backends.append(server.backend);
            found.append(entry);
        }
    }
    if (found.isEmpty())
        return context.error(QStringLiteral("import %1:%2: no %3 found")
                                 .arg(hostName, path,
                                      nginx ? QStringLiteral("upstream blocks")
                                            : QStringLiteral("backend sections")));

    const bool replace = options->has(QStringLiteral("replace"));
    QJsonArray imported;
    QStringList names;
    for (const Found &entry : found) {
        Site site;
        site.name = siteNameFor(entry.block);
        if (names.contains(site.name))
            return context.error(QStringLiteral("import %1:%2: %3 and another block both "
                                                "become site \"%4\"")
                                     .arg(hostName, path, shown(entry.block), site.name));
        names.append(site.name);
        site.workers = 0; // the backends run elsewhere; Corral does not start them
        site.policy = entry.policy;
        site.backends = entry.backends;
        if (auto valid = site.validate(); !valid)
            return context.error(QStringLiteral("import %1:%2: block %3: %4")
                                     .arg(hostName, path, shown(entry.block), valid.error()));
        const bool exists = inventory->site(site.name) != nullptr;
        if (exists && !replace)
            return context.error(QStringLiteral("import: a site named \"%1\" already exists in %2 "
                                                "(use --replace to overwrite it)")
                                     .arg(site.name, context.inventoryPath));
        auto stored = exists ? inventory->updateSite(site) : inventory->addSite(site);
        if (!stored) return context.error(QStringLiteral("import: ") + stored.error());
        imported.append(site.toJson());
        if (!context.json) {
            QStringList keys;
            for (const Backend &backend : site.backends)
                keys.append(backend.key());
            context.out << (options->has(QStringLiteral("dry-run")) ? "would import" : "imported")
                        << " site " << site.name << " from " << shown(entry.block) << ": "
                        << policyName(site.policy) << ", " << keys.join(QStringLiteral(" "))
                        << Qt::endl;
        }
    }
    if (!options->has(QStringLiteral("dry-run"))) {
        if (auto saved = inventory->save(context.inventoryPath); !saved)
            return context.error(saved.error());
    }
    if (context.json)
        context.out << QJsonDocument(QJsonObject{{QStringLiteral("sites"), imported}})
                           .toJson(QJsonDocument::Indented)
                    << Qt::flush;
    return Success;
}

QList<Command> applyCommands() {
    return {Command{QStringLiteral("apply"),
                    QStringLiteral("Install a site's balancer config on its host, with rollback"),
                    QString::fromLatin1(applyUsage), applyCommand},
            Command{QStringLiteral("import"),
                    QStringLiteral("Add sites from a host's nginx upstreams or HAProxy backends"),
                    QString::fromLatin1(importUsage), importCommand}};
}

} // namespace corral::cli
