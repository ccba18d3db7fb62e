#include "upstreams/RemoteAddBackend.h"

#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QDeadlineTimer>
#include <QSet>
#include <QThread>

namespace corral {

Result<Site> addRemoteBackend(SshSession &session, ConfigApplier &applier, const Site &site,
                              const RemoteBalancer &target, const QString &backendAddress,
                              int healthTimeoutMs) {
    QSet<quint16> reserved(site.ports.cbegin(), site.ports.cend());
    for (const Backend &backend : site.backends)
        if (backend.address == backendAddress) reserved.insert(backend.port);
    auto ports = RemoteWorkers::allocatePorts(session, site, 1, reserved);
    if (!ports) return fail(QStringLiteral("allocate: ") + ports.error());
    const quint16 port = ports->first();
    auto started = RemoteWorkers::start(session, site, port);
    if (!started) return fail(QStringLiteral("start: ") + started.error());
    const auto stopWorker = [&] { (void)RemoteWorkers::stop(session, site.name, port); };

    // Healthy: the health path answers 2xx, or (without one) the port accepts.
    const QString url = QStringLiteral("http://127.0.0.1:%1%2")
                            .arg(port)
                            .arg(site.healthPath.isEmpty() ? QStringLiteral("/") : site.healthPath);
    const QString probe = shellCommand(
        {QStringLiteral("curl"), QStringLiteral("-sS"), QStringLiteral("-o"),
         QStringLiteral("/dev/null"), QStringLiteral("-w"), QStringLiteral("%{http_code}"),
         QStringLiteral("--max-time"), QStringLiteral("2"), QStringLiteral("--"), url});
    const QDeadlineTimer deadline(healthTimeoutMs);
    QString last;
    for (;;) {
        auto result = session.exec(probe, 10000);
        if (!result) {
            stopWorker();
            return fail(QStringLiteral("health: ") + result.error());
        }
        const QString code = QString::fromUtf8(result->stdOut).trimmed();
        const bool answered = result->exitStatus == 0 && code.size() == 3;
        if (answered && (site.healthPath.isEmpty() || code.startsWith(QLatin1Char('2')))) break;
        last = answered ? QStringLiteral("answered ") + code
                        : QString::fromUtf8(result->stdErr).trimmed();
        if (deadline.hasExpired()) {
            stopWorker();
            return fail(QStringLiteral("health: the worker on port %1 did not become healthy "
                                       "(GET %2 %3)")
                            .arg(port)
                            .arg(url, last));
        }
        QThread::msleep(200);
    }

    Site updated = site;
    updated.backends.append(Backend{backendAddress, port});
    if (!updated.ports.contains(port)) updated.ports.append(port);
    if (auto valid = updated.validate(); !valid) {
        stopWorker();
        return fail(QStringLiteral("backend: ") + valid.error());
    }
    const ApplyReport report = applier.apply(updated, target, false);
    if (!report.ok()) {
        stopWorker();
        return fail(report.error);
    }
    return updated;
}

} // namespace corral
