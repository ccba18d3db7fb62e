#pragma once

#include "model/Host.h"
#include "ssh/HostSessions.h"
#include "ssh/SshHost.h"

#include <QHash>
#include <QList>
#include <QObject>
#include <QString>

#include <functional>

namespace corral {

class CredentialStore;

/// The console's connections to the inventory's SSH hosts, in one place: one kept-connected
/// SshHost per host (SshPool), the secrets entered this session or read from the OS keychain
/// (CredentialStore::keyFor() says which entry), and the sessions an operation opens on
/// other hosts than the one whose thread runs it (opener()). Front ends ask it for hosts
/// and never handle sessions or secrets themselves.
class HostConnections : public QObject {
    Q_OBJECT

public:
    explicit HostConnections(QObject *parent = nullptr);
    ~HostConnections() override;

    /// The inventory's hosts (only SSH ones are kept): a host that is gone or whose settings
    /// changed loses its session; every host is kept connected from now on, its secret read
    /// from the keychain first when it needs one.
    void setHosts(const QList<Host> &hosts);
    const QList<Host> &hosts() const { return m_hosts; }
    /// The SshHost of inventory host `name`; null when it is not an SSH host of the inventory.
    SshHost *host(const QString &name);
    /// How to reach `host`, with the secret known for it this session.
    SshConfig configFor(const Host &host) const;

    /// Closes the host's session and connects again (a new login).
    void reconnect(const QString &name);
    /// A secret the user entered for `host`: used from now on and stored in the keychain;
    /// `onKeychainError` is told when the keychain refused it (it stays in memory then).
    void rememberSecret(const Host &host, const QString &secret, QObject *context,
                        std::function<void(const QString &error)> onKeychainError);
    /// Forgets a removed host's secrets, in memory and in the keychain.
    void forgetSecrets(const QString &name);

    /// Opens a session to an inventory host with what is known now (its secret included),
    /// for HostSessions; safe to call on any thread.
    HostSessions::Opener opener() const;

    /// Runs `job` on the thread of inventory host `runOn` (its session lent to the job's
    /// HostSessions, which open the other hosts' sessions as needed) and delivers its value
    /// to `done` on `context`'s thread. False (nothing runs) when `runOn` is not an SSH host.
    template <typename T>
    bool run(const QString &runOn, std::function<T(HostSessions &)> job, QObject *context,
             std::function<void(T)> done) {
        SshHost *ssh = host(runOn);
        if (!ssh) return false;
        ssh->call<T>(
            [hosts = m_hosts, open = opener(), runOn,
             job = std::move(job)](SshSession &session) -> Result<T> {
                HostSessions sessions(hosts, open);
                sessions.lend(runOn, &session);
                return job(sessions);
            },
            context,
            [done = std::move(done)](Result<T> value) {
                if (value && done) done(std::move(value).value());
            });
        return true;
    }

Q_SIGNALS:
    /// A host went online, or offline (`reason`).
    void hostStateChanged(const QString &name, bool online, const QString &reason);

private:
    /// Keeps `host` connected, reading its secret from the keychain first when needed.
    void keepConnected(const Host &host);

    QList<Host> m_hosts;
    SshPool *m_pool = nullptr;
    CredentialStore *m_credentials = nullptr;
    QHash<QString, QString> m_secrets; ///< by host name; never written anywhere
};

} // namespace corral
