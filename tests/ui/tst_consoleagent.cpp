// The console as one client of the user's agent (issue 16), against a real corral-agent
// process with a private socket and state: sites started elsewhere are shown and outlive the
// console; changes made by another client show; two windows show the same workers; quitting
// stops the sites only when asked, and the demo's always; Start and Edit site for a saved
// site; the tray's colour, menu and notifications.

#include "AgentFixture.h"
#include "Confirmer.h"
#include "CorralctlRunner.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "LaunchClusterDialog.h"
#include "MainWindow.h"
#include "ResultVerify.h"
#include "ScriptedConfirmer.h"
#include "TestProcess.h"
#include "TrayIcon.h"
#include "WorkerTableModel.h"
#include "agent/AgentClient.h"
#include "charts/CpuChartView.h"
#include "charts/ThroughputChartView.h"
#include "inventory/Inventory.h"

#include <QAction>
#include <QLineEdit>
#include <QLineSeries>
#include <QMenu>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableView>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <csignal>

using namespace corral;
using namespace corral::test;

namespace {

QString freeListenAddress() {
    return QStringLiteral("127.0.0.1:%1").arg(freePort());
}

Site demoSite(const QString &name, int workers) {
    Site site;
    site.name = name;
    site.command = QStringLiteral(DEMO_WORKER_PATH);
    site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
    site.workers = workers;
    site.basePort = workerBasePort();
    site.healthPath = QStringLiteral("/health");
    site.listen = freeListenAddress();
    return site;
}

QList<qint64> pidsOf(const QList<WorkerRow> &rows) {
    QList<qint64> pids;
    for (const WorkerRow &row : rows)
        pids.append(row.pid);
    return pids;
}

int runningRows(const MainWindow &window) {
    int count = 0;
    for (const WorkerRow &row : window.workerModel()->rows())
        count += row.state == WorkerState::Running ? 1 : 0;
    return count;
}

void showSite(MainWindow &window, const QString &site) {
    auto *tree = static_cast<InventoryTreeFilter *>(window.hostTree()->model());
    window.hostTree()->setCurrentIndex(tree->siteIndex(site));
}

} // namespace

class TestConsoleAgent : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;
    std::unique_ptr<AgentFixture> m_agent;
    /// Another client of the same agent: corralctl's part where the test needs a client.
    std::unique_ptr<agent::AgentClient> m_other;

    MainWindow::Options options() const {
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        return options;
    }
    QString inventory(const QString &name) const {
        return m_home.filePath(name + QStringLiteral(".json"));
    }
    agent::SiteStatus status(const QString &site) {
        auto sites = m_other->status(site);
        return sites && !sites->isEmpty() ? sites->first() : agent::SiteStatus{};
    }
    QList<qint64> agentPids(const QString &site) {
        QList<qint64> pids;
        for (const agent::WorkerStatus &worker : status(site).workers)
            pids.append(worker.pid);
        return pids;
    }
    Result<QJsonObject> call(const QString &op, const QJsonObject &arguments) {
        return m_other->call(op, arguments, 60000);
    }
    /// corralctl ARGS with the agent of this test; fails the test unless it exits 0.
    void corralctl(const QStringList &args) {
        const Corralctl ctl{QStringLiteral(CORRALCTL_PATH), m_home.path(),
                            inventory(QStringLiteral("ctl")), 60000};
        const CtlRun run = ctl.run(args);
        QVERIFY2(run.exitCode == 0, qPrintable(args.join(QLatin1Char(' ')) + QStringLiteral(": ") +
                                               run.out + run.err));
    }
    /// Starts `site` with `corralctl start` (the console plays no part in it).
    void startElsewhere(const Site &site) {
        QStringList args{QStringLiteral("start"),       site.name,
                         QStringLiteral("--workers"),   QString::number(site.workers),
                         QStringLiteral("--base-port"), QString::number(site.basePort),
                         QStringLiteral("--listen"),    site.listen,
                         QStringLiteral("--health"),    site.healthPath,
                         QStringLiteral("--")};
        args += QStringList{site.command} + site.args;
        corralctl(args);
    }
    void stopElsewhere(const QString &site) {
        QVERIFY_RESULT(call(QLatin1String(agent::op::Stop), {{QStringLiteral("site"), site}}));
    }

