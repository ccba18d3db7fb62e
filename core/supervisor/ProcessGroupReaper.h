#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace corral {

/// A tiny sentinel process that outlives nothing: it is told about every worker process group
/// Corral starts and forgets, and when Corral dies by any means (even SIGKILL) it sees its pipe
/// close, sends SIGTERM to the groups still listed, then SIGKILL, and exits. PR_SET_PDEATHSIG
/// alone would only reach the worker itself, not the children a worker spawned.
///
/// As a last line of defence (the sentinel itself killed too), the groups are also listed in a
/// state file, $XDG_STATE_HOME/corral/run/PID.groups; the next Corral start kills the groups
/// that a dead Corral left behind.
class ProcessGroupReaper {
public:
    /// The process-wide sentinel, started on first use (it closes every descriptor it inherits,
    /// so it never holds a socket open). The first use also reconciles stale state files.
    static ProcessGroupReaper &instance();

    /// Kills the process groups listed by state files of Corral processes that no longer run;
    /// returns how many groups were signalled.
    static int reconcileStateFiles(const std::string &directory);

    void track(pid_t processGroup);
    void untrack(pid_t processGroup);
    pid_t sentinelPid() const { return m_sentinel; }

    ProcessGroupReaper(const ProcessGroupReaper &) = delete;
    ProcessGroupReaper &operator=(const ProcessGroupReaper &) = delete;

private:
    ProcessGroupReaper();
    ~ProcessGroupReaper();
    void send(char op, pid_t processGroup);
    /// Adds or removes the group in m_groups and rewrites the state file (atomically).
    void record(pid_t processGroup, bool tracked);
    void writeStateFile();

    int m_writeFd = -1;
    pid_t m_sentinel = -1;
    std::string m_stateFile;
    std::mutex m_stateMutex; // track() and untrack() may come from several threads
    std::vector<std::pair<pid_t, unsigned long long>> m_groups; // group, leader start time
    bool m_stateFileFailing = false;
};

} // namespace corral
