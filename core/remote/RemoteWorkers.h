#pragma once

#include "model/Site.h"
#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QSet>
#include <QString>
#include <QStringList>

namespace corral {

class SshSession;

/// A remote worker as the fallback supervisor sees it.
struct RemoteWorkerStatus {
    quint16 port = 0;
    bool running = false;
    qint64 pid = 0;
};

/// A process listening on a worker's port, as the host's /proc shows it.
struct PortHolder {
    qint64 pid = 0;
    qint64 parentPid = 0;
    QString startTime;        ///< field 22 of /proc/PID/stat: what a pid file records with it
    QStringList argv;         ///< /proc/PID/cmdline; empty when unreadable
    QString workingDirectory; ///< /proc/PID/cwd; empty when unreadable
    QString systemdUnit;      ///< the .service its cgroup belongs to (other than user@*); or empty
    bool underPidFileWorker = false; ///< the pid file's worker, its process group or a child
};

/// What serves one worker port on its host, read before a rolling restart touches it
/// (RemoteWorkers::inspect(): one command over SSH).
struct WorkerInspection {
    enum class Listeners {
        Unknown, ///< the host has no usable ss
        None,    ///< nothing listens on the port
        Some,    ///< see holders (empty when only another user's processes hold it)
    };
    quint16 port = 0;
    QString home;    ///< $HOME of the SSH user on the host
    QString pidFile; ///< absolute path on the host
    QString logFile; ///< absolute path on the host
    bool pidFilePresent = false;
    qint64 pidFileWorker = 0; ///< the pid file's process when it is alive; 0 otherwise
    bool systemdUnit = false; ///< systemd runs and corral-SITE@.service is installed
    Listeners listeners = Listeners::Unknown;
    QList<PortHolder> holders;

    /// How RemoteWorkers::restart() would restart it: systemctl (unit, no pid file).
    bool restartsWithSystemd() const { return systemdUnit && !pidFilePresent; }
};

/// Runs a site's workers on a remote host. Two ways:
///  - systemd (hosts where it runs): a template unit `corral-SITE@.service` with
///    `Environment=PORT=%i` and `Restart=always`, one instance per port, like the seeds'
///    `rocketchat@.service`;
///  - the fallback (no systemd, and what the tests exercise): each worker runs under a small
///    detached supervisor loop (`setsid nohup sh -c ...`, the process-group leader) with
///    `~/.local/state/corral/workers/SITE/PORT.pid` (the loop's pid) and `PORT.log` on the
///    host, started, stopped and checked over SSH. The loop restarts a worker that exits,
///    with backoff (150 ms doubling to 10 s, reset after a 10 s run; one "corral: worker
///    exited with status N, restarting in Xs" line in the log each time; after 10 exits
///    within 60 s it gives up and the worker shows as stopped), on the host, whether Corral
///    is connected or not; restartStopped() covers a loop that ended or died itself.
/// The command builders are pure (every user-supplied word goes through shellQuote());
/// the methods taking an SshSession run them.
class RemoteWorkers {
public:
    // systemd.
    static QString unitName(const QString &site);                   ///< corral-SITE@.service
    static QString instanceName(const QString &site, quint16 port); ///< corral-SITE@PORT
    /// The template unit. `{port}` in the arguments becomes %i. Fails when a field cannot be
    /// expressed (a command that is not an absolute path, a bad variable name).
    static Result<QString> systemdUnit(const Site &site, const QString &user = QString());
    /// Where the unit is staged (relative to the remote home) before it is verified/installed.
    static QString stagedUnitPath(const QString &site);
    /// `systemd-analyze verify` on the staged unit; prints "@@skipped" and exits 0 when the
    /// host has no systemd-analyze.
    static QString verifyUnitCommand(const QString &site);
    /// Copies the staged unit to /etc/systemd/system and runs daemon-reload (sudo -n if not root).
    static QString installUnitCommand(const QString &site);
    /// start, stop or restart of one instance (sudo -n if not root).
    static QString systemctlCommand(const QString &action, const QString &site, quint16 port);

    // The detached-process fallback.
    /// Starts one worker with PORT=port under its supervisor loop, unless its pid file names a
    /// live process. Prints "pid N" (or "already running pid N"), N the loop's pid.
    static Result<QString> startCommand(const Site &site, quint16 port);
    /// SIGTERM to the supervisor loop, which passes it once to its process group (an adopted
    /// worker: SIGTERM to its process group), SIGKILL to the group after `graceMs`, then removes
    /// the pid file. Exits 1 (stderr says why) unless the loop, the worker and the rest of their
    /// group are gone and the pid file removed.
    static QString stopCommand(const QString &site, quint16 port, int graceMs = 5000);
    /// One line per port: "PORT running PID" or "PORT stopped".
    static QString statusCommand(const QString &site, const QList<quint16> &ports);
    static QList<RemoteWorkerStatus> parseStatus(const QByteArray &output);
    /// Who listens on TCP `port`, as `ss -ltnp` shows it: exits 0 printing "worker" when
    /// `pid`, a descendant of it or a member of its process group does; 1 printing
    /// "other PID..." when only other processes do (or ones this user cannot see); 2 when
    /// nothing listens; 3 when the host has no usable ss.
    static QString portHolderCommand(qint64 pid, quint16 port);
    static QString logPath(const QString &site, quint16 port); ///< relative to the remote home
    /// The worker's pid file (".pid") or log (".log") as an absolute path under `home`, the
    /// remote $HOME (homeDirectory()), for messages.
    static QString workerFile(const QString &home, const QString &site, quint16 port,
                              const QString &suffix);
    /// $HOME of the SSH user on the host.
    static Result<QString> homeDirectory(SshSession &session);

