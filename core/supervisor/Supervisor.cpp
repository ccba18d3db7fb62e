#include "supervisor/Supervisor.h"

#include "supervisor/PortAllocator.h"

#include <QFileInfo>
#include <QStandardPaths>

#include <algorithm>

namespace corral {

Supervisor::Supervisor(SupervisionPolicy policy, QObject *parent)
    : QObject(parent)
    , m_policy(std::move(policy)) {}

Supervisor::~Supervisor() {
    // Workers still running are killed (with their groups) by ~WorkerProcess; callers that want
    // a graceful stop call stopAll() and wait for allStopped() first.
    for (SiteRun &run : m_sites)
        qDeleteAll(run.workers);
}

static Result<QString> resolveProgram(const Site &site) {
    if (site.command.isEmpty())
        return fail(QStringLiteral("site %1: no command to run").arg(site.name));
    if (site.command.contains(QLatin1Char('/'))) {
        QFileInfo info(site.workingDirectory.isEmpty() || QFileInfo(site.command).isAbsolute()
                           ? site.command
                           : site.workingDirectory + QLatin1Char('/') + site.command);
        if (!info.exists())
            return fail(QStringLiteral("site %1: command \"%2\" does not exist")
                            .arg(site.name, site.command));
        if (!info.isExecutable() || info.isDir())
            return fail(QStringLiteral("site %1: command \"%2\" is not executable")
                            .arg(site.name, site.command));
        return info.absoluteFilePath();
    }
    const QString found = QStandardPaths::findExecutable(site.command);
    if (found.isEmpty())
        return fail(QStringLiteral("site %1: command \"%2\" not found in PATH")
                        .arg(site.name, site.command));
    return found;
}

WorkerSpec Supervisor::specFor(const Site &site, quint16 port) const {
    WorkerSpec spec;
    spec.site = site.name;
    auto program = resolveProgram(site);
    spec.program = program ? program.value() : site.command;
    spec.args = site.argsForPort(port);
    spec.argsTemplate = site.args;
    spec.workingDirectory = site.workingDirectory;
    spec.environment = site.environment;
    spec.port = port;
    spec.healthPath = site.healthPath;
    return spec;
}

const Site *Supervisor::site(const QString &name) const {
    const auto it = m_sites.constFind(name);
    return it == m_sites.constEnd() ? nullptr : &it->config;
}

QList<quint16> Supervisor::ports(const QString &site) const {
    QList<quint16> result;
    for (const WorkerProcess *worker : m_sites.value(site).workers)
        result.append(worker->port());
    return result;
}

QList<const WorkerProcess *> Supervisor::workers(const QString &site) const {
    QList<const WorkerProcess *> result;
    for (const WorkerProcess *worker : m_sites.value(site).workers)
        result.append(worker);
    return result;
}

WorkerProcess *Supervisor::findWorker(const QString &site, quint16 port) const {
    for (WorkerProcess *worker : m_sites.value(site).workers)
        if (worker->port() == port) return worker;
    return nullptr;
}

const WorkerProcess *Supervisor::worker(const QString &site, quint16 port) const {
    return findWorker(site, port);
}

QSet<quint16> Supervisor::usedPorts() const {
    QSet<quint16> used;
    for (const SiteRun &run : m_sites)
        for (const WorkerProcess *worker : run.workers)
            used.insert(worker->port());
    return used;
}

WorkerProcess *Supervisor::addWorker(SiteRun &run, quint16 port) {
    auto *worker = new WorkerProcess(specFor(run.config, port), m_policy, this);
    connect(worker, &WorkerProcess::stateChanged, this,
            [this, worker](WorkerState state, const QString &cause) {
                onWorkerState(worker, state, cause);
            });
    worker->setPortRelocator([this, worker](quint16 taken) { return relocate(worker, taken); });
    connect(worker, &WorkerProcess::portMoved, this,
            [this, worker](quint16 from, quint16 to, const QString &reason) {
                onWorkerMoved(worker, from, to, reason);
            });
    run.workers.append(worker);
    sortByPort(run.workers);
    return worker;
}

void Supervisor::sortByPort(QList<WorkerProcess *> &workers) {
    std::sort(workers.begin(), workers.end(),
              [](const WorkerProcess *a, const WorkerProcess *b) { return a->port() < b->port(); });
}

Result<quint16> Supervisor::relocate(const WorkerProcess *worker, quint16 taken) {
    const auto it = m_sites.constFind(worker->spec().site);
    if (it == m_sites.constEnd())
        return fail(QStringLiteral("site %1 is not running").arg(worker->spec().site));
    // Every port a worker of ours holds (the taken one included) stays out.
    auto ports = PortAllocator::allocate(QHostAddress::LocalHost, it->config.basePort, 1, {},
                                         usedPorts() | m_reserved | QSet<quint16>{taken});
    if (!ports) return fail(ports.error());
    return ports->first();
}

void Supervisor::onWorkerMoved(WorkerProcess *worker, quint16 from, quint16 to,
                               const QString &reason) {
    const QString site = worker->spec().site;
    auto it = m_sites.find(site);
    if (it == m_sites.end()) return;
    qWarning("corral: site %s: worker moved from port %u to %u: %s", qPrintable(site), from, to,
             qPrintable(reason));
    sortByPort(it->workers);
    it->config.ports = ports(site);
    if (auto rollout = m_rollouts.find(site); rollout != m_rollouts.end()) {
        if (rollout->current == from) rollout->current = to;
        if (const qsizetype pending = rollout->pending.indexOf(from); pending >= 0)
            rollout->pending[pending] = to;
    }
    // The balancer forgets the old address; the worker joins on the new one once ready.
    if (m_hooks.workerRemoved) m_hooks.workerRemoved(site, from);
    Q_EMIT portsChanged(site, it->config.ports);
}

Result<void> Supervisor::startSite(const Site &site) {
    if (m_sites.contains(site.name))
        return fail(QStringLiteral("site %1 is already running").arg(site.name));
    if (auto valid = site.validate(); !valid) return valid;
    if (auto program = resolveProgram(site); !program) return fail(program.error());
    auto ports = PortAllocator::allocate(QHostAddress::LocalHost, site.basePort, site.workers,
                                         site.ports, usedPorts() | m_reserved);
    if (!ports) return fail(QStringLiteral("site %1: ").arg(site.name) + ports.error());
    SiteRun &run = m_sites[site.name];
    run.config = site;
    run.config.ports = ports.value();
    for (quint16 port : ports.value())
        addWorker(run, port);
    Q_EMIT portsChanged(site.name, ports.value());
    for (WorkerProcess *worker : QList<WorkerProcess *>(run.workers))
        worker->start();
    return {};
}

void Supervisor::retire(WorkerProcess *worker, std::function<void()> then) {
    if (then) m_afterStop.insert(worker, std::move(then));
    const WorkerState state = worker->state();
    if (state == WorkerState::Stopped) {
        if (auto callback = m_afterStop.take(worker)) callback();
        return;
    }
    const bool serving = state == WorkerState::Running || state == WorkerState::Unhealthy;
    if (!serving || !m_hooks.drainWorker) {
        worker->stop();
        return;
    }
    worker->setDraining(true);
    QPointer<WorkerProcess> guard(worker);
    // The balancer may report from its own thread: come back to ours before touching the worker.
    m_hooks.drainWorker(worker->spec().site, worker->port(), [this, guard] {
        QMetaObject::invokeMethod(
            this,
            [guard] {
                if (guard && guard->state() == WorkerState::Draining) guard->stop();
            },
            Qt::QueuedConnection);
    });
}

void Supervisor::onWorkerState(WorkerProcess *worker, WorkerState state, const QString &cause) {
    const QString site = worker->spec().site;
    Q_EMIT workerStateChanged(site, worker->port(), worker->pid(), state, cause);
    if (state == WorkerState::Running && m_hooks.workerReady)
        m_hooks.workerReady(site, worker->port());
    if ((state == WorkerState::Crashed || state == WorkerState::Stopping ||
         state == WorkerState::Failed) &&
        m_hooks.workerGone)
        m_hooks.workerGone(site, worker->port());

    if (state == WorkerState::Stopped) {
        if (auto callback = m_afterStop.take(worker)) callback();
    }
    const auto rollout = m_rollouts.constFind(site);
    if (rollout != m_rollouts.constEnd() && rollout->current == worker->port()) {
        if (state == WorkerState::Running) {
            const int replaced = rollout->total - int(rollout->pending.size());
            Q_EMIT rollingRestartProgress(site, replaced, rollout->total);
            continueRollout(site);
        } else if (state == WorkerState::Failed || state == WorkerState::Crashed) {
            finishRollout(
                site, false,
                QStringLiteral(
                    "replacement on port %1 failed: %2; rollout halted, %3 worker(s) not replaced")
                    .arg(worker->port())
                    .arg(cause)
                    .arg(rollout->pending.size()));
        }
    }
    if (state == WorkerState::Stopped) checkStopped(site);
}

void Supervisor::checkStopped(const QString &site) {
    if (!m_stoppingSites.contains(site)) return;
    auto it = m_sites.find(site);
    if (it == m_sites.end()) return;
    for (const WorkerProcess *worker : it->workers)
        if (worker->state() != WorkerState::Stopped) return;
    for (WorkerProcess *worker : it->workers) {
        if (m_hooks.workerRemoved) m_hooks.workerRemoved(site, worker->port());
        worker->deleteLater();
    }
    m_sites.erase(it);
    m_stoppingSites.remove(site);
    Q_EMIT siteStopped(site);
    if (m_stoppingAll && m_sites.isEmpty()) {
        m_stoppingAll = false;
        Q_EMIT allStopped();
    }
}

void Supervisor::stopSite(const QString &site) {
    if (!m_sites.contains(site)) return;
    if (m_rollouts.contains(site))
        finishRollout(site, false, QStringLiteral("site stopped during the rollout"));
    m_stoppingSites.insert(site);
    for (WorkerProcess *worker : QList<WorkerProcess *>(m_sites.value(site).workers))
        retire(worker, {});
    checkStopped(site);
}

void Supervisor::stopAll() {
    m_stoppingAll = true;
    if (m_sites.isEmpty()) {
        m_stoppingAll = false;
        Q_EMIT allStopped();
        return;
    }
    for (const QString &site : m_sites.keys())
        stopSite(site);
}

Result<void> Supervisor::setWorkerCount(const QString &site, int count) {
    auto it = m_sites.find(site);
    if (it == m_sites.end()) return fail(QStringLiteral("site %1 is not running").arg(site));
    if (count < 0 || count > Site::MaxWorkers)
        return fail(QStringLiteral("site %1: worker count %2 is out of range (0..%3)")
                        .arg(site)
                        .arg(count)
                        .arg(Site::MaxWorkers));
    SiteRun &run = *it;
    const int current = int(run.workers.size());
    if (count > current) {
        auto ports =
            PortAllocator::allocate(QHostAddress::LocalHost, run.config.basePort, count - current,
                                    run.config.ports, usedPorts() | m_reserved);
        if (!ports) return fail(QStringLiteral("site %1: ").arg(site) + ports.error());
        QList<WorkerProcess *> added;
        for (quint16 port : ports.value())
            added.append(addWorker(run, port));
        for (WorkerProcess *worker : added)
            worker->start();
    } else {
        for (int i = current - 1; i >= count; --i)
            detachWorker(run, run.workers.at(i));
    }
    run.config.workers = count;
    run.config.ports = ports(site);
    Q_EMIT portsChanged(site, run.config.ports);
    return {};
}

void Supervisor::detachWorker(SiteRun &run, WorkerProcess *worker) {
    run.workers.removeOne(worker);
    retire(worker, [this, worker] {
        if (m_hooks.workerRemoved) m_hooks.workerRemoved(worker->spec().site, worker->port());
        worker->deleteLater();
    });
}

Result<void> Supervisor::removeWorker(const QString &site, quint16 port) {
    WorkerProcess *worker = findWorker(site, port);
    if (!worker)
        return fail(QStringLiteral("site %1 has no worker on port %2").arg(site).arg(port));
    SiteRun &run = m_sites[site];
    detachWorker(run, worker);
    run.config.workers = int(run.workers.size());
    run.config.ports = ports(site);
    Q_EMIT portsChanged(site, run.config.ports);
    return {};
}

Result<void> Supervisor::restartWorker(const QString &site, quint16 port) {
    WorkerProcess *worker = findWorker(site, port);
    if (!worker)
        return fail(QStringLiteral("site %1 has no worker on port %2").arg(site).arg(port));
    QPointer<WorkerProcess> guard(worker);
    retire(worker, [guard] {
        if (guard) guard->start();
    });
    return {};
}

Result<void> Supervisor::rollingRestart(const Site &newConfig) {
    auto it = m_sites.find(newConfig.name);
    if (it == m_sites.end())
        return fail(QStringLiteral("site %1 is not running").arg(newConfig.name));
    if (m_rollouts.contains(newConfig.name))
        return fail(
            QStringLiteral("site %1: a rolling restart is already under way").arg(newConfig.name));
    if (auto program = resolveProgram(newConfig); !program) return fail(program.error());
    Rollout rollout;
    rollout.config = newConfig;
    rollout.config.ports = ports(newConfig.name);
    rollout.config.workers = int(rollout.config.ports.size());
    rollout.pending = rollout.config.ports;
    rollout.total = int(rollout.pending.size());
    m_rollouts.insert(newConfig.name, rollout);
    continueRollout(newConfig.name);
    return {};
}

void Supervisor::continueRollout(const QString &site) {
    Rollout &rollout = m_rollouts[site];
    if (rollout.pending.isEmpty()) {
        m_sites[site].config = rollout.config;
        return finishRollout(site, true,
                             QStringLiteral("replaced %1 worker(s)").arg(rollout.total));
    }
    const quint16 port = rollout.pending.takeFirst();
    rollout.current = port;
    WorkerProcess *worker = findWorker(site, port);
    if (!worker) // removed by a scale-down meanwhile
        return continueRollout(site);
    worker->setSpec(specFor(rollout.config, port));
    QPointer<WorkerProcess> guard(worker);
    retire(worker, [guard] {
        if (guard) guard->start();
    });
}

void Supervisor::finishRollout(const QString &site, bool succeeded, const QString &message) {
    m_rollouts.remove(site);
    Q_EMIT rollingRestartFinished(site, succeeded, message);
}

} // namespace corral
