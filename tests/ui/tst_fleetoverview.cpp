// The fleet overview: FleetOverviewModel fed with FleetSnapshots (totals, degraded-first
// sorting, every numeric column, bounded trends, the host filter), the view (Enter on a site,
// sparklines painted), and the console's centre: the overview for the tree's root or a host,
// the site view for a site.
#include "FleetOverviewModel.h"
#include "FleetOverviewView.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "fleet/FleetMonitor.h"
#include "inventory/Inventory.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QImage>
#include <QLabel>
#include <QSignalSpy>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <cmath>

using namespace corral;

namespace {

FleetHostRow host(const QString &name, double rps, double load, qint64 memoryUsed, int running = 4,
                  int total = 4) {
    FleetHostRow row;
    row.name = name;
    row.address = QStringLiteral("127.0.1.%1").arg(name.right(1));
    row.reachable = true;
    row.polled = true;
    row.lastSeenMs = 1'000'000;
    row.cores = 2;
    row.load1 = load;
    row.cpuBusyPercent = load * 10;
    row.memoryUsedBytes = memoryUsed;
    row.memoryTotalBytes = 8LL << 30;
    row.workersRunning = running;
    row.workersTotal = total;
    row.requestsPerSecond = rps;
    row.errorsPerSecond = rps / 100;
    return row;
}

FleetSiteRow site(const QString &name, const QString &balancerHost, const QStringList &workerHosts,
                  double rps, double eps, int running = 3, int total = 3) {
    FleetSiteRow row;
    row.name = name;
    row.balancerHost = balancerHost;
    row.balancerFormat = QStringLiteral("nginx");
    row.backends = int(workerHosts.size());
    row.workersRunning = running;
    row.workersTotal = total;
    row.countsKnown = true;
    row.requestsPerSecond = rps;
    row.errorsPerSecond = eps;
    for (int i = 0; i < workerHosts.size(); ++i) {
        const QString key = QStringLiteral("10.0.0.%1:9000").arg(i + 1);
        row.backendHost.insert(key, workerHosts[i]);
        row.backendRequestsPerSecond.insert(key, rps / double(workerHosts.size()));
    }
    return row;
}

// Four hosts, four sites; values deliberately not in inventory order, host rates unlike the
// sites' (so a total that counted hosts too would be wrong).
FleetSnapshot fleet() {
    FleetSnapshot snapshot;
    snapshot.timestampMs = 1'010'000;
    snapshot.hosts = {host(QStringLiteral("web1"), 40, 0.5, 3LL << 30),
                      host(QStringLiteral("web2"), 7, 1.75, 1LL << 30),
                      host(QStringLiteral("web3"), 900, 0.25, 5LL << 30),
                      host(QStringLiteral("web4"), 0.5, 3.0, 2LL << 30)};
    snapshot.sites = {
        site(QStringLiteral("shop"), QStringLiteral("web1"),
             {QStringLiteral("web1"), QStringLiteral("web2")}, 120.5, 0.25),
        site(QStringLiteral("blog"), QStringLiteral("web2"), {QStringLiteral("web2")}, 3.5, 0),
        site(QStringLiteral("api"), QStringLiteral("web3"),
             {QStringLiteral("web3"), QStringLiteral("web4")}, 800, 2.5, 5, 6),
        site(QStringLiteral("chat"), QStringLiteral("web4"), {QStringLiteral("web4")}, 42, 0.75)};
    return snapshot;
}

QStringList proxyNames(const QAbstractItemModel *proxy) {
    QStringList names;
    for (int row = 0; row < proxy->rowCount(); ++row)
        names << proxy->index(row, 0).data(FleetOverviewModel::NameRole).toString();
    return names;
}

int degradedCount(const QAbstractItemModel *model) {
    int count = 0;
    for (int row = 0; row < model->rowCount(); ++row)
        if (model->index(row, 0).data(FleetOverviewModel::DegradedRole).toBool()) ++count;
    return count;
}

} // namespace

