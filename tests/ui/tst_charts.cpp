#include "charts/CpuChartView.h"
#include "charts/DistributionChartView.h"
#include "charts/ThroughputChartView.h"

#include <QDateTimeAxis>
#include <QGraphicsScene>
#include <QGraphicsSimpleTextItem>
#include <QGraphicsTextItem>
#include <QLineSeries>
#include <QTest>
#include <QValueAxis>

using namespace corral;

namespace {

constexpr qint64 startMs = 1'700'000'000'000; // a fixed wall clock keeps runs comparable

WorkerRow makeRow(quint16 port, double cpu, double rps, quint64 total = 0) {
    WorkerRow row;
    row.site = QStringLiteral("demo");
    row.port = port;
    row.pid = 1000 + port;
    row.state = WorkerState::Running;
    row.cpuValid = true;
    row.cpuPercent = cpu;
    row.inProxy = true;
    row.backendState = QStringLiteral("up");
    row.requestsPerSecond = rps;
    row.requestsTotal = total;
    return row;
}

/// `ports.size()` workers at second `tick`: CPU 10 + port offset, 10 req/s per port offset + 1.
ClusterSnapshot makeSnapshot(int tick, const QList<quint16> &ports) {
    ClusterSnapshot snapshot;
    snapshot.timestampMs = startMs + tick * 1000LL;
    snapshot.site = QStringLiteral("demo");
    for (quint16 port : ports) {
        const double offset = port - 3000;
        snapshot.workers.append(makeRow(port, 10 + offset, 10 * (offset + 1)));
        snapshot.requestsPerSecond += snapshot.workers.last().requestsPerSecond;
    }
    snapshot.errorsPerSecond = tick % 7;
    snapshot.running = int(ports.size());
    return snapshot;
}

QList<quint16> portRange(int count) {
    QList<quint16> ports;
    for (int i = 0; i < count; ++i)
        ports.append(quint16(3000 + i));
    return ports;
}

/// Every text the chart's scene shows (bar labels, legend entries, axis labels), with where.
QList<QPair<QString, QRectF>> sceneTexts(QChartView &view) {
    QList<QPair<QString, QRectF>> texts;
    for (QGraphicsItem *item : view.scene()->items()) {
        if (!item->isVisible()) continue;
        if (auto *text = dynamic_cast<QGraphicsTextItem *>(item))
            texts.append({text->toPlainText(), text->sceneBoundingRect()});
        else if (auto *simple = dynamic_cast<QGraphicsSimpleTextItem *>(item))
            texts.append({simple->text(), simple->sceneBoundingRect()});
    }
    return texts;
}

QString describe(const QList<QPair<QString, QRectF>> &texts) {
    QStringList parts;
    for (const auto &[text, rect] : texts)
        parts.append(QStringLiteral("\"%1\"@%2,%3").arg(text).arg(rect.x()).arg(rect.y()));
    return parts.join(QStringLiteral(" "));
}

} // namespace

class TestCharts : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void cpuSeriesFollowWorkers() {
        CpuChartView view;
        QCOMPARE(view.chart()->title(), QStringLiteral("CPU per worker (%)"));
        view.updateSnapshot(makeSnapshot(0, {3000, 3001, 3002}));
        QCOMPARE(view.seriesCount(), 3);
        QCOMPARE(view.chart()->series().size(), 3);
        QCOMPARE(view.ports(), (QList<quint16>{3000, 3001, 3002}));
        QCOMPARE(view.series(3001)->name(), QStringLiteral("port 3001"));
        QCOMPARE(view.series(3001)->count(), 1);
        QCOMPARE(view.series(3001)->at(0), QPointF(double(startMs), 11.0));

