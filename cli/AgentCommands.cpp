// corralctl's commands for local sites owned by the per-user agent (issue 16): start, stop,
// restart, scale, ps, logs and agent start|stop|status. They are thin clients: the agent
// (core/agent) does the work and answers once it is done; these parse, ask, and print.

#include "agent/AgentClient.h"
#include "cli/Context.h"
#include "cli/DevCaNotice.h"
#include "cli/ProductionLogs.h"
#include "cli/SiteOptions.h"
#include "cluster/LocalCluster.h"
#include "model/FieldText.h"
#include "supervisor/LogReader.h"
#include "supervisor/WorkerProcess.h"
#include "util/Paths.h"
#include "util/SignalWatcher.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QRegularExpression>
#include <QThread>
#include <QTimer>

#include <csignal>
#include <map>
#include <memory>

#include <cerrno>
#include <sys/types.h>

namespace corral::cli {

using agent::AgentClient;
using agent::SiteState;
using agent::SiteStatus;
using agent::WorkerStatus;

namespace {

/// Start, stop, restart and scale reply once they have finished: as long as workers take to
/// start and drain. The agent always answers; this only bounds a wedged one.
constexpr int LongOperationMs = 15 * 60 * 1000;
constexpr int QuickOperationMs = 10000;
constexpr int DefaultLogLines = 15;
constexpr int MaxLogLines = 1000000;
constexpr int FollowPollMs = 200;

const char exitCodesHelp[] =
    "\n"
    "Exit codes: 0 done; 1 it failed or a value is invalid (the reason on stderr: the\n"
    "agent's error, or the socket path when no agent could be reached or started);\n"
    "2 the command line is malformed.\n";

QString usageWithExitCodes(const char *text) {
    return QString::fromLatin1(text) + QString::fromLatin1(exitCodesHelp);
}

void printJson(Context &context, const QJsonObject &object) {
    context.out << QJsonDocument(object).toJson(QJsonDocument::Compact) << Qt::endl;
}

/// An agent's message for the terminal: it may quote a worker's last output lines, which may
/// carry anything a client sent that worker; its lines stay lines, every other control
/// character is written out (escapeControls) so that nothing in it drives the terminal.
QString terminalText(const QString &message) {
    QStringList lines = message.split(QLatin1Char('\n'));
    for (QString &line : lines)
        line = escapeControls(line);
    return lines.join(QLatin1Char('\n'));
}

} // namespace

/// A worker's log line for the terminal: colours (SGR sequences, ESC [ digits m) and tabs are
/// kept, as in pm2 logs; any other control character, such as the start of a sequence that
/// sets the window title or moves the cursor, is written out.
QString terminalLogLine(const QString &line) {
    static const QRegularExpression colour(QStringLiteral("\x1b\\[[0-9;]{0,32}m"));
    QString result;
    qsizetype done = 0;
    const auto escapePlain = [&](qsizetype end) {
        const QStringList pieces = line.mid(done, end - done).split(QLatin1Char('\t'));
        QStringList escaped;
        for (const QString &piece : pieces)
            escaped.append(escapeControls(piece));
        result += escaped.join(QLatin1Char('\t'));
    };
    for (auto match = colour.globalMatch(line); match.hasNext();) {
        const QRegularExpressionMatch next = match.next();
        escapePlain(next.capturedStart());
        result += next.captured();
        done = next.capturedEnd();
    }
    escapePlain(line.size());
    return result;
}

namespace {

/// A connection to the user's agent, started when none answers and `autostart` is set; the
/// error (printed) names the socket path.
std::unique_ptr<AgentClient> connectAgent(Context &context, bool autostart = true) {
    auto client = std::make_unique<AgentClient>();
    if (auto connected = client->connectToAgent(autostart); !connected) {
        context.error(context.command + QStringLiteral(": ") + connected.error());
        return nullptr;
    }
    return client;
}

/// The agent's view of one site; nullopt (with the error printed and `code` set) when the
/// agent cannot be asked, an empty status list when it does not know the site.
std::optional<QList<SiteStatus>> siteStatus(Context &context, AgentClient &client,
                                            const QString &name, int &code) {
    auto status = client.status(name, QuickOperationMs);
    if (!status) {
        code = context.error(context.command + QStringLiteral(": ") + status.error());
        return std::nullopt;
    }
    return status.value();
}

bool isLocalSite(const Site &site) {
    return site.hosts.isEmpty() && !site.balancer && !site.command.isEmpty();
}

/// Stop and scale act on local sites; a production site (workers on hosts, a balancer on a
/// host) is refused, naming what does that there. Returns true (and prints) when refused.
bool refuseProductionSite(Context &context, const QString &name, const QString &instead) {
    auto inventory = context.loadInventory();
    if (!inventory) return false;
    const Site *site = inventory->site(name);
    if (!site || (!site->balancer && site->hosts.isEmpty())) return false;
    context.error(QStringLiteral("%1: %2 is a production site (its workers run on %3): %4")
                      .arg(context.command, name,
                           site->hosts.isEmpty() ? QStringLiteral("its hosts")
                                                 : site->hosts.join(QStringLiteral(", ")),
                           instead));
    return true;
}

bool isActive(SiteState state) {
    return state == SiteState::Starting || state == SiteState::Running;
}

QString formatDuration(qint64 ms) {
    if (ms <= 0) return QStringLiteral("-");
    const qint64 seconds = ms / 1000;
    if (seconds < 60) return QStringLiteral("%1s").arg(seconds);
    if (seconds < 3600) return QStringLiteral("%1m%2s").arg(seconds / 60).arg(seconds % 60);
    if (seconds < 86400) return QStringLiteral("%1h%2m").arg(seconds / 3600).arg(seconds / 60 % 60);
    return QStringLiteral("%1d%2h").arg(seconds / 86400).arg(seconds / 3600 % 24);
}

QString formatBytes(qint64 bytes) {
    if (bytes <= 0) return QStringLiteral("-");
    if (bytes < 1024 * 1024) return QStringLiteral("%1K").arg(bytes / 1024.0, 0, 'f', 0);
    if (bytes < 1024LL * 1024 * 1024)
        return QStringLiteral("%1M").arg(bytes / (1024.0 * 1024), 0, 'f', 1);
    return QStringLiteral("%1G").arg(bytes / (1024.0 * 1024 * 1024), 0, 'f', 2);
}

QString portList(const QList<quint16> &ports) {
    QStringList texts;
    for (quint16 port : ports)
        texts.append(QString::number(port));
    return texts.join(QLatin1Char(','));
}

/// Saves `site` in the inventory (added, or replacing the saved one), re-reading the file
/// first so that edits made meanwhile elsewhere survive.
Result<void> saveSite(const Context &context, const Site &site) {
    auto inventory = Inventory::load(context.inventoryPath);
    if (!inventory) return fail(inventory.error());
    auto changed =
        inventory->site(site.name) ? inventory->updateSite(site) : inventory->addSite(site);
    if (!changed) return changed;
    return inventory->save(context.inventoryPath);
}

/// Remembers what the agent reports for a saved site (its ports, its worker count), so that a
/// later start brings it back the same way. A warning, not a failure, when it cannot.
void rememberRunningSite(Context &context, const QString &name, const QList<quint16> &ports,
                         std::optional<int> workers) {
    auto inventory = Inventory::load(context.inventoryPath);
    if (!inventory || !inventory->site(name)) return;
    Site updated = *inventory->site(name);
    if (!ports.isEmpty()) updated.ports = ports;
    if (workers && *workers >= 1) updated.workers = *workers;
    if (updated == *inventory->site(name)) return;
    auto saved = inventory->updateSite(updated);
    if (saved) saved = inventory->save(context.inventoryPath);
    if (!saved)
        context.err << "corralctl: warning: " << name << ": ports not remembered: " << saved.error()
                    << Qt::endl;
}

QList<quint16> workerPorts(const SiteStatus &status) {
    QList<quint16> ports;
    for (const WorkerStatus &worker : status.workers)
        ports.append(worker.port);
    return ports;
}

// ---- start -----------------------------------------------------------------------------------

const char startUsage[] =
    "Usage: corralctl start [SITE] [--workers N|auto] [--base-port P] [--listen ADDR:PORT]\n"
    "                       [--health PATH] [--policy P] [--cwd DIR] [--env KEY=VALUE]...\n"
    "                       [--start-timeout SECONDS] [--kill-timeout SECONDS]\n"
    "                       (--demo | -- COMMAND ARGS...)\n"
    "       corralctl start SITE [OPTIONS]\n"
    "\n"
    "Starts a local site in the Corral agent (started on demand), which owns it from then on:\n"
    "closing the terminal stops nothing. A site that runs already is restarted with the new\n"
    "settings. What was given is saved in the inventory; 'corralctl start SITE' without a\n"
    "command starts the saved site (options given override its settings).\n"
    "Returns once every worker is running, or fails naming the worker, its exit status and\n"
    "its last log lines.\n"
    "\n"
    "  SITE               the site's name (default with --demo: demo)\n";

int startCommand(Context &context, const QStringList &args) {
    if (int code = Failure; runProductionCommand(context, QStringLiteral("start"), args, code))
        return code;
    auto options = parseOptions(args, siteOptionSpec());
    if (!options) return context.usageError(options.error());
    if (options->positional.size() > 1)
        return context.usageError(QStringLiteral("expected at most one SITE before \"--\""));
    const bool demo = options->flags.contains(QStringLiteral("demo"));
    if (demo && !options->rest.isEmpty())
        return context.usageError(QStringLiteral("give either --demo or -- COMMAND, not both"));
    if (options->positional.isEmpty() && !demo)
        return context.usageError(QStringLiteral("give the SITE to start"));
    const QString name = options->positional.value(0, QStringLiteral("demo"));

    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const Site *saved = inventory->site(name);
    if (saved && (saved->balancer || !saved->hosts.isEmpty()))
        return context.error(
            QStringLiteral("start: site %1 is a production site (its workers run on %2); "
                           "corralctl start runs local sites")
                .arg(name, saved->hosts.isEmpty() ? QStringLiteral("its balancer's host")
                                                  : saved->hosts.join(QStringLiteral(", "))));
    if (!saved && !givesCommand(options.value()))
        return context.error(QStringLiteral("start: no saved site %1 in %2: give --demo or "
                                            "-- COMMAND ARGS to start a new one")
                                 .arg(shown(name), context.inventoryPath));
    Site site;
    if (saved) {
        site = *saved;
    } else {
        site.name = name;
        site.workers = autoWorkerCount();
    }
    // Other ports asked for: the remembered ones no longer apply.
    if (options->has(QStringLiteral("base-port"))) site.ports.clear();
    SupervisionPolicy policy;
    const QStringList problems = applySiteOptions(options.value(), site, policy);
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("start: "));
    if (site.command.isEmpty())
        return context.error(QStringLiteral("start: site %1 has no command to run: give --demo "
                                            "or -- COMMAND ARGS")
                                 .arg(name));
    printDevCaNotice(context, site);