class TestFleetOverview : public QObject {
    Q_OBJECT
    QTemporaryDir m_runtime; // the window's agent socket: away from the user's

private Q_SLOTS:
    void initTestCase() { qputenv("XDG_RUNTIME_DIR", QFile::encodeName(m_runtime.path())); }

    void rowsAndTotalsAreTheSitesSums() {
        FleetOverviewModel model;
        QAbstractItemModelTester tester(&model,
                                        QAbstractItemModelTester::FailureReportingMode::QtTest);
        const FleetSnapshot snapshot = fleet();
        model.setSnapshot(snapshot);
        QCOMPARE(model.rowCount(), 8);
        QCOMPARE(model.index(0, FleetOverviewModel::Name).data().toString(),
                 QStringLiteral("web1"));
        QCOMPARE(model.index(4, FleetOverviewModel::Name).data().toString(),
                 QStringLiteral("shop"));
        QCOMPARE(model.index(4, FleetOverviewModel::Kind).data(FleetOverviewModel::KindRole),
                 QVariant(QStringLiteral("site")));

        // The totals line equals the sum of the site rows as the table shows them.
        double requests = 0, errors = 0;
        int running = 0, total = 0;
        for (int row = 0; row < model.rowCount(); ++row) {
            if (model.index(row, 0).data(FleetOverviewModel::KindRole) != QStringLiteral("site"))
                continue;
            requests += model.index(row, FleetOverviewModel::RequestsPerSecond)
                            .data(FleetOverviewModel::SortRole)
                            .toDouble();
            errors += model.index(row, FleetOverviewModel::ErrorsPerSecond)
                          .data(FleetOverviewModel::SortRole)
                          .toDouble();
            const QStringList workers = model.index(row, FleetOverviewModel::Workers)
                                            .data()
                                            .toString()
                                            .split(QLatin1Char('/'));
            QCOMPARE(workers.size(), 2);
            running += workers[0].toInt();
            total += workers[1].toInt();
        }
        const FleetOverviewModel::Totals totals = model.totals();
        QCOMPARE(totals.requestsPerSecond, requests);
        QCOMPARE(totals.requestsPerSecond, 966.0);
        QCOMPARE(totals.requestsPerSecond, snapshot.requestsPerSecond());
        QCOMPARE(totals.errorsPerSecond, errors);
        QCOMPARE(totals.workersRunning, running);
        QCOMPARE(totals.workersTotal, total);
        QCOMPARE(totals.workersRunning, 14);
        QCOMPARE(totals.workersTotal, 15);
        QCOMPARE(totals.hostsTotal, 4);
        QCOMPARE(totals.hostsReachable, 4);

        // The view's totals line says the same.
        FleetOverviewView view;
        view.setSnapshot(snapshot);
        const QString line = view.totalsLabel()->text();
        QVERIFY2(line.contains(QStringLiteral("hosts 4/4")), qPrintable(line));
        QVERIFY2(line.contains(QStringLiteral("workers 14/15")), qPrintable(line));
        QVERIFY2(line.contains(QStringLiteral("966.0 req/s")), qPrintable(line));
        QVERIFY2(line.contains(QStringLiteral("3.5 errors/s")), qPrintable(line));
    }

