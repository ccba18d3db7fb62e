#include "supervisor/WorkerProcess.h"

#include "http/HttpParser.h"
#include "model/Site.h"
#include "supervisor/ProcessGroupReaper.h"
#include "supervisor/RotatingLog.h"
#include "util/ListeningSockets.h"
#include "util/Paths.h"

#include <QDateTime>
#include <QDeadlineTimer>
#include <QFile>
#include <QProcess>
#include <QTcpSocket>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <utility>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace corral {

namespace {
enum class TimerPurpose { Backoff, StartDeadline, KillTimeout };
constexpr const char *PurposeProperty = "corralTimerPurpose";

qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

QString formatDelay(int ms) {
    return ms < 1000 ? QStringLiteral("%1 ms").arg(ms)
                     : QStringLiteral("%1 s").arg(ms / 1000.0, 0, 'f', 1);
}
} // namespace

WorkerProcess::WorkerProcess(WorkerSpec spec, SupervisionPolicy policy, QObject *parent)
    : QObject(parent)
    , m_spec(std::move(spec))
    , m_policy(std::move(policy))
    , m_worker(m_spec.site, QStringLiteral("local"), m_spec.port)
    , m_backoffMs(m_policy.backoffInitialMs) {
    openLog();
    m_timer = new QTimer(this);
    m_timer->setSingleShot(true);
    connect(m_timer, &QTimer::timeout, this, [this] {
        switch (TimerPurpose(m_timer->property(PurposeProperty).toInt())) {
        case TimerPurpose::Backoff:
            if (state() == WorkerState::Backoff) launch();
            break;
        case TimerPurpose::StartDeadline:
            if (state() == WorkerState::Starting) {
                transition(WorkerState::Failed,
                           QStringLiteral("not ready within %1: %2")
                               .arg(formatDelay(m_policy.startTimeoutMs),
                                    m_lastProbeError.isEmpty() ? QStringLiteral("no answer")
                                                               : m_lastProbeError));
                signalGroup(SIGKILL);
            }
            break;
        case TimerPurpose::KillTimeout:
            m_log->note(
                QStringLiteral("still alive %1 after SIGTERM; sending SIGKILL to the process group")
                    .arg(formatDelay(m_policy.killTimeoutMs)));
            signalGroup(SIGKILL);
            break;
        }
    });
    m_probeTimer = new QTimer(this);
    m_probeTimer->setSingleShot(true);
    m_probeTimer->setTimerType(Qt::PreciseTimer);
    connect(m_probeTimer, &QTimer::timeout, this, &WorkerProcess::probe);
}

QString siteLogDirectory(const QString &logDirectory, const QString &site) {
    const QString base =
        logDirectory.isEmpty() ? corralStateDirectory() + QStringLiteral("/logs") : logDirectory;
    return base + QLatin1Char('/') + site;
}

void WorkerProcess::openLog() {
    m_log = std::make_unique<RotatingLog>(siteLogDirectory(m_policy.logDirectory, m_spec.site) +
                                              QLatin1Char('/') + QString::number(m_spec.port) +
                                              QStringLiteral(".log"),
                                          m_policy.logMaxBytes, m_policy.logKeep);
}

WorkerProcess::~WorkerProcess() {
    if (m_process) {
        signalGroup(SIGKILL);
        m_process->disconnect(this);
        m_process->waitForFinished(2000);
        releaseProcess();
    }
}

void WorkerProcess::transition(WorkerState next, const QString &cause) {
    const WorkerState previous = state();
    if (auto moved = m_worker.transitionTo(next, cause); !moved) {
        m_log->note(moved.error());
        qWarning("corral: %s", qPrintable(moved.error()));
        return;
    }
    if (next != WorkerState::Running && next != WorkerState::Draining &&
        next != WorkerState::Unhealthy)
        m_runningSinceMs = 0;
    m_log->note(
        QStringLiteral("%1 -> %2%3")
            .arg(workerStateName(previous), workerStateName(next),
                 cause.isEmpty() ? QString() : QStringLiteral(" (") + cause + QLatin1Char(')')));
    Q_EMIT stateChanged(next, cause);
}

void WorkerProcess::start() {
    if (state() != WorkerState::Stopped && state() != WorkerState::Failed) return;
    if (m_process) { // a failed start still being killed
        signalGroup(SIGKILL);
        m_process->disconnect(this);
        m_process->waitForFinished(m_policy.killTimeoutMs);
        releaseProcess();
    }
    m_crashTimes.clear();
    m_backoffMs = m_policy.backoffInitialMs;
    if (m_everLaunched) ++m_restarts; // a manual restart or retry, or a rollout's replacement
    launch();
}

