// corralctl's agent commands (start, stop, restart, scale, ps, logs, agent) against the real
// corral-agent and real demo workers: the agent is started on demand by corralctl, in a
// private XDG_RUNTIME_DIR and XDG_STATE_HOME so it never meets the user's own agent, and is
// stopped (by `corralctl agent stop`, else by PID) at the end.

#include "helpers/CorralctlRunner.h"
#include "helpers/TestProcess.h"
#include "loadgen/LoadGenerator.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <sys/stat.h>

using corral::test::Corralctl;
using corral::test::CtlRun;
using corral::test::isAlive;

namespace {

QJsonObject parseObject(const QString &text) {
    return QJsonDocument::fromJson(text.toUtf8()).object();
}

ino_t inodeOf(const QString &path) {
    struct stat info {};
    return ::stat(QFile::encodeName(path).constData(), &info) == 0 ? info.st_ino : 0;
}

} // namespace

class TestCorralctlAgent : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    Corralctl m_ctl;
    QString m_runtimeDir;
    quint16 m_webBase = 0;
    quint16 m_webListen = 0;
    QSet<qint64> m_agentPids; ///< every agent seen, killed at the end if still alive
    QSet<qint64> m_workerPids;

    CtlRun ctl(const QStringList &args) { return m_ctl.run(args); }

    /// `corralctl ps --json`'s entry for `site`; empty when not listed.
    QJsonObject psSite(const QString &site) {
        const CtlRun run = ctl({QStringLiteral("ps"), QStringLiteral("--json")});
        if (run.exitCode != 0) {
            qWarning("ps failed: %s", qPrintable(run.err));
            return {};
        }
        for (const QJsonValue &value :
             parseObject(run.out).value(QStringLiteral("sites")).toArray())
            if (value.toObject().value(QStringLiteral("name")).toString() == site)
                return value.toObject();
        return {};
    }

    /// port -> pid of a site's workers as ps lists them.
    QMap<quint16, qint64> workerPids(const QJsonObject &site) {
        QMap<quint16, qint64> pids;
        for (const QJsonValue &value : site.value(QStringLiteral("workers")).toArray()) {
            const QJsonObject worker = value.toObject();
            const qint64 pid = worker.value(QStringLiteral("pid")).toInteger();
            pids.insert(quint16(worker.value(QStringLiteral("port")).toInt()), pid);
            m_workerPids.insert(pid);
        }
        return pids;
    }

    bool allRunning(const QJsonObject &site, int count) {
        const QJsonArray workers = site.value(QStringLiteral("workers")).toArray();
        if (site.value(QStringLiteral("state")).toString() != QLatin1String("running") ||
            workers.size() != count)
            return false;
        for (const QJsonValue &worker : workers)
            if (worker.toObject().value(QStringLiteral("state")).toString() !=
                QLatin1String("running"))
                return false;
        return true;
    }

    qint64 agentPid() {
        const CtlRun run =
            ctl({QStringLiteral("agent"), QStringLiteral("status"), QStringLiteral("--json")});
        const qint64 pid = parseObject(run.out).value(QStringLiteral("pid")).toInteger();
        if (pid > 0) m_agentPids.insert(pid);
        return pid;
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        m_runtimeDir = m_dir.filePath(QStringLiteral("run"));
        QVERIFY(QDir().mkpath(m_runtimeDir));
        QVERIFY(QFile::setPermissions(m_runtimeDir, QFileDevice::ReadOwner |
                                                        QFileDevice::WriteOwner |
                                                        QFileDevice::ExeOwner));
        // corralctl and the agent it starts inherit these (CorralctlRunner copies the
        // environment of this process).
        qputenv("XDG_RUNTIME_DIR", m_runtimeDir.toLocal8Bit());
        qputenv("XDG_STATE_HOME", m_dir.filePath(QStringLiteral("state")).toLocal8Bit());
        qputenv("CORRAL_AGENT_PROGRAM", AGENT_PATH);
        // Small logs, so that a chatty worker's log rotates every second or so.
        qputenv("CORRAL_LOG_MAX_BYTES", "4096");
        m_ctl.program = QStringLiteral(CORRALCTL_PATH);
        m_ctl.home = m_dir.filePath(QStringLiteral("home"));
        m_ctl.inventory = m_dir.filePath(QStringLiteral("inventory.json"));
        m_ctl.timeoutMs = 90000;
        m_webBase = corral::test::workerBasePort();
        m_webListen = corral::test::freePort();
        QVERIFY(m_webBase > 0 && m_webListen > 0);
    }

    void cleanupTestCase() {
        ctl({QStringLiteral("agent"), QStringLiteral("stop")});
        for (qint64 pid : std::as_const(m_agentPids))
            if (isAlive(pid)) ::kill(pid_t(pid), SIGKILL);
        for (qint64 pid : std::as_const(m_workerPids))
            if (isAlive(pid)) ::kill(pid_t(pid), SIGKILL);
    }

    // A malformed command line is exit 2, before any agent is asked.
    void malformedCommandLinesExitTwo() {
        for (const QStringList &args :
             {QStringList{QStringLiteral("scale"), QStringLiteral("web")},
              QStringList{QStringLiteral("start")},
              QStringList{QStringLiteral("start"), QStringLiteral("web"), QStringLiteral("--demo"),
                          QStringLiteral("--"), QStringLiteral("/bin/true")},
              QStringList{QStringLiteral("logs")},
              QStringList{QStringLiteral("logs"), QStringLiteral("web"), QStringLiteral("-x")},
              QStringList{QStringLiteral("ps"), QStringLiteral("--bogus")},
              QStringList{QStringLiteral("agent"), QStringLiteral("restart")},
              QStringList{QStringLiteral("restart")}}) {
            const CtlRun run = ctl(args);
            QVERIFY2(run.exitCode == 2,
                     qPrintable(args.join(QLatin1Char(' ')) + QStringLiteral(": ") + run.err));
            QVERIFY2(run.err.contains(QStringLiteral("corralctl help")), qPrintable(run.err));
        }
        QVERIFY(!QFile::exists(m_runtimeDir + QStringLiteral("/corral/agent.sock")));
    }

    // No agent answers and none can be started: every command says so, naming the socket.
    void unreachableAgentIsNamedBySocket() {
        const QString otherRuntime = m_dir.filePath(QStringLiteral("other-run"));
        QVERIFY(QDir().mkpath(otherRuntime));
        QVERIFY(QFile::setPermissions(otherRuntime, QFileDevice::ReadOwner |
                                                        QFileDevice::WriteOwner |
                                                        QFileDevice::ExeOwner));
        qputenv("XDG_RUNTIME_DIR", otherRuntime.toLocal8Bit());
        qputenv("CORRAL_AGENT_PROGRAM", "/nonexistent/corral-agent");
        const QString socket = otherRuntime + QStringLiteral("/corral/agent.sock");
        for (const QStringList &args :
             {QStringList{QStringLiteral("ps")},
              QStringList{QStringLiteral("start"), QStringLiteral("x"), QStringLiteral("--demo")},
              QStringList{QStringLiteral("stop"), QStringLiteral("x")},
              QStringList{QStringLiteral("restart"), QStringLiteral("x")},
              QStringList{QStringLiteral("scale"), QStringLiteral("x"), QStringLiteral("+1")},
              QStringList{QStringLiteral("logs"), QStringLiteral("x")},
              QStringList{QStringLiteral("agent"), QStringLiteral("start")},
              QStringList{QStringLiteral("agent"), QStringLiteral("status")}}) {
            const CtlRun run = ctl(args);
            QVERIFY2(run.exitCode == 1,
                     qPrintable(args.join(QLatin1Char(' ')) + QStringLiteral(": ") + run.err));
            QVERIFY2(run.err.contains(socket), qPrintable(run.err));
        }
        qputenv("XDG_RUNTIME_DIR", m_runtimeDir.toLocal8Bit());
        qputenv("CORRAL_AGENT_PROGRAM", AGENT_PATH);
        // `start x` saved what it was given, as it should; forget it for the rest.
        QFile::remove(m_ctl.inventory);
    }

    // agent status neither finds nor starts an agent when none runs.
    void agentStatusStartsNoAgent() {
        const CtlRun run = ctl({QStringLiteral("agent"), QStringLiteral("status")});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(m_runtimeDir + QStringLiteral("/corral/agent.sock")),
                 qPrintable(run.err));
        QVERIFY(!QFile::exists(m_runtimeDir + QStringLiteral("/corral/agent.sock")));
    }

    void startIsListedByPs() {
        const CtlRun run =
            ctl({QStringLiteral("start"), QStringLiteral("web"), QStringLiteral("--demo"),
                 QStringLiteral("--workers"), QStringLiteral("2"), QStringLiteral("--base-port"),
                 QString::number(m_webBase), QStringLiteral("--listen"),
                 QStringLiteral("127.0.0.1:%1").arg(m_webListen), QStringLiteral("--json")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const QJsonObject status = parseObject(run.out).value(QStringLiteral("status")).toObject();
        QCOMPARE(status.value(QStringLiteral("workers")).toArray().size(), 2);
        QVERIFY(agentPid() > 0);

        const QJsonObject web = psSite(QStringLiteral("web"));
        QVERIFY2(allRunning(web, 2), qPrintable(QJsonDocument(web).toJson()));
        QCOMPARE(web.value(QStringLiteral("source")).toString(), QStringLiteral("agent"));
        QCOMPARE(web.value(QStringLiteral("listen")).toString(),
                 QStringLiteral("127.0.0.1:%1").arg(m_webListen));
        for (const auto &[port, pid] : workerPids(web).asKeyValueRange()) {
            QVERIFY2(isAlive(pid), qPrintable(QString::number(pid)));
            QVERIFY(port >= m_webBase);
        }
        // What was given is saved.
        QFile inventory(m_ctl.inventory);
        QVERIFY(inventory.open(QIODevice::ReadOnly));
        const QJsonArray sites = QJsonDocument::fromJson(inventory.readAll())
                                     .object()
                                     .value(QStringLiteral("sites"))
                                     .toArray();
        QCOMPARE(sites.size(), 1);
        QCOMPARE(sites.first().toObject().value(QStringLiteral("listen")).toString(),
                 QStringLiteral("127.0.0.1:%1").arg(m_webListen));

        // The text table has one row per worker with its port and pid.
        const CtlRun table = ctl({QStringLiteral("ps")});
        QCOMPARE(table.exitCode, 0);
        QVERIFY2(table.out.contains(QStringLiteral("RESTARTS")), qPrintable(table.out));
        for (const auto &[port, pid] : workerPids(web).asKeyValueRange())
            QVERIFY2(table.out.contains(QRegularExpression(
                         QStringLiteral("web +local +%1 +%2 +running").arg(port).arg(pid))),
                     qPrintable(table.out));
    }

    // ps --watch redraws in place (clear, home) once a second until Ctrl-C, then exits 0.
    void psWatchRedrawsUntilInterrupted() {
        QProcess watch;
        watch.setProcessEnvironment(m_ctl.environment());
        watch.start(m_ctl.program, {QStringLiteral("ps"), QStringLiteral("--watch")});
        QVERIFY(watch.waitForStarted());
        QByteArray output;
        QElapsedTimer clock;
        clock.start();
        while (output.count("\x1b[H\x1b[2J") < 3 && clock.elapsed() < 10000) {
            watch.waitForReadyRead(100);
            output += watch.readAllStandardOutput();
        }
        QVERIFY2(output.count("\x1b[H\x1b[2J") >= 3, output.constData());
        QVERIFY(output.contains("web"));
        ::kill(pid_t(watch.processId()), SIGINT);
        QVERIFY(watch.waitForFinished(5000));
        QCOMPARE(watch.exitStatus(), QProcess::NormalExit);
        QCOMPARE(watch.exitCode(), 0);
        // Two frames a second apart, not a busy loop.
        QVERIFY(clock.elapsed() >= 1500);

        // agent start with an agent running: says which one, starts none.
        const qint64 agent = agentPid();
        const CtlRun start = ctl({QStringLiteral("agent"), QStringLiteral("start")});
        QCOMPARE(start.exitCode, 0);
        QVERIFY2(start.out.contains(QStringLiteral("already running: pid %1").arg(agent)),
                 qPrintable(start.out));
        QVERIFY2(start.out.contains(m_runtimeDir + QStringLiteral("/corral/agent.sock")),
                 qPrintable(start.out));
    }

    void scaleChangesPs() {
        CtlRun run = ctl({QStringLiteral("scale"), QStringLiteral("web"), QStringLiteral("+1")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        QVERIFY(allRunning(psSite(QStringLiteral("web")), 3));
        run = ctl({QStringLiteral("scale"), QStringLiteral("web"), QStringLiteral("-1")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const QJsonObject web = psSite(QStringLiteral("web"));
        QVERIFY(allRunning(web, 2));
        // The highest port went.
        QCOMPARE(workerPids(web).lastKey(), quint16(workerPids(web).firstKey() + 1));

        // Below one worker only when asked for.
        run = ctl({QStringLiteral("scale"), QStringLiteral("web"), QStringLiteral("-2")});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("--allow-zero")), qPrintable(run.err));
        QVERIFY(allRunning(psSite(QStringLiteral("web")), 2));
    }

    void restartUnderLoadLosesNoRequest() {
        const QMap<quint16, qint64> before = workerPids(psSite(QStringLiteral("web")));
        QCOMPARE(before.size(), 2);
        corral::LoadGenerator load;
        load.setTarget(QStringLiteral("127.0.0.1"), m_webListen);
        load.setRate(400);
        load.setConnections(4);
        load.start();
        QTRY_VERIFY_WITH_TIMEOUT(load.stats().ok > 100, 10000);

        const quint64 okAtRestartStart = load.stats().ok;
        const CtlRun run = ctl({QStringLiteral("restart"), QStringLiteral("web")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const quint64 okAtRestartEnd = load.stats().ok;
        // Served while the workers were being replaced, not only around it.
        QVERIFY(okAtRestartEnd > okAtRestartStart);
        QTRY_VERIFY_WITH_TIMEOUT(load.stats().ok > okAtRestartEnd + 100, 10000);
        load.stop();
        const corral::LoadStats stats = load.stats();
        qInfo("restart under load: %llu requests (%llu during the restart), %llu failed",
              stats.sent, okAtRestartEnd - okAtRestartStart, stats.failed);
        QCOMPARE(stats.failed, quint64(0));

        const QMap<quint16, qint64> after = workerPids(psSite(QStringLiteral("web")));
        QCOMPARE(after.keys(), before.keys());
        for (const auto &[port, pid] : after.asKeyValueRange()) {
            QVERIFY2(pid != before.value(port), qPrintable(QString::number(port)));
            QVERIFY(!isAlive(before.value(port)));
        }

        // One worker, drained first: only its pid changes.
        const quint16 first = after.firstKey();
        const CtlRun one = ctl({QStringLiteral("restart"), QStringLiteral("web"),
                                QStringLiteral("--worker"), QString::number(first)});
        QVERIFY2(one.exitCode == 0, qPrintable(one.err));
        const QMap<quint16, qint64> afterOne = workerPids(psSite(QStringLiteral("web")));
        QVERIFY(afterOne.value(first) != after.value(first));
        QCOMPARE(afterOne.value(after.lastKey()), after.value(after.lastKey()));
    }

    void logsPrintsLastLinesWithPorts() {
        const QMap<quint16, qint64> pids = workerPids(psSite(QStringLiteral("web")));
        const CtlRun run = ctl({QStringLiteral("logs"), QStringLiteral("web"), QStringLiteral("-n"),
                                QStringLiteral("5")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const QStringList lines = run.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 5);
        static const QRegularExpression prefixed(QStringLiteral("^ *([0-9]+) \\| "));
        QSet<quint16> seen;
        for (const QString &line : lines) {
            const QRegularExpressionMatch match = prefixed.match(line);
            QVERIFY2(match.hasMatch(), qPrintable(line));
            seen.insert(quint16(match.captured(1).toUInt()));
            QVERIFY2(pids.contains(quint16(match.captured(1).toUInt())), qPrintable(line));
        }
        // The last thing that happened: the restarted worker became ready.
        QVERIFY2(lines.last().contains(QStringLiteral("-> running")), qPrintable(run.out));

        // One worker's, as JSON lines.
        const quint16 port = pids.lastKey();
        const CtlRun json =
            ctl({QStringLiteral("logs"), QStringLiteral("web"), QStringLiteral("--worker"),
                 QString::number(port), QStringLiteral("-n3"), QStringLiteral("--json")});
        QVERIFY2(json.exitCode == 0, qPrintable(json.err));
        const QStringList jsonLines = json.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(jsonLines.size(), 3);
        for (const QString &line : jsonLines)
            QCOMPARE(parseObject(line).value(QStringLiteral("port")).toInt(), int(port));

        const CtlRun unknown = ctl({QStringLiteral("logs"), QStringLiteral("web"),
                                    QStringLiteral("--worker"), QStringLiteral("1")});
        QCOMPARE(unknown.exitCode, 1);
        QVERIFY2(unknown.err.contains(QString::number(port)), qPrintable(unknown.err));

        // Issue 19: the site's access log (its proxy's, beside the workers' logs), once the
        // writer flushed the request (every 100 ms).
        QProcess curl;
        curl.start(QStringLiteral("curl"),
                   {QStringLiteral("-s"), QStringLiteral("-o"), QStringLiteral("/dev/null"),
                    QStringLiteral("--max-time"), QStringLiteral("10"),
                    QStringLiteral("http://127.0.0.1:%1/?from=logs-access").arg(m_webListen)});
        QVERIFY(curl.waitForFinished(15000));
        CtlRun access;
        QTRY_VERIFY2_WITH_TIMEOUT(
            (access = ctl({QStringLiteral("logs"), QStringLiteral("web"),
                           QStringLiteral("--access"), QStringLiteral("-n"), QStringLiteral("1")}))
                .out.contains(QStringLiteral("\"GET /?from=logs-access HTTP/1.1\" 200")),
            qPrintable(access.out + access.err), 10000);
        QVERIFY2(access.out.startsWith(QStringLiteral("access | 127.0.0.1 - - [")),
                 qPrintable(access.out));
        QCOMPARE(access.out.count(QLatin1Char('\n')), 1);
    }

    // -f goes on across rotations (4 KiB logs here): every line of every worker exactly once.
    void logsFollowsRotation() {
        const quint16 base = corral::test::workerBasePort();
        CtlRun run =
            ctl({QStringLiteral("start"), QStringLiteral("chatty"), QStringLiteral("--workers"),
                 QStringLiteral("2"), QStringLiteral("--base-port"), QString::number(base),
                 QStringLiteral("--health"), QStringLiteral("/health"), QStringLiteral("--"),
                 QStringLiteral(DEMO_WORKER_PATH), QStringLiteral("--port"),
                 QStringLiteral("{port}"), QStringLiteral("--log-rate"), QStringLiteral("4000")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const QJsonObject chatty = psSite(QStringLiteral("chatty"));
        const QMap<quint16, qint64> pids = workerPids(chatty);
        QCOMPARE(pids.size(), 2);
        const QString log = chatty.value(QStringLiteral("workers"))
                                .toArray()
                                .first()
                                .toObject()
                                .value(QStringLiteral("logPath"))
                                .toString();
        QVERIFY(!log.isEmpty());

        QProcess follower;
        follower.setProcessEnvironment(m_ctl.environment());
        follower.start(m_ctl.program,
                       {QStringLiteral("logs"), QStringLiteral("chatty"), QStringLiteral("-f"),
                        QStringLiteral("-n"), QStringLiteral("0")});
        QVERIFY(follower.waitForStarted());
        QByteArray output;
        const auto readSome = [&] {
            follower.waitForReadyRead(50);
            output += follower.readAllStandardOutput();
        };
        // Two rotations of the first worker's log while following.
        QList<ino_t> inodes{inodeOf(log)};
        QElapsedTimer clock;
        clock.start();
        while (inodes.size() < 3 && clock.elapsed() < 20000) {
            readSome();
            const ino_t inode = inodeOf(log);
            if (inode != 0 && inode != inodes.last()) inodes.append(inode);
        }
        QVERIFY2(inodes.size() >= 3, "the log did not rotate twice within 20 s");
        // Then up to the line last written into the new file.
        static const QRegularExpression numbered(QStringLiteral("log line ([0-9]+)"));
        QFile current(log);
        QVERIFY(current.open(QIODevice::ReadOnly));
        qint64 lastWritten = -1;
        for (const QByteArray &line : current.readAll().split('\n'))
            if (const auto match = numbered.match(QString::fromUtf8(line)); match.hasMatch())
                lastWritten = match.captured(1).toLongLong();
        QVERIFY(lastWritten > 0);
        const quint16 firstPort = pids.firstKey();
        const QString wanted = QStringLiteral("%1 | ").arg(firstPort);
        clock.restart();
        const auto seenLast = [&] {
            return output.contains(QStringLiteral("log line %1 ").arg(lastWritten).toUtf8());
        };
        while (!seenLast() && clock.elapsed() < 5000)
            readSome();
        QVERIFY2(seenLast(), output.right(2000).constData());
        ::kill(pid_t(follower.processId()), SIGINT);
        QVERIFY(follower.waitForFinished(5000));
        QCOMPARE(follower.exitCode(), 0);
        output += follower.readAllStandardOutput();

        // Each worker's numbered lines: consecutive, none twice, none missing.
        QMap<quint16, QList<qint64>> numbers;
        static const QRegularExpression prefixed(
            QStringLiteral("^ *([0-9]+) \\| .*log line ([0-9]+) "));
        for (const QByteArray &line : output.split('\n')) {
            const auto match = prefixed.match(QString::fromUtf8(line));
            if (match.hasMatch())
                numbers[quint16(match.captured(1).toUInt())].append(match.captured(2).toLongLong());
        }
        QCOMPARE(numbers.keys(), pids.keys());
        for (const auto &[port, list] : numbers.asKeyValueRange()) {
            for (qsizetype i = 1; i < list.size(); ++i)
                QVERIFY2(list.at(i) == list.at(i - 1) + 1,
                         qPrintable(QStringLiteral("worker %1: line %2 after %3")
                                        .arg(port)
                                        .arg(list.at(i))
                                        .arg(list.at(i - 1))));
        }
        QVERIFY2(numbers.value(firstPort).size() > 20, qPrintable(wanted));

        run = ctl({QStringLiteral("stop"), QStringLiteral("chatty")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        QVERIFY(!isAlive(pids.first()));
    }

    void failingCommandNamesWorkerStatusAndLines() {
        const quint16 base = corral::test::workerBasePort();
        const CtlRun run =
            ctl({QStringLiteral("start"), QStringLiteral("broken"), QStringLiteral("--workers"),
                 QStringLiteral("1"), QStringLiteral("--base-port"), QString::number(base),
                 QStringLiteral("--"), QStringLiteral("/bin/sh"), QStringLiteral("-c"),
                 QStringLiteral("echo first words; printf '\\033]0;pwned\\007 title\\n'; "
                                "printf '\\033[31mred\\033[0m\\tcolumn\\n'; "
                                "echo cannot open config.yml >&2; exit 3")});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("worker %1").arg(base)), qPrintable(run.err));
        QVERIFY2(run.err.contains(QStringLiteral("exited with code 3")), qPrintable(run.err));
        QVERIFY2(run.err.contains(QStringLiteral("cannot open config.yml")), qPrintable(run.err));
        QVERIFY2(run.err.contains(QStringLiteral("first words")), qPrintable(run.err));
        // What a worker printed reaches the terminal as text: a sequence that would set the
        // window title is written out, here and in logs; logs keeps colours and tabs.
        QVERIFY2(run.err.contains(QStringLiteral("\\x1b]0;pwned\\x07 title")), qPrintable(run.err));
        QVERIFY(!run.err.contains(QLatin1Char('\x1b')));
        const CtlRun logs = ctl({QStringLiteral("logs"), QStringLiteral("broken"),
                                 QStringLiteral("-n"), QStringLiteral("50")});
        QVERIFY2(logs.exitCode == 0, qPrintable(logs.err));
        QVERIFY2(logs.out.contains(QStringLiteral("\\x1b]0;pwned\\x07 title")),
                 qPrintable(logs.out));
        QVERIFY2(logs.out.contains(QStringLiteral("\x1b[31mred\x1b[0m\tcolumn")),
                 qPrintable(logs.out));
        QVERIFY(!logs.out.contains(QStringLiteral("\x1b]")));
        // ps shows it failed, with why.
        const QJsonObject broken = psSite(QStringLiteral("broken"));
        QCOMPARE(broken.value(QStringLiteral("state")).toString(), QStringLiteral("failed"));
        QVERIFY(broken.value(QStringLiteral("error"))
                    .toString()
                    .contains(QStringLiteral("exited with code 3")));
        const CtlRun stop = ctl({QStringLiteral("stop"), QStringLiteral("broken")});
        QVERIFY2(stop.exitCode == 0, qPrintable(stop.err));
    }

    // One address, one owner: a listen address another program holds is refused, naming it.
    void listenAddressHeldElsewhereIsRefused() {
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, 0));
        const CtlRun run =
            ctl({QStringLiteral("start"), QStringLiteral("taken"), QStringLiteral("--demo"),
                 QStringLiteral("--workers"), QStringLiteral("1"), QStringLiteral("--base-port"),
                 QString::number(corral::test::workerBasePort()), QStringLiteral("--listen"),
                 QStringLiteral("127.0.0.1:%1").arg(holder.serverPort())});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QString::number(QCoreApplication::applicationPid())),
                 qPrintable(run.err));
        QCOMPARE(psSite(QStringLiteral("taken")).value(QStringLiteral("state")).toString(),
                 QStringLiteral("failed"));
        QCOMPARE(ctl({QStringLiteral("stop"), QStringLiteral("taken")}).exitCode, 0);
    }

    // start, stop and scale act on local sites: a production site is refused, naming why;
    // ps lists local sites only.
    void productionSitesAreLeftToTheirCommands() {
        QFile file(m_ctl.inventory);
        QVERIFY(file.open(QIODevice::ReadOnly));
        QJsonObject root = QJsonDocument::fromJson(file.readAll()).object();
        file.close();
        root.insert(QStringLiteral("hosts"),
                    QJsonArray{QJsonObject{{QStringLiteral("name"), QStringLiteral("lb")},
                                           {QStringLiteral("kind"), QStringLiteral("ssh")},
                                           {QStringLiteral("address"), QStringLiteral("127.0.0.2")},
                                           {QStringLiteral("user"), QStringLiteral("deploy")}},
                               QJsonObject{{QStringLiteral("name"), QStringLiteral("app1")},
                                           {QStringLiteral("kind"), QStringLiteral("ssh")},
                                           {QStringLiteral("address"), QStringLiteral("127.0.0.3")},
                                           {QStringLiteral("user"), QStringLiteral("deploy")}}});
        QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
        file.write(QJsonDocument(root).toJson());
        file.close();
        CtlRun run =
            ctl({QStringLiteral("site"), QStringLiteral("add"), QStringLiteral("shop"),
                 QStringLiteral("--command"), QStringLiteral("/usr/bin/shop-server"),
                 QStringLiteral("--worker-host"), QStringLiteral("app1"),
                 QStringLiteral("--backends=127.0.0.3:3000"), QStringLiteral("--balancer-host"),
                 QStringLiteral("lb"), QStringLiteral("--balancer"), QStringLiteral("nginx"),
                 QStringLiteral("--balancer-listen"), QStringLiteral("127.0.0.2:8080")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const QStringList refused[] = {{QStringLiteral("restart"), QStringLiteral("shop"),
                                        QStringLiteral("--worker"), QStringLiteral("3000")}};
        for (const QStringList &args : refused) {
            run = ctl(args);
            QVERIFY2(run.exitCode == 1, qPrintable(args.join(QLatin1Char(' '))));
            QVERIFY2(run.err.contains(QStringLiteral("production site")), qPrintable(run.err));
        }
        // start and stop of a production site run on its hosts (issue 17), not in the agent:
        // here its balancer host does not answer.
        for (const QString &command : {QStringLiteral("start"), QStringLiteral("stop")}) {
            run = ctl({command, QStringLiteral("shop")});
            QVERIFY2(run.exitCode == 1, qPrintable(command));
            QVERIFY2(run.err.contains(command + QStringLiteral(" shop: host lb")),
                     qPrintable(run.err));
        }
        // So does scale: its first add-backend locks the site on the balancer's host.
        run = ctl({QStringLiteral("scale"), QStringLiteral("shop"), QStringLiteral("+1")});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("scale shop from 1 to 2 stopped before any "
                                                 "change: add-backend shop: host lb")),
                 qPrintable(run.err));
        // ps lists it as a production site, read from its worker host over SSH (which does not
        // answer here: its row says so), not as one of the agent's.
        const QJsonObject shop = psSite(QStringLiteral("shop"));
        QCOMPARE(shop.value(QStringLiteral("source")).toString(), QStringLiteral("production"));
        const QJsonArray shopRows = shop.value(QStringLiteral("workers")).toArray();
        QCOMPARE(shopRows.size(), 1);
        QCOMPARE(shopRows.first().toObject().value(QStringLiteral("host")).toString(),
                 QStringLiteral("app1"));
        QVERIFY(shopRows.first()
                    .toObject()
                    .value(QStringLiteral("error"))
                    .toString()
                    .startsWith(QStringLiteral("host app1: ")));
        QVERIFY(!psSite(QStringLiteral("web")).isEmpty());
        run = ctl({QStringLiteral("site"), QStringLiteral("remove"), QStringLiteral("shop")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
    }

    // A stopped site stays saved: ps lists it stopped, start SITE brings it back as it was.
    void stopThenStartSavedSite() {
        const QMap<quint16, qint64> before = workerPids(psSite(QStringLiteral("web")));
        CtlRun run = ctl({QStringLiteral("stop"), QStringLiteral("web")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        for (qint64 pid : before)
            QVERIFY(!isAlive(pid));
        QCOMPARE(psSite(QStringLiteral("web")).value(QStringLiteral("state")).toString(),
                 QStringLiteral("stopped"));
        run = ctl({QStringLiteral("start"), QStringLiteral("web")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        const QJsonObject web = psSite(QStringLiteral("web"));
        QVERIFY(allRunning(web, 2));
        QCOMPARE(workerPids(web).keys(), before.keys());

        // Started again as it runs: nothing to do, no worker replaced.
        run = ctl({QStringLiteral("start"), QStringLiteral("web"), QStringLiteral("--json")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        QCOMPARE(parseObject(run.out).value(QStringLiteral("changed")).toBool(true), false);
        QCOMPARE(workerPids(psSite(QStringLiteral("web"))), workerPids(web));
    }

    // kill -9 of the agent takes its workers with it; the next ps starts a new agent, which
    // brings the site back on the same ports.
    void killedAgentTakesWorkersAndComesBack() {
        const QMap<quint16, qint64> before = workerPids(psSite(QStringLiteral("web")));
        QCOMPARE(before.size(), 2);
        const qint64 agent = agentPid();
        QVERIFY(agent > 0);
        QElapsedTimer clock;
        clock.start();
        QCOMPARE(::kill(pid_t(agent), SIGKILL), 0);
        const auto noneAlive = [&] {
            for (qint64 pid : before)
                if (isAlive(pid)) return false;
            return true;
        };
        QTRY_VERIFY_WITH_TIMEOUT(noneAlive(), 2000);
        qInfo("workers gone %lld ms after kill -9 of the agent", qint64(clock.elapsed()));
        QTRY_VERIFY_WITH_TIMEOUT(!isAlive(agent), 2000);

        // The first ps starts the new agent and lists the site on its old ports.
        const QJsonObject web = psSite(QStringLiteral("web"));
        QCOMPARE(web.value(QStringLiteral("source")).toString(), QStringLiteral("agent"));
        QCOMPARE(workerPids(web).keys(), before.keys());
        QTRY_VERIFY_WITH_TIMEOUT(allRunning(psSite(QStringLiteral("web")), 2), 15000);
        const qint64 newAgent = agentPid();
        QVERIFY(newAgent > 0 && newAgent != agent);
    }

    // site remove follows the agent: a running site is refused (its workers would outlive
    // their only record), a stopped one leaves the agent's list too.
    void siteRemoveFollowsTheAgent() {
        CtlRun run =
            ctl({QStringLiteral("start"), QStringLiteral("gone"), QStringLiteral("--demo"),
                 QStringLiteral("--workers"), QStringLiteral("1"), QStringLiteral("--base-port"),
                 QString::number(corral::test::workerBasePort())});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        run = ctl({QStringLiteral("site"), QStringLiteral("remove"), QStringLiteral("gone")});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("stop it first")), qPrintable(run.err));
        QVERIFY(!psSite(QStringLiteral("gone")).isEmpty());
        run = ctl({QStringLiteral("stop"), QStringLiteral("gone")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        run = ctl({QStringLiteral("site"), QStringLiteral("remove"), QStringLiteral("gone")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        QVERIFY(psSite(QStringLiteral("gone")).isEmpty());
    }

    void agentStopStopsEverySite() {
        const QMap<quint16, qint64> pids = workerPids(psSite(QStringLiteral("web")));
        const qint64 agent = agentPid();
        const CtlRun status = ctl({QStringLiteral("agent"), QStringLiteral("status")});
        QCOMPARE(status.exitCode, 0);
        QVERIFY2(status.out.contains(QStringLiteral("pid %1").arg(agent)), qPrintable(status.out));
        const CtlRun run = ctl({QStringLiteral("agent"), QStringLiteral("stop")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        QVERIFY(!isAlive(agent));
        for (qint64 pid : pids)
            QVERIFY(!isAlive(pid));
        QCOMPARE(ctl({QStringLiteral("agent"), QStringLiteral("status")}).exitCode, 1);
    }
};

QTEST_GUILESS_MAIN(TestCorralctlAgent)
#include "tst_corralctl_agent.moc"
