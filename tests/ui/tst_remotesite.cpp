#include "ApplyConfigDialog.h"
#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "LogView.h"
#include "MainWindow.h"
#include "ResultVerify.h"
#include "ScriptedConfirmer.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "WorkerTableModel.h"
#include "charts/DistributionChartView.h"
#include "cluster/RemoteSite.h"
#include "cluster/RemoteSiteMonitor.h"
#include "inventory/Inventory.h"
#include "inventory/OperationJournal.h"
#include "remote/RemoteWorkers.h"
#include "ssh/HostConnections.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshHost.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QAction>
#include <QDeadlineTimer>
#include <QInputDialog>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScopeGuard>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

using namespace corral;
using namespace corral::test;

/// The console driving a production site: a real nginx (temporary prefix) on the "remote"
/// host, a real sshd on 127.0.0.6 standing in for that host. Apply through the diff dialog,
/// the distribution chart fed from nginx's access log, one-click add-backend.
class TestRemoteSite : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;
    SshServer m_server{QStringLiteral("127.0.0.6")};
    NginxInstance m_nginx{QStringLiteral("shop")};
    DemoWorkers m_workers{2};

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }
    /// Every remote command this process (the console) sends (SshTrace).
    QString consoleTrace() const { return m_home.filePath(QStringLiteral("console-trace.txt")); }

    /// The remote commands of operation `label` in a trace, in order, with what differs
    /// between two runs of the same operation by design made equal: numbers (ports, pids,
    /// times), random operation names, the front end named in the lock holder, and how many
    /// times a poll was repeated.
    static QStringList operationCommands(const QByteArray &trace, const QString &label) {
        // ConfigApplier's operation names (20261202T101500123Z-k3x9q), upload temporaries and
        // other random names.
        static const QRegularExpression operation(QStringLiteral("[0-9]{8}T[0-9]{9}Z-[0-9a-z]+"));
        static const QRegularExpression random(
            QStringLiteral("[0-9a-f]{8,}|corral-tmp-[0-9A-Za-z]+"));
        static const QRegularExpression number(QStringLiteral("[0-9]+"));
        QStringList commands;
        for (const QByteArray &line : trace.split('\n')) {
            const QList<QByteArray> fields = line.split('\t');
            if (fields.size() != 4 || QString::fromUtf8(fields.at(0)) != label) continue;
            QString command = QString::fromUtf8(fields.at(2) + ' ' + fields.at(3));
            command.replace(QStringLiteral("Corral console"), QStringLiteral("ACTOR"));
            command.replace(QStringLiteral("corralctl"), QStringLiteral("ACTOR"));
            command.replace(operation, QStringLiteral("OPERATION"));
            command.replace(random, QStringLiteral("X"));
            command.replace(number, QStringLiteral("N"));
            // A poll repeated until it succeeds (health, verify) counts once: how often it
            // ran depends on timing, not on the front end.
            if (commands.isEmpty() || commands.last() != command) commands.append(command);
        }
        return commands;
    }

    Site site() const {
        Site site;
        site.name = QStringLiteral("shop");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        site.healthPath = QStringLiteral("/health");
        site.workers = 0;
        site.basePort = workerBasePort();
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)},
                         Backend{QStringLiteral("127.0.0.1"), m_workers.port(1)}};
        site.balancer = m_nginx.balancer(QStringLiteral("remote"));
        return site;
    }

    Host host() const { return m_server.inventoryHost(QStringLiteral("remote")); }

    MainWindow::Options options() const {
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        options.tickIntervalMs = 250;
        return options;
    }

    void selectShop(MainWindow &window) {
        auto *model = qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
        QVERIFY(model);
        window.hostTree()->setCurrentIndex(model->siteIndex(QStringLiteral("shop")));
        QVERIFY(window.remoteMonitor());
    }