    if (auto stored = saveSite(context, site); !stored)
        return context.error(QStringLiteral("start: ") + stored.error());

    auto client = connectAgent(context);
    if (!client) return Failure;
    QJsonObject request{{QStringLiteral("site"), site.toJson()},
                        {QStringLiteral("ephemeral"), false}};
    if (options->has(QStringLiteral("start-timeout")))
        request.insert(QStringLiteral("startTimeoutMs"), policy.startTimeoutMs);
    if (options->has(QStringLiteral("kill-timeout")))
        request.insert(QStringLiteral("killTimeoutMs"), policy.killTimeoutMs);
    auto reply = client->call(QString::fromLatin1(agent::op::Start), request, LongOperationMs);
    if (!reply) return context.error(QStringLiteral("start: ") + terminalText(reply.error()));
    auto status = agent::siteStatusFromJson(reply->value(QStringLiteral("status")).toObject());
    if (!status)
        return context.error(QStringLiteral("start: the agent's reply: ") + status.error());
    rememberRunningSite(context, name, workerPorts(status.value()), std::nullopt);
    // Running already exactly so: the agent changed nothing (a restart would only have cost
    // a moment of service).
    const bool alreadyRunning = reply->value(QStringLiteral("alreadyRunning")).toBool();

    if (context.json) {
        printJson(context,
                  QJsonObject{{QStringLiteral("site"), name},
                              {QStringLiteral("status"), reply->value(QStringLiteral("status"))},
                              {QStringLiteral("changed"), !alreadyRunning}});
        return Success;
    }
    if (alreadyRunning) {
        context.out << "site " << name << " already runs with these settings ("
                    << status->workers.size() << " workers); 'corralctl restart " << name
                    << "' restarts it without downtime" << Qt::endl;
        return Success;
    }
    context.out << "site " << name << ": " << status->workers.size() << " worker"
                << (status->workers.size() == 1 ? "" : "s") << " running";
    QStringList pids;
    for (const WorkerStatus &worker : status->workers)
        pids.append(QStringLiteral("%1 (pid %2)").arg(worker.port).arg(worker.pid));
    if (!pids.isEmpty()) context.out << " on " << pids.join(QStringLiteral(", "));
    context.out << '\n';
    if (!status->site.listen.isEmpty())
        context.out << "balancing " << policyName(status->site.policy) << " on http://"
                    << status->site.listen << '\n';
    context.out << "saved in " << context.inventoryPath << "; 'corralctl ps' lists it, "
                << "'corralctl logs " << name << "' shows its output" << Qt::endl;
    return Success;
}

// ---- stop ------------------------------------------------------------------------------------

const char stopUsage[] =
    "Usage: corralctl stop SITE\n"
    "\n"
    "Drains and stops the site's workers and its balancer in the Corral agent. The site stays\n"
    "in the inventory ('corralctl start SITE' starts it again). Stopping a stopped site does\n"
    "nothing and succeeds.\n";

int stopCommand(Context &context, const QStringList &args) {
    if (int code = Failure; runProductionCommand(context, QStringLiteral("stop"), args, code))
        return code;
    auto options = parseOptions(args, OptionSpec{});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected exactly one SITE"));
    const QString name = options->positional.first();
    if (refuseProductionSite(context, name,
                             QStringLiteral("corralctl stop runs local sites; its workers are "
                                            "managed on their hosts")))
        return Failure;
    auto client = connectAgent(context);
    if (!client) return Failure;
    int code = Failure;
    const auto status = siteStatus(context, *client, name, code);
    if (!status) return code;
    if (status->isEmpty() || status->first().state == SiteState::Stopped) {
        auto inventory = context.loadInventory();
        if (status->isEmpty() && (!inventory || !inventory->site(name)))
            return context.error(
                QStringLiteral("stop: no site %1 (the agent does not run it and %2 has no such "
                               "site)")
                    .arg(shown(name), context.inventoryPath));
        if (context.json)
            printJson(context, QJsonObject{{QStringLiteral("site"), name},
                                           {QStringLiteral("state"), QStringLiteral("stopped")},
                                           {QStringLiteral("changed"), false}});
        else
            context.out << "site " << name << " is not running" << Qt::endl;
        return Success;
    }
    const qsizetype workers = status->first().workers.size();
    auto reply = client->call(QString::fromLatin1(agent::op::Stop),
                              QJsonObject{{QStringLiteral("site"), name}}, LongOperationMs);
    if (!reply) return context.error(QStringLiteral("stop: ") + terminalText(reply.error()));
    if (context.json)
        printJson(context, QJsonObject{{QStringLiteral("site"), name},
                                       {QStringLiteral("state"), QStringLiteral("stopped")},
                                       {QStringLiteral("changed"), true}});
    else
        context.out << "site " << name << ": stopped (" << workers << " worker"
                    << (workers == 1 ? "" : "s") << " drained and stopped)" << Qt::endl;
    return Success;
}

// ---- restart ---------------------------------------------------------------------------------

const char restartUsage[] =
    "Usage: corralctl restart SITE [--worker PORT]\n"
    "\n"
    "Zero-downtime rolling restart through the site's balancer: each worker is drained,\n"
    "replaced and ready before the next one is touched. Local sites restart in the Corral\n"
    "agent through the embedded proxy; a production site (one with a balancer on a host) runs\n"
    "'corralctl rolling-restart SITE'.\n"
    "\n"
    "  --worker PORT   restart just this worker of a local site (drained first)\n";

int restartCommand(Context &context, const QStringList &args) {
    if (int code = Failure; runProductionCommand(context, QStringLiteral("restart"), args, code))
        return code;
    auto options = parseOptions(args, OptionSpec{{}, {QStringLiteral("worker")}});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected exactly one SITE"));
    const QString name = options->positional.first();
    std::optional<quint16> port;
    if (options->has(QStringLiteral("worker"))) {
        bool numeric = false;
        const uint value = options->value(QStringLiteral("worker")).toUInt(&numeric);
        if (!numeric || value < 1 || value > 65535)
            return context.error(QStringLiteral("restart: --worker: %1 is not a port in 1..65535")
                                     .arg(shown(options->value(QStringLiteral("worker")))));
        port = quint16(value);
    }

    // A production site restarts behind its own balancer, as rolling-restart does.
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    if (const Site *saved = inventory->site(name); saved && saved->balancer) {
        for (const Command &command : backendCommands())
            if (command.name == QLatin1String("rolling-restart")) {
                context.command = command.name;
                return command.run(context, {name});
            }
    }

    auto client = connectAgent(context);
    if (!client) return Failure;
    int code = Failure;
    const auto before = siteStatus(context, *client, name, code);
    if (!before) return code;
    if (before->isEmpty() || !isActive(before->first().state))
        return context.error(QStringLiteral("restart: site %1 is not running%2")
                                 .arg(shown(name), inventory->site(name)
                                                       ? QStringLiteral(" ('corralctl start %1' "
                                                                        "starts it)")
                                                             .arg(name)
                                                       : QString()));
    if (port && !workerPorts(before->first()).contains(*port))
        return context.error(QStringLiteral("restart: site %1 has no worker on port %2 (its "
                                            "workers: %3)")
                                 .arg(name)
                                 .arg(*port)
                                 .arg(portList(workerPorts(before->first()))));
    QJsonObject request{{QStringLiteral("site"), name}};
    if (port) request.insert(QStringLiteral("port"), *port);
    auto reply = client->call(QString::fromLatin1(agent::op::Restart), request, LongOperationMs);
    if (!reply) return context.error(QStringLiteral("restart: ") + terminalText(reply.error()));
    const auto after = siteStatus(context, *client, name, code);
    if (!after) return code;

    QHash<quint16, qint64> oldPids;
    for (const WorkerStatus &worker : before->first().workers)
        oldPids.insert(worker.port, worker.pid);
    QJsonArray workers;
    QStringList changes;
    for (const WorkerStatus &worker : after->value(0).workers) {
        if (port && worker.port != *port) continue;
        workers.append(QJsonObject{{QStringLiteral("port"), worker.port},
                                   {QStringLiteral("oldPid"), oldPids.value(worker.port)},
                                   {QStringLiteral("pid"), worker.pid},
                                   {QStringLiteral("state"), workerStateName(worker.state)}});
        changes.append(QStringLiteral("%1: pid %2 -> %3")
                           .arg(worker.port)
                           .arg(oldPids.value(worker.port))
                           .arg(worker.pid));
    }
    if (context.json) {
        printJson(context, QJsonObject{{QStringLiteral("site"), name},
                                       {QStringLiteral("workers"), workers}});
        return Success;
    }
    context.out << "site " << name << ": "
                << (port ? QStringLiteral("worker %1 restarted").arg(*port)
                         : QStringLiteral("rolling restart done"))
                << '\n';
    for (const QString &change : changes)
        context.out << "  " << change << '\n';
    context.out << Qt::flush;
    return Success;
}

// ---- scale -----------------------------------------------------------------------------------

const char scaleUsage[] =
    "Usage: corralctl scale SITE N|+N|-N [--allow-zero]\n"
    "\n"
    "Sets a running local site's worker count (N) or changes it (+N, -N) in the Corral\n"
    "agent (a production site: see below): new workers start and join the balancer once\n"
    "ready; removed ones (highest ports first) are drained, then stopped. The count is\n"
    "saved for the next start.\n"
    "\n"
    "  --allow-zero   allow scaling to 0 workers (refused otherwise)\n";

int scaleCommand(Context &context, const QStringList &args) {
    if (int code = Failure; runProductionCommand(context, QStringLiteral("scale"), args, code))
        return code;
    // "-2" is a count, not an option.
    static const QRegularExpression countPattern(QStringLiteral("^[+-]?[0-9]+$"));
    QStringList optionArgs;
    QStringList counts;
    for (const QString &arg : args)
        (countPattern.match(arg).hasMatch() ? counts : optionArgs).append(arg);
    auto options = parseOptions(optionArgs, OptionSpec{{QStringLiteral("allow-zero")}, {}});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || counts.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected SITE and a count N, +N or -N"));
    const QString name = options->positional.first();
    const QString countText = counts.first();
    const bool relative =
        countText.startsWith(QLatin1Char('+')) || countText.startsWith(QLatin1Char('-'));
    bool numeric = false;
    const int count = countText.toInt(&numeric);
    if (!numeric || qAbs(count) > Site::MaxWorkers)
        return context.error(QStringLiteral("scale: %1 is not a worker count in 0..%2")
                                 .arg(shown(countText))
                                 .arg(Site::MaxWorkers));
    if (refuseProductionSite(context, name,
                             QStringLiteral("'corralctl add-backend %1' adds a worker on a "
                                            "host")
                                 .arg(name)))
        return Failure;

    auto client = connectAgent(context);
    if (!client) return Failure;
    int code = Failure;
    const auto status = siteStatus(context, *client, name, code);
    if (!status) return code;
    if (status->isEmpty() || !isActive(status->first().state))
        return context.error(QStringLiteral("scale: site %1 is not running ('corralctl start "
                                            "%1' starts it)")
                                 .arg(shown(name)));
    const int current = int(status->first().workers.size());
    const int target = relative ? current + count : count;
    if (target < 0 || target > Site::MaxWorkers)
        return context.error(QStringLiteral("scale: %1 workers %2 %3 gives %4, not in 0..%5")
                                 .arg(current)
                                 .arg(count < 0 ? QStringLiteral("-") : QStringLiteral("+"))
                                 .arg(qAbs(count))
                                 .arg(target)
                                 .arg(Site::MaxWorkers));
    if (target < 1 && !options->flags.contains(QStringLiteral("allow-zero")))
        return context.error(QStringLiteral("scale: refusing to scale %1 from %2 to 0 workers: "
                                            "nothing would serve it (add --allow-zero to do it "
                                            "anyway, or 'corralctl stop %1')")
                                 .arg(name)
                                 .arg(current));
    auto reply = client->call(
        QString::fromLatin1(agent::op::Scale),
        QJsonObject{{QStringLiteral("site"), name}, {QStringLiteral("workers"), target}},
        LongOperationMs);
    if (!reply) return context.error(QStringLiteral("scale: ") + terminalText(reply.error()));
    const auto after = siteStatus(context, *client, name, code);
    if (!after) return code;
    const QList<quint16> ports = after->isEmpty() ? QList<quint16>() : workerPorts(after->first());
    rememberRunningSite(context, name, ports, target);
    if (context.json) {
        QJsonArray portArray;
        for (quint16 port : ports)
            portArray.append(port);
        printJson(context, QJsonObject{{QStringLiteral("site"), name},
                                       {QStringLiteral("from"), current},
                                       {QStringLiteral("workers"), target},
                                       {QStringLiteral("ports"), portArray}});
    } else {
        context.out << "site " << name << ": " << current << " -> " << target << " worker"
                    << (target == 1 ? "" : "s")
                    << (ports.isEmpty() ? QString()
                                        : QStringLiteral(" (ports %1)").arg(portList(ports)))
                    << Qt::endl;
    }
    return Success;
}

// ---- ps --------------------------------------------------------------------------------------

const char psUsage[] =
    "Usage: corralctl ps [SITE] [--watch]\n"
    "\n"
    "Lists every site the Corral agent runs (whoever started it: corralctl or the console)\n"
    "and the local sites saved in the inventory (state stopped), one row per worker: site,\n"
    "host, port, pid, state, uptime, restarts, CPU % (100 = one core), resident memory,\n"
    "requests and errors per second. Starts the agent when none runs.\n"
    "Production sites (with a balancer) are listed too, one row per backend, from the pid\n"
    "files on its worker host over SSH (16 hosts at a time, the others queued; at most 3 s\n"
    "each from its own connect; no prompt):\n"
    "HOST is the inventory host, PID the worker's supervisor; a host that does not answer\n"
    "shows its backends as unknown and its error below the table (--json: \"error\").\n"
    "'ps SITE' of a production site does not need the agent.\n"
    "\n"
    "  --watch   redraw once a second until Ctrl-C (with --json: one document per second)\n";

struct PsSite {
    QString name;
    QString state;
    QString source; ///< "agent" or "inventory"
    QString listen;
    QString error;
    QList<WorkerRow> rows;
    QHash<quint16, QString> logPaths;
};

QList<PsSite> collectPs(const QList<SiteStatus> &statuses, const Inventory *inventory,
                        const QString &only) {
    QList<PsSite> sites;
    QSet<QString> seen;
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    for (const SiteStatus &status : statuses) {
        if (!only.isEmpty() && status.site.name != only) continue;
        seen.insert(status.site.name);
        PsSite site{status.site.name,
                    agent::siteStateName(status.state),
                    QStringLiteral("agent"),
                    status.site.listen,
                    status.error,
                    {},
                    {}};
        QHash<quint16, WorkerRow> live;
        for (const WorkerRow &row : status.snapshot.workers)
            live.insert(row.port, row);
        for (const WorkerStatus &worker : status.workers) {
            WorkerRow row = live.value(worker.port);
            row.site = status.site.name;
            row.port = worker.port;
            row.pid = worker.pid;
            row.state = worker.state;
            if (worker.state == WorkerState::Running && row.uptimeMs > 0 &&
                status.snapshot.timestampMs > 0)
                row.uptimeMs += qMax<qint64>(0, now - status.snapshot.timestampMs);
            if (worker.state != WorkerState::Running && worker.state != WorkerState::Draining)
                row.uptimeMs = 0;
            site.rows.append(row);
            site.logPaths.insert(worker.port, worker.logPath);
        }
        sites.append(site);
    }
    if (inventory)
        for (const Site &saved : inventory->sites()) {
            if (seen.contains(saved.name) || !isLocalSite(saved)) continue;
            if (!only.isEmpty() && saved.name != only) continue;
            sites.append(PsSite{saved.name,
                                QStringLiteral("stopped"),
                                QStringLiteral("inventory"),
                                saved.listen,
                                QString(),
                                {},
                                {}});
        }
    std::sort(sites.begin(), sites.end(),
              [](const PsSite &a, const PsSite &b) { return a.name < b.name; });
    return sites;
}

/// The production sites (workers on SSH hosts behind a balancer), read from their hosts'
/// pid files (a host that does not answer within ProductionPsTimeoutMs: its rows say why).
void addProductionSites(QList<PsSite> &sites, const Inventory &inventory, const QString &only) {
    const QList<ProductionBackendStatus> backends = productionStatus(inventory, only);
    for (const Site &saved : inventory.sites()) {
        if (!saved.balancer || (!only.isEmpty() && saved.name != only)) continue;
        PsSite site{saved.name,
                    QString(),
                    QStringLiteral("production"),
                    saved.balancer->listenText(),
                    QString(),
                    {},
                    {}};
        int running = 0;
        int reachable = 0;
        for (const ProductionBackendStatus &backend : backends) {
            if (backend.site != saved.name) continue;
            WorkerRow row;
            row.site = saved.name;
            row.host = backend.host.isEmpty() ? backend.backend : backend.host;
            row.hostName = backend.host;
            row.port = backend.port;
            row.pid = backend.pid;
            row.reachable = backend.reachable;
            row.cause = backend.error;
            row.state = backend.running ? WorkerState::Running : WorkerState::Stopped;
            running += backend.running ? 1 : 0;
            reachable += backend.reachable ? 1 : 0;
            site.rows.append(row);
        }
        site.state = running > 0                            ? QStringLiteral("running")
                     : reachable > 0 || site.rows.isEmpty() ? QStringLiteral("stopped")
                                                            : QStringLiteral("unknown");
        sites.append(site);
    }
    std::sort(sites.begin(), sites.end(),
              [](const PsSite &a, const PsSite &b) { return a.name < b.name; });
}

QJsonObject psJson(const QList<PsSite> &sites) {
    QJsonArray siteArray;
    for (const PsSite &site : sites) {
        QJsonArray workers;
        for (const WorkerRow &row : site.rows) {
            QJsonObject worker{{QStringLiteral("host"), row.host},
                               {QStringLiteral("port"), row.port},
                               {QStringLiteral("pid"), row.pid},
                               {QStringLiteral("state"), workerStateName(row.state)},
                               {QStringLiteral("uptimeMs"), row.uptimeMs},
                               {QStringLiteral("restarts"), row.restarts},
                               {QStringLiteral("cpuPercent"), row.cpuValid
                                                                  ? QJsonValue(row.cpuPercent)
                                                                  : QJsonValue(QJsonValue::Null)},
                               {QStringLiteral("rssBytes"), row.rssBytes},
                               {QStringLiteral("requestsPerSecond"), row.requestsPerSecond},
                               {QStringLiteral("errorsPerSecond"), row.errorsPerSecond},
                               {QStringLiteral("logPath"), site.logPaths.value(row.port)}};
            // A production row whose host did not answer: unknown, and why.
            if (!row.reachable) worker.insert(QStringLiteral("reachable"), false);
            if (!row.reachable ||
                (site.source == QLatin1String("production") && !row.cause.isEmpty()))
                worker.insert(QStringLiteral("error"), row.cause);
            workers.append(worker);
        }
        QJsonObject object{{QStringLiteral("name"), site.name},
                           {QStringLiteral("state"), site.state},
                           {QStringLiteral("source"), site.source},
                           {QStringLiteral("workers"), workers}};
        if (!site.listen.isEmpty()) object.insert(QStringLiteral("listen"), site.listen);
        if (!site.error.isEmpty()) object.insert(QStringLiteral("error"), site.error);
        siteArray.append(object);
    }
    return QJsonObject{{QStringLiteral("sites"), siteArray}};
}

QString psTable(const QList<PsSite> &sites) {
    const QStringList header{
        QStringLiteral("SITE"),     QStringLiteral("HOST"),  QStringLiteral("PORT"),
        QStringLiteral("PID"),      QStringLiteral("STATE"), QStringLiteral("UPTIME"),
        QStringLiteral("RESTARTS"), QStringLiteral("CPU%"),  QStringLiteral("RSS"),
        QStringLiteral("REQ/S"),    QStringLiteral("ERR/S")};
    QList<QStringList> rows{header};
    QStringList notes;
    for (const PsSite &site : sites) {
        if (site.rows.isEmpty())
            rows.append({site.name, QStringLiteral("local"), QStringLiteral("-"),
                         QStringLiteral("-"), site.state, QStringLiteral("-"), QStringLiteral("-"),
                         QStringLiteral("-"), QStringLiteral("-"), QStringLiteral("-"),
                         QStringLiteral("-")});
        QStringList hostErrors;
        for (const WorkerRow &row : site.rows) {
            if (!row.cause.isEmpty() && site.source == QLatin1String("production") &&
                !hostErrors.contains(row.cause))
                hostErrors.append(row.cause);
            rows.append(
                {site.name, row.host.isEmpty() ? QStringLiteral("local") : row.host,
                 QString::number(row.port),
                 row.pid > 0 ? QString::number(row.pid) : QStringLiteral("-"),
                 row.reachable ? workerStateName(row.state) : QStringLiteral("unknown"),
                 formatDuration(row.uptimeMs), QString::number(row.restarts),
                 row.cpuValid ? QString::number(row.cpuPercent, 'f', 1) : QStringLiteral("-"),
                 formatBytes(row.rssBytes), QString::number(row.requestsPerSecond, 'f', 1),
                 QString::number(row.errorsPerSecond, 'f', 1)});
        }
        for (const QString &hostError : hostErrors)
            notes.append(QStringLiteral("%1: %2").arg(site.name, escapeControls(hostError)));
        if (!site.listen.isEmpty() && site.source == QLatin1String("agent") &&
            site.error.isEmpty() && site.state != QLatin1String("stopped"))
            notes.append(QStringLiteral("%1: %2, balancing on http://%3")
                             .arg(site.name, site.state, site.listen));
        if (!site.error.isEmpty()) {
            // The agent's report spans lines (the worker's last output): keep them, indented.
            QStringList lines = site.error.split(QLatin1Char('\n'));
            for (QString &line : lines)
                line = escapeControls(line);
            notes.append(QStringLiteral("%1: %2: %3")
                             .arg(site.name, site.state, lines.join(QStringLiteral("\n    "))));
        }
    }
    QList<qsizetype> widths(header.size(), 0);
    for (const QStringList &row : rows)
        for (qsizetype column = 0; column < row.size(); ++column)
            widths[column] = qMax(widths[column], row.at(column).size());
    QString text;
    for (const QStringList &row : rows) {
        QString line;
        for (qsizetype column = 0; column < row.size(); ++column) {
            // Numbers right-aligned, names left-aligned.
            const bool numeric = column >= 5;
            line += numeric ? row.at(column).rightJustified(widths[column])
                            : row.at(column).leftJustified(widths[column]);
            if (column + 1 < row.size()) line += QStringLiteral("  ");
        }
        text += escapeControls(line.trimmed()) + QLatin1Char('\n');
    }
    if (sites.isEmpty())
        text += QStringLiteral("(no sites: 'corralctl start SITE -- COMMAND' "
                               "starts one)\n");
    for (const QString &note : notes)
        text += note + QLatin1Char('\n');
    return text;
}

int psCommand(Context &context, const QStringList &args) {
    auto options = parseOptions(args, OptionSpec{{QStringLiteral("watch")}, {}});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() > 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected at most one SITE"));
    const QString only = options->positional.value(0);
    const bool watch = options->flags.contains(QStringLiteral("watch"));

    // A production site alone needs no agent: its rows come from its hosts.
    const bool productionOnly = [&] {
        auto inventory = context.loadInventory();
        const Site *site = inventory && !only.isEmpty() ? inventory->site(only) : nullptr;
        return site && site->balancer;
    }();
    std::unique_ptr<AgentClient> client;
    if (!productionOnly && !(client = connectAgent(context))) return Failure;
    // One round: the agent's sites, the saved ones and the production ones; the text, or an
    // error.
    const auto render = [&]() -> Result<QString> {
        QList<SiteStatus> statuses;
        if (!productionOnly) {
            if (!client->isConnected()) {
                // The agent went away (stopped, killed): the next one brings the sites back.
                auto reconnected = std::make_unique<AgentClient>();
                if (auto connected = reconnected->connectToAgent(true); !connected)
                    return fail(connected.error());
                client = std::move(reconnected);
            }
            auto status = client->status(QString(), QuickOperationMs);
            if (!status) return fail(status.error());
            statuses = status.value();
        }
        auto inventory = context.loadInventory();
        QList<PsSite> sites = collectPs(statuses, inventory ? &inventory.value() : nullptr, only);
        if (inventory) addProductionSites(sites, inventory.value(), only);
        if (!only.isEmpty() && sites.isEmpty())
            return fail(QStringLiteral("no site %1 (the agent does not run it and %2 has no "
                                       "such local site)")
                            .arg(shown(only), context.inventoryPath));
        if (context.json)
            return QString(
                QString::fromUtf8(QJsonDocument(psJson(sites)).toJson(QJsonDocument::Compact)) +
                QLatin1Char('\n'));
        return psTable(sites);
    };
    if (!watch) {
        auto text = render();
        if (!text) return context.error(QStringLiteral("ps: ") + terminalText(text.error()));
        context.out << text.value() << Qt::flush;
        return Success;
    }

    // A plain terminal view: clear, home, table; once a second until Ctrl-C.
    int exitCode = Success;
    const auto redraw = [&] {
        auto text = render();
        if (!context.json) context.out << "\x1b[H\x1b[2J";
        if (!text) {
            context.out << "corralctl ps: " << terminalText(text.error()) << '\n';
        } else {
            if (!context.json)
                context.out << "Every 1 s: corralctl ps"
                            << (only.isEmpty() ? QString() : QLatin1Char(' ') + only) << "    "
                            << QDateTime::currentDateTime().toString(Qt::ISODate)
                            << "    (Ctrl-C quits)\n\n";
            context.out << text.value();
        }
        context.out << Qt::flush;
    };
    SignalWatcher signalWatcher({SIGINT, SIGTERM, SIGHUP});
    QObject::connect(&signalWatcher, &SignalWatcher::received, &signalWatcher,
                     [] { QCoreApplication::exit(0); });
    QTimer timer;
    timer.setInterval(1000);
    QObject::connect(&timer, &QTimer::timeout, &signalWatcher, redraw);
    redraw();
    timer.start();
    QCoreApplication::exec();
    return exitCode;
}

// ---- logs ------------------------------------------------------------------------------------

const char logsUsage[] =
    "Usage: corralctl logs SITE [--worker PORT|ADDRESS:PORT|balancer | --access] [-n N] [-f]\n"
    "\n"
    "Prints the last lines of the site's worker logs (the rotated files PATH.1 ... included),\n"
    "merged in time order, each line prefixed with its worker's port. Lines are dated by\n"
    "the timestamp they start with, else by Corral's own notes before them in the same log\n"
    "(every start and state change is noted with its time).\n"
    "\n"
    "  --worker PORT     only this worker's log\n"
    "  --access          the site's access log instead: one line per request its embedded\n"
    "                    proxy served (access.log in the site's log directory, or the site's\n"
    "                    accessLog file), prefixed with \"access\"\n"
    "  -n, --lines N     how many lines (default 15; 0 with -f: only new lines)\n"
    "  -f, --follow      keep printing new lines, across log rotation and worker restarts,\n"
    "                    until Ctrl-C\n"
    "\n"
    "With --json, one object per line: {\"port\":P,\"timeMs\":T,\"line\":TEXT}.\n"
    "\n"
    "A production site (one with a balancer) is read on its hosts over SSH: each backend's\n"
    "last N lines (journalctl -u corral-SITE@PORT where the worker is that systemd unit, else\n"
    "tail of ~/.local/state/corral/workers/SITE/PORT.log), then the balancer's errorLog as\n"
    "\"balancer\", each line prefixed with ADDRESS:PORT or balancer; --worker ADDRESS:PORT\n"
    "or --worker balancer reads one. -f follows them until Ctrl-C (the readers on the hosts\n"
    "end with the connection). With --json: {\"worker\":NAME,\"line\":TEXT}.\n";

/// The access log's key among SiteLogs::files (no worker has port 0).
constexpr quint16 AccessLogPort = 0;

/// The site's logs: PORT -> PATH, from the agent (what its workers write) or, for a site it
/// does not run, from the log directory.
struct SiteLogs {
    QString directory;
    std::map<quint16, QString> files;
};

void addLogFilesIn(SiteLogs &logs) {
    static const QRegularExpression name(QStringLiteral("^([0-9]{1,5})\\.log$"));
    for (const QString &file : QDir(logs.directory).entryList(QDir::Files)) {
        const QRegularExpressionMatch match = name.match(file);
        if (!match.hasMatch()) continue;
        const uint port = match.captured(1).toUInt();
        if (port >= 1 && port <= 65535 && !logs.files.count(quint16(port)))
            logs.files.emplace(quint16(port), logs.directory + QLatin1Char('/') + file);
    }
}

int logsCommand(Context &context, const QStringList &args) {
    // -n N, -nN and -f, as tail and pm2 spell them.
    QStringList normalized;
    for (const QString &arg : args) {
        if (arg == QLatin1String("-f"))
            normalized.append(QStringLiteral("--follow"));
        else if (arg == QLatin1String("-n"))
            normalized.append(QStringLiteral("--lines"));
        else if (arg.startsWith(QLatin1String("-n")) && arg.size() > 2 && arg.at(2).isDigit())
            normalized.append(QStringLiteral("--lines=") + arg.mid(2));
        else
            normalized.append(arg);
    }
    auto options =
        parseOptions(normalized, OptionSpec{{QStringLiteral("follow"), QStringLiteral("access")},
                                            {QStringLiteral("worker"), QStringLiteral("lines")}});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected exactly one SITE"));
    const QString name = options->positional.first();
    QStringList problems;
    int lineCount = DefaultLogLines;
    if (options->has(QStringLiteral("lines"))) {
        bool numeric = false;
        lineCount = options->value(QStringLiteral("lines")).toInt(&numeric);
        if (!numeric || lineCount < 0 || lineCount > MaxLogLines)
            problems.append(QStringLiteral("-n: %1 is not a line count in 0..%2")
                                .arg(shown(options->value(QStringLiteral("lines"))))
                                .arg(MaxLogLines));
    }
    // A production site's logs are on its hosts: read over SSH (cli/ProductionLogs.cpp).
    if (auto inventory = context.loadInventory(); inventory) {
        if (const Site *site = inventory->site(name); site && site->balancer) {
            if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("logs: "));
            return productionLogs(context, inventory.value(), *site,
                                  options->value(QStringLiteral("worker")), lineCount,
                                  options->flags.contains(QStringLiteral("follow")));
        }
    }
    std::optional<quint16> onlyPort;
    if (options->has(QStringLiteral("worker"))) {
        bool numeric = false;
        const uint port = options->value(QStringLiteral("worker")).toUInt(&numeric);
        if (numeric && port >= 1 && port <= 65535)
            onlyPort = quint16(port);
        else
            problems.append(QStringLiteral("--worker: %1 is not a port in 1..65535")
                                .arg(shown(options->value(QStringLiteral("worker")))));
    }
    const bool access = options->flags.contains(QStringLiteral("access"));
    if (access && options->has(QStringLiteral("worker")))
        return context.usageError(QStringLiteral("give either --access or --worker, not both"));
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("logs: "));
    const bool follow = options->flags.contains(QStringLiteral("follow"));

    auto client = connectAgent(context);
    if (!client) return Failure;
    int code = Failure;
    const auto status = siteStatus(context, *client, name, code);
    if (!status) return code;
    SiteLogs logs;
    const bool running = !status->isEmpty() && !status->first().workers.isEmpty();
    if (running) {
        for (const WorkerStatus &worker : status->first().workers)
            if (!worker.logPath.isEmpty()) logs.files.emplace(worker.port, worker.logPath);
        if (!logs.files.empty())
            logs.directory = QFileInfo(logs.files.begin()->second).absolutePath();
    } else {
        // Not running: whatever its workers left in the log directory.
        logs.directory = corralStateDirectory() + QStringLiteral("/logs/") + name;
        if (!name.contains(QLatin1Char('/')) && name != QLatin1String("..")) addLogFilesIn(logs);
        auto inventory = context.loadInventory();
        const bool known = !status->isEmpty() || (inventory && inventory->site(name));
        if (!known && logs.files.empty())
            return context.error(QStringLiteral("logs: no site %1 (the agent does not run it, %2 "
                                                "has no such site and %3 holds no logs)")
                                     .arg(shown(name), context.inventoryPath, logs.directory));
    }
    if (access) {
        // The site as the agent runs it, else as saved, else the defaults (an ad-hoc site).
        Site site;
        site.name = name;
        if (!status->isEmpty())
            site = status->first().site;
        else if (auto inventory = context.loadInventory(); inventory && inventory->site(name))
            site = *inventory->site(name);
        if (logs.directory.isEmpty()) logs.directory = siteLogDirectory(QString(), name);
        const QString path = siteAccessLogPath(site, logs.directory);
        if (path.isEmpty())
            return context.error(
                QStringLiteral("logs: site %1 writes no access log file (accessLog is %2)")
                    .arg(name, shown(site.accessLog)));
        logs.files = {{AccessLogPort, path}};
    } else if (onlyPort) {
        if (!logs.files.count(*onlyPort)) {
            QList<quint16> ports;
            for (const auto &[port, path] : logs.files)
                ports.append(port);
            return context.error(
                QStringLiteral("logs: site %1 has no worker log for port %2 "
                               "(workers: %3)")
                    .arg(name)
                    .arg(*onlyPort)
                    .arg(ports.isEmpty() ? QStringLiteral("none") : portList(ports)));
        }
        const QString path = logs.files.at(*onlyPort);
        logs.files = {{*onlyPort, path}};
    }

    std::map<quint16, std::unique_ptr<WorkerLogStream>> streams;
    for (const auto &[port, path] : logs.files)
        streams.emplace(port, std::make_unique<WorkerLogStream>(port, path));
    const auto print = [&](const QList<LogLine> &lines) {
        for (const LogLine &line : lines) {
            if (context.json)
                context.out << QJsonDocument(QJsonObject{{QStringLiteral("port"), line.port},
                                                         {QStringLiteral("timeMs"), line.timeMs},
                                                         {QStringLiteral("line"), line.text}})
                                   .toJson(QJsonDocument::Compact)
                            << '\n';
            else
                context.out << (line.port == AccessLogPort
                                    ? QStringLiteral("access")
                                    : QString::number(line.port).rightJustified(5))
                            << " | " << terminalLogLine(line.text) << '\n';
        }
        context.out << Qt::flush;
    };
    if (lineCount > 0) {
        QList<QList<LogLine>> perWorker;
        for (const auto &[port, stream] : streams)
            perWorker.append(stream->lastLines(lineCount));
        QList<LogLine> merged = mergeLogLines(perWorker);
        if (merged.size() > lineCount) merged.remove(0, merged.size() - lineCount);
        print(merged);
    }
    if (!follow) return Success;

    // Follow: poll each log (a rotated one is finished, then the new file read from its start),
    // and pick up workers added meanwhile (scaled up: a new PORT.log in the directory).
    client.reset(); // the agent is not needed any more
    SignalWatcher signalWatcher({SIGINT, SIGTERM, SIGHUP});
    QObject::connect(&signalWatcher, &SignalWatcher::received, &signalWatcher,
                     [] { QCoreApplication::exit(0); });
    QTimer timer;
    timer.setInterval(FollowPollMs);
    int ticks = 0;
    QObject::connect(&timer, &QTimer::timeout, &signalWatcher, [&] {
        if (!onlyPort && !access && !logs.directory.isEmpty() && ++ticks % 5 == 0) {
            addLogFilesIn(logs);
            for (const auto &[port, path] : logs.files)
                if (!streams.count(port)) // created after we looked: all of it is new
                    streams.emplace(port, std::make_unique<WorkerLogStream>(
                                              port, path, WorkerLogStream::FromStart));
        }
        QList<QList<LogLine>> perWorker;
        for (const auto &[port, stream] : streams)
            perWorker.append(stream->poll());
        print(mergeLogLines(perWorker));
    });
    timer.start();
    QCoreApplication::exec();
    return Success;
}

