#pragma once

// Blocking loopback HTTP/1.1 client for the proxy tests: raw bytes in, parsed responses out,
// every call bounded by a receive timeout.

#include <arpa/inet.h>
#include <chrono>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace corral::test {

struct HttpResponse {
    int status = 0; ///< 0: no (complete) response
    std::string head;
    std::string body;
    bool closed = false; ///< the server closed the connection after it
    std::string header(const std::string &name) const {
        std::string lowerHead = head;
        for (char &c : lowerHead)
            c = char(tolower(c));
        std::string key = "\r\n" + name + ":";
        for (char &c : key)
            c = char(tolower(c));
        const size_t at = lowerHead.find(key);
        if (at == std::string::npos) return {};
        size_t start = at + key.size();
        while (start < head.size() && head[start] == ' ')
            ++start;
        return head.substr(start, head.find("\r\n", start) - start);
    }
};

class HttpClient {
public:
    explicit HttpClient(uint16_t port, int timeoutMs = 5000) { connectTo(port, timeoutMs); }
    ~HttpClient() { close(); }
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    bool connected() const { return m_fd >= 0; }
    int fd() const { return m_fd; }
    void close() {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }
    bool send(const std::string &data) {
        size_t sent = 0;
        while (sent < data.size()) {
            const ssize_t n = ::send(m_fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return false;
            sent += size_t(n);
        }
        return true;
    }
    /// Reads one response (status line, headers, body by its framing).
    HttpResponse read(bool requestWasHead = false) {
        HttpResponse r;
        size_t headEnd;
        while ((headEnd = m_buffer.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) {
                r.closed = true;
                return r;
            }
        r.head = m_buffer.substr(0, headEnd + 2);
        m_buffer.erase(0, headEnd + 4);
        if (r.head.size() < 12) return r;
        const int status = std::atoi(r.head.c_str() + 9);
        const std::string te = r.header("transfer-encoding");
        const std::string cl = r.header("content-length");
        if (requestWasHead || status == 204 || status == 304 || (status >= 100 && status < 200)) {
            // no body
        } else if (!te.empty()) {
            for (;;) {
                size_t eol;
                while ((eol = m_buffer.find("\r\n")) == std::string::npos)
                    if (!fill()) return r;
                const size_t size = std::stoul(m_buffer.substr(0, eol), nullptr, 16);
                m_buffer.erase(0, eol + 2);
                if (size == 0) {
                    while (m_buffer.find("\r\n") == std::string::npos)
                        if (!fill()) return r;
                    m_buffer.erase(0, m_buffer.find("\r\n") + 2);
                    break;
                }
                while (m_buffer.size() < size + 2)
                    if (!fill()) return r;
                r.body += m_buffer.substr(0, size);
                m_buffer.erase(0, size + 2);
            }
        } else if (!cl.empty()) {
            const size_t size = std::stoul(cl);
            while (m_buffer.size() < size)
                if (!fill()) return r;
            r.body = m_buffer.substr(0, size);
            m_buffer.erase(0, size);
        } else {
            while (fill()) {
            }
            r.body.swap(m_buffer);
            r.closed = true;
        }
        r.status = status;
        return r;
    }
    HttpResponse get(const std::string &path, const std::string &extra = {}) {
        if (!send("GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n")) return {};
        return read();
    }
    /// True when the peer has closed (EOF or reset) within the timeout.
    bool waitClosed() {
        while (fill()) {
        }
        return m_eof;
    }
    std::string &buffer() { return m_buffer; }
    bool fill() {
        char chunk[65536];
        const ssize_t n = ::recv(m_fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
            m_eof = n == 0 || errno == ECONNRESET;
            return false;
        }
        m_buffer.append(chunk, size_t(n));
        return true;
    }

private:
    void connectTo(uint16_t port, int timeoutMs) {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
        setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(m_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        const int one = 1;
        setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(m_fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) close();
    }
    int m_fd = -1;
    bool m_eof = false;
    std::string m_buffer;
};

} // namespace corral::test
