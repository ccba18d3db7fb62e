#pragma once

#include "model/Host.h"
#include "util/Result.h"

#include <QByteArray>
#include <QString>

#include <atomic>
#include <functional>
#include <memory>

struct ssh_channel_struct; // libssh's channel, kept out of this header

namespace corral {

/// Where and how to reach one host over SSH. Built from a Host plus a secret that the caller
/// fetched from the keychain; the secret lives only in memory and is never logged.
struct SshConfig {
    QString address;
    quint16 port = Host::DefaultSshPort;
    QString user; ///< empty: the local user name
    Host::Auth auth = Host::Auth::Agent;
    QString keyPath;
    QString secret; ///< password (Auth::Password) or key passphrase; may be empty

    /// Corral's own known_hosts: read, and where accepted keys are written.
    QString knownHostsFile;
    /// The user's ~/.ssh/known_hosts: only read, so keys OpenSSH already trusts are trusted.
    QString userKnownHostsFile;
    /// Trust (and record) any key of a host never seen before: `--accept-new`.
    bool acceptNew = false;
    /// Trust an unknown host only if its key has this fingerprint ("SHA256:..."): what a
    /// prompt confirmed, so a different key presented on the reconnect is not trusted.
    QString acceptFingerprint;
    /// Trust the server only for this connection when its key has this fingerprint, whatever
    /// the known_hosts files say, and record nothing: the Add host dialog's test after the
    /// user accepted a key that its Save then records (addKnownHost/replaceKnownHost).
    QString trustFingerprint;

    int connectTimeoutMs = 10000;
    /// Idle time after which SshHost sends a keepalive; 0 disables.
    int keepaliveIntervalMs = 30000;

    /// The host's fields, with the default known_hosts files.
    static SshConfig fromHost(const Host &host);
    /// "user@address:port", for messages.
    QString displayName() const;
};

/// $XDG_CONFIG_HOME/corral/known_hosts.
QString corralKnownHostsPath();
/// ~/.ssh/known_hosts.
QString userKnownHostsPath();

struct ExecResult {
    QByteArray stdOut;
    QByteArray stdErr;
    int exitStatus = -1; ///< -1 when the command was killed by a signal
};

class SshSession;

/// A command left running on the host while other calls use the same session, e.g. a lock
/// holder: its stdin stays open until release(), and when the connection drops the host
/// closes that stdin, so a command that waits for EOF ends with the connection. Made by
/// SshSession::start(); must not outlive its session.
class SshChannel {
public:
    ~SshChannel();
    SshChannel(const SshChannel &) = delete;
    SshChannel &operator=(const SshChannel &) = delete;

    /// The next line of the command's stdout (without the newline), waiting at most
    /// `timeoutMs`; fails when the command ended, the connection dropped or time ran out.
    Result<QByteArray> readLine(int timeoutMs);
    /// Whatever the command wrote to stdout since the last read, waiting at most `timeoutMs`
    /// for something: empty when nothing came in time; fails once the command ended (and
    /// everything it wrote was read) or the connection dropped. stderr is read alongside, so
    /// it never stalls the channel, and kept (the last 4 KiB) for errors: stdErr().
    Result<QByteArray> read(int timeoutMs);
    QByteArray stdErr() const { return m_stdErr; }
    /// True while the command runs on the connection it was started on.
    bool isOpen() const;
    /// Sends EOF to the command's stdin and closes the channel; idempotent.
    void release();

private:
    friend class SshSession;
    SshChannel(SshSession &session, ssh_channel_struct *channel, quint64 connection);

    SshSession &m_session;
    ssh_channel_struct *m_channel;
    quint64 m_connection; ///< SshSession::connectionNumber() when started
    QByteArray m_buffer;  ///< read but not yet returned
    QByteArray m_stdErr;  ///< the tail of the command's stderr (read())
};

/// Why the last call failed, for callers that react differently (prompt, retry, give up).
enum class SshFailure {
    None,
    Network,        ///< name resolution, refused, unreachable, dropped
    Timeout,        ///< connect or command deadline passed
    HostKeyUnknown, ///< never seen; serverFingerprint() says which key to ask about
    HostKeyChanged, ///< differs from known_hosts; both fingerprints available
    AuthFailed,
    KeyUnreadable, ///< the key file is missing, or encrypted and the passphrase is wrong/absent
    Protocol,      ///< channel, SFTP or other SSH-level failure
};

/// One libssh session to one host, reused for many channels. Blocking and not thread-safe:
/// use it from one thread (SshHost runs it on its own worker thread). A dropped connection
/// is noticed by the call that hits it; the next call reconnects.
class SshSession {
public:
    explicit SshSession(SshConfig config);
    ~SshSession();
    SshSession(const SshSession &) = delete;
    SshSession &operator=(const SshSession &) = delete;

