#pragma once

#include "metrics/MetricsSnapshot.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace corral {

/// The fields Corral uses from one /proc/PID/stat line. Times are in clock ticks.
struct ProcStat {
    qint64 pid = 0;
    std::string_view comm; ///< points into the parsed text
    char state = '?';
    qint64 ppid = 0;
    quint64 utime = 0, stime = 0;   ///< this process (all its threads)
    quint64 cutime = 0, cstime = 0; ///< children it has reaped
    quint64 startTime = 0;          ///< field 22: ticks after boot; tells reused pids apart
    qint64 rssPages = 0;            ///< field 24; approximate, statm's "resident" is exact
};

/// Parses /proc/PID/stat. The comm may contain spaces and parentheses ("1 (a (b) c) S ..."),
/// so fields after it are located from the last ')'.
std::optional<ProcStat> parseProcStat(std::string_view text);

/// The resident page count (second field) of /proc/PID/statm.
std::optional<qint64> parseStatmResidentPages(std::string_view text);

/// The aggregate "cpu" line of /proc/stat, in clock ticks.
struct CpuTimes {
    quint64 busy = 0;  ///< total - idle - iowait
    quint64 total = 0; ///< user+nice+system+idle+iowait+irq+softirq+steal
};
std::optional<CpuTimes> parseCpuTimes(std::string_view procStat);
/// Online CPUs: the number of "cpuN" lines of /proc/stat.
int countCpus(std::string_view procStat);

struct MemInfo {
    qint64 totalBytes = 0;
    qint64 availableBytes = 0; ///< MemAvailable (MemFree on kernels without it)
};
std::optional<MemInfo> parseMeminfo(std::string_view text);

struct LoadAverage {
    double load1 = 0, load5 = 0, load15 = 0;
};
std::optional<LoadAverage> parseLoadavg(std::string_view text);

/// One process of a watched tree at one tick: its identity and its CPU clock ticks.
struct TreeMember {
    qint64 pid = 0;
    quint64 startTime = 0;
    quint64 self = 0;   ///< utime + stime
    quint64 reaped = 0; ///< cutime + cstime: children it has waited for
};

/// CPU clock ticks a process tree used between two ticks; both lists sorted by pid. Counted
/// per member, so a member that exits does not make the total drop: deltas for members seen
/// before, whole times for new ones, and for a member gone from `current` whose time now
/// reappears in its parent's reaped time (`died` says so; a member may also just have left the
/// tree) its already counted part is taken off again. Local and remote samplers share this.
qint64 treeCpuTicks(const std::vector<TreeMember> &previous, const std::vector<TreeMember> &current,
                    const std::function<bool(const TreeMember &)> &died);

/// Samples process trees and machine totals from a proc file system. Not thread-safe;
/// one instance per sampling thread. Buffers are reused, so a tick allocates only when
/// the number of processes grows.
class ProcessSampler {
public:
    /// `procRoot` is normally "/proc"; tests point it at a directory of fake files.
    explicit ProcessSampler(const QString &procRoot = QStringLiteral("/proc"));
    ~ProcessSampler();
    ProcessSampler(const ProcessSampler &) = delete;
    ProcessSampler &operator=(const ProcessSampler &) = delete;

    /// Starts sampling the tree rooted at `pid` under `key` (replacing an earlier watch of
    /// the same key). The process is identified by pid and start time now, so a later
    /// reuse of the pid is not mixed up with it. Returns false (and reports the key as
    /// gone from then on) when no such process exists.
    bool watch(const QString &key, qint64 pid);
    void unwatch(const QString &key);
    bool isWatching(const QString &key) const;
    QStringList keys() const;

    /// Reads /proc once and fills `processes` (one entry per watch, in watch order) and
    /// `machine`. `monotonicNs` is a monotonic clock reading for this tick; CPU % is the
    /// CPU time used since the previous call divided by the time between the two readings.
    void sample(qint64 monotonicNs, QList<ProcessSample> &processes, MachineSample &machine);

    /// One /proc/PID/stat, or nullopt when the process does not exist. `comm` points into
    /// a buffer that the next call overwrites.
    std::optional<ProcStat> readStat(qint64 pid);

    long clockTicksPerSecond() const { return m_ticksPerSecond; }
    long pageSize() const { return m_pageSize; }

private:
    struct Entry;
    struct Watch;

    // Reads m_root/`relative` into m_buffer; the length, or -1 when it cannot be read.
    qsizetype readFile(const char *relative);
    void scanProcesses();
    const Entry *findEntry(qint64 pid) const;
    qint64 residentPages(const Entry &entry);
    void sampleTree(Watch &watch, double seconds, ProcessSample &out);
    void sampleMachine(double seconds, MachineSample &out);

    QByteArray m_root; // without trailing slash
    long m_ticksPerSecond = 100;
    long m_pageSize = 4096;
    std::vector<Watch> m_watches;
    std::vector<Entry> m_entries;                   // every process, sorted by pid
    std::vector<std::pair<qint64, int>> m_byParent; // (ppid, entry index), sorted
    std::vector<int> m_stack;
    std::vector<char> m_buffer;
    int m_rootFd = -1;
    qint64 m_lastNs = 0;
    bool m_haveLast = false;
    std::optional<CpuTimes> m_lastCpu;
};

} // namespace corral
