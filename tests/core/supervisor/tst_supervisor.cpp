#include "helpers/TestProcess.h"
#include "supervisor/PortAllocator.h"
#include "supervisor/ProcessGroupReaper.h"
#include "supervisor/RotatingLog.h"
#include "supervisor/Supervisor.h"
#include "util/ListeningSockets.h"
#include "util/Paths.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <sys/types.h>
#include <unistd.h>

using namespace corral;
using corral::test::isAlive;

namespace {

// Below the ephemeral range: a port a worker moves to is never taken meanwhile by an outgoing
// connection of this test or of the tests running beside it.
quint16 freeBase(int count) {
    return corral::test::workerBasePort(count);
}

/// A foreign HTTP server in this (test) process that answers every request with 200, the way
/// another program on a worker's port would answer the supervisor's health probe.
class ForeignHttpServer : public QTcpServer {
public:
    ForeignHttpServer() {
        connect(this, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket *socket = nextPendingConnection()) {
                connect(socket, &QTcpSocket::readyRead, socket, [socket] {
                    socket->readAll();
                    socket->write("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: "
                                  "close\r\n\r\nforeign");
                    socket->disconnectFromHost();
                });
                connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
            }
        });
    }
};

struct Event {
    quint16 port;
    qint64 pid;
    WorkerState state;
    QString cause;
};

} // namespace

class TestSupervisor : public QObject {
    Q_OBJECT

