#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "util/ListeningSockets.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QRegularExpression>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

/// Faults injected into `corralctl apply` against a real nginx behind a real sshd (issue 14):
/// the SSH connection killed at a marked step, two operations at once, and backups next to a
/// stock-like include. Every check is on what the command said, the file installed on the
/// host and what nginx actually serves.
class TestApplyFaults : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.14")};
    NginxInstance m_nginx;
    QTemporaryDir m_home;
    DemoWorkers m_workers{2};

    /// The remote validate command waits here when "armed": it touches `marked`, then sleeps
    /// before running nginx -t, so a test can act while the step runs on the host.
    QString armFile() const { return m_home.filePath(QStringLiteral("arm")); }
    QString markFile() const { return m_home.filePath(QStringLiteral("marked")); }
    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }

    Site site(const QString &configPath = {}) const {
        Site site;
        site.name = QStringLiteral("shop");
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)},
                         Backend{QStringLiteral("127.0.0.1"), m_workers.port(1)}};
        SiteBalancer balancer = m_nginx.balancer(QStringLiteral("remote"));
        if (!configPath.isEmpty()) balancer.configPath = configPath;
        // A build from before stateDirectory existed refuses the field.
        if (qEnvironmentVariableIsSet("CORRAL_TEST_CORRALCTL")) balancer.stateDirectory.clear();
        // Armed: mark the moment, then hold the step for 4 s; else validate at once.
        balancer.validate =
            QStringList{
                QStringLiteral("sh"), QStringLiteral("-c"),
                QStringLiteral("if [ -e \"$0\" ]; then rm -f \"$0\"; touch \"$1\"; sleep 4; fi; "
                               "shift; exec \"$@\""),
                armFile(), markFile()} +
            m_nginx.validateCommand();
        site.balancer = balancer;
        return site;
    }

    void writeInventory(const Site &site) {
        QVERIFY_RESULT(corral::test::writeInventory(
            inventoryPath(), m_server.inventoryHost(QStringLiteral("remote")), site));
    }

    Corralctl runner() const {
        // CORRAL_TEST_CORRALCTL: run these faults against another build (e.g. an older one).
        return Corralctl{
            qEnvironmentVariable("CORRAL_TEST_CORRALCTL", QStringLiteral(CORRALCTL_PATH)),
            m_home.path(), inventoryPath(), 60000};
    }
    CtlRun ctl(const QStringList &args) const { return runner().run(args); }

    /// corralctl started in the background (the caller waits for it).
    std::unique_ptr<QProcess> startCtl(const QStringList &args) const {
        auto process = std::make_unique<QProcess>();
        process->setProcessEnvironment(runner().environment());
        process->start(runner().program, args);
        process->closeWriteChannel();
        return process;
    }
    static CtlRun finish(QProcess &process) {
        if (!process.waitForFinished(60000)) {
            process.kill();
            process.waitForFinished(5000);
            return CtlRun{-1, {}, {}, true};
        }
        return CtlRun{process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
                      QString::fromUtf8(process.readAllStandardOutput()),
                      QString::fromUtf8(process.readAllStandardError()), false};
    }

    bool waitForMark(int timeoutMs = 20000) const {
        const QDeadlineTimer deadline(timeoutMs);
        while (!QFile::exists(markFile()) && !deadline.hasExpired())
            QThread::msleep(20);
        return QFile::exists(markFile());
    }

    /// The sshd processes serving open connections of our server (not the listener, not the
    /// commands they run), found below the listener's pid while it runs.
    QList<qint64> connectionProcesses() const {
        QList<qint64> found;
        const qint64 listener = m_server.pid();
        if (listener <= 0) return found; // never walk the tree of pid 0: that is everyone's
        for (const qint64 pid : processTree(listener)) {
            if (pid == listener) continue;
            QFile comm(QStringLiteral("/proc/%1/comm").arg(pid));
            if (comm.open(QIODevice::ReadOnly) && comm.readAll().startsWith("sshd"))
                found.append(pid);
        }
        return found;
    }
    /// SIGKILL to `pids`: the connection dies mid-step, the remote command keeps running.
    static int kill(const QList<qint64> &pids) {
        int killed = 0;
        for (const qint64 pid : pids)
            if (::kill(pid_t(pid), SIGKILL) == 0) ++killed;
        return killed;
    }
    int killConnections() { return kill(connectionProcesses()); }

    /// Which worker ports answered `count` requests through nginx.
    QMap<int, int> spread(int count) { return spreadOverWorkers(m_nginx.httpPort(), count); }

    /// Everything in `directory` except "." and "..", hidden files included.
    static QStringList entries(const QString &directory) {
        return QDir(directory).entryList(QDir::Files | QDir::Hidden | QDir::System | QDir::Dirs |
                                             QDir::NoDotAndDotDot,
                                         QDir::Name);
    }

