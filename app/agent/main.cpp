#include "agent/AgentDaemon.h"

#include <QCoreApplication>

int main(int argc, char *argv[]) {
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("corral-agent"));
    QCoreApplication::setApplicationVersion(QStringLiteral(CORRAL_VERSION));
    return corral::agent::runAgent(app.arguments().mid(1));
}
