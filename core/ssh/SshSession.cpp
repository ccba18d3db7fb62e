#include "ssh/SshSession.h"
#include "ssh/SshTrace.h"

#include "ssh/KnownHosts.h"
#include "ssh/ShellQuote.h"
#include "util/AtomicFile.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QStandardPaths>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace corral {

QString corralKnownHostsPath() {
    return QStandardPaths::writableLocation(QStandardPaths::GenericConfigLocation) +
           QStringLiteral("/corral/known_hosts");
}

QString userKnownHostsPath() {
    return QDir::homePath() + QStringLiteral("/.ssh/known_hosts");
}

SshConfig SshConfig::fromHost(const Host &host) {
    SshConfig config;
    config.address = host.address;
    config.port = host.port;
    config.user = host.user;
    config.auth = host.auth;
    config.keyPath = host.keyPath;
    config.knownHostsFile = corralKnownHostsPath();
    config.userKnownHostsFile = userKnownHostsPath();
    return config;
}

QString SshConfig::displayName() const {
    const QString hostPart = address.contains(QLatin1Char(':'))
                                 ? QLatin1Char('[') + address + QLatin1Char(']')
                                 : address;
    return (user.isEmpty() ? QString() : user + QLatin1Char('@')) + hostPart + QLatin1Char(':') +
           QString::number(port);
}

struct SshSession::Impl {
    ssh_session session = nullptr;
    bool connected = false;
    quint64 connectionNumber = 0; ///< incremented by every close: channels of the old are gone

    ~Impl() { close(); }
    void close() {
        if (!session) return;
        ++connectionNumber;
        if (connected) ssh_disconnect(session);
        ssh_free(session);
        session = nullptr;
        connected = false;
    }
    QString error() const {
        return session ? QString::fromUtf8(ssh_get_error(session)) : QStringLiteral("no session");
    }
    // A call failed: if the cause is a dead connection, forget it so the next call reconnects.
    void noteFailure() {
        if (session && connected && !ssh_is_connected(session)) close();
    }
};

namespace {

QString fingerprintOf(ssh_key key) {
    unsigned char *hash = nullptr;
    size_t length = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &length) != SSH_OK)
        return QStringLiteral("(unknown fingerprint)");
    char *text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, length);
    ssh_clean_pubkey_hash(&hash);
    const QString fingerprint = QString::fromLatin1(text); // "SHA256:base64"
    ssh_string_free_char(text);
    return fingerprint;
}

// The fingerprint of the first key on file for `host` in `files`, for the CHANGED message.
QString fingerprintOnFile(const QString &host, const QStringList &files) {
    for (const QString &path : files) {
        QFile file(path);
        if (!file.open(QIODevice::ReadOnly)) continue;
        while (!file.atEnd()) {
            const QList<QByteArray> fields = file.readLine().simplified().split(' ');
            if (fields.size() < 3 || fields.at(0).startsWith('#') || fields.at(0).startsWith('@'))
                continue;
            if (!knownHostsPatternsMatch(fields.at(0), host)) continue;
            ssh_key key = nullptr;
            if (ssh_pki_import_pubkey_base64(fields.at(2).constData(),
                                             ssh_key_type_from_name(fields.at(1).constData()),
                                             &key) != SSH_OK)
                continue;
            const QString fingerprint = fingerprintOf(key);
            ssh_key_free(key);
            return fingerprint;
        }
    }
    return {};
}

// Frees libssh channel/SFTP handles on every return path. ssh_free() already frees everything
// belonging to a session, so nothing is touched once the session is gone.
struct ChannelGuard {
    ssh_session *owner;
    ssh_session session;
    ssh_channel channel = nullptr;
    ~ChannelGuard() {
        if (!channel || *owner != session) return;
        if (ssh_channel_is_open(channel)) ssh_channel_close(channel);
        ssh_channel_free(channel);
    }
};

// "address:port" ("[v6]:port") for messages about the TCP endpoint.
QString endpointOf(const SshConfig &config) {
    const QString host = config.address.contains(QLatin1Char(':'))
                             ? QLatin1Char('[') + config.address + QLatin1Char(']')
                             : config.address;
    return host + QLatin1Char(':') + QString::number(config.port);
}

