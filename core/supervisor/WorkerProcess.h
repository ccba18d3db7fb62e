#pragma once

#include "model/Worker.h"
#include "util/Result.h"

#include <QHostAddress>
#include <QMap>
#include <QObject>
#include <QStringList>

#include <deque>
#include <functional>
#include <memory>

class QProcess;
class QTcpSocket;
class QTimer;

namespace corral {

class RotatingLog;

/// Timeouts and limits of supervision; the defaults follow PM2's behaviour.
struct SupervisionPolicy {
    int startTimeoutMs = 30000; ///< a worker not ready by then is failed
    int killTimeoutMs = 5000;   ///< SIGTERM, then SIGKILL the whole group after this
    int backoffInitialMs = 100; ///< first restart delay after a crash
    int backoffMaxMs = 15000;   ///< the delay doubles up to this
    int stableResetMs = 30000;  ///< running this long resets the delay
    int crashLimit = 10;        ///< this many crashes ...
    int crashWindowMs = 60000;  ///< ... within this window: failed, no more restarts
    int probeFirstDelayMs = 5;  ///< readiness polling: first retry after this, doubling ...
    int probeIntervalMs = 100;  ///< ... up to this
    qint64 logMaxBytes = 10 * 1024 * 1024;
    int logKeep = 3;
    QString logDirectory; ///< empty: $XDG_STATE_HOME/corral/logs
};

/// Where a site's logs go (each worker's PORT.log, the embedded proxy's access.log):
/// `logDirectory` (SupervisionPolicy's; empty: $XDG_STATE_HOME/corral/logs) / `site`.
QString siteLogDirectory(const QString &logDirectory, const QString &site);

/// How to run one worker.
struct WorkerSpec {
    QString site;
    QString program;
    QStringList args; ///< {port} already substituted
    /// `args` before substitution; when set, a worker moved to another port (its port was
    /// taken) gets its arguments rebuilt from it.
    QStringList argsTemplate;
    QString workingDirectory;
    QMap<QString, QString> environment;
    QHostAddress address = QHostAddress::LocalHost;
    quint16 port = 0;
    QString healthPath; ///< empty: a TCP connect means ready
};

/// The last time a worker's process died without being asked to.
struct CrashRecord {
    qint64 atMs = 0; ///< ms since the epoch; 0 when it never crashed
    QString cause;   ///< "exited with code 7", "killed by signal 9 (KILL)"
};

/// Picks another port for a worker whose port someone else took; fails when none is free.
using PortRelocator = std::function<Result<quint16>(quint16 takenPort)>;

/// One supervised worker process: started in its own process group, probed until ready,
/// restarted with exponential backoff when it crashes, stopped with SIGTERM then SIGKILL.
/// Every transition is written to the worker's log with its cause.
class WorkerProcess : public QObject {
    Q_OBJECT
public:
    WorkerProcess(WorkerSpec spec, SupervisionPolicy policy, QObject *parent = nullptr);
    ~WorkerProcess() override;

    const Worker &worker() const { return m_worker; }
    WorkerState state() const { return m_worker.state(); }
    quint16 port() const { return m_spec.port; }
    qint64 pid() const { return m_worker.pid(); }
    const WorkerSpec &spec() const { return m_spec; }
    /// Takes effect at the next start (rolling restarts deploy new commands this way).
    void setSpec(const WorkerSpec &spec) { m_spec = spec; }
    /// Every restart: after a crash, a manual restart or retry, a rolling-restart replacement.
    int restarts() const { return m_restarts; }
    /// Crashes since the worker was created (a fresh start does not reset this count).
    int crashes() const { return m_crashes; }
    const CrashRecord &lastCrash() const { return m_lastCrash; }
    /// Called before each launch when something else listens on the worker's port: the worker
    /// moves to the port it returns (logged, with the holder). Without one, or when it fails,
    /// the worker fails naming the holder.
    void setPortRelocator(PortRelocator relocator) { m_relocate = std::move(relocator); }
    /// Milliseconds since the epoch when the current process became ready; 0 if not running.
    qint64 runningSinceMs() const { return m_runningSinceMs; }
    const RotatingLog &log() const { return *m_log; }

    /// stopped | failed -> starting. A fresh start clears the crash history.
    void start();
    /// Any state -> stopping -> stopped (backoff, crashed and failed go to stopped directly).
    void stop();
    /// running | unhealthy -> draining; draining -> running when `draining` is false.
    void setDraining(bool draining);

Q_SIGNALS:
    /// Emitted after every transition, with its cause ("exit code 3", "killed by signal 9", ...).
    void stateChanged(corral::WorkerState state, const QString &cause);
    /// The worker moved from `from` to `to` because `reason` (someone else holds `from`); emitted
    /// before the launch on the new port.
    void portMoved(quint16 from, quint16 to, const QString &reason);

private:
    void transition(WorkerState next, const QString &cause);
    void launch();
    /// False (and the worker failed) when the port is taken and no other port could be had.
    bool ensurePortIsOurs();
    /// True when whoever listens on the port belongs to our previous (killed) process group.
    bool heldByOurPreviousGroup() const;
    void moveToPort(quint16 port, const QString &reason);
    void openLog();
    void onStarted();
    void onFinished(int exitCode, int exitStatus);
    void onFailedToStart();
    void probe();
    void onProbeFinished(bool ready, const QString &detail);
    void handleCrash(const QString &cause);
    void signalGroup(int signal);
    void releaseProcess();

    WorkerSpec m_spec;
    SupervisionPolicy m_policy;
    Worker m_worker;
    std::unique_ptr<RotatingLog> m_log;
    QProcess *m_process = nullptr;
    QTimer *m_timer = nullptr;      ///< backoff, start deadline and kill timeout
    QTimer *m_probeTimer = nullptr; ///< readiness polling: the next probe, single-shot
    int m_probeDelayMs = 0;         ///< before the next probe; doubles per failed probe
    QTcpSocket *m_probe = nullptr;
    QByteArray m_probeReply;
    QString m_lastProbeError;
    qint64 m_group = 0;
    qint64 m_previousGroup = 0; ///< the group of the process before this one
    qint64 m_startedAtMs = 0;
    qint64 m_runningSinceMs = 0;
    int m_backoffMs = 0;
    int m_restarts = 0;
    int m_crashes = 0;
    bool m_everLaunched = false;
    CrashRecord m_lastCrash;
    QString m_movedBecause; ///< told in the next "starting" cause
    PortRelocator m_relocate;
    std::deque<qint64> m_crashTimes;
};

} // namespace corral