// ---- agent -----------------------------------------------------------------------------------

const char agentUsage[] =
    "Usage: corralctl agent start|stop|status\n"
    "\n"
    "The per-user Corral agent owns every local site; corral and corralctl start it on demand\n"
    "and talk to it over $XDG_RUNTIME_DIR/corral/agent.sock (/tmp/corral-$UID/agent.sock\n"
    "without XDG_RUNTIME_DIR). As a systemd user unit: systemctl --user enable --now\n"
    "corral-agent.\n"
    "\n"
    "  start    start the agent unless one answers; prints its pid and socket\n"
    "  stop     drain and stop every site, then the agent exits (waits until it is gone;\n"
    "           the sites it ran are started again by the next agent)\n"
    "  status   the agent's pid, socket, uptime and sites; exit 1 when no agent runs\n"
    "           (does not start one)\n";

bool processExists(qint64 pid) {
    if (pid <= 0) return false;
    if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH) return false;
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly)) return false;
    const QByteArray text = stat.readAll();
    const qsizetype close = text.lastIndexOf(')');
    return close > 0 && text.mid(close + 2, 1) != "Z";
}

int agentCommand(Context &context, const QStringList &args) {
    auto options = parseOptions(args, OptionSpec{});
    if (!options) return context.usageError(options.error());
    const QString action = options->positional.value(0);
    if (options->positional.size() != 1 || !options->rest.isEmpty() ||
        !QStringList{QStringLiteral("start"), QStringLiteral("stop"), QStringLiteral("status")}
             .contains(action))
        return context.usageError(QStringLiteral("expected start, stop or status"));

    AgentClient client;
    const auto connected = client.connectToAgent(false);
    if (action == QLatin1String("start")) {
        bool started = false;
        if (!connected) {
            if (auto again = client.connectToAgent(true); !again)
                return context.error(QStringLiteral("agent start: ") + again.error());
            started = true;
        }
        if (context.json)
            printJson(context, QJsonObject{{QStringLiteral("pid"), client.agentPid()},
                                           {QStringLiteral("socket"), client.socketPath()},
                                           {QStringLiteral("started"), started}});
        else
            context.out << (started ? "agent started: pid " : "agent already running: pid ")
                        << client.agentPid() << ", socket " << client.socketPath() << Qt::endl;
        return Success;
    }
    if (!connected) {
        if (action == QLatin1String("stop")) {
            if (context.json)
                printJson(context, QJsonObject{{QStringLiteral("running"), false},
                                               {QStringLiteral("socket"), client.socketPath()}});
            else
                context.out << "no agent runs: " << connected.error() << Qt::endl;
            return Success;
        }
        if (context.json)
            printJson(context, QJsonObject{{QStringLiteral("running"), false},
                                           {QStringLiteral("socket"), client.socketPath()}});
        return context.error(QStringLiteral("agent status: ") + connected.error());
    }

    const qint64 pid = client.agentPid();
    if (action == QLatin1String("stop")) {
        auto reply =
            client.call(QString::fromLatin1(agent::op::Shutdown), QJsonObject{}, QuickOperationMs);
        if (!reply) return context.error(QStringLiteral("agent stop: ") + reply.error());
        if (!context.json)
            context.out << "agent pid " << pid << ": stopping every site..." << Qt::endl;
        // It drains and stops every site within their kill timeouts, then exits.
        QDeadlineTimer deadline(LongOperationMs);
        while (processExists(pid) && !deadline.hasExpired())
            QThread::msleep(20);
        if (processExists(pid))
            return context.error(QStringLiteral("agent stop: the agent (pid %1) still runs %2 s "
                                                "after it was asked to stop")
                                     .arg(pid)
                                     .arg(LongOperationMs / 1000));
        if (context.json)
            printJson(context,
                      QJsonObject{{QStringLiteral("pid"), pid}, {QStringLiteral("stopped"), true}});
        else
            context.out << "agent pid " << pid << " stopped" << Qt::endl;
        return Success;
    }

    auto hello =
        client.call(QString::fromLatin1(agent::op::Hello), QJsonObject{}, QuickOperationMs);
    if (!hello) return context.error(QStringLiteral("agent status: ") + hello.error());
    auto sites = client.status(QString(), QuickOperationMs);
    if (!sites) return context.error(QStringLiteral("agent status: ") + sites.error());
    int running = 0;
    int workers = 0;
    for (const SiteStatus &site : sites.value()) {
        if (isActive(site.state)) ++running;
        workers += int(site.workers.size());
    }
    const qint64 startedMs = hello->value(QStringLiteral("startedMs")).toInteger();
    const qint64 uptimeMs =
        startedMs > 0 ? QDateTime::currentMSecsSinceEpoch() - startedMs : qint64(0);
    if (context.json) {
        printJson(context,
                  QJsonObject{{QStringLiteral("running"), true},
                              {QStringLiteral("pid"), pid},
                              {QStringLiteral("socket"), client.socketPath()},
                              {QStringLiteral("version"), hello->value(QStringLiteral("version"))},
                              {QStringLiteral("uptimeMs"), uptimeMs},
                              {QStringLiteral("sites"), int(sites->size())},
                              {QStringLiteral("runningSites"), running},
                              {QStringLiteral("workers"), workers}});
        return Success;
    }
    context.out << "agent pid " << pid << ", socket " << client.socketPath() << '\n'
                << "up " << formatDuration(uptimeMs) << ", protocol version "
                << hello->value(QStringLiteral("version")).toInt() << '\n'
                << sites->size() << " site" << (sites->size() == 1 ? "" : "s") << " (" << running
                << " running, " << workers << " worker" << (workers == 1 ? "" : "s") << ")"
                << Qt::endl;
    return Success;
}

} // namespace

