#include "MainWindow.h"
#include "inventory/Inventory.h"
#include "util/SignalWatcher.h"

#include <QAction>
#include <QApplication>
#include <QCommandLineParser>

#include <csignal>
#include <cstdio>

int main(int argc, char *argv[]) {
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("corral"));
    QApplication::setOrganizationName(QStringLiteral("corral"));
    QApplication::setApplicationVersion(QStringLiteral(CORRAL_VERSION));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Corral operations console"));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption inventoryOption(QStringLiteral("inventory"),
                                             QStringLiteral("Inventory file to use."),
                                             QStringLiteral("PATH"));
    const QCommandLineOption demoOption(
        QStringLiteral("demo"),
        QStringLiteral("Start a demo site: 3 demo workers behind the embedded "
                       "balancer, with a load generator in the toolbar. It runs in the "
                       "Corral agent for this session only: quitting stops it."));
    const QCommandLineOption listenOption(
        QStringLiteral("listen"),
        QStringLiteral("Balancer address for --demo (default 127.0.0.1:8080)."),
        QStringLiteral("ADDR:PORT"), QStringLiteral("127.0.0.1:8080"));
    const QCommandLineOption loadOption(
        QStringLiteral("load"), QStringLiteral("With --demo: start generating load at once."));
    const corral::PollOptions defaultPoll;
    const QCommandLineOption pollIntervalOption(
        QStringLiteral("poll-interval"),
        QStringLiteral("How often every host and production site is polled, in milliseconds "
                       "(default %1).")
            .arg(defaultPoll.intervalMs),
        QStringLiteral("MS"), QString::number(defaultPoll.intervalMs));
    const QCommandLineOption maxSessionsOption(
        QStringLiteral("max-ssh-sessions"),
        QStringLiteral("Polls (SSH commands) running at once; the other hosts wait their turn "
                       "(default %1).")
            .arg(defaultPoll.maxConcurrent),
        QStringLiteral("N"), QString::number(defaultPoll.maxConcurrent));
    parser.addOptions({inventoryOption, demoOption, listenOption, loadOption, pollIntervalOption,
                       maxSessionsOption});
    parser.process(app);
    bool intervalOk = false;
    bool sessionsOk = false;
    const int pollInterval = parser.value(pollIntervalOption).toInt(&intervalOk);
    const int maxSessions = parser.value(maxSessionsOption).toInt(&sessionsOk);
    // Named with the value given, so a typo in a desktop file or unit is found at once.
    if (!intervalOk || pollInterval < 100) {
        std::fprintf(stderr,
                     "corral: --poll-interval: '%s' is not a number of milliseconds >= 100\n",
                     qPrintable(parser.value(pollIntervalOption)));
        return 2;
    }
    if (!sessionsOk || maxSessions < 1) {
        std::fprintf(stderr, "corral: --max-ssh-sessions: '%s' is not a whole number >= 1\n",
                     qPrintable(parser.value(maxSessionsOption)));
        return 2;
    }

    corral::MainWindow::Options options;
    options.demoWorkerPath =
        QCoreApplication::applicationDirPath() + QStringLiteral("/corral-demo-worker");
    // The agent owns the local sites: started now when none runs, so the sites it ran
    // before come back and are shown.
    options.autostartAgent = true;
    // One interval for all remote polling: the fleet's and the production site on view.
    options.poll.intervalMs = pollInterval;
    options.poll.maxConcurrent = maxSessions;
    options.tickIntervalMs = pollInterval;
    corral::MainWindow window(corral::Inventory::resolvePath(parser.value(inventoryOption)),
                              options);
    window.show();
    if (parser.isSet(demoOption) && window.startDemo(parser.value(listenOption)).ok() &&
        parser.isSet(loadOption)) {
        // Load once the demo runs (the agent answers when every worker is ready).
        const auto startLoad = [&window] {
            if (QAction *load = window.action(QStringLiteral("generateLoad"));
                load->isEnabled() && !load->isChecked())
                load->trigger();
        };
        if (window.currentSite() &&
            window.currentSite()->state == corral::agent::SiteState::Running)
            startLoad();
        else
            QObject::connect(
                &window, &corral::MainWindow::operationFinished, &window,
                [startLoad](const QString &site, const QString &operation, const QString &error) {
                    if (site == QLatin1String("demo") && operation == QLatin1String("launch") &&
                        error.isEmpty())
                        startLoad();
                });
    }

    // Ctrl-C in the terminal or a SIGTERM closes the window; the agent's sites keep running,
    // those of this session (--demo) stop with the window's connection.
    corral::SignalWatcher signals({SIGINT, SIGTERM});
    // The signal is the answer: no question (nobody may be at the screen to answer it).
    QObject::connect(&signals, &corral::SignalWatcher::received, &window,
                     &corral::MainWindow::quitWithoutAsking);
    return app.exec();
}
