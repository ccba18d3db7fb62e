#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QDir>
#include <QFile>
#include <QHostAddress>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>

#include <csignal>

#include <pwd.h>
#include <unistd.h>

using namespace corral;

static bool accepts(quint16 port) {
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, port);
    return socket.waitForConnected(200);
}

static uint ownerOf(qint64 pid) {
    QFile status(QStringLiteral("/proc/%1/status").arg(pid));
    if (!status.open(QIODevice::ReadOnly)) return uint(-1);
    for (const QByteArray &line : status.readAll().split('\n'))
        if (line.startsWith("Uid:")) return line.simplified().split(' ').value(1).toUInt();
    return uint(-1);
}

/// Remote workers through the detached-process fallback, as a non-root user on a loopback
/// sshd ("remote" is this machine, so the demo worker binary is the remote program).
class TestRemoteWorkers : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    QString m_user = QStringLiteral("corral-rw-%1").arg(::getpid());
    std::unique_ptr<SshSession> m_session;
    static constexpr const char *needsRoot =
        "needs root: creates a throwaway user account for the remote side";

    Site demoSite(const QString &name) {
        Site site;
        site.name = name;
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        // Not 3000: other tests running in parallel start demo clusters there.
        site.basePort = corral::test::workerBasePort();
        return site;
    }

