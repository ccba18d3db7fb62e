#pragma once

#include <QList>
#include <QMetaType>
#include <QString>

namespace corral {

/// One watched process tree at one tick.
struct ProcessSample {
    QString key;    ///< the key given to watch()
    qint64 pid = 0; ///< the watched (root) pid
    /// False once the root process has exited or its pid now belongs to another process
    /// (different start time). A gone process stays gone; its other fields are then 0.
    bool alive = false;
    /// False on the first tick after watch() (no previous reading to diff against).
    bool cpuValid = false;
    /// user+sys CPU of the root and all its descendants since the previous tick;
    /// 100 = one full core, so a tree can exceed 100.
    double cpuPercent = 0;
    qint64 rssBytes = 0;  ///< resident memory of the whole tree
    int processCount = 0; ///< processes in the tree, root included
    /// How long the root process has run, from its start time and the host's uptime
    /// (RemoteProcSampler); 0 when not known.
    qint64 ageMs = 0;
};

/// Machine-wide totals at one tick.
struct MachineSample {
    int cores = 0;         ///< online CPUs (the cpuN lines of /proc/stat)
    bool cpuValid = false; ///< false on the first tick
    /// Busy share of all cores since the previous tick: 0..100, 100 = every core busy.
    double cpuBusyPercent = 0;
    qint64 memoryUsedBytes = 0; ///< MemTotal - MemAvailable
    qint64 memoryTotalBytes = 0;
    double load1 = 0, load5 = 0, load15 = 0; ///< /proc/loadavg
};

/// Everything sampled in one tick; what MetricsCollector::sampled() delivers.
struct MetricsSnapshot {
    qint64 timestampMs = 0;         ///< wall clock, ms since the epoch
    QList<ProcessSample> processes; ///< in watch() order
    MachineSample machine;
};

} // namespace corral

Q_DECLARE_METATYPE(corral::MetricsSnapshot)