    void unreachableHostSaysWhyAndWhen() {
        FleetSnapshot snapshot = fleet();
        FleetHostRow &dead = snapshot.hosts[1];
        dead.reachable = false;
        dead.error = QStringLiteral("no answer within 3 s");
        dead.retryInMs = 3500;
        dead.lastSeenMs = snapshot.timestampMs - 12'000;
        snapshot.hosts[2].reachable = false;
        snapshot.hosts[2].polled = false; // not answered yet: not degraded, not an error
        FleetOverviewModel model;
        model.setSnapshot(snapshot);
        QCOMPARE(model.index(1, FleetOverviewModel::State).data().toString(),
                 QStringLiteral("unreachable: no answer within 3 s, retry in 4 s (last seen "
                                "12 s ago)"));
        QVERIFY(model.index(1, 0).data(FleetOverviewModel::DegradedRole).toBool());
        QCOMPARE(model.index(1, FleetOverviewModel::RequestsPerSecond).data().toString(),
                 QStringLiteral("–")); // no stale rate passing for a live one
        QCOMPARE(model.index(1, FleetOverviewModel::Load).data().toString(), QStringLiteral("–"));
        QCOMPARE(model.index(1, FleetOverviewModel::Memory).data().toString(), QStringLiteral("–"));
        QVERIFY(model.index(1, FleetOverviewModel::Load)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .startsWith(QStringLiteral("Last reading (12 s ago): load average 1.75")));
        QVERIFY(model.index(1, FleetOverviewModel::State)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .contains(QStringLiteral("last answer")));
        QVERIFY(!model.index(2, 0).data(FleetOverviewModel::DegradedRole).toBool());
        QCOMPARE(model.totals().hostsReachable, 2);
        // The error is what the host's shell said: markup in it is escaped in the tooltip.
        snapshot.hosts[1].error = QStringLiteral("bash: <b>bold</b>: command not found");
        model.setSnapshot(snapshot);
        const QString errorTip =
            model.index(1, FleetOverviewModel::State).data(Qt::ToolTipRole).toString();
        QVERIFY2(errorTip.contains(QStringLiteral("&lt;b&gt;bold&lt;/b&gt;")) &&
                     !errorTip.contains(QStringLiteral("<b>")),
                 qPrintable(errorTip));
        // Tooltips carry the exact values.
        QVERIFY(model.index(0, FleetOverviewModel::Memory)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .contains(QLocale().toString(3LL << 30)));
        QVERIFY(model.index(4, FleetOverviewModel::RequestsPerSecond)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .contains(QStringLiteral("120.500")));
    }

    void degradedRowsSortFirst() {
        FleetSnapshot snapshot = fleet();
        snapshot.hosts[2].reachable = false; // web3: unreachable
        snapshot.hosts[2].error = QStringLiteral("Connection refused");
        snapshot.sites[1].unreachableHosts = {QStringLiteral("web9")}; // blog
        // api is degraded already (5 of 6 workers); chat's balancer could not be read.
        snapshot.sites[3].error = QStringLiteral("access log missing");
        FleetOverviewView view;
        view.setSnapshot(snapshot);
        const QAbstractItemModel *proxy = view.proxy();
        QCOMPARE(degradedCount(proxy), 4);
        // By default (Kind): degraded first, each part in inventory order.
        QCOMPARE(proxyNames(proxy),
                 QStringList({"web3", "blog", "api", "chat", "web1", "web2", "web4", "shop"}));
        for (int column = 0; column < FleetOverviewModel::ColumnCount; ++column) {
            for (Qt::SortOrder order : {Qt::AscendingOrder, Qt::DescendingOrder}) {
                view.table()->sortByColumn(column, order);
                for (int row = 0; row < proxy->rowCount(); ++row)
                    QVERIFY2(proxy->index(row, 0).data(FleetOverviewModel::DegradedRole).toBool() ==
                                 (row < 4),
                             qPrintable(QStringLiteral("column %1, order %2, row %3: %4")
                                            .arg(column)
                                            .arg(int(order))
                                            .arg(row)
                                            .arg(proxyNames(proxy).join(QLatin1Char(' ')))));
            }
        }
        // A host coming back leaves the top at the next tick (the proxy sorts dynamically).
        view.table()->sortByColumn(FleetOverviewModel::Kind, Qt::AscendingOrder);
        snapshot.hosts[2].reachable = true;
        view.setSnapshot(snapshot);
        QCOMPARE(proxyNames(proxy).first(), QStringLiteral("blog"));
    }

