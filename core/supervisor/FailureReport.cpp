#include "supervisor/FailureReport.h"

#include "supervisor/RotatingLog.h"
#include "supervisor/WorkerProcess.h"

namespace corral {

QString WorkerFailureReport::toText() const {
    QString text = QStringLiteral("worker %1 of %2 failed: %3").arg(port).arg(site, cause);
    if (lastLines.isEmpty()) {
        text += QStringLiteral("\n  it printed nothing");
    } else {
        text += QStringLiteral("\n  last %1 line%2 of its output:")
                    .arg(lastLines.size())
                    .arg(lastLines.size() == 1 ? QString() : QStringLiteral("s"));
        for (const QString &line : lastLines)
            text += QStringLiteral("\n    ") + line;
    }
    text += QStringLiteral("\n  log: ") + logPath;
    return text;
}

WorkerFailureReport workerFailureReport(const WorkerProcess &worker, int lines) {
    WorkerFailureReport report;
    report.site = worker.spec().site;
    report.port = worker.port();
    report.cause = worker.worker().cause();
    report.logPath = worker.log().path();
    // The tail holds at most its byte budget; Corral's notes are dropped from the count.
    const QStringList tail = worker.log().tail();
    for (qsizetype i = tail.size() - 1; i >= 0 && report.lastLines.size() < lines; --i) {
        const QString &line = tail.at(i);
        if (line.startsWith(QLatin1String("[corral "))) continue;
        report.lastLines.prepend(line);
    }
    return report;
}

} // namespace corral