// The known_hosts line of the key the server presents ("[address]:port TYPE BASE64").
QByteArray knownHostsEntryOf(ssh_session session) {
    char *entry = nullptr;
    if (ssh_session_export_known_hosts_entry(session, &entry) != SSH_OK || !entry) return {};
    const QByteArray line = QByteArray(entry).trimmed();
    ssh_string_free_char(entry);
    return line;
}

struct SftpGuard {
    ssh_session *owner;
    ssh_session session;
    sftp_session sftp = nullptr;
    sftp_file file = nullptr;
    ~SftpGuard() {
        if (*owner != session) return;
        if (file) sftp_close(file);
        if (sftp) sftp_free(sftp);
    }
};

} // namespace

SshSession::SshSession(SshConfig config)
    : m_config(std::move(config))
    , m_impl(std::make_unique<Impl>()) {}

SshSession::~SshSession() = default;

void SshSession::setSecret(const QString &secret) {
    m_config.secret = secret;
}

void SshSession::setAcceptNew(bool accept) {
    m_config.acceptNew = accept;
}

void SshSession::setAcceptFingerprint(const QString &fingerprint) {
    m_config.acceptFingerprint = fingerprint;
}

Error SshSession::failure(SshFailure kind, const QString &message) {
    m_lastFailure = kind;
    return fail(m_config.displayName() + QStringLiteral(": ") + message);
}

bool SshSession::isConnected() const {
    return m_impl->connected && m_impl->session && ssh_is_connected(m_impl->session);
}

int SshSession::socketDescriptor() const {
    return m_impl->connected && m_impl->session ? int(ssh_get_fd(m_impl->session)) : -1;
}

void SshSession::disconnect() {
    m_impl->close();
}

