#pragma once

#include "proxy/AdminClient.h"
#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <atomic>
#include <optional>
#include <thread>

namespace corral {

class ProxyEngine;

/// The proxy's admin HTTP API on its own thread (it is for operators and the supervisor, not
/// for traffic): GET /stats, GET /metrics (Prometheus), GET /backends, POST /backends, DELETE
/// /backends/HOST:PORT, POST /backends/HOST:PORT/drain, POST /backends/HOST:PORT/enable, POST
/// /backends/HOST:PORT/disable.
///
/// Nothing a web page sends may reach it (issue 13): it listens on a Unix socket by default
/// (0600, in the user's 0700 runtime directory, peers of another uid refused); on a loopback
/// TCP address every request needs the bearer token from the 0600 token file, a request with
/// an Origin header or a Host other than the bound address is refused (DNS rebinding).
/// Connections are served concurrently by one poll() loop, each with a deadline, so a slow
/// client delays nobody else.
class AdminServer {
public:
    static constexpr int MaxConnections = 16;
    static constexpr int MaxRequestBytes = 64 * 1024; ///< head and body together
    static constexpr int RequestTimeoutMs = 2000;     ///< to receive a whole request

    explicit AdminServer(ProxyEngine &engine);
    ~AdminServer();
    AdminServer(const AdminServer &) = delete;
    AdminServer &operator=(const AdminServer &) = delete;

    /// Listens where `requested` says: a Unix socket (the default path when both socketPath
    /// and host are empty) or a loopback TCP address, for which it writes the token file.
    Result<void> start(const AdminEndpoint &requested);
    void stop();
    /// Where it listens (the bound port, the token file), once started.
    const AdminEndpoint &endpoint() const { return m_endpoint; }

    struct Reply {
        int status = 200;
        QByteArray body;
        /// Empty: JSON (a line feed is added after the body); else sent as it is.
        QByteArray contentType = {};
    };
    /// What a request must show on this transport.
    struct Access {
        QByteArray token;        ///< required bearer token; empty: none (Unix socket)
        QList<QByteArray> hosts; ///< accepted Host values; empty: any
    };
    /// One request as received so far: nothing while it is incomplete, else the reply
    /// (refusals included). The whole request path after the socket; public for the fuzzer.
    std::optional<Reply> process(const QByteArray &received, const Access &access);
    /// Routes one authorised request; public so tests can call it without a socket.
    Reply handle(const QByteArray &method, const QByteArray &path, const QByteArray &body);
    /// The HTTP response that carries `reply` (always Connection: close).
    static QByteArray responseBytes(const Reply &reply);

private:
    struct Connection;
    Result<void> listenUnix(const QString &path);
    Result<void> listenTcp(const QString &host, quint16 port);
    Result<void> writeTokenFile();
    void run();

    ProxyEngine &m_engine;
    AdminEndpoint m_endpoint;
    Access m_access;
    bool m_ownsSocketFile = false;
    int m_listenFd = -1;
    int m_wakeFd = -1;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

} // namespace corral