    void sortsByEveryNumericColumn() {
        FleetOverviewView view;
        FleetSnapshot snapshot = fleet();
        snapshot.sites[2].workersRunning = snapshot.sites[2].workersTotal; // none degraded
        // Two ticks so that the trends differ in their means.
        view.setSnapshot(snapshot);
        view.setSnapshot(snapshot);
        const QAbstractItemModel *proxy = view.proxy();
        QCOMPARE(degradedCount(proxy), 0);
        for (int column :
             {int(FleetOverviewModel::Load), int(FleetOverviewModel::Memory),
              int(FleetOverviewModel::Workers), int(FleetOverviewModel::RequestsPerSecond),
              int(FleetOverviewModel::ErrorsPerSecond), int(FleetOverviewModel::Trend),
              int(FleetOverviewModel::Name)}) {
            QStringList ascending;
            for (Qt::SortOrder order : {Qt::AscendingOrder, Qt::DescendingOrder}) {
                view.table()->sortByColumn(column, order);
                QCOMPARE(proxy->rowCount(), 8);
                for (int row = 1; row < proxy->rowCount(); ++row) {
                    const QVariant previous =
                        proxy->index(row - 1, column).data(FleetOverviewModel::SortRole);
                    const QVariant current =
                        proxy->index(row, column).data(FleetOverviewModel::SortRole);
                    const QPartialOrdering ordering = QVariant::compare(previous, current);
                    QVERIFY2(ordering == QPartialOrdering::Equivalent ||
                                 ordering == (order == Qt::AscendingOrder
                                                  ? QPartialOrdering::Less
                                                  : QPartialOrdering::Greater),
                             qPrintable(QStringLiteral("column %1 order %2 row %3: %4")
                                            .arg(column)
                                            .arg(int(order))
                                            .arg(row)
                                            .arg(proxyNames(proxy).join(QLatin1Char(' ')))));
                }
                if (order == Qt::AscendingOrder)
                    ascending = proxyNames(proxy);
                else
                    QVERIFY(proxyNames(proxy) != ascending); // the column did order the rows
            }
        }
        view.table()->sortByColumn(FleetOverviewModel::RequestsPerSecond, Qt::DescendingOrder);
        QCOMPARE(proxyNames(proxy).mid(0, 3), QStringList({"web3", "api", "shop"}));
    }

    void trendHistoryIsBoundedAndFollowsRows() {
        FleetOverviewModel model;
        QSignalSpy resets(&model, &QAbstractItemModel::modelReset);
        FleetSnapshot snapshot = fleet();
        for (int tick = 0; tick < 3 * FleetOverviewModel::TrendLength; ++tick) {
            snapshot.timestampMs += 1000;
            snapshot.sites[0].requestsPerSecond = tick;
            snapshot.sites[1].countsKnown = tick % 2 == 0;
            model.setSnapshot(snapshot);
        }
        QCOMPARE(resets.count(), 1); // the first snapshot only: ticks report changed cells
        QList<double> shop = model.siteTrend(QStringLiteral("shop"));
        QCOMPARE(shop.size(), FleetOverviewModel::TrendLength);
        QCOMPARE(shop.last(), double(3 * FleetOverviewModel::TrendLength - 1));
        QCOMPARE(shop.first(), double(2 * FleetOverviewModel::TrendLength));
        QCOMPARE(model.index(4, FleetOverviewModel::Trend)
                     .data(FleetOverviewModel::TrendRole)
                     .value<QList<double>>(),
                 shop);
        const QList<double> blog = model.siteTrend(QStringLiteral("blog"));
        QCOMPARE(blog.size(), FleetOverviewModel::TrendLength);
        QVERIFY(std::isnan(blog.last())); // counts not known then: a gap, not a zero
        QVERIFY(!std::isnan(blog.at(blog.size() - 2)));
        QCOMPARE(model.hostTrend(QStringLiteral("web3")).size(), FleetOverviewModel::TrendLength);
        QCOMPARE(model.trendCount(), 8);

        // A site gone takes its history along; one coming back starts afresh.
        snapshot.sites.removeAt(0);
        model.setSnapshot(snapshot);
        QCOMPARE(model.rowCount(), 7);
        QCOMPARE(model.trendCount(), 7);
        QVERIFY(model.siteTrend(QStringLiteral("shop")).isEmpty());
        snapshot.sites.append(fleet().sites.first());
        model.setSnapshot(snapshot);
        QCOMPARE(model.siteTrend(QStringLiteral("shop")).size(), 1);
    }

