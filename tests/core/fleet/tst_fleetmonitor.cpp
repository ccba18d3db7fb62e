// FleetMonitor over real sshd instances on 127.0.0.31 and 127.0.0.32 (tests/helpers/SshServer):
// vitals of each host, a host without an SSH connection, and a host that hangs (its sshd
// stopped with SIGSTOP) or dies (killed) shown unreachable within its timeout while the other
// keeps answering. Sites behind real balancers are covered by the fleet fixture's test.
#include "FleetFixture.h"
#include "SshServer.h"
#include "fleet/FleetMonitor.h"
#include "ssh/SshHost.h"
#include "util/ListeningSockets.h"

#include <QElapsedTimer>
#include <QHostAddress>
#include <QScopeGuard>
#include <QSignalSpy>
#include <QTest>

#include <csignal>

using namespace corral;
using corral::test::FleetFixture;
using corral::test::FleetOptions;

namespace {

// SIGSTOP or SIGCONT to sshd and every process below it (its per-connection processes): a
// host that accepts nothing and answers nothing, without closing any connection.
void signalTree(const SshServer &server, int signal) {
    for (qint64 pid : processTree(server.pid()))
        ::kill(pid_t(pid), signal);
}

// POST `path` to a demo worker (its /health/fail switch); true once it answered 200.
bool post(const QString &address, quint16 port, const QByteArray &path) {
    QTcpSocket socket;
    socket.connectToHost(QHostAddress(address), port);
    if (!socket.waitForConnected(5000)) return false;
    socket.write("POST " + path +
                 " HTTP/1.1\r\nHost: w\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    QByteArray response;
    const QDeadlineTimer deadline(5000);
    while (socket.state() == QAbstractSocket::ConnectedState && !deadline.hasExpired())
        if (socket.waitForReadyRead(int(std::max<qint64>(1, deadline.remainingTime()))))
            response += socket.readAll();
    response += socket.readAll();
    return response.startsWith("HTTP/1.1 200");
}

} // namespace

class TestFleetMonitor : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void vitalsTimeoutsAndDeadHosts() {
        SshServer first(QStringLiteral("127.0.0.31"));
        SshServer second(QStringLiteral("127.0.0.32"));
        QString error;
        QVERIFY2(first.start(&error), qPrintable(error));
        QVERIFY2(second.start(&error), qPrintable(error));

        const Host a = first.inventoryHost(QStringLiteral("a"));
        const Host b = second.inventoryHost(QStringLiteral("b"));
        Host unconnected = b;
        unconnected.name = QStringLiteral("c");
        unconnected.address = QStringLiteral("127.0.0.33");
        SshPool pool;
        const FleetMonitor::HostResolver resolve = [&](const Host &host) -> SshHost * {
            if (host.name == a.name) return pool.host(host.name, first.trustedConfig());
            if (host.name == b.name) return pool.host(host.name, second.trustedConfig());
            return nullptr; // "c": no connection
        };

        FleetMonitor monitor;
        PollOptions options;
        options.intervalMs = 250;
        options.timeoutMs = 1500;
        options.firstRetryMs = 250;
        options.maxRetryMs = 500;
        options.maxConcurrent = 16;
        monitor.setOptions(options);
        monitor.setInventory({a, b, unconnected}, {}, resolve);
        QSignalSpy updates(&monitor, &FleetMonitor::updated);
        monitor.start();

