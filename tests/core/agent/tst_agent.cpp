// The agent as a real process: its socket, its protocol, its guarantees (issue 16).

#include "agent/AgentClient.h"
#include "helpers/AgentFixture.h"
#include "helpers/ResultVerify.h"
#include "helpers/TestProcess.h"

#include <QElapsedTimer>
#include <QJsonArray>
#include <QLocalSocket>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTest>

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace corral;
using namespace corral::agent;
using corral::test::AgentFixture;

namespace {

Site demoSite(const QString &name, int workers, quint16 listenPort = 0) {
    Site site;
    site.name = name;
    site.command = QStringLiteral(DEMO_WORKER_PATH);
    site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
    site.healthPath = QStringLiteral("/health");
    site.workers = workers;
    site.basePort = corral::test::workerBasePort();
    if (listenPort) site.listen = QStringLiteral("127.0.0.1:%1").arg(listenPort);
    return site;
}

QJsonObject startRequest(const Site &site, bool ephemeral = false) {
    return {{QStringLiteral("site"), site.toJson()}, {QStringLiteral("ephemeral"), ephemeral}};
}

QList<qint64> pidsOf(const SiteStatus &status) {
    QList<qint64> pids;
    for (const WorkerStatus &worker : status.workers)
        pids.append(worker.pid);
    return pids;
}

QList<quint16> portsOf(const SiteStatus &status) {
    QList<quint16> ports;
    for (const WorkerStatus &worker : status.workers)
        ports.append(worker.port);
    return ports;
}

/// Sends raw bytes on a fresh connection and returns the first line answered.
QByteArray rawExchange(const QString &path, const QByteArray &bytes) {
    QLocalSocket socket;
    socket.connectToServer(path);
    if (!socket.waitForConnected(2000)) return "no connection";
    socket.write(bytes);
    socket.flush();
    QDeadlineTimer deadline(5000);
    while (!socket.canReadLine() && !deadline.hasExpired() &&
           socket.state() == QLocalSocket::ConnectedState)
        socket.waitForReadyRead(100);
    return socket.readLine();
}

} // namespace