    // Workers Corral did not start.
    /// Reads everything inspect() returns, in one command: the pid file, whether the systemd
    /// unit is installed, and each process listening on `port` (`ss -ltnp`) with its
    /// /proc/PID/stat, cmdline, cwd and cgroup.
    static QString inspectCommand(const QString &site, quint16 port);
    static Result<WorkerInspection> parseInspection(const QByteArray &output, const QString &site,
                                                    quint16 port);
    static Result<WorkerInspection> inspect(SshSession &session, const QString &site, quint16 port);
    /// Records a running process Corral did not start as the worker of `port`: writes its pid
    /// file (pid and start time, atomically), so stop() and restart() replace it. Refuses
    /// when the pid file already names a live process or `pid` no longer has `startTime`.
    static QString adoptCommand(const QString &site, quint16 port, qint64 pid,
                                const QString &startTime);
    static Result<void> adopt(SshSession &session, const QString &site, quint16 port, qint64 pid,
                              const QString &startTime);
    /// `argv` with the port number (as a whole number, e.g. "3001", "--port=3001",
    /// "127.0.0.1:3001") replaced by Site::PortPlaceholder in every argument after the first.
    /// `containsPort` says whether any was.
    static QStringList templateArguments(const QStringList &argv, quint16 port,
                                         bool *containsPort = nullptr);

    // Ports.
    /// `ss -tan`: every TCP socket on the host, in any state.
    static QString listeningPortsCommand();
    /// The local ports of those sockets: listeners, and the local ends of connections (which
    /// a worker could not bind either).
    static QSet<quint16> parseListeningPorts(const QByteArray &ssOutput);
    /// `count` ports from `basePort` upwards that nothing listens on and that are not
    /// `reserved` (other Corral workers on that host); `remembered` ones first when free: the
    /// rule of local sites too (pickPorts() in util/PortRule.h), `listening` what is taken.
    static Result<QList<quint16>> allocatePorts(const QSet<quint16> &listening, quint16 basePort,
                                                int count, const QList<quint16> &remembered = {},
                                                const QSet<quint16> &reserved = {});

    // Blocking helpers over one session (CLI, or inside SshHost::call()).
    static Result<QList<quint16>> allocatePorts(SshSession &session, const Site &site, int count,
                                                const QSet<quint16> &reserved = {});
    static Result<qint64> start(SshSession &session, const Site &site, quint16 port);
    /// stopCommand(): succeeds only when the host confirmed that the worker is gone and its
    /// pid file removed.
    static Result<void> stop(SshSession &session, const QString &site, quint16 port,
                             int graceMs = 5000);
    static Result<QList<RemoteWorkerStatus>> status(SshSession &session, const QString &site,
                                                    const QList<quint16> &ports);
    /// Starts every worker of `ports` whose supervisor loop is not running (the loop itself was
    /// killed, or the host rebooted) and returns the ports restarted. A worker that exits is
    /// restarted by its loop on the host, without this.
    static Result<QList<quint16>> restartStopped(SshSession &session, const Site &site,
                                                 const QList<quint16> &ports);
    /// Restarts one worker so that a new process serves `port`. When the host runs systemd
    /// and knows the template unit (/etc/systemd/system/corral-SITE@.service) while no
    /// fallback pid file exists for the port: `systemctl restart` of the instance
    /// (systemctlCommand()). Otherwise the fallback: stop (SIGTERM, SIGKILL after
    /// `graceMs`), then start. Returns the new main pid (0 when systemd does not tell).
    static Result<qint64> restart(SshSession &session, const Site &site, quint16 port,
                                  int graceMs = 5000);
    /// Prints "systemd" or "fallback": how restart() restarts that worker on the host.
    static QString restartModeCommand(const QString &site, quint16 port);
    /// The shell condition behind restartModeCommand(): true on the host when worker `port`
    /// runs as the systemd instance corral-SITE@PORT (the unit is installed, systemd runs and
    /// no fallback pid file exists). For scripts that choose, e.g. journalctl or the log file.
    static QString systemdInstanceCondition(const QString &site, quint16 port);
    /// The URL a worker's health is probed at on its own host: the site's health path (or
    /// "/") on ADDRESS:PORT, where ADDRESS is the one the balancer will use (a worker bound
    /// to a private address only does not answer on 127.0.0.1).
    static QString healthUrl(const Site &site, quint16 port,
                             const QString &address = QStringLiteral("127.0.0.1"));
    /// Polls healthUrl() with curl on the worker's host until it answers 2xx (any status
    /// without a health path), or fails at `timeoutMs` with the last answer.
    static Result<void> waitHealthy(SshSession &session, const Site &site, quint16 port,
                                    int timeoutMs = 15000,
                                    const QString &address = QStringLiteral("127.0.0.1"));
    /// Writes the unit to stagedUnitPath() (atomic upload) and runs systemd-analyze verify on
    /// it. True when verified, false when the host has no systemd-analyze (skipped); an error
    /// carries systemd-analyze's complaint.
    static Result<bool> stageAndVerifyUnit(SshSession &session, const Site &site,
                                           const QString &user = QString());
    /// stageAndVerifyUnit(), then installUnitCommand(): the unit is ready for systemctlCommand().
    static Result<void> installUnit(SshSession &session, const Site &site,
                                    const QString &user = QString());
};

} // namespace corral
