// The lifecycle of a production site (a balancer on an SSH host, workers on SSH hosts):
// remove-backend, and the production forms of restart --worker, stop and start, which the
// local-site commands (AgentCommands.cpp) hand over to when the site has a balancer.

#include "cli/Context.h"
#include "cluster/RemoteSite.h"
#include "model/FieldText.h"
#include "ssh/HostSessions.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>

namespace corral::cli {

static const char removeBackendUsage[] =
    "Usage: corralctl remove-backend SITE HOST:PORT [--force] [--drain-timeout SECONDS]\n"
    "                                [--no-wait] [--accept-new]\n"
    "\n"
    "Takes the backend HOST:PORT (as the site lists it) out of SITE's production balancer and\n"
    "stops its worker, without failing a request:\n"
    "  check   the backend is one of the site's, and not the last one in rotation (without\n"
    "          --force that is refused: the site would stop serving)\n"
    "  drain   HAProxy: 'set server corral-SITE/HOST:PORT state drain' on its stats socket\n"
    "          (socat over SSH); nginx/Apache: the config applied with the backend marked down\n"
    "          (validated, reloaded gracefully, verified, rolled back on failure)\n"
    "  wait    until nothing is in flight on it: HAProxy's 'show stat' reports no current\n"
    "          session; nginx/Apache: its access log had no new line answered by the backend\n"
    "          for 2 s. After the drain timeout it goes ahead anyway.\n"
    "  stop    its worker on its host (the balancer's host for a loopback backend, else the\n"
    "          inventory host with that address): systemctl stop of corral-SITE@PORT where\n"
    "          that unit runs it, else SIGTERM (SIGKILL after 5 s) and its pid file removed\n"
    "  apply   the config without the backend (as 'corralctl apply': validate, reload,\n"
    "          verify, rollback)\n"
    "  verify  the installed config no longer names it\n"
    "Then the site without the backend is saved to the inventory (atomically).\n"
    "A failing step leaves the previous config serving and the inventory unchanged: an apply\n"
    "that fails is rolled back, a stopped worker is started again and must answer its health\n"
    "path, and the backend is put back into rotation (HAProxy 'state ready', nginx/Apache the\n"
    "site's config applied again). The message names the step (\"drain: \", \"wait: \",\n"
    "\"stop: \", \"apply/validate: \"...) and what was put back. An interrupted add-backend of\n"
    "SITE is reconciled first (see 'corralctl help reconcile').\n"
    "\n"
    "Options:\n"
    "  --force                  remove it even when it is the last backend in rotation\n"
    "  --drain-timeout SECONDS  how long it may keep requests in flight before its worker is\n"
    "                           stopped anyway (default 30)\n"
    "  --no-wait                fail at once, naming the holder, when another operation holds\n"
    "                           the site (else it waits for the site's lock, see 'help apply')\n"
    "  --accept-new             trust the host key of a host never seen before\n"
    "\n"
    "Steps are printed as they happen; with --json one object: site, backend, steps (step, ok,\n"
    "detail), result (\"removed\" or \"failed\") and error.\n"
    "\n"
    "Exit codes: 0 removed, 1 a step failed (the message says what was put back), 2 usage.\n";

namespace {

/// The position of SITE in `args`: the first argument that is neither an option nor the
/// value of one of `valued` ("--worker X"). -1 when there is none.
qsizetype siteArgument(const QStringList &args, const QStringList &valued) {
    for (qsizetype i = 0; i < args.size(); ++i) {
        const QString &arg = args.at(i);
        if (arg == QLatin1String("--")) return -1;
        if (arg.startsWith(QLatin1Char('-'))) {
            if (!arg.contains(QLatin1Char('=')) && valued.contains(arg.mid(2))) ++i;
            continue;
        }
        return i;
    }
    return -1;
}

/// --drain-timeout as milliseconds, or an error naming the option and value.
Result<int> secondsOption(const ParsedOptions &options, const QString &option, int defaultMs) {
    if (!options.has(option)) return defaultMs;
    bool ok = false;
    const double seconds = options.value(option).toDouble(&ok);
    if (!ok || seconds < 0 || seconds > 86400)
        return fail(QStringLiteral("--%1: %2 is not a number of seconds from 0 to 86400")
                        .arg(option, shown(options.value(option))));
    return int(seconds * 1000);
}

void printStep(Context &context, const QString &backend, const QString &name, bool ok,
               const QString &detail) {
    if (context.json) return;
    context.out << (ok ? "  ok    " : "  FAIL  ")
                << (backend.isEmpty() ? QString() : backend + QStringLiteral("  ")) << name << ": "
                << detail << Qt::endl;
}

QJsonObject stepJson(const QString &backend, const QString &name, bool ok, const QString &detail) {
    QJsonObject object{{QStringLiteral("step"), name},
                       {QStringLiteral("ok"), ok},
                       {QStringLiteral("detail"), detail}};
    if (!backend.isEmpty()) object.insert(QStringLiteral("backend"), backend);
    return object;
}

int removeBackendCommand(Context &context, const QStringList &args) {
    const QString usage = QString::fromLatin1(removeBackendUsage);
    auto options =
        parseOptions(args, OptionSpec{{QStringLiteral("accept-new"), QStringLiteral("no-wait"),
                                       QStringLiteral("force")},
                                      {QStringLiteral("drain-timeout")}});
    if (!options)
        return context.usageError(QStringLiteral("remove-backend: ") + options.error(), usage);
    if (options->positional.size() != 2)
        return context.usageError(
            QStringLiteral("remove-backend: expected a site NAME and a backend HOST:PORT"), usage);
    auto drainMs = secondsOption(options.value(), QStringLiteral("drain-timeout"), 30000);
    if (!drainMs) return context.error(QStringLiteral("remove-backend: ") + drainMs.error());
    auto backend = Backend::parse(options->positional.at(1));
    if (!backend)
        return context.error(QStringLiteral("remove-backend: %1: %2")
                                 .arg(shown(options->positional.at(1)), backend.error()));
    const QString name = options->positional.first();

    QJsonArray steps;
    const auto finish = [&](const QString &error) {
        if (context.json) {
            QJsonObject object{{QStringLiteral("site"), name},
                               {QStringLiteral("backend"), backend->key()},
                               {QStringLiteral("steps"), steps},
                               {QStringLiteral("result"), error.isEmpty()
                                                              ? QStringLiteral("removed")
                                                              : QStringLiteral("failed")}};
            if (!error.isEmpty()) object.insert(QStringLiteral("error"), error);
            context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
        }
        if (!error.isEmpty()) return context.error(error);
        if (!context.json)
            context.out << "removed backend " << backend->key() << " from " << name << Qt::endl;
        return int(Success);
    };

    auto inventory = context.loadInventory();
    if (!inventory) return finish(inventory.error());
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite site(name, sessions,
                    remoteSiteOptions(context, QStringLiteral("remove-backend"), name,
                                      options->has(QStringLiteral("no-wait"))));
    SiteChangeRequest request;
    request.drainTimeoutMs = drainMs.value();
    request.force = options->has(QStringLiteral("force"));
    request.onStep = [&](const RollingStep &step) {
        steps.append(stepJson({}, step.step, step.ok, step.detail));
        printStep(context, {}, step.step, step.ok, step.detail);
    };
    const SiteOutcome outcome = site.removeBackend(backend->key(), request);
    for (const QString &note : outcome.notes)
        context.err << "corralctl: " << note << Qt::endl;
    return finish(outcome.error);
}

/// corralctl restart SITE --worker HOST:PORT [--force] for a production site.
int restartWorker(Context &context, const QString &name, const QStringList &args) {
    auto options =
        parseOptions(args, OptionSpec{{QStringLiteral("accept-new"), QStringLiteral("no-wait"),
                                       QStringLiteral("force")},
                                      {QStringLiteral("worker"), QStringLiteral("drain-timeout"),
                                       QStringLiteral("health-timeout")}});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected exactly one SITE"));
    auto backend = Backend::parse(options->value(QStringLiteral("worker")));
    if (!backend)
        return context.error(
            QStringLiteral("restart: --worker: %1 is not a backend HOST:PORT of production site "
                           "%2: %3")
                .arg(shown(options->value(QStringLiteral("worker"))), name, backend.error()));
    auto drainMs = secondsOption(options.value(), QStringLiteral("drain-timeout"), 30000);
    auto healthMs = secondsOption(options.value(), QStringLiteral("health-timeout"), 15000);
    QStringList problems;
    if (!drainMs) problems.append(drainMs.error());
    if (!healthMs) problems.append(healthMs.error());
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("restart: "));

