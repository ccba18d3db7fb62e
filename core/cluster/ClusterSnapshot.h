#pragma once

#include "metrics/MetricsSnapshot.h"
#include "model/Site.h"
#include "model/Worker.h"

#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>

namespace corral {

/// One worker of a running cluster at one tick: what the supervisor, the metrics sampler and
/// the embedded proxy know about it, merged. Rates are per second over the last tick.
struct WorkerRow {
    QString site;
    QString host = QStringLiteral("local");
    quint16 port = 0;
    qint64 pid = 0;
    WorkerState state = WorkerState::Stopped;
    QString cause;          ///< why it entered `state`
    qint64 uptimeMs = 0;    ///< since it became ready; 0 when not running
    int restarts = 0;       ///< every restart, manual ones included
    int crashes = 0;        ///< crashes since the worker was created
    qint64 lastCrashMs = 0; ///< when it last crashed (ms since the epoch); 0: never
    QString lastCrashCause; ///< "pid 4711 exited with code 3", "... killed by signal 9 (KILL)"
    bool cpuValid = false;  ///< false until two samples exist
    double cpuPercent = 0;  ///< whole process tree; 100 = one core
    qint64 rssBytes = 0;    ///< whole process tree
    bool inProxy = false;   ///< the embedded proxy knows this backend
    QString backendState;   ///< the proxy's view: up, down, draining, disabled
    quint64 requestsTotal = 0;
    double requestsPerSecond = 0;
    qint64 inFlight = 0;
    double errorsPerSecond = 0; ///< 5xx answers and failed attempts per second
    double p99Ms = 0;
    /// The inventory host the worker runs on ("web1"), for labels ("web1:3001"); empty for
    /// local workers and for an address no inventory host has.
    QString hostName;
    /// False while the host this row is read through cannot be reached: nothing in the row
    /// is live (state is the last one seen, rates and metrics are zero); views show
    /// "unknown" with lastSeenMs.
    bool reachable = true;
    qint64 lastSeenMs = 0; ///< when the row was last read live, ms since the epoch; 0: never
};

/// A site's cluster at one tick, delivered whole to views once per second.
struct ClusterSnapshot {
    qint64 timestampMs = 0; ///< wall clock, ms since the epoch
    QString site;
    QString listen; ///< the embedded proxy's address, empty without a proxy
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    QList<WorkerRow> workers; ///< ordered by port
    /// Every request of the site per second: those the workers served and those the balancer
    /// answered itself (proxyErrorsPerSecond).
    double requestsPerSecond = 0;
    /// The workers' 5xx answers and failed attempts, plus proxyErrorsPerSecond.
    double errorsPerSecond = 0;
    /// 502/503/504 the embedded balancer produced itself (no backend was usable), per second
    /// and since it started: an outage with every worker gone shows here.
    double proxyErrorsPerSecond = 0;
    quint64 proxyErrorsTotal = 0;
    int running = 0; ///< workers in state running (and reachable)
    MachineSample machine;
    /// Hosts of the site (inventory names) that could not be reached this tick: the site is
    /// degraded and their rows are unknown.
    QStringList unreachableHosts;
    /// False when this tick could not read the request counts (the balancer's host is
    /// unreachable): requestsPerSecond and errorsPerSecond are no reading, charts leave a gap.
    bool requestsKnown = true;
};

} // namespace corral

Q_DECLARE_METATYPE(corral::ClusterSnapshot)
