// The console and the poll at fleet size (issue 20), on a fleet of real parts on this machine
// (tests/helpers/FleetFixture: N sshd "hosts" on 127.0.1.x, M fallback demo workers each,
// sites behind real nginx and HAProxy). Not run by CTest:
//
//   build/tests/bench_fleet [--hosts 5,10,25,50] [--workers 10] [--concurrency 16]
//   build/tests/bench_fleet --serve N [M]   a fleet kept up until SIGINT/SIGTERM
//
// --serve prints the inventory and the XDG_CONFIG_HOME whose corral/known_hosts knows every
// host, e.g. for `XDG_CONFIG_HOME=... build/bin/corral --inventory ...` under Xvfb.

#include "helpers/FleetFixture.h"
#include "util/SignalWatcher.h"

#include <QApplication>
#include <QTextStream>

#include <csignal>
#include <cstdio>

using namespace corral;
using namespace corral::test;

namespace {

int serve(int hosts, int workers) {
    FleetOptions options;
    options.hosts = hosts;
    options.workersPerHost = workers;
    options.demoWorker = QStringLiteral(DEMO_WORKER_PATH);
    options.verbose = true;
    FleetFixture fleet(options);
    QString error;
    if (!fleet.start(&error)) {
        std::fprintf(stderr, "bench_fleet: %s\n", qPrintable(error));
        return 1;
    }
    std::printf("fleet: %d hosts, %d workers, %d sites up in %lld ms\n"
                "inventory: %s\nXDG_CONFIG_HOME=%s\n"
                "(Ctrl-C or SIGTERM stops everything)\n",
                fleet.hostCount(), fleet.workerCount(), fleet.siteCount(),
                qint64(fleet.startupMs()), qPrintable(fleet.inventoryPath()),
                qPrintable(fleet.configHome()));
    std::fflush(stdout);
    SignalWatcher signals({SIGINT, SIGTERM});
    QObject::connect(&signals, &SignalWatcher::received, qApp, [] { qApp->quit(); });
    QApplication::exec();
    std::printf("stopping the fleet\n");
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    qputenv("QT_QPA_PLATFORM", qgetenv("QT_QPA_PLATFORM").isEmpty() ? QByteArray("offscreen")
                                                                    : qgetenv("QT_QPA_PLATFORM"));
    QApplication app(argc, argv);
    const QStringList args = app.arguments().mid(1);
    if (args.value(0) == QLatin1String("--serve")) {
        const int hosts = args.value(1).toInt();
        const int workers = args.size() > 2 ? args.value(2).toInt() : 10;
        if (hosts < 1 || workers < 1) {
            std::fprintf(stderr, "usage: bench_fleet --serve N [M]\n");
            return 2;
        }
        return serve(hosts, workers);
    }
    return 0;
}
