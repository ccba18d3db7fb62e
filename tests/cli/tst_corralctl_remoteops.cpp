#include "AgentFixture.h"
#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/RemoteLogs.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QScopeGuard>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>

#include <csignal>

#include <pwd.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

/// The pids of running programs named `program` (argv[0]'s file name) with `argument` among
/// their arguments: a reader left on the "host" (this machine) is found by its log's path.
QList<qint64> processesRunning(const QString &program, const QString &argument) {
    QList<qint64> found;
    for (const QString &entry : QDir(QStringLiteral("/proc")).entryList(QDir::Dirs)) {
        bool numeric = false;
        const qint64 pid = entry.toLongLong(&numeric);
        if (!numeric) continue;
        QFile cmdline(QStringLiteral("/proc/%1/cmdline").arg(pid));
        if (!cmdline.open(QIODevice::ReadOnly)) continue;
        const QList<QByteArray> argv = cmdline.readAll().split('\0');
        if (argv.isEmpty() || QFileInfo(QString::fromUtf8(argv.first())).fileName() != program)
            continue;
        if (argv.contains(argument.toUtf8())) found.append(pid);
    }
    return found;
}

/// True while `pid` runs (exists and is not a zombie: this machine's init may reap late).
bool isRunning(qint64 pid) {
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly)) return false;
    const QByteArray text = stat.readAll();
    const QByteArray state = text.mid(text.lastIndexOf(')') + 2, 1);
    return !state.isEmpty() && state != "Z" && state != "X";
}

bool appendLines(const QString &path, const QStringList &lines) {
    QFile file(path);
    if (!file.open(QIODevice::Append)) return false;
    for (const QString &line : lines)
        file.write(line.toUtf8() + '\n');
    return true;
}

/// The pid of the demo worker answering on `port`; 0 when nothing answers.
qint64 answeringPid(quint16 port) {
    return httpGet(port, "/", "shop.example.com", 300).jsonNumber(QStringLiteral("pid"));
}

} // namespace

/// Issue 17, production sites: fallback workers supervised on their host (restart with backoff
/// without Corral), `corralctl logs` of a production worker and of the balancer (-n, -f), and
/// `corralctl ps` with one host reachable, one refusing and one that never answers. "remote"
/// is a real sshd on 127.0.0.41 (this machine, as root); "far" one on 127.0.0.42, stopped;
/// "mute" a socket on 127.0.0.43 that accepts and says nothing; the balancer a real nginx.
class TestCorralctlRemoteOps : public QObject {
    Q_OBJECT

    SshServer m_remote{QStringLiteral("127.0.0.41")};
    SshServer m_far{QStringLiteral("127.0.0.42")};
    QTcpServer m_mute;
    NginxInstance m_nginx{QStringLiteral("remoteops")};
    QTemporaryDir m_home;
    std::unique_ptr<SshSession> m_session;
    Site m_site;
    quint16 m_port = 0;
    QList<QPair<QString, quint16>> m_started; // stopped in cleanupTestCase

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }
    Corralctl corralctl() const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()};
    }
    CtlRun ctl(const QStringList &args) const { return corralctl().run(args); }

    static QString rootHome() { return QString::fromLocal8Bit(::getpwnam("root")->pw_dir); }
    static QString workerLog(const QString &site, quint16 port) {
        return rootHome() + QLatin1Char('/') + RemoteWorkers::logPath(site, port);
    }

    Site demoSite(const QString &name) const {
        Site site;
        site.name = name;
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        site.basePort = workerBasePort();
        site.workers = 0;
        return site;
    }

    /// Starts a worker of `site` on a free port of "remote" (the supervisor's pid).
    qint64 startWorker(const Site &site, quint16 &port) {
        auto ports = RemoteWorkers::allocatePorts(*m_session, site, 1);
        if (!ports) return 0;
        port = ports->first();
        auto pid = RemoteWorkers::start(*m_session, site, port);
        if (!pid) return 0;
        m_started.append({site.name, port});
        return pid.value();
    }

