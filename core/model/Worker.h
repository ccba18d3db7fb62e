#pragma once

#include "util/Result.h"

#include <QString>

#include <optional>

namespace corral {

/// The life of one worker process. Allowed moves:
///   stopped   -> starting
///   starting  -> running | failed | crashed | stopping
///   running   -> unhealthy | draining | stopping | crashed
///   unhealthy -> running | draining | stopping | crashed
///   draining  -> running (re-enabled) | stopping | crashed
///   stopping  -> stopped
///   crashed   -> backoff | failed | stopped
///   backoff   -> starting | stopped
///   failed    -> starting (manual retry) | stopped
enum class WorkerState {
    Stopped,
    Starting,
    Running,
    Unhealthy,
    Draining,
    Stopping,
    Crashed,
    Backoff,
    Failed
};

QString workerStateName(WorkerState state);
std::optional<WorkerState> workerStateFromName(const QString &name);
bool canTransition(WorkerState from, WorkerState to);

/// One process of a site on one host and port.
class Worker {
public:
    Worker() = default;
    Worker(QString site, QString host, quint16 port);

    const QString &site() const { return m_site; }
    const QString &host() const { return m_host; }
    quint16 port() const { return m_port; }
    /// The supervisor moves a worker whose port another process took.
    void setPort(quint16 port) { m_port = port; }
    qint64 pid() const { return m_pid; }
    void setPid(qint64 pid) { m_pid = pid; }
    WorkerState state() const { return m_state; }
    /// Why the worker entered its current state ("exit code 3", "killed by signal 9", ...).
    const QString &cause() const { return m_cause; }

    /// Moves to `next`, or fails (state unchanged) naming both states when the move is not allowed.
    Result<void> transitionTo(WorkerState next, const QString &cause = QString());

private:
    QString m_site;
    QString m_host;
    quint16 m_port = 0;
    qint64 m_pid = 0;
    WorkerState m_state = WorkerState::Stopped;
    QString m_cause;
};

} // namespace corral
