#include "BalancerFixture.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "WorkerTableModel.h"
#include "charts/CpuChartView.h"
#include "charts/DistributionChartView.h"
#include "charts/ThroughputChartView.h"
#include "cluster/RemoteSiteMonitor.h"
#include "inventory/Inventory.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QAction>
#include <QDateTime>
#include <QElapsedTimer>
#include <QLineSeries>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

using namespace corral;
using namespace corral::test;

/// What the console shows of a production site is true: a real nginx balancing over two
/// workers Corral started on two "hosts" (real sshds on 127.0.0.10 = web1, the balancer's
/// host, and 127.0.0.11 = web2), seen through the console's main window offscreen.
///  - the view keeps updating after a host is added (the inventory reload of Add host);
///  - one SSH session per host, whatever the ticks, reloads and checks;
///  - web1's sshd killed: rows unknown, site degraded, host offline, charts with a gap;
///    sshd back: online again within seconds;
///  - tree worker count, uptime from the host, chart labels with host names.
class TestRemoteSiteTruth : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;
    SshServer m_web1{QStringLiteral("127.0.0.10")};
    SshServer m_web2{QStringLiteral("127.0.0.11")};
    NginxInstance m_nginx{QStringLiteral("truth")};
    quint16 m_basePort = 0;
    quint16 m_port1 = 0; ///< worker on web1 (the balancer reaches it on loopback)
    quint16 m_port2 = 0; ///< worker on web2 (reached at 127.0.0.11)
    QElapsedTimer m_sinceWorkersStarted;

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }
    Host web1() const { return m_web1.inventoryHost(QStringLiteral("web1")); }
    Host web2() const { return m_web2.inventoryHost(QStringLiteral("web2")); }

    Site site() const {
        Site site;
        site.name = QStringLiteral("truth");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        // Every address, so the worker on web2 answers at web2's own address.
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder, QStringLiteral("--bind"),
                     QStringLiteral("0.0.0.0")};
        site.healthPath = QStringLiteral("/health");
        site.workers = 0;
        site.basePort = m_basePort;
        site.serverNames = {QStringLiteral("truth.example.com")};
        site.hosts = {QStringLiteral("web2")};
        if (m_port1) site.backends.append(Backend{QStringLiteral("127.0.0.1"), m_port1});
        if (m_port2) site.backends.append(Backend{m_web2.address(), m_port2});
        site.balancer = m_nginx.balancer(QStringLiteral("web1"));
        return site;
    }

    MainWindow::Options options() const {
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        options.tickIntervalMs = 250;
        return options;
    }

    static InventoryTreeFilter *treeOf(MainWindow &window) {
        return qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
    }

    void selectSite(MainWindow &window) {
        window.hostTree()->setCurrentIndex(treeOf(window)->siteIndex(QStringLiteral("truth")));
        QVERIFY(window.remoteMonitor());
    }

    /// The tree's details column of the site.
    static QString siteDetails(MainWindow &window) {
        return treeOf(window)
            ->siteIndex(QStringLiteral("truth"))
            .siblingAtColumn(1)
            .data()
            .toString();
    }

    /// The tree's details column of host `name` ("root@127.0.0.10 · online").
    static QString hostDetails(MainWindow &window, const QString &name) {
        InventoryTreeFilter *model = treeOf(window);
        for (int row = 0; row < model->rowCount(); ++row) {
            const QModelIndex index = model->index(row, 0);
            if (index.data(InventoryTreeModel::NameRole).toString() == name)
                return index.siblingAtColumn(1).data().toString();
        }
        return {};
    }

    /// The table's text in `column` for every worker row.
    static QStringList columnTexts(MainWindow &window, int column) {
        QStringList texts;
        WorkerTableModel *model = window.workerModel();
        for (int row = 0; row < model->rows().size(); ++row)
            texts.append(model->index(row, column).data().toString());
        return texts;
    }

    static WorkerRow rowOf(MainWindow &window, quint16 port) {
        const WorkerRow *row = window.workerModel()->rowForPort(port);
        return row ? *row : WorkerRow{};
    }

    static quint64 requestsShown(MainWindow &window) {
        quint64 total = 0;
        for (const WorkerRow &row : window.workerModel()->rows())
            total += row.requestsTotal;
        return total;
    }

    void sendRequests(int count) {
        for (int i = 0; i < count; ++i)
            QVERIFY(httpGet(m_nginx.httpPort(), "/", "truth.example.com").status == 200);
    }

    /// Every line of the CPU and throughput charts: the pieces a worker's or the site's line
    /// is drawn as.
    static QList<QLineSeries *> lines(MainWindow &window) {
        QList<QLineSeries *> result;
        const auto add = [&](QChart *chart) {
            for (QAbstractSeries *series : chart->series())
                if (auto *line = qobject_cast<QLineSeries *>(series)) result.append(line);
        };
        add(window.cpuChart()->chart());
        add(window.findChild<ThroughputChartView *>()->chart());
        return result;
    }

    /// Waits until neither sshd has a connection open (those of setup or an earlier window),
    /// so every connection counted afterwards belongs to the window under test.
    void waitForNoConnections() {
        QTRY_VERIFY_WITH_TIMEOUT(
            m_web1.connectionPids().isEmpty() && m_web2.connectionPids().isEmpty(), 10000);
    }

