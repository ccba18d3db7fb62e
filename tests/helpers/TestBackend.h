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
//   /pattern/KB       KB kilobytes of patternByte(offset) with Content-Length
//   /truncated/KB     Content-Length of KB kilobytes, half of them sent, then closes
//   /headers          answers the request head as received
//   /continue         answers "100 Continue" first if asked, then echoes the body
//   /early            103 Early Hints, then 200
//   /health           200, or 503 after setHealthy(false)
//   /close            reads the request, closes without answering
//   /crash            reads the request, then dies: listener and every connection closed
//   /partial          sends half a response head, then closes
//   /both-framings    Content-Length and Transfer-Encoding: chunked in one response
//   /huge-head        a response head larger than the proxy's buffer
//   /switch           101 Switching Protocols to a request that asked for no upgrade
//   /gzip-te          Transfer-Encoding: gzip (not chunked), body until close
//   /conn-cl          a response whose Connection header names Content-Length
//   /text/BYTES?OPTS  BYTES of textBody() as text/html; OPTS, '&'-separated (values with '+'
//                     for a space): type=T (Content-Type), enc=E (Content-Encoding), etag=E,
//                     vary=V, cc=V (Cache-Control), status=S (204/304: no body),
//                     frame=length|chunked|close (close: HTTP/1.0, ended by closing),
//                     pieces=N (sent in N parts gap=MS apart, default 30), cut=1 (half the
//                     body, then close)
//   any request with "Upgrade: websocket"  101, then echoes raw bytes both ways

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace corral::test {

/// The byte at `offset` of a /pattern/ body: varies with the offset at several scales.
inline char patternByte(size_t offset) {
    return char('a' + (offset * 7 + offset / 4093) % 26);
}

/// `bytes` of varied English-like text (words from a fixed generator, lines of them): what a
/// page or a JSON API sends, compressible but not trivially. The same for the same size.
std::string textBody(size_t bytes);

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
    /// Every connection answers its first request only; a later one on the same connection
    /// is read and the connection closed without an answer (a keep-alive connection that
    /// went stale just as it was reused).
    void setAnswerFirstOnly(bool on) { m_answerFirstOnly = on; }
    /// False once /crash killed it.
    bool alive() const { return !m_stopping.load(); }
    /// Last request head received (for header assertions).
    std::string lastHead() const;

private:
    void acceptLoop();
    void serve(int fd);
    void crash();

    int m_listenFd = -1;
    uint16_t m_port = 0;
    std::atomic<bool> m_stopping{false};
    std::atomic<bool> m_healthy{true};
    std::atomic<bool> m_answerFirstOnly{false};
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
