#include "BalancerFixture.h"
#include "MonitorWait.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "cluster/RemoteSiteMonitor.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshHost.h"

#include <QProcess>
#include <QSet>
#include <QSignalSpy>
#include <QTest>

#include <algorithm>

using namespace corral;
using namespace corral::test;

/// RemoteSiteMonitor against a real HAProxy (its stats socket read with socat over a real
/// sshd on 127.0.0.7): per-backend counts equal to the requests sent, health states from the
/// balancer host. (The nginx access-log path is covered end to end by tst_remotesite, the
/// Apache one by tst_applyapache.)
class TestRemoteSiteMonitor : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.7")};
    HaproxyInstance m_haproxy{QStringLiteral("shop")};
    DemoWorkers m_workers{2};

    Site site() const {
        Site site;
        site.name = QStringLiteral("shop");
        site.healthPath = QStringLiteral("/health");
        site.workers = 0;
        site.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)},
                         Backend{QStringLiteral("127.0.0.1"), m_workers.port(1)}};
        site.balancer = m_haproxy.balancer(QStringLiteral("remote"));
        return site;
    }

private Q_SLOTS:
    void initTestCase() {
        if (!HaproxyInstance::available())
            QSKIP("haproxy or socat is not installed (installer/install-deps.sh installs them)");
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        QVERIFY2(m_haproxy.start(site(), &error), qPrintable(error));
    }

    void cleanupTestCase() {
        m_haproxy.stop();
        m_workers.stop();
    }

    void supportsKnownBalancersOnly() {
        Site none;
        none.name = QStringLiteral("plain");
        QVERIFY(!RemoteSiteMonitor::supports(none));
        Site other = site();
        other.balancer->format = QStringLiteral("caddy");
        const auto refused = RemoteSiteMonitor::supports(other);
        QVERIFY(!refused);
        QVERIFY2(refused.error().contains(QStringLiteral("\"caddy\"")),
                 qPrintable(refused.error()));
        QVERIFY(RemoteSiteMonitor::supports(site()));
        for (const char *format : {"nginx", "apache"}) {
            Site known = site();
            known.balancer->format = QLatin1String(format);
            QVERIFY2(RemoteSiteMonitor::supports(known), format);
        }
    }

    // Every URL goes through shellQuote: a hostile path stays one argument.
    void healthProbeCommandQuotesUrls() {
        const QString hostile = QStringLiteral("http://127.0.0.1:1/x'; rm -rf /; echo '");
        const QString command = RemoteSiteMonitor::healthProbeCommand({hostile});
        QVERIFY2(command.contains(QLatin1Char(' ') + shellQuote(hostile) + QLatin1Char(' ')),
                 qPrintable(command));
        // A real shell sees the URL as one argument: curl is replaced by printf here.
        QProcess shell;
        shell.start(QStringLiteral("sh"),
                    {QStringLiteral("-c"),
                     QStringLiteral("curl() { printf '%s\\n' \"$@\"; }; ") + command});
        QVERIFY(shell.waitForFinished(10000));
        const QStringList words =
            QString::fromUtf8(shell.readAllStandardOutput()).split(QLatin1Char('\n'));
        QVERIFY2(words.contains(hostile), qPrintable(words.join(QLatin1Char('|'))));
    }

    // The monitor resolves its host by name again when the one it had goes away (the
    // console's inventory reload replaces changed hosts), and says so when it cannot:
    // it never stops silently.
    void monitorOutlivesItsHost() {
        SshPool pool;
        const Host host = m_server.inventoryHost(QStringLiteral("remote"));
        const SshConfig config = m_server.trustedConfig();
        RemoteSiteMonitor monitor(site(), pool.host(host.name, config));
        monitor.setWorkerHosts({host},
                               [&](const Host &known) { return pool.host(known.name, config); });
        QSignalSpy ticked(&monitor, &RemoteSiteMonitor::snapshotReady);
        monitor.start(200);
        QVERIFY(ticked.wait(30000));
        pool.remove(host.name); // mid-tick, as likely as not
        ticked.clear();
        QVERIFY(ticked.wait(5000));
        QTRY_VERIFY_WITH_TIMEOUT(pool.find(host.name), 5000);
        QTRY_COMPARE_WITH_TIMEOUT(monitor.snapshot().running, 2, 5000);

        // No way to get the host back: each tick says why.
        auto *lone = pool.host(QStringLiteral("lone"), config);
        RemoteSiteMonitor orphan(site(), lone);
        QSignalSpy failed(&orphan, &RemoteSiteMonitor::pollFailed);
        QSignalSpy orphanTicked(&orphan, &RemoteSiteMonitor::snapshotReady);
        orphan.start(200);
        QVERIFY(orphanTicked.wait(30000));
        pool.remove(QStringLiteral("lone"));
        failed.clear();
        QVERIFY(failed.wait(5000));
        QVERIFY2(failed.last().value(0).toString().contains(QStringLiteral("remote")),
                 qPrintable(failed.last().value(0).toString()));
    }

    // One SSH login for a host however many ticks and host checks (connectToHost, what the
    // console's periodic check calls) run: each check reuses the live session.
    void oneSessionAcrossTicksAndChecks() {
        QTRY_VERIFY_WITH_TIMEOUT(m_server.connectionPids().isEmpty(), 10000);
        SshConfig config = m_server.trustedConfig();
        config.keepaliveIntervalMs = 300;
        SshHost host(QStringLiteral("remote"), config);
        RemoteSiteMonitor monitor(site(), &host);
        QSignalSpy ticked(&monitor, &RemoteSiteMonitor::snapshotReady);
        QSet<qint64> connections;
        monitor.start(150);
        QVERIFY(ticked.wait(30000));
        for (int check = 0; check < 4; ++check) {
            bool checked = false;
            host.connectToHost(this, [&](Result<void> connected) {
                QVERIFY2(connected.ok(), qPrintable(connected.error()));
                checked = true;
            });
            QTRY_VERIFY_WITH_TIMEOUT(checked, 10000);
            for (int i = 0; i < 2; ++i) {
                QVERIFY(ticked.wait(5000));
                for (qint64 pid : m_server.connectionPids())
                    connections.insert(pid);
            }
        }
        monitor.stop();
        QCOMPARE(connections.size(), 1);
        QVERIFY(host.isOnline());
    }

    void countsAndHealthFromHaproxy() {
        SshHost host(QStringLiteral("remote"), m_server.trustedConfig());
        RemoteSiteMonitor monitor(site(), &host);
        QSignalSpy ticked(&monitor, &RemoteSiteMonitor::snapshotReady);
        QSignalSpy failed(&monitor, &RemoteSiteMonitor::pollFailed);
        monitor.start(200);
        QVERIFY(ticked.wait(30000)); // the first tick primes the counters
        QVERIFY2(failed.isEmpty(), qPrintable(failed.value(0).value(0).toString()));
        QCOMPARE(monitor.snapshot().workers.size(), 2);

        constexpr int Requests = 20;
        QHash<qint64, int> answered;
        for (int i = 0; i < Requests; ++i)
            answered[httpGet(m_haproxy.httpPort()).jsonNumber(QStringLiteral("port"))] += 1;
        QCOMPARE(waitForRequestTotal(monitor, Requests), quint64(Requests));
        for (const WorkerRow &row : monitor.snapshot().workers) {
            QVERIFY(row.inProxy);
            QCOMPARE(row.requestsTotal, quint64(answered.value(row.port)));
            QCOMPARE(row.state, WorkerState::Running);
        }

        // A stopped worker is reported as such from the balancer's host.
        m_workers.stop(0);
        const QDeadlineTimer deadline(15000);
        bool stopped = false;
        while (!stopped && !deadline.hasExpired()) {
            ticked.wait(1000);
            for (const WorkerRow &row : monitor.snapshot().workers)
                if (row.port == m_workers.port(0) && row.state == WorkerState::Stopped)
                    stopped = true;
        }
        QVERIFY(stopped);
        monitor.stop();
        // For the record (not asserted): what one tick costs over SSH.
        QList<qint64> ticks;
        for (int i = 0; i < 20; ++i) {
            monitor.tick();
            if (!ticked.wait(10000)) break;
            ticks.append(monitor.lastTickMs());
        }
        std::sort(ticks.begin(), ticks.end());
        if (!ticks.isEmpty())
            qInfo("one monitor tick (counts, health of 2 backends, worker status): median %lld ms, "
                  "max %lld ms over %lld ticks",
                  ticks.at(ticks.size() / 2), ticks.last(), qlonglong(ticks.size()));
    }
};

QTEST_GUILESS_MAIN(TestRemoteSiteMonitor)
#include "tst_remotesitemonitor.moc"
