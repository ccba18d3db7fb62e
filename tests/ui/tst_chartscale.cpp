// Charts at fleet size (issue 20): the request distribution grouped per host or into the top
// backends and "others" (with drill-down into a host), the CPU view as a heat map beyond 16
// workers, and what hovering shows.
#include "charts/CpuChartView.h"
#include "charts/CpuHeatMap.h"
#include "charts/DistributionChartView.h"
#include "charts/DistributionGroups.h"

#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QLineSeries>
#include <QTest>
#include <QToolButton>
#include <QToolTip>

using namespace corral;

namespace {

constexpr qint64 startMs = 1'700'000'000'000;

WorkerRow makeRow(const QString &hostName, quint16 port, double rps, quint64 total,
                  double cpu = 0) {
    WorkerRow row;
    row.site = QStringLiteral("fleet");
    row.host = hostName.isEmpty() ? QStringLiteral("local")
                                  : QStringLiteral("10.0.1.%1").arg(hostName.mid(3));
    row.hostName = hostName;
    row.port = port;
    row.state = WorkerState::Running;
    row.inProxy = true;
    row.requestsPerSecond = rps;
    row.requestsTotal = total;
    row.cpuValid = true;
    row.cpuPercent = cpu;
    return row;
}

/// `hosts` hosts web1..webN with `perHost` backends each (ports 3000...); backend k of the
/// fleet has k + 1 req/s and a total of 1000 * (k + 1) + host so no two totals tie.
QList<WorkerRow> fleetRows(int hosts, int perHost) {
    QList<WorkerRow> rows;
    int k = 0;
    for (int h = 1; h <= hosts; ++h) {
        for (int p = 0; p < perHost; ++p, ++k)
            rows.append(makeRow(QStringLiteral("web%1").arg(h), quint16(3000 + p), k + 1.0,
                                quint64(1000 * (k + 1) + h)));
    }
    return rows;
}

struct Sums {
    double rate = 0;
    quint64 total = 0;
    int backends = 0;
};

Sums sumOf(const QList<WorkerRow> &rows) {
    Sums sums;
    for (const WorkerRow &row : rows) {
        sums.rate += row.requestsPerSecond;
        sums.total += row.requestsTotal;
        ++sums.backends;
    }
    return sums;
}

Sums sumOf(const QList<DistributionBar> &bars) {
    Sums sums;
    for (const DistributionBar &bar : bars) {
        sums.rate += bar.requestsPerSecond;
        sums.total += bar.requestsTotal;
        sums.backends += bar.backends;
    }
    return sums;
}

#define COMPARE_SUMS(bars, rows)                                                                   \
    do {                                                                                           \
        const Sums b = sumOf(bars);                                                                \
        const Sums r = sumOf(rows);                                                                \
        QCOMPARE(b.total, r.total);                                                                \
        QCOMPARE(b.backends, r.backends);                                                          \
        QVERIFY2(qAbs(b.rate - r.rate) < 1e-9 * std::max(1.0, r.rate),                             \
                 qPrintable(QStringLiteral("%1 vs %2").arg(b.rate).arg(r.rate)));                  \
    } while (false)

ClusterSnapshot snapshotOf(const QList<WorkerRow> &rows, int tick = 0) {
    ClusterSnapshot snapshot;
    snapshot.timestampMs = startMs + tick * 1000LL;
    snapshot.site = QStringLiteral("fleet");
    snapshot.workers = rows;
    return snapshot;
}

/// Where bar `index` of `view` is, in its viewport's coordinates (half its height).
QPoint barPosition(DistributionChartView &view, int index) {
    QAbstractSeries *series = view.chart()->series().constFirst();
    const QPointF scene =
        view.chart()->mapToPosition(QPointF(index, view.barValue(index) / 2), series);
    return view.mapFromScene(view.chart()->mapToScene(scene));
}

/// Workers "web1:3000".."webN:3000" at CPU 2 * i (i from 0), all reachable.
ClusterSnapshot cpuSnapshot(int tick, int workers) {
    ClusterSnapshot snapshot;
    snapshot.timestampMs = startMs + tick * 1000LL;
    snapshot.site = QStringLiteral("fleet");
    for (int i = 0; i < workers; ++i)
        snapshot.workers.append(
            makeRow(QStringLiteral("web%1").arg(i + 1), 3000, 0, 0, 2.0 * i + (tick % 2)));
    return snapshot;
}

} // namespace

