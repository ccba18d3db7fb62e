// Time per tick of the three live charts at 1 Hz: updateSnapshot on each view plus a forced
// repaint, the UI thread's share of a console tick. Not a CTest test.
//   QT_QPA_PLATFORM=offscreen build/tests/bench_charts [workers[,workers...]] [ticks]
// By default 64, 100 and 500 workers (issue 20: beyond 16 the CPU view is a heat map, and
// beyond 64 the workers are spread over hosts of 10, as in a fleet, so the distribution
// groups them).
#include "charts/CpuChartView.h"
#include "charts/CpuHeatMap.h"
#include "charts/DistributionChartView.h"
#include "charts/ThroughputChartView.h"

#include <QApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QLineSeries>
#include <QPixmap>
#include <QVBoxLayout>
#include <QWidget>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <sys/resource.h>

using namespace corral;

namespace {

ClusterSnapshot makeSnapshot(qint64 timestampMs, int workers, int tick) {
    ClusterSnapshot snapshot;
    snapshot.timestampMs = timestampMs;
    snapshot.site = QStringLiteral("bench");
    for (int i = 0; i < workers; ++i) {
        WorkerRow row;
        row.port = quint16(3000 + i);
        if (workers > 64) {
            row.host = QStringLiteral("10.0.1.%1").arg(i / 10 + 1);
            row.hostName = QStringLiteral("web%1").arg(i / 10 + 1);
            row.port = quint16(3000 + i % 10);
        }
        row.state = WorkerState::Running;
        row.cpuValid = true;
        row.cpuPercent = 50 + 45 * std::sin((tick + i * 7) * 0.1);
        row.inProxy = true;
        row.requestsPerSecond = 100 + 20 * std::cos((tick + i) * 0.3);
        row.requestsTotal = quint64(tick) * 100 + quint64(i);
        row.errorsPerSecond = (tick + i) % 13 == 0 ? 1 : 0;
        snapshot.requestsPerSecond += row.requestsPerSecond;
        snapshot.errorsPerSecond += row.errorsPerSecond;
        snapshot.workers.append(row);
    }
    snapshot.running = workers;
    return snapshot;
}

struct Stats {
    double total = 0;
    double max = 0;
    void add(double ms) {
        total += ms;
        max = std::max(max, ms);
    }
    double mean(int count) const { return total / count; }
};

/// Milliseconds since `timer` was last started; restarts it.
double elapsedMs(QElapsedTimer &timer) {
    const qint64 ns = timer.nsecsElapsed();
    timer.start();
    return double(ns) / 1e6;
}

/// CPU time of the whole process (painting may use Qt's thread pool), user + system.
double processCpuMs() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto ms = [](const timeval &tv) {
        return double(tv.tv_sec) * 1e3 + double(tv.tv_usec) / 1e3;
    };
    return ms(usage.ru_utime) + ms(usage.ru_stime);
}

