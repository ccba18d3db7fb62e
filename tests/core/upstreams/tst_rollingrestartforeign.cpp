#include "BalancerFixture.h"
#include "BalancerLoad.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

/// A rolling restart of a production site whose workers Corral did not start (a site made
/// with --backends or by import): real corralctl, a real sshd on 127.0.0.23 (this machine),
/// a real nginx and demo workers started by this test, so no pid file of Corral's exists for
/// them. The preflight refuses before touching anything; `--adopt --yes` records them and
/// restarts them under load; a failure mid-run leaves no backend marked down.
class TestRollingRestartForeign : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.23")};
    NginxInstance m_nginx{QStringLiteral("adoptshop")};
    DemoWorkers m_foreign{2}; // the workers "someone else" started
    QTemporaryDir m_home;
    std::unique_ptr<SshSession> m_session;
    Site m_site;
    QString m_remoteHome; // $HOME of the SSH user on the host

    Host remoteHost() const { return m_server.inventoryHost(QStringLiteral("remote")); }
    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }

    CtlRun ctl(QStringList args) const {
        args.append(QStringLiteral("--accept-new"));
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()}.run(args);
    }

    QString workerDirectory() const {
        return m_remoteHome + QStringLiteral("/.local/state/corral/workers/adoptshop");
    }

    QMap<quint16, qint64> corralPids() {
        QMap<quint16, qint64> result;
        auto statuses = RemoteWorkers::status(*m_session, m_site.name, m_site.ports);
        if (!statuses) return result;
        for (const RemoteWorkerStatus &status : statuses.value())
            result.insert(status.port, status.running ? status.pid : 0);
        return result;
    }

    // Both backends answer through nginx (each seen at least once in a few requests).
    bool bothAnswer() {
        const QMap<int, int> spread = spreadOverWorkers(m_nginx.httpPort(), 20);
        return spread.value(m_foreign.port(0)) > 0 && spread.value(m_foreign.port(1)) > 0 &&
               spread.value(0) == 0;
    }

