#include "upstreams/RemoteAddBackend.h"

#include "remote/HostDiscovery.h"
#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QHostAddress>
#include <QSet>
#include <QThread>

#include <cctype>
#include <optional>

namespace corral {

namespace {

/// Stops a worker over a new connection to its host: the session whose step failed may be
/// dead, and a stop that was not confirmed by the host must not be reported as done.
Result<void> stopOnFreshConnection(const SshConfig &config, const QString &site, quint16 port) {
    SshSession fresh(config);
    if (auto connected = fresh.connect(); !connected) return fail(connected.error());
    return RemoteWorkers::stop(fresh, site, port);
}

/// Who listens on TCP `port` of the session's host (`ss -ltn`): empty while nothing does; fails
/// when the host has no usable ss.
Result<QList<ListeningPort>> listenersOn(SshSession &session, quint16 port) {
    auto listed = session.exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                             QStringLiteral("PATH=\"$PATH:/usr/sbin:/sbin\"; "
                                                            "ss -ltnH \"sport = :$1\" || exit 3"),
                                             QStringLiteral("sh"), QString::number(port)}),
                               10000);
    if (!listed) return fail(listed.error());
    if (listed->exitStatus != 0)
        return fail(QStringLiteral("ss: ") + QString::fromUtf8(listed->stdErr).trimmed());
    return HostDiscovery::parseListening(listed->stdOut);
}

/// Whether a socket bound to `listenAddress` ("0.0.0.0", "::", "*", "127.0.0.1", ...) accepts
/// connections to `address` (an IP, or a host name the balancer resolves).
bool acceptsConnectionsTo(const QString &listenAddress, const QString &address) {
    const QHostAddress bound(listenAddress);
    if (listenAddress == QLatin1String("*") || bound == QHostAddress(QHostAddress::AnyIPv4) ||
        bound == QHostAddress(QHostAddress::AnyIPv6))
        return true;
    const QHostAddress target(address);
    if (target.isNull()) // a name: only a loopback bind is certainly out of its reach
        return !bound.isLoopback() || address == QLatin1String("localhost");
    return bound.isEqual(target, QHostAddress::ConvertV4MappedToIPv4);
}

/// Fails with what to change when the worker on `port` listens, but on no address the
/// balancer can use (`address`): a worker bound to 127.0.0.1 on another host than the
/// balancer is never reachable, and waiting for its health would only time out.
Result<void> checkReachableAt(const QList<ListeningPort> &listeners, const Site &site,
                              const QString &address, quint16 port, const QString &hostName) {
    if (listeners.isEmpty()) return {};
    QStringList bound;
    for (const ListeningPort &listener : listeners) {
        if (acceptsConnectionsTo(listener.address, address)) return {};
        bound.append(Endpoint{listener.address, port}.toString());
    }
    bound.removeDuplicates();
    const QString balancerHost =
        site.balancer ? site.balancer->host : QStringLiteral("the balancer's host");
    return fail(QStringLiteral("the new worker listens only on %1 on %2, which the balancer on %3 "
                               "cannot reach at %4: make the site's command bind to %5 or "
                               "0.0.0.0 by adding the worker's bind option to the site's args "
                               "(e.g. --bind 0.0.0.0 or --host 0.0.0.0, whichever %6 takes)")
                    .arg(bound.join(QStringLiteral(", ")), hostName, balancerHost,
                         Endpoint{address, port}.toString(), address, site.command));
}