        const auto row = [&](const QString &name) {
            const FleetHostRow *found = monitor.snapshot().host(name);
            return found ? *found : FleetHostRow{};
        };
        // The first connect of each host takes a moment.
        QTRY_VERIFY_WITH_TIMEOUT(row(a.name).reachable && row(b.name).reachable, 15000);
        const FleetSnapshot &snapshot = monitor.snapshot();
        QCOMPARE(snapshot.hosts.size(), 4);
        QVERIFY(snapshot.hosts.first().local);
        QCOMPARE(snapshot.hosts.first().name, Host::LocalName);
        QVERIFY(snapshot.hosts.first().cores > 0);
        QVERIFY(snapshot.hosts.first().memoryTotalBytes > 0);
        for (const QString &name : {a.name, b.name}) {
            const FleetHostRow host = row(name);
            QVERIFY(!host.local);
            QVERIFY(host.polled);
            QVERIFY(host.cores > 0);
            QVERIFY(host.memoryTotalBytes > 0);
            QVERIFY(host.memoryUsedBytes > 0 && host.memoryUsedBytes <= host.memoryTotalBytes);
            QVERIFY(host.load1 >= 0);
            QVERIFY(host.lastSeenMs > 0);
            QVERIFY(host.pollMs > 0);
            QVERIFY(!host.degraded());
        }
        // No connection for "c": unreachable, and said why.
        QVERIFY(row(unconnected.name).polled);
        QVERIFY(!row(unconnected.name).reachable);
        QCOMPARE(row(unconnected.name).error, QStringLiteral("not connected"));
        QVERIFY(row(unconnected.name).degraded());
        QVERIFY(monitor.maxSessionsInFlight() >= 1);
        QVERIFY(monitor.maxSessionsInFlight() <= options.maxConcurrent);
        QTRY_VERIFY_WITH_TIMEOUT(monitor.snapshot().lastRoundMs > 0, 5000);

        // Host b hangs: its row says so within its timeout (plus the wait for the next
        // round), while a goes on answering every round.
        const auto resume = qScopeGuard([&] { signalTree(second, SIGCONT); });
        QElapsedTimer hung;
        hung.start();
        signalTree(second, SIGSTOP);
        QTRY_VERIFY_WITH_TIMEOUT(!row(b.name).reachable, 5000);
        const qint64 shownAfter = hung.elapsed();
        QVERIFY2(shownAfter <= options.timeoutMs + 2 * options.intervalMs + 500,
                 qPrintable(QString::number(shownAfter)));
        qInfo("hung host shown unreachable after %lld ms: %s", shownAfter,
              qPrintable(row(b.name).error));
        QCOMPARE(row(b.name).error, QStringLiteral("no answer within 1.5 s"));
        const qint64 seenA = row(a.name).lastSeenMs;
        const qint64 seenB = row(b.name).lastSeenMs;
        QTRY_VERIFY_WITH_TIMEOUT(row(a.name).lastSeenMs > seenA, 3000);
        const qint64 laterA = row(a.name).lastSeenMs;
        QTRY_VERIFY_WITH_TIMEOUT(row(a.name).lastSeenMs > laterA, 3000);
        QVERIFY(row(a.name).reachable);
        QVERIFY(!row(b.name).reachable);
        QCOMPARE(row(b.name).lastSeenMs, seenB);
        QVERIFY(monitor.maxSessionsInFlight() <= options.maxConcurrent);

        // Resumed: b answers again after its back-off.
        signalTree(second, SIGCONT);
        QTRY_VERIFY_WITH_TIMEOUT(row(b.name).reachable, 10000);
        QVERIFY(row(b.name).lastSeenMs > seenB);

        // Killed (connections and all): unreachable within the timeout, with ssh's reason.
        QElapsedTimer killed;
        killed.start();
        second.killHard();
        QTRY_VERIFY_WITH_TIMEOUT(!row(b.name).reachable, 5000);
        QVERIFY2(killed.elapsed() <= options.timeoutMs + 2 * options.intervalMs + 500,
                 qPrintable(QString::number(killed.elapsed())));
        QVERIFY(!row(b.name).error.isEmpty());
        QVERIFY(row(b.name).retryInMs <= options.maxRetryMs);
        const qint64 seenAfterKill = row(a.name).lastSeenMs;
        QTRY_VERIFY_WITH_TIMEOUT(row(a.name).lastSeenMs > seenAfterKill, 3000);
        QVERIFY(row(a.name).reachable);
        QVERIFY(updates.size() >= 3);
        monitor.stop();
    }