        // A worker added, one gone.
        view.updateSnapshot(makeSnapshot(1, {3000, 3002, 3003}));
        QCOMPARE(view.seriesCount(), 3);
        QCOMPARE(view.chart()->series().size(), 3);
        QCOMPARE(view.ports(), (QList<quint16>{3000, 3002, 3003}));
        QVERIFY(!view.series(3001));
        QCOMPARE(view.series(3000)->count(), 2);
        QCOMPARE(view.series(3003)->count(), 1);

        // A worker without a CPU reading yet keeps its line but gets no point.
        ClusterSnapshot snapshot = makeSnapshot(2, {3000, 3004});
        snapshot.workers[1].cpuValid = false;
        view.updateSnapshot(snapshot);
        QCOMPARE(view.ports(), (QList<quint16>{3000, 3004}));
        QCOMPARE(view.series(3004)->count(), 0);
        QCOMPARE(view.series(3000)->count(), 3);

        view.updateSnapshot(makeSnapshot(3, {}));
        QCOMPARE(view.seriesCount(), 0);
        QVERIFY(view.chart()->series().isEmpty());
    }

    void cpuPointsCappedToWindow() {
        CpuChartView view;
        const QList<quint16> ports = portRange(4);
        for (int tick = 0; tick < 400; ++tick)
            view.updateSnapshot(makeSnapshot(tick, ports));
        const qint64 now = startMs + 399 * 1000LL;
        for (quint16 port : ports) {
            QLineSeries *series = view.series(port);
            // Five minutes at 1 Hz: (now - 300 s, now], 300 points.
            QCOMPARE(series->count(), 300);
            QVERIFY(series->at(0).x() > double(now - CpuChartView::windowMs));
            QCOMPARE(series->at(series->count() - 1).x(), double(now));
        }
        QCOMPARE(view.timeAxis()->max().toMSecsSinceEpoch(), now);
        QCOMPARE(view.timeAxis()->min().toMSecsSinceEpoch(), now - CpuChartView::windowMs);

        // Faster ticks are capped by count as well.
        for (int i = 1; i <= 2000; ++i) {
            ClusterSnapshot snapshot = makeSnapshot(0, ports);
            snapshot.timestampMs = now + i * 10;
            view.updateSnapshot(snapshot);
        }
        QCOMPARE(view.series(3000)->count(), int(CpuChartView::maxPointsPerSeries));
    }

    void cpuAxisGrowsBeyondOneCore() {
        CpuChartView view;
        view.updateSnapshot(makeSnapshot(0, {3000, 3001}));
        QCOMPARE(view.valueAxis()->min(), 0.0);
        QCOMPARE(view.valueAxis()->max(), 100.0);
        ClusterSnapshot snapshot = makeSnapshot(1, {3000, 3001});
        snapshot.workers[1].cpuPercent = 137;
        view.updateSnapshot(snapshot);
        QCOMPARE(view.valueAxis()->max(), 150.0);
        // Once the peak leaves the window the axis comes back to 100.
        for (int tick = 2; tick < 310; ++tick)
            view.updateSnapshot(makeSnapshot(tick, {3000, 3001}));
        QCOMPARE(view.valueAxis()->max(), 100.0);
    }

    void cpuHistoryPrefillsAndClear() {
        CpuChartView view;
        QList<QPointF> history;
        for (int i = 0; i < 600; ++i) // ten minutes of MetricsCollector history
            history.append(QPointF(double(startMs - (600 - i) * 1000LL), 20));
        view.setHistory(3000, history);
        QCOMPARE(view.seriesCount(), 1);
        view.updateSnapshot(makeSnapshot(0, {3000}));
        QLineSeries *series = view.series(3000);
        QCOMPARE(series->count(), 300); // 299 history points within the window + the live one
        QCOMPARE(series->at(series->count() - 1).y(), 10.0);

        view.clear();
        QCOMPARE(view.seriesCount(), 0);
        QVERIFY(view.chart()->series().isEmpty());
        view.updateSnapshot(makeSnapshot(1, {3000}));
        QCOMPARE(view.series(3000)->count(), 1);
    }

    void cpuSwitchingSiteStartsAfresh() {
        CpuChartView view;
        view.updateSnapshot(makeSnapshot(0, {3000}));
        view.updateSnapshot(makeSnapshot(1, {3000}));
        ClusterSnapshot other = makeSnapshot(2, {3000});
        other.site = QStringLiteral("blog");
        view.updateSnapshot(other);
        QCOMPARE(view.series(3000)->count(), 1);
    }

    // Production backends (rows with a host): several machines may use the same port, so
    // each machine's backend gets its own bar, labelled HOST:PORT; one machine's by port.
    void distributionSeparatesHostsWithTheSamePort() {
        DistributionChartView view;
        ClusterSnapshot snapshot = makeSnapshot(0, {3000, 3000, 3001});
        snapshot.workers[0].host = QStringLiteral("10.0.0.1");
        snapshot.workers[1].host = QStringLiteral("10.0.0.2");
        snapshot.workers[2].host = QStringLiteral("10.0.0.2");
        for (WorkerRow &row : snapshot.workers)
            row.requestsPerSecond = 10;
        view.updateSnapshot(snapshot);
        QCOMPARE(view.barCount(), 3);
        QCOMPARE(view.backendName(0), QStringLiteral("10.0.0.1:3000"));
        QCOMPARE(view.backendName(1), QStringLiteral("10.0.0.2:3000"));
        QCOMPARE(view.categoryLabel(0), QStringLiteral("10.0.0.1:3000\n33 %"));
        QCOMPARE(view.categoryLabel(1), QStringLiteral("10.0.0.2:3000\n33 %"));

        for (WorkerRow &row : snapshot.workers)
            row.host = QStringLiteral("10.0.0.2");
        snapshot.workers[1].port = 3002;
        view.updateSnapshot(snapshot);
        QCOMPARE(view.backendName(1), QStringLiteral("10.0.0.2:3002"));
        QCOMPARE(view.categoryLabel(1), QStringLiteral("3002\n33 %"));
    }

    void distributionMatchesBackends() {
        DistributionChartView view;
        QCOMPARE(view.chart()->title(), QStringLiteral("Request distribution (req/s per backend)"));
        ClusterSnapshot snapshot = makeSnapshot(0, {3000, 3001, 3002, 3003});
        snapshot.workers[3].inProxy = false; // started, not yet added to the proxy
        view.updateSnapshot(snapshot);
        QCOMPARE(view.barCount(), 3);
        QCOMPARE(view.basis(), DistributionChartView::ShareBasis::RequestsPerSecond);
        double sum = 0;
        for (int i = 0; i < view.barCount(); ++i) {
            QCOMPARE(view.port(i), snapshot.workers[i].port);
            QCOMPARE(view.barValue(i), snapshot.workers[i].requestsPerSecond);
            sum += view.share(i);
        }
        QVERIFY(qAbs(sum - 100) < 1e-9);
        // 10, 20, 30 req/s of 60.
        QVERIFY(qAbs(view.share(0) - 100.0 / 6) < 1e-9);
        QCOMPARE(view.categoryLabel(0), QStringLiteral("3000\n17 %"));
        QCOMPARE(view.categoryLabel(1), QStringLiteral("3001\n33 %"));
        QCOMPARE(view.categoryLabel(2), QStringLiteral("3002\n50 %"));

        // Same backends, new rates: values and labels follow.
        ClusterSnapshot next = makeSnapshot(1, {3000, 3001, 3002});
        for (WorkerRow &row : next.workers)
            row.requestsPerSecond = 25;
        view.updateSnapshot(next);
        QCOMPARE(view.barCount(), 3);
        QCOMPARE(view.barValue(2), 25.0);
        QVERIFY(view.categoryLabel(2).contains(QStringLiteral("3002")));
        QVERIFY(view.categoryLabel(2).contains(QStringLiteral("33 %")));

        // Backends replaced with the same count: labels stay unique and correct.
        view.updateSnapshot(makeSnapshot(2, {3001, 3002, 3003}));
        QCOMPARE(view.categoryLabel(0), QStringLiteral("3001\n22 %"));
        QCOMPARE(view.categoryLabel(2), QStringLiteral("3003\n44 %"));
        QCOMPARE(view.barValue(2), 40.0);

        // One backend fewer.
        view.updateSnapshot(makeSnapshot(3, {3000, 3002}));
        QCOMPARE(view.barCount(), 2);
        QCOMPARE(view.barValue(1), 30.0);
        QCOMPARE(view.share(1), 75.0);

        view.clear();
        QCOMPARE(view.barCount(), 0);
        QCOMPARE(view.barValue(0), 0.0);
    }

    void distributionIdleUsesTotals() {
        DistributionChartView view;
        ClusterSnapshot snapshot = makeSnapshot(0, {3000, 3001});
        snapshot.workers[0].requestsPerSecond = 0;
        snapshot.workers[1].requestsPerSecond = 0;
        snapshot.workers[0].requestsTotal = 300;
        snapshot.workers[1].requestsTotal = 100;
        view.updateSnapshot(snapshot);
        QCOMPARE(view.basis(), DistributionChartView::ShareBasis::RequestsTotal);
        QCOMPARE(view.barValue(0), 0.0);
        QCOMPARE(view.share(0), 75.0);
        QCOMPARE(view.share(1), 25.0);
        QCOMPARE(view.categoryLabel(1), QStringLiteral("3001\n25 %"));

        // No request at all: no share to speak of.
        snapshot.workers[0].requestsTotal = 0;
        snapshot.workers[1].requestsTotal = 0;
        view.updateSnapshot(snapshot);
        QCOMPARE(view.basis(), DistributionChartView::ShareBasis::None);
        QCOMPARE(view.share(0), 0.0);
        QCOMPARE(view.categoryLabel(0), QStringLiteral("3000\n0 %"));
    }

    // 64 backends of one machine: the busiest 15 and "others" (issue 20), shares still 100 %.
    void distributionManyBackendsSumTo100() {
        DistributionChartView view;
        view.updateSnapshot(makeSnapshot(0, portRange(64)));
        QCOMPARE(view.barCount(), DistributionChartView::maxBars);
        QCOMPARE(view.grouping(), DistributionChartView::Grouping::TopBackends);
        double sum = 0;
        for (int i = 0; i < view.barCount(); ++i) {
            sum += view.share(i);
            QVERIFY(view.share(i) >= 0 && view.share(i) <= 100);
        }
        QVERIFY(qAbs(sum - 100) < 1e-6);
    }

    void throughputFollowsTotals() {
        ThroughputChartView view;
        QCOMPARE(view.chart()->title(), QStringLiteral("Throughput"));
        const QList<quint16> ports = portRange(3);
        for (int tick = 0; tick < 400; ++tick)
            view.updateSnapshot(makeSnapshot(tick, ports));
        QCOMPARE(view.requestsSeries()->count(), 300);
        QCOMPARE(view.errorsSeries()->count(), 300);
        const ClusterSnapshot last = makeSnapshot(399, ports);
        const QPointF newest = view.requestsSeries()->at(299);
        QCOMPARE(newest, QPointF(double(last.timestampMs), 60.0));
        QCOMPARE(view.errorsSeries()->at(299), QPointF(double(last.timestampMs), 399 % 7));
        QCOMPARE(view.requestsSeries()->at(0).x(), double(makeSnapshot(100, ports).timestampMs));
        QCOMPARE(view.timeAxis()->max().toMSecsSinceEpoch(), last.timestampMs);
        QVERIFY(view.valueAxis()->max() >= 60);

        view.clear();
        QCOMPARE(view.requestsSeries()->count(), 0);
        QCOMPARE(view.errorsSeries()->count(), 0);
    }

    // Issue 13 item 13: bar labels are plain numbers ("100"), never "1e+02".
    void distributionBarLabelsHaveNoExponent() {
        DistributionChartView view;
        view.resize(480, 320);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        for (double top : {99.7, 100.0, 999.6, 9.97}) {
            ClusterSnapshot snapshot = makeSnapshot(0, {3000, 3001});
            snapshot.workers[0].requestsPerSecond = top;
            snapshot.workers[1].requestsPerSecond = top / 2;
            view.updateSnapshot(snapshot);
            QCoreApplication::processEvents();
            const auto texts = sceneTexts(view);
            for (const auto &[text, rect] : texts)
                QVERIFY2(!text.contains(QLatin1String("e+")), qPrintable(describe(texts)));
        }
        ClusterSnapshot snapshot = makeSnapshot(0, {3000, 3001});
        snapshot.workers[0].requestsPerSecond = 100;
        snapshot.workers[1].requestsPerSecond = 50;
        view.updateSnapshot(snapshot);
        QCoreApplication::processEvents();
        const auto texts = sceneTexts(view);
        QVERIFY2(std::any_of(texts.cbegin(), texts.cend(),
                             [](const auto &t) { return t.first == QLatin1String("100"); }),
                 qPrintable(describe(texts)));
    }

    // Issue 13 item 13: with 5 and more workers every legend entry is shown in full (wrapped
    // onto more rows), inside the chart.
    void cpuLegendIsNotTruncated() {
        CpuChartView view;
        view.resize(360, 280); // one of three charts side by side in a 1280 px window
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        for (int count : {5, 8, 12}) {
            const QList<quint16> ports = portRange(count);
            view.updateSnapshot(makeSnapshot(count, ports));
            QCoreApplication::processEvents();
            const auto texts = sceneTexts(view);
            for (quint16 port : ports) {
                const QString name = QStringLiteral("port %1").arg(port);
                const auto entry = std::find_if(texts.cbegin(), texts.cend(),
                                                [&](const auto &t) { return t.first == name; });
                QVERIFY2(entry != texts.cend(),
                         qPrintable(name + QStringLiteral(": ") + describe(texts)));
                QVERIFY2(QRectF(0, 0, 360, 280).contains(entry->second),
                         qPrintable(name + QStringLiteral(" outside: ") + describe(texts)));
            }
            // The plot keeps a usable height.
            QVERIFY2(view.chart()->plotArea().height() >= 80,
                     qPrintable(QString::number(view.chart()->plotArea().height())));
        }
    }

    // Issue 13 item 13: a worker keeps its colour while it exists: when another worker goes,
    // and when the site is shown again (the console clears the charts on every selection).
    void cpuWorkerKeepsItsColour() {
        CpuChartView view;
        const QList<quint16> ports = portRange(5);
        view.updateSnapshot(makeSnapshot(0, ports));
        QHash<quint16, QColor> colours;
        for (quint16 port : ports)
            colours.insert(port, view.series(port)->pen().color());
        const QList<quint16> remaining{3000, 3002, 3003, 3004};
        view.updateSnapshot(makeSnapshot(1, remaining));
        for (quint16 port : remaining)
            QCOMPARE(view.series(port)->pen().color(), colours.value(port));
        view.clear(); // another site selected, then this one again
        view.updateSnapshot(makeSnapshot(2, remaining));
        for (quint16 port : remaining)
            QCOMPARE(view.series(port)->pen().color(), colours.value(port));
        ClusterSnapshot withNew = makeSnapshot(3, remaining + QList<quint16>{3005});
        view.updateSnapshot(withNew);
        for (quint16 port : remaining)
            QCOMPARE(view.series(port)->pen().color(), colours.value(port));
        for (quint16 port : remaining)
            QVERIFY(view.series(3005)->pen().color() != colours.value(port));
    }

    // Issue 13 item 13: after a spike the throughput axis comes back down (a sliding-window
    // max), instead of staying at the spike for the whole five minutes.
    void throughputAxisRescalesAfterASpike() {
        ThroughputChartView view;
        int tick = 0;
        const auto feed = [&](double rps) {
            ClusterSnapshot snapshot = makeSnapshot(tick++, {3000});
            snapshot.requestsPerSecond = rps;
            snapshot.errorsPerSecond = 0;
            view.updateSnapshot(snapshot);
        };
        for (int i = 0; i < 10; ++i)
            feed(5);
        feed(1000);
        QVERIFY(view.valueAxis()->max() >= 1000);
        for (int i = 0; i < 30; ++i)
            feed(5);
        QVERIFY(view.valueAxis()->max() >= 1000); // a recent spike still sets the scale
        const qint64 spikeTick = 10;
        while (tick < spikeTick + ThroughputChartView::scaleWindowMs / 1000 + 2)
            feed(5);
        QVERIFY2(view.valueAxis()->max() <= 10,
                 qPrintable(QString::number(view.valueAxis()->max())));
    }

    // Issue 13 item 13: the time axis spans the history there is (one minute at first, growing
    // by the minute to five), not an empty five-minute axis.
    void timeAxisGrowsWithHistory() {
        CpuChartView cpu;
        ThroughputChartView throughput;
        const QList<quint16> ports = portRange(2);
        const auto span = [](QDateTimeAxis *axis) {
            return axis->max().toMSecsSinceEpoch() - axis->min().toMSecsSinceEpoch();
        };
        for (int tick = 0; tick <= 400; ++tick) {
            cpu.updateSnapshot(makeSnapshot(tick, ports));
            throughput.updateSnapshot(makeSnapshot(tick, ports));
            const qint64 expected = tick <= 60    ? 60'000
                                    : tick <= 120 ? 120'000
                                    : tick <= 180 ? 180'000
                                    : tick <= 240 ? 240'000
                                                  : 300'000;
            QCOMPARE(span(cpu.timeAxis()), expected);
            QCOMPARE(span(throughput.timeAxis()), expected);
            QCOMPARE(cpu.timeAxis()->max().toMSecsSinceEpoch(), startMs + tick * 1000LL);
        }
    }

    void rendersOffscreen() {
        CpuChartView cpu;
        DistributionChartView distribution;
        ThroughputChartView throughput;
        const QList<quint16> ports = portRange(8);
        for (QWidget *widget : {static_cast<QWidget *>(&cpu), static_cast<QWidget *>(&distribution),
                                static_cast<QWidget *>(&throughput)}) {
            widget->resize(640, 320);
            widget->show();
            QVERIFY(QTest::qWaitForWindowExposed(widget));
        }
        for (int tick = 0; tick < 5; ++tick) {
            cpu.updateSnapshot(makeSnapshot(tick, ports));
            distribution.updateSnapshot(makeSnapshot(tick, ports));
            throughput.updateSnapshot(makeSnapshot(tick, ports));
        }
        for (QWidget *widget : {static_cast<QWidget *>(&cpu), static_cast<QWidget *>(&distribution),
                                static_cast<QWidget *>(&throughput)}) {
            const QPixmap pixmap = widget->grab();
            QVERIFY(!pixmap.isNull());
            QCOMPARE(pixmap.size(), QSize(640, 320));
        }
        // A dark palette switches the chart theme.
        QPalette dark = cpu.palette();
        dark.setColor(QPalette::Window, QColor(0x20, 0x20, 0x20));
        dark.setColor(QPalette::WindowText, QColor(0xee, 0xee, 0xee));
        cpu.setPalette(dark);
        QCOMPARE(cpu.chart()->theme(), QChart::ChartThemeDark);
        QVERIFY(!cpu.grab().isNull());
    }
};

QTEST_MAIN(TestCharts)
#include "tst_charts.moc"