Result<void> SshSession::connect() {
    m_impl->close();
    m_lastFailure = SshFailure::None;
    m_serverFingerprint.clear();
    m_knownFingerprint.clear();
    m_serverKeyEntry.clear();
    if (m_config.address.isEmpty())
        return failure(SshFailure::Network, QStringLiteral("no address"));

    ssh_session session = ssh_new();
    if (!session) return failure(SshFailure::Protocol, QStringLiteral("cannot create a session"));
    m_impl->session = session;
    const QByteArray address = m_config.address.toUtf8();
    const unsigned int port = m_config.port;
    const QByteArray user = m_config.user.toUtf8();
    const QByteArray knownHosts = QFile::encodeName(m_config.knownHostsFile);
    const QByteArray userKnownHosts = QFile::encodeName(m_config.userKnownHostsFile);
    const long timeoutSeconds = std::max(1, (m_config.connectTimeoutMs + 999) / 1000);
    const int no = 0;
    const int yes = 1;
    // No ~/.ssh/config: what Corral connects to is what the inventory says, nothing else.
    ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no);
    ssh_options_set(session, SSH_OPTIONS_HOST, address.constData());
    ssh_options_set(session, SSH_OPTIONS_PORT, &port);
    if (!user.isEmpty()) ssh_options_set(session, SSH_OPTIONS_USER, user.constData());
    // libssh consults both files and writes accepted keys only to SSH_OPTIONS_KNOWNHOSTS, so
    // the user's file is read but never modified. An empty path would mean libssh's default.
    ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS,
                    knownHosts.isEmpty() ? "/dev/null" : knownHosts.constData());
    ssh_options_set(session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS,
                    userKnownHosts.isEmpty() ? "/dev/null" : userKnownHosts.constData());
    // Bounds connect and every blocking call afterwards (channel open, exit status, SFTP).
    ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeoutSeconds);
    ssh_options_set(session, SSH_OPTIONS_NODELAY, &yes);

    if (ssh_connect(session) != SSH_OK) {
        const QString error = m_impl->error();
        // The TCP connection was made (libssh reports a socket closed or a line too long for a
        // banner only then) but no "SSH-" line came: something else listens on that port.
        const bool answeredWithoutBanner =
            !ssh_get_serverbanner(session) && (error.startsWith(QLatin1String("Socket error")) ||
                                               error.contains(QLatin1String("banner")));
        m_impl->close();
        if (answeredWithoutBanner)
            return failure(SshFailure::Protocol,
                           QStringLiteral("%1 answered but is not an SSH server (no SSH banner; "
                                          "%2): check the address and port")
                               .arg(endpointOf(m_config), error));
        const bool timedOut = error.contains(QLatin1String("imeout"));
        return failure(timedOut ? SshFailure::Timeout : SshFailure::Network,
                       QStringLiteral("cannot connect: ") + error);
    }
    m_impl->connected = true;
    // TCP keepalive finds a peer that vanished without a FIN (power loss, cable) even when
    // Corral sends nothing; the SSH-level keepalive in SshHost covers NAT timeouts.
    if (const socket_t fd = ssh_get_fd(session); fd != SSH_INVALID_SOCKET) {
        const int idle = 30, interval = 10, count = 3;
        ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &yes, sizeof yes);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC); // never leak the connection into child processes
    }

    // Host key trust.
    ssh_key serverKey = nullptr;
    if (ssh_get_server_publickey(session, &serverKey) != SSH_OK) {
        const QString error = m_impl->error();
        m_impl->close();
        return failure(SshFailure::Protocol, QStringLiteral("no host key: ") + error);
    }
    m_serverFingerprint = fingerprintOf(serverKey);
    m_serverKeyEntry = knownHostsEntryOf(session);
    const QString keyType = QString::fromLatin1(ssh_key_type_to_char(ssh_key_type(serverKey)));
    ssh_key_free(serverKey);

    const QString files =
        m_config.knownHostsFile + QStringLiteral(" or ") + m_config.userKnownHostsFile;
    // A key the caller vouches for (Add host, before its Save records it) needs no file.
    const bool vouched =
        !m_config.trustFingerprint.isEmpty() && m_config.trustFingerprint == m_serverFingerprint;
    switch (vouched ? SSH_KNOWN_HOSTS_OK : ssh_session_is_known_server(session)) {
    case SSH_KNOWN_HOSTS_OK:
        break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER: {
        // libssh hands out an entry only for a match, so the file is read here instead.
        m_knownFingerprint =
            fingerprintOnFile(knownHostsName(m_config.address, m_config.port),
                              {m_config.knownHostsFile, m_config.userKnownHostsFile});
        m_impl->close();
        return failure(
            SshFailure::HostKeyChanged,
            QStringLiteral("HOST KEY CHANGED, refusing to connect. The server presents %1 key %2, "
                           "but %3 (%4) is on file. This can mean someone is intercepting the "
                           "connection. If the server was reinstalled on purpose, remove the old "
                           "entry with: ssh-keygen -R %5 -f FILE, then connect again.")
                .arg(keyType, m_serverFingerprint,
                     m_knownFingerprint.isEmpty() ? QStringLiteral("another key")
                                                  : m_knownFingerprint,
                     files, shellQuote(knownHostsName(m_config.address, m_config.port))));
    }
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN: {
        const bool confirmed = !m_config.acceptFingerprint.isEmpty() &&
                               m_config.acceptFingerprint == m_serverFingerprint;
        if (!m_config.acceptNew && !confirmed) {
            m_impl->close();
            return failure(SshFailure::HostKeyUnknown,
                           QStringLiteral("unknown host key %1 %2 (not in %3); confirm the "
                                          "fingerprint and accept it, or pass --accept-new")
                               .arg(keyType, m_serverFingerprint, files));
        }
        if (auto recorded = addKnownHost(m_config.knownHostsFile, m_serverKeyEntry); !recorded) {
            const QString error = recorded.error();
            m_impl->close();
            return failure(SshFailure::Protocol,
                           QStringLiteral("cannot record the host key: ") + error);
        }
        break;
    }
    case SSH_KNOWN_HOSTS_ERROR: {
        const QString error = m_impl->error();
        m_impl->close();
        return failure(SshFailure::Protocol, QStringLiteral("cannot check the host key: ") + error);
    }
    }

    // Authentication.
    int rc = SSH_AUTH_ERROR;
    QString method;
    const QByteArray secret = m_config.secret.toUtf8();
    switch (m_config.auth) {
    case Host::Auth::Agent:
        method = QStringLiteral("ssh-agent or default keys");
        rc = ssh_userauth_publickey_auto(session, nullptr,
                                         secret.isEmpty() ? nullptr : secret.constData());
        break;
    case Host::Auth::KeyFile: {
        method = QStringLiteral("key ") + m_config.keyPath;
        ssh_key key = nullptr;
        // A null callback: libssh must never prompt on a terminal from a worker thread.
        if (ssh_pki_import_privkey_file(QFile::encodeName(m_config.keyPath).constData(),
                                        secret.isEmpty() ? nullptr : secret.constData(), nullptr,
                                        nullptr, &key) != SSH_OK) {
            m_impl->close();
            const bool exists = QFileInfo::exists(m_config.keyPath);
            return failure(
                SshFailure::KeyUnreadable,
                exists ? QStringLiteral("cannot read key file %1 (encrypted and no or a wrong "
                                        "passphrase in the keychain?)")
                             .arg(m_config.keyPath)
                       : QStringLiteral("key file %1 does not exist").arg(m_config.keyPath));
        }
        rc = ssh_userauth_publickey(session, nullptr, key);
        ssh_key_free(key);
        break;
    }
    case Host::Auth::Password:
        method = QStringLiteral("password");
        if (secret.isEmpty()) {
            m_impl->close();
            return failure(SshFailure::AuthFailed,
                           QStringLiteral("password authentication needs a password (none in "
                                          "the keychain and none given)"));
        }
        rc = ssh_userauth_password(session, nullptr, secret.constData());
        break;
    }
    if (rc != SSH_AUTH_SUCCESS) {
        const QString error = rc == SSH_AUTH_ERROR ? m_impl->error() : QString();
        m_impl->close();
        return failure(
            SshFailure::AuthFailed,
            QStringLiteral("authentication failed (%1)%2")
                .arg(method, error.isEmpty() ? QString() : QStringLiteral(": ") + error));
    }
    return {};
}

