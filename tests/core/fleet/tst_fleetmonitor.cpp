// FleetMonitor over real sshd instances on 127.0.0.31 and 127.0.0.32 (tests/helpers/SshServer):
// vitals of each host, a host without an SSH connection, and a host that hangs (its sshd
// stopped with SIGSTOP) or dies (killed) shown unreachable within its timeout while the other
// keeps answering. Sites behind real balancers are covered by the fleet fixture's test.
#include "SshServer.h"
#include "fleet/FleetMonitor.h"
#include "ssh/SshHost.h"
#include "util/ListeningSockets.h"

#include <QElapsedTimer>
#include <QScopeGuard>
#include <QSignalSpy>
#include <QTest>

#include <csignal>

using namespace corral;

namespace {

// SIGSTOP or SIGCONT to sshd and every process below it (its per-connection processes): a
// host that accepts nothing and answers nothing, without closing any connection.
void signalTree(const SshServer &server, int signal) {
    for (qint64 pid : processTree(server.pid()))
        ::kill(pid_t(pid), signal);
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
};

QTEST_GUILESS_MAIN(TestFleetMonitor)
#include "tst_fleetmonitor.moc"