class TestAgent : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void socketIsPrivate() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        struct stat st {};
        QCOMPARE(::stat(QFile::encodeName(agent.socketPath()).constData(), &st), 0);
        QCOMPARE(st.st_mode & 0777, 0600u);
        QCOMPARE(
            ::stat(
                QFile::encodeName(agent.runtimeDirectory() + QStringLiteral("/corral")).constData(),
                &st),
            0);
        QCOMPARE(st.st_mode & 0777, 0700u);
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        QCOMPARE(client.agentPid(), agent.pid());
        QCOMPARE(agent.terminate(), 0);
    }

    void startScaleRestartStop() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        const Site site = demoSite(QStringLiteral("shop"), 2, corral::test::freePort());
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start), startRequest(site), 30000));
        auto status = client.status(site.name);
        QVERIFY_RESULT(status);
        QCOMPARE(status->size(), 1);
        QCOMPARE(status->first().state, SiteState::Running);
        QCOMPARE(status->first().workers.size(), 2);
        for (const WorkerStatus &worker : status->first().workers) {
            QCOMPARE(worker.state, WorkerState::Running);
            QVERIFY(corral::test::isAlive(worker.pid));
            QVERIFY(QFile::exists(worker.logPath));
        }
        QVERIFY_RESULT(client.call(
            QString::fromLatin1(op::Scale),
            {{QStringLiteral("site"), site.name}, {QStringLiteral("workers"), 3}}, 30000));
        status = client.status(site.name);
        QCOMPARE(status->first().workers.size(), 3);
        const QList<qint64> before = pidsOf(status->first());
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Restart),
                                   {{QStringLiteral("site"), site.name}}, 60000));
        status = client.status(site.name);
        const QList<qint64> after = pidsOf(status->first());
        QCOMPARE(after.size(), 3);
        for (qint64 pid : after)
            QVERIFY2(!before.contains(pid), "a rolling restart replaces every worker");
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Stop),
                                   {{QStringLiteral("site"), site.name}}, 30000));
        QVERIFY(corral::test::waitUntilGone(after, 5000));
        status = client.status(site.name);
        QCOMPARE(status->first().state, SiteState::Stopped);
        QCOMPARE(agent.terminate(), 0);
    }

    void theChosenWorkerIsRemoved() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        const Site site = demoSite(QStringLiteral("trim"), 3, corral::test::freePort());
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start), startRequest(site), 30000));
        const SiteStatus before = client.status(site.name)->first();
        QCOMPARE(before.workers.size(), 3);
        const WorkerStatus middle = before.workers.at(1);
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Scale),
                                   {{QStringLiteral("site"), site.name},
                                    {QStringLiteral("workers"), 2},
                                    {QStringLiteral("port"), middle.port}},
                                   30000));
        const SiteStatus after = client.status(site.name)->first();
        QCOMPARE(portsOf(after),
                 (QList<quint16>{before.workers.at(0).port, before.workers.at(2).port}));
        QVERIFY(corral::test::waitUntilGone({middle.pid}, 5000));
        QCOMPARE(pidsOf(after),
                 (QList<qint64>{before.workers.at(0).pid, before.workers.at(2).pid}));
        QCOMPARE(agent.terminate(), 0);
    }

    void failingWorkerIsNamedWithItsLastLines() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        Site site;
        site.name = QStringLiteral("broken");
        site.command = QStringLiteral("/bin/sh");
        site.args = {QStringLiteral("-c"), QStringLiteral("echo cannot find config.json; exit 3")};
        site.workers = 1;
        site.basePort = corral::test::workerBasePort();
        auto started = client.call(QString::fromLatin1(op::Start), startRequest(site), 30000);
        QVERIFY(!started);
        QVERIFY2(started.error().contains(QString::number(site.basePort)),
                 qPrintable(started.error()));
        QVERIFY2(started.error().contains(QStringLiteral("code 3")), qPrintable(started.error()));
        QVERIFY2(started.error().contains(QStringLiteral("cannot find config.json")),
                 qPrintable(started.error()));
        // Nothing is left half running; the site says why it failed.
        QTRY_VERIFY_WITH_TIMEOUT(client.status(site.name)->first().state == SiteState::Failed,
                                 10000);
        QVERIFY(client.status(site.name)->first().error.contains(QStringLiteral("code 3")));
        QVERIFY(client.status(site.name)->first().workers.isEmpty());
        QCOMPARE(agent.terminate(), 0);
    }

    void startTimeoutOfTheRequestIsHonoured() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        Site site;
        site.name = QStringLiteral("mute");
        site.command = QStringLiteral("/bin/sleep");
        site.args = {QStringLiteral("60")}; // never listens
        site.workers = 1;
        site.basePort = corral::test::workerBasePort();
        QJsonObject request = startRequest(site);
        request.insert(QStringLiteral("startTimeoutMs"), 1000);
        QElapsedTimer clock;
        clock.start();
        auto started = client.call(QString::fromLatin1(op::Start), request, 20000);
        QVERIFY(!started);
        QVERIFY2(started.error().contains(QStringLiteral("not ready within 1.0 s")),
                 qPrintable(started.error()));
        QVERIFY2(clock.elapsed() < 10000, "the agent's default of 30 s was used");
        request.insert(QStringLiteral("startTimeoutMs"), 0);
        auto refused = client.call(QString::fromLatin1(op::Start), request);
        QVERIFY(!refused);
        QVERIFY2(refused.error().contains(QStringLiteral("startTimeoutMs")),
                 qPrintable(refused.error()));
        QCOMPARE(agent.terminate(), 0);
    }

    void twoSubscribersGetEverySnapshot() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient control;
        QVERIFY_RESULT(control.connectToAgent(false));
        const Site site = demoSite(QStringLiteral("watched"), 2);
        QVERIFY_RESULT(control.call(QString::fromLatin1(op::Start), startRequest(site), 30000));
        AgentClient first, second;
        QVERIFY_RESULT(first.connectToAgent(false));
        QVERIFY_RESULT(second.connectToAgent(false));
        QList<qint64> seenByFirst, seenBySecond;
        connect(&first, &AgentClient::snapshot, this,
                [&](const ClusterSnapshot &s) { seenByFirst.append(s.timestampMs); });
        connect(&second, &AgentClient::snapshot, this,
                [&](const ClusterSnapshot &s) { seenBySecond.append(s.timestampMs); });
        QVERIFY_RESULT(first.call(QString::fromLatin1(op::Subscribe)));
        QVERIFY_RESULT(second.call(QString::fromLatin1(op::Subscribe)));
        // Both subscribed before the next tick: from then on both get the same ticks.
        QTRY_VERIFY_WITH_TIMEOUT(seenByFirst.size() >= 4 && seenBySecond.size() >= 4, 10000);
        const qint64 common = qMax(seenByFirst.first(), seenBySecond.first());
        seenByFirst.removeIf([&](qint64 t) { return t < common; });
        seenBySecond.removeIf([&](qint64 t) { return t < common; });
        const qsizetype n = qMin(seenByFirst.size(), seenBySecond.size());
        QVERIFY(n >= 3);
        QCOMPARE(seenByFirst.first(n), seenBySecond.first(n));
        // And the history the agent keeps has them too, oldest first.
        auto history =
            control.call(QString::fromLatin1(op::History), {{QStringLiteral("site"), site.name}});
        QVERIFY_RESULT(history);
        const QJsonArray snapshots = history->value(QStringLiteral("snapshots")).toArray();
        QVERIFY(snapshots.size() >= n);
        QCOMPARE(snapshots.last().toObject().value(QStringLiteral("site")).toString(), site.name);
        QCOMPARE(agent.terminate(), 0);
    }

    void everySiteGetsItsOwnWorkersMetrics() {
        // The agent samples every site with one collector: each snapshot must still carry
        // its own workers' CPU and memory, and no other site's.
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        QHash<QString, ClusterSnapshot> latest;
        connect(&client, &AgentClient::snapshot, this,
                [&](const ClusterSnapshot &s) { latest.insert(s.site, s); });
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start),
                                   startRequest(demoSite(QStringLiteral("one"), 2)), 30000));
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start),
                                   startRequest(demoSite(QStringLiteral("two"), 3)), 30000));
        client.subscribe();
        const auto measured = [&](const QString &site, int workers) {
            const ClusterSnapshot s = latest.value(site);
            if (s.workers.size() != workers) return false;
            for (const WorkerRow &row : s.workers)
                if (row.site != site || !row.cpuValid || row.rssBytes <= 0) return false;
            return true;
        };
        QTRY_VERIFY_WITH_TIMEOUT(
            measured(QStringLiteral("one"), 2) && measured(QStringLiteral("two"), 3), 15000);
        const auto pids = [](const ClusterSnapshot &s) {
            QSet<qint64> set;
            for (const WorkerRow &row : s.workers)
                set.insert(row.pid);
            return set;
        };
        QVERIFY(!pids(latest.value(QStringLiteral("one")))
                     .intersects(pids(latest.value(QStringLiteral("two")))));
        QCOMPARE(agent.terminate(), 0);
    }

    void killedAgentTakesItsWorkersAndTheNextBringsTheSiteBack() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        QList<qint64> pids;
        QList<quint16> ports;
        {
            AgentClient client;
            QVERIFY_RESULT(client.connectToAgent(false));
            const Site site = demoSite(QStringLiteral("durable"), 3, corral::test::freePort());
            QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start), startRequest(site), 30000));
            auto status = client.status(site.name);
            pids = pidsOf(status->first());
            ports = portsOf(status->first());
        }
        agent.kill();
        QVERIFY2(corral::test::waitUntilGone(pids, 2000), "workers outlived their agent");

        // A client that finds no agent starts one, which restores the site on its ports.
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(true));
        QVERIFY(client.agentPid() != agent.pid());
        QTRY_VERIFY_WITH_TIMEOUT(
            client.status(QStringLiteral("durable"))->value(0).state == SiteState::Running, 20000);
        const SiteStatus restored = client.status(QStringLiteral("durable"))->first();
        QCOMPARE(portsOf(restored), ports);
        for (qint64 pid : pidsOf(restored))
            QVERIFY(!pids.contains(pid));
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Shutdown)));
        QVERIFY(corral::test::waitUntilGone({client.agentPid()}, 20000));
        QVERIFY(corral::test::waitUntilGone(pidsOf(restored), 2000));
    }

    void addressTakenMeanwhileIsReportedWithItsHolder() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        const quint16 listenPort = corral::test::freePort();
        {
            AgentClient client;
            QVERIFY_RESULT(client.connectToAgent(false));
            QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start),
                                       startRequest(demoSite(QStringLiteral("web"), 1, listenPort)),
                                       30000));
        }
        agent.kill();
        QTcpServer squatter;
        QTRY_VERIFY_WITH_TIMEOUT(
            squatter.isListening() || squatter.listen(QHostAddress::LocalHost, listenPort), 5000);
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        QTRY_VERIFY_WITH_TIMEOUT(
            client.status(QStringLiteral("web"))->value(0).state == SiteState::Failed, 10000);
        const QString error = client.status(QStringLiteral("web"))->first().error;
        QVERIFY2(error.contains(QStringLiteral("pid %1").arg(::getpid())), qPrintable(error));
        QCOMPARE(agent.terminate(), 0);
    }

    void ephemeralSiteEndsWithItsClient() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient observer;
        QVERIFY_RESULT(observer.connectToAgent(false));
        QList<qint64> pids;
        {
            AgentClient console;
            QVERIFY_RESULT(console.connectToAgent(false));
            QVERIFY_RESULT(console.call(QString::fromLatin1(op::Start),
                                        startRequest(demoSite(QStringLiteral("demo"), 2), true),
                                        30000));
            pids = pidsOf(observer.status(QStringLiteral("demo"))->first());
            QCOMPARE(pids.size(), 2);
        }
        QVERIFY(corral::test::waitUntilGone(pids, 10000));
        QTRY_VERIFY_WITH_TIMEOUT(observer.status(QStringLiteral("demo"))->isEmpty(), 5000);
        // And nothing about it is persisted for the next agent.
        QFile state(agent.stateDirectory() + QStringLiteral("/agent-state.json"));
        QVERIFY(state.open(QIODevice::ReadOnly));
        QVERIFY(!state.readAll().contains("\"demo\""));
        QCOMPARE(agent.terminate(), 0);
    }

    void shutdownStopsEverySiteAndExitsZero() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start),
                                   startRequest(demoSite(QStringLiteral("a"), 2)), 30000));
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Start),
                                   startRequest(demoSite(QStringLiteral("b"), 2)), 30000));
        QList<qint64> pids;
        const auto statuses = client.status();
        QVERIFY_RESULT(statuses);
        for (const SiteStatus &status : statuses.value())
            pids += pidsOf(status);
        QCOMPARE(pids.size(), 4);
        QCOMPARE(agent.terminate(), 0);
        QVERIFY(corral::test::waitUntilGone(pids, 1000));
        QVERIFY(!QFile::exists(agent.socketPath()));
    }

    void badRequestsGetClearErrors() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        auto unknown = client.call(QStringLiteral("format-disk"));
        QVERIFY(!unknown);
        QVERIFY2(unknown.error().contains(QStringLiteral("unknown operation 'format-disk'")),
                 qPrintable(unknown.error()));
        Site bad = demoSite(QStringLiteral("bad"), 1);
        QJsonObject json = bad.toJson();
        json.insert(QStringLiteral("workers"), 100000);
        auto refused =
            client.call(QString::fromLatin1(op::Start), {{QStringLiteral("site"), json}});
        QVERIFY(!refused);
        QVERIFY2(refused.error().contains(QStringLiteral("workers")), qPrintable(refused.error()));
        auto nameless = client.call(QString::fromLatin1(op::Stop));
        QVERIFY(!nameless);
        QVERIFY2(nameless.error().contains(QStringLiteral("names no site")),
                 qPrintable(nameless.error()));
        QVERIFY(rawExchange(agent.socketPath(), "{\"v\":2,\"id\":1,\"op\":\"hello\"}\n")
                    .contains("protocol version 2 is not supported"));
        QVERIFY(rawExchange(agent.socketPath(), "not json\n").contains("bad request"));
        // The agent still serves.
        QVERIFY_RESULT(client.call(QString::fromLatin1(op::Hello)));
        QCOMPARE(agent.terminate(), 0);
    }

    void clientOfAnotherUserIsRefused() {
        if (::geteuid() != 0) QSKIP("needs root to create a user with useradd");
        const QString user = QStringLiteral("corral-agent-test");
        {
            QProcess leftover; // a user left by a crashed run
            leftover.start(QStringLiteral("userdel"), {user});
            leftover.waitForFinished(10000);
        }
        QCOMPARE(QProcess::execute(QStringLiteral("useradd"),
                                   {QStringLiteral("-M"), QStringLiteral("-s"),
                                    QStringLiteral("/usr/sbin/nologin"), user}),
                 0);
        const passwd *account = ::getpwnam(qPrintable(user));
        QVERIFY(account);
        const uid_t uid = account->pw_uid;
        const gid_t gid = account->pw_gid;
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        // Open the file permissions on purpose: SO_PEERCRED is the check left.
        ::chmod(QFile::encodeName(agent.runtimeDirectory()).constData(), 0755);
        ::chmod(QFile::encodeName(agent.runtimeDirectory() + QStringLiteral("/corral")).constData(),
                0755);
        ::chmod(QFile::encodeName(agent.socketPath()).constData(), 0666);
        const QByteArray local = QFile::encodeName(agent.socketPath());
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, local.constData(), size_t(local.size()));
        int pipeFds[2];
        QCOMPARE(::pipe(pipeFds), 0);
        // Only async-signal-safe calls in the child: this process has threads.
        const pid_t child = ::fork();
        if (child == 0) {
            ::close(pipeFds[0]);
            char answer[256] = "none";
            if (::setgid(gid) == 0 && ::setuid(uid) == 0) {
                const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
                if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0) {
                    static const char request[] = "{\"v\":1,\"id\":1,\"op\":\"status\"}\n";
                    [[maybe_unused]] const ssize_t w = ::write(fd, request, sizeof request - 1);
                    const ssize_t n = ::read(fd, answer, sizeof answer - 1);
                    answer[n > 0 ? n : 0] = 0;
                }
            }
            [[maybe_unused]] const ssize_t n = ::write(pipeFds[1], answer, sizeof answer);
            ::_exit(0);
        }
        ::close(pipeFds[1]);
        char answer[256] = {};
        const ssize_t n = ::read(pipeFds[0], answer, sizeof answer);
        ::close(pipeFds[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        QProcess::execute(QStringLiteral("userdel"), {user});
        QVERIFY(n > 0);
        const QByteArray reply(answer);
        QVERIFY2(reply.contains("refused") && !reply.contains("\"sites\""), reply.constData());
        QTRY_VERIFY_WITH_TIMEOUT(
            agent.log().contains(QStringLiteral("refused a client of uid %1").arg(uid).toUtf8()),
            5000);
        QCOMPARE(agent.terminate(), 0);
    }

    void secondAgentRefusesToServe() {
        AgentFixture agent(QStringLiteral(AGENT_PATH));
        QVERIFY(agent.start());
        QProcess second;
        second.start(QStringLiteral(AGENT_PATH), {});
        QVERIFY(second.waitForFinished(10000));
        QCOMPARE(second.exitCode(), 1);
        QVERIFY(second.readAllStandardError().contains("another Corral agent runs"));
        AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        QCOMPARE(client.agentPid(), agent.pid());
        QCOMPARE(agent.terminate(), 0);
    }

    void unreachableAgentNamesTheSocket() {
        AgentFixture agent(QStringLiteral("/nonexistent/corral-agent"));
        AgentClient client;
        auto connected = client.connectToAgent(true, 2000);
        QVERIFY(!connected);
        QVERIFY2(connected.error().contains(agent.socketPath()), qPrintable(connected.error()));
    }
};

QTEST_GUILESS_MAIN(TestAgent)
#include "tst_agent.moc"
