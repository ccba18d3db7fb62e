#include "AgentFixture.h"
#include "Confirmer.h"
#include "HttpClient.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "LaunchClusterDialog.h"
#include "LogView.h"
#include "MainWindow.h"
#include "ResultVerify.h"
#include "ScriptedConfirmer.h"
#include "WorkerTableModel.h"
#include "agent/AgentClient.h"
#include "charts/DistributionChartView.h"
#include "charts/ThroughputChartView.h"
#include "inventory/Inventory.h"
#include "loadgen/LoadGenerator.h"

#include <QAbstractItemModelTester>
#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QLineSeries>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QTreeView>

#include <csignal>

using namespace corral;
using namespace corral::test;

namespace {

QString freeListenAddress() {
    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    return QStringLiteral("127.0.0.1:%1").arg(probe.serverPort());
}

/// The embedded proxy of the site on view has `port` as a backend (the agent's snapshot).
bool proxyHasBackend(const MainWindow &window, quint16 port) {
    const WorkerRow *row = window.workerModel()->rowForPort(port);
    return row && row->inProxy;
}

/// The ports of the site on view, as of the agent's last tick.
QList<quint16> sitePorts(const MainWindow &window) {
    QList<quint16> ports;
    if (const agent::SiteStatus *site = window.currentSite())
        for (const WorkerRow &row : site->snapshot.workers)
            ports.append(row.port);
    return ports;
}

bool isRunning(const MainWindow &window) {
    return window.currentSite() && window.currentSite()->state == agent::SiteState::Running;
}

int rowsInState(const WorkerTableModel *model, WorkerState state) {
    int count = 0;
    for (const WorkerRow &row : model->rows())
        count += row.state == state ? 1 : 0;
    return count;
}

Site demoSite(const QString &name, int workers, QStringList extraArgs = {}) {
    Site site;
    site.name = name;
    site.command = QStringLiteral(DEMO_WORKER_PATH);
    site.args = QStringList{QStringLiteral("--port"), Site::PortPlaceholder} + extraArgs;
    site.workers = workers;
    site.basePort = 21000;
    site.healthPath = QStringLiteral("/health");
    site.listen = freeListenAddress();
    return site;
}

void selectWorker(MainWindow &window, quint16 port) {
    const QModelIndexList matches = window.workerTable()->model()->match(
        window.workerTable()->model()->index(0, WorkerTableModel::Port), Qt::DisplayRole,
        QString::number(port), 1, Qt::MatchExactly);
    if (!matches.isEmpty()) window.workerTable()->selectRow(matches.first().row());
}

} // namespace

// The console as a client of a real corral-agent (private socket and state), started for
// this test and stopped by its pid at the end.
class TestConsole : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;
    std::unique_ptr<AgentFixture> m_agent;

    MainWindow::Options options() const {
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        return options;
    }
    void stopAll(MainWindow &window) {
        bool stopped = false;
        window.stopAllSites([&] { stopped = true; });
        QTRY_VERIFY_WITH_TIMEOUT(stopped, 20000);
    }
    /// The site as the agent lists it, asked by another client.
    agent::SiteStatus agentStatus(const QString &site) {
        agent::AgentClient client;
        if (!client.connectToAgent(false)) return {};
        auto sites = client.status(site);
        return sites && !sites->isEmpty() ? sites->first() : agent::SiteStatus{};
    }

