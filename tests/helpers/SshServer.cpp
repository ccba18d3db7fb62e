#include "SshServer.h"

#include "TestProcess.h"
#include "util/ListeningSockets.h"

#include <QDir>
#include <QFile>
#include <QHostAddress>
#include <QTcpServer>

#include <csignal>

#include <dirent.h>

namespace {

bool run(const QString &program, const QStringList &args, QString *error,
         const QByteArray &input = {}) {
    QProcess process;
    process.start(program, args);
    if (!input.isEmpty()) process.write(input);
    process.closeWriteChannel();
    if (!process.waitForFinished(30000) || process.exitStatus() != QProcess::NormalExit ||
        process.exitCode() != 0) {
        if (error)
            *error = program + QLatin1Char(' ') + args.join(QLatin1Char(' ')) +
                     QStringLiteral(" failed: ") +
                     QString::fromUtf8(process.readAllStandardError()) + process.errorString();
        return false;
    }
    return true;
}

// Every descendant of `root`, from /proc (ppid links).
QList<qint64> descendants(qint64 root) {
    QHash<qint64, QList<qint64>> children;
    corral::test::forEachProcessStat([&](qint64 pid, const QList<QByteArray> &fields) {
        if (fields.size() > 1) children[fields.at(1).toLongLong()].append(pid);
    });
    QList<qint64> result;
    QList<qint64> stack{root};
    while (!stack.isEmpty()) {
        for (qint64 child : children.value(stack.takeLast())) {
            result.append(child);
            stack.append(child);
        }
    }
    return result;
}

} // namespace

SshServer::SshServer(const QString &address)
    : m_address(address) {
    m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
}

SshServer::~SshServer() {
    stop();
    removeUser();
}

QString SshServer::clientKey() const {
    return m_dir.filePath(QStringLiteral("client_ed25519"));
}

QString SshServer::strangerKey() const {
    return m_dir.filePath(QStringLiteral("stranger_ed25519"));
}

bool SshServer::generateKey(const QString &path, QString *error) const {
    QFile::remove(path);
    QFile::remove(path + QStringLiteral(".pub"));
    return run(QStringLiteral("ssh-keygen"),
               {QStringLiteral("-q"), QStringLiteral("-t"), QStringLiteral("ed25519"),
                QStringLiteral("-N"), QString(), QStringLiteral("-C"),
                QStringLiteral("corral-test"), QStringLiteral("-f"), path},
               error);
}

QString SshServer::hostFingerprint() const {
    QProcess process;
    process.start(QStringLiteral("ssh-keygen"),
                  {QStringLiteral("-l"), QStringLiteral("-E"), QStringLiteral("sha256"),
                   QStringLiteral("-f"), m_dir.filePath(QStringLiteral("host_ed25519.pub"))});
    process.waitForFinished(10000);
    // "256 SHA256:xxxx comment (ED25519)"
    return QString::fromUtf8(process.readAllStandardOutput()).section(QLatin1Char(' '), 1, 1);
}

corral::SshConfig SshServer::config(const QString &user) const {
    corral::SshConfig config;
    config.address = m_address;
    config.port = m_port;
    config.user = user;
    config.auth = corral::Host::Auth::KeyFile;
    config.keyPath = clientKey();
    config.knownHostsFile = m_dir.filePath(QStringLiteral("corral/known_hosts"));
    config.userKnownHostsFile = m_dir.filePath(QStringLiteral("dot-ssh/known_hosts"));
    config.connectTimeoutMs = 5000;
    return config;
}

corral::SshConfig SshServer::trustedConfig(const QString &user) const {
    corral::SshConfig trusted = config(user);
    trusted.acceptNew = true;
    return trusted;
}

corral::Host SshServer::inventoryHost(const QString &name, const QString &user) const {
    corral::Host host;
    host.name = name;
    host.kind = corral::Host::Kind::Ssh;
    host.address = m_address;
    host.port = m_port;
    host.user = user;
    host.auth = corral::Host::Auth::KeyFile;
    host.keyPath = clientKey();
    return host;
}

bool SshServer::start(QString *error, bool passwordAuthentication) {
    return prepare(error) && launch(error, passwordAuthentication) && waitUntilListening(error);
}

bool SshServer::prepare(QString *error) {
    if (!m_dir.isValid()) {
        *error = QStringLiteral("no temporary directory");
        return false;
    }
    const QString hostKey = m_dir.filePath(QStringLiteral("host_ed25519"));
    if (QFile::exists(hostKey)) return true;
    if (!generateKey(hostKey, error) || !generateKey(clientKey(), error) ||
        !generateKey(strangerKey(), error))
        return false;
    QFile::copy(clientKey() + QStringLiteral(".pub"),
                m_dir.filePath(QStringLiteral("authorized_keys")));
    // Other users (the throwaway password user) must be able to read it.
    QFile::setPermissions(m_dir.path(), QFile::permissions(m_dir.path()) | QFileDevice::ExeOther |
                                            QFileDevice::ReadOther);
    QFile::setPermissions(m_dir.filePath(QStringLiteral("authorized_keys")),
                          QFileDevice::ReadOwner | QFileDevice::WriteOwner |
                              QFileDevice::ReadOther);
    return true;
}

