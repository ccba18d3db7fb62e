#pragma once

#include "util/Result.h"

#include <QString>
#include <QStringList>

namespace corral {

/// Quotes `word` for a POSIX shell so it arrives as exactly one literal argument: wrapped in
/// single quotes, each embedded ' written as '\''. Nothing inside single quotes is special
/// (no $, `, \, newline or glob), so this is the only quoting rule remote commands need.
/// Words made only of safe characters are left bare to keep commands readable in logs.
QString shellQuote(const QString &word);

/// Joins `argv` into one command line, every word quoted with shellQuote(). Every remote
/// command that carries user input is built with this (or shellQuote()); never by pasting
/// strings together.
QString shellCommand(const QStringList &argv);

/// `argv` for a message or a terminal: shellCommand() with control characters escaped
/// (escapeControls()), for command lines read from elsewhere (/proc/PID/cmdline on a host),
/// so a process named with terminal sequences cannot drive the user's terminal.
QString shownCommand(const QStringList &argv);

/// Splits a command line typed by a user (a balancer's validate or reload command, in
/// corralctl or the console) into argv words the way a POSIX shell does for a simple
/// command, refusing what only a shell would act on. See ShellQuote.cpp.
Result<QStringList> splitShellWords(const QString &text);

} // namespace corral
