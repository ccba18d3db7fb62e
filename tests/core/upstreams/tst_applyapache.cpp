#include "BalancerFixture.h"
#include "MonitorWait.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "cluster/RemoteSiteMonitor.h"
#include "ssh/SshHost.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/NginxLogFollower.h"

#include <QDeadlineTimer>
#include <QFile>
#include <QSignalSpy>
#include <QTest>

using namespace corral;
using namespace corral::test;

/// Transactional apply against a real Apache httpd (mod_proxy_balancer, reloaded with
/// `apache2 -k graceful`) in a temporary ServerRoot, driven over a real sshd on 127.0.0.10
/// (this machine, as root); and the per-backend request counts the console shows, read from
/// Apache's access log by RemoteSiteMonitor.
class TestApplyApache : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.10")};
    ApacheInstance m_apache{QStringLiteral("shop")};
    DemoWorkers m_workers{2};

    Site site() const {
        Site site;
        site.name = QStringLiteral("shop");
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.healthPath = QStringLiteral("/health");
        site.workers = 0;
        site.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)},
                         Backend{QStringLiteral("127.0.0.1"), m_workers.port(1)}};
        site.balancer = m_apache.balancer(QStringLiteral("remote"));
        return site;
    }

    RemoteBalancer target() const { return RemoteBalancer::fromSite(*site().balancer).value(); }

    QMap<int, int> spread(int count) { return spreadOverWorkers(m_apache.httpPort(), count); }

