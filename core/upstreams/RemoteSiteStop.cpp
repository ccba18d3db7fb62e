#include "upstreams/RemoteSiteStop.h"

#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QDeadlineTimer>
#include <QThread>

namespace corral {

namespace {

/// "systemd" or "fallback": how the worker of `port` runs on the host, by the rule
/// RemoteWorkers::restart() follows.
Result<bool> runsUnderSystemd(SshSession &session, const Site &site, quint16 port) {
    auto mode = session.exec(RemoteWorkers::restartModeCommand(site.name, port), 30000);
    if (!mode) return fail(mode.error());
    if (mode->exitStatus != 0)
        return fail(
            QStringLiteral("cannot tell how the worker on port %1 runs on %2: %3")
                .arg(port)
                .arg(session.config().displayName(), QString::fromUtf8(mode->stdErr).trimmed()));
    return mode->stdOut.trimmed() == "systemd";
}

Result<void> systemctl(SshSession &session, const QString &action, const Site &site, quint16 port) {
    auto result = session.exec(RemoteWorkers::systemctlCommand(action, site.name, port), 120000);
    if (!result) return fail(result.error());
    if (result->exitStatus != 0)
        return fail(QStringLiteral("systemctl %1 %2 on %3: %4")
                        .arg(action, RemoteWorkers::instanceName(site.name, port),
                             session.config().displayName(),
                             QString::fromUtf8(result->stdErr + result->stdOut).trimmed()));
    return {};
}

/// The sessions and hosts of a site's backends, and the steps as they are reported.
struct SiteRun {
    const RemoteRollingRestart::SessionResolver &sessions;
    const Site &site;
    const QList<Host> &hosts;
    const SiteStopOptions &options;

    void step(const QString &backend, const QString &name, bool ok, const QString &detail) const {
        if (options.onStep) options.onStep(RollingStep{backend, name, ok, detail});
    }
    Result<SshSession *> sessionFor(const Backend &backend) const {
        auto host = workerHostFor(backend, site.balancer->host, hosts);
        if (!host) return fail(host.error());
        auto session = sessions(host.value());
        if (!session) return fail(QStringLiteral("%1: %2").arg(host.value(), session.error()));
        return session.value();
    }
};

/// Writes the maintenance page where the balancer reads it (its state directory, outside the
/// config's directory: no include glob reads it), readable by its workers; returns the path.
Result<QString> uploadMaintenancePage(SshSession &balancer, const RemoteBalancer &target,
                                      const QString &site, const QByteArray &html) {
    QByteArray content = html;
    QString suffix = QStringLiteral(".html");
    switch (target.format) {
    case RenderFormat::Apache:
        return fail(QStringLiteral("a maintenance page is not supported for Apache yet (it "
                                   "answers its own 503 page); stop without --maintenance"));
    case RenderFormat::Haproxy: {
        // errorfile wants a whole HTTP response, and it must fit one buffer (16 kB by default).
        content = QByteArrayLiteral("HTTP/1.0 503 Service Unavailable\r\n"
                                    "Cache-Control: no-cache\r\nConnection: close\r\n"
                                    "Content-Type: text/html; charset=utf-8\r\n\r\n") +
                  html;
        constexpr qsizetype HaproxyErrorFileLimit = 15000;
        if (content.size() > HaproxyErrorFileLimit)
            return fail(QStringLiteral("the page is %1 bytes; HAProxy answers one of at most %2 "
                                       "(its buffer, headers included)")
                            .arg(html.size())
                            .arg(HaproxyErrorFileLimit - (content.size() - html.size())));
        suffix = QStringLiteral(".http");
        break;
    }
    case RenderFormat::Nginx:
        break;
    }
    auto state = prepareStateDirectory(balancer, target, true);
    if (!state) return fail(state.error());
    const QString path =
        state->path + QLatin1Char('/') + site + QStringLiteral("-maintenance") + suffix;
    auto written = balancer.exec(
        shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                      QStringLiteral("umask 022 && cat > \"$1.tmp\" && mv -f -- \"$1.tmp\" \"$1\""),
                      QStringLiteral("sh"), path}),
        30000, content);
    if (!written) return fail(written.error());
    if (written->exitStatus != 0)
        return fail(QStringLiteral("writing %1 on %2: %3")
                        .arg(path, balancer.config().displayName(),
                             QString::fromUtf8(written->stdErr).trimmed()));
    return path;
}

QString listOrNone(const QStringList &keys) {
    return keys.isEmpty() ? QStringLiteral("none") : keys.join(QStringLiteral(", "));
}

} // namespace