Result<void> SshSession::ensureConnected() {
    if (isConnected()) return {};
    return connect();
}

Result<ExecResult> SshSession::exec(const QString &command, int timeoutMs,
                                    const QByteArray &input) {
    m_lastFailure = SshFailure::None;
    SshTrace::record(m_config.displayName(), "exec", command);
    const QDeadlineTimer deadline(timeoutMs);
    ChannelGuard guard{&m_impl->session, nullptr};
    // Open the channel; a connection that dropped since the last call is only noticed here,
    // and nothing has run yet, so one reconnect and retry is safe.
    for (int attempt = 0; attempt < 2 && !guard.channel; ++attempt) {
        if (auto connected = ensureConnected(); !connected) return fail(connected.error());
        ssh_channel channel = ssh_channel_new(m_impl->session);
        if (channel && ssh_channel_open_session(channel) == SSH_OK) {
            guard.session = m_impl->session;
            guard.channel = channel;
            break;
        }
        if (channel) ssh_channel_free(channel);
        const QString error = m_impl->error();
        m_impl->noteFailure();
        if (isConnected() || attempt == 1)
            return failure(SshFailure::Protocol, QStringLiteral("cannot open a channel: ") + error);
    }
    ssh_channel channel = guard.channel;
    if (ssh_channel_request_exec(channel, command.toUtf8().constData()) != SSH_OK) {
        const QString error = m_impl->error();
        m_impl->noteFailure();
        return failure(SshFailure::Protocol, QStringLiteral("cannot start command: ") + error);
    }
    if (!input.isEmpty() &&
        ssh_channel_write(channel, input.constData(), uint32_t(input.size())) != input.size()) {
        const QString error = m_impl->error();
        m_impl->noteFailure();
        return failure(SshFailure::Network, QStringLiteral("cannot write stdin: ") + error);
    }
    ssh_channel_send_eof(channel);

    ExecResult result;
    char buffer[16384];
    for (;;) {
        if (deadline.hasExpired()) {
            // Best effort: ask the server to kill it; closing the channel abandons it anyway.
            ssh_channel_request_send_signal(channel, "KILL");
            return failure(SshFailure::Timeout,
                           QStringLiteral("command did not finish within %1 ms").arg(timeoutMs));
        }
        const int wait = int(std::clamp<qint64>(deadline.remainingTime(), 1, 100));
        // Reading stdout with a timeout processes incoming packets for both streams, so stderr
        // is then drained without blocking.
        // A channel the server already closed (the command was killed) reads as an error,
        // depending on timing: that is the end of the command, not a lost connection.
        const auto finishedAfterClose = [&] {
            return isConnected() && (ssh_channel_is_closed(channel) || ssh_channel_is_eof(channel));
        };
        const int out = ssh_channel_read_timeout(channel, buffer, sizeof buffer, 0, wait);
        if (out == SSH_ERROR) {
            if (!finishedAfterClose()) break;
            result.exitStatus = ssh_channel_get_exit_status(channel);
            return result;
        }
        if (out > 0) result.stdOut.append(buffer, out);
        int err = ssh_channel_read_nonblocking(channel, buffer, sizeof buffer, 1);
        if (err == SSH_EOF) err = 0; // unlike the blocking reads, this one reports EOF this way
        if (err == SSH_ERROR) {
            if (!finishedAfterClose()) break;
            result.exitStatus = ssh_channel_get_exit_status(channel);
            return result;
        }
        if (err > 0) result.stdErr.append(buffer, err);
        if (out == 0 && err == 0 && ssh_channel_is_eof(channel)) {
            result.exitStatus = ssh_channel_get_exit_status(channel);
            // No status but still connected: the command died of a signal (exitStatus -1).
            if (result.exitStatus < 0 && !isConnected()) break;
            return result;
        }
    }
    const QString error = m_impl->error();
    m_impl->noteFailure();
    return failure(isConnected() ? SshFailure::Protocol : SshFailure::Network,
                   QStringLiteral("connection lost while running a command%1")
                       .arg(error.isEmpty() ? QString() : QStringLiteral(": ") + error));
}

