#include "upstreams/RemoteRollingRestart.h"

#include "model/FieldText.h"
#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/HaproxyRuntime.h"

#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QHostAddress>
#include <QThread>

namespace corral {

bool isLoopbackAddress(const QString &address) {
    QString bare = address.trimmed();
    if (bare.startsWith(QLatin1Char('[')) && bare.endsWith(QLatin1Char(']')))
        bare = bare.mid(1, bare.size() - 2);
    if (bare.compare(QLatin1String("localhost"), Qt::CaseInsensitive) == 0) return true;
    const QHostAddress parsed(bare);
    return !parsed.isNull() && parsed.isLoopback();
}

Result<QString> workerHostFor(const Backend &backend, const QString &balancerHost,
                              const QList<Host> &hosts) {
    // The usual loopback names mean the balancer's own machine, whatever host claims them;
    // another loopback address an inventory host has (127.0.0.8) is that host's.
    const QHostAddress address(backend.address);
    const bool loopback = isLoopbackAddress(backend.address);
    const bool canonicalLoopback =
        loopback && (address.isNull() || address == QHostAddress(QHostAddress::LocalHost) ||
                     address == QHostAddress(QHostAddress::LocalHostIPv6));
    if (canonicalLoopback) return balancerHost;
    for (const Host &host : hosts)
        if (!host.address.isEmpty() &&
            host.address.compare(backend.address, Qt::CaseInsensitive) == 0)
            return host.name;
    if (loopback) return balancerHost;
    for (const Host &host : hosts)
        if (host.name.compare(backend.address, Qt::CaseInsensitive) == 0) return host.name;
    return fail(QStringLiteral("backend %1: no inventory host has the address %2 (add the host "
                               "that runs this worker with 'corralctl host add')")
                    .arg(backend.key(), backend.address));
}

RemoteRollingRestart::RemoteRollingRestart(SshSession &balancerSession,
                                           SessionResolver workerSessions)
    : m_balancer(balancerSession)
    , m_sessions(std::move(workerSessions)) {}

Result<void> RemoteRollingRestart::haproxy(const QString &socket, const QString &command) {
    return runHaproxyCommand(m_balancer, socket, command);
}

Result<QString> RemoteRollingRestart::drainHaproxy(const QString &socket, const QString &proxy,
                                                   const QString &server) {
    if (auto drained =
            haproxy(socket, haproxySetServerState(proxy, server, QStringLiteral("drain")));
        !drained)
        return fail(drained.error());
    const QDeadlineTimer deadline(m_drainTimeoutMs);
    int sessions = 0;
    for (;;) {
        auto csv = haproxyStat(socket);
        if (!csv) return fail(csv.error());
        auto stat = HaproxyStat::parse(csv.value());
        if (!stat) return fail(stat.error());
        auto current = stat->currentSessions(proxy, server);
        if (!current) return fail(current.error());
        sessions = current.value();
        if (sessions == 0)
            return QStringLiteral("%1/%2 drained, no sessions left").arg(proxy, server);
        if (deadline.hasExpired())
            return QStringLiteral("%1/%2 drained; %3 session(s) still open after %4 s, "
                                  "restarting anyway")
                .arg(proxy, server)
                .arg(sessions)
                .arg(m_drainTimeoutMs / 1000.0);
        QThread::msleep(100);
    }
}

Result<QString> RemoteRollingRestart::waitAnotherUp(const QString &socket, const QString &proxy,
                                                    const QStringList &servers) {
    const QDeadlineTimer deadline(m_balancerUpTimeoutMs);
    for (;;) {
        auto csv = haproxyStat(socket);
        if (!csv) return fail(csv.error());
        auto stat = HaproxyStat::parse(csv.value());
        if (!stat) return fail(stat.error());
        QStringList states;
        for (const QString &server : servers) {
            auto status = stat->field(proxy, server, QStringLiteral("status"));
            if (!status) return fail(status.error());
            if (status->startsWith(QLatin1String("UP")) ||
                status.value() == QLatin1String("no check"))
                return server;
            states.append(QStringLiteral("%1 %2").arg(server, status.value()));
        }
        if (deadline.hasExpired())
            return fail(QStringLiteral("no other server of %1 is UP at HAProxy (%2) after %3 s: "
                                       "draining this one would leave none to answer; nothing "
                                       "was drained")
                            .arg(proxy, states.isEmpty() ? QStringLiteral("it has no other")
                                                         : states.join(QStringLiteral(", ")))
                            .arg(m_balancerUpTimeoutMs / 1000.0));
        QThread::msleep(200);
    }
}

Result<QByteArray> RemoteRollingRestart::haproxyStat(const QString &socket) {
    return readHaproxyStat(m_balancer, socket);
}

Result<QString> RemoteRollingRestart::waitHaproxyUp(const QString &socket, const QString &proxy,
                                                    const QString &server) {
    auto seconds = waitHaproxyServerUp(m_balancer, socket, proxy, server, m_balancerUpTimeoutMs);
    if (!seconds) return fail(seconds.error());
    return QStringLiteral("UP at the balancer after %1 s").arg(seconds.value(), 0, 'f', 1);
}

QString RollingBackendState::describe() const {
    QString words;
    switch (state) {
    case State::Restarted:
        words = QStringLiteral("restarted");
        break;
    case State::Untouched:
        words = QStringLiteral("untouched");
        break;
    case State::BackInRotation:
        words = QStringLiteral("back in rotation");
        break;
    case State::OutOfRotation:
        words = QStringLiteral("still out of rotation");
        break;
    }
    return backend + QLatin1Char(' ') + words +
           (detail.isEmpty() ? QString() : QStringLiteral(" (") + detail + QLatin1Char(')'));
}

QString RollingRestartReport::describeBackends() const {
    QStringList parts;
    for (const RollingBackendState &backend : backends)
        parts.append(backend.describe());
    return parts.join(QStringLiteral("; "));
}

QString RemoteRollingRestart::homeOf(SshSession &session) {
    const auto known = m_homes.constFind(&session);
    if (known != m_homes.cend()) return known.value();
    auto home = RemoteWorkers::homeDirectory(session);
    // Without it, messages fall back to the path relative to the home, marked as such.
    const QString resolved = home ? home.value() : QStringLiteral("~");
    m_homes.insert(&session, resolved);
    return resolved;
}

namespace {

QString describeProcess(const PortHolder &holder) {
    return QStringLiteral("pid %1 (%2)")
        .arg(holder.pid)
        .arg(holder.argv.isEmpty() ? QStringLiteral("command line not readable")
                                   : shownCommand(holder.argv));
}

/// The processes holding the port that are not children of another holder (a prefork
/// server's master, not its workers).
QList<PortHolder> rootHolders(const WorkerInspection &worker) {
    QList<PortHolder> roots;
    for (const PortHolder &holder : worker.holders) {
        bool child = false;
        for (const PortHolder &other : worker.holders)
            child = child || other.pid == holder.parentPid;
        if (!child) roots.append(holder);
    }
    return roots;
}

QString describeHolders(const WorkerInspection &worker) {
    if (worker.holders.isEmpty())
        return QStringLiteral("a process of another user (its pid is not visible to the SSH "
                              "user)");
    QStringList described;
    for (const PortHolder &holder : rootHolders(worker))
        described.append(describeProcess(holder));
    return described.join(QStringLiteral(", "));
}

BackendCheck classify(const Site &site, const Backend &backend, const QString &host,
                      const WorkerInspection &worker) {
    BackendCheck check;
    check.backend = backend.key();
    check.host = host;
    check.worker = worker;
    using Listeners = WorkerInspection::Listeners;
    const QString port = QString::number(backend.port);
    if (worker.restartsWithSystemd()) {
        check.restartable = true;
        check.detail = QStringLiteral("systemd unit %1")
                           .arg(RemoteWorkers::instanceName(site.name, backend.port));
        return check;
    }
    if (worker.pidFileWorker > 0) {
        bool ours = worker.listeners != Listeners::Some;
        for (const PortHolder &holder : worker.holders)
            ours = ours || holder.underPidFileWorker;
        check.restartable = ours;
        check.detail =
            ours ? QStringLiteral("Corral's worker, pid %1 (%2)")
                       .arg(worker.pidFileWorker)
                       .arg(worker.pidFile)
                 : QStringLiteral("port %1 is held by %2, not by Corral's worker pid %3 (%4): "
                                  "stop one of them")
                       .arg(port, describeHolders(worker))
                       .arg(worker.pidFileWorker)
                       .arg(worker.pidFile);
        return check;
    }
    switch (worker.listeners) {
    case Listeners::None:
        check.restartable = !site.command.isEmpty();
        check.detail = check.restartable
                           ? QStringLiteral("no worker runs on port %1; it is started").arg(port)
                           : QStringLiteral("nothing listens on port %1 and the site has no "
                                            "command to start a worker with")
                                 .arg(port);
        return check;
    case Listeners::Unknown:
        check.detail = QStringLiteral("no pid file %1, and the host has no usable ss to tell "
                                      "who holds port %2")
                           .arg(worker.pidFile, port);
        return check;
    case Listeners::Some:
        break;
    }
    const QList<PortHolder> roots = rootHolders(worker);
    check.adoptable = roots.size() == 1;
    check.detail =
        QStringLiteral("port %1 is held by %2, not by a worker of Corral's (no pid "
                       "file %3, no systemd unit %4)")
            .arg(port, describeHolders(worker), worker.pidFile, RemoteWorkers::unitName(site.name));
    if (roots.size() > 1)
        check.detail += QStringLiteral("; several processes hold it independently, so none "
                                       "can be adopted as its worker");
    return check;
}

} // namespace

Result<QList<BackendCheck>> RemoteRollingRestart::preflight(const Site &site,
                                                            const QList<Host> &hosts) {
    if (!site.balancer) return fail(QStringLiteral("site %1 has no balancer").arg(site.name));
    QList<BackendCheck> checks;
    for (const Backend &backend : site.backends) {
        auto hostName = workerHostFor(backend, site.balancer->host, hosts);
        if (!hostName) return fail(hostName.error());
        auto session = m_sessions(hostName.value());
        if (!session)
            return fail(QStringLiteral("backend %1: %2").arg(backend.key(), session.error()));
        auto worker = RemoteWorkers::inspect(*session.value(), site.name, backend.port);
        if (!worker)
            return fail(QStringLiteral("backend %1 on %2: %3")
                            .arg(backend.key(), hostName.value(), worker.error()));
        m_homes.insert(session.value(), worker->home);
        checks.append(classify(site, backend, hostName.value(), worker.value()));
    }
    return checks;
}

QString RemoteRollingRestart::describeRefusal(const Site &site, const QList<BackendCheck> &checks) {
    QStringList lines;
    bool adoptable = false;
    for (const BackendCheck &check : checks) {
        if (check.restartable) continue;
        adoptable = adoptable || check.adoptable;
        lines.append(QStringLiteral("  %1 on %2: %3").arg(check.backend, check.host, check.detail));
    }
    QString text = QStringLiteral("site %1: %2 of %3 backend(s) do not run a worker Corral can "
                                  "restart, so nothing was changed:\n")
                       .arg(site.name)
                       .arg(lines.size())
                       .arg(checks.size()) +
                   lines.join(QLatin1Char('\n'));
    if (adoptable)
        text += QStringLiteral("\nTo let Corral restart workers it did not start, adopt them: "
                               "'corralctl rolling-restart %1 --adopt' shows each one's command "
                               "line (from /proc/PID/cmdline), asks for confirmation, records "
                               "its pid file, then restarts them")
                    .arg(site.name);
    return text;
}

Result<AdoptionPlan> RemoteRollingRestart::planAdoption(const Site &site,
                                                        const QList<BackendCheck> &checks) {
    AdoptionPlan plan;
    plan.site = site;
    QStringList problems;
    QList<QStringList> templates;
    for (const BackendCheck &check : checks) {
        if (check.restartable) continue;
        if (!check.adoptable) {
            problems.append(
                QStringLiteral("%1 on %2: %3").arg(check.backend, check.host, check.detail));
            continue;
        }
        WorkerAdoption adoption;
        adoption.backend = check.backend;
        adoption.host = check.host;
        adoption.port = check.worker.port;
        adoption.process = rootHolders(check.worker).first();
        adoption.pidFile = check.worker.pidFile;
        if (adoption.process.argv.isEmpty() && site.command.isEmpty()) {
            problems.append(QStringLiteral("%1 on %2: the command line of pid %3 cannot be read, "
                                           "and the site has no command to restart it with")
                                .arg(check.backend, check.host)
                                .arg(adoption.process.pid));
            continue;
        }
        bool containsPort = false;
        const QStringList templated =
            RemoteWorkers::templateArguments(adoption.process.argv, adoption.port, &containsPort);
        if (!adoption.process.argv.isEmpty()) {
            templates.append(templated);
            if (!containsPort)
                plan.notes.append(
                    QStringLiteral("the command line of pid %1 (%2) does not contain its port "
                                   "%3: the worker must take it from $PORT (Corral sets it) or "
                                   "its own configuration, or a restarted one will not listen "
                                   "there")
                        .arg(adoption.process.pid)
                        .arg(adoption.backend)
                        .arg(adoption.port));
        }
        if (!adoption.process.systemdUnit.isEmpty())
            plan.notes.append(
                QStringLiteral("pid %1 (%2) runs in systemd unit %3: if that unit "
                               "restarts it, stop and disable %3 rather than "
                               "adopting it")
                    .arg(adoption.process.pid)
                    .arg(adoption.backend, escapeControls(adoption.process.systemdUnit)));
        plan.workers.append(adoption);
    }
    if (!problems.isEmpty())
        return fail(QStringLiteral("site %1: cannot adopt every worker (nothing was recorded):\n  "
                                   "%2")
                        .arg(site.name, problems.join(QStringLiteral("\n  "))));
    if (templates.isEmpty()) return plan;
    for (qsizetype i = 1; i < templates.size(); ++i)
        if (templates.at(i) != templates.first()) {
            plan.notes.append(QStringLiteral("the command lines differ between backends (%1 "
                                             "runs \"%2\", %3 runs \"%4\")")
                                  .arg(plan.workers.first().backend,
                                       shownCommand(templates.first()), plan.workers.at(i).backend,
                                       shownCommand(templates.at(i))));
            break;
        }
    const QStringList &chosen = templates.first();
    if (site.command.isEmpty()) {
        plan.site.command = chosen.first();
        plan.site.args = chosen.mid(1);
        const QString cwd = plan.workers.first().process.workingDirectory;
        if (plan.site.workingDirectory.isEmpty() && !cwd.isEmpty() && cwd != QLatin1String("/"))
            plan.site.workingDirectory = cwd;
        plan.siteChanged = true;
    } else {
        QStringList current{site.command};
        current += site.args;
        if (current != chosen)
            plan.notes.append(QStringLiteral("the site's command in the inventory stays \"%1\"; "
                                             "restarted workers run it, not the recorded \"%2\"")
                                  .arg(shellCommand(current), shownCommand(chosen)));
    }
    return plan;
}

Result<void> RemoteRollingRestart::adopt(const AdoptionPlan &plan) {
    QStringList done;
    for (const WorkerAdoption &worker : plan.workers) {
        auto session = m_sessions(worker.host);
        Result<void> adopted =
            session ? RemoteWorkers::adopt(*session.value(), plan.site.name, worker.port,
                                           worker.process.pid, worker.process.startTime)
                    : Result<void>(fail(session.error()));
        if (!adopted)
            return fail(QStringLiteral("%1 on %2: %3%4")
                            .arg(worker.backend, worker.host, adopted.error(),
                                 done.isEmpty() ? QString()
                                                : QStringLiteral(" (already recorded: %1)")
                                                      .arg(done.join(QStringLiteral(", ")))));
        done.append(worker.backend);
    }
    return {};
}

RollingRestartReport RemoteRollingRestart::run(const Site &site, const RemoteBalancer &target,
                                               const QList<Host> &hosts) {
    RollingRestartReport report;
    QString current; // the backend being worked on
    const auto step = [&](const QString &name, bool ok, const QString &detail) {
        report.steps.append(RollingStep{current, name, ok, detail});
        if (m_onStep) m_onStep(report.steps.last());
    };
    if (!site.balancer) {
        report.error = QStringLiteral("site %1 has no balancer").arg(site.name);
        return report;
    }
    int inRotation = 0;
    for (const Backend &backend : site.backends)
        if (!backend.down) ++inRotation;
    // With setOnly(): the one backend to restart, by index; -1 restarts every backend.
    qsizetype only = -1;
    // Restarted without drain and enable although in rotation: the only one, forced.
    bool unrotated = false;
    if (!m_only.isEmpty()) {
        QStringList keys;
        for (qsizetype i = 0; i < site.backends.size(); ++i) {
            keys.append(site.backends.at(i).key());
            if (keys.last() == m_only) only = i;
        }
        if (only < 0) {
            report.error =
                QStringLiteral("site %1 has no backend %2 (its backends: %3)")
                    .arg(site.name, m_only,
                         keys.isEmpty() ? QStringLiteral("none") : keys.join(QStringLiteral(", ")));
            return report;
        }
        if (!site.backends.at(only).down && inRotation < 2) {
            if (!m_force) {
                report.error =
                    QStringLiteral("%1 is the only backend of site %2 in rotation: draining it "
                                   "would stop the site serving (force it to restart without "
                                   "drain, the site not answering meanwhile)")
                        .arg(m_only, site.name);
                return report;
            }
            unrotated = true;
        }
    } else if (inRotation < 2) {
        report.error = QStringLiteral("site %1 has %2 backend(s) in rotation; a rolling restart "
                                      "needs at least two, or the site stops serving")
                           .arg(site.name)
                           .arg(inRotation);
        return report;
    }

    // Preflight: every worker to restart must be one Corral can restart before anything is
    // touched.
    Site checked = site;
    if (only >= 0) checked.backends = {site.backends.at(only)};
    auto checks = preflight(checked, hosts);
    if (!checks) {
        report.error = checks.error() + QStringLiteral(" (nothing was changed)");
        return report;
    }
    bool allRestartable = true;
    for (const BackendCheck &check : checks.value()) {
        current = check.backend;
        step(QStringLiteral("check"), check.restartable, check.detail);
        allRestartable = allRestartable && check.restartable;
    }
    current.clear();
    if (!allRestartable) {
        report.error = describeRefusal(site, checks.value());
        return report;
    }
    for (const Backend &backend : site.backends)
        report.backends.append(RollingBackendState{
            backend.key(), RollingBackendState::State::Untouched,
            backend.down ? QStringLiteral("marked down in the inventory, as before")
                         : QStringLiteral("in rotation, as before")});

    const bool runtimeApi = target.format == RenderFormat::Haproxy;
    const QString socket = haproxyStatsSocket(target.renderOptions.runtimeDirectory, site.name);
    const QString proxy = balancerBlockName(site.name);

    // The config as installed while a backend is out: the site with that one marked down.
    ConfigApplier applier(m_balancer);
    applier.setVerifyTimeoutMs(m_verifyTimeoutMs);
    QString applyPrefix;
    applier.setStepCallback([&](const ApplyStep &applied) {
        step(applyPrefix + applied.name, applied.ok, applied.detail);
    });
    const auto applyWith = [&](const Site &variant, const QString &prefix) {
        applyPrefix = prefix;
        return applier.apply(variant, target, false);
    };

    qsizetype out = -1; // the backend this run took out of rotation and has not put back
    qsizetype currentIndex = -1;
    QString workerNote; // what is known of the current backend's worker, for its state
    // Puts backend `index` back into rotation after a failure (not when the site's lock is
    // lost: another operation may own the balancer's config by now).
    const auto putBack = [&](qsizetype index, bool lockLost) -> RollingBackendState {
        const Backend &backend = site.backends.at(index);
        const QString server = haproxyServerName(backend);
        RollingBackendState state{backend.key(), RollingBackendState::State::OutOfRotation, {}};
        if (lockLost) {
            state.detail = runtimeApi
                               ? QStringLiteral("drained at HAProxy (%1/%2): the site's lock was "
                                                "lost, so it was not set ready again")
                                     .arg(proxy, server)
                               : QStringLiteral("marked down in %1: the site's lock was lost, so "
                                                "the config was not applied again; run "
                                                "'corralctl apply %2'")
                                     .arg(target.configPath, site.name);
            return state;
        }
        if (runtimeApi) {
            auto ready =
                haproxy(socket, haproxySetServerState(proxy, server, QStringLiteral("ready")));
            // Step "enable", as on success: whoever reads the steps sees it put back.
            step(QStringLiteral("enable"), bool(ready),
                 ready ? QStringLiteral("put back after the failure: %1/%2 set ready")
                             .arg(proxy, server)
                       : ready.error());
            if (ready) {
                state.state = RollingBackendState::State::BackInRotation;
                state.detail = QStringLiteral("HAProxy server %1/%2 set ready; its health "
                                              "check decides when it gets requests")
                                   .arg(proxy, server);
            } else {
                state.detail = QStringLiteral("still drained at HAProxy: setting %1/%2 ready "
                                              "failed: %3")
                                   .arg(proxy, server, ready.error());
            }
            return state;
        }
        const ApplyReport restored = applyWith(site, QStringLiteral("enable/"));
        const QString described = describeApply(restored, site.name, site.balancer->host);
        step(QStringLiteral("enable"), restored.ok(),
             restored.ok() ? QStringLiteral("put back after the failure: %1 applied again as in "
                                            "the inventory")
                                 .arg(target.configPath)
                           : described);
        if (restored.ok()) {
            state.state = RollingBackendState::State::BackInRotation;
            state.detail =
                QStringLiteral("%1 applied again without it marked down").arg(target.configPath);
        } else {
            state.detail = QStringLiteral("may still be marked down in %1: applying the site's "
                                          "config again failed: %2; run 'corralctl apply %3'")
                               .arg(target.configPath, described, site.name);
        }
        return state;
    };
    const auto failed = [&](const QString &name, const QString &why, bool lockLost = false) {
        step(name, false, why);
        report.failedBackend = current;
        report.error = QStringLiteral("%1: %2: %3").arg(current, name, why);
        const qsizetype index = currentIndex;
        if (out >= 0) {
            report.backends[out] = putBack(out, lockLost);
            out = -1;
        }
        if (index >= 0 && !workerNote.isEmpty()) {
            QString &detail = report.backends[index].detail;
            detail += (detail.isEmpty() ? QString() : QStringLiteral("; ")) + workerNote;
        }
        return report;
    };
    const auto lockLost = [&](const QString &before) {
        return failed(QStringLiteral("lock"),
                      QStringLiteral("the connection that held the site's lock on %1 was lost; "
                                     "stopped before %2 (another operation may be running now). "
                                     "Run 'corralctl rolling-restart %3' again")
                          .arg(site.balancer->host, before, site.name),
                      true);
    };
    const auto lockHeld = [&] { return !m_lockHeld || m_lockHeld(); };

    for (qsizetype i = 0; i < site.backends.size(); ++i) {
        if (only >= 0 && i != only) continue;
        const Backend &backend = site.backends.at(i);
        current = backend.key();
        currentIndex = i;
        workerNote.clear();
        auto hostName = workerHostFor(backend, site.balancer->host, hosts);
        if (!hostName) return failed(QStringLiteral("host"), hostName.error());
        auto session = m_sessions(hostName.value());
        if (!session) return failed(QStringLiteral("host"), session.error());
        step(QStringLiteral("host"), true,
             QStringLiteral("worker on %1 port %2").arg(hostName.value()).arg(backend.port));
        const QString home = homeOf(*session.value());
        const QString logFile =
            RemoteWorkers::workerFile(home, site.name, backend.port, QStringLiteral(".log"));

        const bool rotate = !backend.down && !unrotated;
        if (!lockHeld()) return lockLost(QStringLiteral("draining it"));
        if (rotate && runtimeApi) {
            // Drained, it gets no new request: another server must be taking them, or the
            // site answers 503 until it is back (a reload just before restarts every check).
            QStringList others;
            for (const Backend &other : site.backends)
                if (!other.down && other.key() != backend.key())
                    others.append(haproxyServerName(other));
            auto serving = waitAnotherUp(socket, proxy, others);
            if (!serving) {
                step(QStringLiteral("drain"), false, serving.error());
                report.failedBackend = current;
                report.error = QStringLiteral("%1: drain: %2").arg(current, serving.error());
                report.backends[i].detail = QStringLiteral("in rotation, as before: not drained");
                return report;
            }
        }
        if (rotate) {
            out = i;
            if (runtimeApi) {
                auto drained = drainHaproxy(socket, proxy, haproxyServerName(backend));
                if (!drained) return failed(QStringLiteral("drain"), drained.error());
                step(QStringLiteral("drain"), true, drained.value());
            } else {
                Site outSite = site;
                outSite.backends[i].down = true;
                const ApplyReport drained = applyWith(outSite, QStringLiteral("drain/"));
                if (!drained.ok()) {
                    // Nothing installed, or the previous file restored: it never left.
                    if (drained.outcome == ApplyOutcome::Failed ||
                        drained.outcome == ApplyOutcome::RolledBack) {
                        out = -1;
                        report.backends[i].detail =
                            QStringLiteral("in rotation, as before: %1 was left as it was")
                                .arg(target.configPath);
                    }
                    return failed(QStringLiteral("drain"),
                                  describeApply(drained, site.name, site.balancer->host));
                }
                step(QStringLiteral("drain"), true,
                     QStringLiteral("marked down in %1 and reloaded").arg(target.configPath));
            }
        }

        auto restarted = RemoteWorkers::restart(*session.value(), site, backend.port);
        if (!restarted) {
            workerNote = QStringLiteral("its worker may be stopped: see %1").arg(logFile);
            return failed(QStringLiteral("restart"), restarted.error());
        }
        step(QStringLiteral("restart"), true,
             restarted.value() > 0 ? QStringLiteral("new pid %1").arg(restarted.value())
                                   : QStringLiteral("restarted"));
        workerNote =
            QStringLiteral("its new worker%1 failed its health check: see %2")
                .arg(restarted.value() > 0 ? QStringLiteral(" (pid %1)").arg(restarted.value())
                                           : QString(),
                     logFile);

        if (auto healthy = RemoteWorkers::waitHealthy(*session.value(), site, backend.port,
                                                      m_healthTimeoutMs, backend.address);
            !healthy)
            return failed(QStringLiteral("health"),
                          healthy.error() + QStringLiteral("; its log: %1").arg(logFile));
        // The answer must come from the new worker: if it could not bind (a process Corral
        // did not start holds the port), that other process answered the health check.
        if (restarted.value() > 0) {
            auto holder = session.value()->exec(
                RemoteWorkers::portHolderCommand(restarted.value(), backend.port), 15000);
            if (!holder) return failed(QStringLiteral("health"), holder.error());
            if (holder->exitStatus == 1) {
                // "other PID...": the pids are missing when another user's process holds it.
                const QStringList pids = QString::fromUtf8(holder->stdOut)
                                             .trimmed()
                                             .mid(5)
                                             .split(QLatin1Char(' '), Qt::SkipEmptyParts);
                return failed(
                    QStringLiteral("health"),
                    QStringLiteral("port %1 is held by %2, not by the new worker (pid %3), "
                                   "which could not listen: a process Corral did not start? "
                                   "See %4")
                        .arg(backend.port)
                        .arg(pids.isEmpty()
                                 ? QStringLiteral("another user's process")
                                 : QStringLiteral("pid ") + pids.join(QStringLiteral(", ")))
                        .arg(restarted.value())
                        .arg(logFile));
            }
            if (holder->exitStatus != 0) {
                // No ss, or the socket is not visible here: at least the new worker must live.
                auto status = RemoteWorkers::status(*session.value(), site.name, {backend.port});
                if (!status) return failed(QStringLiteral("health"), status.error());
                if (status->isEmpty() || !status->first().running ||
                    status->first().pid != restarted.value())
                    return failed(QStringLiteral("health"),
                                  QStringLiteral("the new worker (pid %1) exited; another "
                                                 "process answers on port %2; see %3")
                                      .arg(restarted.value())
                                      .arg(backend.port)
                                      .arg(logFile));
            }
        }
        step(QStringLiteral("health"), true,
             QStringLiteral("GET %1 answered")
                 .arg(RemoteWorkers::healthUrl(site, backend.port, backend.address)));
        workerNote =
            QStringLiteral("its new worker%1 is healthy")
                .arg(restarted.value() > 0 ? QStringLiteral(" (pid %1)").arg(restarted.value())
                                           : QString());
        if (rotate && !lockHeld()) return lockLost(QStringLiteral("putting it back into rotation"));

        if (rotate) {
            if (runtimeApi) {
                const QString server = haproxyServerName(backend);
                if (auto ready = haproxy(
                        socket, haproxySetServerState(proxy, server, QStringLiteral("ready")));
                    !ready)
                    return failed(QStringLiteral("enable"), ready.error());
                out = -1; // set ready: in rotation from HAProxy's side, whatever its check says
                // Back in rotation only once HAProxy's own check says so: draining the next
                // backend earlier leaves no server to answer.
                auto up = waitHaproxyUp(socket, proxy, server);
                if (!up) {
                    report.backends[i] = RollingBackendState{
                        current, RollingBackendState::State::BackInRotation,
                        QStringLiteral("HAProxy server %1/%2 set ready, but its check does not "
                                       "report it UP")
                            .arg(proxy, server)};
                    return failed(QStringLiteral("enable"), up.error());
                }
                step(QStringLiteral("enable"), true,
                     QStringLiteral("%1/%2 ready; %3").arg(proxy, server, up.value()));
            } else {
                const ApplyReport enabled = applyWith(site, QStringLiteral("enable/"));
                if (!enabled.ok())
                    return failed(QStringLiteral("enable"),
                                  describeApply(enabled, site.name, site.balancer->host));
                out = -1;
                step(QStringLiteral("enable"), true,
                     QStringLiteral("back in %1 and reloaded").arg(target.configPath));
            }
        }
        report.backends[i] = RollingBackendState{
            current, RollingBackendState::State::Restarted,
            restarted.value() > 0 ? QStringLiteral("new pid %1").arg(restarted.value())
                                  : QString()};
        if (!rotate)
            report.backends[i].detail +=
                (report.backends[i].detail.isEmpty() ? QString() : QStringLiteral("; ")) +
                (unrotated ? QStringLiteral("restarted without drain (forced: the only backend "
                                            "in rotation)")
                           : QStringLiteral("marked down in the inventory, as before"));
        report.restarted.append(current);
    }
    return report;
}

} // namespace corral
