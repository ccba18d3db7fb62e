#include "loadgen/LoadGenerator.h"

#include "loadgen/LoadWorker.h"

#include <QMetaObject>

#include <algorithm>
#include <mutex>
#include <utility>

#include <pthread.h>

namespace corral {

LoadGenerator::LoadGenerator(QObject *parent)
    : QObject(parent)
    , m_shared(std::make_unique<Shared>()) {
    setPaths(m_paths);
}

LoadGenerator::~LoadGenerator() {
    stop();
}

void LoadGenerator::setTarget(const QString &host, quint16 port) {
    if (host == m_host && port == m_port) return;
    m_host = host;
    m_port = port;
    setPaths(m_paths); // the Host header changes with the target
    if (isRunning()) {
        stop();
        start();
    }
}

void LoadGenerator::setPaths(const QStringList &paths) {
    QStringList usable;
    for (QString path : paths) {
        path = path.trimmed();
        // No whitespace or control characters: they would break (or inject into) the request.
        if (path.isEmpty() || std::any_of(path.begin(), path.end(), [](QChar c) {
                return c.unicode() <= 0x20 || c.unicode() == 0x7f;
            }))
            continue;
        usable.append(path.startsWith(u'/') ? path : QString(u'/' + path));
    }
    if (usable.isEmpty()) usable = {QStringLiteral("/")};
    m_paths = usable;

    const QString hostHeader = (m_host.contains(u':') ? QString(u'[' + m_host + u']') : m_host) +
                               u':' + QString::number(m_port);
    std::vector<std::string> requests;
    for (const QString &path : std::as_const(usable)) {
        const QString request = u"GET " + path + u" HTTP/1.1\r\nHost: " + hostHeader +
                                u"\r\nUser-Agent: corral-loadgen/" CORRAL_VERSION
                                "\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";
        requests.push_back(request.toStdString());
    }
    {
        std::lock_guard lock(m_shared->mutex);
        m_shared->requests = std::move(requests);
    }
    m_shared->requestsGeneration.fetch_add(1, std::memory_order_release);
}

void LoadGenerator::setRate(int requestsPerSecond) {
    m_rate = std::clamp(requestsPerSecond, 0, MaxRate);
    m_shared->rate.store(m_rate, std::memory_order_relaxed);
    m_shared->wake(); // a thread idling at rate 0 must not wait for its next tick
}

void LoadGenerator::setConnections(int connections) {
    connections = std::clamp(connections, 1, MaxConnections);
    if (connections == m_connections) return;
    m_connections = connections;
    if (isRunning()) {
        stop();
        start();
    }
}

void LoadGenerator::start() {
    if (isRunning()) return;
    if (m_port == 0 || m_host.isEmpty()) {
        Q_EMIT failed(QStringLiteral("load generator: no target set"));
        return;
    }
    m_shared->sent = 0;
    m_shared->ok = 0;
    m_shared->failed = 0;
    {
        std::lock_guard lock(m_shared->mutex);
        m_shared->achievedPerSecond = 0;
        m_shared->p99Ms = 0;
    }
    m_shared->rate.store(m_rate, std::memory_order_relaxed);
    m_shared->stopping.store(false, std::memory_order_release);

    // A failure queued by an earlier run must not be reported against this one.
    const quint64 run = ++m_run;
    LoadWorkerConfig config;
    config.host = m_host.toStdString();
    config.port = m_port;
    config.connections = m_connections;
    config.report = [this, run](const QString &message) {
        // Queued to the owner's thread; the destructor joins this thread before QObject's
        // destructor discards pending events, so `this` is alive whenever the lambda runs.
        QMetaObject::invokeMethod(
            this,
            [this, run, message] {
                if (run == m_run) Q_EMIT failed(message);
            },
            Qt::QueuedConnection);
    };
    m_thread = std::thread([shared = m_shared.get(), config = std::move(config)]() mutable {
        ::pthread_setname_np(::pthread_self(), "corral-loadgen");
        runLoadWorker(*shared, std::move(config));
    });
}

void LoadGenerator::stop() {
    if (!isRunning()) return;
    m_shared->stopping.store(true, std::memory_order_release);
    m_shared->wake();
    m_thread.join();
}

LoadStats LoadGenerator::stats() const {
    LoadStats stats;
    stats.sent = m_shared->sent.load(std::memory_order_relaxed);
    stats.ok = m_shared->ok.load(std::memory_order_relaxed);
    stats.failed = m_shared->failed.load(std::memory_order_relaxed);
    std::lock_guard lock(m_shared->mutex);
    stats.achievedPerSecond = m_shared->achievedPerSecond;
    stats.p99Ms = m_shared->p99Ms;
    return stats;
}

} // namespace corral