Result<std::unique_ptr<SshChannel>> SshSession::start(const QString &command) {
    m_lastFailure = SshFailure::None;
    SshTrace::record(m_config.displayName(), "start", command);
    if (auto connected = ensureConnected(); !connected) return fail(connected.error());
    ssh_channel channel = ssh_channel_new(m_impl->session);
    if (!channel || ssh_channel_open_session(channel) != SSH_OK) {
        if (channel) ssh_channel_free(channel);
        const QString error = m_impl->error();
        m_impl->noteFailure();
        return failure(SshFailure::Protocol, QStringLiteral("cannot open a channel: ") + error);
    }
    if (ssh_channel_request_exec(channel, command.toUtf8().constData()) != SSH_OK) {
        const QString error = m_impl->error();
        ssh_channel_close(channel);
        ssh_channel_free(channel);
        m_impl->noteFailure();
        return failure(SshFailure::Protocol, QStringLiteral("cannot start command: ") + error);
    }
    return std::unique_ptr<SshChannel>(new SshChannel(*this, channel, m_impl->connectionNumber));
}

quint64 SshSession::connectionNumber() const {
    return m_impl->connectionNumber;
}

SshChannel::SshChannel(SshSession &session, ssh_channel_struct *channel, quint64 connection)
    : m_session(session)
    , m_channel(channel)
    , m_connection(connection) {}

SshChannel::~SshChannel() {
    release();
}

bool SshChannel::isOpen() const {
    if (!m_channel || m_session.m_impl->connectionNumber != m_connection ||
        !m_session.isConnected() || !ssh_channel_is_open(m_channel) ||
        ssh_channel_is_eof(m_channel))
        return false;
    // libssh learns that the peer went away only by reading: look at the socket without
    // waiting, so a connection that died since the last command counts as gone.
    const int polled = ssh_channel_poll_timeout(m_channel, 0, 0);
    return polled != SSH_ERROR && polled != SSH_EOF;
}

void SshChannel::release() {
    if (!m_channel) return;
    // Once the connection is gone, ssh_free() has freed the channel with its session.
    if (m_session.m_impl->connectionNumber == m_connection && m_session.m_impl->session) {
        if (ssh_channel_is_open(m_channel)) {
            ssh_channel_send_eof(m_channel);
            ssh_channel_close(m_channel);
        }
        ssh_channel_free(m_channel);
    }
    m_channel = nullptr;
}

Result<QByteArray> SshChannel::readLine(int timeoutMs) {
    const QDeadlineTimer deadline(timeoutMs);
    for (;;) {
        if (const qsizetype newline = m_buffer.indexOf('\n'); newline >= 0) {
            const QByteArray line = m_buffer.left(newline);
            m_buffer.remove(0, newline + 1);
            return line;
        }
        if (!m_channel || m_session.m_impl->connectionNumber != m_connection)
            return m_session.failure(SshFailure::Network,
                                     QStringLiteral("connection lost while a command ran"));
        if (deadline.hasExpired())
            return m_session.failure(SshFailure::Timeout,
                                     QStringLiteral("no answer within %1 ms").arg(timeoutMs));
        char buffer[4096];
        const int wait = int(std::clamp<qint64>(deadline.remainingTime(), 1, 100));
        const int read = ssh_channel_read_timeout(m_channel, buffer, sizeof buffer, 0, wait);
        if (read > 0) {
            m_buffer.append(buffer, read);
            continue;
        }
        if (read == SSH_ERROR || ssh_channel_is_eof(m_channel)) {
            const bool connected = m_session.isConnected();
            m_session.m_impl->noteFailure();
            if (!connected)
                return m_session.failure(SshFailure::Network,
                                         QStringLiteral("connection lost while a command ran"));
            return m_session.failure(SshFailure::Protocol,
                                     QStringLiteral("the command ended (exit status %1)")
                                         .arg(ssh_channel_get_exit_status(m_channel)));
        }
    }
}