    // Requests and 5xx per second from a real nginx's access log (one host, its two demo
    // workers behind it): every /health answer is a 503 once both workers fail their health,
    // so in the readings that count them errors/s equals requests/s, on the site and on the
    // host that runs the workers.
    void errorRatesFromARealNginx() {
        FleetOptions options;
        options.hosts = 1;
        options.workersPerHost = 2;
        options.sites = 1; // site 0: nginx
        options.demoWorker = QStringLiteral(DEMO_WORKER_PATH);
        FleetFixture fleet(options);
        QString error;
        QVERIFY2(fleet.start(&error), qPrintable(error));
        SshPool pool;
        FleetMonitor monitor;
        PollOptions poll;
        poll.intervalMs = 300;
        monitor.setOptions(poll);
        monitor.setInventory(fleet.hosts(), fleet.sites(), [&](const Host &host) {
            return pool.host(host.name, fleet.sshConfig(host));
        });
        QList<FleetSnapshot> updates;
        connect(&monitor, &FleetMonitor::updated, this,
                [&](const FleetSnapshot &latest) { updates.append(latest); });
        monitor.start();
        const QString siteName = FleetFixture::siteName(0);
        const QString hostName = FleetFixture::hostName(0);
        const auto site = [&] { return monitor.snapshot().site(siteName); };
        QTRY_VERIFY_WITH_TIMEOUT(site() && site()->countsKnown && site()->workersRunning == 2,
                                 15000);
        QCOMPARE(site()->balancerFormat, QStringLiteral("nginx"));
        QCOMPARE(site()->workersTotal, 2);
        QCOMPARE(monitor.snapshot().host(hostName)->workersTotal, 2);

        // Plain requests: counted, no errors.
        updates.clear();
        constexpr int Requests = 8;
        for (int i = 0; i < Requests; ++i)
            QCOMPARE(fleet.get(0).status, 200);
        const auto counted = [&](const FleetSnapshot &snapshot) {
            quint64 sum = 0;
            for (quint64 total : snapshot.site(siteName)->backendRequestsTotal)
                sum += total;
            return sum;
        };
        QTRY_COMPARE_WITH_TIMEOUT(counted(monitor.snapshot()), quint64(Requests), 10000);
        double peak = 0;
        for (const FleetSnapshot &snapshot : std::as_const(updates)) {
            const FleetSiteRow *row = snapshot.site(siteName);
            QCOMPARE(row->errorsPerSecond, 0.0);
            peak = std::max(peak, row->requestsPerSecond);
            // The host runs both workers: it served what the site served.
            QCOMPARE(snapshot.host(hostName)->requestsPerSecond, row->requestsPerSecond);
        }
        QVERIFY2(peak > 0, "no reading showed the requests as a rate");

        // Both workers fail their health: nginx answers /health with a 5xx after trying both.
        for (const Backend &backend : fleet.sites().at(0).backends)
            QVERIFY(post(backend.address, backend.port, "/health/fail"));
        updates.clear();
        constexpr int Failures = 6;
        for (int i = 0; i < Failures; ++i)
            QCOMPARE(fleet.get(0, "/health").status / 100, 5);
        // The first is answered by both workers in turn (counted for the last one tried);
        // once nginx has marked both failed it answers the rest itself ("no live upstreams"),
        // which no backend served.
        const auto errorsShown = [&] {
            for (const FleetSnapshot &snapshot : std::as_const(updates))
                if (snapshot.site(siteName)->errorsPerSecond > 0) return true;
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(errorsShown(), 10000);
        const quint64 failed = counted(monitor.snapshot()) - Requests;
        QVERIFY2(failed >= 1 && failed <= quint64(Failures), qPrintable(QString::number(failed)));
        for (const FleetSnapshot &snapshot : std::as_const(updates)) {
            const FleetSiteRow *row = snapshot.site(siteName);
            QCOMPARE(row->errorsPerSecond, row->requestsPerSecond);
            QCOMPARE(snapshot.host(hostName)->errorsPerSecond, row->errorsPerSecond);
            QCOMPARE(snapshot.errorsPerSecond(), row->errorsPerSecond);
        }
        monitor.stop();
    }
};

QTEST_GUILESS_MAIN(TestFleetMonitor)
#include "tst_fleetmonitor.moc"
