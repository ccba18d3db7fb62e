#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

#include <memory>
#include <thread>

namespace corral {

/// Counters of a LoadGenerator since its last start(). Every request sent ends as exactly
/// one of ok or failed (after stop(), sent == ok + failed).
struct LoadStats {
    quint64 sent = 0;
    quint64 ok = 0;               ///< answered 2xx or 3xx
    quint64 failed = 0;           ///< answered 4xx/5xx, connection refused or reset, timed out
    double achievedPerSecond = 0; ///< requests completed (ok or failed) over the last second
    double p99Ms = 0;             ///< 99th percentile latency over the last second; 0 if none
};

/// A built-in HTTP/1.1 load generator, so the console's charts move without any other tool.
///
/// It sends keep-alive GETs, at most one outstanding per connection, paced evenly by a token
/// bucket, from its own thread (plain sockets on epoll): the calling thread only sets knobs
/// and reads stats() once per tick. Call its methods from the thread that owns it; stats()
/// may be called from any thread.
class LoadGenerator : public QObject {
    Q_OBJECT
public:
    static constexpr int MaxRate = 20000;
    static constexpr int MaxConnections = 256;

    explicit LoadGenerator(QObject *parent = nullptr);
    /// Stops and joins the sending thread; sockets are closed.
    ~LoadGenerator() override;

    /// Takes effect at the next start(); restarts the generator if it is running.
    void setTarget(const QString &host, quint16 port);
    /// Request paths ("/", "/work?ms=5"), used in rotation. Empty means {"/"}. Applies at once.
    void setPaths(const QStringList &paths);
    QStringList paths() const { return m_paths; }
    /// Requests per second, clamped to 0..MaxRate; applies at once, also while running.
    void setRate(int requestsPerSecond);
    int rate() const { return m_rate; }
    /// Keep-alive connections (default 8, 1..MaxConnections); restarts the generator if
    /// it is running.
    void setConnections(int connections);
    int connections() const { return m_connections; }

    /// Resets the counters and starts sending. No-op when running.
    void start();
    /// Stops sending, waits briefly (at most 500 ms) for outstanding responses, closes the
    /// sockets. Requests still unanswered then count as failed.
    void stop();
    bool isRunning() const { return m_thread.joinable(); }

    LoadStats stats() const;

    struct Shared;

Q_SIGNALS:
    /// The target cannot be used: "cannot connect to 127.0.0.1:8080: Connection refused".
    /// Emitted once per outage (again only after a connection succeeded in between); the
    /// generator keeps retrying until stop().
    void failed(const QString &message);

private:
    QString m_host = QStringLiteral("127.0.0.1");
    quint16 m_port = 0;
    QStringList m_paths{QStringLiteral("/")};
    int m_rate = 100;
    int m_connections = 8;
    // Read by the sending thread: counters, rate, paths, stop flag (see LoadGenerator.cpp).
    std::unique_ptr<Shared> m_shared;
    std::thread m_thread;
    quint64 m_run = 0; // start() count, so a failure queued by an earlier run is dropped
};

} // namespace corral
