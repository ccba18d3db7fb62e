#include "cli/Ctl.h"

#include <QCoreApplication>
#include <QTextStream>

#include <cstdio>

int main(int argc, char *argv[]) {
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("corralctl"));
    QCoreApplication::setApplicationVersion(QStringLiteral(CORRAL_VERSION));
    QTextStream out(stdout);
    QTextStream err(stderr);
    return corral::cli::run(app.arguments().mid(1), out, err);
}
