// The console and the poll at fleet size (issue 20), on a fleet of real parts on this machine
// (tests/helpers/FleetFixture: N sshd "hosts" on 127.0.1.x, M fallback demo workers each,
// min(N, 20) sites behind real nginx and HAProxy). Not run by CTest:
//
//   build/tests/bench_fleet [--hosts 5,10,25,50] [--workers 10] [--concurrency 16]
//                           [--rounds 5] [--console-seconds 8 (0: no console)] [--collapsed]
//   build/tests/bench_fleet --serve N [M]   a fleet kept up until SIGINT/SIGTERM
//
// Per N it prints: the fleet's startup; one full poll round over every host (FleetMonitor
// over an SshPool, as the console polls, in a child process of its own) with the SSH connects
// (the first round) and without them (the median of the next rounds), per host, and the
// poll's own CPU per host; the SSH connections the hosts' sshd hold for it; the most polls in
// flight at once (the cap is --concurrency); the RSS of the console (a MainWindow opened
// offscreen on the inventory, in a child process, every tree item expanded), its SSH
// connections and its UI thread's time per tick (wall and CPU); and the wall time of
// `corralctl ps --json` against the inventory (the second and third runs: the first starts
// the agent). Every host's commands run on this machine too: the round times include their
// CPU, which a real fleet spreads over its hosts.
//
// --serve prints the inventory and the XDG_CONFIG_HOME whose corral/known_hosts knows every
// host, e.g. for `XDG_CONFIG_HOME=... build/bin/corral --inventory ...` under Xvfb.

#include "MainWindow.h"
#include "fleet/FleetMonitor.h"
#include "helpers/FleetFixture.h"
#include "inventory/Inventory.h"
#include "ssh/SshHost.h"
#include "util/SignalWatcher.h"

#include <QApplication>
#include <QDeadlineTimer>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTimer>
#include <QTreeView>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>

using namespace corral;
using namespace corral::test;

