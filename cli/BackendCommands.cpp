#include "cli/Context.h"
#include "cluster/RemoteSite.h"
#include "inventory/OperationJournal.h"
#include "model/FieldText.h"
#include "ssh/HostSessions.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteAddBackend.h"
#include "upstreams/RemoteRollingRestart.h"
#include "upstreams/SiteLock.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>

#include <map>

namespace corral::cli {

static const char addBackendUsage[] =
    "Usage: corralctl add-backend SITE [--on HOST] [--no-wait] [--accept-new]\n"
    "\n"
    "Starts one more worker of SITE on HOST (default: the site's balancer host) and puts it\n"
    "behind the site's production balancer:\n"
    "  allocate  a free port on HOST from the site's basePort up (ss on the host)\n"
    "  start     the site's command with {port} and $PORT set, detached (setsid nohup), its pid\n"
    "            file in ~/.local/state/corral/workers/SITE/PORT.pid on HOST\n"
    "  health    GET the site's healthPath (or /) on 127.0.0.1:PORT with curl on HOST until it\n"
    "            answers 2xx (15 s at most)\n"
    "  then the backend ADDRESS:PORT is added (ADDRESS is 127.0.0.1 when HOST is the balancer's\n"
    "  host, else HOST's address) and the balancer config is applied as by 'corralctl apply'\n"
    "  (diff, upload, install, validate, reload, verify).\n"
    "On success the site, with the new backend and port, is saved to the inventory.\n"
    "\n"
    "Before the worker starts, the operation is recorded in a journal next to the inventory\n"
    "(journal/SITE.json: host, port, pid, the step reached); it is removed once the inventory\n"
    "holds the new backend. A failing step stops the new worker over a new SSH connection and\n"
    "says whether the host confirmed it (a failing apply has restored the previous config);\n"
    "when that cannot be confirmed, or the inventory cannot be saved, the journal stays and\n"
    "the next add-backend, rolling-restart or apply of SITE (or 'corralctl reconcile SITE')\n"
    "settles it first: it adopts the backend when its worker runs and the balancer's config\n"
    "lists it, else stops the worker. Until then no other operation runs on SITE.\n"
    "\n"
    "Options:\n"
    "  --on HOST     the inventory host that runs the new worker (an SSH host)\n"
    "  --no-wait     fail at once, naming the holder, when another operation holds the site\n"
    "                (else it waits for the site's lock, as 'corralctl help apply' says)\n"
    "  --accept-new  trust the host key of a host never seen before (as in 'host test')\n"
    "\n"
    "Steps are printed as they happen; with --json one object: site, host, backend, steps,\n"
    "result (\"added\" or \"failed\") and error.\n"
    "\n"
    "Exit codes: 0 added, 1 a step failed (the message says what was undone), 2 usage.\n";

static const char rollingRestartUsage[] =
    "Usage: corralctl rolling-restart SITE [--drain-timeout SECONDS] [--health-timeout SECONDS]\n"
    "                                 [--adopt [--yes]] [--no-wait] [--accept-new]\n"
    "\n"
    "Restarts every worker behind SITE's production balancer, one backend at a time, so the\n"
    "site keeps serving. First, before anything changes, every backend is checked on its host:\n"
    "  check    its worker must be one Corral can restart: its pid file\n"
    "           (~/.local/state/corral/workers/SITE/PORT.pid on that host) names a live process\n"
    "           that holds the port, or the systemd unit corral-SITE@.service is installed\n"
    "           there, or nothing runs on the port and the site has a command to start.\n"
    "           A worker Corral did not start (a site made with --backends or by import) stops\n"
    "           the run here, naming its host, the pid holding its port and its command line;\n"
    "           nothing was changed. --adopt records such workers first (see below).\n"
    "Then for each backend:\n"
    "  drain    HAProxy: 'set server corral-SITE/ADDRESS:PORT state drain' on its stats socket\n"
    "           (socat over SSH; the balancer's runtimeDirectory, default /run/haproxy), then\n"
    "           wait until the server has no current sessions or the drain timeout passed.\n"
    "           nginx/Apache (no runtime API): the config is applied with the backend marked\n"
    "           down (validated, reloaded gracefully, verified, rolled back on failure).\n"
    "  restart  the worker on its host: systemctl restart of corral-SITE@PORT when that unit is\n"
    "           installed there, else stop (SIGTERM) and start again with a new pid. A loopback\n"
    "           backend runs on the balancer's host, any other on the inventory host with that\n"
    "           address.\n"
    "  health   GET the site's healthPath (or /) on the worker's host until it answers 2xx\n"
    "           (or the health timeout passed: a failure).\n"
    "  enable   HAProxy: 'state ready', then wait until HAProxy's own health check reports\n"
    "           the server UP ('show stat'; at most 30 s) before the next backend is drained.\n"
    "           nginx/Apache: the site's config applied again.\n"
    "The run stops at the first failing step. The backend it took out of rotation is put back\n"
    "(step enable: HAProxy 'state ready', its own check then keeps a failing worker out;\n"
    "nginx/Apache: the site's config applied again); the backends after it are not touched,\n"
    "the ones before it were restarted and serve again; the message says where each backend\n"
    "stands. Only when the site's lock was lost is nothing put back (another operation may\n"
    "own the config): then run 'corralctl apply SITE'. Backends marked down in the inventory\n"
    "are restarted without drain and enable; a site needs at least two backends in rotation.\n"
    "An interrupted add-backend of SITE is reconciled first (see 'corralctl help reconcile').\n"
    "\n"
    "Adopting workers Corral did not start (--adopt): for each backend whose port is held by\n"
    "such a process, its command line is read from /proc/PID/cmdline on the host and shown;\n"
    "after confirmation its pid and start time are written to its pid file, so the restart\n"
    "can stop it and start the site's command in its place. When the site has no command,\n"
    "command and args (and workingDirectory, from /proc/PID/cwd) are set from the first\n"
    "backend's command line, with its port number replaced by {port}, and the inventory is\n"
    "saved. Differing command lines, or one without its port, are pointed out before the\n"
    "question. Without a terminal, --yes is required.\n"
    "\n"
    "Options:\n"
    "  --adopt                  record running workers Corral did not start (asks first),\n"
    "                           then restart every backend\n"
    "  --yes                    with --adopt: do not ask (for scripts)\n"
    "  --drain-timeout SECONDS  how long a drained HAProxy server may keep open sessions before\n"
    "                           its worker is restarted anyway (default 30)\n"
    "  --health-timeout SECONDS how long a restarted worker may take to answer its health\n"
    "                           path (default 15)\n"
    "  --no-wait                fail at once, naming the holder, when another operation holds\n"
    "                           the site (else it waits for the site's lock, see 'help apply')\n"
    "  --accept-new             trust the host key of a host never seen before\n"
    "\n"
    "Steps are printed as they happen; with --json one object: site, steps (backend, step, ok,\n"
    "detail), restarted, result (\"restarted\" or \"failed\"), failedBackend, error, adopted\n"
    "(backends whose workers were adopted) and backends (backend, state: \"restarted\",\n"
    "\"untouched\", \"back-in-rotation\" or \"out-of-rotation\", detail).\n"
    "\n"
    "Exit codes: 0 all restarted, 1 a check or step failed (see above), 2 usage.\n";

static const char reconcileUsage[] =
    "Usage: corralctl reconcile SITE [--no-wait] [--accept-new]\n"
    "\n"
    "Settles an operation on SITE that did not finish: an add-backend whose worker was started\n"
    "but is not in the inventory (the SSH connection or the host was lost, or the inventory\n"
    "could not be saved). Such an operation is recorded in the journal next to the inventory\n"
    "(journal/SITE.json). Its worker is adopted (added to the inventory) when it runs and the\n"
    "balancer's installed config lists it; otherwise it is stopped and its pid file removed\n"
    "(and the site's config applied again if the balancer still lists it). add-backend,\n"
    "rolling-restart and apply do the same before they start, and refuse to run on SITE while\n"
    "it cannot be done.\n"
    "\n"
    "Options:\n"
    "  --no-wait     fail at once, naming the holder, when another operation holds the site\n"
    "  --accept-new  trust the host key of a host never seen before\n"
    "\n"
    "Exit codes: 0 nothing pending or reconciled, 1 it could not be reconciled, 2 usage.\n";

static QJsonArray applyStepsJson(const QList<ApplyStep> &steps) {
    QJsonArray array;
    for (const ApplyStep &step : steps)
        array.append(QJsonObject{{QStringLiteral("step"), step.name},
                                 {QStringLiteral("ok"), step.ok},
                                 {QStringLiteral("detail"), step.detail}});
    return array;
}

HostSessions::Opener sessionOpener(Context &context, const Inventory &inventory, bool acceptNew) {
    return [&context, &inventory, acceptNew](const Host &host) {
        return openHostSession(context, inventory, host.name, acceptNew);
    };
}

RemoteSiteOptions remoteSiteOptions(Context &context, const QString &command, const QString &site,
                                    bool noWait) {
    RemoteSiteOptions options;
    options.inventoryPath = context.inventoryPath;
    options.actor = QStringLiteral("corralctl");
    options.noWait = noWait;
    options.onWaiting = [&context, command, site](const QString &holder) {
        context.err << "corralctl: " << command << " " << site << ": waiting: the site is "
                    << "locked by " << holder << " (--no-wait fails instead)" << Qt::endl;
    };
    options.onNote = [&context](const QString &line) {
        (context.json ? context.err : context.out) << line << Qt::endl;
    };
    return options;
}

bool reconcilePending(Context &context, Inventory &inventory, const QString &name, bool acceptNew,
                      int &code) {
    if (!QFile::exists(OperationJournal::pathFor(context.inventoryPath, name))) return true;
    HostSessions sessions(inventory.hosts(), sessionOpener(context, inventory, acceptNew));
    RemoteSite site(name, sessions,
                    remoteSiteOptions(context, QStringLiteral("reconcile"), name, false));
    const SiteOutcome outcome = site.reconcile();
    if (!outcome.ok()) {
        code = context.error(outcome.error);
        return false;
    }
    // The caller's inventory follows what the reconcile saved.
    if (auto reloaded = context.loadInventory()) inventory = std::move(reloaded).value();
    return true;
}

static int reconcileCommand(Context &context, const QStringList &args) {
    auto options = parseOptions(
        args, OptionSpec{{QStringLiteral("accept-new"), QStringLiteral("no-wait")}, {}});
    if (!options) return context.usageError(QStringLiteral("reconcile: ") + options.error());
    if (options->positional.size() != 1)
        return context.usageError(QStringLiteral("reconcile: expected exactly one site NAME"));
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const QString name = options->positional.first();
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite site(name, sessions,
                    remoteSiteOptions(context, QStringLiteral("reconcile"), name,
                                      options->has(QStringLiteral("no-wait"))));
    const SiteOutcome outcome = site.reconcile();
    if (!outcome.ok()) return context.error(outcome.error);
    if (!context.json)
        for (const QString &line : outcome.notes)
            context.out << line << Qt::endl;
    return Success;
}

static int addBackendCommand(Context &context, const QStringList &args) {
    const QString usage = QString::fromLatin1(addBackendUsage);
    auto options =
        parseOptions(args, OptionSpec{{QStringLiteral("accept-new"), QStringLiteral("no-wait")},
                                      {QStringLiteral("on")}});
    if (!options)
        return context.usageError(QStringLiteral("add-backend: ") + options.error(), usage);
    if (options->positional.size() != 1)
        return context.usageError(QStringLiteral("add-backend: expected exactly one site NAME"),
                                  usage);
    if (options->has(QStringLiteral("on")) && options->value(QStringLiteral("on")).isEmpty())
        return context.usageError(QStringLiteral("add-backend: --on needs a HOST"), usage);
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const QString name = options->positional.first();
    const Site *known = inventory->site(name);
    const QString requested = options->value(QStringLiteral("on"));
    const QString workerHost = !requested.isEmpty()       ? requested
                               : known && known->balancer ? known->balancer->host
                                                          : QString();

    QList<ApplyStep> steps;
    const auto onStep = [&](const ApplyStep &step) {
        steps.append(step);
        if (!context.json)
            context.out << (step.ok ? "  ok    " : "  FAIL  ") << step.name << ": " << step.detail
                        << Qt::endl;
    };
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite site(name, sessions,
                    remoteSiteOptions(context, QStringLiteral("add-backend"), name,
                                      options->has(QStringLiteral("no-wait"))));
    const SiteOutcome outcome = site.addBackend(requested, onStep);
    if (context.json) {
        QJsonObject object{{QStringLiteral("site"), name},
                           {QStringLiteral("host"), workerHost},
                           {QStringLiteral("steps"), applyStepsJson(steps)},
                           {QStringLiteral("result"),
                            outcome.ok() ? QStringLiteral("added") : QStringLiteral("failed")}};
        if (!outcome.backend.isEmpty()) object.insert(QStringLiteral("backend"), outcome.backend);
        if (!outcome.ok()) object.insert(QStringLiteral("error"), outcome.error);
        context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
    }
    if (!outcome.ok()) return context.error(outcome.error);
    for (const QString &note : outcome.notes)
        context.err << "corralctl: " << note << Qt::endl;
    if (!context.json)
        context.out << "added backend " << outcome.backend << " to " << name << " (worker on "
                    << workerHost << ")" << Qt::endl;
    return Success;
}

static QString rollingStateName(RollingBackendState::State state) {
    switch (state) {
    case RollingBackendState::State::Restarted:
        return QStringLiteral("restarted");
    case RollingBackendState::State::Untouched:
        return QStringLiteral("untouched");
    case RollingBackendState::State::BackInRotation:
        return QStringLiteral("back-in-rotation");
    case RollingBackendState::State::OutOfRotation:
        return QStringLiteral("out-of-rotation");
    }
    return {};
}

/// rolling-restart --adopt: shows what adopting would record and asks (unless `yes`).
static bool confirmAdoption(Context &context, const AdoptionPlan &plan, const QString &site,
                            bool yes) {
    QTextStream &progress = context.json ? context.err : context.out;
    progress << "workers of " << site << " that Corral did not start:" << Qt::endl;
    for (const WorkerAdoption &worker : plan.workers) {
        progress << "  " << worker.backend << " on " << worker.host << ": pid "
                 << worker.process.pid << ": " << shownCommand(worker.process.argv);
        if (!worker.process.workingDirectory.isEmpty())
            progress << " (in " << escapeControls(worker.process.workingDirectory) << ")";
        progress << "\n      to be recorded in " << escapeControls(worker.pidFile) << Qt::endl;
    }
    if (plan.siteChanged) {
        QStringList command{plan.site.command};
        command += plan.site.args;
        progress << "the site's command becomes: " << shownCommand(command);
        if (!plan.site.workingDirectory.isEmpty())
            progress << " (working directory " << escapeControls(plan.site.workingDirectory) << ")";
        progress << Qt::endl;
    }
    for (const QString &note : plan.notes)
        progress << "note: " << note << Qt::endl;
    return yes ||
           confirm(
               context,
               QStringLiteral("Adopt these workers and restart every backend of %1?").arg(site));
}

static int rollingRestartCommand(Context &context, const QStringList &args) {
    const QString usage = QString::fromLatin1(rollingRestartUsage);
    auto options = parseOptions(
        args, OptionSpec{{QStringLiteral("accept-new"), QStringLiteral("no-wait"),
                          QStringLiteral("adopt"), QStringLiteral("yes")},
                         {QStringLiteral("drain-timeout"), QStringLiteral("health-timeout")}});
    if (!options)
        return context.usageError(QStringLiteral("rolling-restart: ") + options.error(), usage);
    if (options->positional.size() != 1)
        return context.usageError(QStringLiteral("rolling-restart: expected exactly one site NAME"),
                                  usage);
    int timeoutsMs[2] = {30000, 15000};
    const QString timeoutNames[2] = {QStringLiteral("drain-timeout"),
                                     QStringLiteral("health-timeout")};
    QStringList problems; // every bad value at once
    for (int i = 0; i < 2; ++i) {
        if (!options->has(timeoutNames[i])) continue;
        bool ok = false;
        const double seconds = options->value(timeoutNames[i]).toDouble(&ok);
        if (ok && seconds >= 0 && seconds <= 86400)
            timeoutsMs[i] = int(seconds * 1000);
        else
            problems.append(QStringLiteral("--%1: %2 is not a number of seconds from 0 to 86400")
                                .arg(timeoutNames[i], shown(options->value(timeoutNames[i]))));
    }
    const bool adopt = options->has(QStringLiteral("adopt"));
    const bool yes = options->has(QStringLiteral("yes"));
    if (yes && !adopt)
        return context.usageError(QStringLiteral("rolling-restart: --yes only goes with --adopt"),
                                  usage);
    if (adopt && !yes && !interactive())
        problems.append(QStringLiteral("--adopt asks for confirmation, and there is no terminal "
                                       "to ask on: add --yes to adopt without asking"));
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("rolling-restart: "));
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const QString name = options->positional.first();