    const SshConfig &config() const { return m_config; }
    void setSecret(const QString &secret);
    void setAcceptNew(bool accept);
    void setAcceptFingerprint(const QString &fingerprint);

    /// Connects, checks the host key against both known_hosts files and authenticates.
    /// Unknown key: fails with HostKeyUnknown unless acceptNew/acceptFingerprint allows it,
    /// in which case it is appended to Corral's known_hosts. Changed key: always refused.
    Result<void> connect();
    void disconnect();
    bool isConnected() const;

    /// Runs `command` (a shell command line built with shellCommand()) and waits for it to
    /// finish, at most `timeoutMs`. `input` is written to its stdin, then EOF. A non-zero
    /// exit status is not a failure here; the caller decides.
    Result<ExecResult> exec(const QString &command, int timeoutMs = 30000,
                            const QByteArray &input = {});

    /// Starts `command` and returns at once, leaving it running on a channel of its own
    /// (see SshChannel); other calls on this session go on meanwhile.
    Result<std::unique_ptr<SshChannel>> start(const QString &command);
    /// Runs `command` and hands its stdout to `onOutput` chunk by chunk as it arrives, until
    /// the command ends, `onOutput` returns false or `*cancel` is set (looked at least every
    /// 100 ms). Then the channel is closed (EOF to the command's stdin, close): a command
    /// that ends on EOF of its stdin stops on the host. The result's stdOut stays empty; its
    /// exitStatus is -1 when stopped here rather than ended by itself. `timeoutMs` >= 0: the
    /// command must end within it, as with exec() (a stalled connection delivers nothing, not
    /// even the command's end): else it is killed and abandoned, failing with Timeout.
    Result<ExecResult> stream(const QString &command,
                              const std::function<bool(const QByteArray &chunk)> &onOutput,
                              const std::atomic<bool> *cancel = nullptr, int timeoutMs = -1);
    /// Counts connections: changes whenever the connection is closed or lost, so a caller can
    /// tell that a later call ran over a new connection (e.g. without a lock held by the old).
    quint64 connectionNumber() const;

    /// Writes `content` to `remotePath` atomically: SFTP upload to a temporary name in the
    /// same directory, then `mv -f` over the target (SFTP v3 rename cannot replace a file).
    Result<void> upload(const QByteArray &content, const QString &remotePath, int mode = 0644,
                        int timeoutMs = 60000);

    /// Sends an SSH_MSG_IGNORE so a dead connection is noticed while idle.
    Result<void> sendKeepalive();
    /// Opens a session channel and closes it again: a round trip the server must answer, so
    /// a dead connection is found at once (a keepalive write may still succeed), and nothing
    /// runs on the host (no shell, no command, no login). On failure the connection is
    /// forgotten, so the next call reconnects.
    Result<void> probe();

    SshFailure lastFailure() const { return m_lastFailure; }
    /// The server's key fingerprint as seen by the last connect ("SHA256:...").
    QString serverFingerprint() const { return m_serverFingerprint; }
    /// The fingerprint on file when the last connect found a changed key.
    QString knownFingerprint() const { return m_knownFingerprint; }
    /// The known_hosts line ("NAME TYPE BASE64") of the key the last connect was offered.
    QByteArray serverKeyEntry() const { return m_serverKeyEntry; }

    /// The socket, for SshHost::~SshHost to shut down a blocking call from another thread;
    /// -1 when not connected.
    int socketDescriptor() const;

private:
    friend class SshChannel;
    struct Impl;
    Error failure(SshFailure kind, const QString &message);
    Result<void> ensureConnected();

    SshConfig m_config;
    std::unique_ptr<Impl> m_impl;
    SshFailure m_lastFailure = SshFailure::None;
    QString m_serverFingerprint;
    QString m_knownFingerprint;
    QByteArray m_serverKeyEntry;
};

} // namespace corral
