#include "MainWindow.h"
#include "inventory/Inventory.h"

#include <QApplication>
#include <QCommandLineParser>

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
    parser.addOption(inventoryOption);
    parser.process(app);

    corral::MainWindow window(corral::Inventory::resolvePath(parser.value(inventoryOption)));
    window.show();
    return app.exec();
}
