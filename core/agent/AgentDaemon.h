#pragma once

#include <QStringList>

namespace corral::agent {

/// corral-agent's whole program: takes the per-user lock, listens on the user's socket,
/// brings back the sites of the state file, serves until SIGTERM/SIGINT/SIGHUP or a shutdown
/// request, then drains and stops every site and returns the exit code.
int runAgent(const QStringList &arguments);

} // namespace corral::agent
