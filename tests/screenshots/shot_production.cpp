// Screenshots of the console on a production site, from a real window (run under Xvfb by
// resources/screenshots/capture.sh): a real nginx in front of three demo workers (weights
// 1, 2, 1), reached through a real sshd on 127.0.0.9, with requests sent through nginx while
// the console watches. Writes OUTDIR/console-production.png and OUTDIR/apply-dialog.png.
//   build/tests/shot_production OUTDIR [SECONDS]

#include "ApplyConfigDialog.h"
#include "BalancerFixture.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QAction>
#include <QApplication>
#include <QElapsedTimer>
#include <QScopeGuard>
#include <QScreen>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QThread>
#include <QTreeView>

#include <atomic>
#include <cstdio>

using namespace corral;
using namespace corral::test;

static int failWith(const QString &message) {
    std::fprintf(stderr, "shot_production: %s\n", qPrintable(message));
    return 1;
}

static void waitFor(int ms) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < ms)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
}

static bool grab(const QString &path) {
    // The whole Xvfb screen, as the X server shows it (the same as `import -window root`).
    return QGuiApplication::primaryScreen()->grabWindow(0).save(path);
}

int main(int argc, char **argv) {
    QApplication app(argc, argv);
    if (argc < 2) return failWith(QStringLiteral("usage: shot_production OUTDIR [SECONDS]"));
    const QString outDir = QString::fromLocal8Bit(argv[1]);
    const int seconds = argc > 2 ? QString::fromLocal8Bit(argv[2]).toInt() : 20;

    QTemporaryDir home;
    qputenv("HOME", home.path().toUtf8());
    qputenv("XDG_CONFIG_HOME", home.filePath(QStringLiteral("config")).toUtf8());
    qputenv("XDG_STATE_HOME", home.filePath(QStringLiteral("state")).toUtf8());
    qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-shot-bus");

    QString error;
    SshServer server(QStringLiteral("127.0.0.9"));
    if (!server.start(&error)) return failWith(error);
    NginxInstance nginx(QStringLiteral("shop"));
    if (!nginx.start(&error)) return failWith(error);

    Site site;
    site.name = QStringLiteral("shop");
    site.command = QStringLiteral(DEMO_WORKER_PATH);
    site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
    site.healthPath = QStringLiteral("/health");
    site.workers = 0;
    site.serverNames = {QStringLiteral("shop.example.com")};
    site.basePort = workerBasePort();
    site.balancer = nginx.balancer(QStringLiteral("web1"));
    const Host host = server.inventoryHost(QStringLiteral("web1"));

    SshConfig trust = SshConfig::fromHost(host);
    trust.acceptNew = true;
    SshSession session(trust);
    if (auto connected = session.connect(); !connected) return failWith(connected.error());
    // Three workers started by Corral on the "remote" host, so the console samples them too.
    auto ports = RemoteWorkers::allocatePorts(session, site, 3);
    if (!ports) return failWith(ports.error());
    const auto stopWorkers = qScopeGuard([&] {
        for (quint16 port : ports.value())
            (void)RemoteWorkers::stop(session, site.name, port);
    });
    for (quint16 port : ports.value()) {
        if (auto started = RemoteWorkers::start(session, site, port); !started)
            return failWith(started.error());
        if (auto healthy = RemoteWorkers::waitHealthy(session, site, port, 15000); !healthy)
            return failWith(healthy.error());
        site.backends.append(
            Backend{QStringLiteral("127.0.0.1"), port, site.backends.size() == 1 ? 2 : 1});
    }
    ConfigApplier applier(session);
    const ApplyReport applied =
        applier.apply(site, RemoteBalancer::fromSite(*site.balancer).value(), false);
    if (!applied.ok()) return failWith(applied.error);
    const QString inventory = home.filePath(QStringLiteral("inventory.json"));
    if (auto written = writeInventory(inventory, host, site); !written)
        return failWith(written.error());

    // Traffic through nginx for as long as the shot takes, at a changing rate.
    std::atomic<bool> stop{false};
    QThread *load = QThread::create([&] {
        QElapsedTimer clock;
        clock.start();
        while (!stop) {
            httpGet(nginx.httpPort(), "/work?ms=2");
            const int phase = int(clock.elapsed() / 4000) % 3;
            QThread::msleep(phase == 0 ? 8 : phase == 1 ? 4 : 12);
        }
    });
    load->start();

    MainWindow::Options options;
    options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
    MainWindow window(inventory, options);
    window.resize(1280, 800);
    window.show();
    auto *model = qobject_cast<InventoryTreeFilter *>(window.hostTree()->model());
    window.hostTree()->setCurrentIndex(model->siteIndex(site.name));
    waitFor(seconds * 1000);
    const bool shotConsole = grab(outDir + QStringLiteral("/console-production.png"));

    // A pending change (worker 3 weighted up), shown as the apply dialog's diff.
    Site changed = site;
    changed.backends[2].weight = 3;
    if (auto written = writeInventory(inventory, host, changed); !written)
        return failWith(written.error());
    window.action(QStringLiteral("applyBalancer"))->trigger();
    auto *dialog = window.findChild<ApplyConfigDialog *>();
    bool shotDialog = false;
    if (dialog) {
        QSignalSpy previewed(dialog, &ApplyConfigDialog::previewed);
        previewed.wait(30000);
        waitFor(500);
        shotDialog = grab(outDir + QStringLiteral("/apply-dialog.png"));
    }
    stop = true;
    load->wait();
    delete load;
    if (!shotConsole || !shotDialog) return failWith(QStringLiteral("could not save a screenshot"));
    std::printf("wrote %s/console-production.png and %s/apply-dialog.png\n", qPrintable(outDir),
                qPrintable(outDir));
    return 0;
}
