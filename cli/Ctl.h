#pragma once

#include <QStringList>

class QTextStream;

namespace corral::cli {

/// Exit codes of corralctl.
enum ExitCode { Success = 0, Failure = 1, UsageError = 2 };

/// Runs corralctl with `arguments` (without the program name), writing to `out` and `err`.
/// Commands that serve in the foreground (up, proxy) need a QCoreApplication.
int run(const QStringList &arguments, QTextStream &out, QTextStream &err);

} // namespace corral::cli