private Q_SLOTS:
    void initTestCase() {
        if (!NginxInstance::available())
            QSKIP("nginx is not installed (installer/install-deps.sh installs it)");
        QVERIFY(m_home.isValid());
        // Before the first remote command: the trace file is opened once per process.
        qputenv("CORRAL_SSH_TRACE", consoleTrace().toUtf8());
        // The console's known_hosts, settings and keychain fallback stay in the temporary home;
        // no D-Bus session: key-file hosts need no secret.
        qputenv("HOME", m_home.path().toUtf8());
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        qputenv("XDG_STATE_HOME", m_home.filePath(QStringLiteral("state")).toUtf8());
        qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-test-bus");
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        QVERIFY2(m_workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));

        // Trust the host once, as "Add host" would have: the console then connects silently.
        SshConfig trust = SshConfig::fromHost(host());
        trust.acceptNew = true;
        SshSession session(trust);
        QVERIFY_RESULT(session.connect());

        QVERIFY_RESULT(writeInventory(inventoryPath(), host(), site()));
    }

    void cleanupTestCase() { m_workers.stop(); }

    // The dialog shows the diff first and changes nothing; Apply installs it and lists the
    // steps; nginx then balances over both workers.
    void applyDialogShowsTheDiffThenApplies() {
        MainWindow window(inventoryPath(), options());
        selectShop(window);
        QAction *apply = window.action(QStringLiteral("applyBalancer"));
        QVERIFY(apply->isEnabled());
        apply->trigger();
        auto *dialog = window.findChild<ApplyConfigDialog *>();
        QVERIFY(dialog);
        QSignalSpy previewed(dialog, &ApplyConfigDialog::previewed);
        QVERIFY(previewed.wait(30000));
        QCOMPARE(dialog->phase(), ApplyConfigDialog::Phase::Reviewing);
        QVERIFY2(dialog->diff().startsWith(QStringLiteral("--- /dev/null")),
                 qPrintable(dialog->diff()));
        QVERIFY(dialog->diff().contains(QStringLiteral("+upstream corral-shop {")));
        QVERIFY(dialog->diff().contains(
            QStringLiteral("+    server 127.0.0.1:%1").arg(m_workers.port(1))));
        QVERIFY(!QFile::exists(m_nginx.siteFile())); // a preview changes nothing
        QVERIFY(dialog->applyButton()->isEnabled());

        QSignalSpy finished(dialog, &ApplyConfigDialog::applyFinished);
        dialog->applyButton()->click();
        QCOMPARE(dialog->phase(), ApplyConfigDialog::Phase::Applying);
        dialog->reject(); // refused while applying: the outcome must be seen
        QVERIFY(dialog->isVisible());
        QVERIFY(finished.wait(60000));
        QVERIFY2(finished.first().at(0).toBool(), qPrintable(finished.first().at(1).toString()));
        QCOMPARE(dialog->phase(), ApplyConfigDialog::Phase::Applied);
        const QStringList steps = dialog->steps();
        QVERIFY2(steps.filter(QStringLiteral("FAIL")).isEmpty(),
                 qPrintable(steps.join(QLatin1Char('\n'))));
        QVERIFY2(!steps.filter(QStringLiteral("ok    reload: ")).isEmpty(),
                 qPrintable(steps.join(QLatin1Char('\n'))));
        QVERIFY2(!steps.filter(QStringLiteral("ok    verify: ")).isEmpty(),
                 qPrintable(steps.join(QLatin1Char('\n'))));
        QVERIFY(readFile(m_nginx.siteFile()).contains("upstream corral-shop"));
        QSet<qint64> answered;
        for (int i = 0; i < 4; ++i)
            answered.insert(httpGet(m_nginx.httpPort()).jsonNumber(QStringLiteral("port")));
        QCOMPARE(answered, (QSet<qint64>{m_workers.port(0), m_workers.port(1)}));
        dialog->close();
    }

    // What the dialog applies is what was reviewed: a file changed on the host after the
    // preview is left alone and the new diff shown.
    void applyRefusesAFileChangedSinceThePreview() {
        Site changed = site();
        changed.backends[0].weight = 4;
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->updateSite(changed));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto restore = qScopeGuard([&] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->updateSite(site())) (void)inventory->save(inventoryPath());
        });
        ApplyConfigDialog dialog(changed, nullptr, RemoteSiteOptions{});
        QCOMPARE(dialog.phase(), ApplyConfigDialog::Phase::Failed); // no host: says so
        QVERIFY(!dialog.message().isEmpty());

        MainWindow window(inventoryPath(), options());
        selectShop(window);
        window.action(QStringLiteral("applyBalancer"))->trigger();
        auto *shown = window.findChild<ApplyConfigDialog *>();
        QVERIFY(shown);
        QSignalSpy previewed(shown, &ApplyConfigDialog::previewed);
        QVERIFY(previewed.wait(30000));
        QCOMPARE(shown->phase(), ApplyConfigDialog::Phase::Reviewing);
        QVERIFY(shown->diff().contains(QStringLiteral("weight=4")));

        // Someone edits the file on the host in the meantime.
        const QByteArray edited = readFile(m_nginx.siteFile()) + "# edited by hand\n";
        QVERIFY(writeFile(m_nginx.siteFile(), edited));
        QSignalSpy finished(shown, &ApplyConfigDialog::applyFinished);
        shown->applyButton()->click();
        QVERIFY(finished.wait(60000));
        QVERIFY(!finished.first().at(0).toBool());
        QVERIFY2(finished.first().at(1).toString().contains(QStringLiteral("changed since")),
                 qPrintable(finished.first().at(1).toString()));
        QCOMPARE(readFile(m_nginx.siteFile()), edited);
        QVERIFY(shown->diff().contains(QStringLiteral("-# edited by hand")));
        QCOMPARE(shown->phase(), ApplyConfigDialog::Phase::Reviewing); // may apply the new diff
        // Put the reviewed state back for the tests that follow.
        QVERIFY(writeFile(m_nginx.siteFile(), edited.chopped(17)));
    }

    // A preview that fails before comparing anything (the host's file cannot be read) says so
    // in the diff pane, never "(no change)" above the error.
    void previewFailureShowsNoDiff() {
        Site unreadable = site();
        unreadable.balancer->configPath = QStringLiteral("/tmp"); // a directory: cat fails
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->updateSite(unreadable));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto restore = qScopeGuard([&] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->updateSite(site())) (void)inventory->save(inventoryPath());
        });
        HostConnections connections;
        connections.setHosts({host()});
        RemoteSiteOptions options;
        options.inventoryPath = inventoryPath();
        ApplyConfigDialog dialog(unreadable, &connections, options);
        QSignalSpy previewed(&dialog, &ApplyConfigDialog::previewed);
        QVERIFY(previewed.wait(30000));
        QCOMPARE(dialog.phase(), ApplyConfigDialog::Phase::Failed);
        QVERIFY2(!dialog.diff().contains(QStringLiteral("no change")), qPrintable(dialog.diff()));
        QVERIFY2(dialog.diff().startsWith(QStringLiteral("(no diff: ")), qPrintable(dialog.diff()));
        QVERIFY2(!dialog.message().isEmpty(), qPrintable(dialog.message()));
        QVERIFY(!dialog.applyButton()->isEnabled());
    }

    // The distribution chart and the worker table show the real nginx's per-backend counts:
    // exactly the requests this test sends, split as nginx split them.
    void distributionChartShowsNginxCounts() {
        MainWindow window(inventoryPath(), options());
        selectShop(window);
        QSignalSpy ticked(&window, &MainWindow::ticked);
        QVERIFY(ticked.wait(30000)); // the first tick finds the end of the access log

        constexpr int Requests = 24;
        QHash<qint64, int> answered;
        for (int i = 0; i < Requests; ++i)
            answered[httpGet(m_nginx.httpPort()).jsonNumber(QStringLiteral("port"))] += 1;
        QCOMPARE(answered.value(m_workers.port(0)) + answered.value(m_workers.port(1)), Requests);

        DistributionChartView *chart = window.distributionChart();
        const auto totalShown = [chart] {
            double sum = 0;
            for (int i = 0; i < chart->barCount(); ++i)
                sum += chart->requestsTotal(i);
            return sum;
        };
        QTRY_COMPARE_WITH_TIMEOUT(totalShown(), double(Requests), 30000);
        QCOMPARE(chart->barCount(), 2);
        for (int i = 0; i < 2; ++i) {
            // Named by the inventory host the worker runs on, not by an address.
            QCOMPARE(chart->backendName(i), QStringLiteral("remote:%1").arg(chart->port(i)));
            QCOMPARE(chart->requestsTotal(i), double(answered.value(chart->port(i))));
        }
        double shares = 0;
        for (int i = 0; i < 2; ++i)
            shares += chart->share(i);
        QVERIFY(qAbs(shares - 100.0) < 0.01);

        // The table shows both backends healthy as seen from the balancer host.
        WorkerTableModel *model = window.workerModel();
        QTRY_COMPARE_WITH_TIMEOUT(model->rowCount(), 2, 10000);
        for (const WorkerRow &row : model->rows()) {
            QCOMPARE(row.host, QStringLiteral("127.0.0.1"));
            QCOMPARE(row.state, WorkerState::Running);
            QCOMPARE(row.requestsTotal, quint64(answered.value(row.port)));
        }

        // A dead backend shows as stopped within a few ticks.
        m_workers.stop(1);
        const auto restart = qScopeGuard([this] { m_workers.restart(1); });
        QTRY_VERIFY_WITH_TIMEOUT(model->rowForPort(m_workers.port(1)) &&
                                     model->rowForPort(m_workers.port(1))->state ==
                                         WorkerState::Stopped,
                                 15000);
    }

    // One-click add-backend on the production site: a worker started on the host, healthy,
    // added to nginx (validated, reloaded, verified) and saved into the inventory.
    void addBackendFromTheConsole() {
        MainWindow window(inventoryPath(), options());
        selectShop(window);
        QAction *add = window.action(QStringLiteral("addBackend"));
        QTRY_VERIFY_WITH_TIMEOUT(add->isEnabled(), 10000);
        add->trigger();
        QVERIFY(!add->isEnabled()); // one at a time
        QTRY_COMPARE_WITH_TIMEOUT(
            Inventory::load(inventoryPath())->site(QStringLiteral("shop"))->backends.size(),
            qsizetype(3), 60000);
        const Site added = *Inventory::load(inventoryPath())->site(QStringLiteral("shop"));
        const quint16 port = added.backends.last().port;
        const auto stopWorker = qScopeGuard([&] {
            SshSession session(SshConfig::fromHost(host()));
            if (session.connect()) (void)RemoteWorkers::stop(session, added.name, port);
        });
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        // The inventory holds the backend: the operation journal is settled.
        QVERIFY(!QFile::exists(OperationJournal::pathFor(inventoryPath(), added.name)));
        QVERIFY(readFile(m_nginx.siteFile())
                    .contains(QStringLiteral("server 127.0.0.1:%1").arg(port).toUtf8()));
        // The inventory is saved by the operation itself; the view follows once it is told.
        QTRY_COMPARE_WITH_TIMEOUT(window.remoteMonitor()->site().backends.size(), 3, 10000);
        // nginx reaches it once its old workers are gone (a reload hands over gracefully).
        // (A loop, not QTRY: each probe is a new request, so it cannot be evaluated twice.)
        const QDeadlineTimer deadline(20000);
        bool reached = false;
        while (!reached && !deadline.hasExpired()) {
            reached = httpGet(m_nginx.httpPort()).jsonNumber(QStringLiteral("port")) == port;
            if (!reached) QTest::qWait(20);
        }
        QVERIFY(reached);
        QTRY_VERIFY_WITH_TIMEOUT(window.workerModel()->rowForPort(port) &&
                                     window.workerModel()->rowForPort(port)->pid > 0,
                                 15000);
        QTRY_VERIFY(add->isEnabled());
    }

    // An interrupted add-backend (from corralctl or an earlier console) is pending in the
    // site's journal: the console settles it first, as corralctl does (the same core
    // operation): the recorded worker (port 9, never started) is confirmed gone, the journal
    // cleared, and only then is the new backend added.
    void addBackendSettlesAPendingJournalFirst() {
        const QString site = QStringLiteral("shop");
        const OperationJournal journal(OperationJournal::pathFor(inventoryPath(), site));
        PendingOperation interrupted;
        interrupted.site = site;
        interrupted.host = QStringLiteral("remote");
        interrupted.address = QStringLiteral("127.0.0.1");
        interrupted.port = 9;
        interrupted.step = QStringLiteral("health");
        interrupted.started = QDateTime::currentDateTimeUtc();
        interrupted.command = QStringLiteral("corralctl add-backend shop");
        QVERIFY_RESULT(journal.record(interrupted));
        const auto clear = qScopeGuard([&] { (void)journal.clear(); });
        const qsizetype before =
            Inventory::load(inventoryPath())->site(QStringLiteral("shop"))->backends.size();

        MainWindow window(inventoryPath(), options());
        selectShop(window);
        QAction *add = window.action(QStringLiteral("addBackend"));
        QTRY_VERIFY_WITH_TIMEOUT(add->isEnabled(), 10000);
        add->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(
            Inventory::load(inventoryPath())->site(QStringLiteral("shop"))->backends.size(),
            before + 1, 60000);
        const Site added = *Inventory::load(inventoryPath())->site(QStringLiteral("shop"));
        const quint16 port = added.backends.last().port;
        const auto stopWorker = qScopeGuard([&] {
            SshSession session(SshConfig::fromHost(host()));
            if (session.connect()) (void)RemoteWorkers::stop(session, added.name, port);
        });
        QVERIFY(port != 9);
        QVERIFY(!QFile::exists(journal.path()));
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QVERIFY(!readFile(m_nginx.siteFile()).contains("127.0.0.1:9;"));
        QTRY_VERIFY(add->isEnabled());
    }

    // The console and corralctl are front ends of one core operation: adding a backend, and
    // draining and removing one, from either sends the same remote commands in the same
    // order (CORRAL_SSH_TRACE; ports, pids, times and random names normalised, the front end
    // named in the lock holder too).
    void consoleAndCorralctlSendTheSameCommands() {
        const QString cliTrace = m_home.filePath(QStringLiteral("cli-trace.txt"));
        const Corralctl ctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()};
        // Both runs start from a config that is installed and live (the first apply of a
        // site has no file to diff against).
        const CtlRun applied = ctl.run({QStringLiteral("apply"), QStringLiteral("shop")});
        QVERIFY2(applied.exitCode == 0, qPrintable(applied.err));
        QProcessEnvironment env = ctl.environment();
        env.insert(QStringLiteral("CORRAL_SSH_TRACE"), cliTrace);
        // --no-wait: the console never queues behind another operation on the site.
        const auto runCli = [&](const QStringList &args) {
            QProcess cli;
            cli.setProcessEnvironment(env);
            cli.start(ctl.program, args + QStringList{QStringLiteral("--no-wait")});
            if (!cli.waitForFinished(90000)) return QStringLiteral("timed out");
            return cli.exitCode() == 0 ? QString() : QString::fromUtf8(cli.readAllStandardError());
        };
        const auto lastPort = [&] {
            return Inventory::load(inventoryPath())
                ->site(QStringLiteral("shop"))
                ->backends.last()
                .port;
        };
        const auto backendCount = [&] {
            return Inventory::load(inventoryPath())->site(QStringLiteral("shop"))->backends.size();
        };
        QList<quint16> started;
        const auto stopWorkers = qScopeGuard([&] {
            SshSession session(SshConfig::fromHost(host()));
            if (session.connect())
                for (const quint16 port : std::as_const(started))
                    (void)RemoteWorkers::stop(session, QStringLiteral("shop"), port);
        });

        QString failed = runCli({QStringLiteral("add-backend"), QStringLiteral("shop")});
        QVERIFY2(failed.isEmpty(), qPrintable(failed));
        started.append(lastPort());
        const qint64 consoleStart = QFileInfo(consoleTrace()).size();
        MainWindow window(inventoryPath(), options());
        installConfirmer(window, true);
        selectShop(window);
        QAction *add = window.action(QStringLiteral("addBackend"));
        QTRY_VERIFY_WITH_TIMEOUT(add->isEnabled(), 10000);
        const qsizetype before = backendCount();
        add->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(backendCount(), before + 1, 60000);
        started.append(lastPort());
        QTRY_VERIFY(add->isEnabled());
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));

        // Drain and remove: corralctl the first added backend, the console the second.
        const QString firstKey = QStringLiteral("127.0.0.1:%1").arg(started.at(0));
        failed = runCli({QStringLiteral("remove-backend"), QStringLiteral("shop"), firstKey});
        QVERIFY2(failed.isEmpty(), qPrintable(failed));
        QCOMPARE(backendCount(), before);
        QTRY_VERIFY_WITH_TIMEOUT(window.workerModel()->rowForPort(started.at(1)), 15000);
        const QModelIndexList matches = window.workerTable()->model()->match(
            window.workerTable()->model()->index(0, WorkerTableModel::Port), Qt::DisplayRole,
            QString::number(started.at(1)), 1, Qt::MatchExactly);
        QVERIFY(!matches.isEmpty());
        window.workerTable()->selectRow(matches.first().row());
        QAction *remove = window.action(QStringLiteral("removeBackend"));
        QTRY_VERIFY_WITH_TIMEOUT(remove->isEnabled(), 10000);
        remove->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(backendCount(), before - 1, 60000);
        QTRY_VERIFY(add->isEnabled());
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        const QByteArray config = readFile(m_nginx.siteFile());
        for (const quint16 port : std::as_const(started))
            QVERIFY(!config.contains(QStringLiteral("127.0.0.1:%1").arg(port).toUtf8()));

        const QByteArray cli = readFile(cliTrace);
        const QByteArray console = readFile(consoleTrace()).mid(consoleStart);
        for (const QString &label :
             {QStringLiteral("add-backend shop"), QStringLiteral("remove-backend shop")}) {
            const QStringList fromCli = operationCommands(cli, label);
            const QStringList fromConsole = operationCommands(console, label);
            QVERIFY2(fromCli.size() >= 5, qPrintable(label)); // lock, ..., apply
            // On a difference: the first command that differs, whole, from each side.
            qsizetype first = 0;
            while (first < fromConsole.size() && first < fromCli.size() &&
                   fromConsole.at(first) == fromCli.at(first))
                ++first;
            if (first < fromConsole.size() || first < fromCli.size()) {
                qWarning().noquote()
                    << label << ": console" << fromConsole.size() << "commands, corralctl"
                    << fromCli.size() << "; first difference at" << first
                    << "\nconsole:  " << fromConsole.value(first)
                    << "\ncorralctl:" << fromCli.value(first);
                QFAIL("the console and corralctl sent different commands");
            }
        }
    }

    // The log view of a production worker shows its log as its host has it (the fallback
    // PORT.log there), read over that host's session, and follows what is added to it.
    void productionWorkerLogInTheLogView() {
        SshSession session(SshConfig::fromHost(host()));
        QVERIFY_RESULT(session.connect());
        Site withWorker = site();
        auto ports = RemoteWorkers::allocatePorts(session, withWorker, 1);
        QVERIFY_RESULT(ports);
        const quint16 port = ports->first();
        QVERIFY_RESULT(RemoteWorkers::start(session, withWorker, port));
        const auto stopWorker =
            qScopeGuard([&] { (void)RemoteWorkers::stop(session, withWorker.name, port); });
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(session, withWorker, port));
        withWorker.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->updateSite(withWorker));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto restore = qScopeGuard([&] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->updateSite(site())) (void)inventory->save(inventoryPath());
        });
        const auto appendToLog = [&](const QString &line) {
            return session.exec(
                QStringLiteral("echo %1 >> \"$HOME\"/%2")
                    .arg(shellQuote(line), RemoteWorkers::logPath(withWorker.name, port)));
        };
        const QString first = QStringLiteral("log-view-first-%1").arg(port);
        QVERIFY_RESULT(appendToLog(first));

        MainWindow window(inventoryPath(), options());
        selectShop(window);
        QTRY_VERIFY_WITH_TIMEOUT(window.workerModel()->rowForPort(port), 15000);
        const QModelIndexList matches = window.workerTable()->model()->match(
            window.workerTable()->model()->index(0, WorkerTableModel::Port), Qt::DisplayRole,
            QString::number(port), 1, Qt::MatchExactly);
        QVERIFY(!matches.isEmpty());
        window.workerTable()->selectRow(matches.first().row());
        QTRY_VERIFY_WITH_TIMEOUT(window.logView()->text()->toPlainText().contains(first), 15000);
        // Lines written later show up on a later read.
        const QString later = QStringLiteral("log-view-later-%1").arg(port);
        QVERIFY_RESULT(appendToLog(later));
        QTRY_VERIFY_WITH_TIMEOUT(window.logView()->text()->toPlainText().contains(later), 15000);
    }

    // Stop site and Start site on a production site, from the console (RemoteSite::stop and
    // start, as corralctl stop and start): stopped, its balancer answers 502 itself and its
    // workers are gone; started, they run again and the site answers 200.
    void stopAndStartFromTheConsole() {
        NginxInstance nginx(QStringLiteral("cms"));
        QString error;
        QVERIFY2(nginx.start(&error), qPrintable(error));
        Site cms = site();
        cms.name = QStringLiteral("cms");
        cms.serverNames = {QStringLiteral("cms.example.com")};
        cms.balancer = nginx.balancer(QStringLiteral("remote"));
        cms.backends.clear();
        SshSession session(SshConfig::fromHost(host()));
        QVERIFY_RESULT(session.connect());
        auto ports = RemoteWorkers::allocatePorts(session, cms, 2);
        QVERIFY_RESULT(ports);
        const auto stopWorkers = qScopeGuard([&] {
            for (quint16 port : ports.value())
                (void)RemoteWorkers::stop(session, cms.name, port);
        });
        for (quint16 port : ports.value()) {
            QVERIFY_RESULT(RemoteWorkers::start(session, cms, port));
            QVERIFY_RESULT(RemoteWorkers::waitHealthy(session, cms, port, 15000));
            cms.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
        }
        auto target = RemoteBalancer::fromSite(*cms.balancer);
        QVERIFY_RESULT(target);
        ConfigApplier applier(session);
        const ApplyReport applied = applier.apply(cms, target.value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->addSite(cms));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto forget = qScopeGuard([&] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->removeSite(QStringLiteral("cms")))
                (void)inventory->save(inventoryPath());
        });
        const auto status = [&] {
            return httpGet(nginx.httpPort(), "/", "cms.example.com").status;
        };
        const auto running = [&] {
            auto workers = RemoteWorkers::status(session, cms.name, ports.value());
            int count = 0;
            if (workers)
                for (const RemoteWorkerStatus &worker : workers.value())
                    count += worker.running ? 1 : 0;
            return count;
        };
        QCOMPARE(status(), 200);

        MainWindow window(inventoryPath(), options());
        installConfirmer(window, true);
        auto *model = qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
        window.hostTree()->setCurrentIndex(model->siteIndex(QStringLiteral("cms")));
        QVERIFY(window.remoteMonitor());
        QAction *stop = window.action(QStringLiteral("stopSite"));
        QAction *start = window.action(QStringLiteral("startSite"));
        QTRY_VERIFY_WITH_TIMEOUT(stop->isEnabled(), 10000);
        stop->trigger();
        QVERIFY(!stop->isEnabled()); // one operation at a time
        QTRY_VERIFY_WITH_TIMEOUT(stop->isEnabled(), 60000);
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QCOMPARE(status(), 502);
        QCOMPARE(running(), 0);

        QVERIFY(start->isEnabled());
        start->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 60000);
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QCOMPARE(running(), 2);
        // nginx answers from the new config once its old workers are gone (a graceful reload).
        const QDeadlineTimer deadline(20000);
        int answer = 0;
        while (answer != 200 && !deadline.hasExpired()) {
            answer = status();
            if (answer != 200) QTest::qWait(50);
        }
        QCOMPARE(answer, 200);
    }

    // The Workers box on a production site scales it as corralctl scale does
    // (RemoteSite::scaleTo): 2 -> 3 starts a worker on the host and adds it to nginx, 3 -> 2
    // drains and removes the newest, its worker stopped.
    void workersBoxScalesAProductionSite() {
        NginxInstance nginx(QStringLiteral("wiki2"));
        QString error;
        QVERIFY2(nginx.start(&error), qPrintable(error));
        Site wiki = site();
        wiki.name = QStringLiteral("wiki2");
        wiki.serverNames = {QStringLiteral("wiki2.example.com")};
        wiki.balancer = nginx.balancer(QStringLiteral("remote"));
        wiki.backends.clear();
        SshSession session(SshConfig::fromHost(host()));
        QVERIFY_RESULT(session.connect());
        auto ports = RemoteWorkers::allocatePorts(session, wiki, 2);
        QVERIFY_RESULT(ports);
        QList<quint16> started = ports.value();
        const auto stopWorkers = qScopeGuard([&] {
            for (quint16 port : std::as_const(started))
                (void)RemoteWorkers::stop(session, wiki.name, port);
        });
        for (quint16 port : ports.value()) {
            QVERIFY_RESULT(RemoteWorkers::start(session, wiki, port));
            QVERIFY_RESULT(RemoteWorkers::waitHealthy(session, wiki, port, 15000));
            wiki.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
        }
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->addSite(wiki));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto forget = qScopeGuard([&] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->removeSite(QStringLiteral("wiki2")))
                (void)inventory->save(inventoryPath());
        });
        const auto backends = [&] {
            return Inventory::load(inventoryPath())->site(QStringLiteral("wiki2"))->backends;
        };

        MainWindow window(inventoryPath(), options());
        installConfirmer(window, true);
        auto *model = qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
        window.hostTree()->setCurrentIndex(model->siteIndex(QStringLiteral("wiki2")));
        QVERIFY(window.remoteMonitor());
        auto *scale = window.findChild<QSpinBox *>(QStringLiteral("scale"));
        QVERIFY(scale);
        QTRY_VERIFY_WITH_TIMEOUT(scale->isEnabled(), 10000);
        QCOMPARE(scale->value(), 2);
        scale->setValue(3);
        QTRY_COMPARE_WITH_TIMEOUT(backends().size(), qsizetype(3), 60000);
        const quint16 added = backends().last().port;
        started.append(added);
        QTRY_VERIFY_WITH_TIMEOUT(scale->isEnabled(), 30000);
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QVERIFY(readFile(nginx.siteFile())
                    .contains(QStringLiteral("127.0.0.1:%1").arg(added).toUtf8()));

        scale->setValue(2);
        QTRY_COMPARE_WITH_TIMEOUT(backends().size(), qsizetype(2), 60000);
        QTRY_VERIFY_WITH_TIMEOUT(scale->isEnabled(), 30000);
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QVERIFY(!readFile(nginx.siteFile())
                     .contains(QStringLiteral("127.0.0.1:%1").arg(added).toUtf8()));
        auto status = RemoteWorkers::status(session, wiki.name, {added});
        QVERIFY_RESULT(status);
        QVERIFY(!status->first().running);
    }

    // Rolling restart of a production site from the console: every remote worker replaced
    // (new pids) through nginx, one at a time, while the site keeps answering.
    void rollingRestartFromTheConsole() {
        NginxInstance nginx(QStringLiteral("blog"));
        QString error;
        QVERIFY2(nginx.start(&error), qPrintable(error));
        Site blog = site();
        blog.name = QStringLiteral("blog");
        blog.serverNames = {QStringLiteral("blog.example.com")};
        blog.balancer = nginx.balancer(QStringLiteral("remote"));
        blog.backends.clear();

        SshSession session(SshConfig::fromHost(host()));
        QVERIFY_RESULT(session.connect());
        auto ports = RemoteWorkers::allocatePorts(session, blog, 2);
        QVERIFY_RESULT(ports);
        const auto stopWorkers = qScopeGuard([&] {
            for (quint16 port : ports.value())
                (void)RemoteWorkers::stop(session, blog.name, port);
        });
        for (quint16 port : ports.value()) {
            QVERIFY_RESULT(RemoteWorkers::start(session, blog, port));
            QVERIFY_RESULT(RemoteWorkers::waitHealthy(session, blog, port, 15000));
            blog.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
        }
        auto before = RemoteWorkers::status(session, blog.name, ports.value());
        QVERIFY_RESULT(before);
        QCOMPARE(before->size(), 2);
        auto target = RemoteBalancer::fromSite(*blog.balancer);
        QVERIFY_RESULT(target);
        ConfigApplier applier(session);
        const ApplyReport applied = applier.apply(blog, target.value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->addSite(blog));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }

        MainWindow window(inventoryPath(), options());
        auto *model = qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
        window.hostTree()->setCurrentIndex(model->siteIndex(QStringLiteral("blog")));
        QVERIFY(window.remoteMonitor());
        QAction *rolling = window.action(QStringLiteral("rollingRestart"));
        QVERIFY(rolling->isEnabled());
        ScriptedConfirmer *confirmer = installConfirmer(window, false);
        rolling->trigger(); // asked first; declined: nothing runs
        QCOMPARE(confirmer->asked.size(), 1);
        QVERIFY2(confirmer->asked.first().text.contains(QStringLiteral("Each of the 2 backends "
                                                                       "of blog")),
                 qPrintable(confirmer->asked.first().text));
        QVERIFY(rolling->isEnabled());
        confirmer->answer = true;
        rolling->trigger();
        QVERIFY(!rolling->isEnabled()); // one at a time
        QTRY_VERIFY_WITH_TIMEOUT(rolling->isEnabled(), 90000);
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        // The result stays on screen, one line per backend, until dismissed.
        auto *result = window.findChild<QDialog *>(QStringLiteral("rollingRestartResult"));
        QVERIFY(result && result->isVisible());
        auto *outcomes = result->findChild<QListWidget *>(QStringLiteral("backendOutcomes"));
        QVERIFY(outcomes);
        QCOMPARE(outcomes->count(), 2);
        for (int row = 0; row < 2; ++row) {
            QCOMPARE(outcomes->item(row)->data(Qt::UserRole).toInt(),
                     int(RollingBackendState::State::Restarted));
            QVERIFY2(outcomes->item(row)->text().startsWith(
                         QStringLiteral("127.0.0.1:%1 restarted (new pid ").arg(ports->at(row))),
                     qPrintable(outcomes->item(row)->text()));
        }

        auto after = RemoteWorkers::status(session, blog.name, ports.value());
        QVERIFY_RESULT(after);
        QCOMPARE(after->size(), 2);
        for (int i = 0; i < 2; ++i) {
            QVERIFY(after->at(i).running);
            QVERIFY2(after->at(i).pid != before->at(i).pid,
                     qPrintable(QString::number(after->at(i).pid)));
        }
        // Back in rotation: nginx serves from both replaced workers.
        QSet<qint64> answered;
        const QDeadlineTimer deadline(20000);
        while (answered.size() < 2 && !deadline.hasExpired())
            answered.insert(httpGet(nginx.httpPort(), "/", "blog.example.com")
                                .jsonNumber(QStringLiteral("port")));
        QCOMPARE(answered, (QSet<qint64>{ports->at(0), ports->at(1)}));
        QVERIFY(!readFile(nginx.siteFile()).contains(" down"));
    }

    // Add backend on a site that lists a second host: the console asks where, starts the
    // worker there (its own SSH session), and the balancer reaches it at that host's address.
    void addBackendOnAnotherHost() {
        SshServer second(QStringLiteral("127.0.0.8"));
        QString error;
        QVERIFY2(second.start(&error), qPrintable(error));
        const Host remote2 = second.inventoryHost(QStringLiteral("remote2"));
        {
            SshConfig trust = SshConfig::fromHost(remote2);
            trust.acceptNew = true;
            SshSession session(trust);
            QVERIFY_RESULT(session.connect());
        }
        NginxInstance nginx(QStringLiteral("wiki"));
        QVERIFY2(nginx.start(&error), qPrintable(error));
        Site wiki = site();
        wiki.name = QStringLiteral("wiki");
        wiki.serverNames = {QStringLiteral("wiki.example.com")};
        // Workers on remote2 listen on its own address, as on a real second server.
        wiki.args = {QStringLiteral("--port"), Site::PortPlaceholder, QStringLiteral("--bind"),
                     second.address()};
        wiki.hosts = {QStringLiteral("remote2")};
        wiki.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)}};
        wiki.balancer = nginx.balancer(QStringLiteral("remote"));
        {
            SshSession session(SshConfig::fromHost(host()));
            QVERIFY_RESULT(session.connect());
            ConfigApplier applier(session);
            const ApplyReport applied =
                applier.apply(wiki, RemoteBalancer::fromSite(*wiki.balancer).value(), false);
            QVERIFY2(applied.ok(), qPrintable(applied.error));
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            QVERIFY_RESULT(inventory->addHost(remote2));
            QVERIFY_RESULT(inventory->addSite(wiki));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto restoreInventory = qScopeGuard([&] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->removeSite(wiki.name) &&
                inventory->removeHost(remote2.name))
                (void)inventory->save(inventoryPath());
        });

        MainWindow window(inventoryPath(), options());
        auto *model = qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
        window.hostTree()->setCurrentIndex(model->siteIndex(wiki.name));
        QVERIFY(window.remoteMonitor());
        window.action(QStringLiteral("addBackend"))->trigger();
        auto *chooser = window.findChild<QInputDialog *>(QStringLiteral("addBackendHost"));
        QVERIFY(chooser);
        QCOMPARE(chooser->comboBoxItems(),
                 (QStringList{QStringLiteral("remote"), QStringLiteral("remote2")}));
        chooser->setTextValue(QStringLiteral("remote2"));
        chooser->accept();

        QTRY_COMPARE_WITH_TIMEOUT(
            Inventory::load(inventoryPath())->site(wiki.name)->backends.size(), qsizetype(2),
            60000);
        const Backend added = Inventory::load(inventoryPath())->site(wiki.name)->backends.last();
        const auto stopWorker = qScopeGuard([&] {
            // Through "remote": remote2 is killed below, and both are this machine's root, so
            // the worker's pid file is the same file.
            SshSession session(SshConfig::fromHost(host()));
            if (session.connect()) (void)RemoteWorkers::stop(session, wiki.name, added.port);
        });
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QCOMPARE(added.address, second.address());
        QVERIFY(readFile(nginx.siteFile())
                    .contains(QStringLiteral("server %1").arg(added.key()).toUtf8()));
        // Started on remote2: its pid file is under that login's home there.
        SshSession onRemote2(SshConfig::fromHost(remote2));
        QVERIFY_RESULT(onRemote2.connect());
        auto status = RemoteWorkers::status(onRemote2, wiki.name, {added.port});
        QVERIFY_RESULT(status);
        QVERIFY(status->value(0).running);
        // nginx on "remote" reaches it at 127.0.0.8 (a loop, not QTRY: each probe is a request).
        const QDeadlineTimer deadline(20000);
        bool reached = false;
        while (!reached && !deadline.hasExpired()) {
            reached = httpGet(nginx.httpPort(), "/", "wiki.example.com")
                          .jsonNumber(QStringLiteral("port")) == added.port;
            if (!reached) QTest::qWait(20);
        }
        QVERIFY(reached);

        // The console reads that worker's pid, CPU and memory on remote2 itself.
        const auto addedRow = [&]() -> WorkerRow {
            for (const WorkerRow &row : window.remoteMonitor()->snapshot().workers)
                if (row.host == added.address && row.port == added.port) return row;
            return {};
        };
        QTRY_COMPARE_WITH_TIMEOUT(addedRow().pid, status->value(0).pid, 30000);
        QTRY_VERIFY_WITH_TIMEOUT(addedRow().rssBytes > 0 && addedRow().cpuValid, 30000);
        // ...over remote2's own session: with remote2 down, its workers cannot be read.
        QSignalSpy failures(window.remoteMonitor(), &RemoteSiteMonitor::pollFailed);
        second.killHard(); // its open sessions too
        const auto remote2Failed = [&] {
            for (const QList<QVariant> &failure : std::as_const(failures))
                if (failure.value(0).toString().startsWith(QStringLiteral("workers on remote2: ")))
                    return true;
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(remote2Failed(), 30000);
        QTRY_COMPARE_WITH_TIMEOUT(addedRow().pid, qint64(0), 30000);
    }
};

QTEST_MAIN(TestRemoteSite)
#include "tst_remotesite.moc"