QList<Command> agentCommands() {
    return {
        Command{QStringLiteral("start"),
                QStringLiteral("Start a local site in the agent (saved in the inventory)"),
                QString::fromLatin1(startUsage) + siteOptionsHelp() +
                    productionUsage(QStringLiteral("start")) + QString::fromLatin1(exitCodesHelp),
                startCommand},
        Command{QStringLiteral("stop"),
                QStringLiteral("Drain and stop a site (local, or production: see help)"),
                QString::fromLatin1(stopUsage) + productionUsage(QStringLiteral("stop")) +
                    QString::fromLatin1(exitCodesHelp),
                stopCommand},
        Command{QStringLiteral("restart"),
                QStringLiteral("Rolling restart of a site, or of one worker"),
                QString::fromLatin1(restartUsage) + productionUsage(QStringLiteral("restart")) +
                    QString::fromLatin1(exitCodesHelp),
                restartCommand},
        Command{QStringLiteral("scale"),
                QStringLiteral("Set or change a site's worker count (local or production)"),
                QString::fromLatin1(scaleUsage) + productionUsage(QStringLiteral("scale")) +
                    QString::fromLatin1(exitCodesHelp),
                scaleCommand},
        Command{QStringLiteral("ps"),
                QStringLiteral("List sites and workers with their live numbers"),
                usageWithExitCodes(psUsage), psCommand},
        Command{QStringLiteral("logs"), QStringLiteral("Show or follow a site's worker logs"),
                usageWithExitCodes(logsUsage), logsCommand},
        Command{QStringLiteral("agent"), QStringLiteral("Start, stop or query the Corral agent"),
                usageWithExitCodes(agentUsage), agentCommand},
    };
}

} // namespace corral::cli
