#pragma once

// A steerable HTTP/1.1 backend for the proxy tests: blocking sockets, a thread per
// connection, behaviour picked by the request path. Listens on 127.0.0.1, ephemeral port.
//
//   /                 200 "ok PORT"
//   /status/N         answers status N (204 and 304 without a body)
//   /chunked/N        N chunks of "chunk-i\n", chunked encoding
//   /slow/MS          waits MS milliseconds, then 200
//   /reset            closes (RST) without answering
//   /echo             answers the request body (Content-Length or chunked request)
//   /count            reads the body and answers its byte count
//   /big/MB           MB megabytes of 'x' with Content-Length
//   /headers          answers the request head as received
//   /continue         answers "100 Continue" first if asked, then echoes the body
//   /early            103 Early Hints, then 200
//   /health           200, or 503 after setHealthy(false)
//   any request with "Upgrade: websocket"  101, then echoes raw bytes both ways

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace corral::test {

class TestBackend {
public:
    TestBackend();
    ~TestBackend();
    TestBackend(const TestBackend &) = delete;
    TestBackend &operator=(const TestBackend &) = delete;

    bool start(uint16_t port = 0);
    /// Closes the listener and every open connection (like a killed worker).
    void stop();
    uint16_t port() const { return m_port; }
    std::string key() const { return "127.0.0.1:" + std::to_string(m_port); }

    int requests() const { return m_requests.load(); }
    int inFlight() const { return m_inFlight.load(); }
    int connections() const { return m_connections.load(); }
    void setHealthy(bool healthy) { m_healthy = healthy; }
    /// Last request head received (for header assertions).
    std::string lastHead() const;

private:
    void acceptLoop();
    void serve(int fd);

    int m_listenFd = -1;
    uint16_t m_port = 0;
    std::atomic<bool> m_stopping{false};
    std::atomic<bool> m_healthy{true};
    std::atomic<int> m_requests{0};
    std::atomic<int> m_inFlight{0};
    std::atomic<int> m_connections{0};
    std::thread m_acceptThread;
    mutable std::mutex m_mutex;
    std::vector<std::thread> m_threads;
    std::vector<int> m_fds;
    std::string m_lastHead;
};

} // namespace corral::test
