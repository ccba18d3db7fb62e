#include "affinity/SiteAffinity.h"

#include "affinity/CurlFetch.h"
#include "ssh/HostSessions.h"
#include "ssh/ShellQuote.h"
#include "upstreams/RemoteRollingRestart.h"

namespace corral {
namespace {

/// Where to connect to reach a listener bound to `address`: a wildcard is reached on
/// loopback (from this machine, or from the balancer's host for a production site).
QString reachable(const QString &address) {
    if (address.isEmpty() || address == QLatin1String("*") || address == QLatin1String("0.0.0.0"))
        return QStringLiteral("127.0.0.1");
    if (address == QLatin1String("::") || address == QLatin1String("[::]"))
        return QStringLiteral("::1");
    return address;
}

/// The name a balancer serves the site under (the first server name that is not a wildcard):
/// sent as Host (and SNI) to every endpoint, as a browser would. Empty: ADDRESS:PORT.
QByteArray siteHostHeader(const Site &site) {
    for (const QString &name : site.serverNames)
        if (!name.contains(QLatin1Char('*')) && !name.startsWith(QLatin1Char('.')) &&
            !name.startsWith(QLatin1Char('~')))
            return name.toUtf8();
    return {};
}

AffinityTarget baseTarget(const Site &site, const QStringList &paths) {
    AffinityTarget target;
    target.site = site.name;
    target.policy = policyName(site.policy);
    if (!paths.isEmpty()) target.paths = paths;
    target.hostHeader = siteHostHeader(site);
    return target;
}

} // namespace

AffinityTarget localAffinityTarget(const Site &site, const QList<quint16> &workerPorts,
                                   const QStringList &paths) {
    AffinityTarget target = baseTarget(site, paths);
    for (quint16 port : workerPorts) {
        ProbeEndpoint worker;
        worker.address = QStringLiteral("127.0.0.1");
        worker.port = port;
        worker.label = QStringLiteral("worker ") + Endpoint{worker.address, port}.toString();
        target.workers.append(worker);
    }
    if (auto listen = Endpoint::parse(site.listen); !site.listen.isEmpty() && listen) {
        ProbeEndpoint balancer;
        balancer.address = reachable(listen->host);
        balancer.port = listen->port;
        balancer.tls = site.tls;
        balancer.label =
            QStringLiteral("balancer ") + Endpoint{balancer.address, balancer.port}.toString();
        target.balancer = balancer;
    }
    return target;
}

Result<AffinityTarget> productionAffinityTarget(const Site &site, const QList<Host> &hosts,
                                                const QStringList &paths) {
    if (!site.balancer)
        return fail(QStringLiteral("site %1 has no production balancer").arg(site.name));
    AffinityTarget target = baseTarget(site, paths);
    QList<ProbeEndpoint> backups;
    for (const Backend &backend : site.backends) {
        if (backend.down) continue; // the balancer sends it nothing
        auto host = workerHostFor(backend, site.balancer->host, hosts);
        if (!host) return fail(host.error());
        ProbeEndpoint worker;
        worker.address = backend.address;
        worker.port = backend.port;
        worker.host = host.value();
        worker.label = QStringLiteral("worker %1 on %2").arg(backend.key(), worker.host);
        (backend.backup ? backups : target.workers).append(worker);
    }
    target.workers += backups;
    ProbeEndpoint balancer;
    balancer.address = reachable(site.balancer->listenAddress);
    balancer.port = site.balancer->httpPort == 0 ? 80 : site.balancer->httpPort;
    balancer.host = site.balancer->host;
    balancer.label = QStringLiteral("balancer %1 on %2")
                         .arg(Endpoint{balancer.address, balancer.port}.toString(), balancer.host);
    target.balancer = balancer;
    return target;
}

AffinityReport checkProductionAffinity(const Site &site, HostSessions &sessions,
                                       const QStringList &paths, const std::atomic<bool> *cancel) {
    auto target = productionAffinityTarget(site, sessions.hosts(), paths);
    if (!target) {
        AffinityReport report;
        report.site = site.name;
        report.policy = policyName(site.policy);
        report.error = target.error();
        return report;
    }
    AffinityReport report = checkAffinity(target.value(), curlFetch(sessions, cancel), true);
    // The check went through the balancer as it runs, which is the config last applied: a
    // sticky-cookie policy saved in the inventory but not applied yet looks broken. Said, so
    // that the first thing tried is the apply, not a hunt for a bug in the sticky policy.
    if (report.ok() && report.verdict == AffinityVerdict::StickyBroken) {
        const QString apply = QStringLiteral("corralctl apply %1").arg(shellQuote(site.name));
        report.summary += QStringLiteral("; if the policy was changed since the balancer config "
                                         "was last applied, the balancer still runs the old one: "
                                         "\"%1\" first, then check again")
                              .arg(apply);
        report.fixes.removeAll(apply);
        report.fixes.prepend(apply +
                             QStringLiteral(" first if the policy changed since the last apply, "
                                            "then check again"));
    }
    return report;
}

} // namespace corral
