// Screenshots of the console at fleet size, from a real window (run under Xvfb by
// resources/screenshots/capture.sh), on fleets of real parts (tests/helpers/FleetFixture:
// sshd hosts on 127.0.1.x, fallback demo workers, nginx and HAProxy balancers):
//  - fleet-overview.png: 12 hosts, 6 sites, one host's sshd killed, requests through every
//    site; nothing selected in the tree, so the centre shows the fleet overview;
//  - fleet-site-100.png: one site of 100 backends on 10 hosts with requests through it,
//    selected: the distribution per host and the CPU heat map.
//   build/tests/shot_fleet OUTDIR [SECONDS]

#include "FleetFixture.h"
#include "InventoryTreeFilter.h"
#include "MainWindow.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QScreen>
#include <QTemporaryDir>
#include <QThread>
#include <QTreeView>

#include <atomic>
#include <cstdio>
#include <functional>

using namespace corral;
using namespace corral::test;

namespace {

int failWith(const QString &message) {
    std::fprintf(stderr, "shot_fleet: %s\n", qPrintable(message));
    return 1;
}

void waitFor(int ms) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < ms)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
}

bool grab(const QString &path) {
    // The whole Xvfb screen, as the X server shows it (the same as `import -window root`).
    return QGuiApplication::primaryScreen()->grabWindow(0).save(path);
}

/// Requests through the fleet's balancers on a thread of its own until destroyed: site s
/// gets s+1 requests per round, so the sites differ.
class Traffic {
public:
    explicit Traffic(const FleetFixture &fleet)
        : m_thread(QThread::create([this, &fleet] {
            while (!m_stop)
                for (int site = 0; site < fleet.siteCount() && !m_stop; ++site)
                    for (int i = 0; i <= site % 4; ++i)
                        (void)fleet.get(site, "/work?ms=1");
        })) {
        m_thread->start();
    }
    ~Traffic() {
        m_stop = true;
        m_thread->wait();
        delete m_thread;
    }

private:
    std::atomic<bool> m_stop{false};
    QThread *m_thread;
};

/// Starts a fleet, opens the console on its inventory, lets `prepare` select what is shown,
/// waits `seconds` with traffic running and saves the screen to `path`.
int shoot(FleetOptions options, const QString &path, int seconds,
          const std::function<void(FleetFixture &, MainWindow &)> &prepare) {
    options.demoWorker = QStringLiteral(DEMO_WORKER_PATH);
    FleetFixture fleet(options);
    QString error;
    if (!fleet.start(&error)) return failWith(error);
    // SshConfig::fromHost() reads the fleet's known_hosts from here.
    qputenv("XDG_CONFIG_HOME", fleet.configHome().toUtf8());
    Traffic traffic(fleet);
    MainWindow::Options windowOptions;
    windowOptions.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
    MainWindow window(fleet.inventoryPath(), windowOptions);
    window.resize(1280, 800);
    window.show();
    prepare(fleet, window);
    waitFor(seconds * 1000);
    const bool saved = grab(path);
    window.quitWithoutAsking();
    if (!saved) return failWith(QStringLiteral("could not save %1").arg(path));
    std::printf("wrote %s\n", qPrintable(path));
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    QApplication app(argc, argv);
    if (argc < 2) return failWith(QStringLiteral("usage: shot_fleet OUTDIR [SECONDS]"));
    const QString outDir = QString::fromLocal8Bit(argv[1]);
    const int seconds = argc > 2 ? QString::fromLocal8Bit(argv[2]).toInt() : 15;

    QTemporaryDir home;
    qputenv("XDG_STATE_HOME", home.filePath(QStringLiteral("state")).toUtf8());
    qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-shot-bus");

    FleetOptions overview;
    overview.hosts = 12;
    overview.workersPerHost = 3;
    overview.sites = 6;
    if (int failed = shoot(overview, outDir + QStringLiteral("/fleet-overview.png"), seconds,
                           [](FleetFixture &fleet, MainWindow &window) {
                               // A dead host (not a balancer's): shown unreachable, first.
                               fleet.killHost(fleet.hostCount() - 1);
                               window.hostTree()->clearSelection();
                               window.hostTree()->setCurrentIndex(QModelIndex());
                           }))
        return failed;

    FleetOptions large;
    large.hosts = 10;
    large.workersPerHost = 10;
    large.sites = 1;
    return shoot(large, outDir + QStringLiteral("/fleet-site-100.png"), seconds,
                 [](FleetFixture &fleet, MainWindow &window) {
                     auto *tree = static_cast<InventoryTreeFilter *>(window.hostTree()->model());
                     window.hostTree()->setCurrentIndex(
                         tree->siteIndex(fleet.sites().constFirst().name));
                 });
}