private Q_SLOTS:
    void initTestCase() {
        if (!ApacheInstance::available())
            QSKIP("apache2 is not installed (installer/install-deps.sh installs it)");
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        QVERIFY2(m_apache.start(&error), qPrintable(error));
        // No site yet: Apache answers itself, no worker does.
        QCOMPARE(workerPortOf(httpGet(m_apache.httpPort())), 0);
    }

    void cleanupTestCase() {
        m_apache.stop();
        m_workers.stop();
    }

    // The first apply creates the site file: validated by apache2 -t, reloaded gracefully
    // (the same parent process), verified through Apache; then both workers answer.
    void applyReloadsAndBalances() {
        const qint64 parent = m_apache.pid();
        SshSession session(m_server.trustedConfig());
        ConfigApplier applier(session);
        QStringList seen;
        applier.setStepCallback([&](const ApplyStep &step) { seen.append(step.name); });
        const ApplyReport report = applier.apply(site(), target(), false);
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY(report.changed);
        QVERIFY(report.applied);
        QVERIFY2(
            report.diff.contains(QStringLiteral("+        BalancerMember \"http://127.0.0.1:%1\"")
                                     .arg(m_workers.port(1))),
            qPrintable(report.diff));
        // No previous file: nothing to back up.
        QCOMPARE(seen, (QStringList{QStringLiteral("read"), QStringLiteral("diff"),
                                    QStringLiteral("upload"), QStringLiteral("install"),
                                    QStringLiteral("validate"), QStringLiteral("reload"),
                                    QStringLiteral("verify"), QStringLiteral("marker")}));
        QVERIFY(QFile::exists(m_apache.siteFile()));
        QCOMPARE(corralLeftovers(m_apache.siteFile()), QStringList());
        QVERIFY(m_apache.isRunning());
        QCOMPARE(m_apache.pid(), parent);

        // Old children may answer a few more requests after a graceful reload.
        const QDeadlineTimer deadline(10000);
        QMap<int, int> perWorker;
        while (!deadline.hasExpired()) {
            perWorker = spread(20);
            if (perWorker.value(m_workers.port(0)) > 0 && perWorker.value(m_workers.port(1)) > 0)
                break;
        }
        QCOMPARE(perWorker.value(m_workers.port(0)) + perWorker.value(m_workers.port(1)), 20);
        QVERIFY2(perWorker.value(m_workers.port(0)) >= 8 && perWorker.value(m_workers.port(1)) >= 8,
                 qPrintable(QStringLiteral("%1/%2")
                                .arg(perWorker.value(m_workers.port(0)))
                                .arg(perWorker.value(m_workers.port(1)))));

        const ApplyReport again = applier.apply(site(), target(), false);
        QVERIFY2(again.ok(), qPrintable(again.error));
        QVERIFY(!again.changed);
    }

    // One backend marked down in the inventory: after the apply no request reaches it.
    void markedDownLeavesRotation() {
        Site down = site();
        down.backends[0].down = true;
        SshSession session(m_server.trustedConfig());
        ConfigApplier applier(session);
        const ApplyReport report = applier.apply(down, target(), false);
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY2(report.diff.contains(QStringLiteral(" status=+D")), qPrintable(report.diff));
        const QDeadlineTimer deadline(10000);
        QMap<int, int> perWorker;
        while (!deadline.hasExpired()) {
            perWorker = spread(10);
            if (perWorker.value(m_workers.port(0)) == 0) break;
        }
        QCOMPARE(perWorker.value(m_workers.port(1)), 10);

        const ApplyReport restored = applier.apply(site(), target(), false);
        QVERIFY2(restored.ok(), qPrintable(restored.error));
    }

    // A certificate that does not exist: apache2 -t rejects the file (before any reload: a
    // graceful restart with a broken config would stop Apache), the backup comes back and
    // the running config keeps serving.
    void brokenConfigRejectedByValidate() {
        const QByteArray before = readFile(m_apache.siteFile());
        QVERIFY(!before.isEmpty());
        QVERIFY(workerPortOf(httpGet(m_apache.httpPort())) > 0);

        SshSession session(m_server.trustedConfig());
        ConfigApplier applier(session);
        RemoteBalancer broken = target();
        broken.renderOptions.tlsCertificate = m_apache.prefixPath(QStringLiteral("missing.pem"));
        broken.renderOptions.tlsKey = m_apache.prefixPath(QStringLiteral("missing.key"));
        const ApplyReport report = applier.apply(site(), broken, false);
        QVERIFY(!report.ok());
        QVERIFY2(report.error.startsWith(QStringLiteral("validate: ")), qPrintable(report.error));
        QVERIFY2(report.error.contains(QStringLiteral("missing.pem")), qPrintable(report.error));
        QVERIFY(report.rolledBack);
        QVERIFY(!report.applied);
        QVERIFY(report.diff.contains(QStringLiteral("SSLEngine on")));
        QCOMPARE(readFile(m_apache.siteFile()), before);
        QCOMPARE(corralLeftovers(m_apache.siteFile()), QStringList());
        QVERIFY(m_apache.isRunning());

        const QMap<int, int> after = spread(4);
        QCOMPARE(after.value(m_workers.port(0)) + after.value(m_workers.port(1)), 4);
    }

    // Apache logs the member that served each request as a URL (BALANCER_WORKER_NAME).
    void upstreamOfApacheLines() {
        QCOMPARE(NginxLogFollower::upstreamOf(
                     "127.0.0.1 - - [02/Dec/2026:00:40:06 +0000] \"GET / HTTP/1.1\" 200 799 "
                     "upstream=http://127.0.0.1:3001 request_time_us=9260"),
                 QStringLiteral("127.0.0.1:3001"));
        QCOMPARE(
            NginxLogFollower::upstreamOf("\"GET /ws HTTP/1.1\" 101 0 upstream=ws://[::1]:3002/ "
                                         "request_time_us=5"),
            QStringLiteral("[::1]:3002"));
        QCOMPARE(NginxLogFollower::upstreamOf("\"GET /a.css HTTP/1.1\" 200 10 upstream=- "
                                              "request_time_us=5"),
                 QString());
    }

    // The console's per-backend counts for an Apache site equal the requests each worker
    // answered.
    void countsFromAccessLog() {
        SshHost host(QStringLiteral("remote"), m_server.trustedConfig());
        QVERIFY_RESULT(RemoteSiteMonitor::supports(site()));
        RemoteSiteMonitor monitor(site(), &host);
        QSignalSpy ticked(&monitor, &RemoteSiteMonitor::snapshotReady);
        QSignalSpy failed(&monitor, &RemoteSiteMonitor::pollFailed);
        monitor.start(200);
        QVERIFY(ticked.wait(30000)); // the first tick finds the end of the log
        QVERIFY2(failed.isEmpty(), qPrintable(failed.value(0).value(0).toString()));
        QCOMPARE(monitor.snapshot().workers.size(), 2);

        constexpr int Requests = 24;
        QHash<qint64, int> answered;
        for (int i = 0; i < Requests; ++i)
            answered[workerPortOf(httpGet(m_apache.httpPort()))] += 1;
        QVERIFY(!answered.contains(0));
        QCOMPARE(waitForRequestTotal(monitor, Requests), quint64(Requests));
        for (const WorkerRow &row : monitor.snapshot().workers) {
            QVERIFY(row.inProxy);
            QCOMPARE(row.requestsTotal, quint64(answered.value(row.port)));
            QCOMPARE(row.state, WorkerState::Running);
        }
        QVERIFY2(failed.isEmpty(), qPrintable(failed.value(0).value(0).toString()));
        monitor.stop();
    }
};

QTEST_GUILESS_MAIN(TestApplyApache)
#include "tst_applyapache.moc"