bool WorkerProcess::heldByOurPreviousGroup() const {
    if (m_previousGroup <= 1) return false;
    QList<quint64> inodes;
    for (const TcpListener &listener : listenersCovering(m_spec.address, m_spec.port))
        inodes.append(listener.inode);
    const QList<SocketHolder> holders = socketHolders(inodes);
    if (holders.isEmpty()) return false;
    for (const SocketHolder &holder : holders) {
        QFile stat(QStringLiteral("/proc/%1/stat").arg(holder.pid));
        if (!stat.open(QIODevice::ReadOnly)) return false;
        const QByteArray text = stat.readAll();
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
        if (fields.size() < 3 || fields.at(2).toLongLong() != m_previousGroup) return false;
    }
    return true;
}

bool WorkerProcess::ensurePortIsOurs() {
    // Our previous process (if any) is gone and its group killed: whoever listens on the port
    // now is someone else, and the worker would fail to bind (or, worse, the health probe
    // would reach the other program and call our worker ready).
    auto free = checkListenAddressFree(m_spec.address, m_spec.port);
    // Children of our previous process, SIGKILLed a moment ago, may not have exited yet: give
    // them a moment rather than moving the worker away from its own leftovers.
    QDeadlineTimer leftovers(1000);
    while (!free && !leftovers.hasExpired() && heldByOurPreviousGroup()) {
        QThread::msleep(5);
        free = checkListenAddressFree(m_spec.address, m_spec.port);
    }
    if (free) return true;
    const quint16 taken = m_spec.port;
    m_log->note(free.error());
    Result<quint16> other =
        m_relocate ? m_relocate(taken) : Result<quint16>(fail(QStringLiteral("no other port")));
    if (!other) {
        transition(WorkerState::Starting,
                   QStringLiteral("%1 on port %2").arg(m_spec.program).arg(m_spec.port));
        transition(WorkerState::Failed, free.error() + QStringLiteral("; ") + other.error());
        return false;
    }
    moveToPort(other.value(), free.error());
    return true;
}

void WorkerProcess::moveToPort(quint16 port, const QString &reason) {
    const quint16 from = m_spec.port;
    m_log->note(QStringLiteral("moved to port %1: %2").arg(port).arg(reason));
    m_spec.port = port;
    if (!m_spec.argsTemplate.isEmpty()) {
        m_spec.args = m_spec.argsTemplate;
        for (QString &arg : m_spec.args)
            arg.replace(Site::PortPlaceholder, QString::number(port));
    }
    m_worker.setPort(port);
    openLog(); // the log is named after the port
    m_log->note(QStringLiteral("moved from port %1: %2").arg(from).arg(reason));
    m_movedBecause = QStringLiteral("moved from port %1 (%2)").arg(from).arg(reason);
    Q_EMIT portMoved(from, port, reason);
}

void WorkerProcess::launch() {
    m_worker.setPid(0);
    if (!ensurePortIsOurs()) return;
    m_everLaunched = true;
    QString cause = QStringLiteral("%1 on port %2").arg(m_spec.program).arg(m_spec.port);
    if (!m_movedBecause.isEmpty())
        cause += QStringLiteral("; ") + std::exchange(m_movedBecause, {});
    transition(WorkerState::Starting, cause);
    m_lastProbeError.clear();
    m_process = new QProcess(this);
    m_process->setProgram(m_spec.program);
    m_process->setArguments(m_spec.args);
    if (!m_spec.workingDirectory.isEmpty()) m_process->setWorkingDirectory(m_spec.workingDirectory);
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    for (auto it = m_spec.environment.cbegin(); it != m_spec.environment.cend(); ++it)
        environment.insert(it.key(), it.value());
    environment.insert(QStringLiteral("PORT"), QString::number(m_spec.port));
    m_process->setProcessEnvironment(environment);
    m_process->setProcessChannelMode(QProcess::MergedChannels);
    m_process->setChildProcessModifier([] {
        // Own process group, so a stop reaches the worker's children too; and die with
        // Corral even if Corral is killed with SIGKILL.
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    });
    connect(m_process, &QProcess::readyReadStandardOutput, this,
            [this] { m_log->append(m_process->readAllStandardOutput()); });
    connect(m_process, &QProcess::started, this, &WorkerProcess::onStarted);
    connect(m_process, &QProcess::finished, this,
            [this](int code, QProcess::ExitStatus status) { onFinished(code, int(status)); });
    connect(m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
        if (error == QProcess::FailedToStart) onFailedToStart();
    });
    m_startedAtMs = nowMs();
    m_timer->setProperty(PurposeProperty, int(TimerPurpose::StartDeadline));
    m_timer->start(m_policy.startTimeoutMs);
    m_process->start();
}