    void hostFilterKeepsTheHostAndItsSites() {
        FleetOverviewView view;
        view.setSnapshot(fleet());
        view.setHostFilter(QStringLiteral("web2"));
        // web2 itself, shop (a worker on web2), blog (its balancer and worker).
        QCOMPARE(proxyNames(view.proxy()), QStringList({"web2", "shop", "blog"}));
        view.setHostFilter(QStringLiteral("web4"));
        // api is degraded (5 of 6 workers): first.
        QCOMPARE(proxyNames(view.proxy()), QStringList({"api", "web4", "chat"}));
        // Filtered rows keep updating.
        FleetSnapshot snapshot = fleet();
        snapshot.sites[3].requestsPerSecond = 77;
        view.setSnapshot(snapshot);
        QCOMPARE(view.proxy()
                     ->index(2, FleetOverviewModel::RequestsPerSecond)
                     .data(FleetOverviewModel::SortRole)
                     .toDouble(),
                 77.0);
        view.setHostFilter(QString());
        QCOMPARE(view.proxy()->rowCount(), 8);
    }

    void enterOnASiteAsksForItAndSparklinesPaint() {
        FleetOverviewView view;
        view.resize(1000, 400);
        FleetSnapshot snapshot = fleet();
        for (int tick = 0; tick < 20; ++tick) {
            snapshot.sites[0].requestsPerSecond = tick % 5 * 10.0;
            view.setSnapshot(snapshot);
        }
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QSignalSpy sites(&view, &FleetOverviewView::siteActivated);
        QSignalSpy hosts(&view, &FleetOverviewView::hostActivated);
        QTableView *table = view.table();
        const int shopRow = int(proxyNames(view.proxy()).indexOf(QStringLiteral("shop")));
        QVERIFY(shopRow >= 0);
        table->setCurrentIndex(view.proxy()->index(shopRow, 0));
        QTest::keyClick(table, Qt::Key_Return);
        QCOMPARE(sites.count(), 1);
        QCOMPARE(sites.first().first().toString(), QStringLiteral("shop"));
        table->setCurrentIndex(
            view.proxy()->index(int(proxyNames(view.proxy()).indexOf(QStringLiteral("web1"))), 0));
        QTest::keyClick(table, Qt::Key_Return);
        QCOMPARE(hosts.count(), 1);
        QCOMPARE(hosts.first().first().toString(), QStringLiteral("web1"));

        // The trend cell of shop holds a drawn line: pixels of the sparkline's colour, which
        // the text cells (and a cell with no history) do not have.
        table->clearSelection();
        table->setCurrentIndex({});
        const QImage image = table->viewport()->grab().toImage();
        auto inkIn = [&](int row, int column) {
            const QRect cell = table->visualRect(view.proxy()->index(row, column));
            const QColor background = image.pixelColor(cell.topLeft() + QPoint(1, 1));
            int ink = 0;
            for (int y = cell.top(); y <= cell.bottom(); ++y)
                for (int x = cell.left(); x <= cell.right(); ++x)
                    if (image.pixelColor(x, y) != background) ++ink;
            return ink;
        };
        QVERIFY2(inkIn(shopRow, FleetOverviewModel::Trend) > 20,
                 qPrintable(QString::number(inkIn(shopRow, FleetOverviewModel::Trend))));
    }