bool SshServer::launch(QString *error, bool passwordAuthentication) {
    m_passwordAuthentication = passwordAuthentication;
    if (!prepare(error)) return false;
    const QString hostKey = m_dir.filePath(QStringLiteral("host_ed25519"));
    if (m_port == 0) {
        QTcpServer probe;
        if (!probe.listen(QHostAddress(m_address), 0)) {
            *error = QStringLiteral("cannot bind %1: %2").arg(m_address, probe.errorString());
            return false;
        }
        m_port = probe.serverPort();
    }
    const QString configPath = m_dir.filePath(QStringLiteral("sshd_config"));
    QFile config(configPath);
    if (!config.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
        *error = config.errorString();
        return false;
    }
    config.write(QStringLiteral("Port %1\nListenAddress %2\nHostKey %3\nAuthorizedKeysFile %4\n"
                                "PidFile %5\nStrictModes no\nUsePAM no\n"
                                "PasswordAuthentication %6\nKbdInteractiveAuthentication no\n"
                                "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
                                "MaxStartups 100\nMaxSessions 100\nLogLevel ERROR\n"
                                // bash sources ~/.bashrc for commands run by sshd, unless it
                                // is a nested shell: the tests must not depend on root's
                                // dotfiles (here they run `pyenv rehash`, which waits up to
                                // 60 s on a lock file that a killed session left behind).
                                "SetEnv SHLVL=1%7\n")
                     .arg(m_port)
                     .arg(m_address, hostKey, m_dir.filePath(QStringLiteral("authorized_keys")),
                          m_dir.filePath(QStringLiteral("sshd.pid")),
                          passwordAuthentication ? QStringLiteral("yes") : QStringLiteral("no"),
                          m_sessionEnvironment.isEmpty()
                              ? QString()
                              : QLatin1Char(' ') + m_sessionEnvironment.join(QLatin1Char(' ')))
                     .toUtf8());
    config.close();
    QDir().mkpath(QStringLiteral("/run/sshd")); // privilege separation directory
    m_process.start(QStringLiteral("/usr/sbin/sshd"),
                    {QStringLiteral("-f"), configPath, QStringLiteral("-D"), QStringLiteral("-e")});
    if (!m_process.waitForStarted(5000)) {
        *error = QStringLiteral("cannot start sshd: ") + m_process.errorString();
        return false;
    }
    return true;
}

bool SshServer::waitUntilListening(QString *error, int timeoutMs) {
    if (corral::test::waitForListener(m_port, m_process, timeoutMs, QHostAddress(m_address)))
        return true;
    *error =
        m_process.state() != QProcess::Running
            ? QStringLiteral("sshd exited with status %1 (see its stderr above)")
                  .arg(m_process.exitCode())
            : QStringLiteral("sshd did not accept connections on %1:%2").arg(m_address).arg(m_port);
    return false;
}

void SshServer::stop() {
    corral::test::stopProcess(m_process, 5000);
}

QList<qint64> SshServer::connectionPids() const {
    QList<qint64> connections;
    const qint64 root = pid();
    for (qint64 member : corral::processTree(root)) {
        QFile stat(QStringLiteral("/proc/%1/stat").arg(member));
        if (member == root || !stat.open(QIODevice::ReadOnly)) continue;
        const QByteArray text = stat.readAll();
        // "PID (COMM) STATE PPID ...": COMM may hold spaces, so count from the last ')'.
        if (text.mid(text.lastIndexOf(')') + 2).split(' ').value(1).toLongLong() == root)
            connections.append(member);
    }
    return connections;
}

void SshServer::killHard() {
    if (m_process.state() == QProcess::NotRunning) return;
    const qint64 root = m_process.processId();
    const QList<qint64> below = descendants(root);
    ::kill(pid_t(root), SIGKILL);
    for (qint64 pid : below)
        ::kill(pid_t(pid), SIGKILL);
    m_process.waitForFinished(5000);
}

bool SshServer::restartWithNewHostKey(QString *error) {
    stop();
    if (!generateKey(m_dir.filePath(QStringLiteral("host_ed25519")), error)) return false;
    return start(error, m_passwordAuthentication);
}

bool SshServer::createUser(const QString &name, const QString &password, QString *error) {
    m_userHome = QStringLiteral("/tmp/") + name + QStringLiteral("-home");
    run(QStringLiteral("userdel"), {QStringLiteral("-r"), name}, nullptr); // leftovers of a crash
    if (!run(QStringLiteral("useradd"),
             {QStringLiteral("-m"), QStringLiteral("-d"), m_userHome, QStringLiteral("-s"),
              QStringLiteral("/bin/sh"), name},
             error))
        return false;
    m_user = name;
    // chpasswd reads "user:password" on stdin, so the password is on no command line.
    return run(QStringLiteral("chpasswd"), {}, error,
               (name + QLatin1Char(':') + password).toUtf8());
}

void SshServer::removeUser() {
    if (m_user.isEmpty()) return;
    // Processes of the user (a worker left by a failed test) would block userdel.
    run(QStringLiteral("pkill"), {QStringLiteral("-KILL"), QStringLiteral("-u"), m_user}, nullptr);
    run(QStringLiteral("userdel"), {QStringLiteral("-r"), QStringLiteral("-f"), m_user}, nullptr);
    m_user.clear();
}