/// The health wait of a new worker, preceded by a look at where it listens: the bind hint
/// comes as soon as the worker listens (within `listenGraceMs`), not after the health timeout.
/// A worker that listens later gets the same check once its health wait failed.
Result<void> waitReachableAndHealthy(SshSession &session, const Site &site, quint16 port,
                                     const QString &address, const QString &hostName,
                                     int healthTimeoutMs) {
    constexpr int listenGraceMs = 3000;
    bool checked = false;
    for (const QDeadlineTimer grace(std::min(listenGraceMs, healthTimeoutMs));;) {
        auto listeners = listenersOn(session, port);
        if (!listeners) break; // no ss on the host: the health wait alone decides
        if (!listeners->isEmpty()) {
            if (auto reachable = checkReachableAt(listeners.value(), site, address, port, hostName);
                !reachable)
                return reachable;
            checked = true;
            break;
        }
        if (grace.hasExpired()) break;
        QThread::msleep(100);
    }
    auto healthy = RemoteWorkers::waitHealthy(session, site, port, healthTimeoutMs, address);
    if (healthy || checked) return healthy;
    if (auto listeners = listenersOn(session, port); listeners)
        if (auto reachable = checkReachableAt(listeners.value(), site, address, port, hostName);
            !reachable)
            return reachable;
    return healthy;
}

Result<Site> addBackend(SshSession &workerSession, const std::optional<SshConfig> &balancerConfig,
                        ConfigApplier &applier, const Site &site, const RemoteBalancer &target,
                        const QString &backendAddress, const AddBackendOptions &options) {
    const auto report = [&](const QString &name, bool ok, const QString &detail) {
        if (options.onStep) options.onStep(ApplyStep{name, ok, detail});
    };
    const QString hostName =
        options.workerHost.isEmpty() ? workerSession.config().displayName() : options.workerHost;
    QSet<quint16> reserved(site.ports.cbegin(), site.ports.cend());
    for (const Backend &backend : site.backends)
        if (backend.address == backendAddress) reserved.insert(backend.port);
    auto ports = RemoteWorkers::allocatePorts(workerSession, site, 1, reserved);
    if (!ports) {
        report(QStringLiteral("allocate"), false, ports.error());
        return fail(QStringLiteral("allocate: ") + ports.error());
    }
    const quint16 port = ports->first();
    report(QStringLiteral("allocate"), true,
           QStringLiteral("port %1 on %2").arg(port).arg(hostName));

    PendingOperation pending;
    pending.site = site.name;
    pending.host = hostName;
    pending.address = backendAddress;
    pending.port = port;
    pending.started = QDateTime::currentDateTimeUtc();
    pending.corralctlPid = QCoreApplication::applicationPid();
    pending.command = options.command;
    const auto journal = [&](const QString &step) -> Result<void> {
        pending.step = step;
        return options.journal ? options.journal->record(pending) : Result<void>();
    };
    // Durable before anything changes on a host: a worker started later can always be found.
    if (auto recorded = journal(QStringLiteral("start")); !recorded) {
        report(QStringLiteral("journal"), false, recorded.error());
        return fail(QStringLiteral("journal: %1 (nothing was started)").arg(recorded.error()));
    }

    // A failed step: stop the new worker on a live connection and say what is known. The
    // journal is cleared only when the host confirmed the worker gone and the balancer's
    // installed config does not list it; otherwise it keeps the operation for a reconcile.
    const auto failed = [&](const QString &error, bool applied) -> Error {
        QString worker = QStringLiteral("the new worker on port %1 of %2").arg(port).arg(hostName);
        if (pending.pid > 0) worker += QStringLiteral(" (pid %1)").arg(pending.pid);
        auto stopped = stopOnFreshConnection(workerSession.config(), site.name, port);
        bool settled = stopped.ok();
        QString outcome = stopped ? worker + QStringLiteral(" was stopped and its pid file removed")
                                  : worker + QStringLiteral(" could not be stopped: %1; it may "
                                                            "still be running")
                                                 .arg(stopped.error());
        if (applied && balancerConfig) {
            SshSession fresh(*balancerConfig);
            const Backend added{backendAddress, port};
            auto listed = installedConfigLists(fresh, target, added);
            if (!listed) {
                settled = false;
                outcome += QStringLiteral("; cannot check the balancer config: ") + listed.error();
            } else if (listed.value()) {
                settled = false;
                outcome += QStringLiteral("; the installed balancer config %1 still lists %2")
                               .arg(target.configPath, added.key());
            } else {
                outcome += QStringLiteral("; the installed balancer config does not list it");
            }
        } else if (applied) {
            settled = false; // not checked
        }
        if (settled) {
            // After an apply, the apply's own message says what runs; the file was checked.
            if (!applied) outcome += QStringLiteral(": nothing changed");
            if (options.journal)
                if (auto cleared = options.journal->clear(); !cleared)
                    outcome += QStringLiteral(" (%1)").arg(cleared.error());
        } else if (options.journal) {
            outcome +=
                QStringLiteral("; the operation journal %1 keeps it").arg(options.journal->path());
        }
        return fail(QStringLiteral("%1 (%2)").arg(error, outcome));
    };

    auto started = RemoteWorkers::start(workerSession, site, port);
    if (!started) {
        report(QStringLiteral("start"), false, started.error());
        return failed(QStringLiteral("start: ") + started.error(), false);
    }
    pending.pid = started.value();
    report(QStringLiteral("start"), true, QStringLiteral("pid %1").arg(started.value()));
    // Not fatal: the journal already names the port, which finds the worker's pid file.
    (void)journal(QStringLiteral("health"));

    if (auto healthy = waitReachableAndHealthy(workerSession, site, port, backendAddress, hostName,
                                               options.healthTimeoutMs);
        !healthy) {
        report(QStringLiteral("health"), false, healthy.error());
        return failed(QStringLiteral("health: ") + healthy.error(), false);
    }
    report(QStringLiteral("health"), true,
           QStringLiteral("GET %1 answered")
               .arg(RemoteWorkers::healthUrl(site, port, backendAddress)));

    Site updated = site;
    updated.backends.append(Backend{backendAddress, port});
    if (!updated.ports.contains(port)) updated.ports.append(port);
    if (auto valid = updated.validate(); !valid) {
        report(QStringLiteral("backend"), false, valid.error());
        return failed(QStringLiteral("backend: ") + valid.error(), false);
    }
    (void)journal(QStringLiteral("apply"));
    const ApplyReport applied = applier.apply(updated, target, false);
    if (!applied.ok())
        return failed(describeApply(applied, site.name,
                                    site.balancer ? site.balancer->host
                                                  : QStringLiteral("the balancer host")),
                      true);
    return updated;
}

} // namespace

