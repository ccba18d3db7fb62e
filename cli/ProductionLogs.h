#pragma once

#include "cli/Context.h"
#include "upstreams/ProductionStatus.h"

namespace corral::cli {

/// A worker's log line for the terminal: colours and tabs kept, every other control character
/// written out (defined in AgentCommands.cpp, shared by local and production logs).
QString terminalLogLine(const QString &line);

/// `corralctl logs SITE` for a production site (one with a balancer): `worker` is empty (every
/// backend, then the balancer), a backend "ADDRESS:PORT" or "balancer". Prints each line
/// prefixed with its source; with `follow` until SIGINT, SIGTERM or SIGHUP, then closes the
/// channels so no reader stays on the hosts.
int productionLogs(Context &context, const Inventory &inventory, const Site &site,
                   const QString &worker, int lines, bool follow);

/// How long `corralctl ps` waits for one worker host (connect and status).
constexpr int ProductionPsTimeoutMs = 3000;

/// The backends of the production sites in `inventory` (only `only` when not empty), read
/// over SSH without prompting (host keys from known_hosts, secrets from the keychain).
QList<ProductionBackendStatus> productionStatus(const Inventory &inventory, const QString &only);

} // namespace corral::cli
