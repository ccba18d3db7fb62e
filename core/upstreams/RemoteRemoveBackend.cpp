#include "upstreams/RemoteRemoveBackend.h"

#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/HaproxyRuntime.h"
#include "upstreams/NginxLogFollower.h"
#include "upstreams/RemoteAddBackend.h"
#include "upstreams/RemoteSiteStop.h"

#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QThread>

namespace corral {

namespace {

/// Waits until HAProxy's server has no current session, or the timeout passed.
Result<QString> waitHaproxyIdle(SshSession &balancer, const QString &socket, const QString &proxy,
                                const QString &server, int timeoutMs) {
    const QDeadlineTimer deadline(timeoutMs);
    for (;;) {
        auto csv = readHaproxyStat(balancer, socket);
        if (!csv) return fail(csv.error());
        auto stat = HaproxyStat::parse(csv.value());
        if (!stat) return fail(stat.error());
        auto sessions = stat->currentSessions(proxy, server);
        if (!sessions) return fail(sessions.error());
        if (sessions.value() == 0)
            return QStringLiteral("%1/%2 has no session left").arg(proxy, server);
        if (deadline.hasExpired())
            return QStringLiteral("%1/%2 still has %3 session(s) after %4 s; going ahead")
                .arg(proxy, server)
                .arg(sessions.value())
                .arg(timeoutMs / 1000.0);
        QThread::msleep(100);
    }
}

/// Waits until the access log had no new line answered by `backend` for `idleMs`, or the
/// timeout passed.
Result<QString> waitAccessLogIdle(SshSession &balancer, const QString &log, const QString &backend,
                                  int idleMs, int timeoutMs) {
    NginxLogFollower follower(log);
    // The first poll finds the end of the file: what it holds was answered already.
    if (auto positioned = follower.poll(balancer); !positioned) return fail(positioned.error());
    QElapsedTimer quiet;
    quiet.start();
    const QDeadlineTimer deadline(timeoutMs);
    quint64 answered = 0;
    for (;;) {
        QThread::msleep(200);
        auto counts = follower.poll(balancer);
        if (!counts) return fail(counts.error());
        if (const quint64 lines = counts->value(backend); lines > 0) {
            answered += lines;
            quiet.restart();
        }
        if (quiet.elapsed() >= idleMs)
            return QStringLiteral("no request answered by %1 in %2 for %3 s (%4 answered while "
                                  "draining)")
                .arg(backend, log)
                .arg(idleMs / 1000.0)
                .arg(answered);
        if (deadline.hasExpired())
            return QStringLiteral("%1 still answered requests %2 s after it was marked down "
                                  "(%3 lines in %4); going ahead")
                .arg(backend)
                .arg(timeoutMs / 1000.0)
                .arg(answered)
                .arg(log);
    }
}

/// Waits until HAProxy's own check reports the server UP: a server put back after a failure
/// is only back in rotation then (a reload during the failed apply restarted its checks while
/// its worker was stopped, so HAProxy holds it DOWN until `rise` checks pass).
Result<QString> waitHaproxyUp(SshSession &balancer, const QString &socket, const QString &proxy,
                              const QString &server, int timeoutMs) {
    auto seconds = waitHaproxyServerUp(balancer, socket, proxy, server, timeoutMs);
    if (!seconds) return fail(seconds.error());
    return QStringLiteral("%1/%2 UP after %3 s").arg(proxy, server).arg(seconds.value(), 0, 'f', 1);
}

} // namespace

Result<Site> removeRemoteBackend(SshSession &balancerSession, SshSession &workerSession,
                                 const Site &site, const RemoteBalancer &target,
                                 const Backend &backend, const RemoveBackendOptions &options) {
    const auto step = [&](const QString &name, bool ok, const QString &detail) {
        if (options.onStep) options.onStep(ApplyStep{name, ok, detail});
    };
    const auto stepFailed = [&](const QString &name, const QString &why) {
        step(name, false, why);
        return fail(QStringLiteral("%1: %2").arg(name, why));
    };
    if (!site.balancer)
        return stepFailed(QStringLiteral("check"),
                          QStringLiteral("site %1 has no balancer").arg(site.name));

    // 1. check
    const QString key = backend.key();
    qsizetype index = -1;
    int inRotation = 0;
    QStringList keys;
    for (qsizetype i = 0; i < site.backends.size(); ++i) {
        keys.append(site.backends.at(i).key());
        if (keys.last() == key) index = i;
        if (!site.backends.at(i).down) ++inRotation;
    }
    if (index < 0)
        return stepFailed(
            QStringLiteral("check"),
            QStringLiteral("site %1 has no backend %2 (its backends: %3)")
                .arg(site.name, key,
                     keys.isEmpty() ? QStringLiteral("none") : keys.join(QStringLiteral(", "))));
    const Backend removed = site.backends.at(index);
    const bool inService = !removed.down;
    if (inService && inRotation < 2 && !options.force)
        return stepFailed(QStringLiteral("check"),
                          QStringLiteral("%1 is the last backend of site %2 in rotation: without "
                                         "it the site stops serving (force it to remove it "
                                         "anyway); nothing was changed")
                              .arg(key, site.name));
    step(QStringLiteral("check"), true,
         QStringLiteral("%1 of %2 backend(s) in rotation%3")
             .arg(inRotation)
             .arg(site.backends.size())
             .arg(inService ? QString() : QStringLiteral("; %1 is marked down already").arg(key)));

    Site without = site;
    without.backends.removeAt(index);
    bool portShared = false;
    for (const Backend &other : std::as_const(without.backends))
        portShared = portShared || other.port == removed.port;
    if (!portShared) without.ports.removeAll(removed.port);

    const bool runtimeApi = target.format == RenderFormat::Haproxy;
    const QString socket = haproxyStatsSocket(target.renderOptions.runtimeDirectory, site.name);
    const QString proxy = balancerBlockName(site.name);
    const QString server = haproxyServerName(removed);
    ConfigApplier applier(balancerSession);
    applier.setVerifyTimeoutMs(options.verifyTimeoutMs);
    QString applyPrefix;
    applier.setStepCallback([&](const ApplyStep &applied) {
        step(applyPrefix + applied.name, applied.ok, applied.detail);
    });
    const auto applyWith = [&](const Site &variant, const QString &prefix) {
        applyPrefix = prefix;
        return applier.apply(variant, target, false);
    };
    const auto lockHeld = [&] { return !options.lockHeld || options.lockHeld(); };

    bool drained = false;       // taken out of rotation by this run
    bool workerTouched = false; // its worker was (maybe) stopped by this run
    // Puts the backend back as it was after a failure; says what is true afterwards.
    const auto restore = [&]() -> QString {
        if (!lockHeld())
            return drained ? QStringLiteral("the site's lock was lost, so nothing was put back: "
                                            "%1 is still out of rotation%2 (run 'corralctl apply "
                                            "%3')")
                                 .arg(key,
                                      workerTouched ? QStringLiteral(" and its worker stopped")
                                                    : QString(),
                                      site.name)
                           : QStringLiteral("the site's lock was lost");
        QStringList said;
        if (workerTouched) {
            auto started = startSiteWorker(workerSession, site, removed.port);
            step(QStringLiteral("restore/start"), bool(started),
                 started ? started.value() : started.error());
            if (!started)
                return QStringLiteral("its worker could not be started again (%1): %2 is out of "
                                      "rotation")
                    .arg(started.error(), key);
            auto healthy = RemoteWorkers::waitHealthy(workerSession, site, removed.port,
                                                      options.healthTimeoutMs, removed.address);
            step(QStringLiteral("restore/health"), bool(healthy),
                 healthy ? QStringLiteral("GET %1 answered")
                               .arg(RemoteWorkers::healthUrl(site, removed.port, removed.address))
                         : healthy.error());
            said.append(
                healthy ? QStringLiteral("its worker was started again (%1)").arg(started.value())
                        : QStringLiteral("its worker was started again but is not "
                                         "healthy (%1)")
                              .arg(healthy.error()));
        }
        if (drained) {
            if (runtimeApi) {
                auto ready = runHaproxyCommand(
                    balancerSession, socket,
                    haproxySetServerState(proxy, server, QStringLiteral("ready")));
                auto up = ready ? waitHaproxyUp(balancerSession, socket, proxy, server,
                                                options.balancerUpTimeoutMs)
                                : Result<QString>(fail(ready.error()));
                step(QStringLiteral("restore/enable"), bool(up),
                     up ? QStringLiteral("%1/%2 set ready; %3").arg(proxy, server, up.value())
                        : up.error());
                said.append(up ? QStringLiteral("%1 is back in rotation (HAProxy %2/%3 UP)")
                                     .arg(key, proxy, server)
                            : ready
                                ? QStringLiteral("%1 was set ready at HAProxy but is not UP: %2")
                                      .arg(key, up.error())
                                : QStringLiteral("%1 is still drained at HAProxy: %2")
                                      .arg(key, ready.error()));
            } else {
                const ApplyReport back = applyWith(site, QStringLiteral("restore/"));
                said.append(
                    back.ok() ? QStringLiteral("%1 is back in rotation (%2 applied as "
                                               "in the inventory)")
                                    .arg(key, target.configPath)
                              : QStringLiteral("%1 may still be marked down: %2")
                                    .arg(key, describeApply(back, site.name, site.balancer->host)));
            }
        }
        return said.isEmpty() ? QStringLiteral("nothing was changed")
                              : said.join(QStringLiteral("; "));
    };
    const auto failed = [&](const QString &name, const QString &why) {
        step(name, false, why);
        const QString after = restore();
        return fail(QStringLiteral("%1: %2; %3").arg(name, why, after));
    };
    const auto lockLost = [&](const QString &before) {
        return failed(QStringLiteral("lock"),
                      QStringLiteral("the connection that held the site's lock on %1 was lost "
                                     "before %2 (another operation may be running now)")
                          .arg(site.balancer->host, before));
    };

    // 2. drain, 3. wait
    if (inService) {
        if (!lockHeld()) return lockLost(QStringLiteral("draining"));
        if (runtimeApi) {
            auto set =
                runHaproxyCommand(balancerSession, socket,
                                  haproxySetServerState(proxy, server, QStringLiteral("drain")));
            if (!set) return failed(QStringLiteral("drain"), set.error());
            drained = true;
            step(QStringLiteral("drain"), true,
                 QStringLiteral("%1/%2 set to drain").arg(proxy, server));
        } else {
            Site down = site;
            down.backends[index].down = true;
            const ApplyReport marked = applyWith(down, QStringLiteral("drain/"));
            if (!marked.ok()) {
                // Failed or rolled back: the previous config serves, the backend never left.
                // Otherwise the installed file may say it is down.
                drained = marked.outcome != ApplyOutcome::Failed &&
                          marked.outcome != ApplyOutcome::RolledBack;
                return failed(QStringLiteral("drain"),
                              describeApply(marked, site.name, site.balancer->host));
            }
            drained = true;
            step(QStringLiteral("drain"), true,
                 QStringLiteral("marked down in %1 and reloaded").arg(target.configPath));
        }
        auto idle =
            runtimeApi
                ? waitHaproxyIdle(balancerSession, socket, proxy, server, options.drainTimeoutMs)
                : waitAccessLogIdle(
                      balancerSession,
                      accessLogPath(logDirectoryFor(target.format, target.renderOptions),
                                    site.name),
                      key, options.idleMs, options.drainTimeoutMs);
        if (!idle) return failed(QStringLiteral("wait"), idle.error());
        step(QStringLiteral("wait"), true, idle.value());
    }

    // 4. stop
    if (!lockHeld()) return lockLost(QStringLiteral("stopping its worker"));
    workerTouched = true;
    auto stopped = stopSiteWorker(workerSession, site, removed.port);
    if (!stopped) return failed(QStringLiteral("stop"), stopped.error());
    step(QStringLiteral("stop"), true, stopped.value());

    // 5. apply
    if (!lockHeld()) return lockLost(QStringLiteral("applying the config without it"));
    const ApplyReport applied = applyWith(without, QStringLiteral("apply/"));
    if (!applied.ok()) {
        const QString why = describeApply(applied, site.name, site.balancer->host);
        // The failing step is reported by the applier; the error starts "apply/STEP: ".
        const QString after = restore();
        return fail(QStringLiteral("apply/%1; %2").arg(why, after));
    }

    // 6. verify
    auto listed = installedConfigLists(balancerSession, target, removed);
    if (!listed) return stepFailed(QStringLiteral("verify"), listed.error());
    if (listed.value())
        return stepFailed(
            QStringLiteral("verify"),
            QStringLiteral("%1 still names %2 after the apply").arg(target.configPath, key));
    step(
        QStringLiteral("verify"), true,
        QStringLiteral("%1 no longer names %2; its worker is stopped").arg(target.configPath, key));
    return without;
}

} // namespace corral