Result<Site> addRemoteBackend(SshSession &workerSession, SshSession &balancerSession,
                              const Site &site, const RemoteBalancer &target,
                              const QString &backendAddress, const AddBackendOptions &options) {
    ConfigApplier applier(balancerSession);
    if (options.onStep) applier.setStepCallback(options.onStep);
    return addBackend(workerSession, balancerSession.config(), applier, site, target,
                      backendAddress, options);
}

Result<Site> addRemoteBackend(SshSession &workerSession, ConfigApplier &applier, const Site &site,
                              const RemoteBalancer &target, const QString &backendAddress,
                              int healthTimeoutMs) {
    AddBackendOptions options;
    options.healthTimeoutMs = healthTimeoutMs;
    return addBackend(workerSession, std::nullopt, applier, site, target, backendAddress, options);
}

Result<Site> addRemoteBackend(SshSession &workerSession, SshSession &balancerSession,
                              const Site &site, const RemoteBalancer &target,
                              const QString &backendAddress, int healthTimeoutMs,
                              const std::function<void(const ApplyStep &)> &onStep) {
    AddBackendOptions options;
    options.healthTimeoutMs = healthTimeoutMs;
    options.onStep = onStep;
    return addRemoteBackend(workerSession, balancerSession, site, target, backendAddress, options);
}

