#pragma once

#include "util/Result.h"

#include <QString>

#include <functional>
#include <memory>

namespace corral {

class SshChannel;
class SshSession;
struct RemoteBalancer;

/// One operation at a time on a site (apply, add-backend, rolling restart, from corralctl or
/// the console): an exclusive lock on this machine and one on the balancer host, held for the
/// whole operation.
///
/// Local: flock(2) on $XDG_RUNTIME_DIR/corral/locks/SITE-ID.lock (without XDG_RUNTIME_DIR:
/// ~/.local/state/corral/locks/; ID: the balancer's address
/// and config path, so two inventories' sites of one name do not block each other); the file
/// holds the holder's description. Remote: `flock` on STATEDIR/lock, taken by a command left
/// running on a channel of the operation's own SSH session (SshSession::start): it reads its
/// stdin until the lock is released, so when the connection dies the lock goes with it and
/// no stale lock is left behind. STATEDIR/lock.holder says who holds it.
///
/// A holder is described as "HOST pid PID (COMMAND) since TIME". Released by the destructor
/// (the lock must not outlive its SshSession).
class SiteLock {
public:
    struct Options {
        /// Fail at once when the site is held (`--no-wait`), instead of waiting.
        bool noWait = false;
        /// What this operation is, e.g. "corralctl apply shop": shown to the next one.
        QString command;
        /// Called once when the lock is held by someone else and this call waits, with the
        /// holder's description.
        std::function<void(const QString &holder)> onWaiting;
        /// How long to wait at most; 0: no limit.
        int timeoutMs = 0;
    };

    /// Takes the local lock, then the one on `target`'s host over `session`. Fails naming the
    /// holder ("site shop is locked on web1 by ...") with noWait, at the deadline, or when
    /// the host cannot be reached.
    static Result<std::unique_ptr<SiteLock>> acquire(SshSession &session,
                                                     const RemoteBalancer &target,
                                                     const QString &hostName,
                                                     const Options &options);
    ~SiteLock();
    SiteLock(const SiteLock &) = delete;
    SiteLock &operator=(const SiteLock &) = delete;

    /// False once the connection that holds the remote lock has gone.
    bool isHeld() const;
    /// STATEDIR/lock on the host.
    QString remotePath() const { return m_remotePath; }
    /// The local lock file.
    QString localPath() const { return m_localPath; }
    /// This process as a holder: "HOST pid PID (COMMAND) since TIME".
    static QString describeSelf(const QString &command);

private:
    SiteLock() = default;

    int m_localFd = -1;
    bool m_localHeld = false;
    QString m_localPath;
    QString m_remotePath;
    std::unique_ptr<SshChannel> m_remote;
};

} // namespace corral
