#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "inventory/OperationJournal.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteAddBackend.h"
#include "util/ListeningSockets.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <csignal>

using namespace corral;
using namespace corral::test;

/// corralctl add-backend under faults, against a real sshd (127.0.0.2, this machine) and a
/// real nginx: the SSH connection killed during the health wait (the host reachable again at
/// once, or gone), and an inventory that cannot be saved after the balancer already serves
/// the new backend. What must hold: the message says what is true, no worker is left behind
/// unrecorded (the operation journal keeps it), and the next command reconciles it (adopts or
/// stops it) instead of taking another port.
class TestAddBackendFaults : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    NginxInstance m_nginx{QStringLiteral("faults")};
    QTemporaryDir m_home;
    std::unique_ptr<SshSession> m_session;
    QString m_remoteHome; // $HOME of the SSH user on the "remote" host (this machine)
    Site m_site;          // as in the inventory before each test
    QList<quint16> m_started;
    qint64 m_stopped = 0; // the new worker, while waitForNewWorker keeps it stopped

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }
    QString journalPath() const { return OperationJournal::pathFor(inventoryPath(), m_site.name); }
    Corralctl corralctl() const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath(), 90000};
    }
    CtlRun ctl(const QStringList &args) const { return corralctl().run(args); }

    QString workerDirectory() const {
        return m_remoteHome + QStringLiteral("/.local/state/corral/workers/") + m_site.name;
    }
    QString pidFile(quint16 port) const {
        return workerDirectory() + QStringLiteral("/%1.pid").arg(port);
    }
    /// The pid in a worker's pid file on the host, 0 without one.
    qint64 pidOf(quint16 port) const {
        return readFile(pidFile(port)).split('\n').first().toLongLong();
    }
    static bool alive(qint64 pid) {
        if (pid <= 0) return false;
        const QByteArray stat = readFile(QStringLiteral("/proc/%1/stat").arg(pid));
        const qsizetype end = stat.lastIndexOf(") ");
        const QByteArray state = end < 0 ? QByteArray() : stat.mid(end + 2, 1);
        return !state.isEmpty() && state != "Z" && state != "X";
    }
    /// Ports with a pid file that the inventory's site does not list: the new worker's.
    QList<quint16> newWorkerPorts() const {
        QList<quint16> ports;
        for (const QString &name :
             QDir(workerDirectory()).entryList({QStringLiteral("*.pid")}, QDir::Files)) {
            const auto port = quint16(name.section(QLatin1Char('.'), 0, 0).toUInt());
            if (!m_site.ports.contains(port)) ports.append(port);
        }
        return ports;
    }
    /// Waits until add-backend has started its worker and a health probe runs on the host (a
    /// curl below the sshd); returns the worker's port. The worker is stopped (SIGSTOP) as soon
    /// as its pid file appears, so every probe hangs until curl's own 2 s limit and one is
    /// nearly always in flight: a probe that answered at once let add-backend finish before
    /// this poll saw it, on a loaded CI machine. resumeWorker() lets the worker go on.
    quint16 waitForNewWorker(QProcess &process) {
        const QDeadlineTimer deadline(60000);
        m_stopped = 0;
        QList<quint16> ports;
        while (!deadline.hasExpired() && process.state() != QProcess::NotRunning) {
            process.waitForReadyRead(5);
            ports = newWorkerPorts();
            if (ports.size() != 1) continue;
            if (!m_stopped) {
                const qint64 pid = pidOf(ports.first());
                if (pid > 0 && ::kill(pid_t(pid), SIGSTOP) == 0) m_stopped = pid;
            }
            // The probe itself is stopped too: it stays in flight however long the kill
            // that follows takes (curl's own 2 s limit does not run while it is stopped).
            // killConnections() and killHard() end it with the rest of the tree.
            if (const qint64 probe = remoteCommand("curl"); m_stopped && probe > 0 &&
                                                            ::kill(pid_t(probe), SIGSTOP) == 0 &&
                                                            remoteCommand("curl") == probe)
                return ports.first();
        }
        qWarning("no health probe seen: new pid files for ports %s, corralctl %s: %s",
                 qPrintable(portList(ports)),
                 process.state() == QProcess::NotRunning ? "ended" : "still runs",
                 process.readAllStandardOutput().constData());
        resumeWorker();
        return 0;
    }
    void resumeWorker() {
        if (m_stopped) ::kill(pid_t(m_stopped), SIGCONT);
        m_stopped = 0;
    }
    static QString portList(const QList<quint16> &ports) {
        QStringList texts;
        for (quint16 port : ports)
            texts.append(QString::number(port));
        return texts.join(QLatin1Char(' '));
    }
    /// The pid of a process named `program` below the sshd (a command run over SSH), or 0.
    qint64 remoteCommand(const QByteArray &program) const {
        for (qint64 pid : processTree(m_server.pid()))
            if (readFile(QStringLiteral("/proc/%1/comm").arg(pid)).trimmed() == program) return pid;
        return 0;
    }
    /// SIGKILL to the sshd processes serving connections (the listener stays): every open SSH
    /// connection to the host dies mid-command.
    void killConnections() {
        for (qint64 pid : processTree(m_server.pid()))
            if (pid != m_server.pid()) ::kill(pid_t(pid), SIGKILL);
    }

    void writeInventory(const Site &site) {
        QVERIFY_RESULT(corral::test::writeInventory(
            inventoryPath(), m_server.inventoryHost(QStringLiteral("remote")), site));
    }
    Site savedSite() const {
        auto inventory = Inventory::load(inventoryPath());
        if (!inventory || !inventory->site(m_site.name)) return {};
        return *inventory->site(m_site.name);
    }
    QJsonObject journal() const {
        return QJsonDocument::fromJson(readFile(journalPath())).object();
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
        QVERIFY(!m_remoteHome.isEmpty());

        m_site.name = QStringLiteral("faults");
        m_site.command = QStringLiteral(DEMO_WORKER_PATH);
        m_site.args = {QStringLiteral("--port"), QStringLiteral("{port}")};
        // Each health probe (curl on the host) takes 1.5 s, 2 s while waitForNewWorker keeps
        // the worker stopped: a connection killed while one runs dies mid-command. (Between
        // probes, the next one would just reconnect.)
        m_site.healthPath = QStringLiteral("/sleep?ms=1500");
        m_site.serverNames = {QStringLiteral("shop.example.com")};
        m_site.basePort = workerBasePort();
        m_site.workers = 0;
        auto ports = RemoteWorkers::allocatePorts(*m_session, m_site, 1);
        QVERIFY_RESULT(ports);
        const quint16 first = ports->first();
        QVERIFY_RESULT(RemoteWorkers::start(*m_session, m_site, first));
        m_started.append(first);
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(*m_session, m_site, first));
        m_site.backends = {Backend{QStringLiteral("127.0.0.1"), first}};
        m_site.ports = {first};
        m_site.balancer = m_nginx.balancer(QStringLiteral("remote"));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        ConfigApplier applier(*m_session);
        const ApplyReport applied =
            applier.apply(m_site, RemoteBalancer::forSite(m_site).value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));
        writeInventory(m_site);
        // Trust the host key once, so the runs below need no --accept-new.
        const CtlRun test = ctl({QStringLiteral("host"), QStringLiteral("test"),
                                 QStringLiteral("remote"), QStringLiteral("--accept-new")});
        QVERIFY2(test.exitCode == 0, qPrintable(test.err));
    }

    void cleanupTestCase() {
        QProcess::execute(QStringLiteral("chattr"), {QStringLiteral("-i"), inventoryPath()});
        m_nginx.stop();
        QString error;
        if (!m_server.pid()) (void)m_server.start(&error);
        if (m_session) {
            for (quint16 port : std::as_const(m_started))
                (void)RemoteWorkers::stop(*m_session, m_site.name, port);
            for (quint16 port : newWorkerPorts())
                (void)RemoteWorkers::stop(*m_session, m_site.name, port);
        }
        m_session.reset();
    }

    // The connection dies while add-backend waits for the new worker's health; the host is
    // reachable again at once. The clean-up reconnects, stops the worker, checks that it is
    // gone and says so; nothing is left for a later command.
    void connectionKilledDuringHealthWaitIsCleanedUp() {
        m_session->disconnect();
        QProcess process;
        process.setProcessEnvironment(corralctl().environment());
        process.start(QStringLiteral(CORRALCTL_PATH), {QStringLiteral("add-backend"), m_site.name});
        const auto reap = qScopeGuard([&] {
            process.kill();
            process.waitForFinished(5000);
        });
        const quint16 port = waitForNewWorker(process);
        QVERIFY2(port, qPrintable(QString::fromUtf8(process.readAllStandardError())));
        const qint64 pid = pidOf(port);
        QVERIFY(alive(pid));
        killConnections();
        resumeWorker();
        QVERIFY(process.waitForFinished(60000));
        const QString err = QString::fromUtf8(process.readAllStandardError());
        qInfo("%s", qPrintable(err.trimmed()));
        QCOMPARE(process.exitCode(), 1);
        QVERIFY2(err.contains(QStringLiteral("health: ")), qPrintable(err));
        QVERIFY2(err.contains(QStringLiteral("the new worker on port %1 of remote (pid %2) was "
                                             "stopped and its pid file removed")
                                  .arg(port)
                                  .arg(pid)),
                 qPrintable(err));
        QVERIFY(!alive(pid));
        QVERIFY(!QFile::exists(pidFile(port)));
        QVERIFY2(!QFile::exists(journalPath()), readFile(journalPath()).constData());
        QCOMPARE(savedSite().backends, m_site.backends);
        QVERIFY(!readFile(m_nginx.siteFile()).contains(QByteArray(":" + QByteArray::number(port))));
    }

    // The host goes away during the health wait (sshd and its connections killed): the
    // clean-up cannot reach it and says so; the worker keeps running with its pid file, and
    // the journal records it. While the host is away, operations on the site are refused,
    // naming the journal. Once it is back, the next add-backend first stops that worker, then
    // adds one on the same port (not the next one).
    void hostGoneDuringHealthWaitIsReconciledLater() {
        m_session->disconnect();
        QProcess process;
        process.setProcessEnvironment(corralctl().environment());
        process.start(QStringLiteral(CORRALCTL_PATH), {QStringLiteral("add-backend"), m_site.name});
        const auto reap = qScopeGuard([&] {
            process.kill();
            process.waitForFinished(5000);
        });
        const quint16 port = waitForNewWorker(process);
        QVERIFY(port);
        const qint64 pid = pidOf(port);
        m_server.killHard();
        resumeWorker();
        QVERIFY(process.waitForFinished(60000));
        const QString err = QString::fromUtf8(process.readAllStandardError());
        qInfo("%s", qPrintable(err.trimmed()));
        QCOMPARE(process.exitCode(), 1);
        QVERIFY2(err.contains(QStringLiteral("the new worker on port %1 of remote (pid %2) could "
                                             "not be stopped")
                                  .arg(port)
                                  .arg(pid)),
                 qPrintable(err));
        QVERIFY2(err.contains(journalPath()), qPrintable(err));
        QVERIFY2(!err.contains(QStringLiteral("nothing changed")), qPrintable(err));
        QVERIFY(alive(pid)); // honestly reported: it still runs
        QVERIFY(QFile::exists(pidFile(port)));
        const QJsonObject recorded = journal();
        QCOMPARE(recorded.value(QStringLiteral("operation")).toString(),
                 QStringLiteral("add-backend"));
        QCOMPARE(recorded.value(QStringLiteral("port")).toInt(), int(port));
        QCOMPARE(recorded.value(QStringLiteral("pid")).toInteger(), pid);
        QCOMPARE(recorded.value(QStringLiteral("host")).toString(), QStringLiteral("remote"));
        QCOMPARE(savedSite().backends, m_site.backends);

        // Host away: refused, naming the journal.
        const CtlRun refused = ctl({QStringLiteral("rolling-restart"), m_site.name});
        qInfo("%s", qPrintable(refused.err.trimmed()));
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(journalPath()), qPrintable(refused.err));
        QVERIFY2(refused.err.contains(QStringLiteral("corralctl reconcile ") + m_site.name),
                 qPrintable(refused.err));
        QVERIFY(QFile::exists(journalPath()));

        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        Site fast = m_site; // the next worker may start at once
        fast.args = {QStringLiteral("--port"), QStringLiteral("{port}")};
        writeInventory(fast);
        const CtlRun next = ctl({QStringLiteral("add-backend"), m_site.name});
        qInfo("%s", qPrintable(next.out.section(QLatin1Char('\n'), 0, 1)));
        QVERIFY2(next.exitCode == 0, qPrintable(next.err + next.out));
        QVERIFY2(next.out.contains(
                     QStringLiteral("reconciled an interrupted add-backend of %1: stopped the "
                                    "worker on port %2 of remote (pid %3)")
                         .arg(m_site.name)
                         .arg(port)
                         .arg(pid)),
                 qPrintable(next.out));
        QVERIFY(!alive(pid));
        QVERIFY(!QFile::exists(journalPath()));
        const Site saved = savedSite();
        QCOMPARE(saved.backends.size(), 2);
        QCOMPARE(saved.backends.last().port, port); // the same port, not the next one
        m_started.append(port);
        QVERIFY(alive(pidOf(port)));
        m_site = saved;
        m_site.args = fast.args;
    }

    // The balancer already serves the new backend when the inventory cannot be saved
    // (immutable file). The message says so and names the journal; the next add-backend
    // adopts that backend into the inventory first and then adds one more, so no worker is
    // orphaned.
    void unsaveableInventoryIsAdoptedByTheNextCommand() {
        writeInventory(m_site);
        if (QProcess::execute(QStringLiteral("chattr"), {QStringLiteral("+i"), inventoryPath()}) !=
            0)
            QSKIP("chattr +i does not work on this file system");
        auto unlock = qScopeGuard([&] {
            QProcess::execute(QStringLiteral("chattr"), {QStringLiteral("-i"), inventoryPath()});
        });
        const CtlRun failed = ctl({QStringLiteral("add-backend"), m_site.name});
        qInfo("%s", qPrintable(failed.err.trimmed()));
        QCOMPARE(failed.exitCode, 1);
        QVERIFY2(failed.err.contains(QStringLiteral("is serving through the balancer but the "
                                                    "inventory was not saved")),
                 qPrintable(failed.err));
        QVERIFY2(failed.err.contains(journalPath()), qPrintable(failed.err));
        const QList<quint16> orphans = newWorkerPorts();
        QCOMPARE(orphans.size(), 1);
        const quint16 port = orphans.first();
        m_started.append(port);
        QVERIFY(alive(pidOf(port)));
        const QByteArray key = QStringLiteral("127.0.0.1:%1 ").arg(port).toUtf8();
        QVERIFY(readFile(m_nginx.siteFile()).contains(key));
        QCOMPARE(journal().value(QStringLiteral("port")).toInt(), int(port));
        QCOMPARE(journal().value(QStringLiteral("step")).toString(), QStringLiteral("save"));
        QCOMPARE(savedSite().backends, m_site.backends);

        unlock.dismiss();
        QProcess::execute(QStringLiteral("chattr"), {QStringLiteral("-i"), inventoryPath()});
        const CtlRun next = ctl({QStringLiteral("add-backend"), m_site.name});
        qInfo("%s", qPrintable(next.out.section(QLatin1Char('\n'), 0, 1)));
        QVERIFY2(next.exitCode == 0, qPrintable(next.err + next.out));
        QVERIFY2(next.out.contains(QStringLiteral("reconciled an interrupted add-backend of %1: "
                                                  "adopted 127.0.0.1:%2")
                                       .arg(m_site.name)
                                       .arg(port)),
                 qPrintable(next.out));
        QVERIFY(!QFile::exists(journalPath()));
        const Site saved = savedSite();
        QCOMPARE(saved.backends.size(), m_site.backends.size() + 2);
        QCOMPARE(saved.backends.at(m_site.backends.size()).port, port);
        const quint16 another = saved.backends.last().port;
        QVERIFY(another != port);
        m_started.append(another);
        QVERIFY(alive(pidOf(port)));
        QVERIFY(alive(pidOf(another)));
        QVERIFY(saved.ports.contains(port) && saved.ports.contains(another));
        m_site = saved;
    }

    // The connection dies while the balancer validates the config that lists the new backend
    // (the file is installed, nothing reloaded): the clean-up stops the worker on a new
    // connection, finds the installed config still listing the backend and keeps the journal;
    // the next reconcile applies the site's config again, so the balancer no longer lists a
    // backend whose worker is gone.
    void connectionKilledDuringApplyIsReconciled() {
        const QString marker = m_home.filePath(QStringLiteral("validating"));
        const QString armed = m_home.filePath(QStringLiteral("armed"));
        Site slowValidate = m_site;
        // Waits only once (armed), so the reconcile's own apply validates at once.
        slowValidate.balancer->validate = {
            QStringLiteral("sh"), QStringLiteral("-c"),
            QStringLiteral("if [ -e \"$0\" ]; then rm -f \"$0\"; touch \"$1\"; sleep 4; fi; "
                           "shift; exec \"$@\""),
            armed, marker};
        slowValidate.balancer->validate += m_nginx.validateCommand();
        writeInventory(slowValidate);
        QVERIFY(writeFile(armed, ""));
        const QByteArray configBefore = readFile(m_nginx.siteFile());
        m_session->disconnect();
        QProcess process;
        process.setProcessEnvironment(corralctl().environment());
        process.start(QStringLiteral(CORRALCTL_PATH), {QStringLiteral("add-backend"), m_site.name});
        const auto reap = qScopeGuard([&] {
            process.kill();
            process.waitForFinished(5000);
        });
        QDeadlineTimer deadline(30000);
        while (!QFile::exists(marker) && !deadline.hasExpired() &&
               process.state() != QProcess::NotRunning)
            QThread::msleep(20);
        QVERIFY2(QFile::exists(marker),
                 qPrintable(QString::fromUtf8(process.readAllStandardError())));
        const QList<quint16> started = newWorkerPorts();
        QCOMPARE(started.size(), 1);
        const quint16 port = started.first();
        const qint64 pid = pidOf(port);
        killConnections();
        QVERIFY(process.waitForFinished(60000));
        const QString err = QString::fromUtf8(process.readAllStandardError());
        qInfo("%s", qPrintable(err.trimmed()));
        QCOMPARE(process.exitCode(), 1);
        QVERIFY2(err.contains(QStringLiteral("the new worker on port %1 of remote (pid %2) was "
                                             "stopped and its pid file removed")
                                  .arg(port)
                                  .arg(pid)),
                 qPrintable(err));
        const QString key = QStringLiteral("127.0.0.1:%1").arg(port);
        QVERIFY2(err.contains(QStringLiteral("still lists ") + key), qPrintable(err));
        QVERIFY2(err.contains(journalPath()), qPrintable(err));
        QVERIFY(!err.contains(QStringLiteral("nothing changed")));
        QVERIFY(!alive(pid));
        QVERIFY(!QFile::exists(pidFile(port)));
        QVERIFY(readFile(m_nginx.siteFile()).contains((key + QLatin1Char(' ')).toUtf8()));
        QCOMPARE(journal().value(QStringLiteral("port")).toInt(), int(port));
        QCOMPARE(savedSite().backends, m_site.backends);

        const CtlRun reconciled = ctl({QStringLiteral("reconcile"), m_site.name});
        qInfo("%s", qPrintable(reconciled.out.trimmed()));
        QVERIFY2(reconciled.exitCode == 0, qPrintable(reconciled.err + reconciled.out));
        QVERIFY2(reconciled.out.contains(QStringLiteral("reconciled an interrupted add-backend of "
                                                        "%1: the worker on port %2 of remote was "
                                                        "not running")
                                             .arg(m_site.name)
                                             .arg(port)),
                 qPrintable(reconciled.out));
        QVERIFY2(reconciled.out.contains(QStringLiteral("removed %1 from").arg(key)),
                 qPrintable(reconciled.out));
        QVERIFY(!QFile::exists(journalPath()));
        QVERIFY(!readFile(m_nginx.siteFile()).contains((key + QLatin1Char(' ')).toUtf8()));
        QCOMPARE(readFile(m_nginx.siteFile()), configBefore);
        QCOMPARE(savedSite().backends, m_site.backends);
        writeInventory(m_site);
        const CtlRun nothing = ctl({QStringLiteral("reconcile"), m_site.name});
        QCOMPARE(nothing.exitCode, 0);
        QVERIFY2(nothing.out.contains(QStringLiteral("nothing pending")), qPrintable(nothing.out));
    }

    // Which backend an installed config lists: whole addresses only.
    void configTextListsWholeAddresses() {
        const QByteArray nginx = "upstream corral-shop {\n    server 127.0.0.1:30041 max_fails=3;\n"
                                 "    server 10.0.0.1:80;\n}\n";
        QVERIFY(configTextLists(nginx, Backend{QStringLiteral("127.0.0.1"), 30041}));
        QVERIFY(!configTextLists(nginx, Backend{QStringLiteral("127.0.0.1"), 3004}));
        QVERIFY(configTextLists(nginx, Backend{QStringLiteral("10.0.0.1"), 80}));
        QVERIFY(!configTextLists(nginx, Backend{QStringLiteral("0.0.1"), 80}));
        const QByteArray apache = "BalancerMember \"http://[::1]:3000\" route=r1\n";
        QVERIFY(configTextLists(apache, Backend{QStringLiteral("::1"), 3000}));
        QVERIFY(!configTextLists(apache, Backend{QStringLiteral("::1"), 300}));
    }

    // What add-backend records reads back as written; the file is private to its owner.
    void journalRoundTrip() {
        const OperationJournal journal(m_home.filePath(QStringLiteral("rt/journal/shop.json")));
        PendingOperation operation;
        operation.site = QStringLiteral("shop");
        operation.host = QStringLiteral("web1");
        operation.address = QStringLiteral("10.0.0.5");
        operation.port = 3004;
        operation.pid = 4711;
        operation.step = QStringLiteral("health");
        operation.started = QDateTime(QDate(2026, 12, 2), QTime(10, 31, 2), Qt::UTC);
        operation.corralctlPid = 812;
        operation.command = QStringLiteral("corralctl add-backend shop");
        QVERIFY_RESULT(journal.record(operation));
        // Owner read/write (0x600 in QFile's user bits), nothing for group and others.
        QCOMPARE(int(QFileInfo(journal.path()).permissions() & 0x0FFF), 0x600);
        auto read = journal.pending();
        QVERIFY_RESULT(read);
        QVERIFY(read->has_value());
        const PendingOperation &back = read->value();
        QCOMPARE(back.backend().key(), QStringLiteral("10.0.0.5:3004"));
        QCOMPARE(back.pid, 4711);
        QCOMPARE(back.started, operation.started);
        QCOMPARE(back.describe(),
                 QStringLiteral("add-backend of 10.0.0.5:3004 on host web1 (worker pid 4711), "
                                "started 2026-12-02 10:31:02 UTC by corralctl add-backend shop "
                                "(pid 812), last step: health"));
        QVERIFY_RESULT(journal.clear());
        QVERIFY(!QFile::exists(journal.path()));
        QVERIFY_RESULT(journal.clear()); // absent is fine
        auto none = journal.pending();
        QVERIFY_RESULT(none);
        QVERIFY(!none->has_value());
    }

    // A journal that is not what Corral writes is refused with the file and the field named.
    void badJournalIsNamed() {
        QDir().mkpath(QFileInfo(journalPath()).absolutePath());
        QVERIFY(writeFile(journalPath(), "{\"operation\": \"add-backend\", \"site\": \"faults\", "
                                         "\"host\": \"remote\", \"address\": \"127.0.0.1\", "
                                         "\"port\": 99999}"));
        const auto removeJournal = qScopeGuard([&] { QFile::remove(journalPath()); });
        const CtlRun refused = ctl({QStringLiteral("add-backend"), m_site.name});
        qInfo("%s", qPrintable(refused.err.trimmed()));
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(journalPath()) &&
                     refused.err.contains(QStringLiteral("port")),
                 qPrintable(refused.err));
        QCOMPARE(savedSite().backends, m_site.backends);
    }
};

QTEST_GUILESS_MAIN(TestAddBackendFaults)
#include "tst_addbackendfaults.moc"