bool configTextLists(const QByteArray &config, const Backend &backend) {
    const QByteArray key = backend.key().toUtf8();
    // The key as a whole word: 127.0.0.1:300 is not in 127.0.0.1:3004, nor 0.0.1:80 in
    // 10.0.0.1:80.
    const auto partOfAddress = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-';
    };
    for (qsizetype at = config.indexOf(key); at >= 0; at = config.indexOf(key, at + 1)) {
        const qsizetype end = at + key.size();
        const bool startsWord = at == 0 || !partOfAddress(config.at(at - 1));
        const bool endsWord =
            end >= config.size() || !std::isdigit(static_cast<unsigned char>(config.at(end)));
        if (startsWord && endsWord) return true;
    }
    return false;
}

Result<bool> installedConfigLists(SshSession &balancerSession, const RemoteBalancer &target,
                                  const Backend &backend) {
    const QString command =
        shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                      QStringLiteral("[ -e \"$1\" ] || exit 3; exec cat -- \"$1\""),
                      QStringLiteral("sh"), target.configPath});
    auto result = balancerSession.exec(command, 30000);
    if (!result) return fail(result.error());
    if (result->exitStatus == 3) return false;
    if (result->exitStatus != 0)
        return fail(QStringLiteral("reading %1 on %2: %3")
                        .arg(target.configPath, balancerSession.config().displayName(),
                             QString::fromUtf8(result->stdErr).trimmed()));
    return configTextLists(result->stdOut, backend);
}

Result<ReconcileOutcome> reconcileAddBackend(SshSession &workerSession, SshSession &balancerSession,
                                             const Site &site, const RemoteBalancer &target,
                                             const PendingOperation &pending) {
    ReconcileOutcome outcome{site, false, {}};
    const Backend backend = pending.backend();
    for (const Backend &known : site.backends)
        if (known.key() == backend.key()) {
            outcome.summary =
                QStringLiteral("%1 is already in the inventory; nothing to do").arg(backend.key());
            return outcome;
        }
    auto statuses = RemoteWorkers::status(workerSession, site.name, {pending.port});
    if (!statuses) return fail(statuses.error());
    const bool running = !statuses->isEmpty() && statuses->first().running;
    const qint64 pid = running ? statuses->first().pid : pending.pid;
    auto listed = installedConfigLists(balancerSession, target, backend);
    if (!listed) return fail(listed.error());

    if (running && listed.value()) {
        Site adopted = site;
        adopted.backends.append(backend);
        if (!adopted.ports.contains(pending.port)) adopted.ports.append(pending.port);
        if (auto valid = adopted.validate(); !valid)
            return fail(QStringLiteral("adopting %1: %2").arg(backend.key(), valid.error()));
        outcome.site = adopted;
        outcome.adopted = true;
        outcome.summary = QStringLiteral("adopted %1 (worker pid %2 on %3, served through %4)")
                              .arg(backend.key())
                              .arg(pid)
                              .arg(pending.host, target.configPath);
        return outcome;
    }

    if (auto stopped = RemoteWorkers::stop(workerSession, site.name, pending.port); !stopped)
        return fail(stopped.error());
    outcome.summary =
        running ? QStringLiteral("stopped the worker on port %1 of %2 (pid %3) and removed its "
                                 "pid file")
                      .arg(pending.port)
                      .arg(pending.host)
                      .arg(pid)
                : QStringLiteral("the worker on port %1 of %2 was not running; no pid file is "
                                 "left")
                      .arg(pending.port)
                      .arg(pending.host);
    if (listed.value()) {
        // The config went live but its worker is gone: back to the inventory's config.
        ConfigApplier applier(balancerSession);
        const ApplyReport applied = applier.apply(site, target, false);
        if (!applied.ok())
            return fail(QStringLiteral("%1, but %2 still lists %3 and applying the site's config "
                                       "failed: %4")
                            .arg(outcome.summary, target.configPath, backend.key(), applied.error));
        outcome.summary +=
            QStringLiteral("; removed %1 from %2").arg(backend.key(), target.configPath);
    } else {
        outcome.summary += QStringLiteral("; the balancer config does not list it");
    }
    return outcome;
}

} // namespace corral
