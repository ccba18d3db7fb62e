#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QString>

#include <atomic>
#include <thread>

namespace corral {

class ProxyEngine;

/// The proxy's admin HTTP API on a loopback address, one short request at a time on its own
/// thread (it is for operators and the supervisor, not for traffic):
/// GET /stats, GET /backends, POST /backends, DELETE /backends/HOST:PORT,
/// POST /backends/HOST:PORT/drain, POST /backends/HOST:PORT/enable,
/// POST /backends/HOST:PORT/disable.
class AdminServer {
public:
    explicit AdminServer(ProxyEngine &engine);
    ~AdminServer();
    AdminServer(const AdminServer &) = delete;
    AdminServer &operator=(const AdminServer &) = delete;

    /// Refuses non-loopback addresses: the API changes the balancer and has no auth.
    Result<void> start(const QString &address, quint16 port);
    void stop();
    quint16 port() const { return m_port; }

    struct Reply {
        int status = 200;
        QByteArray body;
    };
    /// Routes one request; public so tests can call it without a socket.
    Reply handle(const QByteArray &method, const QByteArray &path, const QByteArray &body);

private:
    void run();
    void serve(int fd);

    ProxyEngine &m_engine;
    int m_listenFd = -1;
    int m_wakeFd = -1;
    quint16 m_port = 0;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

} // namespace corral