    // At fleet size (50 hosts, 20 sites of 25 backends) the shown overview keeps every row and
    // its trend through a minute of ticks; what a tick costs (model, re-sort, repaint) is
    // printed, a figure for the README, not a pass mark (bench_fleet measures the console).
    void fleetSizedTicksKeepEveryRow() {
        FleetSnapshot snapshot;
        for (int h = 0; h < 50; ++h)
            snapshot.hosts << host(QStringLiteral("web%1").arg(h + 1), h, h * 0.1,
                                   qint64(h + 1) << 26);
        for (int s = 0; s < 20; ++s) {
            QStringList workerHosts;
            for (int b = 0; b < 25; ++b)
                workerHosts << QStringLiteral("web%1").arg((s * 25 + b) % 50 + 1);
            snapshot.sites << site(QStringLiteral("site%1").arg(s), workerHosts.first(),
                                   workerHosts, s * 10.0, s * 0.1, 25, 25);
        }
        FleetOverviewView view;
        view.resize(1200, 800);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.table()->sortByColumn(FleetOverviewModel::RequestsPerSecond, Qt::DescendingOrder);
        constexpr int Ticks = 60;
        qint64 totalNs = 0, worstNs = 0;
        for (int tick = 0; tick < Ticks; ++tick) {
            snapshot.timestampMs += 1000;
            for (int s = 0; s < snapshot.sites.size(); ++s)
                snapshot.sites[s].requestsPerSecond = (tick * 7 + s * 13) % 100;
            QElapsedTimer clock;
            clock.start();
            view.setSnapshot(snapshot);
            view.table()->viewport()->repaint();
            const qint64 ns = clock.nsecsElapsed();
            totalNs += ns;
            worstNs = std::max(worstNs, ns);
        }
        QCOMPARE(view.proxy()->rowCount(), 70);
        QCOMPARE(view.model()->siteTrend(QStringLiteral("site3")).size(), Ticks);
        const double meanMs = double(totalNs) / Ticks / 1e6;
        qInfo("overview tick at 50 hosts and 20 sites (model, sort, repaint): mean %.2f ms, "
              "worst %.2f ms",
              meanMs, double(worstNs) / 1e6);
    }

    // The console: nothing or a host selected shows the overview (a host: its rows only), a
    // site the site view; the overview follows the FleetMonitor.
    void consoleShowsTheOverviewForTheRootAndHosts() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        Inventory inventory;
        for (int i = 1; i <= 2; ++i) {
            Host web;
            web.name = QStringLiteral("web%1").arg(i);
            web.kind = Host::Kind::Ssh;
            web.address = QStringLiteral("127.0.3.%1").arg(i);
            web.port = 1; // refused at once: unreachable without waiting for a timeout
            QVERIFY(inventory.addHost(web).ok());
        }
        Site blog;
        blog.name = QStringLiteral("blog");
        QVERIFY(inventory.addSite(blog).ok());
        Site chat;
        chat.name = QStringLiteral("chat");
        chat.hosts = {QStringLiteral("web2")};
        chat.backends = {Backend{QStringLiteral("127.0.3.2"), 9001}};
        chat.balancer = SiteBalancer::stockDebian(QStringLiteral("nginx"), chat.name);
        chat.balancer->host = QStringLiteral("web1");
        const auto added = inventory.addSite(chat);
        QVERIFY2(added.ok(), qPrintable(added.ok() ? QString() : added.error()));
        QVERIFY(inventory.save(path).ok());

        MainWindow::Options options;
        options.poll.intervalMs = 200;
        options.poll.timeoutMs = 2000;
        MainWindow window(path, options);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        FleetOverviewView *overview = window.fleetOverview();
        QVERIFY(overview);
        QVERIFY(window.fleetMonitor());
        QVERIFY(window.fleetOverviewShown());
        QVERIFY(overview->isVisible());
        QVERIFY(!window.workerTable()->isVisible());
        QVERIFY(overview->hostFilter().isEmpty());