class TestChartScale : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void barsPerBackendUpTo16() {
        QList<WorkerRow> rows = fleetRows(2, 7);
        rows.append(makeRow({}, 3100, 2.5, 7)); // local
        rows.append(makeRow(QStringLiteral("web3"), 3200, 1, 1));
        rows.last().hostName.clear(); // an address no inventory host has
        const QList<DistributionBar> bars = distributionBars(rows);
        QCOMPARE(bars.size(), 16);
        for (qsizetype i = 0; i < bars.size(); ++i) {
            QCOMPARE(bars[i].backends, 1);
            QVERIFY(!bars[i].others);
            QVERIFY(bars[i].drillHost.isEmpty());
            QCOMPARE(bars[i].requestsTotal, rows[i].requestsTotal);
            QCOMPARE(bars[i].port, rows[i].port);
        }
        QCOMPARE(bars[0].label, QStringLiteral("web1:3000"));
        QCOMPARE(bars[8].label, QStringLiteral("web2:3001"));
        QCOMPARE(bars[14].label, QStringLiteral("3100"));
        QCOMPARE(bars[15].label, QStringLiteral("10.0.1.3:3200"));
        COMPARE_SUMS(bars, rows);
        QVERIFY(distributionBars({}).isEmpty());
    }

    void barsPerHost() {
        const QList<WorkerRow> rows = fleetRows(12, 20);
        const QList<DistributionBar> bars = distributionBars(rows);
        QCOMPARE(bars.size(), 12);
        // By name, numbers as numbers.
        for (int h = 0; h < 12; ++h) {
            const QString host = QStringLiteral("web%1").arg(h + 1);
            QCOMPARE(bars[h].label, host);
            QCOMPARE(bars[h].drillHost, host);
            QCOMPARE(bars[h].backends, 20);
            QCOMPARE(bars[h].port, quint16(0));
            QList<WorkerRow> hostRows;
            for (const WorkerRow &row : rows)
                if (row.hostName == host) hostRows.append(row);
            COMPARE_SUMS(QList<DistributionBar>{bars[h]}, hostRows);
        }
        COMPARE_SUMS(bars, rows);

        // Without inventory names the address is the host.
        QList<WorkerRow> unnamed = rows;
        for (WorkerRow &row : unnamed)
            row.hostName.clear();
        const QList<DistributionBar> byAddress = distributionBars(unnamed);
        QCOMPARE(byAddress.size(), 12);
        QCOMPARE(byAddress[0].label, QStringLiteral("10.0.1.1"));
        QCOMPARE(byAddress[1].label, QStringLiteral("10.0.1.2"));
        QCOMPARE(byAddress[11].label, QStringLiteral("10.0.1.12"));
        COMPARE_SUMS(byAddress, unnamed);
    }

    void barsTopAndOthers() {
        // 50 hosts: more than 16, so the busiest 15 backends and the 485 others.
        QList<WorkerRow> rows = fleetRows(50, 10);
        // Totals near 2^60: sums must stay exact integers.
        for (WorkerRow &row : rows)
            row.requestsTotal += quint64(1) << 50;
        const QList<DistributionBar> bars = distributionBars(rows);
        QCOMPARE(bars.size(), 16);
        for (int i = 0; i < 15; ++i) {
            const WorkerRow &expected = rows[rows.size() - 1 - i]; // the highest totals last
            QCOMPARE(bars[i].label,
                     QStringLiteral("%1:%2").arg(expected.hostName).arg(expected.port));
            QCOMPARE(bars[i].requestsTotal, expected.requestsTotal);
            QVERIFY(!bars[i].others);
        }
        QVERIFY(bars[15].others);
        QCOMPARE(bars[15].backends, 485);
        QCOMPARE(bars[15].label, QStringLiteral("others"));
        COMPARE_SUMS(bars, rows);

        // Ties on the total: requests/s decides, then the label.
        QList<WorkerRow> ties;
        for (int i = 0; i < 20; ++i)
            ties.append(makeRow(QStringLiteral("web%1").arg(i + 1), 3000, i < 10 ? 5 : 7, 100));
        const QList<DistributionBar> tied = distributionBars(ties, 4);
        QCOMPARE(tied.size(), 4);
        QCOMPARE(tied[0].label, QStringLiteral("web11:3000")); // 7 req/s, then by label
        QCOMPARE(tied[1].label, QStringLiteral("web12:3000"));
        QCOMPARE(tied[2].label, QStringLiteral("web13:3000"));
        QCOMPARE(tied[3].backends, 17);
        COMPARE_SUMS(tied, ties);
    }

    void barsDrillDown() {
        const QList<WorkerRow> rows = fleetRows(12, 20);
        QList<WorkerRow> web3;
        for (const WorkerRow &row : rows)
            if (row.hostName == QLatin1String("web3")) web3.append(row);
        // 20 backends on web3: the top 15 and 5 others.
        const QList<DistributionBar> bars = distributionBars(rows, 16, QStringLiteral("web3"));
        QCOMPARE(bars.size(), 16);
        QCOMPARE(bars[0].label, QStringLiteral("web3:3019"));
        QVERIFY(bars[15].others);
        QCOMPARE(bars[15].backends, 5);
        COMPARE_SUMS(bars, web3);
        // With room for all: one bar each, in the rows' order.
        const QList<DistributionBar> all = distributionBars(rows, 20, QStringLiteral("web3"));
        QCOMPARE(all.size(), 20);
        for (int i = 0; i < 20; ++i)
            QCOMPARE(all[i].label, QStringLiteral("web3:%1").arg(3000 + i));
        COMPARE_SUMS(all, web3);
        QVERIFY(distributionBars(rows, 16, QStringLiteral("nowhere")).isEmpty());
    }

    // Beyond 16 backends the view shows hosts; a click on a host's bar shows its backends,
    // the back button every host again.
    // Many host bars whose names share a prefix are labelled by what tells them apart
    // ("fleet-h03" -> "h03", which fits under a narrow bar); the full name stays the bar's.
    void manyBarsDropTheCommonPrefix() {
        DistributionChartView view;
        view.resize(600, 400);
        QList<WorkerRow> rows;
        for (int h = 1; h <= 8; ++h)
            for (int b = 0; b < 3; ++b)
                rows << makeRow(QStringLiteral("fleet-h%1").arg(h, 2, 10, QLatin1Char('0')),
                                quint16(3000 + b), 1, 10);
        view.updateSnapshot(snapshotOf(rows));
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::Hosts);
        QCOMPARE(view.barCount(), 8);
        QCOMPARE(view.backendName(2), QStringLiteral("fleet-h03"));
        QCOMPARE(view.categoryLabel(2), QStringLiteral("h03"));
        // Six bars or fewer have room for the whole name.
        rows.erase(rows.begin() + 6 * 3, rows.end());
        QList<WorkerRow> six = rows;
        for (int h = 1; h <= 6; ++h)
            six << makeRow(QStringLiteral("fleet-h%1").arg(h, 2, 10, QLatin1Char('0')), 3003, 1,
                           10);
        view.updateSnapshot(snapshotOf(six));
        QCOMPARE(view.barCount(), 6);
        QVERIFY2(view.categoryLabel(2).startsWith(QStringLiteral("fleet-h03\n")),
                 qPrintable(view.categoryLabel(2)));
    }

    void viewDrillsIntoAHost() {
        DistributionChartView view;
        view.resize(800, 400);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        const QList<WorkerRow> rows = fleetRows(12, 10);
        view.updateSnapshot(snapshotOf(rows));
        QCoreApplication::processEvents();
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::Hosts);
        QCOMPARE(view.barCount(), 12);
        QCOMPARE(view.chart()->title(),
                 QStringLiteral("Request distribution per host: 12 hosts, 120 backends"));
        QCOMPARE(view.backendName(2), QStringLiteral("web3"));
        QCOMPARE(view.categoryLabel(2), QStringLiteral("web3")); // narrow bars: no share line
        QVERIFY(view.backButton()->isHidden());
        double shares = 0;
        for (int i = 0; i < view.barCount(); ++i)
            shares += view.share(i);
        QVERIFY(qAbs(shares - 100) < 1e-9);

        // A real click on web3's bar.
        QSignalSpy drilled(&view, &DistributionChartView::drillHostChanged);
        QTest::mouseClick(view.viewport(), Qt::LeftButton, {}, barPosition(view, 2));
        QTRY_COMPARE(view.drillHost(), QStringLiteral("web3"));
        QCOMPARE(drilled.size(), 1);
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::Backends);
        QCOMPARE(view.barCount(), 10);
        QCOMPARE(view.chart()->title(),
                 QStringLiteral("Request distribution on web3: 10 backends"));
        QCOMPARE(view.backendName(0), QStringLiteral("web3:3000"));
        // One host's backends are told apart by port.
        QCOMPARE(view.categoryLabel(0), QStringLiteral("3000"));
        QCOMPARE(view.barValue(9), rows[29].requestsPerSecond);
        QVERIFY(view.backButton()->isVisible());
        QCOMPARE(view.backButton()->text(), QStringLiteral("‹ all hosts"));
        // The title moves below the button instead of under it.
        QVERIFY(view.chart()->margins().top() >= view.backButton()->height());

        // The next tick stays on web3.
        view.updateSnapshot(snapshotOf(rows, 1));
        QCOMPARE(view.drillHost(), QStringLiteral("web3"));
        QCOMPARE(view.barCount(), 10);

        QTest::mouseClick(view.backButton(), Qt::LeftButton);
        QCOMPARE(view.drillHost(), QString());
        QCOMPARE(drilled.size(), 2);
        QCOMPARE(view.barCount(), 12);
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::Hosts);
        QVERIFY(view.backButton()->isHidden());
        QCOMPARE(view.chart()->margins().top(), 4);

        // A host that leaves while shown: back to every host.
        view.drillDown(QStringLiteral("web12"));
        QCOMPARE(view.barCount(), 10);
        view.updateSnapshot(snapshotOf(rows.first(110), 2));
        QCOMPARE(view.drillHost(), QString());
        QCOMPARE(view.barCount(), 11);

        // 16 backends or fewer: one bar each again.
        view.updateSnapshot(snapshotOf(rows.first(16), 3));
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::Backends);
        QCOMPARE(view.barCount(), 16);
        QCOMPARE(view.chart()->title(), QStringLiteral("Request distribution (req/s per backend)"));
    }

    void viewTopBackendsAndHover() {
        DistributionChartView view;
        view.resize(800, 400);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QList<WorkerRow> rows;
        for (int i = 0; i < 100; ++i) // 100 hosts of one backend each
            rows.append(makeRow(QStringLiteral("app%1").arg(i + 1), 3000, 1.0 + i, 10 + i));
        view.updateSnapshot(snapshotOf(rows));
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::TopBackends);
        QCOMPARE(view.barCount(), 16);
        QCOMPARE(view.chart()->title(),
                 QStringLiteral("Request distribution: top 15 of 100 backends + others (mean)"));
        QCOMPARE(view.backendName(0), QStringLiteral("app100:3000"));
        const DistributionBar others = view.bar(15);
        QVERIFY(others.others);
        QCOMPARE(others.backends, 85);
        double rate = 0;
        for (int i = 0; i < 85; ++i)
            rate += rows[i].requestsPerSecond;
        QCOMPARE(view.barValue(15), rate / 85); // as high as the mean of the others

        const double total = sumOf(rows).rate;
        QCOMPARE(view.barToolTip(0),
                 QStringLiteral("app100:3000\n100.0 req/s\n109 requests in total\n%1 % of requests "
                                "in the last second")
                     .arg(100.0 * 100 / total, 0, 'f', 1));
        QCOMPARE(view.barToolTip(15),
                 QStringLiteral("others: 85 backends\n%1 req/s\n%2 requests in total\n%3 req/s per "
                                "backend (the bar)\n%4 % of requests in the last second")
                     .arg(rate, 0, 'f', 1)
                     .arg(others.requestsTotal)
                     .arg(rate / 85, 0, 'f', 1)
                     .arg(100.0 * rate / total, 0, 'f', 1));
        // Clicking "others" leads nowhere.
        QTest::mouseClick(view.viewport(), Qt::LeftButton, {}, barPosition(view, 15));
        QCOMPARE(view.drillHost(), QString());

        // Hovering a bar shows its tooltip.
        // (After the click the scene's first move only ends the hover of the clicked bar.)
        QTest::mouseMove(view.viewport(), barPosition(view, 0));
        QTest::mouseMove(view.viewport(), barPosition(view, 0) + QPoint(1, 1));
        QTRY_COMPARE(QToolTip::text(), view.barToolTip(0));

        // A host's bar says how many backends and that a click shows them.
        view.updateSnapshot(snapshotOf(fleetRows(3, 10)));
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::Hosts);
        QVERIFY2(view.barToolTip(0).startsWith(QStringLiteral("web1 (host)\n")),
                 qPrintable(view.barToolTip(0)));
        QVERIFY(view.barToolTip(0).contains(QStringLiteral("\n10 backends\n")));
        QVERIFY(view.barToolTip(0).endsWith(QStringLiteral("Click to show its backends")));
    }

    // Beyond 16 workers the CPU view is a heat map, and lines again at 16 or fewer; the
    // readings survive both switches.
    void cpuSwitchesToHeatMap() {
        CpuChartView view;
        view.resize(640, 360);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.updateSnapshot(cpuSnapshot(0, 16));
        QVERIFY(!view.isHeatMap());
        QCOMPARE(view.chart()->series().size(), 16);
        QVERIFY(view.heatMap()->isHidden());

        view.updateSnapshot(cpuSnapshot(1, 40));
        QVERIFY(view.isHeatMap());
        QVERIFY(view.chart()->series().isEmpty()); // no series per worker
        QVERIFY(view.heatMap()->isVisible());
        QCOMPARE(view.heatMap()->geometry(), view.viewport()->rect());
        QCOMPARE(view.seriesCount(), 40);
        QCOMPARE(view.heatMap()->rowCount(), 40);
        QVERIFY(!view.series(3000));
        QCOMPARE(view.heatMap()->title(), QStringLiteral("CPU per worker (%): 40 workers"));
        for (int tick = 2; tick < 10; ++tick)
            view.updateSnapshot(cpuSnapshot(tick, 40));
        QCOMPARE(view.samples(QStringLiteral("web1:3000")).size(), 10);
        // A host getting another inventory name: its worker's row starts afresh, the others
        // keep theirs, and painting reads no row that went.
        ClusterSnapshot renamed = cpuSnapshot(10, 40);
        renamed.workers[0].hostName = QStringLiteral("alpha");
        view.updateSnapshot(renamed);
        QCOMPARE(view.heatMap()->rowCount(), 40);
        QCOMPARE(view.samples(QStringLiteral("alpha:3000")).size(), 1);
        QVERIFY(view.samples(QStringLiteral("web1:3000")).isEmpty());
        QCOMPARE(view.samples(QStringLiteral("web2:3000")).size(), 11);
        QVERIFY(!view.heatMap()->grab().isNull());

        view.updateSnapshot(cpuSnapshot(11, 8));
        QVERIFY(!view.isHeatMap());
        QVERIFY(view.heatMap()->isHidden());
        QCOMPARE(view.chart()->series().size(), 8);
        // The line has every reading, those taken while the heat map was shown included.
        QCOMPARE(view.segments(QStringLiteral("web2:3000")).constFirst()->count(), 12);
        QCOMPARE(view.segments(QStringLiteral("web8:3000")).constFirst()->at(0),
                 QPointF(double(startMs), 14.0));

        view.clear();
        QVERIFY(!view.isHeatMap());
        QCOMPARE(view.seriesCount(), 0);
    }

    // Rows by name (web2 before web10), each cell the colour of its reading, hovering names
    // the worker, the time and the CPU %; memory stays bounded.
    void heatMapCellsAndHover() {
        CpuChartView view;
        view.resize(800, 600); // a pixel column is less than half a tick: one reading each
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        for (int tick = 0; tick < 400; ++tick)
            view.updateSnapshot(cpuSnapshot(tick, 20));
        CpuHeatMap *map = view.heatMap();
        QCOMPARE(map->rowCount(), 20);
        QCOMPARE(view.samples(QStringLiteral("web20:3000")).size(), 300); // five minutes
        QCOMPARE(map->topPercent(), 100.0);
        QVERIFY(map->plotRect().height() >= 20 * 10); // a band per worker, names beside it

        // Row 1 is web2 (CPU 2 + tick % 2), row 2 web3, row 19 web20.
        const qint64 tickMs = startMs + 350 * 1000LL; // CPU 2 (even tick)
        const QPoint web2 = map->cellCenter(1, tickMs - 500);
        QCOMPARE(map->toolTipAt(web2), QStringLiteral("web2:3000\n%1: 2.0 % CPU")
                                           .arg(QDateTime::fromMSecsSinceEpoch(tickMs).toString(
                                               QStringLiteral("hh:mm:ss"))));
        const QPoint web3 = map->cellCenter(2, tickMs - 500);
        QVERIFY2(map->toolTipAt(web3).startsWith(QStringLiteral("web3:3000\n")),
                 qPrintable(map->toolTipAt(web3)));
        const QPoint web20 = map->cellCenter(19, tickMs - 500);
        QVERIFY2(map->toolTipAt(web20).contains(QStringLiteral(": 38.0 % CPU")),
                 qPrintable(map->toolTipAt(web20)));
        QVERIFY(map->toolTipAt(QPoint(1, 1)).isEmpty());

        // What is painted there is the colour of the reading.
        const QImage image = map->grab().toImage();
        QCOMPARE(image.pixelColor(web2 * image.devicePixelRatio()), map->colorFor(2));
        QCOMPARE(image.pixelColor(web20 * image.devicePixelRatio()), map->colorFor(38));
        QVERIFY(map->colorFor(2) != map->colorFor(38));

        // Hovering shows it.
        QTest::mouseMove(map, web20);
        QTRY_COMPARE(QToolTip::text(), map->toolTipAt(web20));
    }

    // 500 workers in fewer pixel rows: a row stands for several workers and shows the busiest.
    void heatMapWithMoreWorkersThanPixels() {
        CpuChartView view;
        view.resize(640, 300);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        for (int tick = 0; tick < 3; ++tick)
            view.updateSnapshot(cpuSnapshot(tick, 500));
        CpuHeatMap *map = view.heatMap();
        QCOMPARE(map->rowCount(), 500);
        QCOMPARE(map->topPercent(), 1000.0); // 2 * 499 + 1 % at most, rounded up to 50s
        QVERIFY(map->plotRect().height() < 500);
        // The top pixel row stands for web1..webN (the image has one row per pixel row); the
        // busiest, webN, is named.
        const int pixelRows = map->plotRect().height();
        int inTopRow = 0;
        while (inTopRow * pixelRows / 500 == 0)
            ++inTopRow;
        QVERIFY(inTopRow >= 2);
        const QPoint top = QPoint(map->plotRect().right() - 1, map->plotRect().top());
        const QString text = map->toolTipAt(top);
        QVERIFY2(text.startsWith(QStringLiteral("web%1:3000\n").arg(inTopRow)), qPrintable(text));
        QVERIFY2(
            text.endsWith(QStringLiteral("\n(busiest of %1 workers in this row)").arg(inTopRow)),
            qPrintable(text));
        QVERIFY(!map->grab().isNull());
    }
};

QTEST_MAIN(TestChartScale)
#include "tst_chartscale.moc"