void WorkerProcess::onStarted() {
    m_group = m_process->processId();
    m_worker.setPid(m_group);
    ProcessGroupReaper::instance().track(pid_t(m_group));
    m_log->note(QStringLiteral("started pid %1: %2 %3")
                    .arg(m_group)
                    .arg(m_spec.program, m_spec.args.join(QLatin1Char(' '))));
    // A worker is usually ready within tens of milliseconds: probing at once and then after
    // 5, 10, 20, ... ms (up to probeIntervalMs) puts it into rotation that soon, while one
    // that takes seconds costs no more than a probe per interval.
    m_probeDelayMs = m_policy.probeFirstDelayMs;
    probe();
}

void WorkerProcess::onFailedToStart() {
    const QString reason =
        QStringLiteral("cannot start \"%1\": %2").arg(m_spec.program, m_process->errorString());
    m_timer->stop();
    releaseProcess();
    if (state() == WorkerState::Starting) transition(WorkerState::Failed, reason);
}

void WorkerProcess::probe() {
    if (state() != WorkerState::Starting) {
        m_probeTimer->stop();
        return;
    }
    if (m_probe) return; // the previous attempt is still under way
    m_probe = new QTcpSocket(this);
    m_probeReply.clear();
    const auto finish = [this](bool ready, const QString &detail) {
        if (!m_probe) return;
        m_probe->disconnect(this);
        m_probe->abort();
        m_probe->deleteLater();
        m_probe = nullptr;
        onProbeFinished(ready, detail);
    };
    connect(m_probe, &QTcpSocket::connected, this, [this, finish] {
        if (m_spec.healthPath.isEmpty())
            return finish(true, QStringLiteral("port accepts connections"));
        // The request line and Host of healthUrl(): the path from the root, IPv6 in brackets.
        m_probe->write(QStringLiteral("GET %1 HTTP/1.1\r\nHost: %2\r\nUser-Agent: "
                                      "corral-probe\r\nConnection: close\r\n\r\n")
                           .arg(healthRequestPath(m_spec.healthPath),
                                Endpoint{m_spec.address.toString(), m_spec.port}.toString())
                           .toLatin1());
    });
    connect(m_probe, &QTcpSocket::readyRead, this, [this, finish] {
        m_probeReply += m_probe->readAll();
        const qsizetype lineEnd = m_probeReply.indexOf("\r\n");
        if (lineEnd < 0) {
            if (m_probeReply.size() > 4096)
                finish(false,
                       QStringLiteral("GET %1: not an HTTP response").arg(m_spec.healthPath));
            return;
        }
        const int status =
            http::statusOf(std::string_view(m_probeReply.constData(), size_t(m_probeReply.size())));
        finish(status >= 200 && status < 300,
               QStringLiteral("GET %1 answered %2").arg(m_spec.healthPath).arg(status));
    });
    connect(m_probe, &QTcpSocket::errorOccurred, this, [this, finish] {
        finish(false, QStringLiteral("port %1: %2").arg(m_spec.port).arg(m_probe->errorString()));
    });
    m_probe->connectToHost(m_spec.address, m_spec.port);
}

void WorkerProcess::onProbeFinished(bool ready, const QString &detail) {
    if (state() != WorkerState::Starting) return;
    const auto probeAgainLater = [this] {
        m_probeTimer->start(m_probeDelayMs);
        m_probeDelayMs = std::min(m_probeDelayMs * 2, m_policy.probeIntervalMs);
    };
    if (!ready) {
        m_lastProbeError = detail;
        return probeAgainLater();
    }
    if (!processTreeListensOn(m_group, m_spec.port)) {
        // Something answered, but not our worker: another program holds the port.
        const QList<TcpListener> holders = listenersCovering(QHostAddress(), m_spec.port);
        m_lastProbeError = QStringLiteral("%1, but port %2 is held by %3, not by pid %4")
                               .arg(detail)
                               .arg(m_spec.port)
                               .arg(describeHolders(holders))
                               .arg(m_group);
        return probeAgainLater();
    }
    m_probeTimer->stop();
    m_timer->stop();
    m_runningSinceMs = nowMs();
    transition(WorkerState::Running, QStringLiteral("pid %1 ready in %2 ms: %3")
                                         .arg(m_group)
                                         .arg(m_runningSinceMs - m_startedAtMs)
                                         .arg(detail));
    m_runningSinceMs = nowMs(); // transition() clears it for non-serving states only
}