private Q_SLOTS:
    // Ports held by connections count as taken, not only listeners: a worker could not bind
    // a port that is the local end of an outgoing connection.
    // Adoption records a foreign worker's command with its port as {port}: whole numbers
    // only, never in the program's path.
    // A command line read from a host (/proc/PID/cmdline of any process on the port) is shown
    // with its control characters escaped: a process named with terminal sequences cannot
    // drive the terminal of the user asked to adopt it.
    void hostileCommandLinesAreShownEscaped() {
        const QString title = QStringLiteral("\x1b]0;owned\x07");
        QCOMPARE(shownCommand({QStringLiteral("node"), title}),
                 QStringLiteral("node '\\x1b]0;owned\\x07'"));
        Site site;
        site.name = QStringLiteral("shop");
        QList<BackendCheck> checks;
        for (quint16 port : {3001, 3002}) {
            BackendCheck check;
            check.backend = QStringLiteral("127.0.0.1:%1").arg(port);
            check.host = QStringLiteral("web1");
            check.adoptable = true;
            check.worker.port = port;
            check.worker.listeners = WorkerInspection::Listeners::Some;
            PortHolder holder;
            holder.pid = port;
            holder.argv = {QStringLiteral("node"), port == 3001 ? title : QStringLiteral("b"),
                           QStringLiteral("--port"), QString::number(port)};
            holder.systemdUnit = title + QStringLiteral(".service");
            check.worker.holders = {holder};
            checks.append(check);
        }
        auto plan = RemoteRollingRestart::planAdoption(site, checks);
        QVERIFY2(plan.ok(), qPrintable(plan.error()));
        const QString notes = plan->notes.join(u'\n');
        QVERIFY2(notes.contains(QStringLiteral("command lines differ")), qPrintable(notes));
        QVERIFY2(notes.contains(QStringLiteral("systemd unit")), qPrintable(notes));
        QVERIFY2(!notes.contains(QChar(0x1b)) && !notes.contains(QChar(0x07)), qPrintable(notes));
        // The command itself stays exact; saving it is refused by the site's own checks.
        QCOMPARE(plan->site.args.value(0), title);
        QVERIFY(!plan->site.validate().ok());
    }

    void templateArgumentsMarkPort() {
        bool found = false;
        QCOMPARE(RemoteWorkers::templateArguments(
                     {QStringLiteral("/opt/3001/app"), QStringLiteral("--port"),
                      QStringLiteral("3001"), QStringLiteral("--bind=127.0.0.1:3001"),
                      QStringLiteral("30010"), QStringLiteral("13001")},
                     3001, &found),
                 (QStringList{QStringLiteral("/opt/3001/app"), QStringLiteral("--port"),
                              QStringLiteral("{port}"), QStringLiteral("--bind=127.0.0.1:{port}"),
                              QStringLiteral("30010"), QStringLiteral("13001")}));
        QVERIFY(found);
        RemoteWorkers::templateArguments({QStringLiteral("node"), QStringLiteral("server.js")},
                                         3001, &found);
        QVERIFY(!found);
    }

    // inspectCommand's answer: argv and cwd arrive base64-encoded (any byte may be in them).
    void inspectionParsing() {
        const QByteArray output = "home /home/app\npidfile absent\nlisteners some\n"
                                  "holder 42 1 123456 other\n"
                                  "argv 42 " +
                                  QByteArrayLiteral("node\0server.js\0--port\0"
                                                    "3001\0")
                                      .toBase64() +
                                  "\ncwd 42 " + QByteArray("/srv/my app").toBase64() +
                                  "\nunit 42 " + QByteArray("app.service").toBase64() +
                                  "\nholder 43 42 123460 other\nargv 43 \n";
        auto parsed = RemoteWorkers::parseInspection(output, QStringLiteral("shop"), 3001);
        QVERIFY_RESULT(parsed);
        QCOMPARE(parsed->pidFile,
                 QStringLiteral("/home/app/.local/state/corral/workers/shop/3001.pid"));
        QCOMPARE(parsed->logFile,
                 QStringLiteral("/home/app/.local/state/corral/workers/shop/3001.log"));
        QCOMPARE(parsed->listeners, WorkerInspection::Listeners::Some);
        QVERIFY(!parsed->pidFilePresent);
        QCOMPARE(parsed->holders.size(), 2);
        const PortHolder &root = parsed->holders.first();
        QCOMPARE(root.pid, 42);
        QCOMPARE(root.startTime, QStringLiteral("123456"));
        QCOMPARE(root.argv, (QStringList{QStringLiteral("node"), QStringLiteral("server.js"),
                                         QStringLiteral("--port"), QStringLiteral("3001")}));
        QCOMPARE(root.workingDirectory, QStringLiteral("/srv/my app"));
        QCOMPARE(root.systemdUnit, QStringLiteral("app.service"));
        QCOMPARE(parsed->holders.at(1).parentPid, 42);
        QVERIFY(parsed->holders.at(1).argv.isEmpty());
        // No answer from the script (a shell that died, garbage): an error, not "nothing".
        QVERIFY(!RemoteWorkers::parseInspection("garbage", QStringLiteral("shop"), 3001));
    }

    void portsInUseIncludeConnections() {
        const QByteArray ss = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
                              "LISTEN 0      128          0.0.0.0:22        0.0.0.0:*\n"
                              "ESTAB  0      0          127.0.0.1:41234   127.0.0.1:3000\n"
                              "TIME-WAIT 0   0              [::1]:40001       [::1]:80\n"
                              "LISTEN 0      4096   [::ffff:127.0.0.1]:3001   *:*\n";
        const QSet<quint16> ports = RemoteWorkers::parseListeningPorts(ss);
        QCOMPARE(ports, (QSet<quint16>{22, 41234, 40001, 3001}));
        auto allocated = RemoteWorkers::allocatePorts(ports, 41233, 2);
        QVERIFY(allocated);
        QCOMPARE(allocated.value(), (QList<quint16>{41233, 41235}));
    }

    // The functions above are pure and run as any user; those below log in over the loopback
    // sshd as a throwaway account, which only root can create: each of them is skipped
    // without it (never the whole file).
    void initTestCase() {
        if (::geteuid() != 0) return;
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_server.createUser(m_user, QStringLiteral("unused-%1").arg(::getpid()), &error),
                 qPrintable(error));
        SshConfig config = m_server.trustedConfig(m_user);
        m_session = std::make_unique<SshSession>(config);
        QVERIFY_RESULT(m_session->connect());
    }

    void cleanupTestCase() {
        m_session.reset();
        m_server.removeUser();
    }

    void portAllocationAvoidsListeningPorts() {
        if (!m_session) QSKIP(needsRoot);
        QTcpServer busy;
        QVERIFY(busy.listen(QHostAddress::LocalHost, 0));
        const quint16 taken = busy.serverPort();
        Site site = demoSite(QStringLiteral("ports"));
        site.basePort = taken;
        auto ports = RemoteWorkers::allocatePorts(*m_session, site, 3, {quint16(taken + 1)});
        QVERIFY_RESULT(ports);
        QCOMPARE(ports->size(), 3);
        QVERIFY(!ports->contains(taken));              // listening on the host
        QVERIFY(!ports->contains(quint16(taken + 1))); // reserved by another Corral worker
        for (quint16 port : ports.value())
            QVERIFY(port > taken + 1);

        // Pure part: remembered ports first, and a clear error when the range is exhausted.
        auto remembered = RemoteWorkers::allocatePorts({3000, 3002}, 3000, 2, {3005});
        QVERIFY_RESULT(remembered);
        QCOMPARE(remembered.value(), QList<quint16>({3005, 3001}));
        auto none = RemoteWorkers::allocatePorts({65534, 65535}, 65534, 1);
        QVERIFY(!none);
        QVERIFY2(none.error().contains(QStringLiteral("65534")), qPrintable(none.error()));
    }

    void fallbackStartStatusStop() {
        if (!m_session) QSKIP(needsRoot);
        const Site site = demoSite(QStringLiteral("blog"));
        auto ports = RemoteWorkers::allocatePorts(*m_session, site, 2);
        QVERIFY_RESULT(ports);
        QList<qint64> pids;
        for (quint16 port : ports.value()) {
            auto pid = RemoteWorkers::start(*m_session, site, port);
            QVERIFY_RESULT(pid);
            pids.append(pid.value());
        }
        for (qsizetype i = 0; i < pids.size(); ++i) {
            QTRY_VERIFY_WITH_TIMEOUT(accepts(ports->at(i)), 10000);
            QCOMPARE(ownerOf(pids.at(i)), uint(::getpwnam(qPrintable(m_user))->pw_uid));
            QCOMPARE(::getpgid(pid_t(pids.at(i))), pid_t(pids.at(i))); // own process group
        }
        // The allocator now sees them listening.
        auto next = RemoteWorkers::allocatePorts(*m_session, site, 1);
        QVERIFY_RESULT(next);
        QVERIFY(!ports->contains(next->first()));

        auto status = RemoteWorkers::status(*m_session, site.name, ports.value());
        QVERIFY_RESULT(status);
        QCOMPARE(status->size(), 2);
        QVERIFY(status->at(0).running && status->at(1).running);
        QCOMPARE(status->at(0).pid, pids.at(0));

        // A worker killed behind Corral's back is restarted by the monitor step, on its port.
        QCOMPARE(::kill(pid_t(pids.at(1)), SIGKILL), 0);
        QTRY_VERIFY_WITH_TIMEOUT(!accepts(ports->at(1)), 5000);
        auto restarted = RemoteWorkers::restartStopped(*m_session, site, ports.value());
        QVERIFY_RESULT(restarted);
        QCOMPARE(restarted.value(), QList<quint16>{ports->at(1)});
        QTRY_VERIFY_WITH_TIMEOUT(accepts(ports->at(1)), 10000);
        auto none = RemoteWorkers::restartStopped(*m_session, site, ports.value());
        QVERIFY_RESULT(none);
        QVERIFY(none->isEmpty());

        // Starting a running worker again does not start a second one.
        auto again = RemoteWorkers::start(*m_session, site, ports->first());
        QVERIFY_RESULT(again);
        QCOMPARE(again.value(), pids.first());

        QVERIFY_RESULT(RemoteWorkers::stop(*m_session, site.name, ports->first()));
        QTRY_VERIFY_WITH_TIMEOUT(!accepts(ports->first()), 5000);
        status = RemoteWorkers::status(*m_session, site.name, ports.value());
        QVERIFY_RESULT(status);
        QVERIFY(!status->at(0).running);
        QVERIFY(status->at(1).running);
        QVERIFY(accepts(ports->at(1)));

        // The log file is on the host, under Corral's directory.
        QFile log(m_server.userHome() + QLatin1Char('/') +
                  RemoteWorkers::logPath(site.name, ports->at(1)));
        QVERIFY2(log.open(QIODevice::ReadOnly), qPrintable(log.fileName()));
        QVERIFY(log.readAll().contains("listening on"));

        QVERIFY_RESULT(RemoteWorkers::stop(*m_session, site.name, ports->at(1)));
        QTRY_VERIFY_WITH_TIMEOUT(!accepts(ports->at(1)), 5000);
        // Stopping a stopped worker is fine.
        QVERIFY_RESULT(RemoteWorkers::stop(*m_session, site.name, ports->at(1)));
    }

    void hostileArgumentsArriveLiterally() {
        if (!m_session) QSKIP(needsRoot);
        const QStringList hostile{QStringLiteral("two words"),
                                  QStringLiteral("it's"),
                                  QStringLiteral("$(touch /tmp/corral-pwned-rw)"),
                                  QStringLiteral("`touch /tmp/corral-pwned-rw`"),
                                  QStringLiteral("line1\nline2"),
                                  QStringLiteral("-rf"),
                                  QStringLiteral("\"; rm -rf ~; \""),
                                  QStringLiteral("{port}-in-arg")};
        QFile::remove(QStringLiteral("/tmp/corral-pwned-rw"));
        const QString workDir = m_server.userHome() + QStringLiteral("/dir with 'quotes' $(x)");
        QVERIFY(QDir().mkpath(workDir));
        // Made by root here; the remote user writes into it.
        QVERIFY(QFile::setPermissions(
            workDir, QFileDevice::ReadOther | QFileDevice::WriteOther | QFileDevice::ExeOther |
                         QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));
        Site site;
        site.name = QStringLiteral("hostile");
        site.command = QStringLiteral("/bin/sh");
        // Writes its arguments, NUL-separated, and then the environment value and cwd.
        site.args = {QStringLiteral("-c"),
                     QStringLiteral("printf '%s\\0' \"$@\" \"$HOSTILE\" \"$(pwd)\" > out.bin"),
                     QStringLiteral("sh")};
        site.args += hostile;
        site.workingDirectory = workDir;
        site.environment.insert(QStringLiteral("HOSTILE"), QStringLiteral("$(id) `id` 'q' \"d\""));
        auto pid = RemoteWorkers::start(*m_session, site, 4555);
        QVERIFY_RESULT(pid);
        QFile out(workDir + QStringLiteral("/out.bin"));
        QTRY_VERIFY_WITH_TIMEOUT(out.exists() && out.size() > 0, 5000);
        QTest::qWait(100);
        QVERIFY(out.open(QIODevice::ReadOnly));
        QList<QByteArray> words = out.readAll().split('\0');
        words.removeLast(); // after the final NUL
        QStringList expected = hostile;
        expected.last() = QStringLiteral("4555-in-arg");
        expected += site.environment.value(QStringLiteral("HOSTILE"));
        expected += workDir;
        QStringList actual;
        for (const QByteArray &word : words)
            actual.append(QString::fromUtf8(word));
        QCOMPARE(actual, expected);
        QVERIFY(!QFile::exists(QStringLiteral("/tmp/corral-pwned-rw")));
        QVERIFY_RESULT(RemoteWorkers::stop(*m_session, site.name, 4555));

        // Names that could escape a path or a unit name are refused, not quoted around.
        Site bad = site;
        bad.name = QStringLiteral("../../etc");
        QVERIFY(!RemoteWorkers::startCommand(bad, 4555));
        QVERIFY(!RemoteWorkers::systemdUnit(bad));
        Site badEnv = site;
        badEnv.environment.insert(QStringLiteral("A=B; touch x"), QStringLiteral("v"));
        QVERIFY(!RemoteWorkers::startCommand(badEnv, 4555));
    }

    void systemdTemplateUnit() {
        if (!m_session) QSKIP(needsRoot);
        Site site = demoSite(QStringLiteral("chat"));
        site.args += {QStringLiteral("--print-env"), QStringLiteral("100% $HOME \"quoted\"")};
        site.environment.insert(QStringLiteral("NODE_ENV"), QStringLiteral("production mode"));
        auto unit = RemoteWorkers::systemdUnit(site);
        QVERIFY_RESULT(unit);
        QVERIFY(unit->contains(QStringLiteral("Environment=PORT=%i\n")));
        QVERIFY(unit->contains(QStringLiteral("Restart=always\n")));
        QVERIFY(unit->contains(QStringLiteral("\"--port\" \"%i\"")));
        QVERIFY(unit->contains(QStringLiteral("\"100%% $$HOME \\\"quoted\\\"\"")));
        QVERIFY(unit->contains(QStringLiteral("Environment=\"NODE_ENV=production mode\"")));
        QCOMPARE(RemoteWorkers::unitName(site.name), QStringLiteral("corral-chat@.service"));
        QVERIFY(RemoteWorkers::systemctlCommand(QStringLiteral("restart"), site.name, 3001)
                    .contains(QStringLiteral("corral-chat@3001")));
        QVERIFY(
            RemoteWorkers::installUnitCommand(site.name).contains(QStringLiteral("daemon-reload")));

        auto verified = RemoteWorkers::stageAndVerifyUnit(*m_session, site);
        QVERIFY_RESULT(verified);
        if (!verified.value())
            qInfo("systemd-analyze not on the host: verification skipped");
        else
            qInfo("systemd-analyze verify accepted %s",
                  qPrintable(RemoteWorkers::unitName(site.name)));

        Site broken = site;
        broken.command = QStringLiteral("/nonexistent/corral-worker");
        auto rejected = RemoteWorkers::stageAndVerifyUnit(*m_session, broken);
        if (verified.value()) {
            QVERIFY(!rejected);
            QVERIFY2(rejected.error().contains(QStringLiteral("/nonexistent/corral-worker")),
                     qPrintable(rejected.error()));
        }
        Site relative = site;
        relative.command = QStringLiteral("node");
        QVERIFY(!RemoteWorkers::systemdUnit(relative));
    }
};

QTEST_MAIN(TestRemoteWorkers)
#include "tst_remoteworkers.moc"