Result<QByteArray> SshChannel::read(int timeoutMs) {
    if (!m_buffer.isEmpty()) {
        const QByteArray buffered = m_buffer;
        m_buffer.clear();
        return buffered;
    }
    if (!m_channel || m_session.m_impl->connectionNumber != m_connection)
        return m_session.failure(SshFailure::Network,
                                 QStringLiteral("connection lost while a command ran"));
    char buffer[16384];
    const int wait = std::max(timeoutMs, 0);
    const int read = ssh_channel_read_timeout(m_channel, buffer, sizeof buffer, 0, wait);
    // Reading stdout processed the incoming packets of both streams: stderr without waiting.
    char errBuffer[4096];
    const int err = ssh_channel_read_nonblocking(m_channel, errBuffer, sizeof errBuffer, 1);
    if (err > 0) m_stdErr = QByteArray(m_stdErr + QByteArray(errBuffer, err)).right(4096);
    if (read > 0) return QByteArray(buffer, read);
    if (read == SSH_ERROR || (read == 0 && ssh_channel_is_eof(m_channel))) {
        const bool connected = m_session.isConnected();
        if (!connected) {
            m_session.m_impl->noteFailure();
            return m_session.failure(SshFailure::Network,
                                     QStringLiteral("connection lost while a command ran"));
        }
        return m_session.failure(
            SshFailure::Protocol,
            QStringLiteral("the command ended (exit status %1)%2")
                .arg(ssh_channel_get_exit_status(m_channel))
                .arg(m_stdErr.trimmed().isEmpty()
                         ? QString()
                         : QStringLiteral(": ") + QString::fromUtf8(m_stdErr.trimmed())));
    }
    return QByteArray();
}

Result<ExecResult> SshSession::stream(const QString &command,
                                      const std::function<bool(const QByteArray &)> &onOutput,
                                      const std::atomic<bool> *cancel, int timeoutMs) {
    const QDeadlineTimer deadline =
        timeoutMs < 0 ? QDeadlineTimer(QDeadlineTimer::Forever) : QDeadlineTimer(timeoutMs);
    auto started = start(command);
    if (!started) return fail(started.error());
    SshChannel &channel = *started.value();
    ExecResult result;
    while (!(cancel && cancel->load())) {
        if (deadline.hasExpired()) {
            // As exec(): ask the server to kill it; closing the channel abandons it anyway.
            if (channel.m_channel && isConnected())
                ssh_channel_request_send_signal(channel.m_channel, "KILL");
            channel.release();
            return failure(SshFailure::Timeout,
                           QStringLiteral("command did not finish within %1 ms").arg(timeoutMs));
        }
        auto chunk = channel.read(
            deadline.isForever() ? 100 : int(std::clamp<qint64>(deadline.remainingTime(), 1, 100)));
        if (!chunk) {
            result.stdErr = channel.stdErr();
            // Ended by itself: its status, not a failure (the caller decides, as with exec()).
            if (lastFailure() == SshFailure::Protocol && isConnected() && channel.m_channel &&
                ssh_channel_is_eof(channel.m_channel)) {
                result.exitStatus = ssh_channel_get_exit_status(channel.m_channel);
                m_lastFailure = SshFailure::None;
                return result;
            }
            return fail(chunk.error());
        }
        if (!chunk->isEmpty() && !onOutput(chunk.value())) break;
    }
    result.stdErr = channel.stdErr();
    channel.release();
    return result;
}