    QJsonArray steps;
    const auto finish = [&](const RollingRestartReport &report) {
        if (context.json) {
            QJsonObject object{{QStringLiteral("site"), name},
                               {QStringLiteral("backend"), backend->key()},
                               {QStringLiteral("steps"), steps},
                               {QStringLiteral("result"), report.ok() ? QStringLiteral("restarted")
                                                                      : QStringLiteral("failed")}};
            if (!report.ok()) object.insert(QStringLiteral("error"), report.error);
            context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
        }
        if (!report.ok()) {
            QString message = QStringLiteral("restart %1: %2").arg(name, report.error);
            if (!report.backends.isEmpty())
                message += QStringLiteral("\nafterwards: ") + report.describeBackends();
            return context.error(message);
        }
        if (!context.json)
            context.out << "restarted " << backend->key() << " of " << name << Qt::endl;
        return int(Success);
    };
    auto inventory = context.loadInventory();
    if (!inventory) {
        RollingRestartReport refused;
        refused.error = inventory.error();
        return finish(refused);
    }
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite site(name, sessions,
                    remoteSiteOptions(context, QStringLiteral("restart"), name,
                                      options->has(QStringLiteral("no-wait"))));
    SiteChangeRequest request;
    request.force = options->has(QStringLiteral("force"));
    request.drainTimeoutMs = drainMs.value();
    request.healthTimeoutMs = healthMs.value();
    request.onStep = [&](const RollingStep &step) {
        steps.append(stepJson(step.backend, step.step, step.ok, step.detail));
        printStep(context, step.backend, step.step, step.ok, step.detail);
    };
    return finish(site.restartWorker(backend->key(), request).report);
}

/// corralctl stop|start SITE for a production site.
int stopOrStart(Context &context, const QString &name, const QStringList &args, bool stop) {
    const QString command = stop ? QStringLiteral("stop") : QStringLiteral("start");
    QStringList valued{QStringLiteral("health-timeout")};
    if (stop) valued.append(QStringLiteral("maintenance"));
    auto options = parseOptions(
        args, OptionSpec{{QStringLiteral("accept-new"), QStringLiteral("no-wait")}, valued});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected exactly one SITE"));
    auto healthMs = secondsOption(options.value(), QStringLiteral("health-timeout"), 15000);
    if (!healthMs) return context.error(command + QStringLiteral(": ") + healthMs.error());
    QByteArray maintenancePage;
    if (options->has(QStringLiteral("maintenance"))) {
        // Read here, before anything changes: a missing page must not half-stop the site.
        constexpr qint64 MaxPage = 1024 * 1024;
        QFile page(options->value(QStringLiteral("maintenance")));
        if (!page.open(QIODevice::ReadOnly))
            return context.error(QStringLiteral("stop: --maintenance: %1: %2")
                                     .arg(page.fileName(), page.errorString()));
        if (page.size() > MaxPage)
            return context.error(QStringLiteral("stop: --maintenance: %1 is %2 bytes; a "
                                                "maintenance page may have at most %3")
                                     .arg(page.fileName())
                                     .arg(page.size())
                                     .arg(MaxPage));
        maintenancePage = page.readAll();
        if (maintenancePage.isEmpty())
            return context.error(
                QStringLiteral("stop: --maintenance: %1 is empty").arg(page.fileName()));
    }

    QJsonArray steps;
    const auto finish = [&](const QString &error, const QString &summary) {
        if (context.json) {
            QJsonObject object{{QStringLiteral("site"), name},
                               {QStringLiteral("steps"), steps},
                               {QStringLiteral("result"),
                                error.isEmpty()
                                    ? (stop ? QStringLiteral("stopped") : QStringLiteral("started"))
                                    : QStringLiteral("failed")}};
            if (!error.isEmpty()) object.insert(QStringLiteral("error"), error);
            context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
        }
        if (!error.isEmpty()) return context.error(error);
        if (!context.json) context.out << summary << Qt::endl;
        return int(Success);
    };
    auto inventory = context.loadInventory();
    if (!inventory) return finish(inventory.error(), {});
    HostSessions sessions(
        inventory->hosts(),
        sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
    RemoteSite site(
        name, sessions,
        remoteSiteOptions(context, command, name, options->has(QStringLiteral("no-wait"))));
    SiteChangeRequest request;
    request.healthTimeoutMs = healthMs.value();
    request.maintenancePage = maintenancePage;
    request.onStep = [&](const RollingStep &step) {
        steps.append(stepJson(step.backend, step.step, step.ok, step.detail));
        printStep(context, step.backend, step.step, step.ok, step.detail);
    };
    const SiteOutcome outcome = stop ? site.stop(request) : site.start(request);
    return finish(outcome.error, outcome.notes.join(QLatin1Char('\n')));
}

/// A worker count as scale takes it: N, +N or -N ("-2" is a count, not an option).
bool isCount(const QString &arg) {
    static const QRegularExpression pattern(QStringLiteral("^[+-]?[0-9]+$"));
    return pattern.match(arg).hasMatch();
}

/// corralctl scale SITE N|+N|-N for a production site: RemoteSite::scaleTo, each add or
/// remove printed with its steps as it happens.
int scaleSite(Context &context, const Site &saved, const QStringList &args) {
    const QString name = saved.name;
    const QStringList valued{QStringLiteral("on"), QStringLiteral("drain-timeout"),
                             QStringLiteral("health-timeout")};
    // The count apart from the options, without taking an option's value ("5" of
    // "--drain-timeout 5") for one.
    QStringList optionArgs;
    QStringList counts;
    for (qsizetype i = 0; i < args.size(); ++i) {
        const QString &arg = args.at(i);
        if (arg.startsWith(QLatin1String("--")) && !arg.contains(QLatin1Char('=')) &&
            valued.contains(arg.mid(2)) && i + 1 < args.size()) {
            optionArgs << arg << args.at(++i);
            continue;
        }
        (isCount(arg) ? counts : optionArgs).append(arg);
    }
    auto options =
        parseOptions(optionArgs, OptionSpec{{QStringLiteral("accept-new"),
                                             QStringLiteral("no-wait"), QStringLiteral("force")},
                                            valued});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || counts.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected SITE and a count N, +N or -N"));
    const QString countText = counts.first();
    const bool relative =
        countText.startsWith(QLatin1Char('+')) || countText.startsWith(QLatin1Char('-'));
    bool numeric = false;
    const int count = countText.toInt(&numeric);
    const int from = int(saved.backends.size());
    const int to = relative ? from + count : count;
    QStringList problems;
    if (!numeric || to < 0 || to > Site::MaxWorkers)
        problems.append(QStringLiteral("%1 gives %2 backends from the %3 of %4, not in 0..%5")
                            .arg(shown(countText))
                            .arg(numeric ? QString::number(to) : QStringLiteral("no number of"))
                            .arg(from)
                            .arg(name)
                            .arg(Site::MaxWorkers));
    auto drainMs = secondsOption(options.value(), QStringLiteral("drain-timeout"), 30000);
    auto healthMs = secondsOption(options.value(), QStringLiteral("health-timeout"), 15000);
    if (!drainMs) problems.append(drainMs.error());
    if (!healthMs) problems.append(healthMs.error());
    const QStringList hosts = options->list(QStringLiteral("on"));
    if (options->has(QStringLiteral("on")) && (hosts.isEmpty() || hosts.contains(QString())))
        problems.append(QStringLiteral("--on needs inventory HOST names (repeated or "
                                       "comma-separated)"));
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("scale: "));
    const bool force = options->has(QStringLiteral("force"));
    if (to == 0 && from > 0 && !force)
        return context.error(QStringLiteral("scale: refusing to scale production site %1 from %2 "
                                            "to 0 backends: its balancer would answer every "
                                            "request with its own 502/503 (--force does it "
                                            "anyway; 'corralctl stop %1' keeps the backends)")
                                 .arg(name)
                                 .arg(from));

    QTextStream &progress = context.out;
    if (!context.json)
        progress << "scale " << name << ": " << from << " -> " << to << " backend"
                 << (to == 1 ? "" : "s") << Qt::endl;
    QJsonArray steps;
    QJsonArray changes;
    ScaleChange current;
    QElapsedTimer changeClock;
    SiteChangeRequest request;
    request.force = force;
    request.drainTimeoutMs = drainMs.value();
    request.healthTimeoutMs = healthMs.value();
    request.onScaleChange = [&](const ScaleChange &change) {
        const QString operation = change.adding ? QStringLiteral("add") : QStringLiteral("remove");
        if (!change.done) {
            current = change;
            changeClock.start();
            if (!context.json)
                progress
                    << (change.adding
                            ? QStringLiteral("add a worker on %1").arg(change.host)
                            : QStringLiteral("remove %1 on %2").arg(change.backend, change.host))
                    << " (" << change.from << " -> " << change.to << ")" << Qt::endl;
            return;
        }
        const qint64 ms = changeClock.elapsed();
        QJsonObject object{{QStringLiteral("operation"), operation},
                           {QStringLiteral("host"), change.host},
                           {QStringLiteral("ok"), change.error.isEmpty()},
                           {QStringLiteral("ms"), ms}};
        if (!change.backend.isEmpty()) object.insert(QStringLiteral("backend"), change.backend);
        changes.append(object);
        if (!context.json && change.error.isEmpty())
            progress << "  " << (change.adding ? "added " : "removed ") << change.backend << " on "
                     << change.host << " in " << QString::number(double(ms) / 1000, 'f', 1) << " s"
                     << Qt::endl;
    };
    request.onStep = [&](const RollingStep &step) {
        QJsonObject object = stepJson(step.backend.isEmpty() ? current.backend : step.backend,
                                      step.step, step.ok, step.detail);
        object.insert(QStringLiteral("operation"),
                      current.adding ? QStringLiteral("add") : QStringLiteral("remove"));
        object.insert(QStringLiteral("host"), current.host);
        steps.append(object);
        printStep(context, {}, step.step, step.ok, step.detail);
    };

    auto inventory = context.loadInventory();
    SiteOutcome outcome;
    outcome.site = saved;
    if (!inventory) {
        outcome.error = inventory.error();
    } else {
        HostSessions sessions(
            inventory->hosts(),
            sessionOpener(context, inventory.value(), options->has(QStringLiteral("accept-new"))));
        RemoteSite site(name, sessions,
                        remoteSiteOptions(context, QStringLiteral("scale"), name,
                                          options->has(QStringLiteral("no-wait"))));
        outcome = site.scaleTo(to, hosts, request);
    }
    QStringList backends;
    for (const Backend &backend : outcome.site.backends)
        backends.append(backend.key());
    for (const QString &note : outcome.notes)
        context.err << "corralctl: " << note << Qt::endl;
    if (context.json) {
        QJsonObject object{{QStringLiteral("site"), name},
                           {QStringLiteral("from"), from},
                           {QStringLiteral("to"), to},
                           {QStringLiteral("backends"), QJsonArray::fromStringList(backends)},
                           {QStringLiteral("changes"), changes},
                           {QStringLiteral("steps"), steps},
                           {QStringLiteral("result"),
                            outcome.ok() ? QStringLiteral("scaled") : QStringLiteral("failed")}};
        if (!outcome.ok()) object.insert(QStringLiteral("error"), outcome.error);
        context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
    }
    if (!outcome.ok()) return context.error(outcome.error);
    if (!context.json)
        progress << "scaled " << name << " to " << backends.size() << " backend"
                 << (backends.size() == 1 ? "" : "s") << ": " << backends.join(QLatin1Char(' '))
                 << Qt::endl;
    return Success;
}

} // namespace