    QList<RollingStep> steps;
    RollingRestartRequest request;
    request.drainTimeoutMs = timeoutsMs[0];
    request.healthTimeoutMs = timeoutsMs[1];
    request.adopt = adopt;
    request.confirmAdoption = [&](const AdoptionPlan &plan) {
        return confirmAdoption(context, plan, name, yes);
    };
    request.onStep = [&](const RollingStep &step) {
        steps.append(step);
        if (!context.json)
            context.out << (step.ok ? "  ok    " : "  FAIL  ") << step.backend << "  " << step.step
                        << ": " << step.detail << Qt::endl;
    };
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite site(name, sessions,
                    remoteSiteOptions(context, QStringLiteral("rolling-restart"), name,
                                      options->has(QStringLiteral("no-wait"))));
    const RollingRestartOutcome outcome = site.rollingRestart(request);
    const RollingRestartReport &report = outcome.report;
    if (context.json) {
        QJsonArray stepArray;
        for (const RollingStep &step : steps)
            stepArray.append(QJsonObject{{QStringLiteral("backend"), step.backend},
                                         {QStringLiteral("step"), step.step},
                                         {QStringLiteral("ok"), step.ok},
                                         {QStringLiteral("detail"), step.detail}});
        QJsonObject object{
            {QStringLiteral("site"), name},
            {QStringLiteral("steps"), stepArray},
            {QStringLiteral("restarted"), QJsonArray::fromStringList(report.restarted)},
            {QStringLiteral("result"),
             report.ok() ? QStringLiteral("restarted") : QStringLiteral("failed")}};
        if (!report.failedBackend.isEmpty())
            object.insert(QStringLiteral("failedBackend"), report.failedBackend);
        if (!report.ok()) object.insert(QStringLiteral("error"), report.error);
        object.insert(QStringLiteral("adopted"), QJsonArray::fromStringList(outcome.adopted));
        QJsonArray backendArray;
        for (const RollingBackendState &backend : report.backends)
            backendArray.append(
                QJsonObject{{QStringLiteral("backend"), backend.backend},
                            {QStringLiteral("state"), rollingStateName(backend.state)},
                            {QStringLiteral("detail"), backend.detail}});
        object.insert(QStringLiteral("backends"), backendArray);
        context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
    }
    if (!report.ok()) {
        // Errors of the site's checks already name the operation ("rolling-restart shop: ...").
        QString message = report.error.startsWith(QStringLiteral("rolling-restart ")) ||
                                  report.error.startsWith(QStringLiteral("no site named "))
                              ? report.error
                              : QStringLiteral("rolling-restart %1: %2").arg(name, report.error);
        if (!report.backends.isEmpty())
            message += QStringLiteral("\nafterwards: ") + report.describeBackends();
        return context.error(message);
    }
    if (!context.json)
        context.out << "restarted " << report.restarted.size() << " backend(s) of " << name
                    << Qt::endl;
    return Success;
}

QList<Command> backendCommands() {
    return {Command{QStringLiteral("add-backend"),
                    QStringLiteral("Start one more worker on a host and add it to the balancer"),
                    QString::fromLatin1(addBackendUsage), addBackendCommand},
            Command{QStringLiteral("rolling-restart"),
                    QStringLiteral("Restart a site's workers one by one through its balancer"),
                    QString::fromLatin1(rollingRestartUsage), rollingRestartCommand},
            Command{QStringLiteral("reconcile"),
                    QStringLiteral("Adopt or clean up an interrupted add-backend of a site"),
                    QString::fromLatin1(reconcileUsage), reconcileCommand}};
}

} // namespace corral::cli
