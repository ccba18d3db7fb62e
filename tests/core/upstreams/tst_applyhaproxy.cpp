#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

/// Transactional apply and import against a real HAProxy (master-worker mode, reloaded by
/// SIGUSR2) whose whole config is the file Corral renders, driven over a real sshd on
/// 127.0.0.2 (this machine, as root).
class TestApplyHaproxy : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    HaproxyInstance m_haproxy;
    QTemporaryDir m_home;
    DemoWorkers m_workers{2};

    Site site() const {
        Site site;
        site.name = QStringLiteral("shop");
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.workers = 0;
        site.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)},
                         Backend{QStringLiteral("127.0.0.1"), m_workers.port(1)}};
        site.balancer = m_haproxy.balancer(QStringLiteral("remote"));
        return site;
    }

    RemoteBalancer target() const { return RemoteBalancer::fromSite(*site().balancer).value(); }

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }

    CtlRun ctl(const QStringList &args) const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()}.run(args);
    }

    QMap<int, int> spread(int count) { return spreadOverWorkers(m_haproxy.httpPort(), count); }

private Q_SLOTS:
    void initTestCase() {
        if (!HaproxyInstance::available())
            QSKIP("haproxy or socat is not installed (installer/install-deps.sh installs them)");
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        // HAProxy needs a config to start: the site with its first backend only, so the
        // first apply below has something to change.
        Site first = site();
        first.backends.removeLast();
        QVERIFY2(m_haproxy.start(first, &error), qPrintable(error));
        QCOMPARE(workerPortOf(httpGet(m_haproxy.httpPort())), int(m_workers.port(0)));
    }

    void cleanupTestCase() {
        m_haproxy.stop();
        m_workers.stop();
    }

    // Apply adds the second backend: validated by haproxy -c, reloaded by SIGUSR2 to the
    // master, verified through the frontend; then round robin over both workers.
    void applyReloadsAndBalances() {
        const qint64 master = m_haproxy.masterPid();
        SshSession session(m_server.trustedConfig());
        ConfigApplier applier(session);
        QStringList seen;
        applier.setStepCallback([&](const ApplyStep &step) { seen.append(step.name); });
        const ApplyReport report = applier.apply(site(), target(), false);
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY(report.changed);
        QVERIFY(report.applied);
        QVERIFY(!report.rolledBack);
        QVERIFY2(report.diff.contains(QStringLiteral("+    server 127.0.0.1:%1 127.0.0.1:%1 check")
                                          .arg(m_workers.port(1))),
                 qPrintable(report.diff));
        QCOMPARE(seen, (QStringList{QStringLiteral("read"), QStringLiteral("diff"),
                                    QStringLiteral("upload"), QStringLiteral("backup"),
                                    QStringLiteral("install"), QStringLiteral("validate"),
                                    QStringLiteral("reload"), QStringLiteral("verify"), QStringLiteral("marker")}));
        QCOMPARE(corralLeftovers(m_haproxy.siteFile()), QStringList());
        // The same master process, reloaded rather than restarted.
        QVERIFY(m_haproxy.isRunning());
        QCOMPARE(m_haproxy.masterPid(), master);

        // The new worker process takes every new connection once the reload completed.
        const QDeadlineTimer deadline(10000);
        QMap<int, int> perWorker;
        while (!deadline.hasExpired()) {
            perWorker = spread(20);
            if (perWorker.value(m_workers.port(1)) > 0) break;
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

    // A certificate that does not exist: haproxy -c rejects the file, the backup comes back,
    // and the running config keeps serving.
    void brokenConfigRejectedByValidate() {
        const QByteArray before = readFile(m_haproxy.siteFile());
        QVERIFY(!before.isEmpty());
        QCOMPARE(httpGet(m_haproxy.httpPort()).status, 200);

        SshSession session(m_server.trustedConfig());
        ConfigApplier applier(session);
        RemoteBalancer broken = target();
        broken.renderOptions.tlsCertificate = m_haproxy.prefixPath(QStringLiteral("missing.pem"));
        broken.renderOptions.tlsKey = broken.renderOptions.tlsCertificate;
        broken.renderOptions.httpsPort = freePort();
        const ApplyReport report = applier.apply(site(), broken, false);
        QVERIFY(!report.ok());
        QVERIFY2(report.error.startsWith(QStringLiteral("validate: ")), qPrintable(report.error));
        QVERIFY2(report.error.contains(QStringLiteral("missing.pem")), qPrintable(report.error));
        QVERIFY(report.rolledBack);
        QVERIFY(!report.applied);
        QVERIFY(report.diff.contains(QStringLiteral(" ssl crt ")));
        QCOMPARE(readFile(m_haproxy.siteFile()), before);
        QCOMPARE(corralLeftovers(m_haproxy.siteFile()), QStringList());
        QVERIFY(m_haproxy.isRunning());

        const QMap<int, int> after = spread(4);
        QCOMPARE(after.value(m_workers.port(0)) + after.value(m_workers.port(1)), 4);
    }

    // corralctl import of a hand-written HAProxy file on the host: one site per backend or
    // listen section; the file is untouched.
    void importHandWrittenHaproxy() {
        const QString file = m_haproxy.prefixPath(QStringLiteral("legacy.cfg"));
        const QByteArray text = "# written by hand\n"
                                "global\n    maxconn 100\n\n"
                                "defaults\n    mode http\n\n"
                                "frontend www\n    bind :80\n    default_backend app\n\n"
                                "backend app\n"
                                "    balance leastconn\n"
                                "    server a1 10.0.0.5:8080 check weight 3\n"
                                "    server a2 10.0.0.6:8080 check\n"
                                "    server a3 10.0.0.7:8080 backup\n\n"
                                "listen \"odd name!\"\n"
                                "    bind :8081\n"
                                "    balance source\n"
                                "    server o1 10.0.0.9:80 disabled\n";
        QVERIFY(writeFile(file, text));
        QVERIFY_RESULT(writeInventory(inventoryPath(),
                                      m_server.inventoryHost(QStringLiteral("remote")), site()));

        const CtlRun dry =
            ctl({QStringLiteral("import"), QStringLiteral("remote"), QStringLiteral("--haproxy"),
                 file, QStringLiteral("--dry-run"), QStringLiteral("--accept-new")});
        QVERIFY2(dry.exitCode == 0, qPrintable(dry.err));
        QVERIFY2(dry.out.contains(QStringLiteral("would import site app from \"app\": least-conn")),
                 qPrintable(dry.out));
        QVERIFY(!Inventory::load(inventoryPath())->site(QStringLiteral("app")));

        const CtlRun run = ctl({QStringLiteral("--json"), QStringLiteral("import"),
                                QStringLiteral("remote"), QStringLiteral("--haproxy"), file});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        auto loaded = Inventory::load(inventoryPath());
        QVERIFY_RESULT(loaded);
        const Site *app = loaded->site(QStringLiteral("app"));
        QVERIFY2(app, qPrintable(run.out));
        QCOMPARE(app->policy, BalancingPolicy::LeastConn);
        QCOMPARE(app->backends.size(), 3);
        QCOMPARE(app->backends.at(0).key(), QStringLiteral("10.0.0.5:8080"));
        QCOMPARE(app->backends.at(0).weight, 3);
        QVERIFY(app->backends.at(2).backup);
        const Site *odd = loaded->site(QStringLiteral("odd-name-"));
        QVERIFY2(odd, qPrintable(run.out));
        QCOMPARE(odd->policy, BalancingPolicy::IpHash);
        QVERIFY(odd->backends.at(0).down);
        QVERIFY(loaded->site(QStringLiteral("shop")));
        QCOMPARE(readFile(file), text);

        const CtlRun twice = ctl({QStringLiteral("import"), QStringLiteral("remote"),
                                  QStringLiteral("--haproxy"), file});
        QCOMPARE(twice.exitCode, 1);
        QVERIFY2(twice.err.contains(QStringLiteral("already exists")), qPrintable(twice.err));
        const CtlRun both =
            ctl({QStringLiteral("import"), QStringLiteral("remote"), QStringLiteral("--haproxy"),
                 file, QStringLiteral("--nginx"), file});
        QCOMPARE(both.exitCode, 2);
    }
};

QTEST_GUILESS_MAIN(TestApplyHaproxy)
#include "tst_applyhaproxy.moc"