bool runProductionCommand(Context &context, const QString &command, const QStringList &args,
                          int &code) {
    const QStringList valued{QStringLiteral("worker"), QStringLiteral("drain-timeout"),
                             QStringLiteral("health-timeout"), QStringLiteral("maintenance"),
                             QStringLiteral("on")};
    qsizetype at = siteArgument(args, valued);
    // scale: a count given before the site ("+2") is not the site.
    while (command == QLatin1String("scale") && at >= 0 && isCount(args.at(at))) {
        const qsizetype next = siteArgument(args.mid(at + 1), valued);
        at = next < 0 ? -1 : at + 1 + next;
    }
    if (at < 0) return false;
    auto inventory = context.loadInventory();
    if (!inventory) return false; // the local command reports it
    const Site *site = inventory->site(args.at(at));
    if (!site || !site->balancer) return false;
    const QString name = site->name;
    if (command == QLatin1String("restart")) {
        // Without --worker: the rolling restart, as before.
        bool worker = false;
        for (const QString &arg : args)
            worker = worker || arg == QLatin1String("--worker") ||
                     arg.startsWith(QLatin1String("--worker="));
        if (!worker) return false;
        code = restartWorker(context, name, args);
        return true;
    }
    if (command == QLatin1String("stop") || command == QLatin1String("start")) {
        code = stopOrStart(context, name, args, command == QLatin1String("stop"));
        return true;
    }
    if (command == QLatin1String("scale")) {
        code = scaleSite(context, *site, args);
        return true;
    }
    return false;
}