private Q_SLOTS:
    void initTestCase() {
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        QCoreApplication::setOrganizationName(QStringLiteral("corral-test"));
        m_agent = std::make_unique<AgentFixture>(QStringLiteral(AGENT_PATH));
        QVERIFY2(m_agent->start(), m_agent->log().constData());
        m_other = std::make_unique<agent::AgentClient>();
        QVERIFY_RESULT(m_other->connectToAgent(false));
    }
    void cleanupTestCase() {
        m_other.reset();
        QCOMPARE(m_agent->terminate(), 0);
    }

    // A site started by corralctl is shown by the console (tree, table, charts with the
    // history the agent kept) and survives the console quitting with "leave running".
    void siteStartedElsewhereIsShownAndOutlivesTheConsole() {
        const Site site = demoSite(QStringLiteral("web"), 2);
        startElsewhere(site);
        if (QTest::currentTestFailed()) return;
        const QList<qint64> pids = agentPids(site.name);
        QCOMPARE(pids.size(), 2);
        QTest::qWait(2500); // a few ticks of history before the console opens

        {
            const qint64 opened = QDateTime::currentMSecsSinceEpoch();
            MainWindow window(inventory(QStringLiteral("shown")), options());
            ScriptedConfirmer *confirmer = installConfirmer(window, true);
            window.show();
            auto *tree = static_cast<InventoryTreeFilter *>(window.hostTree()->model());
            const QModelIndex row = tree->siteIndex(site.name);
            QVERIFY2(row.isValid(), "the agent's site is not in the tree");
            QTRY_VERIFY_WITH_TIMEOUT(row.siblingAtColumn(1).data().toString().startsWith(
                                         QStringLiteral("2/2 workers running")),
                                     5000);
            showSite(window, site.name);
            QVERIFY(window.currentSite());
            QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 5000);
            QCOMPARE(pidsOf(window.workerModel()->rows()), pids);
            // The charts start with the minutes before the console opened, not empty.
            QTRY_COMPARE_WITH_TIMEOUT(window.cpuChart()->seriesCount(), 2, 5000);
            const quint16 firstPort = window.workerModel()->rows().first().port;
            QTRY_VERIFY_WITH_TIMEOUT(window.cpuChart()->series(firstPort)->count() >= 1, 5000);
            QVERIFY(window.cpuChart()->series(firstPort)->at(0).x() < double(opened));
            auto *throughput = window.findChild<ThroughputChartView *>();
            QTRY_VERIFY_WITH_TIMEOUT(throughput->requestsSeries()->count() >= 2, 5000);
            const qint64 firstPoint = qint64(throughput->requestsSeries()->at(0).x());
            QVERIFY2(firstPoint < opened, qPrintable(QString::number(opened - firstPoint)));

            confirmer->choice = Confirmer::Choice::Alternative; // leave running
            QVERIFY(window.close());
            QCOMPARE(confirmer->asked.size(), 1);
            QVERIFY2(confirmer->asked.first().text.contains(site.name),
                     qPrintable(confirmer->asked.first().text));
        }
        // The console is gone; the site is not.
        QTest::qWait(1500);
        QCOMPARE(status(site.name).state, agent::SiteState::Running);
        QCOMPARE(agentPids(site.name), pids);
        for (qint64 pid : pids)
            QVERIFY(isAlive(pid));
        stopElsewhere(site.name);
    }

    // The agent killed (kill -9) with a console open: the console shows the site gone with
    // its workers, then, once a new agent brings the site back on its ports, shows it running
    // again, without being reopened.
    void consoleFollowsAnAgentRestart() {
        const Site site = demoSite(QStringLiteral("phoenix"), 2);
        startElsewhere(site);
        if (QTest::currentTestFailed()) return;
        MainWindow window(inventory(QStringLiteral("phoenix")), options());
        installConfirmer(window, true);
        window.show();
        showSite(window, site.name);
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 5000);
        const QList<qint64> pids = pidsOf(window.workerModel()->rows());
        QList<quint16> ports;
        for (const WorkerRow &row : window.workerModel()->rows())
            ports.append(row.port);

        m_other.reset();
        m_agent->kill();
        QTRY_VERIFY_WITH_TIMEOUT(!window.currentSite(), 5000);
        QCOMPARE(window.workerModel()->rowCount(), 0);
        QVERIFY(!window.action(QStringLiteral("stopSite"))->isEnabled());
        QVERIFY(waitUntilGone(pids, 5000));

        QVERIFY2(m_agent->start(), m_agent->log().constData());
        QTRY_VERIFY_WITH_TIMEOUT(window.currentSite(), 15000);
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 20000);
        QList<quint16> after;
        for (const WorkerRow &row : window.workerModel()->rows())
            after.append(row.port);
        QCOMPARE(after, ports);
        m_other = std::make_unique<agent::AgentClient>();
        QVERIFY_RESULT(m_other->connectToAgent(false));
        stopElsewhere(site.name);
    }

    // corralctl scale and restart change what the console shows.
    void changesByAnotherClientShow() {
        const Site site = demoSite(QStringLiteral("scaled"), 2);
        startElsewhere(site);
        if (QTest::currentTestFailed()) return;
        MainWindow window(inventory(QStringLiteral("changes")), options());
        installConfirmer(window, true);
        window.show();
        showSite(window, site.name);
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 5000);

        corralctl({QStringLiteral("scale"), site.name, QStringLiteral("3")});
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 3, 5000);
        auto *scale = window.findChild<QSpinBox *>(QStringLiteral("scale"));
        QTRY_COMPARE(scale->value(), 3);

        const QList<qint64> before = pidsOf(window.workerModel()->rows());
        QSignalSpy progress(window.agentClient(), &agent::AgentClient::rollingRestartProgress);
        corralctl({QStringLiteral("restart"), site.name});
        QVERIFY(!progress.isEmpty() || progress.wait(5000));
        const auto allReplaced = [&] {
            const QList<WorkerRow> rows = window.workerModel()->rows();
            return rows.size() == 3 &&
                   std::all_of(rows.cbegin(), rows.cend(), [&](const WorkerRow &row) {
                       return row.state == WorkerState::Running && !before.contains(row.pid);
                   });
        };
        QTRY_VERIFY_WITH_TIMEOUT(allReplaced(), 5000);
        stopElsewhere(site.name);
        QTRY_VERIFY_WITH_TIMEOUT(!window.currentSite(), 10000);
        QCOMPARE(window.workerModel()->rowCount(), 0);
    }

    // Two consoles side by side show the same workers; what one does, the other shows.
    void twoWindowsShowTheSameWorkers() {
        MainWindow left(inventory(QStringLiteral("left")), options());
        MainWindow right(inventory(QStringLiteral("right")), options());
        installConfirmer(left, true);
        installConfirmer(right, true);
        left.show();
        right.show();
        const Site site = demoSite(QStringLiteral("shared"), 2);
        QVERIFY(left.launchCluster(site).ok());
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(left), 2, 20000);
        // The right one was looking elsewhere: the site appears in its tree.
        QTRY_VERIFY_WITH_TIMEOUT(static_cast<InventoryTreeFilter *>(right.hostTree()->model())
                                     ->siteIndex(site.name)
                                     .isValid(),
                                 5000);
        showSite(right, site.name);
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(right), 2, 5000);
        QCOMPARE(pidsOf(right.workerModel()->rows()), pidsOf(left.workerModel()->rows()));

        // Added on the right, shown on the left.
        right.action(QStringLiteral("addBackend"))->trigger();
        QVERIFY(!right.action(QStringLiteral("addBackend"))->isEnabled()); // until answered
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(left), 3, 20000);
        QTRY_VERIFY(right.action(QStringLiteral("addBackend"))->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(pidsOf(right.workerModel()->rows()),
                                  pidsOf(left.workerModel()->rows()), 5000);

        // Stopped on the left, gone on the right.
        left.action(QStringLiteral("stopSite"))->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(!right.currentSite(), 20000);
        QCOMPARE(right.workerModel()->rowCount(), 0);
        QVERIFY(!right.action(QStringLiteral("stopSite"))->isEnabled());
    }

    // Quit with "stop": every site the agent runs stops, those another client started too.
    void quitWithStopStopsTheSites() {
        const Site elsewhere = demoSite(QStringLiteral("other"), 1);
        startElsewhere(elsewhere);
        if (QTest::currentTestFailed()) return;
        MainWindow window(inventory(QStringLiteral("quitstop")), options());
        ScriptedConfirmer *confirmer = installConfirmer(window, true);
        window.show();
        const Site mine = demoSite(QStringLiteral("mine"), 1);
        QVERIFY(window.launchCluster(mine).ok());
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 1, 20000);
        const QList<qint64> pids = agentPids(elsewhere.name) + agentPids(mine.name);
        confirmer->choice = Confirmer::Choice::Accept; // stop them
        window.close();
        QTRY_VERIFY_WITH_TIMEOUT(!window.isVisible(), 20000);
        const QString text = confirmer->asked.value(0).text;
        QVERIFY2(text.contains(elsewhere.name) && text.contains(mine.name), qPrintable(text));
        QCOMPARE(status(elsewhere.name).state, agent::SiteState::Stopped);
        QCOMPARE(status(mine.name).state, agent::SiteState::Stopped);
        QVERIFY(waitUntilGone(pids, 5000));
    }

    // `corral --demo` leaves nothing behind: its site stops when the console quits, by its
    // Quit (asked) as by a signal (not asked) or by the process going away.
    void demoSitesAreGoneAfterTheConsoleQuits() {
        for (const char *how : {"quit", "signal", "destroyed"}) {
            QList<qint64> pids;
            {
                MainWindow window(inventory(QStringLiteral("demo")), options());
                ScriptedConfirmer *confirmer = installConfirmer(window, true);
                window.show();
                QVERIFY2(window.startDemo(freeListenAddress()).ok(),
                         qPrintable(window.lastError()));
                QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 3, 20000);
                QVERIFY(window.currentSite()->ephemeral);
                pids = agentPids(QStringLiteral("demo"));
                QCOMPARE(pids.size(), 3);
                if (qstrcmp(how, "quit") == 0) {
                    window.close();
                    QTRY_VERIFY_WITH_TIMEOUT(!window.isVisible(), 20000);
                    QCOMPARE(confirmer->asked.size(), 1); // "quit and stop demo?"
                } else if (qstrcmp(how, "signal") == 0) {
                    window.quitWithoutAsking();
                    QVERIFY(!window.isVisible());
                    QVERIFY(confirmer->asked.isEmpty());
                }
            }
            QTRY_VERIFY2_WITH_TIMEOUT(
                status(QStringLiteral("demo")).state == agent::SiteState::Stopped, how, 20000);
            QVERIFY2(waitUntilGone(pids, 5000), how);
        }
    }

    // Start for a saved, stopped site; Edit site opens the Launch dialog with its saved
    // settings, saves them and restarts the site with them.
    void startAndEditASavedSite() {
        const QString path = inventory(QStringLiteral("saved"));
        Site saved = demoSite(QStringLiteral("saved"), 1);
        {
            Inventory file;
            QVERIFY(file.addSite(saved).ok());
            QVERIFY(file.save(path).ok());
        }
        MainWindow window(path, options());
        installConfirmer(window, true);
        window.show();
        QAction *start = window.action(QStringLiteral("startSite"));
        QVERIFY(!start->isEnabled());
        showSite(window, saved.name);
        QVERIFY2(start->isEnabled(), qPrintable(start->toolTip()));
        start->trigger();
        QVERIFY(!start->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 1, 20000);
        QCOMPARE(status(saved.name).state, agent::SiteState::Running);
        QVERIFY(!status(saved.name).ephemeral);
        QVERIFY(!start->isEnabled()); // it runs

        QAction *edit = window.action(QStringLiteral("editLocalSite"));
        QVERIFY(edit->isEnabled());
        edit->trigger();
        auto *dialog = window.findChild<LaunchClusterDialog *>();
        QVERIFY(dialog);
        QVERIFY(dialog->isEditing());
        auto *name = dialog->findChild<QLineEdit *>(QStringLiteral("siteName"));
        QCOMPARE(name->text(), saved.name);
        QVERIFY(name->isReadOnly());
        QCOMPARE(dialog->findChild<QLineEdit *>(QStringLiteral("listen"))->text(), saved.listen);
        // Its own address is held by itself: not refused.
        QVERIFY_RESULT(dialog->site());
        dialog->findChild<QSpinBox *>(QStringLiteral("workers"))->setValue(2);
        QSignalSpy finished(&window, &MainWindow::operationFinished);
        dialog->accept();
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(1).toString(), QStringLiteral("edit"));
        QCOMPARE(finished.first().at(2).toString(), QString());
        QCOMPARE(Inventory::load(path)->site(saved.name)->workers, 2);
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 10000);

        window.action(QStringLiteral("stopSite"))->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(!window.currentSite(), 20000);
        QTRY_VERIFY(start->isEnabled());
    }

    // The Launch dialog proposes a name and an address nobody uses, and refuses a taken
    // address inline, naming its holder.
    void launchDialogProposesFreeNameAndAddress() {
        QCOMPARE(LaunchClusterDialog::proposeName(QStringLiteral("dev"), {}),
                 QStringLiteral("dev"));
        QCOMPARE(LaunchClusterDialog::proposeName(QStringLiteral("dev"),
                                                  {QStringLiteral("dev"), QStringLiteral("dev-2")}),
                 QStringLiteral("dev-3"));
        const QString first = LaunchClusterDialog::proposeListenAddress({});
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, Endpoint::parse(first)->port));
        const QString second = LaunchClusterDialog::proposeListenAddress({});
        QVERIFY2(second != first, qPrintable(second));
        QVERIFY(LaunchClusterDialog::proposeListenAddress({second}) != second);

        // From the console: not the name or address of a site the agent runs.
        const Site running = demoSite(QStringLiteral("dev"), 1);
        startElsewhere(running);
        if (QTest::currentTestFailed()) return;
        MainWindow window(inventory(QStringLiteral("dialog")), options());
        installConfirmer(window, true);
        window.action(QStringLiteral("launch"))->trigger();
        auto *dialog = window.findChild<LaunchClusterDialog *>();
        QVERIFY(dialog);
        QCOMPARE(dialog->findChild<QLineEdit *>(QStringLiteral("siteName"))->text(),
                 QStringLiteral("dev-2"));
        auto *listen = dialog->findChild<QLineEdit *>(QStringLiteral("listen"));
        QVERIFY(listen->text() != running.listen && listen->text() != first);
        QVERIFY_RESULT(dialog->site());
        // The running site's address, typed in: refused before launch, naming the agent.
        listen->setText(running.listen);
        const auto refused = dialog->site();
        QVERIFY(!refused.ok());
        QVERIFY2(refused.error().contains(QStringLiteral("pid %1").arg(m_agent->pid())),
                 qPrintable(refused.error()));
        dialog->reject();
        stopElsewhere(running.name);
    }

    // The tray's colour is the worst site state; its menu lists the sites with Open and
    // Stop; a worker failing or a site losing every worker is notified.
    void trayFollowsTheWorstState() {
        // The rules, from the agent's data.
        TrayStatus tray;
        QCOMPARE(tray.colour(0), TrayColour::None);
        agent::SiteStatus up;
        up.site.name = QStringLiteral("up");
        up.state = agent::SiteState::Running;
        up.snapshot.timestampMs = 1000;
        up.snapshot.site = up.site.name;
        WorkerRow a;
        a.port = 3000;
        a.state = WorkerState::Running;
        WorkerRow b = a;
        b.port = 3001;
        up.snapshot.workers = {a, b};
        up.snapshot.running = 2;
        tray.setSites({up});
        QCOMPARE(tray.colour(2000), TrayColour::Green);
        agent::SiteStatus starting = up;
        starting.site.name = QStringLiteral("starting");
        starting.state = agent::SiteState::Starting;
        tray.setSites({up, starting});
        QCOMPARE(tray.colour(2000), TrayColour::Amber);
        ClusterSnapshot crashed = up.snapshot;
        crashed.workers[1].lastCrashMs = 1500;
        QVERIFY(tray.updateSnapshot(crashed).isEmpty());
        QCOMPARE(tray.siteColour(QStringLiteral("up"), 2000), TrayColour::Amber);
        QCOMPARE(tray.siteColour(QStringLiteral("up"), 1500 + TrayStatus::recentCrashMs + 1),
                 TrayColour::Green);
        ClusterSnapshot down = crashed;
        down.workers[0].state = WorkerState::Crashed;
        down.workers[1].state = WorkerState::Backoff;
        down.running = 0;
        const QList<TrayNotification> lost = tray.updateSnapshot(down);
        QCOMPARE(lost.size(), 1);
        QVERIFY2(lost.first().title.contains(QStringLiteral("up")), qPrintable(lost.first().title));
        QCOMPARE(tray.colour(2000), TrayColour::Red);
        QCOMPARE(tray.workerStateChanged(QStringLiteral("up"), 3000, WorkerState::Failed,
                                         QStringLiteral("crashed 10 times"))
                     .size(),
                 1);
        agent::SiteStatus failed = up;
        failed.state = agent::SiteState::Failed;
        failed.error = QStringLiteral("listen: 127.0.0.1:8080 is already in use by pid 1");
        tray.setSites({failed});
        QCOMPARE(tray.colour(2000), TrayColour::Red);
        QVERIFY(tray.describe(QStringLiteral("up"), 2000).contains(QStringLiteral("in use")));
        agent::SiteStatus stopped = up;
        stopped.state = agent::SiteState::Stopped;
        tray.setSites({stopped});
        QCOMPARE(tray.colour(2000), TrayColour::None);

        // A console with a real site: green while it runs, amber after a crash, notified when
        // a worker fails, the menu's Stop stops it, and no icon without a running site.
        MainWindow window(inventory(QStringLiteral("tray")), options());
        ScriptedConfirmer *confirmer = installConfirmer(window, true);
        window.show();
        TrayIcon *icon = window.trayIcon();
        QVERIFY(!icon->isShown());
        const Site site = demoSite(QStringLiteral("traysite"), 2);
        QVERIFY(window.launchCluster(site).ok());
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 20000);
        QTRY_COMPARE_WITH_TIMEOUT(icon->colour(), TrayColour::Green, 5000);
        QVERIFY(icon->isShown());
        auto *siteMenu = icon->menu()->findChild<QMenu *>(QStringLiteral("site:traysite"));
        QVERIFY(siteMenu);
        QVERIFY(siteMenu->title().contains(QStringLiteral("2/2")));
        QVERIFY(icon->menu()->findChild<QAction *>(QStringLiteral("open:traysite")));

        const qint64 victim = window.workerModel()->rows().first().pid;
        ::kill(pid_t(victim), SIGKILL);
        QTRY_COMPARE_WITH_TIMEOUT(icon->colour(), TrayColour::Amber, 5000);
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 2, 20000);
        QCOMPARE(icon->colour(), TrayColour::Amber); // the crash is recent

        // A worker that crash-loops to failed: the agent's event, as it sends it (reaching
        // it for real takes 10 crashes and about 40 s of back-off).
        QSignalSpy notified(icon, &TrayIcon::notified);
        Q_EMIT window.agentClient()->workerStateChanged(
            site.name, window.workerModel()->rows().first().port, 0, WorkerState::Failed,
            QStringLiteral("crashed 10 times within 1 min; not restarting"));
        QCOMPARE(notified.size(), 1);
        QVERIFY(notified.first().at(0).toString().contains(site.name));

        icon->menu()->findChild<QAction *>(QStringLiteral("stop:traysite"))->trigger();
        QCOMPARE(confirmer->asked.last().key, QStringLiteral("stopSite"));
        QTRY_VERIFY_WITH_TIMEOUT(!icon->isShown(), 20000);
        QCOMPARE(icon->colour(), TrayColour::None);
        QCOMPARE(status(site.name).state, agent::SiteState::Stopped);
        QCOMPARE(notified.size(), 1); // a stop asked for is no news
    }
};

QTEST_MAIN(TestConsoleAgent)
#include "tst_consoleagent.moc"
