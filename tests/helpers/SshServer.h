#pragma once

#include "model/Host.h"
#include "ssh/SshSession.h"

#include <QProcess>
#include <QString>
#include <QTemporaryDir>

/// A real OpenSSH server for tests, on a loopback address of its own (127.0.0.2, 127.0.0.3,
/// ...), with host and client keys generated in a temporary directory. Never touches the
/// system's sshd or its keys. Stopped by PID when destroyed.
class SshServer {
public:
    explicit SshServer(const QString &address = QStringLiteral("127.0.0.2"));
    ~SshServer();
    SshServer(const SshServer &) = delete;
    SshServer &operator=(const SshServer &) = delete;

    /// Generates keys (first time only), writes the config and starts sshd, waiting until the
    /// port accepts. `error` says why not.
    bool start(QString *error, bool passwordAuthentication = false);
    /// start() in three steps, so that many servers start at once (the fleet fixture): the
    /// keys (first time only; no QObject of this server is used, so any thread may run it)...
    bool prepare(QString *error);
    /// ... then sshd started without waiting (on this object's thread)...
    bool launch(QString *error, bool passwordAuthentication = false);
    /// ... then the wait until its port accepts.
    bool waitUntilListening(QString *error, int timeoutMs = 10000);
    /// Environment assignments ("NAME=VALUE", no spaces) every session of this server gets
    /// (sshd's SetEnv; HOME too): the fleet fixture gives each "host" its own. Before start().
    void setSessionEnvironment(const QStringList &assignments) {
        m_sessionEnvironment = assignments;
    }
    /// SIGTERM to sshd (by PID) and waits; connections already open keep their own processes.
    void stop();
    /// SIGKILL to sshd and every process below it (the per-connection handlers): the server
    /// vanishes mid-command.
    void killHard();
    /// Replaces the host key with a new one of the same type and restarts on the same port.
    bool restartWithNewHostKey(QString *error);

    QString address() const { return m_address; }
    quint16 port() const { return m_port; }
    QString directory() const { return m_dir.path(); }
    /// An authorised client key (no passphrase) and one the server does not know.
    QString clientKey() const;
    QString strangerKey() const;
    /// The host key's "SHA256:..." fingerprint, from ssh-keygen.
    QString hostFingerprint() const;
    /// A config for root with the client key, known_hosts files inside the temp dir.
    corral::SshConfig config(const QString &user = QStringLiteral("root")) const;
    /// config() that trusts the host key on first use (as after the console's "Add host").
    corral::SshConfig trustedConfig(const QString &user = QStringLiteral("root")) const;
    /// This server as an inventory host called `name`: SSH to address():port() as `user`
    /// with the client key (key-file authentication).
    corral::Host inventoryHost(const QString &name,
                               const QString &user = QStringLiteral("root")) const;
    qint64 pid() const { return m_process.processId(); }
    /// sshd's per-connection processes (its direct children): one per open SSH connection,
    /// whatever runs inside it. A client that logs in afresh shows up with a new pid.
    QList<qint64> connectionPids() const;

    /// A throwaway local account with a password and a home in /tmp (needs root). Removed by
    /// removeUser() or the destructor.
    bool createUser(const QString &name, const QString &password, QString *error);
    void removeUser();
    QString userHome() const { return m_userHome; }

private:
    bool generateKey(const QString &path, QString *error) const;

    QString m_address;
    quint16 m_port = 0;
    QTemporaryDir m_dir;
    QProcess m_process;
    QString m_user;
    QString m_userHome;
    bool m_passwordAuthentication = false;
    QStringList m_sessionEnvironment;
};