Result<void> SshSession::upload(const QByteArray &content, const QString &remotePath, int mode,
                                int timeoutMs) {
    m_lastFailure = SshFailure::None;
    SshTrace::record(m_config.displayName(), "upload", remotePath);
    const QDeadlineTimer deadline(timeoutMs);
    if (remotePath.isEmpty() || remotePath.endsWith(QLatin1Char('/')))
        return failure(SshFailure::Protocol,
                       QStringLiteral("upload: \"%1\" is not a file path").arg(remotePath));
    if (auto connected = ensureConnected(); !connected) return fail(connected.error());

    // Same directory as the target, so the final mv is a rename(2) within one file system.
    const qsizetype slash = remotePath.lastIndexOf(QLatin1Char('/'));
    const QString directory = slash < 0 ? QString() : remotePath.left(slash + 1);
    const QString name = remotePath.mid(slash + 1);
    const QString temporary = directory + QLatin1Char('.') + name + QStringLiteral(".corral-tmp-") +
                              QString::number(QRandomGenerator::global()->generate64(), 36);
    const QByteArray temporaryPath = temporary.toUtf8();

    SftpGuard guard{&m_impl->session, m_impl->session};
    guard.sftp = sftp_new(m_impl->session);
    if (!guard.sftp || sftp_init(guard.sftp) != SSH_OK) {
        const QString error = m_impl->error();
        m_impl->noteFailure();
        return failure(SshFailure::Protocol, QStringLiteral("cannot start SFTP: ") + error);
    }
    guard.file =
        sftp_open(guard.sftp, temporaryPath.constData(), O_WRONLY | O_CREAT | O_EXCL, mode_t(mode));
    if (!guard.file)
        return failure(SshFailure::Protocol,
                       QStringLiteral("cannot create %1: %2").arg(temporary, m_impl->error()));
    // The SFTP handles die with their session (a drop, or the reconnect of the final mv).
    const auto sftpAlive = [&] { return m_impl->session == guard.session && isConnected(); };
    const auto abandon = [&](const QString &message) {
        if (guard.file && sftpAlive()) sftp_close(guard.file);
        guard.file = nullptr;
        if (sftpAlive()) sftp_unlink(guard.sftp, temporaryPath.constData());
        m_impl->noteFailure();
        return failure(SshFailure::Protocol, message);
    };
    for (qsizetype offset = 0; offset < content.size();) {
        if (deadline.hasExpired())
            return abandon(QStringLiteral("upload of %1 did not finish within %2 ms")
                               .arg(remotePath)
                               .arg(timeoutMs));
        const size_t chunk = size_t(std::min<qsizetype>(content.size() - offset, 32768));
        const ssize_t written = sftp_write(guard.file, content.constData() + offset, chunk);
        if (written <= 0)
            return abandon(QStringLiteral("cannot write %1: %2").arg(temporary, m_impl->error()));
        offset += written;
    }
    const int closed = sftp_close(guard.file);
    guard.file = nullptr;
    if (closed != SSH_OK)
        return abandon(QStringLiteral("cannot finish %1: %2").arg(temporary, m_impl->error()));

    auto moved = exec(shellCommand({QStringLiteral("mv"), QStringLiteral("-f"),
                                    QStringLiteral("--"), temporary, remotePath}),
                      int(std::max<qint64>(deadline.remainingTime(), 5000)));
    if (!moved || moved->exitStatus != 0) {
        const QString why = moved ? QString::fromUtf8(moved->stdErr).trimmed() : moved.error();
        if (sftpAlive()) sftp_unlink(guard.sftp, temporaryPath.constData());
        return failure(SshFailure::Protocol,
                       QStringLiteral("cannot replace %1: %2").arg(remotePath, why));
    }
    return {};
}

Result<void> SshSession::probe() {
    m_lastFailure = SshFailure::None;
    if (!isConnected()) return failure(SshFailure::Network, QStringLiteral("not connected"));
    ssh_channel channel = ssh_channel_new(m_impl->session);
    if (channel && ssh_channel_open_session(channel) == SSH_OK) {
        ssh_channel_close(channel);
        ssh_channel_free(channel);
        return {};
    }
    if (channel) ssh_channel_free(channel);
    const QString error = m_impl->error();
    // Refused, timed out or dropped: a session that cannot open a channel is of no use.
    m_impl->close();
    return failure(SshFailure::Network,
                   QStringLiteral("connection lost%1")
                       .arg(error.isEmpty() ? QString() : QStringLiteral(": ") + error));
}

Result<void> SshSession::sendKeepalive() {
    if (!isConnected()) return failure(SshFailure::Network, QStringLiteral("not connected"));
    if (ssh_send_ignore(m_impl->session, "") != SSH_OK || !ssh_is_connected(m_impl->session)) {
        const QString error = m_impl->error();
        m_impl->close();
        return failure(SshFailure::Network, QStringLiteral("keepalive failed: ") + error);
    }
    return {};
}

} // namespace corral
