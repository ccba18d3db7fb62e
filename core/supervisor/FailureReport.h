#pragma once

#include <QString>
#include <QStringList>

namespace corral {

class WorkerProcess;

/// What a user needs to see when a worker failed, in `corralctl up` and in the console's
/// message alike: why (the cause of its last transition), the last lines the program itself
/// printed (Corral's own "[corral ...]" notes left out: the cause already says it), and the
/// log file holding the rest.
struct WorkerFailureReport {
    static constexpr int DefaultLines = 10;

    QString site;
    quint16 port = 0;
    QString cause;         ///< e.g. "not ready within 30 s: connection refused"
    QStringList lastLines; ///< oldest first; at most the number asked for
    QString logPath;       ///< the worker's log file (rotated copies are PATH.1 ...)

    /// "worker 3001 of shop failed: CAUSE\n  last 10 lines of its output:\n    ...\n  log: PATH"
    /// (no trailing newline).
    QString toText() const;
};

/// The report for `worker` from its in-memory log tail and log path.
WorkerFailureReport workerFailureReport(const WorkerProcess &worker,
                                        int lines = WorkerFailureReport::DefaultLines);

} // namespace corral