Result<QString> stopSiteWorker(SshSession &session, const Site &site, quint16 port, int graceMs) {
    auto systemd = runsUnderSystemd(session, site, port);
    if (!systemd) return fail(systemd.error());
    if (systemd.value()) {
        if (auto stopped = systemctl(session, QStringLiteral("stop"), site, port); !stopped)
            return fail(stopped.error());
        return QStringLiteral("systemctl stop %1")
            .arg(RemoteWorkers::instanceName(site.name, port));
    }
    if (auto stopped = RemoteWorkers::stop(session, site.name, port, graceMs); !stopped)
        return fail(stopped.error());
    return QStringLiteral("worker on port %1 stopped, its pid file removed").arg(port);
}

Result<QString> startSiteWorker(SshSession &session, const Site &site, quint16 port) {
    auto systemd = runsUnderSystemd(session, site, port);
    if (!systemd) return fail(systemd.error());
    if (systemd.value()) {
        if (auto started = systemctl(session, QStringLiteral("start"), site, port); !started)
            return fail(started.error());
        return QStringLiteral("systemctl start %1")
            .arg(RemoteWorkers::instanceName(site.name, port));
    }
    auto pid = RemoteWorkers::start(session, site, port);
    if (!pid) return fail(pid.error());
    return QStringLiteral("worker on port %1, pid %2").arg(port).arg(pid.value());
}

Result<QString> stopRemoteSite(SshSession &balancer,
                               const RemoteRollingRestart::SessionResolver &sessions,
                               const Site &site, const RemoteBalancer &target,
                               const QList<Host> &hosts, const SiteStopOptions &options) {
    if (!site.balancer) return fail(QStringLiteral("site %1 has no balancer").arg(site.name));
    const SiteRun run{sessions, site, hosts, options};

    // 1. Every backend down at the balancer. The apply's own verify wants 2xx, which a site
    // without backends cannot give: it checks the error log only, the 502/503 is checked next.
    Site down = site;
    for (Backend &backend : down.backends)
        backend.down = true;
    RemoteBalancer withoutProbe = target;
    withoutProbe.probeUrl.clear();
    if (!options.maintenancePage.isEmpty()) {
        auto page = uploadMaintenancePage(balancer, target, site.name, options.maintenancePage);
        if (!page) {
            run.step({}, QStringLiteral("maintenance"), false, page.error());
            return fail(QStringLiteral("maintenance: %1; nothing was changed").arg(page.error()));
        }
        run.step({}, QStringLiteral("maintenance"), true,
                 QStringLiteral("%1 on %2").arg(page.value(), site.balancer->host));
        withoutProbe.renderOptions.maintenancePage = page.value();
    }
    ConfigApplier applier(balancer);
    applier.setVerifyTimeoutMs(options.verifyTimeoutMs);
    applier.setStepCallback([&](const ApplyStep &applied) {
        run.step({}, QStringLiteral("down/") + applied.name, applied.ok, applied.detail);
    });
    const ApplyReport applied = applier.apply(down, withoutProbe, false);
    if (!applied.ok())
        return fail(QStringLiteral("down/%1; the workers were not touched")
                        .arg(describeApply(applied, site.name, site.balancer->host)));

    // 2. The balancer answers for the site itself now.
    if (!target.probeUrl.isEmpty()) {
        const QString probe = shellCommand(probeCommand(target.probeUrl, target.probeHost));
        const QDeadlineTimer deadline(options.verifyTimeoutMs);
        int inARow = 0;
        QString last;
        while (inARow < 3) {
            auto answered = balancer.exec(probe, 15000);
            if (!answered)
                return fail(QStringLiteral("verify: %1; every backend is marked down in %2, the "
                                           "workers were not touched")
                                .arg(answered.error(), target.configPath));
            last = QString::fromUtf8(answered->stdOut).trimmed();
            inARow = last == QLatin1String("502") || last == QLatin1String("503") ? inARow + 1 : 0;
            if (inARow >= 3) break;
            if (deadline.hasExpired())
                return fail(QStringLiteral("verify: GET %1 answered %2, not the balancer's "
                                           "502/503; every backend is marked down in %3, the "
                                           "workers were not touched")
                                .arg(target.probeUrl,
                                     last.isEmpty() ? QStringLiteral("nothing") : last,
                                     target.configPath));
            QThread::msleep(inARow > 0 ? 100 : 250);
        }
        run.step({}, QStringLiteral("verify"), true,
                 QStringLiteral("GET %1 answered %2: the balancer serves no backend")
                     .arg(target.probeUrl, last));
    }

    // 3. The workers, one by one.
    QStringList stopped;
    for (qsizetype i = 0; i < site.backends.size(); ++i) {
        const Backend &backend = site.backends.at(i);
        const auto failed = [&](const QString &name, const QString &why) {
            run.step(backend.key(), name, false, why);
            QStringList running;
            for (qsizetype j = i; j < site.backends.size(); ++j)
                running.append(site.backends.at(j).key());
            return fail(QStringLiteral("%1: %2: %3; the balancer answers 502/503 for %4 (every "
                                       "backend marked down in %5); workers stopped: %6; not "
                                       "stopped: %7")
                            .arg(backend.key(), name, why, site.name, target.configPath,
                                 listOrNone(stopped), listOrNone(running)));
        };
        auto session = run.sessionFor(backend);
        if (!session) return failed(QStringLiteral("host"), session.error());
        auto done = stopSiteWorker(*session.value(), site, backend.port);
        if (!done) return failed(QStringLiteral("stop"), done.error());
        run.step(backend.key(), QStringLiteral("stop"), true, done.value());
        stopped.append(backend.key());
    }
    return QStringLiteral("site %1 stopped: %2 answers 502/503 for it, %3 worker(s) stopped")
        .arg(site.name, site.balancer->host)
        .arg(stopped.size());
}

