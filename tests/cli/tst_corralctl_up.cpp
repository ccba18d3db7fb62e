#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include "helpers/TestProcess.h"

#include <csignal>
#include <functional>

using corral::test::isAlive;

namespace {

// Live (non-zombie) processes whose process group is one of `groups`.
QList<qint64> membersOf(const QSet<qint64> &groups) {
    QList<qint64> members;
    corral::test::forEachProcessStat([&](qint64 pid, const QList<QByteArray> &fields) {
        if (fields.size() > 2 && fields.at(0) != "Z" && groups.contains(fields.at(2).toLongLong()))
            members.append(pid);
    });
    return members;
}

} // namespace

class TestCorralctlUp : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_inventory;
    QByteArray m_buffer;

    void startUp(QProcess &process, const QStringList &args) {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("XDG_STATE_HOME"), m_dir.filePath(QStringLiteral("state")));
        env.insert(QStringLiteral("CORRAL_INVENTORY"), m_inventory);
        process.setProcessEnvironment(env);
        process.setProcessChannelMode(QProcess::SeparateChannels);
        m_buffer.clear();
        process.start(QStringLiteral(CORRALCTL_PATH), args);
        QVERIFY(process.waitForStarted());
    }

    // Reads JSON event lines until `match` accepts one; fails after `timeoutMs`.
    QJsonObject waitForEvent(QProcess &process,
                             const std::function<bool(const QJsonObject &)> &match,
                             int timeoutMs = 15000) {
        QDeadlineTimer deadline(timeoutMs);
        while (!deadline.hasExpired()) {
            qsizetype newline;
            while ((newline = m_buffer.indexOf('\n')) >= 0) {
                const QJsonObject event = QJsonDocument::fromJson(m_buffer.left(newline)).object();
                m_buffer.remove(0, newline + 1);
                if (match(event)) return event;
            }
            if (process.state() == QProcess::NotRunning && process.bytesAvailable() == 0) break;
            process.waitForReadyRead(100);
            m_buffer += process.readAllStandardOutput();
        }
        return {};
    }

    static quint16 freeBase() { return corral::test::freePort(); }