        // The monitor's rows: the local machine, both hosts (unreachable), the chat site.
        QTRY_COMPARE_WITH_TIMEOUT(overview->model()->rowCount(), 4, 5000);
        QTRY_VERIFY_WITH_TIMEOUT(overview->model()
                                     ->index(overview->model()->hostRow(QStringLiteral("web1")),
                                             FleetOverviewModel::State)
                                     .data()
                                     .toString()
                                     .startsWith(QStringLiteral("unreachable")),
                                 5000);
        QVERIFY(window.lastFleetTickMs() > 0);
        QVERIFY(window.lastFleetTickMs() < 1000);

        QTreeView *tree = window.hostTree();
        QAbstractItemModel *treeModel = tree->model();
        auto treeRow = [&](const QString &name) -> QModelIndex {
            for (int row = 0; row < treeModel->rowCount(); ++row) {
                const QModelIndex hostIndex = treeModel->index(row, 0);
                if (hostIndex.data(InventoryTreeModel::NameRole).toString() == name)
                    return hostIndex;
                for (int child = 0; child < treeModel->rowCount(hostIndex); ++child) {
                    const QModelIndex siteIndex = treeModel->index(child, 0, hostIndex);
                    if (siteIndex.data(InventoryTreeModel::NameRole).toString() == name)
                        return siteIndex;
                }
            }
            return {};
        };
        // The tree's host row goes offline with the fleet poll's reason.
        QTRY_VERIFY_WITH_TIMEOUT(
            treeRow(QStringLiteral("web1")).data(InventoryTreeModel::StateRole).toInt() ==
                int(InventoryTreeModel::RowState::Unreachable),
            5000);

        // A site: the site view.
        tree->setCurrentIndex(treeRow(QStringLiteral("blog")));
        QVERIFY(!window.fleetOverviewShown());
        QVERIFY(window.workerTable()->isVisible());
        QCOMPARE(window.currentSiteName(), QStringLiteral("blog"));

        // A host: the overview, that host's part of it.
        tree->setCurrentIndex(treeRow(QStringLiteral("web2")));
        QVERIFY(window.fleetOverviewShown());
        QVERIFY(overview->isVisible());
        QCOMPARE(overview->hostFilter(), QStringLiteral("web2"));
        QCOMPARE(proxyNames(overview->proxy()), QStringList({"web2", "chat"}));
        QVERIFY(window.currentSiteName().isEmpty());

        // Enter on the site row there selects it in the tree and shows it.
        QTableView *table = overview->table();
        table->setCurrentIndex(overview->proxy()->index(
            int(proxyNames(overview->proxy()).indexOf(QStringLiteral("chat"))), 0));
        QTest::keyClick(table, Qt::Key_Return);
        QCOMPARE(window.currentSiteName(), QStringLiteral("chat"));
        QVERIFY(!window.fleetOverviewShown());
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("chat"));

        // Nothing selected (the root): the whole fleet.
        tree->setCurrentIndex({});
        QVERIFY(window.fleetOverviewShown());
        QVERIFY(overview->hostFilter().isEmpty());
        QCOMPARE(overview->proxy()->rowCount(), 4);
        QVERIFY(window.currentSiteName().isEmpty());

        // View → Fleet overview gets there from a host or a site.
        tree->setCurrentIndex(treeRow(QStringLiteral("web1")));
        QCOMPARE(overview->hostFilter(), QStringLiteral("web1"));
        window.action(QStringLiteral("fleetOverview"))->trigger();
        QVERIFY(overview->hostFilter().isEmpty());
        QVERIFY(!tree->currentIndex().isValid());
        tree->setCurrentIndex(treeRow(QStringLiteral("blog")));
        QVERIFY(!window.fleetOverviewShown());
        window.action(QStringLiteral("fleetOverview"))->trigger();
        QVERIFY(window.fleetOverviewShown());
        QVERIFY(window.currentSiteName().isEmpty());
    }
};

QTEST_MAIN(TestFleetOverview)
#include "tst_fleetoverview.moc"
