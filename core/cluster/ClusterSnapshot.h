#pragma once

#include "metrics/MetricsSnapshot.h"
#include "model/Site.h"
#include "model/Worker.h"

#include <QList>
#include <QMetaType>
#include <QString>

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
    int running = 0; ///< workers in state running
    MachineSample machine;
};

} // namespace corral

Q_DECLARE_METATYPE(corral::ClusterSnapshot)