namespace {

/// This thread's CPU time: what the UI thread itself spent, whatever else the machine runs
/// (wall times are stretched by the other processes of a busy 2-core machine).
qint64 threadCpuNs() {
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return qint64(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

/// This process's CPU time, every thread.
qint64 processCpuNs() {
    timespec now{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return qint64(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

/// Times every event the UI thread handles (outermost ones only), in wall and CPU time: the
/// thread's busy time, by receiver class and event type, and apart from it the FleetMonitor's
/// timer event (a tick whose round was still open emits updated() from there).
class TimedApplication : public QApplication {
public:
    using QApplication::QApplication;

    bool notify(QObject *receiver, QEvent *event) override {
        if (m_depth > 0) return QApplication::notify(receiver, event);
        // Looked at before: the receiver may be gone afterwards (a single-shot timer).
        const bool fleetTick = event->type() == QEvent::Timer && receiver->parent() &&
                               receiver->parent()->inherits("corral::FleetMonitor");
        const QByteArray what = QByteArray(receiver->metaObject()->className()) + '/' +
                                QByteArray::number(int(event->type()));
        ++m_depth;
        QElapsedTimer clock;
        clock.start();
        const qint64 cpuBefore = threadCpuNs();
        const bool handled = QApplication::notify(receiver, event);
        const qint64 cpuNs = threadCpuNs() - cpuBefore;
        const qint64 ns = clock.nsecsElapsed();
        --m_depth;
        busyNs += ns;
        busyCpuNs += cpuNs;
        busyByKind[what] += cpuNs;
        if (ns > 50'000'000) // a long one, as it happens
            std::fprintf(stderr, "UI event %s took %.1f ms (%.1f ms CPU)\n", what.constData(),
                         double(ns) / 1e6, double(cpuNs) / 1e6);
        if (fleetTick) {
            fleetTickMs.append(double(cpuNs) / 1e6);
            // As it happens: a console stuck in its ticks still tells what they took.
            std::fprintf(stderr, "fleet tick %.1f ms\n", double(ns) / 1e6);
        }
        return handled;
    }

    qint64 busyNs = 0;
    qint64 busyCpuNs = 0;
    QHash<QByteArray, qint64> busyByKind; ///< "Class/eventType" -> CPU ns
    QList<double> fleetTickMs;            ///< CPU ms

private:
    int m_depth = 0;
};

double median(QList<double> values) {
    if (values.isEmpty()) return 0;
    std::sort(values.begin(), values.end());
    return values.at(values.size() / 2);
}

/// VmRSS of a process (this one by default).
qint64 rssBytes(const QString &pid = QStringLiteral("self")) {
    QFile status(QStringLiteral("/proc/%1/status").arg(pid));
    if (!status.open(QIODevice::ReadOnly)) return 0;
    for (const QByteArray &line : status.readAll().split('\n'))
        if (line.startsWith("VmRSS:"))
            return line.mid(6).trimmed().split(' ').value(0).toLongLong() * 1024;
    return 0;
}

/// Set by SIGINT/SIGTERM: the measurements stop and the fleet is stopped (a terminal's Ctrl-C
/// reaches the sshd and balancer processes too, being in our process group; the workers, each
/// in a group of its own, only through the fixture's destructor).
bool interrupted = false;

/// Runs the event loop until `done`, the deadline or a signal; false unless `done`.
bool waitFor(const std::function<bool()> &done, int timeoutMs) {
    const QDeadlineTimer deadline(timeoutMs);
    // Wakes the loop to look at `done` and the deadline (processEvents with a time limit
    // would not wait for events: a busy loop, counted as the poll's CPU).
    QTimer wake;
    wake.start(20);
    while (!done()) {
        if (deadline.hasExpired() || interrupted) return false;
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
    }
    return true;
}

/// The environment of a program run against the fleet: its known_hosts, a throwaway HOME
/// and runtime directory, no SSH agent, no keychain, no display.
QProcessEnvironment fleetEnvironment(const FleetFixture &fleet) {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    const QString runtime = fleet.home() + QStringLiteral("/runtime");
    QDir().mkpath(runtime);
    QFile::setPermissions(runtime,
                          QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
    env.insert(QStringLiteral("HOME"), fleet.home());
    env.insert(QStringLiteral("XDG_CONFIG_HOME"), fleet.configHome());
    env.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtime);
    env.insert(QStringLiteral("CORRAL_INVENTORY"), fleet.inventoryPath());
    env.insert(QStringLiteral("DBUS_SESSION_BUS_ADDRESS"),
               QStringLiteral("unix:path=/nonexistent/corral-bench-bus"));
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    env.remove(QStringLiteral("SSH_AUTH_SOCK"));
    env.remove(QStringLiteral("DISPLAY"));
    return env;
}

struct Run {
    int exitCode = -1;
    qint64 ms = 0;
    QByteArray out;
    QByteArray err;
};

/// Runs `program args`, killed at `timeoutMs`; `meanwhile`, when given, is called once after
/// `meanwhileMs` while it runs, with its pid.
Run runProgram(const QString &program, const QStringList &args, const QProcessEnvironment &env,
               int timeoutMs, int meanwhileMs = 0,
               const std::function<void(qint64 pid)> &meanwhile = {}) {
    QProcess process;
    process.setProcessEnvironment(env);
    QElapsedTimer clock;
    clock.start();
    process.start(program, args);
    Run run;
    if (meanwhile && !process.waitForFinished(meanwhileMs)) meanwhile(process.processId());
    if (process.state() != QProcess::NotRunning &&
        !process.waitForFinished(int(std::max<qint64>(1, timeoutMs - clock.elapsed())))) {
        process.kill();
        process.waitForFinished(5000);
        run.err = "timed out\n" + process.readAllStandardError();
        return run;
    }
    run.ms = clock.elapsed();
    run.exitCode = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    run.out = process.readAllStandardOutput();
    run.err = process.readAllStandardError();
    return run;
}

struct Row {
    int hosts = 0;
    int workers = 0;
    qint64 startupMs = 0;
    qint64 firstRoundMs = 0;
    double roundMs = 0;
    int reachable = 0;
    double pollMs = 0; ///< one host's poll (its batched command's round trip), median over hosts
    double cpuPerHostMs = 0; ///< this process's CPU per host and round (connect excluded)
    int connections = 0;
    int inFlightMax = 0;
    double consoleRssMb = 0;
    double uiBusyMsPerS = 0;     ///< CPU
    double uiBusyWallMsPerS = 0; ///< wall (stretched by a busy machine)
    double uiTickMs = 0;
    double uiTickMaxMs = 0;
    double siteTickMs = 0;       ///< the window's lastTickMs() (production sites' own monitors)
    int consoleConnections = -1; ///< SSH connections the hosts see while the console runs
    QString busiest; ///< where the console's UI time went ("Class/eventType N ms/s, ...")
    QString uiTickSource;
    qint64 psMs = 0;
    QString notes;
};

/// One poll of the whole fleet as the console does it: FleetMonitor over an SshPool.
/// The child: one poll of the whole fleet as the console does it, FleetMonitor over an
/// SshPool (configs from the inventory and the environment's known_hosts, as the console
/// makes them), in a process of its own so that nothing else (the fixture's processes) shares
/// its event loop or its CPU time. Prints one JSON object, then keeps its sessions until its
/// standard input ends (the parent counts them meanwhile).
int pollChild(const QString &inventoryPath, int concurrency, int rounds) {
    auto inventory = Inventory::load(inventoryPath);
    if (!inventory) {
        std::fprintf(stderr, "bench_fleet: %s\n", qPrintable(inventory.error()));
        return 1;
    }
    SshPool pool;
    FleetMonitor monitor;
    PollOptions options;
    options.intervalMs = 1000;
    options.maxConcurrent = concurrency;
    options.timeoutMs = 10000;
    monitor.setOptions(options);
    monitor.setInventory(inventory->hosts(), inventory->sites(), [&](const Host &host) {
        return pool.host(host.name, SshConfig::fromHost(host));
    });
    QList<qint64> roundMs;
    QObject::connect(&monitor, &FleetMonitor::roundFinished, &monitor,
                     [&](qint64 ms) { roundMs.append(ms); });
    // Rounds started by hand, each once the previous one ended: every round is one whole
    // pass over the fleet.
    qint64 cpuAfterFirst = 0;
    for (int round = 0; round <= rounds; ++round) {
        if (round == 1) cpuAfterFirst = processCpuNs();
        monitor.tick();
        if (!waitFor([&] { return roundMs.size() > round; }, 120000)) break;
    }
    QJsonObject result;
    const int hosts = int(inventory->hosts().size());
    // This process's CPU (every thread: the SSH sessions' crypto, the parsing) per host and
    // round: the console's own cost, apart from the commands' on the hosts (which here all
    // run on this machine too).
    if (roundMs.size() > 1)
        result.insert(QStringLiteral("cpuPerHostMs"), double(processCpuNs() - cpuAfterFirst) / 1e6 /
                                                          double(roundMs.size() - 1) / hosts);
    result.insert(QStringLiteral("rounds"), int(roundMs.size()));
    result.insert(QStringLiteral("firstRoundMs"), double(roundMs.value(0)));
    QList<double> later;
    for (int i = 1; i < roundMs.size(); ++i)
        later.append(double(roundMs.at(i)));
    result.insert(QStringLiteral("roundMs"), median(later));
    result.insert(QStringLiteral("inFlightMax"), monitor.maxSessionsInFlight());
    // The snapshot of a tick: how many hosts answered, and in how long.
    bool updated = false;
    QObject::connect(&monitor, &FleetMonitor::updated, &monitor,
                     [&](const FleetSnapshot &) { updated = true; });
    monitor.start();
    waitFor([&] { return updated; }, 15000);
    monitor.stop();
    QList<double> polls;
    int reachable = 0;
    for (const FleetHostRow &host : monitor.snapshot().hosts) {
        if (host.local || !host.reachable) continue;
        ++reachable;
        polls.append(double(host.pollMs));
    }
    result.insert(QStringLiteral("reachable"), reachable);
    result.insert(QStringLiteral("pollMs"), median(polls));
    std::printf("%s\n", QJsonDocument(result).toJson(QJsonDocument::Compact).constData());
    std::fflush(stdout);
    while (std::getchar() != EOF) {
    }
    return 0;
}

/// The poll in a child process: `bench_fleet --poll INVENTORY CONCURRENCY ROUNDS`.
void measurePoll(FleetFixture &fleet, int concurrency, int rounds, Row &row) {
    QProcess child;
    child.setProcessEnvironment(fleetEnvironment(fleet));
    child.start(QCoreApplication::applicationFilePath(),
                {QStringLiteral("--poll"), fleet.inventoryPath(), QString::number(concurrency),
                 QString::number(rounds)});
    QByteArray out;
    const QDeadlineTimer deadline(std::chrono::minutes(5));
    while (!out.contains('\n') && !deadline.hasExpired() && !interrupted &&
           child.state() != QProcess::NotRunning) {
        child.waitForReadyRead(200);
        out += child.readAllStandardOutput();
    }
    // Its sessions are still open: the hosts' sshd count them.
    for (int h = 0; h < fleet.hostCount(); ++h)
        row.connections += int(fleet.server(h).connectionPids().size());
    child.closeWriteChannel();
    if (!child.waitForFinished(30000)) {
        child.kill();
        child.waitForFinished(5000);
    }
    const QJsonObject result = QJsonDocument::fromJson(out.trimmed()).object();
    if (result.isEmpty()) {
        row.notes += QStringLiteral("the poll failed: %1; ")
                         .arg(QString::fromUtf8(child.readAllStandardError()).trimmed().right(200));
        return;
    }
    row.firstRoundMs = qint64(result.value(QStringLiteral("firstRoundMs")).toDouble());
    row.roundMs = result.value(QStringLiteral("roundMs")).toDouble();
    row.inFlightMax = result.value(QStringLiteral("inFlightMax")).toInt();
    row.reachable = result.value(QStringLiteral("reachable")).toInt();
    row.pollMs = result.value(QStringLiteral("pollMs")).toDouble();
    row.cpuPerHostMs = result.value(QStringLiteral("cpuPerHostMs")).toDouble();
    if (result.value(QStringLiteral("rounds")).toInt() < rounds + 1)
        row.notes += QStringLiteral("only %1 rounds finished; ")
                         .arg(result.value(QStringLiteral("rounds")).toInt());
}

/// The console in a child process (its RSS is its own):
/// `bench_fleet --console INVENTORY SECONDS CONCURRENCY`.
void measureConsole(FleetFixture &fleet, int seconds, int concurrency, bool collapsed, Row &row) {
    QJsonObject result;
    // A second try when the first crashed (the console is reported as it failed otherwise);
    // one stuck until the deadline is not tried again.
    bool stuck = false;
    double stuckRssMb = 0;
    for (int attempt = 0; attempt < 2 && result.isEmpty() && !stuck; ++attempt) {
        const Run run = runProgram(
            QCoreApplication::applicationFilePath(),
            {QStringLiteral("--console"), fleet.inventoryPath(), QString::number(seconds),
             QString::number(concurrency),
             collapsed ? QStringLiteral("collapsed") : QStringLiteral("expanded")},
            fleetEnvironment(fleet), (seconds + 30) * 1000, (seconds + 1) * 1000, [&](qint64 pid) {
                // Its RSS now too, for a console that never gets to report it.
                stuckRssMb = double(rssBytes(QString::number(pid))) / (1024.0 * 1024.0);
                row.consoleConnections = 0;
                for (int h = 0; h < fleet.hostCount(); ++h)
                    row.consoleConnections += int(fleet.server(h).connectionPids().size());
            });
        stuck = run.err.startsWith("timed out");
        // Measured even when it crashed as it closed (noted below).
        result = QJsonDocument::fromJson(run.out.mid(run.out.lastIndexOf("{"))).object();
        if (!result.isEmpty() && run.exitCode != 0)
            row.notes += QStringLiteral("the console crashed as it closed (exit code %1); ")
                             .arg(run.exitCode);
        if (!result.isEmpty()) break;
        // What the ticks took meanwhile (the child prints each one).
        QList<double> ticks;
        for (const QByteArray &line : run.err.split('\n'))
            if (line.startsWith("fleet tick "))
                ticks.append(line.mid(11).split(' ').value(0).toDouble());
        row.notes +=
            QStringLiteral("console failed (exit code %1, %2): %3 fleet ticks seen, "
                           "median %4 ms, max %5 ms; ")
                .arg(run.exitCode)
                .arg(QString::fromUtf8(run.err.left(run.err.indexOf('\n'))))
                .arg(ticks.size())
                .arg(median(ticks), 0, 'f', 1)
                .arg(ticks.isEmpty() ? 0.0 : *std::max_element(ticks.cbegin(), ticks.cend()), 0,
                     'f', 1);
    }
    if (result.isEmpty()) {
        row.consoleRssMb = stuckRssMb; // as it was, stuck
        return;
    }
    row.consoleRssMb = result.value(QStringLiteral("rssMb")).toDouble();
    row.uiBusyMsPerS = result.value(QStringLiteral("busyCpuMsPerS")).toDouble();
    row.uiBusyWallMsPerS = result.value(QStringLiteral("busyMsPerS")).toDouble();
    row.uiTickMs = result.value(QStringLiteral("tickMs")).toDouble();
    row.uiTickMaxMs = result.value(QStringLiteral("tickMaxMs")).toDouble();
    row.uiTickSource = result.value(QStringLiteral("tickSource")).toString();
    row.siteTickMs = result.value(QStringLiteral("siteTickMs")).toDouble();
    row.busiest = result.value(QStringLiteral("busiest")).toString();
}

void measurePs(FleetFixture &fleet, Row &row) {
    const QProcessEnvironment env = fleetEnvironment(fleet);
    const QString corralctl = QStringLiteral(CORRALCTL_PATH);
    QList<double> warm;
    for (int i = 0; i < 3; ++i) {
        const Run run =
            runProgram(corralctl, {QStringLiteral("ps"), QStringLiteral("--json")}, env, 60000);
        if (run.exitCode != 0) {
            row.notes +=
                QStringLiteral("ps failed: %1; ").arg(QString::fromUtf8(run.err).left(200));
            break;
        }
        if (i > 0) warm.append(double(run.ms));
    }
    row.psMs = qint64(median(warm));
    // ps started the fleet's own agent (its runtime directory is the fleet's): stop it.
    runProgram(corralctl, {QStringLiteral("agent"), QStringLiteral("stop")}, env, 30000);
}

/// The console's polling cap, where the window has one (Options::poll).
template <typename WindowOptions> void setPollCap(WindowOptions &options, int cap) {
    if constexpr (requires { options.poll.maxConcurrent; }) options.poll.maxConcurrent = cap;
}

template <typename Window> double fleetTickOf(const Window &window) {
    if constexpr (requires { window.lastFleetTickMs(); })
        return window.lastFleetTickMs();
    else
        return -1;
}

/// The child: a console on the inventory for `seconds`, every tree item expanded; prints
/// one JSON object.
int console(TimedApplication &app, const QString &inventory, int seconds, int concurrency,
            bool expanded) {
    MainWindow::Options options;
    options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
    setPollCap(options, concurrency);
    MainWindow window(inventory, options);
    window.resize(1280, 800);
    window.show();
    QList<double> ticks;      // lastTickMs() per change
    QList<double> fleetTicks; // lastFleetTickMs() per change, when the window has it
    double lastTick = -1, lastFleet = -1;
    // Every item expanded, again whenever the tree gets rows (not on a timer: expandAll()
    // would be counted as the UI's work).
    QTreeView *tree = window.hostTree();
    QTimer expand;
    expand.setSingleShot(true);
    if (expanded) {
        QObject::connect(&expand, &QTimer::timeout, tree, &QTreeView::expandAll);
        const auto expandSoon = [&expand] { expand.start(0); };
        QObject::connect(tree->model(), &QAbstractItemModel::rowsInserted, &expand, expandSoon);
        QObject::connect(tree->model(), &QAbstractItemModel::modelReset, &expand, expandSoon);
        QObject::connect(tree->model(), &QAbstractItemModel::layoutChanged, &expand, expandSoon);
        tree->expandAll();
    }
    QTimer sampler;
    QObject::connect(&sampler, &QTimer::timeout, &window, [&] {
        if (window.lastTickMs() != lastTick) ticks.append(lastTick = window.lastTickMs());
        if (const double fleet = fleetTickOf(window); fleet >= 0 && fleet != lastFleet)
            fleetTicks.append(lastFleet = fleet);
    });
    sampler.start(100);
    // Two seconds to connect and fill the tree, then the measured window.
    QTimer::singleShot(2000, &window, [&] {
        app.busyNs = 0;
        app.busyCpuNs = 0;
        app.busyByKind.clear();
        app.fleetTickMs.clear();
        ticks.clear();
        fleetTicks.clear();
    });
    QTimer::singleShot((seconds + 2) * 1000, &app, &QCoreApplication::quit);
    QApplication::exec();
    QJsonObject result;
    result.insert(QStringLiteral("rssMb"), double(rssBytes()) / (1024.0 * 1024.0));
    result.insert(QStringLiteral("busyMsPerS"), double(app.busyNs) / 1e6 / seconds);
    result.insert(QStringLiteral("busyCpuMsPerS"), double(app.busyCpuNs) / 1e6 / seconds);
    // The fleet tick as the window measures it, else as timed here, else the site ticks.
    QList<double> measured = fleetTicks;
    QString source = QStringLiteral("lastFleetTickMs");
    if (measured.isEmpty()) {
        measured = app.fleetTickMs;
        source = QStringLiteral("FleetMonitor timer event");
    }
    if (measured.isEmpty()) {
        measured = ticks;
        source = QStringLiteral("lastTickMs");
    }
    result.insert(QStringLiteral("tickMs"), median(measured));
    result.insert(QStringLiteral("tickMaxMs"),
                  measured.isEmpty() ? 0.0 : *std::max_element(measured.cbegin(), measured.cend()));
    result.insert(QStringLiteral("tickSource"), source);
    result.insert(QStringLiteral("ticks"), int(measured.size()));
    result.insert(QStringLiteral("siteTickMs"), median(ticks));
    QList<std::pair<qint64, QByteArray>> kinds;
    for (auto it = app.busyByKind.cbegin(); it != app.busyByKind.cend(); ++it)
        kinds.append({it.value(), it.key()});
    std::sort(kinds.begin(), kinds.end(), std::greater<>());
    QStringList busiest;
    for (qsizetype i = 0; i < std::min<qsizetype>(3, kinds.size()); ++i)
        busiest.append(QStringLiteral("%1 %2 ms/s")
                           .arg(QString::fromLatin1(kinds.at(i).second))
                           .arg(double(kinds.at(i).first) / 1e6 / seconds, 0, 'f', 1));
    result.insert(QStringLiteral("busiest"), busiest.join(QStringLiteral(", ")));
    // Printed before the window closes: what was measured stands whatever closing does.
    std::printf("%s\n", QJsonDocument(result).toJson(QJsonDocument::Compact).constData());
    std::fflush(stdout);
    window.quitWithoutAsking();
    return 0;
}

int serve(int hosts, int workers) {
    // Before the fleet, so that it is still there while the fleet stops: a second signal
    // (GNU timeout sends one to the child, then one to the group) must not end the process
    // before every worker is stopped.
    SignalWatcher signals({SIGINT, SIGTERM});
    QObject::connect(&signals, &SignalWatcher::received, qApp, [] { qApp->quit(); });
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
    std::printf("fleet: %d hosts, %d workers, %d sites up in %lld ms; %d processes, %.0f MB "
                "resident\n"
                "inventory: %s\nXDG_CONFIG_HOME=%s\n"
                "a console on it:\n  HOME=%s XDG_CONFIG_HOME=%s %s --inventory %s\n"
                "(Ctrl-C or SIGTERM stops everything)\n",
                fleet.hostCount(), fleet.workerCount(), fleet.siteCount(),
                qint64(fleet.startupMs()), fleet.processCount(),
                double(fleet.residentBytes()) / (1024.0 * 1024.0),
                qPrintable(fleet.inventoryPath()), qPrintable(fleet.configHome()),
                qPrintable(fleet.home()), qPrintable(fleet.configHome()),
                qPrintable(QStringLiteral(CORRAL_PATH)), qPrintable(fleet.inventoryPath()));
    std::fflush(stdout);
    QApplication::exec();
    std::printf("stopping the fleet\n");
    std::fflush(stdout);
    return 0;
}

int usage() {
    std::fprintf(stderr, "usage: bench_fleet [--hosts 5,10,25,50] [--workers 10] "
                         "[--concurrency 16] [--rounds 5] [--console-seconds 8, 0: none]\n"
                         "                   [--collapsed]\n"
                         "       bench_fleet --serve N [M]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    TimedApplication app(argc, argv);
    const QStringList args = app.arguments().mid(1);
    if (args.value(0) == QLatin1String("--serve")) {
        const int hosts = args.value(1).toInt();
        const int workers = args.size() > 2 ? args.value(2).toInt() : 10;
        if (hosts < 1 || workers < 1) return usage();
        return serve(hosts, workers);
    }
    if (args.value(0) == QLatin1String("--poll"))
        return pollChild(args.value(1), std::max(1, args.value(2).toInt()),
                         std::max(1, args.value(3).toInt()));
    if (args.value(0) == QLatin1String("--console"))
        return console(app, args.value(1), std::max(1, args.value(2).toInt()),
                       std::max(1, args.value(3).toInt()),
                       args.value(4) != QLatin1String("collapsed"));

    SignalWatcher signals({SIGINT, SIGTERM});
    QObject::connect(&signals, &SignalWatcher::received, &app, [] { interrupted = true; });
    QList<int> sizes{5, 10, 25, 50};
    int workers = 10, concurrency = 16, rounds = 5, consoleSeconds = 8;
    bool collapsed = false;
    for (int i = 0; i < args.size(); ++i) {
        const QString value = args.value(i + 1);
        bool ok = true;
        if (args[i] == QLatin1String("--collapsed")) { // the tree as it opens, not expanded
            collapsed = true;
            continue;
        }
        if (args[i] == QLatin1String("--hosts")) {
            sizes.clear();
            for (const QString &size : value.split(u','))
                if (const int n = size.toInt(&ok); ok && n > 0)
                    sizes.append(n);
                else
                    return usage();
        } else if (args[i] == QLatin1String("--workers")) {
            workers = value.toInt(&ok);
        } else if (args[i] == QLatin1String("--concurrency")) {
            concurrency = value.toInt(&ok);
        } else if (args[i] == QLatin1String("--rounds")) {
            rounds = value.toInt(&ok);
        } else if (args[i] == QLatin1String("--console-seconds")) {
            consoleSeconds = value.toInt(&ok);
        } else {
            return usage();
        }
        // --console-seconds 0 leaves the console out; --hosts is a list, checked above.
        const int least = args[i] == QLatin1String("--console-seconds") ? 0 : 1;
        if (!ok || (args[i] != QLatin1String("--hosts") && value.toInt() < least)) return usage();
        ++i;
    }

    std::printf("bench_fleet: M = %d workers per host, sites = min(N, 20), polling cap %d, "
                "%d rounds after the first (median), the console's tree %s\n",
                workers, concurrency, rounds, collapsed ? "collapsed" : "expanded");
    std::fflush(stdout);
    QList<Row> rows;
    for (int hosts : std::as_const(sizes)) {
        if (interrupted) break;
        Row row;
        row.hosts = hosts;
        row.workers = hosts * workers;
        FleetOptions options;
        options.hosts = hosts;
        options.workersPerHost = workers;
        options.demoWorker = QStringLiteral(DEMO_WORKER_PATH);
        options.verbose = true;
        FleetFixture fleet(options);
        QString error;
        if (!fleet.start(&error)) {
            std::printf("N = %d: the fleet did not start: %s\n", hosts, qPrintable(error));
            std::fflush(stdout);
            continue;
        }
        row.startupMs = fleet.startupMs();
        std::printf("N = %d: %d processes, %.0f MB resident (the fleet itself)\n", hosts,
                    fleet.processCount(), double(fleet.residentBytes()) / (1024.0 * 1024.0));
        std::fflush(stdout);
        measurePoll(fleet, concurrency, rounds, row);
        if (!interrupted && consoleSeconds > 0)
            measureConsole(fleet, consoleSeconds, concurrency, collapsed, row);
        if (!interrupted) measurePs(fleet, row);
        rows.append(row);
        std::printf("N = %d done%s%s\n", hosts, row.notes.isEmpty() ? "" : ": ",
                    qPrintable(row.notes));
        std::fflush(stdout);
    }

    std::printf("\n%5s %7s %9s %11s %11s %9s %7s %9s %8s %9s %10s %9s\n", "hosts", "workers",
                "startup", "round+conn", "round", "per host", "ssh", "in flight", "RSS", "UI tick",
                "UI CPU", "ps --json");
    std::printf("%5s %7s %9s %11s %11s %9s %7s %9s %8s %9s %10s %9s\n", "", "", "s", "ms", "ms",
                "ms", "conns", "max/cap", "MB", "ms", "ms/s", "ms");
    for (const Row &row : std::as_const(rows))
        std::printf("%5d %7d %9.1f %11lld %11.0f %9.1f %7d %6d/%-2d %8.0f %9.1f %10.1f %9lld\n",
                    row.hosts, row.workers, double(row.startupMs) / 1000.0,
                    qint64(row.firstRoundMs), row.roundMs, row.roundMs / row.hosts, row.connections,
                    row.inFlightMax, concurrency, row.consoleRssMb, row.uiTickMs, row.uiBusyMsPerS,
                    qint64(row.psMs));
    for (const Row &row : std::as_const(rows))
        std::printf("N = %d: %d of %d hosts reachable, one host's poll %.0f ms (median), the "
                    "poll's own CPU "
                    "%.2f ms per host and round; the console holds %d SSH connections; UI tick "
                    "from %s (max %.1f ms); lastTickMs "
                    "%.1f ms; UI busy %.0f ms/s wall; UI CPU by receiver/event: %s%s%s\n",
                    row.hosts, row.reachable, row.hosts, row.pollMs, row.cpuPerHostMs,
                    row.consoleConnections, qPrintable(row.uiTickSource), row.uiTickMaxMs,
                    row.siteTickMs, row.uiBusyWallMsPerS, qPrintable(row.busiest),
                    row.notes.isEmpty() ? "" : "; ", qPrintable(row.notes));
    return 0;
}
