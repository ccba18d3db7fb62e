#include "ssh/SshHost.h"

#include <QElapsedTimer>
#include <QMutex>
#include <QTimer>

#include <atomic>

#include <sys/socket.h>

namespace corral {

/// Lives on the host's thread and owns the session there.
class SshHostWorker : public QObject {
public:
    SshHostWorker(SshHost *host, SshConfig config)
        : m_host(host)
        , m_session(std::move(config)) {}

    // Called on the worker thread.
    void start() {
        const int interval = m_session.config().keepaliveIntervalMs;
        if (interval <= 0) return;
        m_keepalive = new QTimer(this);
        m_keepalive->setInterval(std::max(1000, interval / 2));
        QObject::connect(m_keepalive, &QTimer::timeout, this, [this, interval] {
            if (m_stopping || !m_session.isConnected() || m_idle.elapsed() < interval) return;
            m_idle.restart();
            if (auto sent = m_session.sendKeepalive(); !sent) report(sent.error());
        });
        m_keepalive->start();
        m_idle.start();
    }
    void stop() {
        delete m_keepalive;
        m_keepalive = nullptr;
        QMutexLocker lock(&m_fdMutex);
        m_session.disconnect();
        m_fd = -1;
    }

    void run(const std::function<QString(SshSession &)> &job) {
        // Jobs queued behind a destructor are dropped; their callbacks could not run anyway.
        if (m_stopping) return;
        const bool wasConnected = m_session.isConnected();
        const QString error = job(m_session);
        m_idle.restart();
        {
            QMutexLocker lock(&m_fdMutex);
            m_fd = m_session.socketDescriptor();
        }
        const bool connected = m_session.isConnected();
        if (connected != wasConnected || (!connected && !error.isEmpty()))
            report(connected ? QString() : error);
    }

    // Shuts the socket down from another thread so a blocking libssh call returns at once.
    void abort() {
        m_stopping = true;
        QMutexLocker lock(&m_fdMutex);
        if (m_fd >= 0) ::shutdown(m_fd, SHUT_RDWR);
    }

    SshSession &session() { return m_session; }

private:
    void report(const QString &reason) {
        const bool connected = m_session.isConnected();
        QMetaObject::invokeMethod(
            m_host, [host = m_host, connected, reason] { host->noteState(connected, reason); },
            Qt::QueuedConnection);
    }

    SshHost *m_host;
    SshSession m_session;
    QTimer *m_keepalive = nullptr;
    QElapsedTimer m_idle;
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

void SshHost::connectToHost(QObject *context, std::function<void(Result<void>)> done) {
    call<void>([](SshSession &session) { return session.connect(); }, context, std::move(done));
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
    return created;
}

void SshPool::remove(const QString &name) {
    delete m_hosts.take(name);
}

} // namespace corral