private Q_SLOTS:
    void initTestCase() {
        if (!NginxInstance::available())
            QSKIP("nginx is not installed (installer/install-deps.sh installs it)");
        QVERIFY(m_home.isValid());
        qputenv("HOME", m_home.path().toUtf8());
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        qputenv("XDG_STATE_HOME", m_home.filePath(QStringLiteral("state")).toUtf8());
        qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-test-bus");
        QString error;
        QVERIFY2(m_web1.start(&error), qPrintable(error));
        QVERIFY2(m_web2.start(&error), qPrintable(error));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        m_basePort = workerBasePort();

        // Both hosts trusted as after "Add host"; the workers started by Corral on each, so
        // their pid files give pid, CPU, memory and start time.
        const auto open = [](const Host &host) {
            SshConfig trust = SshConfig::fromHost(host);
            trust.acceptNew = true;
            return std::make_unique<SshSession>(trust);
        };
        auto session1 = open(web1());
        auto session2 = open(web2());
        QVERIFY_RESULT(session1->connect());
        QVERIFY_RESULT(session2->connect());
        auto ports = RemoteWorkers::allocatePorts(*session1, site(), 2);
        QVERIFY_RESULT(ports);
        m_port1 = ports->at(0);
        m_port2 = ports->at(1);
        m_sinceWorkersStarted.start();
        QVERIFY_RESULT(RemoteWorkers::start(*session1, site(), m_port1));
        QVERIFY_RESULT(RemoteWorkers::start(*session2, site(), m_port2));
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(*session1, site(), m_port1, 15000));
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(*session2, site(), m_port2, 15000));
        ConfigApplier applier(*session1);
        const ApplyReport applied =
            applier.apply(site(), RemoteBalancer::fromSite(*site().balancer).value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));

        Inventory inventory;
        QVERIFY_RESULT(inventory.addHost(web1()));
        QVERIFY_RESULT(inventory.addHost(web2()));
        QVERIFY_RESULT(inventory.addSite(site()));
        QVERIFY_RESULT(inventory.save(inventoryPath()));
    }

    void cleanupTestCase() {
        for (const auto &[host, port] : {std::pair{web1(), m_port1}, std::pair{web2(), m_port2}}) {
            if (!port) continue;
            SshSession session(SshConfig::fromHost(host));
            if (session.connect()) (void)RemoteWorkers::stop(session, site().name, port);
        }
    }

    // The tree counts the site's live workers, Uptime comes from the host, and the charts
    // name each backend by its inventory host and port.
    void valuesAreTheSitesOwn() {
        MainWindow window(inventoryPath(), options());
        selectSite(window);
        QTRY_COMPARE_WITH_TIMEOUT(window.workerModel()->rows().size(), qsizetype(2), 15000);
        QTRY_COMPARE_WITH_TIMEOUT(rowOf(window, m_port1).state, WorkerState::Running, 15000);
        QTRY_COMPARE_WITH_TIMEOUT(rowOf(window, m_port2).state, WorkerState::Running, 15000);

        // Not "0 workers" (the site's local worker count) while two run.
        QTRY_VERIFY2_WITH_TIMEOUT(siteDetails(window).contains(QStringLiteral("2/2")),
                                  qPrintable(siteDetails(window)), 10000);

        // Uptime: each worker's process age on its own host, not "–".
        for (const quint16 port : {m_port1, m_port2}) {
            QTRY_VERIFY_WITH_TIMEOUT(rowOf(window, port).uptimeMs > 0, 15000);
            QVERIFY2(rowOf(window, port).uptimeMs <= m_sinceWorkersStarted.elapsed() + 2000,
                     qPrintable(QString::number(rowOf(window, port).uptimeMs)));
        }
        QVERIFY2(!columnTexts(window, WorkerTableModel::Uptime).contains(QStringLiteral("–")),
                 qPrintable(columnTexts(window, WorkerTableModel::Uptime).join(QLatin1Char('|'))));

        // Labels: "web1:PORT", "web2:PORT", whole, in the CPU legend and under the bars.
        const QSet<QString> expected{QStringLiteral("web1:%1").arg(m_port1),
                                     QStringLiteral("web2:%1").arg(m_port2)};
        const auto cpuNames = [&] {
            QSet<QString> names;
            for (QAbstractSeries *series : window.cpuChart()->chart()->series())
                names.insert(series->name());
            return names;
        };
        QTRY_COMPARE_WITH_TIMEOUT(cpuNames(), expected, 10000);
        DistributionChartView *bars = window.distributionChart();
        QTRY_COMPARE_WITH_TIMEOUT(bars->barCount(), 2, 10000);
        QSet<QString> barNames;
        for (int i = 0; i < bars->barCount(); ++i) {
            barNames.insert(bars->backendName(i));
            QVERIFY2(bars->categoryLabel(i).startsWith(bars->backendName(i) + QLatin1Char('\n')),
                     qPrintable(bars->categoryLabel(i)));
        }
        QCOMPARE(barNames, expected);
    }

    // File → Add host… → Save saves the host and reloads the inventory: the site on view
    // keeps updating (it froze: the reload replaced every SSH host and the monitor stopped),
    // and so do re-selecting it and F5. Every host keeps its one SSH session throughout.
    void addingAHostKeepsTheViewLive() {
        waitForNoConnections();
        MainWindow window(inventoryPath(), options());
        QSet<qint64> web1Connections, web2Connections;
        const auto countConnections = [&] {
            for (qint64 pid : m_web1.connectionPids())
                web1Connections.insert(pid);
            for (qint64 pid : m_web2.connectionPids())
                web2Connections.insert(pid);
        };
        connect(&window, &MainWindow::ticked, this, countConnections);
        selectSite(window);
        QSignalSpy ticked(&window, &MainWindow::ticked);
        QVERIFY(ticked.wait(15000));
        QTRY_COMPARE_WITH_TIMEOUT(rowOf(window, m_port2).pid > 0, true, 15000);
        const quint64 before = requestsShown(window);
        sendRequests(6);
        QTRY_COMPARE_WITH_TIMEOUT(requestsShown(window), before + 6, 15000);

        // What the dialog's Save does: the host added to the inventory, then reloaded.
        {
            auto inventory = Inventory::load(inventoryPath());
            QVERIFY_RESULT(inventory);
            Host web3;
            web3.name = QStringLiteral("web3");
            web3.kind = Host::Kind::Ssh;
            web3.address = QStringLiteral("127.0.0.12");
            web3.port = 1; // nothing listens: an unreachable host must not disturb the others
            web3.user = QStringLiteral("root");
            QVERIFY_RESULT(inventory->addHost(web3));
            QVERIFY_RESULT(inventory->save(inventoryPath()));
        }
        const auto removeWeb3 = qScopeGuard([this] {
            auto inventory = Inventory::load(inventoryPath());
            if (inventory && inventory->removeHost(QStringLiteral("web3")))
                (void)inventory->save(inventoryPath());
        });
        window.reloadInventory();
        QVERIFY(window.remoteMonitor());
        sendRequests(6);
        QTRY_COMPARE_WITH_TIMEOUT(requestsShown(window), before + 12, 15000);

        // Re-selecting the site and F5 keep it live too. A host selected in between shows the
        // fleet overview and ends the site's view: the counts start again with the next one.
        window.hostTree()->setCurrentIndex(treeOf(window)->index(0, 0));
        QVERIFY(window.fleetOverviewShown());
        selectSite(window);
        window.action(QStringLiteral("reload"))->trigger();
        QVERIFY(ticked.wait(15000)); // the new view's first reading
        const quint64 reselected = requestsShown(window);
        sendRequests(6);
        QTRY_COMPARE_WITH_TIMEOUT(requestsShown(window), reselected + 6, 15000);
        // Pid and CPU of web2's worker are still read on web2.
        QTRY_VERIFY_WITH_TIMEOUT(rowOf(window, m_port2).pid > 0 && rowOf(window, m_port2).cpuValid,
                                 10000);

        // One login per host for the whole run: ticks, reloads and checks reuse it.
        QTRY_VERIFY_WITH_TIMEOUT(ticked.size() >= 12, 15000);
        countConnections();
        QCOMPARE(web1Connections.size(), 1);
        QCOMPARE(web2Connections.size(), 1);
        qInfo("%lld ticks over one SSH connection per host", qlonglong(ticked.size()));
    }

    // web1 (the balancer's host) loses its sshd: at once its rows read "unknown" (greyed,
    // with when they were last seen), the site is degraded in the tree, the host offline,
    // and the charts leave a gap rather than a line across the outage. Back within seconds.
    void lostHostShowsUnknownThenRecovers() {
        waitForNoConnections();
        MainWindow window(inventoryPath(), options());
        selectSite(window);
        QSignalSpy ticked(&window, &MainWindow::ticked);
        QTRY_COMPARE_WITH_TIMEOUT(rowOf(window, m_port1).state, WorkerState::Running, 15000);
        QTRY_VERIFY_WITH_TIMEOUT(rowOf(window, m_port1).cpuValid, 15000);
        QTRY_VERIFY_WITH_TIMEOUT(
            hostDetails(window, QStringLiteral("web1")).endsWith(QStringLiteral("online")), 10000);
        QVERIFY(!siteDetails(window).contains(QStringLiteral("degraded")));

        const qint64 killedMs = QDateTime::currentMSecsSinceEpoch();
        QElapsedTimer sinceKill;
        sinceKill.start();
        m_web1.killHard();
        const auto allUnknown = [&] {
            const QStringList states = columnTexts(window, WorkerTableModel::State);
            return states.size() == 2 &&
                   states.filter(QStringLiteral("unknown")).size() == states.size();
        };
        QTRY_VERIFY2_WITH_TIMEOUT(
            allUnknown(),
            qPrintable(columnTexts(window, WorkerTableModel::State).join(QLatin1Char('|'))), 5000);
        const qint64 unknownAfterMs = sinceKill.elapsed();
        // Degraded at once, with the rows.
        QVERIFY2(siteDetails(window).contains(QStringLiteral("degraded")),
                 qPrintable(siteDetails(window)));
        // Greyed, with the time they were last seen.
        WorkerTableModel *model = window.workerModel();
        const QModelIndex state = model->index(0, WorkerTableModel::State);
        QVERIFY2(state.data().toString().contains(QStringLiteral("last seen")),
                 qPrintable(state.data().toString()));
        const QColor grey = state.data(Qt::ForegroundRole).value<QBrush>().color();
        QVERIFY2(grey.saturation() < 30, qPrintable(grey.name()));
        QCOMPARE(model->index(0, WorkerTableModel::RequestsPerSecond).data().toString(),
                 QStringLiteral("–"));
        QTRY_VERIFY_WITH_TIMEOUT(
            hostDetails(window, QStringLiteral("web1")).endsWith(QStringLiteral("offline")), 3000);
        const qint64 offlineAfterMs = sinceKill.elapsed();
        // A few ticks of outage.
        const qsizetype ticksBefore = ticked.size();
        QTRY_VERIFY_WITH_TIMEOUT(ticked.size() >= ticksBefore + 4, 10000);
        QVERIFY(allUnknown());

        QString error;
        QVERIFY2(m_web1.start(&error), qPrintable(error));
        const qint64 restartedMs = QDateTime::currentMSecsSinceEpoch();
        QElapsedTimer sinceRestart;
        sinceRestart.start();
        QTRY_VERIFY_WITH_TIMEOUT(
            hostDetails(window, QStringLiteral("web1")).endsWith(QStringLiteral("online")), 5000);
        const qint64 onlineAfterMs = sinceRestart.elapsed();
        QTRY_COMPARE_WITH_TIMEOUT(rowOf(window, m_port1).state, WorkerState::Running, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(
            !allUnknown() && !siteDetails(window).contains(QStringLiteral("degraded")), 10000);
        QTRY_VERIFY_WITH_TIMEOUT(rowOf(window, m_port1).cpuValid, 10000);
        qInfo("rows unknown %lld ms and host offline %lld ms after sshd was killed; online %lld "
              "ms after it restarted",
              unknownAfterMs, offlineAfterMs, onlineAfterMs);

        // The gap: points before the kill and after the restart, and no line joining them.
        QTRY_VERIFY_WITH_TIMEOUT(
            [&] {
                int after = 0;
                for (QLineSeries *line : lines(window))
                    for (const QPointF &point : line->points())
                        after += point.x() > restartedMs;
                return after >= 4;
            }(),
            10000);
        bool before = false;
        for (QLineSeries *line : lines(window)) {
            const QList<QPointF> points = line->points();
            for (qsizetype i = 0; i < points.size(); ++i) {
                before = before || points[i].x() < killedMs;
                if (i > 0)
                    QVERIFY2(!(points[i - 1].x() < killedMs && points[i].x() > restartedMs),
                             qPrintable(QStringLiteral("%1 draws a line across the outage: "
                                                       "%2 -> %3")
                                            .arg(line->name())
                                            .arg(points[i - 1].x(), 0, 'f', 0)
                                            .arg(points[i].x(), 0, 'f', 0)));
            }
        }
        QVERIFY(before);
    }
};

QTEST_MAIN(TestRemoteSiteTruth)
#include "tst_remotesitetruth.moc"
