#include "model/Worker.h"

namespace corral {

QString workerStateName(WorkerState state) {
    switch (state) {
    case WorkerState::Stopped:
        return QStringLiteral("stopped");
    case WorkerState::Starting:
        return QStringLiteral("starting");
    case WorkerState::Running:
        return QStringLiteral("running");
    case WorkerState::Unhealthy:
        return QStringLiteral("unhealthy");
    case WorkerState::Draining:
        return QStringLiteral("draining");
    case WorkerState::Stopping:
        return QStringLiteral("stopping");
    case WorkerState::Crashed:
        return QStringLiteral("crashed");
    case WorkerState::Backoff:
        return QStringLiteral("backoff");
    case WorkerState::Failed:
        return QStringLiteral("failed");
    }
    return {};
}

bool canTransition(WorkerState from, WorkerState to) {
    using S = WorkerState;
    switch (from) {
    case S::Stopped:
        return to == S::Starting;
    case S::Starting:
        return to == S::Running || to == S::Failed || to == S::Crashed || to == S::Stopping;
    case S::Running:
        return to == S::Unhealthy || to == S::Draining || to == S::Stopping || to == S::Crashed;
    case S::Unhealthy:
        return to == S::Running || to == S::Draining || to == S::Stopping || to == S::Crashed;
    case S::Draining:
        return to == S::Running || to == S::Stopping || to == S::Crashed;
    case S::Stopping:
        return to == S::Stopped;
    case S::Crashed:
        return to == S::Backoff || to == S::Failed || to == S::Stopped;
    case S::Backoff:
        return to == S::Starting || to == S::Stopped;
    case S::Failed:
        return to == S::Starting || to == S::Stopped;
    }
    return false;
}

Worker::Worker(QString site, QString host, quint16 port)
    : m_site(std::move(site))
    , m_host(std::move(host))
    , m_port(port) {}

Result<void> Worker::transitionTo(WorkerState next, const QString &cause) {
    if (!canTransition(m_state, next))
        return fail(QStringLiteral("worker %1 on %2:%3: cannot go from %4 to %5")
                        .arg(m_site, m_host)
                        .arg(m_port)
                        .arg(workerStateName(m_state), workerStateName(next)));
    m_state = next;
    m_cause = cause;
    return {};
}

std::optional<WorkerState> workerStateFromName(const QString &name) {
    for (int i = 0; i <= int(WorkerState::Failed); ++i)
        if (workerStateName(WorkerState(i)) == name) return WorkerState(i);
    return std::nullopt;
}

} // namespace corral