Result<QString> startRemoteSite(SshSession &balancer,
                                const RemoteRollingRestart::SessionResolver &sessions,
                                const Site &site, const RemoteBalancer &target,
                                const QList<Host> &hosts, const SiteStopOptions &options) {
    if (!site.balancer) return fail(QStringLiteral("site %1 has no balancer").arg(site.name));
    if (auto some = requireBackends(site); !some) return fail(some.error());
    const SiteRun run{sessions, site, hosts, options};
    QStringList started;
    const QString stillStopped =
        QStringLiteral("the balancer still answers 502/503 for %1 (%2 unchanged)")
            .arg(site.name, target.configPath);
    const auto failed = [&](const Backend &backend, const QString &name, const QString &why) {
        run.step(backend.key(), name, false, why);
        return fail(QStringLiteral("%1: %2: %3; %4; workers started: %5 (left running)")
                        .arg(backend.key(), name, why, stillStopped, listOrNone(started)));
    };
    QList<SshSession *> workerSessions;
    for (const Backend &backend : site.backends) {
        if (backend.down) {
            workerSessions.append(nullptr);
            run.step(backend.key(), QStringLiteral("start"), true,
                     QStringLiteral("marked down in the inventory: not started"));
            continue;
        }
        auto session = run.sessionFor(backend);
        if (!session) return failed(backend, QStringLiteral("host"), session.error());
        workerSessions.append(session.value());
        auto done = startSiteWorker(*session.value(), site, backend.port);
        if (!done) return failed(backend, QStringLiteral("start"), done.error());
        run.step(backend.key(), QStringLiteral("start"), true, done.value());
        started.append(backend.key());
    }
    for (qsizetype i = 0; i < site.backends.size(); ++i) {
        const Backend &backend = site.backends.at(i);
        if (!workerSessions.at(i)) continue;
        if (auto healthy = RemoteWorkers::waitHealthy(*workerSessions.at(i), site, backend.port,
                                                      options.healthTimeoutMs, backend.address);
            !healthy)
            return failed(backend, QStringLiteral("health"), healthy.error());
        run.step(backend.key(), QStringLiteral("health"), true,
                 QStringLiteral("GET %1 answered")
                     .arg(RemoteWorkers::healthUrl(site, backend.port, backend.address)));
    }

    ConfigApplier applier(balancer);
    applier.setVerifyTimeoutMs(options.verifyTimeoutMs);
    applier.setStepCallback([&](const ApplyStep &applied) {
        run.step({}, QStringLiteral("apply/") + applied.name, applied.ok, applied.detail);
    });
    const ApplyReport applied = applier.apply(site, target, false);
    if (!applied.ok())
        return fail(
            QStringLiteral("apply/%1; workers started: %2 (left running)")
                .arg(describeApply(applied, site.name, site.balancer->host), listOrNone(started)));
    return QStringLiteral("site %1 started: %2 worker(s) healthy, %3 serves them again")
        .arg(site.name)
        .arg(started.size())
        .arg(site.balancer->host);
}

} // namespace corral
