#include "cli/Context.h"
#include "cli/DevCaNotice.h"
#include "cli/SiteOptions.h"
#include "cluster/LocalCluster.h"
#include "model/FieldText.h"
#include "proxy/ProxyEngine.h"
#include "supervisor/FailureReport.h"
#include "supervisor/ProcessGroupReaper.h"
#include "supervisor/Supervisor.h"
#include "util/ListeningSockets.h"
#include "util/SignalWatcher.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>

#include <csignal>

namespace corral::cli {

static const char upUsageHead[] =
    "Usage: corralctl up [SITE] [--workers N|auto] [--base-port P] [--listen ADDR:PORT]\n"
    "                    [--health PATH] [--policy P] [--cwd DIR] [--env KEY=VALUE]...\n"
    "                    [--start-timeout SECONDS] [--kill-timeout SECONDS]\n"
    "                    (--demo | -- COMMAND ARGS...)\n"
    "\n"
    "Runs a local cluster in the foreground: N workers of COMMAND, each on its own port\n"
    "({port} in ARGS and $PORT give it), restarted with backoff when they crash. Prints each\n"
    "worker's state changes; Ctrl-C or SIGTERM stops every worker cleanly and exits 0.\n"
    "\n"
    "  SITE               a site from the inventory (its command, workers, ports, health path\n"
    "                     are used; options override), or a name for an ad-hoc cluster\n";
static const char upUsageTail[] =
    "\n"
    "With --json, every state change is printed as one JSON object per line.\n";

static QString upUsage() {
    return QString::fromLatin1(upUsageHead) + siteOptionsHelp() + QString::fromLatin1(upUsageTail);
}

static int runUp(Context &context, const QStringList &args) {
    const QString usage = upUsage();
    auto options = parseOptions(args, siteOptionSpec());
    if (!options) return context.usageError(QStringLiteral("up: ") + options.error(), usage);
    if (options->positional.size() > 1)
        return context.usageError(QStringLiteral("up: expected at most one SITE before \"--\""),
                                  usage);
    const bool demo = options->flags.contains(QStringLiteral("demo"));
    if (demo && !options->rest.isEmpty())
        return context.usageError(QStringLiteral("up: give either --demo or -- COMMAND, not both"),
                                  usage);

    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    Site site;
    const QString siteName =
        options->positional.value(0, demo ? QStringLiteral("demo") : QStringLiteral("dev"));
    const Site *known = inventory->site(siteName);
    if (known) {
        site = *known;
    } else {
        site.name = siteName;
        site.workers = autoWorkerCount();
    }
    SupervisionPolicy policy;
    const QStringList problems = applySiteOptions(options.value(), site, policy);
    if (site.command.isEmpty())
        return context.usageError(
            QStringLiteral("up: nothing to run: give --demo or -- COMMAND ARGS"), usage);
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("up: "));
    printDevCaNotice(context, site);

    // One address, one owner: say who holds it before starting anything.
    if (!site.listen.isEmpty()) {
        const auto endpoint = Endpoint::parse(site.listen);
        if (auto free = checkListenAddressFree(QHostAddress(endpoint->host), endpoint->port); !free)
            return context.error(QStringLiteral("up: --listen: ") + free.error());
    }

    // Before any worker exists, so the sentinel inherits as few descriptors as possible.
    ProcessGroupReaper::instance();
    LocalCluster cluster(policy);
    Supervisor &supervisor = cluster.supervisor();
    QSet<quint16> reserved;
    for (const Site &other : inventory->sites())
        if (other.name != site.name)
            for (quint16 port : other.ports)
                reserved.insert(port);
    supervisor.setReservedPorts(reserved);

