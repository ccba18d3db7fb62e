#include "MainWindow.h"
#include "inventory/Inventory.h"
#include "supervisor/ProcessGroupReaper.h"
#include "util/SignalWatcher.h"

#include <QApplication>
#include <QCommandLineParser>

#include <csignal>

int main(int argc, char *argv[]) {
    // Before Qt starts threads: the sentinel that stops our workers should we die.
    corral::ProcessGroupReaper::instance();
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
                       "balancer, with a load generator in the toolbar."));
    const QCommandLineOption listenOption(
        QStringLiteral("listen"),
        QStringLiteral("Balancer address for --demo (default 127.0.0.1:8080)."),
        QStringLiteral("ADDR:PORT"), QStringLiteral("127.0.0.1:8080"));
    const QCommandLineOption loadOption(
        QStringLiteral("load"), QStringLiteral("With --demo: start generating load at once."));
    parser.addOptions({inventoryOption, demoOption, listenOption, loadOption});
    parser.process(app);

    corral::MainWindow window(corral::Inventory::resolvePath(parser.value(inventoryOption)));
    window.show();
    if (parser.isSet(demoOption) && window.startDemo(parser.value(listenOption)).ok() &&
        parser.isSet(loadOption))
        window.action(QStringLiteral("generateLoad"))->trigger();

    // Ctrl-C in the terminal or a SIGTERM closes the window, which stops every worker first.
    corral::SignalWatcher signals({SIGINT, SIGTERM});
    // The signal is the answer: no question (nobody may be at the screen to answer it).
    QObject::connect(&signals, &corral::SignalWatcher::received, &window,
                     &corral::MainWindow::quitWithoutAsking);
    return app.exec();
}
