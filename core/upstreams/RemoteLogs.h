#pragma once

#include "model/Host.h"
#include "model/Site.h"
#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <atomic>
#include <functional>

namespace corral {

class SshSession;

/// One log of a production site, read on the host that has it: a worker's (journalctl of its
/// systemd instance, or its fallback PORT.log) or the balancer's error log.
struct RemoteLogSource {
    QString name;    ///< the backend's key "ADDRESS:PORT", or RemoteLogs::BalancerName
    QString host;    ///< the inventory host it is read on
    QString command; ///< prints it there (RemoteLogs::workerLogCommand(), fileLogCommand())
};

/// The logs of production sites (workers on SSH hosts, a balancer on one), over SSH.
/// Blocking, like RemoteWorkers: run it in a command-line tool or on an SshHost thread.
class RemoteLogs {
public:
    /// The pseudo-worker that stands for the balancer's error log.
    static inline const QString BalancerName = QStringLiteral("balancer");

    /// The last `lines` lines of worker `port` of `site`, and with `follow` every line written
    /// after them until the channel closes: `journalctl -u corral-SITE@PORT -n N [-f]
    /// --no-pager` where the worker runs as that systemd instance
    /// (RemoteWorkers::systemdInstanceCondition()), else `tail -n N [-F]` of its fallback log.
    static QString workerLogCommand(const QString &site, quint16 port, int lines, bool follow);
    /// `tail -n N [-F] -- PATH`, following as above.
    static QString fileLogCommand(const QString &path, int lines, bool follow);

    /// The logs of `site` (it needs a balancer): every backend, on the host that runs it
    /// (workerHostFor()), then the balancer's error log when it has one. `only`: a backend
    /// key ("ADDRESS:PORT") or "balancer", that log alone; an error names the choices.
    static Result<QList<RemoteLogSource>> sources(const Site &site, const QList<Host> &hosts,
                                                  const QString &only, int lines, bool follow);

    /// Runs a source's (not following) command: its lines, without their newlines.
    static Result<QList<QByteArray>> lastLines(SshSession &session, const RemoteLogSource &source,
                                               int timeoutMs = 30000);

    /// A connected session to an inventory host, by name; owned by the caller.
    using SessionResolver = std::function<Result<SshSession *>(const QString &hostName)>;
    /// Runs every (following) source's command, each on a channel of its own over its host's
    /// session, and hands each complete line to `onLine` as it arrives, until `*cancel` is set
    /// (looked at every 100 ms or so). Then every channel is closed, which ends the reader on
    /// the host (the commands stop when their stdin closes). Fails, naming the source, when a
    /// reader ends by itself or its connection drops.
    static Result<void>
    follow(const QList<RemoteLogSource> &sources, const SessionResolver &sessions,
           const std::function<void(const QString &source, const QByteArray &line)> &onLine,
           const std::atomic<bool> &cancel);
};

} // namespace corral