    QTextStream &out = context.out;
    const bool json = context.json;
    const auto event = [&](const QJsonObject &object) {
        out << QJsonDocument(object).toJson(QJsonDocument::Compact) << Qt::endl;
    };
    int exitCode = Success;
    bool stopping = false;
    QSet<quint16> everRunning;
    QObject::connect(
        &supervisor, &Supervisor::workerStateChanged, &supervisor,
        [&](const QString &, quint16 port, qint64 pid, WorkerState state, const QString &cause) {
            if (json) {
                event({{QStringLiteral("event"), QStringLiteral("state")},
                       {QStringLiteral("port"), port},
                       {QStringLiteral("pid"), pid},
                       {QStringLiteral("state"), workerStateName(state)},
                       {QStringLiteral("cause"), cause}});
            } else {
                out << QStringLiteral("%1  %2  %3  %4  %5")
                           .arg(QTime::currentTime().toString(QStringLiteral("HH:mm:ss.zzz")))
                           .arg(port, -5)
                           .arg(pid > 0 ? QString::number(pid) : QStringLiteral("-"), -7)
                           .arg(workerStateName(state), -9)
                           .arg(cause)
                    << Qt::endl;
            }
            if (state == WorkerState::Running && !everRunning.contains(port)) {
                everRunning.insert(port);
                if (everRunning.size() == supervisor.ports(site.name).size() && !json)
                    out << "corral: all " << everRunning.size() << " workers of " << site.name
                        << " are running (Ctrl-C stops them)" << Qt::endl;
            }
            if (stopping || state != WorkerState::Failed) return;
            // Why, in the program's own words: its last lines and where the rest is.
            for (const WorkerProcess *worker : supervisor.workers(site.name)) {
                if (worker->port() != port) continue;
                const WorkerFailureReport report = workerFailureReport(*worker);
                if (json)
                    event({{QStringLiteral("event"), QStringLiteral("failure")},
                           {QStringLiteral("port"), port},
                           {QStringLiteral("cause"), report.cause},
                           {QStringLiteral("lastLines"),
                            QJsonArray::fromStringList(report.lastLines)},
                           {QStringLiteral("log"), report.logPath}});
                else
                    context.err << "corralctl: " << report.toText() << Qt::endl;
            }
            for (const WorkerProcess *worker : supervisor.workers(site.name))
                if (worker->state() != WorkerState::Failed) return;
            context.error(
                QStringLiteral("every worker of %1 failed; last: %2").arg(site.name, cause));
            exitCode = Failure;
            stopping = true;
            cluster.stop();
        });
    QObject::connect(&supervisor, &Supervisor::portsChanged, &supervisor,
                     [&](const QString &name, const QList<quint16> &ports) {
                         if (!known) return;
                         // Re-read so edits made meanwhile (by the console, another corralctl)
                         // survive.
                         auto current = Inventory::load(context.inventoryPath);
                         if (!current || !current->site(name)) return;
                         Site updated = *current->site(name);
                         updated.ports = ports;
                         if (auto changed = current->updateSite(updated); changed)
                             if (auto saved = current->save(context.inventoryPath); !saved)
                                 context.err << "corralctl: warning: ports not remembered: "
                                             << saved.error() << Qt::endl;
                     });
    QObject::connect(&cluster, &LocalCluster::stopped, &supervisor, [&] {
        if (!json) out << "corral: all workers stopped" << Qt::endl;
        QCoreApplication::exit(exitCode);
    });
    SignalWatcher signalWatcher({SIGINT, SIGTERM, SIGHUP});
    QObject::connect(&signalWatcher, &SignalWatcher::received, &supervisor, [&](int signal) {
        if (stopping) {
            context.err << "corralctl: second signal; killing workers now" << Qt::endl;
            QCoreApplication::exit(exitCode); // ~WorkerProcess SIGKILLs each process group
            return;
        }
        stopping = true;
        if (!json)
            out << "corral: " << sigabbrev_np(signal) << " received, stopping "
                << supervisor.usedPorts().size() << " workers" << Qt::endl;
        cluster.stop();
    });

    if (!json) {
        out << "corral: site " << site.name << ": " << site.workers << " workers of "
            << QDir::toNativeSeparators(site.command)
            << (site.healthPath.isEmpty() ? QString()
                                          : QStringLiteral(", ready when GET ") + site.healthPath +
                                                QStringLiteral(" answers 2xx"))
            << '\n';
        out << QStringLiteral("%1  %2  %3  %4  %5\n")
                   .arg(QStringLiteral("TIME"), -12)
                   .arg(QStringLiteral("PORT"), -5)
                   .arg(QStringLiteral("PID"), -7)
                   .arg(QStringLiteral("STATE"), -9)
                   .arg(QStringLiteral("CAUSE"))
            << Qt::flush;
    } else {
        QObject::connect(&supervisor, &Supervisor::portsChanged, &supervisor,
                         [&](const QString &name, const QList<quint16> &ports) {
                             QJsonArray portArray;
                             for (quint16 port : ports)
                                 portArray.append(port);
                             event({{QStringLiteral("event"), QStringLiteral("ports")},
                                    {QStringLiteral("site"), name},
                                    {QStringLiteral("ports"), portArray}});
                         });
    }
    if (auto started = cluster.start(site); !started) return context.error(started.error());
    if (cluster.proxy() && !json) {
        out << "corral: balancing " << policyName(site.policy) << " on "
            << (site.tls ? "https://" : "http://") << site.listen
            << " (workers join as they become ready)" << Qt::endl;
        if (!site.staticRoot.isEmpty())
            out << "corral: static files from " << site.staticRoot << Qt::endl;
        if (const QString log = cluster.accessLogPath(); !log.isEmpty())
            out << "corral: access log " << log << Qt::endl;
    }
    if (json) {
        QJsonArray portArray;
        for (quint16 port : supervisor.ports(site.name))
            portArray.append(port);
        event({{QStringLiteral("event"), QStringLiteral("up")},
               {QStringLiteral("site"), site.name},
               {QStringLiteral("command"), site.command},
               {QStringLiteral("ports"), portArray}});
    }
    return QCoreApplication::exec();
}

QList<Command> upCommands() {
    return {Command{QStringLiteral("up"),
                    QStringLiteral("Run a local cluster of workers in the foreground"), upUsage(),
                    runUp}};
}

} // namespace corral::cli
