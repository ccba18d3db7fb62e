#include "upstreams/RemoteAddBackend.h"

#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"

#include <QSet>

namespace corral {

namespace {

Result<Site> addBackend(SshSession &workerSession, ConfigApplier &applier, const Site &site,
                        const RemoteBalancer &target, const QString &backendAddress,
                        int healthTimeoutMs, const std::function<void(const ApplyStep &)> &onStep) {
    const auto report = [&](const QString &name, bool ok, const QString &detail) {
        if (onStep) onStep(ApplyStep{name, ok, detail});
    };
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
           QStringLiteral("port %1 on %2").arg(port).arg(workerSession.config().displayName()));
    auto started = RemoteWorkers::start(workerSession, site, port);
    if (!started) {
        report(QStringLiteral("start"), false, started.error());
        return fail(QStringLiteral("start: ") + started.error());
    }
    report(QStringLiteral("start"), true, QStringLiteral("pid %1").arg(started.value()));
    const auto stopWorker = [&] { (void)RemoteWorkers::stop(workerSession, site.name, port); };

    if (auto healthy =
            RemoteWorkers::waitHealthy(workerSession, site, port, healthTimeoutMs, backendAddress);
        !healthy) {
        stopWorker();
        report(QStringLiteral("health"), false, healthy.error());
        return fail(QStringLiteral("health: ") + healthy.error());
    }
    report(QStringLiteral("health"), true,
           QStringLiteral("GET %1 answered")
               .arg(RemoteWorkers::healthUrl(site, port, backendAddress)));

    Site updated = site;
    updated.backends.append(Backend{backendAddress, port});
    if (!updated.ports.contains(port)) updated.ports.append(port);
    if (auto valid = updated.validate(); !valid) {
        stopWorker();
        report(QStringLiteral("backend"), false, valid.error());
        return fail(QStringLiteral("backend: ") + valid.error());
    }
    const ApplyReport applied = applier.apply(updated, target, false);
    if (!applied.ok()) {
        stopWorker();
        return fail(applied.error);
    }
    return updated;
}

} // namespace

Result<Site> addRemoteBackend(SshSession &workerSession, ConfigApplier &applier, const Site &site,
                              const RemoteBalancer &target, const QString &backendAddress,
                              int healthTimeoutMs) {
    return addBackend(workerSession, applier, site, target, backendAddress, healthTimeoutMs, {});
}

Result<Site> addRemoteBackend(SshSession &workerSession, SshSession &balancerSession,
                              const Site &site, const RemoteBalancer &target,
                              const QString &backendAddress, int healthTimeoutMs,
                              const std::function<void(const ApplyStep &)> &onStep) {
    ConfigApplier applier(balancerSession);
    if (onStep) applier.setStepCallback(onStep);
    return addBackend(workerSession, applier, site, target, backendAddress, healthTimeoutMs,
                      onStep);
}

} // namespace corral
