#include "upstreams/RemoteRollingRestart.h"

#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

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

QString RemoteRollingRestart::haproxyCommand(const QString &socketPath, const QString &command) {
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                         QStringLiteral("printf '%s\\n' \"$1\" | socat stdio \"UNIX-CONNECT:$2\""),
                         QStringLiteral("sh"), command, socketPath});
}

QString RemoteRollingRestart::haproxyServerName(const Backend &backend) {
    QString name = backend.key();
    name.remove(QLatin1Char('[')).remove(QLatin1Char(']'));
    return name;
}

Result<QString> RemoteRollingRestart::parseStatField(const QByteArray &csv, const QString &backend,
                                                     const QString &server, const QString &column) {
    const QList<QByteArray> lines = csv.split('\n');
    if (lines.isEmpty() || !lines.first().startsWith("# "))
        return fail(QStringLiteral("show stat: no CSV header"));
    const QList<QByteArray> columns = lines.first().mid(2).split(',');
    const qsizetype pxname = columns.indexOf("pxname");
    const qsizetype svname = columns.indexOf("svname");
    const qsizetype wanted = columns.indexOf(column.toUtf8());
    if (pxname < 0 || svname < 0 || wanted < 0)
        return fail(QStringLiteral("show stat: no pxname, svname or %1 column").arg(column));
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const QList<QByteArray> fields = lines.at(i).split(',');
        if (fields.size() <= std::max({pxname, svname, wanted})) continue;
        if (QString::fromUtf8(fields.at(pxname)) == backend &&
            QString::fromUtf8(fields.at(svname)) == server)
            return QString::fromUtf8(fields.at(wanted));
    }
    return fail(QStringLiteral("show stat: no server %1/%2").arg(backend, server));
}

Result<int> RemoteRollingRestart::parseCurrentSessions(const QByteArray &csv,
                                                       const QString &backend,
                                                       const QString &server) {
    auto scur = parseStatField(csv, backend, server, QStringLiteral("scur"));
    if (!scur) return fail(scur.error());
    return scur->toInt();
}

Result<void> RemoteRollingRestart::haproxy(const QString &socket, const QString &command) {
    auto result = m_balancer.exec(haproxyCommand(socket, command), 30000);
    if (!result) return fail(result.error());
    const QString answer = QString::fromUtf8(result->stdOut + result->stdErr).trimmed();
    if (result->exitStatus == 127)
        return fail(
            QStringLiteral("socat is not installed on %1").arg(m_balancer.config().displayName()));
    if (result->exitStatus != 0 || !answer.isEmpty())
        return fail(QStringLiteral("\"%1\" on %2: %3")
                        .arg(command, socket,
                             answer.isEmpty()
                                 ? QStringLiteral("exit status %1").arg(result->exitStatus)
                                 : answer));
    return {};
}