private Q_SLOTS:
    void initTestCase() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
    }

    void cleanupTestCase() {
        m_nginx.stop();
        m_workers.stop();
    }

    void init() {
        QFile::remove(armFile());
        QFile::remove(markFile());
    }

    // Item 3 and 4: the host goes away while validate runs on it (the new file is installed,
    // not loaded). The message must not claim a rollback: the state on the host is unknown,
    // and it names the command that finds out. The re-run must validate, reload and verify
    // that installed file (not say "up to date"), so nginx ends up serving it.
    void hostGoneMidValidateIsUnknownAndRerunConverges() {
        writeInventory(site());
        const CtlRun first =
            ctl({QStringLiteral("apply"), QStringLiteral("shop"), QStringLiteral("--accept-new")});
        QVERIFY2(first.exitCode == 0, qPrintable(first.err + first.out));
        QMap<int, int> perWorker = spread(10);
        QCOMPARE(perWorker.value(m_workers.port(1)), 5);

        Site down = site();
        down.backends[1].down = true;
        writeInventory(down);
        QVERIFY(writeFile(armFile(), {}));
        auto apply = startCtl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(waitForMark(), "validate never ran on the host");
        // The host becomes unreachable: no new connections, the open one dies.
        const QList<qint64> connections = connectionProcesses();
        QVERIFY(!connections.isEmpty());
        m_server.stop();
        QVERIFY(kill(connections) > 0);
        const CtlRun lost = finish(*apply);
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));

        QCOMPARE(lost.exitCode, 1);
        QVERIFY2(!lost.err.contains(QStringLiteral("previous config is serving")),
                 qPrintable(lost.err));
        QVERIFY2(lost.err.contains(QStringLiteral("unknown")), qPrintable(lost.err));
        QVERIFY2(lost.err.contains(QStringLiteral("corralctl apply shop --dry-run")),
                 qPrintable(lost.err));
        // What is true on the host: the new file is installed, the old config runs.
        const QRegularExpression markedDown(
            QStringLiteral("server 127\\.0\\.0\\.1:%1 [^;\n]*down;").arg(m_workers.port(1)));
        QVERIFY(QString::fromUtf8(readFile(m_nginx.siteFile())).contains(markedDown));
        perWorker = spread(10);
        QCOMPARE(perWorker.value(m_workers.port(1)), 5);

        // The dry run says the installed file was never verified live.
        const CtlRun dry =
            ctl({QStringLiteral("apply"), QStringLiteral("shop"), QStringLiteral("--dry-run")});
        QVERIFY2(dry.exitCode == 0, qPrintable(dry.err + dry.out));
        QVERIFY2(dry.out.contains(QStringLiteral("never verified live")), qPrintable(dry.out));

        // The connection that died held the site's lock: it is free again (--no-wait), and
        // the re-run converges although the diff is empty.
        const CtlRun again =
            ctl({QStringLiteral("apply"), QStringLiteral("shop"), QStringLiteral("--no-wait")});
        QVERIFY2(again.exitCode == 0, qPrintable(again.err + again.out));
        QVERIFY2(!again.out.contains(QStringLiteral("up to date")), qPrintable(again.out));
        QVERIFY2(again.out.contains(QStringLiteral("never verified live")), qPrintable(again.out));
        QVERIFY2(again.out.contains(QStringLiteral("ok    reload")), qPrintable(again.out));
        QVERIFY2(again.out.contains(QStringLiteral("ok    verify")), qPrintable(again.out));
        perWorker = spread(10);
        QCOMPARE(perWorker.value(m_workers.port(1)), 0);
        QCOMPARE(perWorker.value(m_workers.port(0)), 10);

        // Now verified: a third run is up to date and reloads nothing.
        const CtlRun third = ctl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(third.exitCode == 0, qPrintable(third.err + third.out));
        QVERIFY2(third.out.contains(QStringLiteral("is up to date")), qPrintable(third.out));
        QVERIFY2(!third.out.contains(QStringLiteral("reload")), qPrintable(third.out));
    }

    // Item 3: only the connection dies (the host stays reachable) while validate runs. Still
    // no rollback over a connection that lost the site's lock: the state is unknown.
    void connectionLostMidValidateIsNotRolledBack() {
        writeInventory(site());
        QVERIFY2(ctl({QStringLiteral("apply"), QStringLiteral("shop")}).exitCode == 0, "setup");
        Site changed = site();
        changed.backends[0].weight = 2;
        writeInventory(changed);
        QVERIFY(writeFile(armFile(), {}));
        auto apply = startCtl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(waitForMark(), "validate never ran on the host");
        QVERIFY(killConnections() > 0);
        const CtlRun lost = finish(*apply);
        QCOMPARE(lost.exitCode, 1);
        QVERIFY2(!lost.err.contains(QStringLiteral("rolled back")), qPrintable(lost.err));
        QVERIFY2(lost.err.contains(QStringLiteral("state of shop on remote is unknown")),
                 qPrintable(lost.err));
        QVERIFY(readFile(m_nginx.siteFile()).contains("weight=2"));
        const CtlRun again = ctl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(again.exitCode == 0, qPrintable(again.err + again.out));
        QVERIFY2(again.out.contains(QStringLiteral("ok    verify")), qPrintable(again.out));
        const QMap<int, int> perWorker = spread(9);
        QCOMPARE(perWorker.value(m_workers.port(0)), 6);
        QCOMPARE(perWorker.value(m_workers.port(1)), 3);
    }

    // Item 3: validate refuses the new file and the rollback's reload fails too. The report
    // must not call that rolled back: the old file is back, but what runs is unknown, and the
    // message names the command that finds out.
    void failedRollbackIsNotCalledRolledBack() {
        writeInventory(site());
        QVERIFY2(ctl({QStringLiteral("apply"), QStringLiteral("shop")}).exitCode == 0, "setup");
        const QByteArray before = readFile(m_nginx.siteFile());
        Site broken = site();
        broken.backends[0].weight = 7;
        broken.balancer->validate = {QStringLiteral("sh"), QStringLiteral("-c"),
                                     QStringLiteral("echo 'nginx: [emerg] refused' >&2; exit 1")};
        broken.balancer->reload = {QStringLiteral("sh"), QStringLiteral("-c"),
                                   QStringLiteral("echo 'reload refused' >&2; exit 1")};
        SshSession session(m_server.trustedConfig());
        ConfigApplier applier(session);
        const ApplyReport report =
            applier.apply(broken, RemoteBalancer::forSite(broken).value(), false);
        QCOMPARE(report.outcome, ApplyOutcome::RollbackFailed);
        QVERIFY(!report.rolledBack);
        QCOMPARE(report.failedStep, QStringLiteral("validate"));
        const QString said =
            describeApply(report, QStringLiteral("shop"), QStringLiteral("remote"));
        QVERIFY2(said.contains(QStringLiteral("rollback failed")), qPrintable(said));
        QVERIFY2(!said.contains(QStringLiteral("rolled back")), qPrintable(said));
        QVERIFY2(said.contains(QStringLiteral("state of shop on remote is unknown")),
                 qPrintable(said));
        QVERIFY2(said.contains(QStringLiteral("corralctl apply shop --dry-run")), qPrintable(said));
        QCOMPARE(readFile(m_nginx.siteFile()), before); // restored; the reload is what failed
        QCOMPARE(spread(4).value(m_workers.port(0)), 2);
    }

    // Item 7: while one apply holds the site (its validate runs), a second with --no-wait
    // fails at once naming the holder, rolling-restart --no-wait too; a third without it
    // waits, says so, and then applies its own content. Nobody reports work it did not do.
    void concurrentOperationsAreSerialised() {
        writeInventory(site());
        QVERIFY2(ctl({QStringLiteral("apply"), QStringLiteral("shop")}).exitCode == 0, "setup");

        Site weighted = site();
        weighted.backends[0].weight = 2;
        writeInventory(weighted);
        QVERIFY(writeFile(armFile(), {}));
        auto holder = startCtl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(waitForMark(), "validate never ran on the host");

        // From "another machine" (a HOME of its own, so not this machine's local lock): the
        // lock on the balancer host refuses it.
        QTemporaryDir otherHome;
        Corralctl elsewhere = runner();
        elsewhere.home = otherHome.path();
        const CtlRun refused =
            elsewhere.run({QStringLiteral("apply"), QStringLiteral("shop"),
                           QStringLiteral("--no-wait"), QStringLiteral("--accept-new")});
        QVERIFY2(refused.err.contains(QStringLiteral("locked on remote")), qPrintable(refused.err));
        QVERIFY2(refused.exitCode == 1, qPrintable(refused.err + refused.out));
        const QString holderPid = QString::number(holder->processId());
        QVERIFY2(refused.err.contains(QStringLiteral("pid ") + holderPid), qPrintable(refused.err));
        QVERIFY2(refused.err.contains(QStringLiteral("corralctl apply shop")),
                 qPrintable(refused.err));
        QVERIFY2(!refused.out.contains(QStringLiteral("applied")), qPrintable(refused.out));

        // From this machine: the local lock refuses it before the host is asked.
        const CtlRun restartRefused = ctl({QStringLiteral("rolling-restart"),
                                           QStringLiteral("shop"), QStringLiteral("--no-wait")});
        QVERIFY2(restartRefused.exitCode == 1, qPrintable(restartRefused.err + restartRefused.out));
        QVERIFY2(restartRefused.err.contains(QStringLiteral("pid ") + holderPid),
                 qPrintable(restartRefused.err));
        QVERIFY2(restartRefused.err.contains(QStringLiteral("on this machine")),
                 qPrintable(restartRefused.err));

        Site heavier = site();
        heavier.backends[0].weight = 4;
        writeInventory(heavier);
        auto waiter = startCtl({QStringLiteral("apply"), QStringLiteral("shop")});

        const CtlRun held = finish(*holder);
        QVERIFY2(held.exitCode == 0, qPrintable(held.err + held.out));
        QVERIFY2(held.out.contains(
                     QStringLiteral("+    server 127.0.0.1:%1 weight=2").arg(m_workers.port(0))),
                 qPrintable(held.out));
        const CtlRun waited = finish(*waiter);
        QVERIFY2(waited.exitCode == 0, qPrintable(waited.err + waited.out));
        QVERIFY2(waited.err.contains(QStringLiteral("waiting")), qPrintable(waited.err));
        QVERIFY2(waited.err.contains(QStringLiteral("pid ") + holderPid), qPrintable(waited.err));
        // The waiter diffed against what the holder installed: weight 2 -> 4.
        QVERIFY2(waited.out.contains(
                     QStringLiteral("-    server 127.0.0.1:%1 weight=2").arg(m_workers.port(0))),
                 qPrintable(waited.out));
        QVERIFY2(waited.out.contains(QStringLiteral("applied shop")), qPrintable(waited.out));
        QVERIFY(readFile(m_nginx.siteFile()).contains("weight=4"));
        const QMap<int, int> perWorker = spread(10);
        QCOMPARE(perWorker.value(m_workers.port(0)), 8);
        QCOMPARE(perWorker.value(m_workers.port(1)), 2);
    }

    // Item 9: Debian's nginx.conf includes sites-enabled/* (every file, no suffix). Apply
    // twice (the second one backs the first up): nothing Corral leaves behind is included,
    // so validation passes and nginx -t stays clean.
    void backupsAreNotIncludedByStockGlob() {
        const QString sitesEnabled = m_nginx.prefixPath(QStringLiteral("sites-enabled"));
        QVERIFY(QDir().mkpath(sitesEnabled));
        const QString siteFile = sitesEnabled + QStringLiteral("/shop");
        QFile::remove(m_nginx.siteFile());
        QByteArray main = readFile(m_nginx.mainConfig());
        main.replace(QStringLiteral("include %1/conf.d/*.conf;").arg(m_nginx.directory()).toUtf8(),
                     QStringLiteral("include %1/conf.d/*.conf;\n  include %1/sites-enabled/*;")
                         .arg(m_nginx.directory())
                         .toUtf8());
        QVERIFY(main.contains("sites-enabled/*;"));
        QVERIFY(writeFile(m_nginx.mainConfig(), main));

        writeInventory(site(siteFile));
        const CtlRun first = ctl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(first.exitCode == 0, qPrintable(first.err + first.out));
        Site changed = site(siteFile);
        changed.backends[1].weight = 3;
        writeInventory(changed);
        const CtlRun second = ctl({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(second.exitCode == 0, qPrintable(second.err + second.out));
        QCOMPARE(entries(sitesEnabled), QStringList{QStringLiteral("shop")});
        QVERIFY(readFile(siteFile).contains("weight=3"));

        QVERIFY_RESULT(m_nginx.validate());
        const QMap<int, int> perWorker = spread(8);
        QCOMPARE(perWorker.value(m_workers.port(1)), 6);

        // An apply cut off between upload and install leaves its hidden temporary file: the
        // stock globs (nginx `*`, Apache `*.conf`) skip it. Garbage in it proves it.
        const QString leftover = ConfigApplier::temporaryPath(siteFile, QStringLiteral("cut"));
        QVERIFY(writeFile(leftover, "this is not nginx syntax {\n"));
        QVERIFY_RESULT(m_nginx.validate());
        QFile::remove(leftover);

        if (!ApacheInstance::available()) QSKIP("apache2 is not installed: its half not checked");
        ApacheInstance apache;
        QString error;
        QVERIFY2(apache.start(&error), qPrintable(error));
        const QString apacheLeftover =
            ConfigApplier::temporaryPath(apache.siteFile(), QStringLiteral("cut"));
        QVERIFY(writeFile(apacheLeftover, "this is not Apache syntax\n"));
        QVERIFY_RESULT(apache.validate());
    }

    // Item 9: the default state directory is /var/lib/corral/SITE; an SSH user who cannot
    // write there gets ~/.local/state/corral/balancer/SITE, and the apply says so. A
    // configured stateDirectory that cannot be written is an error naming it.
    void stateDirectoryFallsBackWhenNotWritable() {
        if (::geteuid() != 0) QSKIP("needs root: creates a throwaway user account");
        const QString user = QStringLiteral("corralst%1").arg(::getpid() % 100000);
        QString error;
        QVERIFY2(m_server.createUser(user, QStringLiteral("unused-%1").arg(::getpid()), &error),
                 qPrintable(error));
        const auto removeUser = qScopeGuard([&] { m_server.removeUser(); });
        SshSession session(m_server.trustedConfig(user));
        RemoteBalancer target;
        target.site = QStringLiteral("shop");
        target.configPath = QStringLiteral("/etc/nginx/sites-enabled/shop");
        auto state = prepareStateDirectory(session, target, true);
        QVERIFY_RESULT(state);
        QCOMPARE(state->path,
                 m_server.userHome() + QStringLiteral("/.local/state/corral/balancer/shop"));
        QVERIFY(QFileInfo(state->path).isDir());
        QVERIFY2(
            state->note.contains(QStringLiteral("/var/lib/corral/shop is not writable by ") + user),
            qPrintable(state->note));

        target.stateDirectory = QStringLiteral("/var/lib/corral-test-%1").arg(::getpid());
        auto refused = prepareStateDirectory(session, target, true);
        QVERIFY(!refused);
        QVERIFY2(refused.error().contains(target.stateDirectory), qPrintable(refused.error()));
    }
};

QTEST_GUILESS_MAIN(TestApplyFaults)
#include "tst_applyfaults.moc"
