#include "ssh/SshHost.h"

#include <QElapsedTimer>
#include <QMutex>
#include <QTimer>

#include <algorithm>
#include <atomic>

#include <sys/socket.h>

namespace corral {

/// Lives on the host's thread and owns the session there. One timer serves both the
/// keepalive of a connected session and the reconnect back-off of a host kept connected.
class SshHostWorker : public QObject {
public:
    SshHostWorker(SshHost *host, SshConfig config)
        : m_host(host)
        , m_session(std::move(config)) {}

    // Called on the worker thread.
    void start() {
        m_timer = new QTimer(this);
        m_timer->setSingleShot(true);
        QObject::connect(m_timer, &QTimer::timeout, this, [this] { onTimer(); });
        m_idle.start();
    }
    void stop() {
        delete m_timer;
        m_timer = nullptr;
        QMutexLocker lock(&m_fdMutex);
        m_session.disconnect();
        m_fd = -1;
    }

    void keepConnected() {
        if (m_stopping || m_keptConnected) return;
        m_keptConnected = true;
        if (m_session.isConnected()) return schedule();
        m_retrying = true; // connect now, as a due retry
        onTimer();
    }

    void run(const std::function<QString(SshSession &)> &job) {
        // Jobs queued behind a destructor are dropped; their callbacks could not run anyway.
        if (m_stopping) return;
        const bool wasConnected = m_session.isConnected();
        const QString error = job(m_session);
        settle(wasConnected, error);
    }

    // Shuts the socket down from another thread so a blocking libssh call returns at once.
    void abort() {
        m_stopping = true;
        QMutexLocker lock(&m_fdMutex);
        if (m_fd >= 0) ::shutdown(m_fd, SHUT_RDWR);
    }

    SshSession &session() { return m_session; }

private:
    // A retry that is due (the connection is down) or a keepalive (idle long enough).
    void onTimer() {
        if (m_stopping) return;
        const bool wasConnected = m_session.isConnected();
        QString error;
        if (!wasConnected) {
            if (!m_retrying || !m_keptConnected) return;
            m_retrying = false;
            if (auto connected = m_session.connect(); !connected) {
                error = connected.error();
                m_retryMs = m_retryMs == 0 ? SshHost::firstRetryMs
                                           : std::min(2 * m_retryMs, SshHost::maxRetryMs);
            }
        } else {
            const int interval = m_session.config().keepaliveIntervalMs;
            if (interval <= 0 || m_idle.elapsed() < interval) return schedule();
            if (auto alive = m_session.probe(); !alive) error = alive.error();
        }
        settle(wasConnected, error);
    }

    // After anything used the session: remember its socket, report a change of state, and
    // arm the timer for what comes next.
    void settle(bool wasConnected, const QString &error) {
        m_idle.restart();
        {
            QMutexLocker lock(&m_fdMutex);
            m_fd = m_session.socketDescriptor();
        }
        const bool connected = m_session.isConnected();
        if (connected) m_retryMs = 0;
        if (connected != wasConnected || (!connected && !error.isEmpty()))
            report(connected ? QString() : error);
        schedule();
    }

    void schedule() {
        if (!m_timer || m_stopping) return;
        if (!m_session.isConnected()) {
            // Down: the next retry, unless one is already counting down (calls made meanwhile
            // do not postpone it). The first comes at once, then the back-off.
            if (!m_keptConnected) {
                m_timer->stop();
            } else if (!m_retrying) {
                m_retrying = true;
                m_timer->start(m_retryMs);
            }
            return;
        }
        m_retrying = false;
        const int interval = m_session.config().keepaliveIntervalMs;
        if (interval <= 0) {
            m_timer->stop();
            return;
        }
        m_timer->start(int(std::max<qint64>(0, interval - m_idle.elapsed())));
    }

    void report(const QString &reason) {
        const bool connected = m_session.isConnected();
        QMetaObject::invokeMethod(
            m_host, [host = m_host, connected, reason] { host->noteState(connected, reason); },
            Qt::QueuedConnection);
    }

    SshHost *m_host;
    SshSession m_session;
    QTimer *m_timer = nullptr;
    QElapsedTimer m_idle;
    bool m_keptConnected = false;
    bool m_retrying = false; ///< the timer counts down to a reconnect
    int m_retryMs = 0;       ///< wait before the next reconnect; 0 while connected
    QMutex m_fdMutex;
    int m_fd = -1;
    std::atomic<bool> m_stopping{false};
};

SshHost::SshHost(const QString &name, SshConfig config, QObject *parent)
    : QObject(parent)
    , m_name(name) {
    m_thread.setObjectName(QStringLiteral("ssh:") + name);
    m_worker = new SshHostWorker(this, std::move(config));
    m_worker->moveToThread(&m_thread);
    m_thread.start();
    QMetaObject::invokeMethod(
        m_worker, [worker = m_worker] { worker->start(); }, Qt::QueuedConnection);
}

SshHost::~SshHost() {
    m_worker->abort();
    QMetaObject::invokeMethod(
        m_worker, [worker = m_worker] { worker->stop(); }, Qt::BlockingQueuedConnection);
    m_thread.quit();
    m_thread.wait();
    delete m_worker;
}

void SshHost::noteState(bool connected, const QString &reason) {
    const bool was = m_online;
    m_online = connected;
    if (connected && !was) Q_EMIT online();
    if (!connected) Q_EMIT offline(reason);
}

void SshHost::setSecret(const QString &secret) {
    QMetaObject::invokeMethod(
        m_worker, [worker = m_worker, secret] { worker->session().setSecret(secret); },
        Qt::QueuedConnection);
}

void SshHost::post(std::function<QString(SshSession &)> job) {
    QMetaObject::invokeMethod(
        m_worker, [worker = m_worker, job = std::move(job)] { worker->run(job); },
        Qt::QueuedConnection);
}

void SshHost::keepConnected() {
    m_keptConnected = true;
    QMetaObject::invokeMethod(
        m_worker, [worker = m_worker] { worker->keepConnected(); }, Qt::QueuedConnection);
}

void SshHost::connectToHost(QObject *context, std::function<void(Result<void>)> done) {
    call<void>(
        [](SshSession &session) -> Result<void> {
            if (session.isConnected() && session.probe()) return {};
            return session.connect();
        },
        context, std::move(done));
}

void SshHost::exec(const QString &command, int timeoutMs, QObject *context,
                   std::function<void(Result<ExecResult>)> done, const QByteArray &input) {
    call<ExecResult>([command, timeoutMs, input](
                         SshSession &session) { return session.exec(command, timeoutMs, input); },
                     context, std::move(done));
}

void SshHost::upload(const QByteArray &content, const QString &remotePath, int mode,
                     QObject *context, std::function<void(Result<void>)> done) {
    call<void>([content, remotePath,
                mode](SshSession &session) { return session.upload(content, remotePath, mode); },
               context, std::move(done));
}

SshPool::SshPool(QObject *parent)
    : QObject(parent) {}

SshPool::~SshPool() {
    qDeleteAll(m_hosts);
}

SshHost *SshPool::host(const QString &name, const SshConfig &config) {
    if (SshHost *existing = m_hosts.value(name)) return existing;
    auto *created = new SshHost(name, config);
    m_hosts.insert(name, created);
    connect(created, &SshHost::online, this,
            [this, name] { Q_EMIT hostStateChanged(name, true, {}); });
    connect(created, &SshHost::offline, this,
            [this, name](const QString &reason) { Q_EMIT hostStateChanged(name, false, reason); });
    return created;
}

void SshPool::remove(const QString &name) {
    delete m_hosts.take(name);
}

} // namespace corral