void run(int workers, int ticks) {
    // Laid out as in the console: three charts stacked in one window.
    QWidget window;
    auto *layout = new QVBoxLayout(&window);
    auto *cpu = new CpuChartView;
    auto *distribution = new DistributionChartView;
    auto *throughput = new ThroughputChartView;
    layout->addWidget(cpu);
    layout->addWidget(distribution);
    layout->addWidget(throughput);
    window.resize(1200, 1000);
    window.show();
    QApplication::processEvents();

    const qint64 start = QDateTime::currentMSecsSinceEpoch();
    QChartView *const views[] = {cpu, distribution, throughput};
    const char *const names[] = {"CpuChartView", "DistributionChartView", "ThroughputChartView"};
    Stats update[3], paint[3], scene, rest, tick;
    const double cpuBefore = processCpuMs();
    QElapsedTimer timer;
    QElapsedTimer whole;
    for (int i = 0; i < ticks; ++i) {
        const ClusterSnapshot snapshot = makeSnapshot(start + i * 1000LL, workers, i);
        whole.start();
        timer.start();
        cpu->updateSnapshot(snapshot);
        update[0].add(elapsedMs(timer));
        distribution->updateSnapshot(snapshot);
        update[1].add(elapsedMs(timer));
        throughput->updateSnapshot(snapshot);
        update[2].add(elapsedMs(timer));
        // The scenes' deferred work: queued item updates and layout requests.
        QCoreApplication::sendPostedEvents(nullptr, QEvent::MetaCall);
        QCoreApplication::sendPostedEvents(nullptr, QEvent::LayoutRequest);
        QCoreApplication::sendPostedEvents(nullptr, QEvent::MetaCall);
        scene.add(elapsedMs(timer));
        // The forced repaint: each view painted synchronously, whole viewport (the heat map
        // covers the CPU view's: the viewport alone would paint nothing).
        for (int v = 0; v < 3; ++v) {
            if (v == 0 && cpu->isHeatMap())
                cpu->heatMap()->repaint();
            else
                views[v]->viewport()->repaint();
            paint[v].add(elapsedMs(timer));
        }
        // Whatever is left (the window's own update request finds little left to paint).
        QApplication::processEvents();
        rest.add(elapsedMs(timer));
        tick.add(double(whole.nsecsElapsed()) / 1e6);
    }
    const double cpuMs = processCpuMs() - cpuBefore;

    std::printf("bench_charts: %d workers, %d ticks, window %dx%d\n", workers, ticks,
                window.width(), window.height());
    for (int v = 0; v < 3; ++v) {
        std::printf(
            "  %-22s updateSnapshot mean %6.2f max %6.2f ms | repaint mean %6.2f max %6.2f ms\n",
            names[v], update[v].mean(ticks), update[v].max, paint[v].mean(ticks), paint[v].max);
    }
    std::printf("  scene updates + layout   mean %6.2f max %6.2f ms | other events mean %6.2f ms\n",
                scene.mean(ticks), scene.max, rest.mean(ticks));
    std::printf("  per tick (wall, UI thread): mean %.2f ms, max %.2f ms (target < 20 ms)\n",
                tick.mean(ticks), tick.max);
    std::printf("  process CPU: %.2f ms per tick = %.1f %% of one core at 1 Hz (target < 10 %%)\n",
                cpuMs / ticks, cpuMs / ticks / 10.0);
    if (cpu->isHeatMap()) {
        qsizetype samples = 0;
        for (const QString &name : cpu->names())
            samples += cpu->samples(name).size();
        std::printf("  CPU heat map: %d rows, %lld readings kept\n", cpu->heatMap()->rowCount(),
                    static_cast<long long>(samples));
    } else {
        std::printf("  points in the CPU chart: %lld\n",
                    static_cast<long long>(cpu->seriesCount()) *
                        (cpu->series(3000) ? cpu->series(3000)->count() : 0));
    }
    // CORRAL_BENCH_SCREENSHOT=file.png keeps a picture of the last tick, to eyeball the charts
    // (a "%1" in the name becomes the worker count).
    QString screenshot = qEnvironmentVariable("CORRAL_BENCH_SCREENSHOT");
    if (screenshot.contains(QLatin1String("%1"))) screenshot = screenshot.arg(workers);
    if (!screenshot.isEmpty() && !window.grab().save(screenshot))
        std::fprintf(stderr, "bench_charts: cannot write %s\n", qPrintable(screenshot));
}

} // namespace

int main(int argc, char **argv) {
    QApplication app(argc, argv);
    const QStringList counts = QString::fromLocal8Bit(argc > 1 ? argv[1] : "64,100,500")
                                   .split(QLatin1Char(','), Qt::SkipEmptyParts);
    const int ticks = argc > 2 ? std::max(1, atoi(argv[2])) : 600;
    for (const QString &count : counts)
        run(std::max(1, count.toInt()), ticks);
    return 0;
}