private Q_SLOTS:
    void init() {
        m_inventory = m_dir.filePath(QStringLiteral("inventory.json"));
        QFile::remove(m_inventory);
    }

    void runsRestartsAndStopsCleanly() {
        QProcess up;
        startUp(up, {QStringLiteral("up"), QStringLiteral("--demo"), QStringLiteral("--workers"),
                     QStringLiteral("3"), QStringLiteral("--base-port"),
                     QString::number(freeBase()), QStringLiteral("--json")});
        const QJsonObject started = waitForEvent(up, [](const QJsonObject &e) {
            return e[QStringLiteral("event")] == QStringLiteral("up");
        });
        const QJsonArray ports = started[QStringLiteral("ports")].toArray();
        QCOMPARE(ports.size(), 3);
        QHash<int, qint64> pids;
        while (pids.size() < 3) {
            const QJsonObject running = waitForEvent(up, [](const QJsonObject &e) {
                return e[QStringLiteral("state")] == QStringLiteral("running");
            });
            QVERIFY2(!running.isEmpty(), up.readAllStandardError().constData());
            pids.insert(running[QStringLiteral("port")].toInt(),
                        running[QStringLiteral("pid")].toInteger());
        }
        const int victimPort = ports.at(1).toInt();
        const qint64 victim = pids.value(victimPort);
        QVERIFY(isAlive(victim));
        ::kill(pid_t(victim), SIGKILL);
        const QJsonObject crashed = waitForEvent(up, [](const QJsonObject &e) {
            return e[QStringLiteral("state")] == QStringLiteral("crashed");
        });
        QCOMPARE(crashed[QStringLiteral("port")].toInt(), victimPort);
        QVERIFY(crashed[QStringLiteral("cause")].toString().contains(QStringLiteral("signal 9")));
        const QJsonObject back = waitForEvent(up, [](const QJsonObject &e) {
            return e[QStringLiteral("state")] == QStringLiteral("running");
        });
        QCOMPARE(back[QStringLiteral("port")].toInt(), victimPort);
        const qint64 replacement = back[QStringLiteral("pid")].toInteger();
        QVERIFY(replacement != victim);
        pids[victimPort] = replacement;

        ::kill(pid_t(up.processId()), SIGINT);
        QVERIFY(up.waitForFinished(15000));
        QCOMPARE(up.exitStatus(), QProcess::NormalExit);
        QCOMPARE(up.exitCode(), 0);
        for (qint64 pid : pids)
            QVERIFY2(!isAlive(pid), qPrintable(QString::number(pid)));
    }

    // Issue 19: the demo's public directory is served by the proxy (the worker never sees
    // those requests), the rest by the workers, and each request is a line of access.log in
    // the site's log directory, beside the workers' logs.
    void demoServesItsPublicDirectoryAndLogsEachRequest() {
        const quint16 listenPort = corral::test::freePort();
        QProcess up;
        startUp(up, {QStringLiteral("up"), QStringLiteral("--demo"), QStringLiteral("--workers"),
                     QStringLiteral("1"), QStringLiteral("--base-port"),
                     QString::number(freeBase()), QStringLiteral("--listen"),
                     QStringLiteral("127.0.0.1:%1").arg(listenPort), QStringLiteral("--json")});
        const QJsonObject running = waitForEvent(up, [](const QJsonObject &e) {
            return e[QStringLiteral("state")] == QStringLiteral("running");
        });
        QVERIFY2(!running.isEmpty(), up.readAllStandardError().constData());
        const int workerPort = running[QStringLiteral("port")].toInt();
        const auto get = [&](const QString &path) {
            QProcess curl;
            curl.start(QStringLiteral("curl"),
                       {QStringLiteral("-s"), QStringLiteral("--max-time"), QStringLiteral("10"),
                        QStringLiteral("--retry"), QStringLiteral("20"),
                        QStringLiteral("--retry-connrefused"), QStringLiteral("--retry-delay"),
                        QStringLiteral("0"),
                        QStringLiteral("http://127.0.0.1:%1%2").arg(listenPort).arg(path)});
            curl.waitForFinished(30000);
            return QString::fromUtf8(curl.readAllStandardOutput());
        };
        // The worker joins the proxy once ready: / answers from it.
        QDeadlineTimer joined(10000);
        QString root;
        while (!(root = get(QStringLiteral("/"))).contains(QStringLiteral("\"pid\"")) &&
               !joined.hasExpired())
            QTest::qWait(50);
        QVERIFY2(root.contains(QStringLiteral("\"port\":%1").arg(workerPort)), qPrintable(root));
        const QString page = get(QStringLiteral("/welcome.html"));
        QVERIFY2(page.contains(QStringLiteral("Served by Corral's proxy, not by a worker")),
                 qPrintable(page));
        QVERIFY(get(QStringLiteral("/demo.css")).contains(QStringLiteral("font-family")));

        ::kill(pid_t(up.processId()), SIGINT);
        QVERIFY(up.waitForFinished(15000));
        QCOMPARE(up.exitCode(), 0);
        QFile log(m_dir.filePath(QStringLiteral("state/corral/logs/demo/access.log")));
        QVERIFY2(log.open(QIODevice::ReadOnly), qPrintable(log.fileName()));
        const QString lines = QString::fromUtf8(log.readAll());
        // Static: no upstream ("-"); proxied: the worker's address and status.
        QVERIFY2(
            QRegularExpression(QStringLiteral("\"GET /welcome.html HTTP/1.1\" 200 \\d+ .* - - "))
                .match(lines)
                .hasMatch(),
            qPrintable(lines));
        QVERIFY2(lines.contains(QStringLiteral("\"GET / HTTP/1.1\" 200")) &&
                     lines.contains(QStringLiteral("127.0.0.1:%1 200").arg(workerPort)),
                 qPrintable(lines));
    }

    void sigkilledCorralLeavesNoWorkerBehind() {
        QProcess up;
        startUp(up,
                {QStringLiteral("up"), QStringLiteral("--workers"), QStringLiteral("2"),
                 QStringLiteral("--base-port"), QString::number(freeBase()),
                 QStringLiteral("--json"), QStringLiteral("--health"), QStringLiteral("/health"),
                 QStringLiteral("--"), QStringLiteral(DEMO_WORKER_PATH), QStringLiteral("--port"),
                 QStringLiteral("{port}"), QStringLiteral("--spawn-child")});
        QSet<qint64> groups;
        while (groups.size() < 2) {
            const QJsonObject running = waitForEvent(up, [](const QJsonObject &e) {
                return e[QStringLiteral("state")] == QStringLiteral("running");
            });
            QVERIFY(!running.isEmpty());
            groups.insert(running[QStringLiteral("pid")].toInteger());
        }
        // Each group holds the worker and the child it spawned.
        QTRY_COMPARE_WITH_TIMEOUT(membersOf(groups).size(), 4, 5000);
        ::kill(pid_t(up.processId()), SIGKILL);
        QVERIFY(up.waitForFinished(5000));
        QTRY_VERIFY_WITH_TIMEOUT(membersOf(groups).isEmpty(), 10000);
    }

    void badInputEndsWithAClearMessage_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("exitCode");
        QTest::addColumn<QString>("message");
        QTest::newRow("missing command")
            << QStringList{"up", "--", "corral-no-such-command", "--port", "{port}"} << 1
            << "command \"corral-no-such-command\" not found in PATH";
        QTest::newRow("no free port")
            << QStringList{"up", "--demo", "--workers", "2", "--base-port", "65535"} << 1
            << "only 1 of 2 ports are free";
        QTest::newRow("never ready")
            << QStringList{"up", "--workers",      "1",      "--start-timeout", "0.5",
                           "--", DEMO_WORKER_PATH, "--port", "{port}",          "--never-listen"}
            << 1 << "every worker of dev failed; last: not ready within 500 ms";
        QTest::newRow("nothing to run") << QStringList{"up"} << 2 << "nothing to run";
        QTest::newRow("bad workers") << QStringList{"up", "--demo", "--workers", "many"} << 1
                                     << "--workers: \"many\" is not auto or 1..";
        QTest::newRow("both demo and command")
            << QStringList{"up", "--demo", "--", "node"} << 2 << "either --demo or -- COMMAND";
    }
    void badInputEndsWithAClearMessage() {
        QFETCH(QStringList, args);
        QFETCH(int, exitCode);
        QFETCH(QString, message);
        QProcess up;
        startUp(up, args);
        QVERIFY(up.waitForFinished(20000));
        const QString err = QString::fromUtf8(up.readAllStandardError());
        QCOMPARE(up.exitCode(), exitCode);
        QVERIFY2(err.contains(message), qPrintable(err));
        // No stray worker: nothing is left in the sentinel's care either.
        const QString out = QString::fromUtf8(up.readAllStandardOutput());
        static const QRegularExpression pidPattern(QStringLiteral("\"pid\":(\\d+)"));
        for (const auto &match : pidPattern.globalMatch(out))
            QTRY_VERIFY_WITH_TIMEOUT(!isAlive(match.captured(1).toLongLong()), 5000);
    }

    // Issue 13 item 14: a failed worker says why in its own words: the last 10 lines of its
    // log and where the whole log is.
    void aFailedWorkerShowsItsLogTail() {
        QProcess up;
        startUp(up, {QStringLiteral("up"), QStringLiteral("--workers"), QStringLiteral("1"),
                     QStringLiteral("--base-port"), QString::number(freeBase()),
                     QStringLiteral("--start-timeout"), QStringLiteral("1"), QStringLiteral("--"),
                     QStringLiteral("sh"), QStringLiteral("-c"),
                     QStringLiteral("i=1; while [ $i -le 14 ]; do echo \"app line $i\"; "
                                    "i=$((i+1)); done; exec sleep 30")});
        QVERIFY(up.waitForFinished(20000));
        QCOMPARE(up.exitCode(), 1);
        const QString err = QString::fromUtf8(up.readAllStandardError());
        for (int i = 5; i <= 14; ++i)
            QVERIFY2(err.contains(QStringLiteral("app line %1\n").arg(i)), qPrintable(err));
        QVERIFY2(!err.contains(QStringLiteral("app line 4\n")), qPrintable(err));
        const QString logDirectory = m_dir.filePath(QStringLiteral("state/corral/logs"));
        static const QRegularExpression logPath(QStringLiteral("log: (/\\S+\\.log)"));
        const auto match = logPath.match(err);
        QVERIFY2(match.hasMatch(), qPrintable(err));
        QVERIFY2(match.captured(1).startsWith(logDirectory), qPrintable(match.captured(1)));
        QVERIFY2(QFile::exists(match.captured(1)), qPrintable(match.captured(1)));
    }

    void remembersPortsOfAnInventorySite() {
        QFile file(m_inventory);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(
            QStringLiteral(R"({"version":1,"sites":[{"name":"blog","workers":2,"basePort":%1}]})")
                .arg(freeBase())
                .toUtf8());
        file.close();
        QProcess up;
        startUp(up, {QStringLiteral("up"), QStringLiteral("blog"), QStringLiteral("--demo"),
                     QStringLiteral("--json")});
        const QJsonObject started = waitForEvent(up, [](const QJsonObject &e) {
            return e[QStringLiteral("event")] == QStringLiteral("up");
        });
        const QJsonArray ports = started[QStringLiteral("ports")].toArray();
        QCOMPARE(ports.size(), 2);
        for (int i = 0; i < 2; ++i)
            QVERIFY(!waitForEvent(up, [](const QJsonObject &e) {
                         return e[QStringLiteral("state")] == QStringLiteral("running");
                     }).isEmpty());
        ::kill(pid_t(up.processId()), SIGTERM);
        QVERIFY(up.waitForFinished(15000));
        QCOMPARE(up.exitCode(), 0);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QJsonObject site =
            QJsonDocument::fromJson(file.readAll())[QStringLiteral("sites")][0].toObject();
        QCOMPARE(site[QStringLiteral("ports")].toArray(), ports);
    }
};

QTEST_GUILESS_MAIN(TestCorralctlUp)
#include "tst_corralctl_up.moc"