Result<QString> RemoteRollingRestart::drainHaproxy(const QString &socket, const QString &proxy,
                                                   const QString &server) {
    if (auto drained =
            haproxy(socket, QStringLiteral("set server %1/%2 state drain").arg(proxy, server));
        !drained)
        return fail(drained.error());
    const QDeadlineTimer deadline(m_drainTimeoutMs);
    int sessions = 0;
    for (;;) {
        auto stat = haproxyStat(socket);
        if (!stat) return fail(stat.error());
        auto current = parseCurrentSessions(stat.value(), proxy, server);
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

Result<QByteArray> RemoteRollingRestart::haproxyStat(const QString &socket) {
    auto stat = m_balancer.exec(haproxyCommand(socket, QStringLiteral("show stat")), 30000);
    if (!stat) return fail(stat.error());
    if (stat->exitStatus != 0)
        return fail(QStringLiteral("show stat on %1: %2")
                        .arg(socket, QString::fromUtf8(stat->stdErr).trimmed()));
    return stat->stdOut;
}

Result<QString> RemoteRollingRestart::waitHaproxyUp(const QString &socket, const QString &proxy,
                                                    const QString &server) {
    QElapsedTimer elapsed;
    elapsed.start();
    const QDeadlineTimer deadline(m_balancerUpTimeoutMs);
    for (;;) {
        auto stat = haproxyStat(socket);
        if (!stat) return fail(stat.error());
        auto status = parseStatField(stat.value(), proxy, server, QStringLiteral("status"));
        if (!status) return fail(status.error());
        // "UP", or "UP 1/3" (one check failed, still in rotation); "DOWN 1/2" is on its way up
        // but not yet sent traffic. A server without checks says "no check".
        if (status->startsWith(QLatin1String("UP")) || status.value() == QLatin1String("no check"))
            return QStringLiteral("UP at the balancer after %1 s")
                .arg(double(elapsed.elapsed()) / 1000.0, 0, 'f', 1);
        if (deadline.hasExpired()) {
            auto check =
                parseStatField(stat.value(), proxy, server, QStringLiteral("check_status"));
            auto description =
                parseStatField(stat.value(), proxy, server, QStringLiteral("check_desc"));
            return fail(QStringLiteral("HAProxy still reports %1/%2 as %3 after %4 s (its last "
                                       "check: %5%6)")
                            .arg(proxy, server, status.value())
                            .arg(m_balancerUpTimeoutMs / 1000.0)
                            .arg(check ? check.value() : QStringLiteral("unknown"),
                                 description && !description->isEmpty()
                                     ? QStringLiteral(" ") + description.value()
                                     : QString()));
        }
        QThread::msleep(200);
    }
}

RollingRestartReport RemoteRollingRestart::run(const Site &site, const RemoteBalancer &target,
                                               const QList<Host> &hosts) {
    RollingRestartReport report;
    QString current; // the backend being worked on
    const auto step = [&](const QString &name, bool ok, const QString &detail) {
        report.steps.append(RollingStep{current, name, ok, detail});
        if (m_onStep) m_onStep(report.steps.last());
    };
    const auto failed = [&](const QString &name, const QString &why) {
        step(name, false, why);
        report.failedBackend = current;
        report.error = QStringLiteral("%1: %2: %3").arg(current, name, why);
        return report;
    };
    if (!site.balancer) {
        report.error = QStringLiteral("site %1 has no balancer").arg(site.name);
        return report;
    }
    const auto lockLost = [&](const QString &before) {
        return failed(QStringLiteral("lock"),
                      QStringLiteral("the connection that held the site's lock on %1 was lost; "
                                     "stopped before %2 (another operation may be running now). "
                                     "Run 'corralctl rolling-restart %3' again")
                          .arg(site.balancer->host, before, site.name));
    };
    const auto lockHeld = [&] { return !m_lockHeld || m_lockHeld(); };
    int inRotation = 0;
    for (const Backend &backend : site.backends)
        if (!backend.down) ++inRotation;
    if (inRotation < 2) {
        report.error = QStringLiteral("site %1 has %2 backend(s) in rotation; a rolling restart "
                                      "needs at least two, or the site stops serving")
                           .arg(site.name)
                           .arg(inRotation);
        return report;
    }
    const bool runtimeApi = target.format == RenderFormat::Haproxy;
    const QString socket =
        (target.renderOptions.runtimeDirectory.isEmpty() ? QStringLiteral("/run/haproxy")
                                                         : target.renderOptions.runtimeDirectory) +
        QStringLiteral("/corral-") + site.name + QStringLiteral(".sock");
    const QString proxy = QStringLiteral("corral-") + site.name;

    // The config as installed while a backend is out: the site with that one marked down.
    ConfigApplier applier(m_balancer);
    applier.setVerifyTimeoutMs(m_verifyTimeoutMs);
    QString applyPrefix;
    applier.setStepCallback([&](const ApplyStep &applied) {
        step(applyPrefix + applied.name, applied.ok, applied.detail);
    });
    const auto applyWith = [&](const Site &variant, const QString &prefix) -> Result<void> {
        applyPrefix = prefix;
        const ApplyReport applied = applier.apply(variant, target, false);
        if (!applied.ok()) return fail(describeApply(applied, site.name, site.balancer->host));
        return {};
    };

    for (qsizetype i = 0; i < site.backends.size(); ++i) {
        const Backend &backend = site.backends.at(i);
        current = backend.key();
        auto hostName = workerHostFor(backend, site.balancer->host, hosts);
        if (!hostName) return failed(QStringLiteral("host"), hostName.error());
        auto session = m_sessions(hostName.value());
        if (!session) return failed(QStringLiteral("host"), session.error());
        step(QStringLiteral("host"), true,
             QStringLiteral("worker on %1 port %2").arg(hostName.value()).arg(backend.port));

        const bool rotate = !backend.down;
        if (!lockHeld()) return lockLost(QStringLiteral("draining it"));
        if (rotate) {
            if (runtimeApi) {
                auto drained = drainHaproxy(socket, proxy, haproxyServerName(backend));
                if (!drained) return failed(QStringLiteral("drain"), drained.error());
                step(QStringLiteral("drain"), true, drained.value());
            } else {
                Site out = site;
                out.backends[i].down = true;
                if (auto applied = applyWith(out, QStringLiteral("drain/")); !applied)
                    return failed(QStringLiteral("drain"), applied.error());
                step(QStringLiteral("drain"), true,
                     QStringLiteral("marked down in %1 and reloaded").arg(target.configPath));
            }
        }

        auto restarted = RemoteWorkers::restart(*session.value(), site, backend.port);
        if (!restarted) return failed(QStringLiteral("restart"), restarted.error());
        step(QStringLiteral("restart"), true,
             restarted.value() > 0 ? QStringLiteral("new pid %1").arg(restarted.value())
                                   : QStringLiteral("restarted"));

        if (auto healthy = RemoteWorkers::waitHealthy(*session.value(), site, backend.port,
                                                      m_healthTimeoutMs, backend.address);
            !healthy)
            return failed(QStringLiteral("health"), healthy.error());
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
                        .arg(RemoteWorkers::logPath(site.name, backend.port)));
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
                                      .arg(RemoteWorkers::logPath(site.name, backend.port)));
            }
        }
        step(QStringLiteral("health"), true,
             QStringLiteral("GET %1 answered")
                 .arg(RemoteWorkers::healthUrl(site, backend.port, backend.address)));
        if (rotate && !lockHeld())
            return lockLost(
                QStringLiteral("putting it back into rotation (it stays out until a new "
                               "rolling restart or apply)"));

        if (rotate) {
            if (runtimeApi) {
                const QString server = haproxyServerName(backend);
                if (auto ready = haproxy(
                        socket, QStringLiteral("set server %1/%2 state ready").arg(proxy, server));
                    !ready)
                    return failed(QStringLiteral("enable"), ready.error());
                // Back in rotation only once HAProxy's own check says so: draining the next
                // backend earlier leaves no server to answer.
                auto up = waitHaproxyUp(socket, proxy, server);
                if (!up) return failed(QStringLiteral("enable"), up.error());
                step(QStringLiteral("enable"), true,
                     QStringLiteral("%1/%2 ready; %3").arg(proxy, server, up.value()));
            } else {
                if (auto applied = applyWith(site, QStringLiteral("enable/")); !applied)
                    return failed(QStringLiteral("enable"), applied.error());
                step(QStringLiteral("enable"), true,
                     QStringLiteral("back in %1 and reloaded").arg(target.configPath));
            }
        }
        report.restarted.append(current);
    }
    return report;
}

} // namespace corral
