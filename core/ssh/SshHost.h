#pragma once

#include "ssh/SshSession.h"

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QThread>

#include <functional>
#include <memory>

namespace corral {

class SshHostWorker;

/// One remote host: an SshSession on its own worker thread, so libssh's blocking calls never
/// run on the caller's (UI) thread and hosts proceed in parallel. Calls on one host run one
/// at a time in submission order. Each result is delivered as a value to `done`, queued on
/// the thread of `context` and dropped if `context` has been destroyed by then.
class SshHost : public QObject {
    Q_OBJECT

public:
    explicit SshHost(const QString &name, SshConfig config, QObject *parent = nullptr);
    /// Cancels a call in progress (its socket is shut down) and waits for the thread.
    /// Callbacks of calls not yet delivered are dropped.
    ~SshHost() override;

    QString name() const { return m_name; }
    bool isOnline() const { return m_online; }

    /// The password or key passphrase, for the next (re)connect. Never logged.
    void setSecret(const QString &secret);

    /// Keeps this host connected from now on, over one session: connects at once, checks the
    /// session with a no-op request (SshSession::probe()) whenever it has been idle for
    /// keepaliveIntervalMs, and when the connection drops or a connect fails, tries again at
    /// once, then after 1 s, 2 s, 4 s ... at most maxRetryMs apart (a call that needs the
    /// session tries as well). online()/offline() follow. Idempotent.
    void keepConnected();
    bool isKeptConnected() const { return m_keptConnected; }
    static constexpr int firstRetryMs = 1000;
    static constexpr int maxRetryMs = 30000;

    /// Connects if not connected; a connected session is checked with a probe (and
    /// reconnected only if that fails), never replaced: a check is not a new login.
    void connectToHost(QObject *context, std::function<void(Result<void>)> done);
    void exec(const QString &command, int timeoutMs, QObject *context,
              std::function<void(Result<ExecResult>)> done, const QByteArray &input = {});
    void upload(const QByteArray &content, const QString &remotePath, int mode, QObject *context,
                std::function<void(Result<void>)> done);

    /// Runs any sequence of blocking session calls (`job`) on the host's thread and delivers
    /// its value like exec() does. For multi-step operations (allocate, then start).
    template <typename T>
    void call(std::function<Result<T>(SshSession &)> job, QObject *context,
              std::function<void(Result<T>)> done) {
        // The guard is taken here, on the caller's thread, where `context` is known to be alive.
        QPointer<QObject> guard(context ? context : this);
        post([this, job = std::move(job), guard, done = std::move(done)](SshSession &session) {
            Result<T> result = job(session);
            const QString error = result.ok() ? QString() : result.error();
            // Delivered through this SshHost, which outlives its thread, then to the context.
            QMetaObject::invokeMethod(
                this,
                [guard, done, result = std::move(result)]() mutable {
                    if (guard && done) done(std::move(result));
                },
                Qt::QueuedConnection);
            return error;
        });
    }

Q_SIGNALS:
    /// Offline -> Online: connected and authenticated.
    void online();
    /// Online -> Offline (connection lost, keepalive failed), or a connect attempt failed.
    void offline(const QString &reason);

private:
    friend class SshHostWorker;
    // Queues `job` on the worker thread; it returns an error message, empty on success.
    void post(std::function<QString(SshSession &)> job);
    void noteState(bool connected, const QString &reason);

    QString m_name;
    QThread m_thread;
    SshHostWorker *m_worker = nullptr;
    bool m_online = false;
    bool m_keptConnected = false;
};

/// The SshHosts of an inventory, one per host name, created on first use.
class SshPool : public QObject {
    Q_OBJECT

public:
    explicit SshPool(QObject *parent = nullptr);
    ~SshPool() override;

    /// The host named `host.name`, created with `config` on first use.
    SshHost *host(const QString &name, const SshConfig &config);
    SshHost *find(const QString &name) const { return m_hosts.value(name); }
    QList<SshHost *> hosts() const { return m_hosts.values(); }
    /// Deletes the host (its session closes); users holding it see their QPointer go null.
    void remove(const QString &name);

Q_SIGNALS:
    /// A host of the pool went online, or offline (`reason`), as SshHost::online()/offline().
    void hostStateChanged(const QString &name, bool online, const QString &reason);

private:
    QHash<QString, SshHost *> m_hosts;
};

} // namespace corral
