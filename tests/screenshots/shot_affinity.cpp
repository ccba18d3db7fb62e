// Screenshots of the session affinity check (issue 22) on the demo, from a real window (run
// under Xvfb by resources/screenshots/capture.sh): `corral --demo`'s site (three demo workers
// with sessions in memory behind the embedded balancer) run by a private corral-agent, with
// load through the balancer, then Check session affinity:
//  - affinity-banner.png: the per-process banner above the workers, with its fix;
//  - affinity-details.png: its evidence (every request and what each worker answered);
//  - affinity-fixed.png: after "Switch to sticky-cookie", the check again: sticky-verified.
//   build/tests/shot_affinity OUTDIR [SECONDS]

#include "AffinityBanner.h"
#include "AgentFixture.h"
#include "MainWindow.h"
#include "WorkerTableModel.h"
#include "loadgen/LoadGenerator.h"

#include <QAction>
#include <QApplication>
#include <QDialog>
#include <QElapsedTimer>
#include <QPushButton>
#include <QScreen>
#include <QTemporaryDir>

#include <cstdio>
#include <functional>

using namespace corral;
using namespace corral::test;

namespace {

int failWith(const QString &message) {
    std::fprintf(stderr, "shot_affinity: %s\n", qPrintable(message));
    return 1;
}

void waitFor(int ms) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < ms)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
}

/// Processes events until `done` or `ms` passed; whether it came.
bool waitUntil(const std::function<bool()> &done, int ms) {
    QElapsedTimer timer;
    timer.start();
    while (!done()) {
        if (timer.elapsed() > ms) return false;
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
    }
    return true;
}

bool grab(const QString &path) {
    // The whole Xvfb screen, as the X server shows it (the same as `import -window root`).
    return QGuiApplication::primaryScreen()->grabWindow(0).save(path);
}

bool verdictShown(const AffinityBanner *banner, AffinityVerdict verdict) {
    return !banner->isChecking() && banner->report() && banner->report()->verdict == verdict;
}

} // namespace

int main(int argc, char **argv) {
    QApplication app(argc, argv);
    if (argc < 2) return failWith(QStringLiteral("usage: shot_affinity OUTDIR [SECONDS]"));
    const QString outDir = QString::fromLocal8Bit(argv[1]);
    const int seconds = argc > 2 ? QString::fromLocal8Bit(argv[2]).toInt() : 10;

    QTemporaryDir home;
    qputenv("HOME", home.path().toUtf8());
    qputenv("XDG_CONFIG_HOME", home.filePath(QStringLiteral("config")).toUtf8());
    qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-shot-bus");
    AgentFixture agent(QStringLiteral(AGENT_PATH)); // private runtime and state directories
    if (!agent.start()) return failWith(QString::fromUtf8("agent: " + agent.log()));

    MainWindow::Options options;
    options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
    MainWindow window(home.filePath(QStringLiteral("inventory.json")), options);
    window.resize(1280, 800);
    window.show();
    const QString listen = QStringLiteral("127.0.0.1:%1").arg(workerBasePort());
    if (auto started = window.startDemo(listen); !started) return failWith(started.error());
    const auto running = [&] {
        int count = 0;
        for (const WorkerRow &row : window.workerModel()->rows())
            count += row.state == WorkerState::Running ? 1 : 0;
        return count == 3;
    };
    if (!waitUntil(running, 20000)) return failWith(QStringLiteral("the demo did not start"));
    window.loadGenerator()->setRate(200);
    window.action(QStringLiteral("generateLoad"))->trigger();
    waitFor(seconds * 1000); // the charts fill

    AffinityBanner *banner = window.affinityBanner();
    window.action(QStringLiteral("checkAffinity"))->trigger();
    if (!waitUntil([&] { return verdictShown(banner, AffinityVerdict::PerProcess); }, 30000))
        return failWith(QStringLiteral("no per-process result: %1")
                            .arg(banner->report() ? banner->report()->summary : QString()));
    waitFor(1000);
    const QString bannerShot = outDir + QStringLiteral("/affinity-banner.png");
    if (!grab(bannerShot)) return failWith(QStringLiteral("cannot write ") + bannerShot);

    banner->detailsButton()->click();
    if (!waitUntil([&] { return banner->detailsDialog() && banner->detailsDialog()->isVisible(); },
                   5000))
        return failWith(QStringLiteral("no details window"));
    waitFor(1000);
    const QString detailsShot = outDir + QStringLiteral("/affinity-details.png");
    if (!grab(detailsShot)) return failWith(QStringLiteral("cannot write ") + detailsShot);
    banner->detailsDialog()->close();

    banner->fixButton()->click();
    if (!waitUntil([&] { return verdictShown(banner, AffinityVerdict::StickyVerified); }, 30000))
        return failWith(QStringLiteral("no sticky-verified result after the fix"));
    waitFor(1000);
    const QString fixedShot = outDir + QStringLiteral("/affinity-fixed.png");
    if (!grab(fixedShot)) return failWith(QStringLiteral("cannot write ") + fixedShot);

    window.loadGenerator()->stop();
    bool stopped = false;
    window.stopAllSites([&] { stopped = true; });
    waitUntil([&] { return stopped; }, 20000);
    std::printf("wrote %s, %s and %s\n", qPrintable(bannerShot), qPrintable(detailsShot),
                qPrintable(fixedShot));
    return agent.terminate() == 0 ? 0 : 1;
}