private Q_SLOTS:
    void initTestCase() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        m_session = std::make_unique<SshSession>(m_server.trustedConfig());
        auto home = m_session->exec(QStringLiteral("printf %s \"$HOME\""));
        QVERIFY_RESULT(home);
        m_remoteHome = QString::fromUtf8(home->stdOut);
        QVERIFY(m_remoteHome.startsWith(QLatin1Char('/')));
        // Nothing left from an earlier run of this test.
        QDir(workerDirectory()).removeRecursively();

        QVERIFY2(m_foreign.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        // As 'corralctl site add --backends' or 'import' makes it: backends, no command.
        m_site.name = QStringLiteral("adoptshop");
        m_site.healthPath = QStringLiteral("/health");
        m_site.serverNames = {QStringLiteral("shop.example.com")};
        m_site.workers = 0;
        for (int i = 0; i < m_foreign.count(); ++i) {
            m_site.backends.append(Backend{QStringLiteral("127.0.0.1"), m_foreign.port(i)});
            m_site.ports.append(m_foreign.port(i));
        }
        m_site.balancer = m_nginx.balancer(QStringLiteral("remote"));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        ConfigApplier applier(*m_session);
        const ApplyReport applied =
            applier.apply(m_site, RemoteBalancer::fromSite(*m_site.balancer).value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));
        QVERIFY_RESULT(writeInventory(inventoryPath(), remoteHost(), m_site));
        QVERIFY(bothAnswer());
    }

    void cleanupTestCase() {
        m_nginx.stop();
        if (m_session)
            for (quint16 port : std::as_const(m_site.ports))
                (void)RemoteWorkers::stop(*m_session, m_site.name, port);
        m_foreign.stop();
        QDir(workerDirectory()).removeRecursively();
        m_session.reset();
    }

    // Before any change: every backend is checked, the foreign ones are named with their
    // host, the pid holding the port and its command, and how to adopt them. The balancer's
    // config is byte for byte what it was, and both workers still serve through nginx.
    void preflightRefusesForeignWorkers() {
        const QByteArray config = readFile(m_nginx.siteFile());
        const QByteArray inventory = readFile(inventoryPath());
        const CtlRun run = ctl({QStringLiteral("rolling-restart"), QStringLiteral("adoptshop")});
        QCOMPARE(run.exitCode, 1);
        for (int i = 0; i < m_foreign.count(); ++i) {
            const QString key = m_site.backends.at(i).key();
            QVERIFY2(run.err.contains(key + QStringLiteral(" on remote: port %1 is held by pid %2")
                                                .arg(m_foreign.port(i))
                                                .arg(m_foreign.process(i).processId())),
                     qPrintable(run.err));
            QVERIFY2(run.err.contains(
                         QStringLiteral(DEMO_WORKER_PATH " --port %1").arg(m_foreign.port(i))),
                     qPrintable(run.err));
        }
        // The absolute pid file path on the host, and the way out.
        QVERIFY2(
            run.err.contains(workerDirectory() + QStringLiteral("/%1.pid").arg(m_foreign.port(0))),
            qPrintable(run.err));
        QVERIFY2(run.err.contains(QStringLiteral("corralctl rolling-restart adoptshop --adopt")),
                 qPrintable(run.err));
        QVERIFY2(!run.out.contains(QStringLiteral("drain")), qPrintable(run.out));
        QCOMPARE(readFile(m_nginx.siteFile()), config);
        QVERIFY(!config.contains(" down"));
        QCOMPARE(readFile(inventoryPath()), inventory);
        for (int i = 0; i < m_foreign.count(); ++i)
            QVERIFY(isAlive(m_foreign.process(i).processId()));
        QVERIFY(bothAnswer());
    }

    // --adopt needs a confirmation: without a terminal and without --yes nothing is written.
    void adoptWithoutConfirmationChangesNothing() {
        const QByteArray inventory = readFile(inventoryPath());
        const CtlRun run = ctl({QStringLiteral("rolling-restart"), QStringLiteral("adoptshop"),
                                QStringLiteral("--adopt")});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("--yes")), qPrintable(run.err));
        QCOMPARE(readFile(inventoryPath()), inventory);
        QVERIFY(
            !QFile::exists(workerDirectory() + QStringLiteral("/%1.pid").arg(m_foreign.port(0))));
        for (int i = 0; i < m_foreign.count(); ++i)
            QVERIFY(isAlive(m_foreign.process(i).processId()));
    }

    // Adopted (command recorded from /proc/PID/cmdline with {port}), then restarted one by
    // one: every worker is a new process, and no request through nginx failed meanwhile.
    void adoptThenRestartUnderLoad() {
        const qint64 oldPids[2] = {m_foreign.process(0).processId(),
                                   m_foreign.process(1).processId()};
        BalancerLoad load(m_nginx.httpPort());
        QVERIFY(load.waitFor(20));
        const CtlRun run = ctl({QStringLiteral("rolling-restart"), QStringLiteral("adoptshop"),
                                QStringLiteral("--adopt"), QStringLiteral("--yes")});
        const int atEnd = load.total();
        QVERIFY(load.waitFor(atEnd + 10));
        load.stop();
        QVERIFY2(run.exitCode == 0, qPrintable(run.err + run.out));
        QVERIFY2(run.out.contains(QStringLiteral("adopted")), qPrintable(run.out));
        QVERIFY2(
            run.out.contains(QStringLiteral(DEMO_WORKER_PATH " --port %1").arg(m_foreign.port(0))),
            qPrintable(run.out));
        QVERIFY2(run.out.contains(QStringLiteral("restarted 2 backend(s) of adoptshop")),
                 qPrintable(run.out));

        auto saved = Inventory::load(inventoryPath());
        QVERIFY_RESULT(saved);
        const Site *site = saved->site(QStringLiteral("adoptshop"));
        QVERIFY(site);
        QCOMPARE(site->command, QStringLiteral(DEMO_WORKER_PATH));
        QCOMPARE(site->args, (QStringList{QStringLiteral("--port"), QStringLiteral("{port}")}));
        QCOMPARE(site->backends, m_site.backends);

        const QMap<quint16, qint64> now = corralPids();
        for (int i = 0; i < 2; ++i) {
            const qint64 pid = now.value(m_foreign.port(i));
            QVERIFY2(pid > 0 && pid != oldPids[i],
                     qPrintable(QStringLiteral("port %1: pid %2 (was %3)")
                                    .arg(m_foreign.port(i))
                                    .arg(pid)
                                    .arg(oldPids[i])));
            QVERIFY(!isAlive(oldPids[i]));
        }
        QVERIFY2(load.failed() == 0,
                 qPrintable(QStringLiteral("%1 of %2 requests failed: %3")
                                .arg(load.failed())
                                .arg(load.total())
                                .arg(load.failures().join(QStringLiteral("; ")))));
        qInfo("%d requests during adopt + rolling restart, none failed", load.total());
        QVERIFY(!readFile(m_nginx.siteFile()).contains(" down"));
        QVERIFY(bothAnswer());
        m_site = *site;
    }

    // The second backend's new worker cannot bind (the injected command makes it listen on
    // the first backend's port, which the first backend's new worker holds): the run fails
    // there, yet the installed config marks no backend down, and the message says what
    // state each backend is in.
    void failureMidRunLeavesNoBackendDown() {
        const quint16 first = m_site.backends.at(0).port;
        const quint16 second = m_site.backends.at(1).port;
        Site failing = m_site;
        failing.command = QStringLiteral("/bin/sh");
        failing.args = {QStringLiteral("-c"),
                        QStringLiteral("[ \"$1\" = %1 ] && set -- %2; exec \"$0\" --port \"$1\"")
                            .arg(second)
                            .arg(first),
                        QStringLiteral(DEMO_WORKER_PATH), QStringLiteral("{port}")};
        QVERIFY_RESULT(writeInventory(inventoryPath(), remoteHost(), failing));
        const CtlRun run = ctl({QStringLiteral("rolling-restart"), QStringLiteral("adoptshop"),
                                QStringLiteral("--health-timeout"), QStringLiteral("3")});
        QCOMPARE(run.exitCode, 1);
        const QString secondKey = m_site.backends.at(1).key();
        QVERIFY2(run.err.contains(secondKey + QStringLiteral(": health: ")), qPrintable(run.err));
        QVERIFY2(!run.err.contains(QStringLiteral("stays out of rotation")), qPrintable(run.err));
        QVERIFY2(run.err.contains(secondKey + QStringLiteral(" back in rotation")),
                 qPrintable(run.err));
        QVERIFY2(run.err.contains(m_site.backends.at(0).key() + QStringLiteral(" restarted")),
                 qPrintable(run.err));
        // Absolute log path of the failed worker on the host.
        QVERIFY2(run.err.contains(workerDirectory() + QStringLiteral("/%1.log").arg(second)),
                 qPrintable(run.err));
        const QByteArray config = readFile(m_nginx.siteFile());
        QVERIFY2(!config.contains(" down"), config.constData());
        QVERIFY(config.contains(secondKey.toUtf8()));
        QCOMPARE(httpGet(m_nginx.httpPort()).status, 200);

        // Back to the working command and a worker on the second port (its supervisor is
        // still restarting the failing one: replaced, not started beside it).
        QVERIFY_RESULT(writeInventory(inventoryPath(), remoteHost(), m_site));
        QVERIFY_RESULT(RemoteWorkers::restart(*m_session, m_site, second));
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(*m_session, m_site, second));
    }
};

QTEST_GUILESS_MAIN(TestRollingRestartForeign)
#include "tst_rollingrestartforeign.moc"
