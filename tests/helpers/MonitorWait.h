#pragma once

// Waiting on a RemoteSiteMonitor in tests: tick by tick, never by sleeping.

#include "cluster/RemoteSiteMonitor.h"

#include <QDeadlineTimer>
#include <QSignalSpy>

namespace corral::test {

/// Waits, tick by tick, until the monitor's snapshot has counted `total` requests over all
/// its rows or `timeoutMs` passes; returns what it counted last.
inline quint64 waitForRequestTotal(RemoteSiteMonitor &monitor, quint64 total,
                                   int timeoutMs = 30000) {
    QSignalSpy ticked(&monitor, &RemoteSiteMonitor::snapshotReady);
    const QDeadlineTimer deadline(timeoutMs);
    quint64 counted = 0;
    while (!deadline.hasExpired()) {
        counted = 0;
        for (const WorkerRow &row : monitor.snapshot().workers)
            counted += row.requestsTotal;
        if (counted >= total) break;
        ticked.wait(2000);
    }
    return counted;
}

} // namespace corral::test