void WorkerProcess::onFinished(int exitCode, int exitStatus) {
    const QString cause =
        exitStatus == QProcess::CrashExit
            ? QStringLiteral("pid %1 killed by signal %2 (%3)")
                  .arg(m_group)
                  .arg(exitCode)
                  .arg(QString::fromLatin1(sigabbrev_np(exitCode) ? sigabbrev_np(exitCode) : "?"))
            : QStringLiteral("pid %1 exited with code %2").arg(m_group).arg(exitCode);
    if (m_process) m_log->append(m_process->readAllStandardOutput());
    signalGroup(SIGKILL); // children the worker left behind would hold its port
    releaseProcess();
    m_probeTimer->stop();
    if (m_probe) {
        m_probe->disconnect(this);
        m_probe->abort();
        m_probe->deleteLater();
        m_probe = nullptr;
    }
    switch (state()) {
    case WorkerState::Stopping:
        m_timer->stop();
        transition(WorkerState::Stopped, cause);
        break;
    case WorkerState::Starting:
    case WorkerState::Running:
    case WorkerState::Unhealthy:
    case WorkerState::Draining:
        m_timer->stop();
        handleCrash(cause);
        break;
    default:
        m_log->note(cause);
        break;
    }
}

void WorkerProcess::handleCrash(const QString &cause) {
    const qint64 now = nowMs();
    const bool wasStable = m_runningSinceMs > 0 && now - m_runningSinceMs >= m_policy.stableResetMs;
    ++m_crashes;
    m_lastCrash = CrashRecord{now, cause};
    transition(WorkerState::Crashed, cause);
    if (wasStable) m_backoffMs = m_policy.backoffInitialMs;
    m_crashTimes.push_back(now);
    while (!m_crashTimes.empty() && now - m_crashTimes.front() > m_policy.crashWindowMs)
        m_crashTimes.pop_front();
    if (int(m_crashTimes.size()) >= m_policy.crashLimit) {
        transition(WorkerState::Failed, QStringLiteral("crashed %1 times within %2; not restarting")
                                            .arg(m_crashTimes.size())
                                            .arg(formatDelay(m_policy.crashWindowMs)));
        return;
    }
    const int delay = m_backoffMs;
    m_backoffMs = qMin(m_backoffMs * 2, m_policy.backoffMaxMs);
    ++m_restarts;
    transition(WorkerState::Backoff,
               QStringLiteral("restart #%1 in %2").arg(m_restarts).arg(formatDelay(delay)));
    m_timer->setProperty(PurposeProperty, int(TimerPurpose::Backoff));
    m_timer->start(delay);
}

void WorkerProcess::stop() {
    switch (state()) {
    case WorkerState::Stopped:
    case WorkerState::Stopping:
        return;
    case WorkerState::Backoff:
    case WorkerState::Crashed:
    case WorkerState::Failed:
        m_timer->stop();
        if (m_process) {
            signalGroup(SIGKILL);
            m_process->disconnect(this);
            m_process->waitForFinished(m_policy.killTimeoutMs);
            releaseProcess();
        }
        transition(WorkerState::Stopped, QStringLiteral("stop requested"));
        return;
    case WorkerState::Starting:
    case WorkerState::Running:
    case WorkerState::Unhealthy:
    case WorkerState::Draining:
        break;
    }
    transition(WorkerState::Stopping, QStringLiteral("SIGTERM to process group %1").arg(m_group));
    if (!m_process || m_group <= 0) { // still being spawned: nothing to signal yet
        if (m_process) {
            m_process->kill();
            m_process->waitForFinished(m_policy.killTimeoutMs);
        }
        return;
    }
    signalGroup(SIGTERM);
    m_timer->setProperty(PurposeProperty, int(TimerPurpose::KillTimeout));
    m_timer->start(m_policy.killTimeoutMs);
}

void WorkerProcess::setDraining(bool draining) {
    if (draining && (state() == WorkerState::Running || state() == WorkerState::Unhealthy))
        transition(WorkerState::Draining, QStringLiteral("no new requests"));
    else if (!draining && state() == WorkerState::Draining)
        transition(WorkerState::Running, QStringLiteral("re-enabled"));
}

void WorkerProcess::signalGroup(int signal) {
    if (m_group > 1) ::kill(pid_t(-m_group), signal);
}

void WorkerProcess::releaseProcess() {
    if (m_group > 1) {
        ProcessGroupReaper::instance().untrack(pid_t(m_group));
        m_previousGroup = m_group;
    }
    m_group = 0;
    m_worker.setPid(0); // the process is gone (and its pid may be reused): never show it
    if (m_process) {
        m_process->disconnect(this);
        m_process->deleteLater();
        m_process = nullptr;
    }
}

} // namespace corral