private Q_SLOTS:
    void initTestCase() {
        if (::geteuid() != 0) QSKIP("needs root: the sshd fixtures log in as root");
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_remote.start(&error), qPrintable(error));
        QVERIFY2(m_far.start(&error), qPrintable(error));
        m_far.stop(); // a host whose sshd is gone: connection refused
        QVERIFY(m_mute.listen(QHostAddress(QStringLiteral("127.0.0.43")), 0));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        m_session = std::make_unique<SshSession>(m_remote.trustedConfig());
        QVERIFY_RESULT(m_session->connect());

        m_site = demoSite(QStringLiteral("remoteops"));
        QVERIFY(startWorker(m_site, m_port) > 0);
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(*m_session, m_site, m_port));
        m_site.balancer = m_nginx.balancer(QStringLiteral("remote"));
        m_site.backends = {Backend{QStringLiteral("127.0.0.1"), m_port},
                           Backend{QStringLiteral("127.0.0.42"), quint16(m_port + 1)},
                           Backend{QStringLiteral("127.0.0.43"), quint16(m_port + 2)}};
        m_site.ports = {m_port};
        Host mute = m_remote.inventoryHost(QStringLiteral("mute"));
        mute.address = QStringLiteral("127.0.0.43");
        mute.port = m_mute.serverPort();
        Inventory inventory;
        QVERIFY_RESULT(inventory.addHost(m_remote.inventoryHost(QStringLiteral("remote"))));
        QVERIFY_RESULT(inventory.addHost(m_far.inventoryHost(QStringLiteral("far"))));
        QVERIFY_RESULT(inventory.addHost(mute));
        QVERIFY_RESULT(inventory.addSite(m_site));
        QVERIFY_RESULT(inventory.save(inventoryPath()));
        // Trust remote's host key once, as a user does with host test.
        const CtlRun trusted = ctl({QStringLiteral("host"), QStringLiteral("test"),
                                    QStringLiteral("remote"), QStringLiteral("--accept-new")});
        QVERIFY2(trusted.exitCode == 0, qPrintable(trusted.out + trusted.err));
    }

    void cleanupTestCase() {
        if (!m_session) return;
        for (const auto &[site, port] : m_started)
            (void)RemoteWorkers::stop(*m_session, site, port); // best effort
        m_session.reset();
    }

    // A fallback worker killed with SIGKILL (the worker, not its supervisor) answers again
    // within 1 s, restarted on the host while no SSH connection of Corral's is open.
    void killedWorkerIsBackWithinOneSecond() {
        auto status = RemoteWorkers::status(*m_session, m_site.name, {m_port});
        QVERIFY_RESULT(status);
        const qint64 supervisor = status->first().pid;
        QVERIFY(supervisor > 0);
        const qint64 before = answeringPid(m_port);
        QVERIFY(before > 0);
        QVERIFY2(before != supervisor, "the pid file names the supervisor, not the worker");
        QCOMPARE(childProcesses(supervisor), QList<qint64>{before});
        QCOMPARE(::getpgid(pid_t(before)), pid_t(supervisor)); // one process group

        m_session->disconnect();
        QTRY_VERIFY_WITH_TIMEOUT(m_remote.connectionPids().isEmpty(), 5000);
        QElapsedTimer clock;
        clock.start();
        QCOMPARE(::kill(pid_t(before), SIGKILL), 0);
        qint64 after = 0;
        const QDeadlineTimer deadline(1000);
        while (!deadline.hasExpired()) {
            after = answeringPid(m_port);
            if (after > 0 && after != before) break;
            QTest::qWait(10);
        }
        const qint64 recoveredMs = clock.elapsed();
        QVERIFY2(
            after > 0 && after != before,
            qPrintable(
                QStringLiteral("port %1 not answered by a new worker within 1 s").arg(m_port)));
        qInfo("killed worker pid %lld, pid %lld answered %lld ms later", before, after,
              recoveredMs);
        QVERIFY(m_remote.connectionPids().isEmpty()); // nobody from Corral was connected
        QCOMPARE(childProcesses(supervisor), QList<qint64>{after});
        QTRY_VERIFY_WITH_TIMEOUT(readFile(workerLog(m_site.name, m_port))
                                     .contains("corral: worker exited with status 137, "
                                               "restarting in 0.150s"),
                                 5000);
        QVERIFY_RESULT(m_session->connect());
    }

    // A worker that exits at once is restarted with a growing delay, not in a tight loop;
    // stop ends the supervisor and the worker.
    void crashingWorkerBacksOff() {
        const QString counter = m_home.filePath(QStringLiteral("starts"));
        Site crashing;
        crashing.name = QStringLiteral("remoteopscrash");
        crashing.command = QStringLiteral("/bin/sh");
        crashing.args = {QStringLiteral("-c"), QStringLiteral("echo start >>\"$1\"; exit 3"),
                         QStringLiteral("sh"), counter};
        crashing.basePort = workerBasePort();
        quint16 port = 0;
        const qint64 supervisor = startWorker(crashing, port);
        QVERIFY(supervisor > 0);
        QTest::qWait(3000); // the window the restarts are counted over
        const int starts = int(readFile(counter).count("start"));
        // 0, 0.15, 0.45, 1.05, 2.25 s: 5 starts in 3 s; a loop without backoff makes hundreds.
        QVERIFY2(starts >= 4 && starts <= 6, qPrintable(QString::number(starts)));
        const QByteArray log = readFile(workerLog(crashing.name, port));
        qsizetype at = 0;
        for (const char *delay : {"0.150s", "0.300s", "0.600s", "1.200s"}) {
            at = log.indexOf(
                QByteArray("corral: worker exited with status 3, restarting in ").append(delay),
                at);
            QVERIFY2(at >= 0, qPrintable(QString::fromUtf8(log)));
        }
        QElapsedTimer clock;
        clock.start();
        QVERIFY_RESULT(RemoteWorkers::stop(*m_session, crashing.name, port));
        qInfo("%d starts in 3 s; stopped (supervisor in its backoff) in %lld ms", starts,
              clock.elapsed());
        QVERIFY(clock.elapsed() < 3000);
        QVERIFY(!isRunning(supervisor));
        for (qint64 child : childProcesses(supervisor))
            QVERIFY(!isRunning(child));
        const int afterStop = int(readFile(counter).count("start"));
        QTest::qWait(500);
        QCOMPARE(int(readFile(counter).count("start")), afterStop);
    }

    // SshSession::stream: chunks as they come; stopping (callback or cancel flag) closes the
    // channel, which ends a command waiting on its stdin on the host; a command that ends by
    // itself gives its exit status.
    void streamStopsTheRemoteCommand() {
        const QString marker = m_home.filePath(QStringLiteral("stream-marker"));
        QVERIFY(writeFile(marker, QByteArray()));
        const QString command =
            QStringLiteral("sh -c 'echo one; (sleep 0.3; echo two) & exec cat - \"$0\"' ") + marker;
        QByteArray got;
        QList<qint64> running;
        auto stopped = m_session->stream(command, [&](const QByteArray &chunk) {
            got += chunk;
            if (!got.contains("two\n")) return true;
            running = processesRunning(QStringLiteral("cat"), marker);
            return false;
        });
        QVERIFY_RESULT(stopped);
        QCOMPARE(stopped->exitStatus, -1);
        QCOMPARE(got, QByteArray("one\ntwo\n"));
        QCOMPARE(running.size(), 1); // the command ran while it streamed...
        QTRY_VERIFY_WITH_TIMEOUT(processesRunning(QStringLiteral("cat"), marker).isEmpty(),
                                 5000); // ...and ended with the channel

        // The same stopped through the cancel flag, the callback still asking for more.
        std::atomic<bool> cancel{false};
        got.clear();
        running.clear();
        auto cancelled = m_session->stream(
            command,
            [&](const QByteArray &chunk) {
                got += chunk;
                if (got.contains("two\n") && !cancel) {
                    running = processesRunning(QStringLiteral("cat"), marker);
                    cancel = true;
                }
                return true;
            },
            &cancel);
        QVERIFY_RESULT(cancelled);
        QCOMPARE(cancelled->exitStatus, -1);
        QCOMPARE(running.size(), 1);
        QTRY_VERIFY_WITH_TIMEOUT(processesRunning(QStringLiteral("cat"), marker).isEmpty(), 5000);

        QByteArray all;
        auto ended = m_session->stream(QStringLiteral("sh -c 'echo done; echo oops >&2; exit 7'"),
                                       [&](const QByteArray &chunk) {
                                           all += chunk;
                                           return true;
                                       });
        QVERIFY_RESULT(ended);
        QCOMPARE(ended->exitStatus, 7);
        QCOMPARE(all, QByteArray("done\n"));
        QCOMPARE(ended->stdErr.trimmed(), QByteArray("oops"));

        // A deadline: a command that goes on (or a link that stalls) ends the stream as a
        // timeout, the channel closed, the session usable again.
        got.clear();
        QElapsedTimer clock;
        clock.start();
        auto late = m_session->stream(
            command,
            [&](const QByteArray &chunk) {
                got += chunk;
                return true;
            },
            nullptr, 800);
        const qint64 elapsed = clock.elapsed();
        QVERIFY(!late);
        QCOMPARE(m_session->lastFailure(), SshFailure::Timeout);
        QVERIFY2(late.error().contains(QStringLiteral("800 ms")), qPrintable(late.error()));
        QVERIFY2(elapsed >= 800 && elapsed < 3000, qPrintable(QString::number(elapsed)));
        QCOMPARE(got, QByteArray("one\ntwo\n"));
        QTRY_VERIFY_WITH_TIMEOUT(processesRunning(QStringLiteral("cat"), marker).isEmpty(), 5000);
        all.clear();
        QVERIFY_RESULT(
            m_session->stream(QStringLiteral("echo again"), [&](const QByteArray &chunk) {
                all += chunk;
                return true;
            }));
        QCOMPARE(all, QByteArray("again\n"));
    }

    // logs -n 5: exactly the last 5 lines of a fallback worker's log and of the balancer's
    // error log, each prefixed with its source.
    void logsPrintTheLastLines() {
        const QString workerKey = QStringLiteral("127.0.0.1:%1").arg(m_port);
        QStringList written;
        for (int i = 1; i <= 10; ++i)
            written.append(QStringLiteral("worker line %1 $(id) `id` \x1b]0;title\x07").arg(i));
        QVERIFY(appendLines(workerLog(m_site.name, m_port), written));
        const CtlRun worker = ctl({QStringLiteral("logs"), m_site.name, QStringLiteral("--worker"),
                                   workerKey, QStringLiteral("-n"), QStringLiteral("5")});
        QVERIFY2(worker.exitCode == 0, qPrintable(worker.out + worker.err));
        QStringList expected;
        for (int i = 6; i <= 10; ++i)
            expected.append(workerKey + QStringLiteral(" | worker line %1 $(id) `id` "
                                                       "\\x1b]0;title\\x07")
                                            .arg(i));
        QCOMPARE(worker.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts), expected);

        QStringList errors;
        for (int i = 1; i <= 10; ++i)
            errors.append(QStringLiteral("balancer error %1").arg(i));
        QVERIFY(appendLines(m_nginx.errorLog(), errors));
        const CtlRun balancer =
            ctl({QStringLiteral("logs"), m_site.name, QStringLiteral("--worker"),
                 QStringLiteral("balancer"), QStringLiteral("-n5")});
        QVERIFY2(balancer.exitCode == 0, qPrintable(balancer.out + balancer.err));
        expected.clear();
        for (int i = 6; i <= 10; ++i)
            expected.append(QStringLiteral("balancer | balancer error %1").arg(i));
        QCOMPARE(balancer.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts), expected);

        // Every log: the reachable ones printed, the unreachable hosts named, exit 1.
        const CtlRun all =
            ctl({QStringLiteral("logs"), m_site.name, QStringLiteral("-n"), QStringLiteral("2")});
        QCOMPARE(all.exitCode, 1);
        QVERIFY2(all.out.contains(workerKey + QStringLiteral(" | worker line 10")),
                 qPrintable(all.out));
        QVERIFY2(all.out.contains(QStringLiteral("balancer | balancer error 10")),
                 qPrintable(all.out));
        QVERIFY2(all.err.contains(QStringLiteral("127.0.0.42:%1").arg(m_port + 1)) &&
                     all.err.contains(QStringLiteral("far")),
                 qPrintable(all.err));

        const CtlRun unknown = ctl({QStringLiteral("logs"), m_site.name, QStringLiteral("--worker"),
                                    QStringLiteral("127.0.0.1:1")});
        QCOMPARE(unknown.exitCode, 1);
        QVERIFY2(unknown.err.contains(workerKey) &&
                     unknown.err.contains(QStringLiteral("balancer")),
                 qPrintable(unknown.err));
    }

    void logsFollow_data() {
        QTest::addColumn<QString>("worker");
        QTest::addColumn<QString>("path");
        QTest::newRow("fallback worker")
            << QStringLiteral("127.0.0.1:%1").arg(m_port) << workerLog(m_site.name, m_port);
        QTest::newRow("balancer") << QStringLiteral("balancer") << m_nginx.errorLog();
    }

    // logs -f: a line appended on the host shows up; SIGTERM ends corralctl cleanly and leaves
    // no tail of that log running on the host.
    void logsFollow() {
        QFETCH(QString, worker);
        QFETCH(QString, path);
        QVERIFY(processesRunning(QStringLiteral("tail"), path).isEmpty());
        QProcess follower;
        follower.setProcessEnvironment(corralctl().environment());
        follower.start(QStringLiteral(CORRALCTL_PATH),
                       {QStringLiteral("logs"), m_site.name, QStringLiteral("--worker"), worker,
                        QStringLiteral("-f"), QStringLiteral("-n"), QStringLiteral("0")});
        QVERIFY(follower.waitForStarted(5000));
        QList<qint64> tails;
        QTRY_VERIFY_WITH_TIMEOUT(
            !(tails = processesRunning(QStringLiteral("tail"), path)).isEmpty(), 10000);
        const auto killFollower = qScopeGuard([&] {
            if (follower.state() != QProcess::NotRunning) {
                follower.kill();
                follower.waitForFinished(5000);
            }
        });
        // tail -n 0 skips what the file held when it opened it: wait until it has, and write
        // again each second in case the first line came just before.
        QTRY_VERIFY_WITH_TIMEOUT(
            QFileInfo(QStringLiteral("/proc/%1/fd").arg(tails.first())).exists() &&
                [&] {
                    for (const QFileInfo &fd :
                         QDir(QStringLiteral("/proc/%1/fd").arg(tails.first()))
                             .entryInfoList(QDir::System | QDir::Files))
                        if (fd.symLinkTarget() == path) return true;
                    return false;
                }(),
            10000);
        const QString line = QStringLiteral("followed line %1").arg(::getpid());
        QByteArray out;
        const QDeadlineTimer deadline(10000);
        QElapsedTimer sinceWritten;
        while (!out.contains(line.toUtf8()) && !deadline.hasExpired()) {
            if (!sinceWritten.isValid() || sinceWritten.elapsed() > 1000) {
                QVERIFY(appendLines(path, {line}));
                sinceWritten.start();
            }
            follower.waitForReadyRead(100);
            out += follower.readAllStandardOutput();
        }
        QVERIFY2(out.contains((worker + QStringLiteral(" | ") + line).toUtf8()),
                 qPrintable(QString::fromUtf8(out + follower.readAllStandardError())));

        QCOMPARE(::kill(pid_t(follower.processId()), SIGTERM), 0);
        QVERIFY(follower.waitForFinished(5000));
        QCOMPARE(follower.exitStatus(), QProcess::NormalExit);
        QVERIFY2(follower.exitCode() == 0, follower.readAllStandardError().constData());
        QTRY_VERIFY_WITH_TIMEOUT(processesRunning(QStringLiteral("tail"), path).isEmpty(), 5000);
        // An exiting process loses its command line before it turns zombie: the pids are
        // polled too, not read once (CI saw one still running just after the list emptied).
        QTRY_VERIFY_WITH_TIMEOUT(std::none_of(tails.cbegin(), tails.cend(), isRunning), 5000);
    }

    // ps: the production site's rows, the reachable host's worker with its pid, the refused
    // and the silent host's backends unknown with their errors, within the per-host timeout.
    void psShowsEveryHostWithinTheTimeout() {
        auto status = RemoteWorkers::status(*m_session, m_site.name, {m_port});
        QVERIFY_RESULT(status);
        const qint64 supervisor = status->first().pid;
        QElapsedTimer clock;
        clock.start();
        const CtlRun json = ctl({QStringLiteral("ps"), m_site.name, QStringLiteral("--json")});
        const qint64 wallMs = clock.elapsed();
        QVERIFY2(json.exitCode == 0, qPrintable(QStringLiteral("exit %1%2: %3")
                                                    .arg(json.exitCode)
                                                    .arg(json.timedOut ? " (timed out)" : "")
                                                    .arg(json.out + json.err)));
        qInfo("ps with a refusing and a silent host: %lld ms", wallMs);
        QVERIFY2(wallMs < 6000, qPrintable(QString::number(wallMs)));
        const QJsonArray sites = QJsonDocument::fromJson(json.out.toUtf8())
                                     .object()
                                     .value(QStringLiteral("sites"))
                                     .toArray();
        QCOMPARE(sites.size(), 1);
        const QJsonObject site = sites.first().toObject();
        QCOMPARE(site.value(QStringLiteral("name")).toString(), m_site.name);
        QCOMPARE(site.value(QStringLiteral("source")).toString(), QStringLiteral("production"));
        const QJsonArray workers = site.value(QStringLiteral("workers")).toArray();
        QCOMPARE(workers.size(), 3);
        const QJsonObject up = workers.at(0).toObject();
        QCOMPARE(up.value(QStringLiteral("host")).toString(), QStringLiteral("remote"));
        QCOMPARE(up.value(QStringLiteral("port")).toInt(), int(m_port));
        QCOMPARE(up.value(QStringLiteral("pid")).toInteger(), supervisor);
        QCOMPARE(up.value(QStringLiteral("state")).toString(), QStringLiteral("running"));
        QVERIFY(!up.contains(QStringLiteral("error")));
        for (int i : {1, 2}) {
            const QJsonObject down = workers.at(i).toObject();
            const QString host = i == 1 ? QStringLiteral("far") : QStringLiteral("mute");
            QCOMPARE(down.value(QStringLiteral("host")).toString(), host);
            QCOMPARE(down.value(QStringLiteral("reachable")).toBool(true), false);
            QVERIFY2(down.value(QStringLiteral("error"))
                         .toString()
                         .startsWith(QStringLiteral("host %1: ").arg(host)),
                     qPrintable(down.value(QStringLiteral("error")).toString()));
        }

        // Every site: the agent's (none here) and the production one, the same rows.
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        const CtlRun every = ctl({QStringLiteral("ps"), QStringLiteral("--json")});
        QVERIFY2(every.exitCode == 0, qPrintable(every.out + every.err));
        const QJsonArray listed = QJsonDocument::fromJson(every.out.toUtf8())
                                      .object()
                                      .value(QStringLiteral("sites"))
                                      .toArray();
        QCOMPARE(listed.size(), 1);
        QCOMPARE(listed.first().toObject().value(QStringLiteral("workers")).toArray(), workers);

        const CtlRun table = ctl({QStringLiteral("ps"), m_site.name});
        QVERIFY2(table.exitCode == 0, qPrintable(table.out + table.err));
        QVERIFY2(table.out.contains(QStringLiteral("remote")) &&
                     table.out.contains(QString::number(supervisor)) &&
                     table.out.contains(QStringLiteral("unknown")) &&
                     table.out.contains(QStringLiteral("remoteops: host far: ")) &&
                     table.out.contains(QStringLiteral("remoteops: host mute: ")),
                 qPrintable(table.out));
    }
};

QTEST_GUILESS_MAIN(TestCorralctlRemoteOps)
#include "tst_corralctl_remoteops.moc"
