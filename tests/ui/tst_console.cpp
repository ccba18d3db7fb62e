#include "InventoryTreeModel.h"
#include "LogView.h"
#include "MainWindow.h"
#include "WorkerTableModel.h"
#include "charts/DistributionChartView.h"
#include "cluster/LocalCluster.h"
#include "inventory/Inventory.h"
#include "loadgen/LoadGenerator.h"
#include "proxy/ProxyEngine.h"
#include "supervisor/Supervisor.h"

#include <QAbstractItemModelTester>
#include <QAction>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

using namespace corral;

namespace {

QString freeListenAddress() {
    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    return QStringLiteral("127.0.0.1:%1").arg(probe.serverPort());
}

bool proxyHasBackend(const LocalCluster *cluster, quint16 port) {
    const QList<Backend> backends = cluster->proxy()->backends();
    return std::any_of(backends.cbegin(), backends.cend(),
                       [port](const Backend &b) { return b.port == port; });
}

int rowsInState(const WorkerTableModel *model, WorkerState state) {
    int count = 0;
    for (const WorkerRow &row : model->rows())
        count += row.state == state ? 1 : 0;
    return count;
}

} // namespace

class TestConsole : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;

    MainWindow::Options options() const {
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        options.tickIntervalMs = 200; // faster ticks keep the test short; behaviour is the same
        return options;
    }
    void stopAll(MainWindow &window) {
        bool stopped = false;
        window.stopAllClusters([&] { stopped = true; });
        QTRY_VERIFY_WITH_TIMEOUT(stopped, 20000);
    }

private Q_SLOTS:
    void initTestCase() {
        qputenv("XDG_STATE_HOME", m_home.filePath(QStringLiteral("state")).toUtf8());
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        QCoreApplication::setOrganizationName(QStringLiteral("corral-test"));
    }

    void demoAddBackendAndDrain() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory.json")), options());
        QAbstractItemModelTester treeTester(window.hostTree()->model(),
                                            QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester tableTester(
            window.workerTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester sourceTester(
            window.workerModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));

        QVERIFY2(window.startDemo(freeListenAddress()).ok(), qPrintable(window.lastError()));
        LocalCluster *cluster = window.currentCluster();
        QVERIFY(cluster && cluster->proxy());
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(window.workerModel(), WorkerState::Running), 3,
                                  20000);
        // The demo site shows in the tree with its live state.
        const QModelIndex demo = static_cast<InventoryTreeModel *>(window.hostTree()->model())
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
        QTRY_VERIFY_WITH_TIMEOUT(proxyHasBackend(cluster, newPort), 10000);

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
        const ClusterSnapshot snapshot = cluster->snapshot();
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
        const ProxyStats stats = cluster->proxy()->snapshot();
        quint64 proxyTotal = 0;
        for (const BackendStats &backend : stats.backends)
            proxyTotal += backend.requests;
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
        QTRY_VERIFY_WITH_TIMEOUT(!proxyHasBackend(cluster, newPort), 10000);
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
        QSignalSpy finished(window.currentCluster(), &LocalCluster::rollingRestartFinished);
        window.action(QStringLiteral("rollingRestart"))->trigger();
        QVERIFY(!window.action(QStringLiteral("rollingRestart"))->isEnabled());
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(0).toBool(), true);
        // The table catches up at the next tick: both rows running, both with new pids.
        const auto replaced = [&] {
            const QList<WorkerRow> rows = window.workerModel()->rows();
            return rows.size() == 2 && std::all_of(rows.cbegin(), rows.cend(), [&](const WorkerRow &row) {
                       return row.state == WorkerState::Running && !pids.contains(row.pid);
                   });
        };
        QTRY_VERIFY_WITH_TIMEOUT(replaced(), 5000);
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