QString productionUsage(const QString &command) {
    if (command == QLatin1String("restart"))
        return QStringLiteral(
            "\n"
            "A production site (one with a balancer on a host):\n"
            "  corralctl restart SITE --worker HOST:PORT [--force] [--drain-timeout SECONDS]\n"
            "                    [--health-timeout SECONDS] [--no-wait] [--accept-new]\n"
            "restarts only that backend's worker, as 'corralctl rolling-restart' restarts each\n"
            "one: check (a worker Corral can restart), drain (HAProxy 'state drain' until no\n"
            "session is left; nginx/Apache: the config applied with it marked down), restart\n"
            "(systemctl restart, or stop and start of the fallback worker), health (its health\n"
            "path answers 2xx and the new process holds the port), enable (HAProxy 'state\n"
            "ready', then wait until its check reports it UP; nginx/Apache: the config applied\n"
            "again). A failure puts it back into rotation. When it is the only backend in\n"
            "rotation it is refused; --force restarts it without drain (the site does not\n"
            "answer meanwhile).\n"
            "Steps are printed as they happen; with --json one object: site, backend, steps\n"
            "(backend, step, ok, detail), result (\"restarted\" or \"failed\") and error.\n");
    if (command == QLatin1String("stop"))
        return QStringLiteral(
            "\n"
            "A production site (one with a balancer on a host):\n"
            "  corralctl stop SITE [--maintenance FILE] [--no-wait] [--accept-new]\n"
            "  maintenance  with --maintenance FILE (an HTML page, read here): the page is\n"
            "           written to the balancer's state directory on its host and the config\n"
            "           below answers it as the body of the 502/503 (nginx error_page; HAProxy\n"
            "           errorfile 503, at most about 14 kB). Not for Apache yet.\n"
            "  down     the config applied with every backend marked down (validate, reload,\n"
            "           rollback on failure; HAProxy writes them 'disabled', so a reload keeps\n"
            "           them so): the balancer answers every request itself (nginx 502,\n"
            "           HAProxy and Apache 503)\n"
            "  verify   the probe URL through the balancer answers 502/503\n"
            "  stop     each backend's worker on its host (systemctl stop, or the fallback's\n"
            "           SIGTERM with its pid file removed)\n"
            "The inventory is not changed. It stops at the first failure and says what is true:\n"
            "a failed down changed nothing; after it the balancer answers 502/503 and the\n"
            "message lists the workers stopped and those still running.\n"
            "Steps are printed as they happen; with --json one object: site, steps (backend,\n"
            "step, ok, detail), result (\"stopped\" or \"failed\") and error.\n");
    if (command == QLatin1String("start"))
        return QStringLiteral(
            "\n"
            "A production site (one with a balancer on a host):\n"
            "  corralctl start SITE [--health-timeout SECONDS] [--no-wait] [--accept-new]\n"
            "  start    each backend's worker on its host (not those marked down in the\n"
            "           inventory; systemctl start, or the fallback worker; a running one is\n"
            "           left as it is)\n"
            "  health   each answers its health path on its host (15 s at most)\n"
            "  apply    the site's config as in the inventory (validate, reload, verify that\n"
            "           the site answers through the balancer, rollback on failure)\n"
            "It stops at the first failure; until the apply the balancer still answers 502/503,\n"
            "and the message lists the workers already started (left running).\n"
            "Steps are printed as they happen; with --json one object: site, steps (backend,\n"
            "step, ok, detail), result (\"started\" or \"failed\") and error.\n");
    if (command == QLatin1String("scale"))
        return QStringLiteral(
            "\n"
            "A production site (one with a balancer on a host):\n"
            "  corralctl scale SITE N|+N|-N [--on HOST[,HOST...]]... [--force]\n"
            "                  [--drain-timeout SECONDS] [--health-timeout SECONDS] [--no-wait]\n"
            "                  [--accept-new]\n"
            "adds or removes backends one at a time until SITE has N (+N/-N: relative to the\n"
            "backends in the inventory), each change a whole 'corralctl add-backend' or\n"
            "'corralctl remove-backend' (its own lock, journal and inventory save). It stops at\n"
            "the first failure; the changes before it stay done and saved.\n"
            "  add     a worker on the host with the fewest of the site's workers (ties: the\n"
            "          first listed) among the --on hosts, or else the site's worker hosts (its\n"
            "          hosts, then those running its backends; the balancer's host only when it\n"
            "          runs one or there is no other). It must answer its health path within\n"
            "          --health-timeout (default 15 s).\n"
            "  remove  backends out of rotation first (down, then backup), then one on the\n"
            "          host with the most of the site's workers, newest first: drained (waiting\n"
            "          at most --drain-timeout, default 30 s), stopped, applied without it.\n"
            "  --on HOST     inventory SSH hosts new workers may go to (repeat or comma-separate)\n"
            "  --force       needed to scale to 0 (the balancer then answers 502/503 itself), and\n"
            "                lets a remove take the last backend in rotation\n"
            "Each change is printed with its steps as it happens; with --json one object: site,\n"
            "from, to, backends (as saved afterwards), changes (operation, host, backend, ok,\n"
            "ms), steps (operation, host, backend, step, ok, detail), result (\"scaled\" or\n"
            "\"failed\") and error.\n");
    return {};
}

QList<Command> productionCommands() {
    return {Command{QStringLiteral("remove-backend"),
                    QStringLiteral("Drain a backend of a production site, stop it, remove it"),
                    QString::fromLatin1(removeBackendUsage), removeBackendCommand}};
}

} // namespace corral::cli