    QTemporaryDir m_logs;
    SupervisionPolicy fastPolicy() const {
        SupervisionPolicy policy;
        policy.logDirectory = m_logs.path();
        policy.startTimeoutMs = 10000;
        policy.killTimeoutMs = 3000;
        policy.backoffInitialMs = 20;
        policy.probeIntervalMs = 20;
        return policy;
    }
    static Site demoSite(const QString &name, int workers, QStringList extraArgs = {}) {
        Site site;
        site.name = name;
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = QStringList{QStringLiteral("--port"), Site::PortPlaceholder} + extraArgs;
        site.workers = workers;
        site.basePort = freeBase(workers + 2);
        site.healthPath = QStringLiteral("/health");
        return site;
    }
    static bool allInState(const Supervisor &supervisor, const QString &site, WorkerState state,
                           int count) {
        const auto workers = supervisor.workers(site);
        if (workers.size() != count) return false;
        for (const WorkerProcess *worker : workers)
            if (worker->state() != state) return false;
        return true;
    }
    static void stopAndWait(Supervisor &supervisor) {
        QSignalSpy stopped(&supervisor, &Supervisor::allStopped);
        supervisor.stopAll();
        QVERIFY(stopped.count() == 1 || stopped.wait(15000));
    }

private Q_SLOTS:
    void killedWorkerRestartsOnTheSamePort() {
        Supervisor supervisor(fastPolicy());
        QList<Event> events;
        connect(&supervisor, &Supervisor::workerStateChanged, this,
                [&](const QString &, quint16 port, qint64 pid, WorkerState state,
                    const QString &cause) {
                    events.append({port, pid, state, cause});
                });
        const Site site = demoSite(QStringLiteral("restart"), 2);
        QVERIFY(supervisor.startSite(site).ok());
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 2), 15000);
        const WorkerProcess *victim = supervisor.workers(site.name).first();
        const quint16 port = victim->port();
        const qint64 oldPid = victim->pid();
        QVERIFY(isAlive(oldPid));
        events.clear();
        ::kill(pid_t(oldPid), SIGKILL);
        QTRY_VERIFY_WITH_TIMEOUT(victim->state() == WorkerState::Running && victim->pid() != oldPid,
                                 15000);
        QCOMPARE(victim->port(), port);
        QCOMPARE(victim->restarts(), 1);
        QVERIFY(isAlive(victim->pid()));
        QVERIFY(events.size() >= 4);
        QCOMPARE(events.at(0).state, WorkerState::Crashed);
        QVERIFY2(events.at(0).cause.contains(QStringLiteral("killed by signal 9")),
                 qPrintable(events.at(0).cause));
        QCOMPARE(events.at(1).state, WorkerState::Backoff);
        QCOMPARE(events.at(2).state, WorkerState::Starting);
        QCOMPARE(events.last().state, WorkerState::Running);
        // The other worker was not touched.
        QCOMPARE(supervisor.workers(site.name).last()->restarts(), 0);
        // Issue 13 item 11: a manual restart counts as a restart too (not as a crash).
        const qint64 crashedPid = victim->pid();
        QVERIFY(supervisor.restartWorker(site.name, port).ok());
        QTRY_VERIFY_WITH_TIMEOUT(
            victim->state() == WorkerState::Running && victim->pid() != crashedPid, 15000);
        QCOMPARE(victim->restarts(), 2);
        QCOMPARE(victim->crashes(), 1);
        // Each transition is in the worker's log with its cause.
        QVERIFY(victim->log()
                    .tail()
                    .join(QLatin1Char('\n'))
                    .contains(QStringLiteral("running -> crashed (pid")));
        stopAndWait(supervisor);
        QVERIFY(!isAlive(victim->pid()));
    }

    void crashLoopEndsInFailedWithBackoff() {
        SupervisionPolicy policy = fastPolicy();
        policy.crashLimit = 4;
        Supervisor supervisor(policy);
        QStringList backoffs;
        connect(&supervisor, &Supervisor::workerStateChanged, this,
                [&](const QString &, quint16, qint64, WorkerState state, const QString &cause) {
                    if (state == WorkerState::Backoff) backoffs.append(cause);
                });
        const Site site = demoSite(QStringLiteral("crashloop"), 1,
                                   {QStringLiteral("--exit-after-ms"), QStringLiteral("30")});
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        QTRY_COMPARE_WITH_TIMEOUT(worker->state(), WorkerState::Failed, 20000);
        QVERIFY2(worker->worker().cause().contains(QStringLiteral("crashed 4 times")),
                 qPrintable(worker->worker().cause()));
        // Delays double: 20, 40, 80 ms.
        QCOMPARE(backoffs, (QStringList{QStringLiteral("restart #1 in 20 ms"),
                                        QStringLiteral("restart #2 in 40 ms"),
                                        QStringLiteral("restart #3 in 80 ms")}));
        QVERIFY(worker->log()
                    .tail()
                    .join(QLatin1Char('\n'))
                    .contains(QStringLiteral("exited with code 7")));
        // Issue 13 item 11: a failed worker shows no (dead, reusable) pid, and its counts
        // agree with the message: 4 crashes, 3 restarts.
        QCOMPARE(worker->pid(), qint64(0));
        QCOMPARE(worker->crashes(), 4);
        QCOMPARE(worker->restarts(), 3);
        QVERIFY2(worker->lastCrash().cause.contains(QStringLiteral("exited with code 7")),
                 qPrintable(worker->lastCrash().cause));
        QVERIFY(worker->lastCrash().atMs > 0);
        stopAndWait(supervisor);
    }

    void workerThatNeverListensFails() {
        SupervisionPolicy policy = fastPolicy();
        policy.startTimeoutMs = 600;
        Supervisor supervisor(policy);
        const Site site = demoSite(QStringLiteral("silent"), 1, {QStringLiteral("--never-listen")});
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        QTRY_VERIFY_WITH_TIMEOUT(worker->pid() > 0, 5000);
        const qint64 pid = worker->pid();
        QTRY_COMPARE_WITH_TIMEOUT(worker->state(), WorkerState::Failed, 10000);
        QVERIFY2(worker->worker().cause().startsWith(QStringLiteral("not ready within 600 ms")),
                 qPrintable(worker->worker().cause()));
        QTRY_VERIFY_WITH_TIMEOUT(!isAlive(pid), 5000);
        stopAndWait(supervisor);
    }

    void missingCommandIsAClearError() {
        Supervisor supervisor(fastPolicy());
        Site site = demoSite(QStringLiteral("missing"), 1);
        site.command = QStringLiteral("corral-no-such-command");
        const auto started = supervisor.startSite(site);
        QVERIFY(!started.ok());
        QVERIFY2(started.error().contains(
                     QStringLiteral("\"corral-no-such-command\" not found in PATH")),
                 qPrintable(started.error()));
        QVERIFY(supervisor.sites().isEmpty());
    }

    void passesPortAndEnvironment() {
        Supervisor supervisor(fastPolicy());
        Site site = demoSite(QStringLiteral("env"), 1,
                             {QStringLiteral("--print-env"), QStringLiteral("PORT"),
                              QStringLiteral("--print-env"), QStringLiteral("GREETING")});
        site.environment.insert(QStringLiteral("GREETING"), QStringLiteral("hello world"));
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        QTRY_COMPARE_WITH_TIMEOUT(worker->state(), WorkerState::Running, 10000);
        const QString log = worker->log().tail().join(QLatin1Char('\n'));
        QVERIFY2(log.contains(QStringLiteral("PORT=%1").arg(worker->port())), qPrintable(log));
        QVERIFY2(log.contains(QStringLiteral("GREETING=hello world")), qPrintable(log));
        QVERIFY(QFile::exists(m_logs.filePath(QStringLiteral("env/%1.log").arg(worker->port()))));
        stopAndWait(supervisor);
    }

    void rollingRestartReplacesOneAtATime() {
        Supervisor supervisor(fastPolicy());
        QStringList order;
        QStringList drained;
        BackendHooks hooks;
        hooks.drainWorker = [&](const QString &, quint16 port, std::function<void()> done) {
            drained.append(QString::number(port));
            done();
        };
        supervisor.setBackendHooks(hooks);
        const Site site = demoSite(QStringLiteral("rolling"), 3);
        QVERIFY(supervisor.startSite(site).ok());
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 3), 15000);
        QList<qint64> oldPids;
        for (const WorkerProcess *worker : supervisor.workers(site.name))
            oldPids.append(worker->pid());
        connect(&supervisor, &Supervisor::workerStateChanged, this,
                [&](const QString &, quint16 port, qint64, WorkerState state, const QString &) {
                    if (state == WorkerState::Stopping || state == WorkerState::Running)
                        order.append(QStringLiteral("%1 %2").arg(workerStateName(state)).arg(port));
                });
        QSignalSpy finished(&supervisor, &Supervisor::rollingRestartFinished);
        QSignalSpy progress(&supervisor, &Supervisor::rollingRestartProgress);
        QVERIFY(supervisor.rollingRestart(site).ok());
        QVERIFY(!supervisor.rollingRestart(site).ok()); // one rollout at a time
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(1).toBool(), true);
        QCOMPARE(progress.size(), 3);
        const QList<quint16> ports = supervisor.ports(site.name);
        QStringList expected;
        for (quint16 port : ports)
            expected << QStringLiteral("stopping %1").arg(port)
                     << QStringLiteral("running %1").arg(port);
        QCOMPARE(order, expected);
        QCOMPARE(drained.size(), 3);
        for (int i = 0; i < 3; ++i) {
            QVERIFY(supervisor.workers(site.name).at(i)->pid() != oldPids.at(i));
            QVERIFY(!isAlive(oldPids.at(i)));
        }
        stopAndWait(supervisor);
    }

    void rollingRestartHaltsOnAFailedReplacement() {
        SupervisionPolicy policy = fastPolicy();
        policy.startTimeoutMs = 800;
        Supervisor supervisor(policy);
        const Site site = demoSite(QStringLiteral("halting"), 3);
        QVERIFY(supervisor.startSite(site).ok());
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 3), 15000);
        QList<qint64> oldPids;
        for (const WorkerProcess *worker : supervisor.workers(site.name))
            oldPids.append(worker->pid());
        // The "new release" fails its health check.
        Site broken = site;
        broken.args.append(QStringLiteral("--fail-health"));
        QSignalSpy finished(&supervisor, &Supervisor::rollingRestartFinished);
        QVERIFY(supervisor.rollingRestart(broken).ok());
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(1).toBool(), false);
        const QString message = finished.first().at(2).toString();
        QVERIFY2(message.contains(QStringLiteral("GET /health answered 503")), qPrintable(message));
        QVERIFY2(message.contains(QStringLiteral("2 worker(s) not replaced")), qPrintable(message));
        const auto workers = supervisor.workers(site.name);
        QCOMPARE(workers.at(0)->state(), WorkerState::Failed);
        for (int i = 1; i < 3; ++i) {
            QCOMPARE(workers.at(i)->state(), WorkerState::Running);
            QCOMPARE(workers.at(i)->pid(), oldPids.at(i)); // untouched, still serving
            QVERIFY(isAlive(oldPids.at(i)));
        }
        stopAndWait(supervisor);
    }

    void scalesUpAndDown() {
        Supervisor supervisor(fastPolicy());
        QList<QList<quint16>> portHistory;
        connect(&supervisor, &Supervisor::portsChanged, this,
                [&](const QString &, const QList<quint16> &ports) { portHistory.append(ports); });
        Site site = demoSite(QStringLiteral("scale"), 2);
        site.basePort = freeBase(6);
        QVERIFY(supervisor.startSite(site).ok());
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 2), 15000);
        QVERIFY(supervisor.setWorkerCount(site.name, 4).ok());
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 4), 15000);
        const QList<quint16> fourPorts = supervisor.ports(site.name);
        QCOMPARE(QSet<quint16>(fourPorts.begin(), fourPorts.end()).size(), 4);
        QList<qint64> removedPids;
        for (int i = 1; i < 4; ++i)
            removedPids.append(supervisor.workers(site.name).at(i)->pid());
        QVERIFY(supervisor.setWorkerCount(site.name, 1).ok());
        QCOMPARE(supervisor.ports(site.name), QList<quint16>{site.basePort});
        for (qint64 pid : removedPids)
            QTRY_VERIFY_WITH_TIMEOUT(!isAlive(pid), 10000);
        QCOMPARE(supervisor.workers(site.name).first()->state(), WorkerState::Running);
        QCOMPARE(portHistory.size(), 3);
        QCOMPARE(portHistory.at(1).size(), 4);
        QCOMPARE(portHistory.last(), QList<quint16>{site.basePort});
        stopAndWait(supervisor);
    }

    void stopTakesDownTheWorkersChildren() {
        Supervisor supervisor(fastPolicy());
        const Site site =
            demoSite(QStringLiteral("children"), 1, {QStringLiteral("--spawn-child")});
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        QTRY_COMPARE_WITH_TIMEOUT(worker->state(), WorkerState::Running, 10000);
        static const QRegularExpression childLine(QStringLiteral("child pid (\\d+)"));
        qint64 childPid = 0;
        QTRY_VERIFY_WITH_TIMEOUT(
            (childPid = childLine.match(worker->log().tail().join(QLatin1Char('\n')))
                            .captured(1)
                            .toLongLong()) > 0,
            5000);
        QVERIFY(isAlive(childPid));
        const qint64 pid = worker->pid();
        stopAndWait(supervisor);
        QVERIFY(!isAlive(pid));
        QTRY_VERIFY_WITH_TIMEOUT(!isAlive(childPid), 5000);
    }

    void sigkillAfterKillTimeout() {
        SupervisionPolicy policy = fastPolicy();
        policy.killTimeoutMs = 300;
        Supervisor supervisor(policy);
        const Site site =
            demoSite(QStringLiteral("stubborn"), 1, {QStringLiteral("--ignore-sigterm")});
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        QTRY_COMPARE_WITH_TIMEOUT(worker->state(), WorkerState::Running, 10000);
        QString stoppedCause;
        connect(&supervisor, &Supervisor::workerStateChanged, this,
                [&](const QString &, quint16, qint64, WorkerState state, const QString &cause) {
                    if (state == WorkerState::Stopped) stoppedCause = cause;
                });
        stopAndWait(supervisor);
        QVERIFY2(stoppedCause.contains(QStringLiteral("killed by signal 9")),
                 qPrintable(stoppedCause));
    }

    void skipsAPortHeldByAnotherProcess() {
        Supervisor supervisor(fastPolicy());
        Site site = demoSite(QStringLiteral("skip"), 2);
        QTcpServer foreign;
        QVERIFY(foreign.listen(QHostAddress::LocalHost, site.basePort));
        QVERIFY(supervisor.startSite(site).ok());
        QCOMPARE(supervisor.ports(site.name),
                 (QList<quint16>{quint16(site.basePort + 1), quint16(site.basePort + 2)}));
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 2), 15000);
        // A second site never gets the first one's ports.
        Site other = demoSite(QStringLiteral("other"), 1);
        other.basePort = site.basePort;
        QVERIFY(supervisor.startSite(other).ok());
        QCOMPARE(supervisor.ports(other.name), QList<quint16>{quint16(site.basePort + 3)});
        stopAndWait(supervisor);
    }

    // Issue 13 item 10: a foreign process on the worker's port answers the health probe; that
    // is not our worker being ready. The worker is only running once its own process tree holds
    // the listening socket, and a port taken after allocation is given up for another one.
    void foreignListenerOnTheWorkersPortIsNotReadiness() {
        Supervisor supervisor(fastPolicy());
        Site site = demoSite(QStringLiteral("foreign"), 1);
        // The worker binds only after a pause, so the foreign server can take the port between
        // the supervisor's start and the worker's bind.
        site.command = QStringLiteral("/bin/sh");
        site.args = {QStringLiteral("-c"),
                     QStringLiteral("sleep 0.5; exec \"$0\" --port \"$PORT\""),
                     QStringLiteral(DEMO_WORKER_PATH)};
        QList<Event> events;
        connect(&supervisor, &Supervisor::workerStateChanged, this,
                [&](const QString &, quint16 port, qint64 pid, WorkerState state,
                    const QString &cause) {
                    events.append({port, pid, state, cause});
                });
        QList<QList<quint16>> portHistory;
        connect(&supervisor, &Supervisor::portsChanged, this,
                [&](const QString &, const QList<quint16> &ports) { portHistory.append(ports); });
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        const quint16 takenPort = worker->port();
        QTRY_VERIFY_WITH_TIMEOUT(worker->pid() > 0, 5000);
        ForeignHttpServer foreign;
        QVERIFY(foreign.listen(QHostAddress::LocalHost, takenPort));

        QTRY_VERIFY_WITH_TIMEOUT(worker->state() == WorkerState::Running, 20000);
        const QString history = [&] {
            QStringList lines;
            for (const Event &e : events)
                lines << QStringLiteral("%1 %2: %3")
                             .arg(e.port)
                             .arg(workerStateName(e.state), e.cause);
            return lines.join(QLatin1Char('\n'));
        }();
        // Never "running" on the port the foreign server holds ...
        for (const Event &e : std::as_const(events))
            QVERIFY2(!(e.state == WorkerState::Running && e.port == takenPort),
                     qPrintable(history));
        // ... but moved to another port, which its own process tree holds, saying why.
        QVERIFY2(worker->port() != takenPort, qPrintable(history));
        QVERIFY(processTreeListensOn(worker->pid(), worker->port()));
        QVERIFY2(history.contains(QStringLiteral("127.0.0.1:%1 is already in use by pid %2")
                                      .arg(takenPort)
                                      .arg(QCoreApplication::applicationPid())),
                 qPrintable(history));
        QVERIFY(worker->log()
                    .tail()
                    .join(QLatin1Char('\n'))
                    .contains(QStringLiteral("moved from port %1").arg(takenPort)));
        QCOMPARE(supervisor.ports(site.name), QList<quint16>{worker->port()});
        QVERIFY(!portHistory.isEmpty());
        QCOMPARE(portHistory.last(), QList<quint16>{worker->port()});
        stopAndWait(supervisor);
    }

    // Issue 14 item 1: the state file the next Corral reconciles from (run/PID.groups) was
    // never written; it now lists every running worker's group, written atomically.
    void stateFileListsTheGroupsOfRunningWorkers() {
        const QString stateFile =
            corralStateDirectory() +
            QStringLiteral("/run/%1.groups").arg(QCoreApplication::applicationPid());
        const auto listedGroups = [&] {
            QFile file(stateFile);
            QList<qint64> groups;
            if (!file.open(QIODevice::ReadOnly)) return groups;
            const QList<QByteArray> lines = file.readAll().split('\n');
            for (qsizetype i = 1; i < lines.size(); ++i)
                if (const qint64 group = lines.at(i).split(' ').value(0).toLongLong(); group > 0)
                    groups.append(group);
            return groups;
        };
        Supervisor supervisor(fastPolicy());
        const Site site = demoSite(QStringLiteral("statefile"), 2);
        QVERIFY(supervisor.startSite(site).ok());
        QTRY_VERIFY_WITH_TIMEOUT(allInState(supervisor, site.name, WorkerState::Running, 2), 15000);
        const qint64 first = supervisor.workers(site.name).at(0)->pid();
        const qint64 second = supervisor.workers(site.name).at(1)->pid();
        QVERIFY2(listedGroups().contains(first) && listedGroups().contains(second),
                 qPrintable(stateFile));
        stopAndWait(supervisor);
        QVERIFY(!listedGroups().contains(first));
        QVERIFY(!listedGroups().contains(second));
    }

    void reconcilesGroupsLeftByADeadCorral() {
        // A "dead Corral": a process that has exited, whose state file still lists a group.
        QProcess deadOwner;
        deadOwner.start(QStringLiteral("sleep"), {QStringLiteral("0")});
        QVERIFY(deadOwner.waitForStarted());
        const qint64 deadPid = deadOwner.processId();
        QVERIFY(deadOwner.waitForFinished());
        QProcess orphan;
        orphan.setChildProcessModifier([] { ::setpgid(0, 0); });
        orphan.start(QStringLiteral("sleep"), {QStringLiteral("60")});
        QVERIFY(orphan.waitForStarted());
        const qint64 group = orphan.processId();
        QFile stat(QStringLiteral("/proc/%1/stat").arg(group));
        QVERIFY(stat.open(QIODevice::ReadOnly));
        const QByteArray text = stat.readAll();
        const QByteArray start = text.mid(text.lastIndexOf(')') + 2).split(' ').at(19);
        QTemporaryDir run;
        QFile state(run.filePath(QStringLiteral("%1.groups").arg(deadPid)));
        QVERIFY(state.open(QIODevice::WriteOnly));
        state.write(QByteArray::number(deadPid) + " 1\n" + QByteArray::number(group) + ' ' + start +
                    '\n');
        state.close();
        // A file of a living owner (this test) is left alone.
        QFile own(run.filePath(QStringLiteral("mine.groups")));
        QVERIFY(own.open(QIODevice::WriteOnly));
        own.write(QByteArray::number(::getpid()) + " 0\n");
        own.close();

        QCOMPARE(ProcessGroupReaper::reconcileStateFiles(run.path().toStdString()), 1);
        QVERIFY(orphan.waitForFinished(5000));
        QCOMPARE(orphan.exitStatus(), QProcess::CrashExit);
        QVERIFY(!state.exists());
    }

    void noisyWorkerLogIsRotatedAndBounded() {
        SupervisionPolicy policy = fastPolicy();
        policy.logMaxBytes = 256 * 1024;
        policy.logKeep = 2;
        Supervisor supervisor(policy);
        const Site site = demoSite(QStringLiteral("noisy"), 1,
                                   {QStringLiteral("--log-rate"), QStringLiteral("4000000")});
        QVERIFY(supervisor.startSite(site).ok());
        const WorkerProcess *worker = supervisor.workers(site.name).first();
        QTRY_COMPARE_WITH_TIMEOUT(worker->state(), WorkerState::Running, 10000);
        // The supervisor stays responsive (QTRY polls its event loop) while megabytes arrive.
        QTRY_VERIFY_WITH_TIMEOUT(worker->log().totalBytes() > 2 * 1024 * 1024, 20000);
        const QString path = m_logs.filePath(QStringLiteral("noisy/%1.log").arg(worker->port()));
        QVERIFY(QFile::exists(path + QStringLiteral(".1")));
        QVERIFY(QFile::exists(path + QStringLiteral(".2")));
        QVERIFY(!QFile::exists(path + QStringLiteral(".3")));
        for (const QString &name :
             QStringList{path, path + QStringLiteral(".1"), path + QStringLiteral(".2")})
            QVERIFY(QFileInfo(name).size() <= policy.logMaxBytes);
        qsizetype tailBytes = 0;
        for (const QString &line : worker->log().tail(1 << 20))
            tailBytes += line.size();
        QVERIFY(tailBytes <= RotatingLog::DefaultTailBytes);
        stopAndWait(supervisor);
    }
};

QTEST_GUILESS_MAIN(TestSupervisor)
#include "tst_supervisor.moc"