private Q_SLOTS:
    void initTestCase() {
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        QCoreApplication::setOrganizationName(QStringLiteral("corral-test"));
        m_agent = std::make_unique<AgentFixture>(QStringLiteral(AGENT_PATH));
        QVERIFY2(m_agent->start(), m_agent->log().constData());
    }
    void cleanupTestCase() { QCOMPARE(m_agent->terminate(), 0); }

    void demoAddBackendAndDrain() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory.json")), options());
        QAbstractItemModelTester treeTester(window.hostTree()->model(),
                                            QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester tableTester(
            window.workerTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester sourceTester(
            window.workerModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        installConfirmer(window, true);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));

        QVERIFY2(window.startDemo(freeListenAddress()).ok(), qPrintable(window.lastError()));
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 3,
                                  20000);
        QVERIFY(window.currentSite() && window.currentSite()->hasProxy);
        QVERIFY(window.currentSite()->ephemeral);
        // The demo site shows in the tree with its live state.
        const QModelIndex demo = static_cast<InventoryTreeFilter *>(window.hostTree()->model())
                                     ->siteIndex(QStringLiteral("demo"));
        QVERIFY(demo.isValid());
        QTRY_VERIFY2_WITH_TIMEOUT(demo.siblingAtColumn(1).data().toString().startsWith(
                                      QStringLiteral("3/3 workers running")),
                                  qPrintable(demo.siblingAtColumn(1).data().toString() +
                                             QLatin1Char(' ') + demo.data().toString()),
                                  5000);

        // One click: a fourth worker starts, becomes healthy and joins the balancer.
        QAction *add = window.action(QStringLiteral("addBackend"));
        QVERIFY(add->isEnabled());
        add->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(window.workerModel()->rowCount(), 4, 10000);
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 4,
                                  20000);
        const quint16 newPort = window.workerModel()->rows().last().port;
        QTRY_VERIFY_WITH_TIMEOUT(proxyHasBackend(window, newPort), 10000);

        // Load through the proxy: every backend, the new one included, takes requests, and the
        // distribution chart shows one bar per backend matching the proxy's own counters.
        window.loadGenerator()->setRate(400);
        window.action(QStringLiteral("generateLoad"))->trigger();
        QVERIFY(window.loadGenerator()->isRunning());
        const auto allBusy = [&] {
            const QList<WorkerRow> rows = window.workerModel()->rows();
            return std::all_of(rows.cbegin(), rows.cend(),
                               [](const WorkerRow &row) { return row.requestsTotal > 20; });
        };
        QTRY_VERIFY_WITH_TIMEOUT(allBusy(), 20000);
        QSignalSpy ticked(&window, &MainWindow::ticked);
        QVERIFY(ticked.wait(5000));
        DistributionChartView *chart = window.distributionChart();
        const ClusterSnapshot snapshot = window.currentSite()->snapshot;
        QCOMPARE(chart->barCount(), 4);
        double shares = 0;
        for (int i = 0; i < chart->barCount(); ++i) {
            const WorkerRow &row = snapshot.workers.at(i);
            QCOMPARE(chart->barValue(i), row.requestsPerSecond);
            QVERIFY2(chart->categoryLabel(i).contains(QString::number(row.port)),
                     qPrintable(chart->categoryLabel(i)));
            shares += chart->share(i);
        }
        QVERIFY(qAbs(shares - 100) < 1.0);
        // The table's numbers are the proxy's numbers.
        quint64 proxyTotal = 0;
        for (const WorkerRow &row : window.workerModel()->rows())
            proxyTotal += row.requestsTotal;
        QVERIFY(proxyTotal >= 80);

        // Select the new worker: its log shows; then drain and remove it.
        const QModelIndexList matches = window.workerTable()->model()->match(
            window.workerTable()->model()->index(0, WorkerTableModel::Port), Qt::DisplayRole,
            QString::number(newPort), 1, Qt::MatchExactly);
        QCOMPARE(matches.size(), 1);
        window.workerTable()->selectRow(matches.first().row());
        QTRY_VERIFY_WITH_TIMEOUT(
            window.logView()->text()->toPlainText().contains(QStringLiteral("listening on")), 5000);
        QAction *remove = window.action(QStringLiteral("removeBackend"));
        QVERIFY(remove->isEnabled());
        remove->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(window.workerModel()->rowCount(), 3, 20000);
        QVERIFY(!window.workerModel()->rowForPort(newPort));
        // Draining lost nothing: the load generator saw no failure.
        window.action(QStringLiteral("generateLoad"))->trigger();
        QCOMPARE(window.loadGenerator()->stats().failed, quint64(0));
        stopAll(window);
    }

    void launchDialogSiteIsValidated() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory2.json")), options());
        Site site;
        site.name = QStringLiteral("bad name");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        const auto started = window.launchCluster(site);
        QVERIFY(!started.ok());
        QVERIFY2(started.error().contains(QStringLiteral("name")), qPrintable(started.error()));
    }

    void rollingRestartFromTheToolbar() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory3.json")), options());
        window.show();
        Site site;
        site.name = QStringLiteral("roll");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        site.workers = 2;
        site.basePort = 20000;
        site.healthPath = QStringLiteral("/health");
        site.listen = freeListenAddress();
        QVERIFY(window.launchCluster(site).ok());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 2,
                                  20000);
        QList<qint64> pids;
        for (const WorkerRow &row : window.workerModel()->rows())
            pids.append(row.pid);
        QSignalSpy finished(&window, &MainWindow::operationFinished);
        window.action(QStringLiteral("rollingRestart"))->trigger();
        QVERIFY(!window.action(QStringLiteral("rollingRestart"))->isEnabled());
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(1).toString(), QStringLiteral("rollingRestart"));
        QCOMPARE(finished.first().at(2).toString(), QString());
        // The table catches up at the next tick: both rows running, both with new pids.
        const auto replaced = [&] {
            const QList<WorkerRow> rows = window.workerModel()->rows();
            return rows.size() == 2 &&
                   std::all_of(rows.cbegin(), rows.cend(), [&](const WorkerRow &row) {
                       return row.state == WorkerState::Running && !pids.contains(row.pid);
                   });
        };
        QTRY_VERIFY_WITH_TIMEOUT(replaced(), 5000);
        stopAll(window);
    }

    // Issue 13 item 11: with no usable backend the balancer answers 502 itself; those are
    // requests and errors in the table, the throughput chart and the status bar, not "0 req/s".
    void outageShowsAsErrorsEverywhere() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-outage.json")), options());
        installConfirmer(window, true);
        window.show();
        QVERIFY(window.launchCluster(demoSite(QStringLiteral("outage"), 1)).ok());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 1,
                                  20000);
        const quint16 port = window.workerModel()->rows().first().port;
        QTRY_VERIFY_WITH_TIMEOUT(proxyHasBackend(window, port), 10000);
        // The only backend out of rotation (the toolbar's Enable/disable): every request now
        // gets the balancer's own 502.
        selectWorker(window, port);
        QTRY_VERIFY(window.action(QStringLiteral("toggleBackend"))->isEnabled());
        window.action(QStringLiteral("toggleBackend"))->trigger();
        QVERIFY(!window.action(QStringLiteral("toggleBackend"))->isEnabled()); // until answered
        QTRY_COMPARE_WITH_TIMEOUT(window.workerModel()->rowForPort(port)->backendState,
                                  QStringLiteral("disabled"), 5000);
        window.loadGenerator()->setRate(200);
        window.action(QStringLiteral("generateLoad"))->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(window.loadGenerator()->stats().failed > 20, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(window.currentSite()->snapshot.errorsPerSecond > 50, 5000);
        QSignalSpy ticked(&window, &MainWindow::ticked);
        QVERIFY(ticked.wait(5000));
        // Table: a "balancer" row with the errors.
        QTRY_VERIFY_WITH_TIMEOUT(window.workerModel()->hasBalancerRow(), 5000);
        const QAbstractItemModel *model = window.workerModel();
        const int last = model->rowCount() - 1;
        QCOMPARE(model->index(last, WorkerTableModel::Host).data().toString(),
                 QStringLiteral("balancer"));
        QVERIFY2(
            model->index(last, WorkerTableModel::ErrorsPerSecond).data().toString().toDouble() > 50,
            qPrintable(model->index(last, WorkerTableModel::ErrorsPerSecond).data().toString()));
        QCOMPARE(model->index(last, 0).data(WorkerTableModel::PortRole).toInt(), 0);
        // Throughput chart: errors/s and requests/s are not zero.
        auto *throughput = window.findChild<ThroughputChartView *>();
        QVERIFY(throughput);
        const QLineSeries *errors = throughput->errorsSeries();
        QVERIFY(errors->count() > 0);
        QVERIFY2(errors->at(errors->count() - 1).y() > 50,
                 qPrintable(QString::number(errors->at(errors->count() - 1).y())));
        QVERIFY(throughput->requestsSeries()->at(throughput->requestsSeries()->count() - 1).y() >
                50);
        // Status bar.
        const QString status = window.throughputLabel()->text();
        QVERIFY2(!status.startsWith(QStringLiteral("0 req/s")), qPrintable(status));
        QVERIFY2(status.contains(QStringLiteral("errors/s")), qPrintable(status));
        window.action(QStringLiteral("generateLoad"))->trigger();
        stopAll(window);
    }

    // Issue 13 item 11: a crash recovered within a second shows: "crashed" for a tick, a
    // crash count and the last crash (time, signal) on the row, the site amber in the tree.
    void recoveredCrashStaysVisible() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-crash.json")), options());
        installConfirmer(window, true);
        window.show();
        QVERIFY(window.launchCluster(demoSite(QStringLiteral("crashy"), 2)).ok());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 2,
                                  20000);
        const WorkerRow victim = window.workerModel()->rows().first();
        QList<WorkerState> seen;
        connect(&window, &MainWindow::ticked, this, [&] {
            if (const WorkerRow *row = window.workerModel()->rowForPort(victim.port))
                seen.append(row->state);
        });
        ::kill(pid_t(victim.pid), SIGKILL);
        const auto recovered = [&] {
            const WorkerRow *row = window.workerModel()->rowForPort(victim.port);
            return row && row->state == WorkerState::Running && row->pid != victim.pid;
        };
        QTRY_VERIFY_WITH_TIMEOUT(recovered(), 20000);
        QTRY_VERIFY_WITH_TIMEOUT(seen.contains(WorkerState::Crashed), 3000);
        const QAbstractItemModel *model = window.workerModel();
        const QModelIndex crashes = model->index(0, WorkerTableModel::Crashes);
        QCOMPARE(model->headerData(WorkerTableModel::Crashes, Qt::Horizontal).toString(),
                 QStringLiteral("Crashes"));
        QCOMPARE(crashes.data().toString(), QStringLiteral("1"));
        const QString tip = crashes.data(Qt::ToolTipRole).toString();
        QVERIFY2(tip.contains(QStringLiteral("Last crash")) &&
                     tip.contains(QStringLiteral("killed by signal 9")),
                 qPrintable(tip));
        // The tree: amber, not green, though every worker runs again.
        auto *tree = static_cast<InventoryTreeFilter *>(window.hostTree()->model());
        const QModelIndex site = tree->siteIndex(QStringLiteral("crashy"));
        QTRY_VERIFY_WITH_TIMEOUT(site.siblingAtColumn(1).data().toString().startsWith(
                                     QStringLiteral("2/2 workers running")),
                                 5000);
        const QString details = site.siblingAtColumn(1).data().toString();
        QVERIFY2(details.contains(QStringLiteral("crashed at")), qPrintable(details));
        QCOMPARE(site.siblingAtColumn(1).data(Qt::ForegroundRole).value<QBrush>().color(),
                 QColor(0xd0, 0x8a, 0x1a));
        QVERIFY(
            site.data(Qt::ToolTipRole).toString().contains(QStringLiteral("killed by signal 9")));
        stopAll(window);
    }

    // Issue 13 items 11 and 12: Stop site asks first; once stopped, the status bar no longer
    // says "2/2 running".
    void stopSiteAsksAndClearsTheStatusBar() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-stop.json")), options());
        ScriptedConfirmer *confirmer = installConfirmer(window, false);
        window.show();
        QVERIFY(window.launchCluster(demoSite(QStringLiteral("stopper"), 2)).ok());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 2,
                                  20000);
        QTRY_COMPARE_WITH_TIMEOUT(window.workersLabel()->text(), QStringLiteral("2/2 running"),
                                  5000);
        window.action(QStringLiteral("stopSite"))->trigger();
        QCOMPARE(confirmer->asked.size(), 1);
        QCOMPARE(confirmer->asked.first().key, QStringLiteral("stopSite"));
        QVERIFY(isRunning(window));
        confirmer->answer = true;
        window.action(QStringLiteral("stopSite"))->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(!window.currentSite(), 20000);
        QCOMPARE(agentStatus(QStringLiteral("stopper")).state, agent::SiteState::Stopped);
        QVERIFY2(!window.workersLabel()->text().contains(QStringLiteral("running")),
                 qPrintable(window.workersLabel()->text()));
        QVERIFY2(!window.throughputLabel()->text().contains(QStringLiteral("req/s")),
                 qPrintable(window.throughputLabel()->text()));
    }

    // Issue 13 item 12: drain-and-remove and scaling down ask; removing the last running
    // worker says the site will answer 502 and cannot be silenced with "don't ask again".
    void removalsAskAndTheLastWorkerIsProtected() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-remove.json")), options());
        ScriptedConfirmer *confirmer = installConfirmer(window, false);
        window.show();
        QVERIFY(window.launchCluster(demoSite(QStringLiteral("guarded"), 2)).ok());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 2,
                                  20000);
        const QList<quint16> ports = sitePorts(window);
        QCOMPARE(ports.size(), 2);

        // Scaling down from the toolbar: asked; declined, nothing changes.
        auto *scale = window.findChild<QSpinBox *>(QStringLiteral("scale"));
        QVERIFY(scale);
        scale->setValue(1);
        QCOMPARE(confirmer->asked.size(), 1);
        QCOMPARE(confirmer->asked.last().key, QStringLiteral("scaleDown"));
        QCOMPARE(scale->value(), 2);
        QCOMPARE(sitePorts(window).size(), 2);

        // Drain and remove one of two: an ordinary question (it may be silenced).
        selectWorker(window, ports.last());
        QTRY_VERIFY(window.action(QStringLiteral("removeBackend"))->isEnabled());
        window.action(QStringLiteral("removeBackend"))->trigger();
        QCOMPARE(confirmer->asked.size(), 2);
        QCOMPARE(confirmer->asked.last().key, QStringLiteral("removeWorkers"));
        QCOMPARE(sitePorts(window).size(), 2);
        confirmer->answer = true;
        window.action(QStringLiteral("removeBackend"))->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(window.workerModel()->rowCount(), 1, 20000);
        QCOMPARE(window.workerModel()->rows().first().port, ports.first()); // the one chosen

        // The last running worker: the question says what happens and cannot be silenced.
        confirmer->answer = false;
        selectWorker(window, ports.first());
        QTRY_VERIFY(window.action(QStringLiteral("removeBackend"))->isEnabled());
        window.action(QStringLiteral("removeBackend"))->trigger();
        QCOMPARE(confirmer->asked.size(), 4);
        const Confirmation last = confirmer->asked.last();
        QVERIFY(last.key.isEmpty());
        QVERIFY2(last.text.contains(QStringLiteral("last running worker")) &&
                     last.text.contains(QStringLiteral("502")),
                 qPrintable(last.text));
        QCOMPARE(sitePorts(window).size(), 1);

        // The real dialog: silenced ordinary questions are not asked again; the last-worker
        // question has no "don't ask again" and Cancel keeps the worker.
        window.setConfirmer(nullptr);
        QString shownText;
        bool hadCheckbox = true;
        QTimer answerer;
        connect(&answerer, &QTimer::timeout, this, [&] {
            auto *box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget());
            if (!box) return;
            shownText = box->text();
            hadCheckbox = box->checkBox() != nullptr;
            box->button(QMessageBox::Cancel)->click();
        });
        answerer.start(20);
        window.action(QStringLiteral("removeBackend"))->trigger();
        answerer.stop();
        QVERIFY2(shownText.contains(QStringLiteral("502")), qPrintable(shownText));
        QVERIFY(!hadCheckbox);
        QCOMPARE(sitePorts(window).size(), 1);
        stopAll(window);
    }

    // Quitting with sites running in the agent asks whether to stop them or leave them
    // running; declined, everything keeps running; "stop" stops them in the agent.
    void quittingWithRunningSitesAsks() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-quit.json")), options());
        ScriptedConfirmer *confirmer = installConfirmer(window, false);
        window.show();
        QVERIFY(window.launchCluster(demoSite(QStringLiteral("quitter"), 1)).ok());
        QTRY_VERIFY_WITH_TIMEOUT(isRunning(window), 20000);
        QVERIFY(!window.close());
        QCOMPARE(confirmer->asked.size(), 1);
        QVERIFY2(confirmer->asked.first().text.contains(QStringLiteral("quitter")),
                 qPrintable(confirmer->asked.first().text));
        QVERIFY(!confirmer->asked.first().alternativeLabel.isEmpty()); // "leave running"
        QVERIFY(window.isVisible());
        QVERIFY(isRunning(window));
        confirmer->answer = true;
        confirmer->choice = Confirmer::Choice::Accept; // stop them
        window.close();
        QTRY_VERIFY_WITH_TIMEOUT(!window.isVisible(), 20000);
        QCOMPARE(confirmer->asked.size(), 2);
        QCOMPARE(agentStatus(QStringLiteral("quitter")).state, agent::SiteState::Stopped);
    }

    // SIGTERM/SIGINT (corral's main() connects them to quitWithoutAsking): the window closes
    // without a question that nobody may be there to answer, and the sites keep running in
    // the agent.
    void quittingOnASignalDoesNotAsk() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-signal.json")), options());
        ScriptedConfirmer *confirmer = installConfirmer(window, false);
        window.show();
        QVERIFY(window.launchCluster(demoSite(QStringLiteral("signalled"), 1)).ok());
        QTRY_VERIFY_WITH_TIMEOUT(isRunning(window), 20000);
        window.quitWithoutAsking();
        QTRY_VERIFY_WITH_TIMEOUT(!window.isVisible(), 20000);
        QVERIFY(confirmer->asked.isEmpty());
        QCOMPARE(agentStatus(QStringLiteral("signalled")).state, agent::SiteState::Running);
        agent::AgentClient client;
        QVERIFY_RESULT(client.connectToAgent(false));
        QVERIFY_RESULT(client.call(QLatin1String(agent::op::Stop),
                                   {{QStringLiteral("site"), QStringLiteral("signalled")}}));
    }

    // Issue 13 item 12: launching under the name of a saved site asks before its settings are
    // overwritten.
    void launchOverASavedSiteAsks() {
        const QString path = m_home.filePath(QStringLiteral("inventory-overwrite.json"));
        Site saved = demoSite(QStringLiteral("shop"), 3);
        saved.listen.clear();
        {
            Inventory inventory;
            QVERIFY(inventory.addSite(saved).ok());
            QVERIFY(inventory.save(path).ok());
        }
        MainWindow window(path, options());
        ScriptedConfirmer *confirmer = installConfirmer(window, false);
        window.show();
        const auto launchThroughTheDialog = [&] {
            window.action(QStringLiteral("launch"))->trigger();
            const auto dialogs = window.findChildren<LaunchClusterDialog *>();
            QVERIFY(!dialogs.isEmpty());
            LaunchClusterDialog *dialog = dialogs.last();
            Site replacement = demoSite(QStringLiteral("shop"), 1);
            dialog->setSite(replacement);
            dialog->accept();
        };
        launchThroughTheDialog();
        QCOMPARE(confirmer->asked.size(), 1);
        QVERIFY2(confirmer->asked.first().text.contains(QStringLiteral("shop")),
                 qPrintable(confirmer->asked.first().text));
        QVERIFY(!window.currentSite());
        QCOMPARE(Inventory::load(path)->site(QStringLiteral("shop"))->workers, 3);
        QTest::qWait(0); // the declined dialog deletes itself
        confirmer->answer = true;
        launchThroughTheDialog();
        QTRY_VERIFY_WITH_TIMEOUT(window.currentSite(), 5000);
        QTRY_COMPARE_WITH_TIMEOUT(Inventory::load(path)->site(QStringLiteral("shop"))->workers, 1,
                                  5000);
        stopAll(window);
    }

    // Issue 13 item 14: a worker that fails says why with the last lines of its log and the
    // log file's path, in the console's message. A worker that dies while its site starts
    // fails the start: the agent stops the site, shows it failed, and answers with that report.
    // Issue 19: the log view shows the site's access log (the file its proxy writes beside
    // the workers' logs), chosen next to the workers' logs.
    void logViewShowsTheAccessLog() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-access.json")), options());
        installConfirmer(window, true);
        window.show();
        const Site site = demoSite(QStringLiteral("accesslogged"), 1);
        QVERIFY(window.launchCluster(site).ok());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 1,
                                  20000);
        QTRY_VERIFY_WITH_TIMEOUT(proxyHasBackend(window, sitePorts(window).value(0)), 10000);
        {
            HttpClient client(quint16(site.listen.section(QLatin1Char(':'), 1).toUInt()));
            for (int i = 0; i < 3; ++i)
                QCOMPARE(client.get("/?from=tst_console").status, 200);
        }
        auto *logView = window.findChild<LogView *>();
        QVERIFY(logView);
        QComboBox *selector = logView->sourceSelector();
        QVERIFY(selector->findText(QStringLiteral("Access log")) >= 0);
        QVERIFY(selector->findText(QStringLiteral("Worker log")) >= 0);
        selector->setCurrentIndex(selector->findText(QStringLiteral("Access log")));
        // Written off the request path: it shows within a few ticks.
        QTRY_VERIFY2_WITH_TIMEOUT(
            logView->text()->toPlainText().count(QStringLiteral("GET /?from=tst_console")) == 3,
            qPrintable(logView->text()->toPlainText()), 10000);
        // The worker's log again, one switch away.
        selectWorker(window, sitePorts(window).value(0));
        selector->setCurrentIndex(selector->findText(QStringLiteral("Worker log")));
        QTRY_VERIFY_WITH_TIMEOUT(
            !logView->text()->toPlainText().contains(QStringLiteral("GET /?from=tst_console")),
            10000);
        stopAll(window);
    }

    void failedWorkerMessageHasItsLogTail() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-fail.json")), options());
        installConfirmer(window, true);
        window.show();
        // Never ready, gone after 30 ms: it fails while the site starts, however fast the
        // readiness probe is (with a listening worker, a fast probe saw it running first).
        Site site = demoSite(QStringLiteral("failing"), 1,
                             {QStringLiteral("--never-listen"), QStringLiteral("--exit-after-ms"),
                              QStringLiteral("30")});
        QSignalSpy finished(&window, &MainWindow::operationFinished);
        QVERIFY(window.launchCluster(site).ok());
        QVERIFY(finished.wait(20000));
        QCOMPARE(finished.first().at(1).toString(), QStringLiteral("launch"));
        const QString message = window.lastError();
        QCOMPARE(message, finished.first().at(2).toString());
        const QRegularExpressionMatch worker =
            QRegularExpression(QStringLiteral("worker (\\d+) of failing failed: ")).match(message);
        QVERIFY2(worker.hasMatch(), qPrintable(message));
        QVERIFY2(message.contains(QStringLiteral("log: ")) &&
                     message.contains(QStringLiteral("failing/%1.log").arg(worker.captured(1))),
                 qPrintable(message));
        // The program's own last words, not only Corral's.
        QVERIFY2(message.contains(QStringLiteral("of its output:")) &&
                     message.contains(QStringLiteral("exiting after 30 ms")),
                 qPrintable(message));
        // Nothing half started stays: the site is shown failed, with nothing running.
        QTRY_COMPARE_WITH_TIMEOUT(agentStatus(site.name).state, agent::SiteState::Failed, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(!window.currentSite(), 5000);
        QVERIFY(!window.action(QStringLiteral("stopSite"))->isEnabled());
    }

    // A worker that fails while its site starts is reported once, by the console's own report
    // (its cause and log), not a second time by the agent's answer to the launch.
    void failedLaunchIsReportedOnce() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory-once.json")), options());
        installConfirmer(window, true);
        window.show();
        // An executable whose interpreter is missing: exec fails, the worker fails at once.
        const QString program = m_home.filePath(QStringLiteral("broken-worker"));
        {
            QFile script(program);
            QVERIFY(script.open(QIODevice::WriteOnly));
            script.write("#!/nonexistent/interpreter\n");
            script.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        }
        Site site = demoSite(QStringLiteral("broken"), 1);
        site.command = program;
        QSignalSpy finished(&window, &MainWindow::operationFinished);
        QVERIFY(window.launchCluster(site).ok());
        QVERIFY(finished.wait(20000));
        QVERIFY2(!finished.first().at(2).toString().isEmpty(), "the launch did not fail");
        QVERIFY2(window.lastError().contains(QStringLiteral("worker ")) &&
                     window.lastError().contains(QStringLiteral("log: ")),
                 qPrintable(window.lastError()));
        int boxes = 0;
        for (const QMessageBox *box : window.findChildren<QMessageBox *>())
            boxes += box->isVisible() ? 1 : 0;
        QCOMPARE(boxes, 1);
        stopAll(window);
    }

    void layoutPersists() {
        const QString path = m_home.filePath(QStringLiteral("inventory4.json"));
        QList<int> sizes;
        {
            MainWindow window(path, options());
            window.show();
            auto *splitter = window.findChild<QSplitter *>(QStringLiteral("mainSplitter"));
            QVERIFY(splitter);
            splitter->setSizes({300, 900});
            sizes = splitter->sizes();
            window.close();
        }
        MainWindow again(path, options());
        again.show();
        QCOMPARE(again.findChild<QSplitter *>(QStringLiteral("mainSplitter"))->sizes(), sizes);
    }
};

QTEST_MAIN(TestConsole)
#include "tst_console.moc"
