// UI responsiveness: the console with a 64-worker local cluster behind the embedded proxy and
// the load generator running, ticking at 1 Hz. The site runs in a private Corral agent (its
// socket and state in a temporary directory), stopped at the end. Prints the UI thread's time spent updating the
// views per tick and the UI thread's CPU use. Not a CTest test (it takes ~a minute).
//
//   bench_console [--workers 64] [--seconds 30] [--rate 2000]

#include "MainWindow.h"
#include "WorkerTableModel.h"
#include "agent/AgentClient.h"
#include "loadgen/LoadGenerator.h"

#include <QAction>
#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QSlider>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>

using namespace corral;

static double threadCpuMs() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char *argv[]) {
    QTemporaryDir home;
    qputenv("XDG_STATE_HOME", home.filePath(QStringLiteral("state")).toUtf8());
    qputenv("XDG_CONFIG_HOME", home.filePath(QStringLiteral("config")).toUtf8());
    qputenv("XDG_RUNTIME_DIR", home.filePath(QStringLiteral("runtime")).toUtf8());
    qputenv("CORRAL_AGENT_PROGRAM", AGENT_PATH);
    QApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addOptions({{QStringLiteral("workers"), QStringLiteral("workers"), QStringLiteral("N"), QStringLiteral("64")},
                       {QStringLiteral("seconds"), QStringLiteral("measured seconds"), QStringLiteral("S"), QStringLiteral("30")},
                       {QStringLiteral("rate"), QStringLiteral("requests/s"), QStringLiteral("R"), QStringLiteral("2000")}});
    parser.process(app);
    const int workers = parser.value(QStringLiteral("workers")).toInt();
    const int seconds = parser.value(QStringLiteral("seconds")).toInt();

    MainWindow::Options options;
    options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
    options.autostartAgent = true;
    MainWindow window(home.filePath(QStringLiteral("inventory.json")), options);
    window.resize(1280, 800);
    window.show();

    QTcpServer probe;
    probe.listen(QHostAddress::LocalHost, 0);
    const QString listen = QStringLiteral("127.0.0.1:%1").arg(probe.serverPort());
    probe.close();
    Site site;
    site.name = QStringLiteral("bench");
    site.command = options.demoWorkerPath;
    site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
    site.workers = workers;
    site.basePort = 21000;
    site.healthPath = QStringLiteral("/health");
    site.listen = listen;
    if (auto started = window.launchCluster(site); !started) {
        std::fprintf(stderr, "bench_console: %s\n", qPrintable(started.error()));
        return 1;
    }
    QElapsedTimer setup;
    setup.start();
    const auto running = [&] { return window.currentSite() ? window.currentSite()->snapshot.running : 0; };
    while (running() < workers && setup.elapsed() < 60000)
        app.processEvents(QEventLoop::AllEvents, 100);
    std::printf("bench_console: %d workers running after %.1f s\n", running(), setup.elapsed() / 1000.0);
    window.findChild<QSlider *>(QStringLiteral("loadRate"))->setValue(parser.value(QStringLiteral("rate")).toInt());
    window.action(QStringLiteral("generateLoad"))->trigger();

    QList<double> tickMs;
    QObject::connect(&window, &MainWindow::ticked, &window, [&] { tickMs.append(window.lastTickMs()); });
    // Warm up (first samples, chart axes), then measure.
    QTimer::singleShot(3000, &app, [&] {
        tickMs.clear();
        const double cpuStart = threadCpuMs();
        QElapsedTimer wall;
        wall.start();
        QTimer::singleShot(seconds * 1000, &app, [&, cpuStart, wall] {
            const double cpu = threadCpuMs() - cpuStart;
            std::sort(tickMs.begin(), tickMs.end());
            double sum = 0;
            for (double ms : tickMs)
                sum += ms;
            std::printf("bench_console: %d workers, %lld ticks in %.1f s\n", workers, qlonglong(tickMs.size()), wall.elapsed() / 1000.0);
            if (!tickMs.isEmpty())
                std::printf("bench_console: view update per tick: mean %.2f ms, median %.2f ms, max %.2f ms\n",
                            sum / tickMs.size(), tickMs.at(tickMs.size() / 2), tickMs.last());
            std::printf("bench_console: UI thread CPU (updates, painting, event loop): %.2f %% of one core\n",
                        100.0 * cpu / wall.elapsed());
            std::printf("bench_console: load generator achieved %.0f req/s\n", window.loadGenerator()->stats().achievedPerSecond);
            window.stopAllSites([&app] { app.quit(); }); // quitting would ask first
        });
    });
    // The private agent goes with the benchmark (read now: quitting closes the window, and
    // with it the connection).
    const qint64 agentPid = window.agentClient() ? window.agentClient()->agentPid() : 0;
    const int code = app.exec();
    if (agentPid > 0) ::kill(pid_t(agentPid), SIGTERM);
    return code;
}
