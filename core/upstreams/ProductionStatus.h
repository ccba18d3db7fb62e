#pragma once

#include "fleet/PollScheduler.h"
#include "model/Host.h"
#include "model/Site.h"
#include "ssh/SshSession.h"

#include <QList>
#include <QString>

#include <functional>

namespace corral {

/// One backend of a production site as its worker host's pid files show it
/// (RemoteWorkers::status()), for `corralctl ps`.
struct ProductionBackendStatus {
    QString site;
    QString backend; ///< Backend::key()
    QString host;    ///< the inventory host that runs its worker (workerHostFor()); may be empty
    quint16 port = 0;
    bool reachable = false; ///< the host answered; else `error` says why not
    bool running = false;   ///< its supervisor (or adopted worker) is alive
    qint64 pid = 0;
    QString error; ///< the host's error (unreachable, refused, timed out), or why no host
};

/// Every backend of the production sites among `sites` (those with a balancer), in their
/// order. Each worker host is asked once (one status command per site), at most
/// `maxConcurrent` hosts at once (the rest wait in a queue: 50 SSH handshakes at once on a
/// small machine make them all late), each within `timeoutMs` counted from the start of its
/// own connect: a host that cannot be reached in time gives its backends' rows with its error
/// and holds up only its own slot. `configFor` gives the SSH settings of a host
/// (SshConfig::fromHost() plus a secret).
QList<ProductionBackendStatus>
productionBackendStatus(const QList<Site> &sites, const QList<Host> &hosts,
                        const std::function<SshConfig(const Host &)> &configFor, int timeoutMs,
                        int maxConcurrent = PollOptions{}.maxConcurrent);

/// Runs work(0) ... work(count - 1), taken in order from a queue by at most `maxConcurrent`
/// threads (at least one), and returns once all have finished.
void runBounded(int count, int maxConcurrent, const std::function<void(int)> &work);

} // namespace corral
