// Every item model of the console under QAbstractItemModelTester (QtTest reporting: a broken
// invariant fails the test function where the model emitted it), fed the way the console
// feeds them: WorkerTableModel (and the sort/filter proxy in front of it, set up as
// MainWindow's) from a real LocalCluster's snapshots and from production-site snapshots,
// InventoryTreeModel from an inventory file loaded with Inventory::load and live site health.
#include "InventoryTreeModel.h"
#include "ResultVerify.h"
#include "TestProcess.h"
#include "WorkerTableModel.h"
#include "cluster/LocalCluster.h"
#include "inventory/Inventory.h"

#include <QAbstractItemModelTester>
#include <QDateTime>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTemporaryDir>
#include <QTest>
#include <QTextDocument>

#include <csignal>
#include <memory>

using namespace corral;

namespace {

using Tester = QAbstractItemModelTester;

std::unique_ptr<Tester> testerFor(QAbstractItemModel *model) {
    return std::make_unique<Tester>(model, Tester::FailureReportingMode::QtTest);
}

/// The worker table's proxy exactly as MainWindow sets it up (sorted by the raw values,
/// filtered over every column).
void setUpLikeTheConsole(QSortFilterProxyModel &proxy, WorkerTableModel &model) {
    proxy.setSourceModel(&model);
    proxy.setSortRole(WorkerTableModel::SortRole);
    proxy.setFilterKeyColumn(-1);
    proxy.setFilterCaseSensitivity(Qt::CaseInsensitive);
    proxy.sort(WorkerTableModel::Port, Qt::AscendingOrder);
}

QString cell(const QAbstractItemModel &model, int row, int column, const QModelIndex &parent = {}) {
    return model.index(row, column, parent).data().toString();
}

/// The Port column, top to bottom.
QStringList ports(const QAbstractItemModel &model) {
    QStringList shown;
    for (int row = 0; row < model.rowCount(); ++row)
        shown.append(cell(model, row, WorkerTableModel::Port));
    return shown;
}

int runningRows(const WorkerTableModel &model) {
    int running = 0;
    for (const WorkerRow &row : model.rows())
        running += row.state == WorkerState::Running ? 1 : 0;
    return running;
}

WorkerRow remoteRow(const QString &host, const QString &hostName, quint16 port) {
    WorkerRow row;
    row.site = QStringLiteral("prod");
    row.host = host;
    row.hostName = hostName;
    row.port = port;
    row.pid = port * 10;
    row.state = WorkerState::Running;
    row.inProxy = true;
    row.backendState = QStringLiteral("up");
    row.uptimeMs = 65000;
    row.requestsPerSecond = 12;
    return row;
}

/// The site row of `site` in the tree, whoever it is under.
QModelIndex siteRow(const InventoryTreeModel &model, const QString &site) {
    return model.siteIndex(site);
}

} // namespace

