#pragma once

#include "metrics/MetricsSnapshot.h"
#include "metrics/ProcessSampler.h"
#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <vector>

namespace corral {

/// The remote counterpart of ProcessSampler: the same ProcessSample/MachineSample values,
/// computed from the output of one batched shell command per tick that reads /proc/uptime,
/// /proc/stat, meminfo, loadavg and, for each watched worker, the stat and statm of every
/// process in its tree (found through /proc/PID/task/TID/children). Parsing reuses
/// ProcessSampler's pure functions. No I/O here: RemoteSampler runs the command.
class RemoteProcSampler {
public:
    void watch(const QString &key, qint64 pid);
    void unwatch(const QString &key);
    QStringList keys() const;

    /// The command for the current watches. Only pids (numbers) go into it, never keys.
    QString command() const;
    /// Parses the command's output into one entry per watch (watch order) and the machine
    /// totals. CPU % is relative to the host's own uptime clock between two ticks, so
    /// network latency does not distort it. Fails on output that is not the command's.
    Result<void> ingest(const QByteArray &output, QList<ProcessSample> &processes,
                        MachineSample &machine);
    /// The host's /proc/uptime at the last successful ingest() (0 before): its own clock, for
    /// rates between two readings that network delays do not distort.
    double uptimeSeconds() const { return m_lastUptime; }

private:
    struct Watch {
        QString key;
        qint64 pid = 0;
        quint64 startTime = 0; // learnt on the first tick
        bool alive = true;
        bool havePrevious = false;
        std::vector<TreeMember> previous;
    };

    std::vector<Watch> m_watches;
    long m_ticksPerSecond = 0; // the host's; asked for on the first tick
    long m_pageSize = 0;
    double m_lastUptime = 0;
    bool m_haveLastCpu = false;
    quint64 m_lastBusy = 0, m_lastTotal = 0;
};

} // namespace corral
