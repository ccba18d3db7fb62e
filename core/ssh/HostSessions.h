#pragma once

#include "model/Host.h"
#include "util/Result.h"

#include <QHash>
#include <QList>
#include <QString>

#include <vector>

#include <functional>
#include <memory>

namespace corral {

class SshSession;

/// The SSH sessions of one operation: one per inventory host, opened on first use and kept
/// until the operation ends, whoever runs it (corralctl, the console). How a session is
/// opened (secrets from the keychain or a prompt, host-key policy) is the front end's
/// `Opener`; which host a step needs is the operation's business. Blocking and
/// single-threaded, like SshSession.
class HostSessions {
public:
    /// Opens a connected session to `host`; the error names the host.
    using Opener = std::function<Result<std::unique_ptr<SshSession>>(const Host &host)>;

    HostSessions(QList<Host> hosts, Opener open);
    ~HostSessions();
    HostSessions(const HostSessions &) = delete;
    HostSessions &operator=(const HostSessions &) = delete;

    /// Uses `session` (owned by the caller, outliving this object) for host `hostName`: the
    /// console lends the session of the host whose thread runs the operation.
    void lend(const QString &hostName, SshSession *session);
    /// The session to inventory host `hostName`, opened now if it is not yet.
    Result<SshSession *> session(const QString &hostName);
    const QList<Host> &hosts() const { return m_hosts; }
    const Host *host(const QString &name) const;

private:
    QList<Host> m_hosts;
    Opener m_open;
    QHash<QString, SshSession *> m_sessions;
    std::vector<std::unique_ptr<SshSession>> m_owned;
};

} // namespace corral