class TestModels : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        qRegisterMetaType<ClusterSnapshot>();
    }

    // A real cluster of demo workers: rows arrive, a worker is added, one is killed and comes
    // back (crash count), one is removed; the tester checks every insert, removal and
    // dataChanged of the table and of the console's proxy in front of it.
    void workerTableFollowsALiveCluster() {
        WorkerTableModel model;
        QSortFilterProxyModel proxy;
        setUpLikeTheConsole(proxy, model);
        const auto modelTester = testerFor(&model);
        const auto proxyTester = testerFor(&proxy);

        SupervisionPolicy policy;
        policy.backoffInitialMs = 50;
        policy.logDirectory = m_dir.filePath(QStringLiteral("logs"));
        LocalCluster cluster(policy);
        cluster.setTickInterval(100);
        connect(&cluster, &LocalCluster::snapshotReady, &model, &WorkerTableModel::updateSnapshot);
        Site site;
        site.name = QStringLiteral("models");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        site.workers = 2;
        site.basePort = test::workerBasePort(8);
        site.healthPath = QStringLiteral("/health");
        site.listen = QStringLiteral("127.0.0.1:%1").arg(test::freePort());
        QVERIFY_RESULT(cluster.start(site));
        const auto stop = qScopeGuard([&] {
            QSignalSpy stopped(&cluster, &LocalCluster::stopped);
            cluster.stop();
            if (cluster.isRunning()) stopped.wait(15000);
        });

        QTRY_COMPARE_WITH_TIMEOUT(runningRows(model), 2, 15000);
        QCOMPARE(model.rowCount(), 2);
        QCOMPARE(model.columnCount(), int(WorkerTableModel::ColumnCount));
        const QList<WorkerRow> first = model.rows();
        QCOMPARE(ports(proxy), (QStringList{QString::number(first.at(0).port),
                                            QString::number(first.at(1).port)}));
        QCOMPARE(cell(model, 0, WorkerTableModel::Host), QStringLiteral("local"));
        QCOMPARE(cell(model, 0, WorkerTableModel::State), QStringLiteral("running"));
        QCOMPARE(cell(model, 0, WorkerTableModel::Pid), QString::number(first.at(0).pid));
        QCOMPARE(model.headerData(WorkerTableModel::Port, Qt::Horizontal).toString(),
                 QStringLiteral("Port"));
        // The proxy knows the backends once they joined it.
        QTRY_VERIFY_WITH_TIMEOUT(model.rows().at(0).inProxy && model.rows().at(1).inProxy, 10000);

        // One more worker: one row inserted, in port order.
        QVERIFY_RESULT(cluster.addWorker());
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(model), 3, 15000);
        QCOMPARE(proxy.rowCount(), 3);
        const quint16 added = model.rows().at(2).port;

        // The console's filter: one worker by its port, then all again.
        proxy.setFilterFixedString(QString::number(added));
        QCOMPARE(proxy.rowCount(), 1);
        QCOMPARE(cell(proxy, 0, WorkerTableModel::Port), QString::number(added));
        proxy.setFilterFixedString(QString());
        QCOMPARE(proxy.rowCount(), 3);

        // A worker killed by signal: its row changes state and counts the crash, then runs
        // again under a new pid; the other rows stay.
        const WorkerRow victim = model.rows().at(0);
        QVERIFY(::kill(pid_t(victim.pid), SIGKILL) == 0);
        QTRY_VERIFY_WITH_TIMEOUT(model.rowForPort(victim.port) &&
                                     model.rowForPort(victim.port)->crashes == 1 &&
                                     model.rowForPort(victim.port)->state == WorkerState::Running &&
                                     model.rowForPort(victim.port)->pid != victim.pid,
                                 15000);
        QCOMPARE(model.rowCount(), 3);
        QCOMPARE(cell(model, 0, WorkerTableModel::Crashes), QStringLiteral("1"));

        // Sorting by another column reorders the proxy, not the model.
        proxy.sort(WorkerTableModel::Crashes, Qt::DescendingOrder);
        QCOMPARE(cell(proxy, 0, WorkerTableModel::Port), QString::number(victim.port));
        proxy.sort(WorkerTableModel::Port, Qt::AscendingOrder);

        // A worker removed: its row goes.
        QVERIFY_RESULT(cluster.removeWorker(added));
        QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 2, 15000);
        QVERIFY(!model.rowForPort(added));
        QVERIFY(!ports(proxy).contains(QString::number(added)));

        // Another site selected in the console.
        model.clear();
        QCOMPARE(proxy.rowCount(), 0);
    }

    // A production site's ticks as RemoteSiteMonitor delivers them: rows over two hosts kept
    // in (host, port) order, a host that cannot be reached greys its rows whole, the
    // balancer's own row comes and goes, workers go up and down.
    void workerTableFollowsAProductionSite() {
        WorkerTableModel model;
        QSortFilterProxyModel proxy;
        setUpLikeTheConsole(proxy, model);
        const auto modelTester = testerFor(&model);
        const auto proxyTester = testerFor(&proxy);

        ClusterSnapshot tick;
        tick.site = QStringLiteral("prod");
        tick.listen = QStringLiteral("127.0.0.1:8080");
        tick.workers = {remoteRow(QStringLiteral("127.0.0.3"), QStringLiteral("web2"), 3001),
                        remoteRow(QStringLiteral("127.0.0.2"), QStringLiteral("web1"), 3002),
                        remoteRow(QStringLiteral("127.0.0.2"), QStringLiteral("web1"), 3001)};
        model.updateSnapshot(tick);
        QCOMPARE(model.rowCount(), 3);
        QCOMPARE(cell(model, 0, WorkerTableModel::Host), QStringLiteral("web1"));
        QCOMPARE(cell(model, 0, WorkerTableModel::Port), QStringLiteral("3001"));
        QCOMPARE(cell(model, 1, WorkerTableModel::Port), QStringLiteral("3002"));
        QCOMPARE(cell(model, 2, WorkerTableModel::Host), QStringLiteral("web2"));
        QCOMPARE(model.index(0, WorkerTableModel::Host).data(Qt::ToolTipRole).toString(),
                 QStringLiteral("web1 (127.0.0.2)"));
        QCOMPARE(cell(model, 0, WorkerTableModel::Uptime), QStringLiteral("1 m 5 s"));

        // The same tick again changes nothing.
        QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
        model.updateSnapshot(tick);
        QCOMPARE(changed.count(), 0);

        // web2 unreachable: its row is unknown as a whole (one dataChanged over every column).
        tick.workers[0].reachable = false;
        tick.workers[0].lastSeenMs = QDateTime::currentMSecsSinceEpoch();
        tick.unreachableHosts = {QStringLiteral("web2")};
        model.updateSnapshot(tick);
        QCOMPARE(changed.count(), 1);
        const QModelIndex from = changed.at(0).at(0).toModelIndex();
        const QModelIndex to = changed.at(0).at(1).toModelIndex();
        QCOMPARE(from.row(), 2);
        QCOMPARE(from.column(), 0);
        QCOMPARE(to.column(), WorkerTableModel::ColumnCount - 1);
        QVERIFY2(cell(model, 2, WorkerTableModel::State)
                     .startsWith(QStringLiteral("unknown (last seen")),
                 qPrintable(cell(model, 2, WorkerTableModel::State)));
        QCOMPARE(cell(model, 2, WorkerTableModel::RequestsPerSecond), QStringLiteral("–"));

        // Every backend gone and the balancer answering itself: the workers' rows go, the
        // balancer's row comes last.
        tick.workers.clear();
        tick.unreachableHosts.clear();
        tick.proxyErrorsTotal = 7;
        tick.proxyErrorsPerSecond = 3;
        model.updateSnapshot(tick);
        QCOMPARE(model.rowCount(), 1);
        QVERIFY(model.hasBalancerRow());
        QCOMPARE(cell(model, 0, WorkerTableModel::Host), QStringLiteral("balancer"));
        QCOMPARE(cell(model, 0, WorkerTableModel::State), QStringLiteral("no backend"));
        QCOMPARE(cell(model, 0, WorkerTableModel::Port), QStringLiteral("8080"));

        // Workers back while the balancer row stays: inserted before it.
        tick.workers = {remoteRow(QStringLiteral("127.0.0.2"), QStringLiteral("web1"), 3001),
                        remoteRow(QStringLiteral("127.0.0.2"), QStringLiteral("web1"), 3002)};
        tick.proxyErrorsPerSecond = 0;
        model.updateSnapshot(tick);
        QCOMPARE(model.rowCount(), 3);
        QCOMPARE(cell(model, 2, WorkerTableModel::Host), QStringLiteral("balancer"));
        QCOMPARE(cell(model, 2, WorkerTableModel::State), QStringLiteral("answering"));
        QCOMPARE(ports(proxy).size(), 3);

        // One worker going down (the proxy's view) and one removed, the balancer row gone.
        tick.workers[0].backendState = QStringLiteral("down");
        tick.workers.removeLast();
        tick.listen.clear();
        model.updateSnapshot(tick);
        QCOMPARE(model.rowCount(), 1);
        QVERIFY(!model.hasBalancerRow());
        QCOMPARE(cell(model, 0, WorkerTableModel::State), QStringLiteral("running (down)"));
    }

    // The host tree from an inventory file, as the console loads it, then live state: running
    // sites, their health, hosts going offline, a production site degraded, a site removed.
    void inventoryTreeFollowsTheInventory() {
        Inventory inventory;
        for (const QString &name : {QStringLiteral("web1"), QStringLiteral("web2")}) {
            Host host;
            host.name = name;
            host.kind = Host::Kind::Ssh;
            host.address = name == QStringLiteral("web1") ? QStringLiteral("127.0.0.2")
                                                          : QStringLiteral("127.0.0.3");
            host.user = QStringLiteral("deploy");
            QVERIFY_RESULT(inventory.addHost(host));
        }
        Site shop;
        shop.name = QStringLiteral("shop");
        shop.command = QStringLiteral(DEMO_WORKER_PATH);
        shop.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        shop.workers = 2;
        QVERIFY_RESULT(inventory.addSite(shop));
        Site prod;
        prod.name = QStringLiteral("prod");
        prod.backends = {Backend{QStringLiteral("127.0.0.2"), 3001},
                         Backend{QStringLiteral("127.0.0.3"), 3001}};
        prod.balancer = SiteBalancer::stockDebian(QStringLiteral("nginx"), prod.name);
        prod.balancer->host = QStringLiteral("web1");
        QVERIFY_RESULT(inventory.addSite(prod));
        const QString path = m_dir.filePath(QStringLiteral("inventory.json"));
        QVERIFY_RESULT(inventory.save(path));
        auto loaded = Inventory::load(path);
        QVERIFY_RESULT(loaded);

        InventoryTreeModel model;
        const auto tester = testerFor(&model);
        model.setInventory(loaded.value());
        QCOMPARE(model.rowCount(), 3); // this machine, web1, web2
        QCOMPARE(cell(model, 0, 0), QStringLiteral("This machine"));
        QCOMPARE(cell(model, 1, 0), QStringLiteral("web1"));
        QCOMPARE(cell(model, 1, 1), QStringLiteral("deploy@127.0.0.2"));
        const QModelIndex local = model.index(0, 0);
        QCOMPARE(model.rowCount(local), 1);
        QCOMPARE(cell(model, 0, 0, local), QStringLiteral("shop"));
        QCOMPARE(model.rowCount(model.index(1, 0)), 1);
        QCOMPARE(siteRow(model, QStringLiteral("prod")).parent().row(), 1);
        QVERIFY2(siteRow(model, QStringLiteral("prod"))
                     .siblingAtColumn(1)
                     .data()
                     .toString()
                     .startsWith(QStringLiteral("nginx on web1")),
                 qPrintable(
                     siteRow(model, QStringLiteral("prod")).siblingAtColumn(1).data().toString()));

        // shop runs, and so does a site started elsewhere that the inventory does not have.
        Site adhoc = shop;
        adhoc.name = QStringLiteral("adhoc");
        model.setRunningSites({adhoc, shop});
        QCOMPARE(model.rowCount(model.index(0, 0)), 2);
        QVERIFY(siteRow(model, QStringLiteral("adhoc")).isValid());

        // Live health changes only the site's row.
        QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
        model.setSiteHealth(QStringLiteral("shop"), 1, 2);
        QCOMPARE(changed.count(), 1);
        QCOMPARE(changed.at(0).at(0).toModelIndex(), siteRow(model, QStringLiteral("shop")));
        QCOMPARE(siteRow(model, QStringLiteral("shop")).siblingAtColumn(1).data().toString(),
                 QStringLiteral("1/2 workers running · round-robin"));
        model.setSiteHealth(QStringLiteral("shop"), 1, 2); // unchanged: no signal
        QCOMPARE(changed.count(), 1);
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        model.setSiteHealth(QStringLiteral("shop"), 2, 2, now - 1000,
                            QStringLiteral("port 3001: killed"), now);
        QVERIFY2(siteRow(model, QStringLiteral("shop"))
                     .siblingAtColumn(1)
                     .data()
                     .toString()
                     .contains(QStringLiteral("crashed at")),
                 qPrintable(
                     siteRow(model, QStringLiteral("shop")).siblingAtColumn(1).data().toString()));

        // A host going offline and back.
        model.setHostOnline(QStringLiteral("web2"), false, QStringLiteral("connection refused"));
        QCOMPARE(cell(model, 2, 1), QStringLiteral("deploy@127.0.0.3 · offline"));
        QCOMPARE(model.index(2, 0).data(Qt::ToolTipRole).toString(),
                 QStringLiteral("Offline: connection refused"));
        // A reason is what the host or the network said: markup in it is shown, not obeyed
        // (QToolTip would render "<b>" or an <img> in a plain string as rich text).
        const QString hostile = QStringLiteral("<b>owned</b> <img src=\"/etc/passwd\"> & more");
        model.setHostOnline(QStringLiteral("web2"), false, hostile);
        const QString tip = model.index(2, 0).data(Qt::ToolTipRole).toString();
        QVERIFY2(tip.contains(QStringLiteral("&lt;b&gt;owned&lt;/b&gt; &lt;img src=")),
                 qPrintable(tip));
        QVERIFY2(!tip.contains(QStringLiteral("<b>")) && !tip.contains(QStringLiteral("<img")),
                 qPrintable(tip));
        QTextDocument shown;
        shown.setHtml(tip);
        QCOMPARE(shown.toPlainText(), QStringLiteral("Offline: ") + hostile);
        model.setHostOnline(QStringLiteral("web2"), true);
        QCOMPARE(cell(model, 2, 1), QStringLiteral("deploy@127.0.0.3 · online"));

        // The production site watched: degraded with web2 unreachable, then no longer watched.
        model.setRemoteSiteHealth(QStringLiteral("prod"), 1, 2, {QStringLiteral("web2")});
        QCOMPARE(siteRow(model, QStringLiteral("prod")).siblingAtColumn(1).data().toString(),
                 QStringLiteral("degraded: web2 unreachable · 1/2 workers known running"));
        model.setRemoteSiteHealth(QStringLiteral("prod"), 2, 2, {});
        QCOMPARE(siteRow(model, QStringLiteral("prod")).siblingAtColumn(1).data().toString(),
                 QStringLiteral("2/2 workers running · nginx on web1"));
        model.clearRemoteSiteHealth(QStringLiteral("prod"));
        QVERIFY(siteRow(model, QStringLiteral("prod"))
                    .siblingAtColumn(1)
                    .data()
                    .toString()
                    .startsWith(QStringLiteral("nginx on web1")));

        // The site started elsewhere stops; prod is removed from the inventory file.
        model.setRunningSites({shop});
        QVERIFY(!siteRow(model, QStringLiteral("adhoc")).isValid());
        QVERIFY_RESULT(inventory.removeSite(QStringLiteral("prod")));
        QVERIFY_RESULT(inventory.save(path));
        loaded = Inventory::load(path);
        QVERIFY_RESULT(loaded);
        model.setInventory(loaded.value());
        QVERIFY(!siteRow(model, QStringLiteral("prod")).isValid());
        QCOMPARE(model.rowCount(model.index(1, 0)), 0);
        // shop's health survives the reload (it still runs).
        QCOMPARE(
            siteRow(model, QStringLiteral("shop")).siblingAtColumn(1).data().toString().left(23),
            QStringLiteral("2/2 workers running · r"));
    }
};

QTEST_MAIN(TestModels)
#include "tst_models.moc"
