#include "proxy/HttpsRedirect.h"

#include "http/HttpParser.h"
#include "proxy/ProxyInternal.h"

#include <algorithm>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace corral::proxy {

namespace {

bool isHostChar(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.';
}

bool isDigits(std::string_view s) {
    return !s.empty() && s.size() <= 5 &&
           std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// The name part of a Host header ("example.com", "[::1]"), its port dropped; empty when it
// is anything else: the Location must not carry what a hostile client put there.
std::string_view hostName(std::string_view host) {
    if (host.empty() || host.size() > 255) return {};
    if (host.front() == '[') {
        const size_t close = host.find(']');
        if (close == std::string_view::npos) return {};
        const std::string_view inside = host.substr(1, close - 1);
        const std::string_view rest = host.substr(close + 1);
        if (inside.empty() || (!rest.empty() && (rest[0] != ':' || !isDigits(rest.substr(1)))))
            return {};
        const bool ok = std::all_of(inside.begin(), inside.end(), [](char ch) {
            return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                   (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
        });
        return ok ? host.substr(0, close + 1) : std::string_view();
    }
    const size_t colon = host.find(':');
    const std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos && !isDigits(host.substr(colon + 1))) return {};
    if (name.empty() || name.front() == '.' || name.front() == '-' ||
        !std::all_of(name.begin(), name.end(), isHostChar))
        return {};
    return name;
}

constexpr std::string_view BadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

struct Pending {
    int fd = -1;
    int64_t deadlineMs = 0;
    std::string data;
    http::HeadScanner scan;
    size_t headLength = 0;
};

constexpr size_t MaxHead = 8192;
constexpr size_t MaxPending = 256;

} // namespace

std::string httpsLocation(std::string_view host, std::string_view target, uint16_t httpsPort,
                          std::string_view fallbackHost) {
    std::string_view name = hostName(host);
    if (name.empty()) name = fallbackHost;
    const bool printable =
        std::all_of(target.begin(), target.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
    std::string location = "https://";
    location.append(name);
    if (httpsPort != 443) location.append(":").append(std::to_string(httpsPort));
    if (!printable || target.empty() || (target[0] != '/' && target[0] != '?'))
        location.append("/");
    else {
        if (target[0] == '?') location.append("/"); // absolute-form "http://a?q"
        location.append(target);
    }
    return location;
}

HttpsRedirector::HttpsRedirector(int listenFd, uint16_t httpsPort, std::string fallbackHost,
                                 int timeoutMs)
    : m_listenFd(listenFd)
    , m_httpsPort(httpsPort)
    , m_fallbackHost(std::move(fallbackHost))
    , m_timeoutMs(timeoutMs) {}

HttpsRedirector::~HttpsRedirector() {
    stop();
    if (m_wakeFd >= 0) ::close(m_wakeFd);
    ::close(m_listenFd);
}

bool HttpsRedirector::start() {
    m_wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m_wakeFd < 0) return false;
    m_thread = std::thread([this] { run(); });
    return true;
}

void HttpsRedirector::stop() {
    if (!m_thread.joinable()) return;
    m_stop = true;
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(m_wakeFd, &one, sizeof one);
    m_thread.join();
}

void HttpsRedirector::run() {
    std::vector<Pending> clients;
    std::vector<pollfd> fds;
    http::HeadLimits limits;
    limits.maxRequestLine = MaxHead;
    limits.maxHeaderBytes = MaxHead;
    http::RequestHead request;
    const auto answer = [&](Pending &p) {
        std::string response;
        const std::string_view head(p.data.data(), p.headLength);
        if (http::parseRequest(head.data(), head.size(), limits, request) == 0) {
            response = "HTTP/1.1 301 Moved Permanently\r\nLocation: " +
                       httpsLocation(request.host, request.target, m_httpsPort, m_fallbackHost) +
                       "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        } else {
            response = BadRequest;
        }
        // A few dozen bytes into an empty socket buffer: one send does it.
        [[maybe_unused]] const ssize_t n =
            ::send(p.fd, response.data(), response.size(), MSG_NOSIGNAL);
        ::shutdown(p.fd, SHUT_WR);
    };
    while (!m_stop.load()) {
        int64_t now = monotonicMs();
        int timeout = 1000;
        for (const Pending &p : clients)
            timeout = int(std::clamp<int64_t>(p.deadlineMs - now, 0, timeout));
        fds.clear();
        fds.push_back({m_wakeFd, POLLIN, 0});
        // A full table leaves the rest waiting in the backlog.
        fds.push_back({clients.size() < MaxPending ? m_listenFd : -1, POLLIN, 0});
        for (const Pending &p : clients)
            fds.push_back({p.fd, POLLIN, 0});
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
        now = monotonicMs();
        for (size_t i = 0; i < clients.size(); ++i) {
            Pending &p = clients[i];
            if (fds[i + 2].revents == 0) continue;
            char chunk[4096];
            const ssize_t n =
                ::recv(p.fd, chunk, std::min(sizeof chunk, MaxHead - p.data.size()), 0);
            if (n > 0) {
                p.data.append(chunk, size_t(n));
                const long length = p.scan.scan(p.data.data(), p.data.size());
                if (length > 0) {
                    p.headLength = size_t(length);
                    answer(p);
                    p.deadlineMs = 0; // done: closed below
                } else if (length < 0 || p.data.size() >= MaxHead) {
                    [[maybe_unused]] const ssize_t w =
                        ::send(p.fd, BadRequest.data(), BadRequest.size(), MSG_NOSIGNAL);
                    p.deadlineMs = 0;
                }
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                p.deadlineMs = 0;
            }
        }
        // Answered, gone or too slow: closed.
        std::erase_if(clients, [now](const Pending &p) {
            if (p.deadlineMs > now) return false;
            ::close(p.fd);
            return true;
        });
        if (fds[1].revents & POLLIN) {
            for (int i = 0; i < 64 && clients.size() < MaxPending; ++i) {
                const int fd = accept4(m_listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) break;
                Pending p;
                p.fd = fd;
                p.deadlineMs = now + m_timeoutMs;
                clients.push_back(std::move(p));
            }
        }
        if (fds[0].revents & POLLIN) {
            uint64_t value;
            [[maybe_unused]] const ssize_t r = ::read(m_wakeFd, &value, sizeof value);
        }
    }
    for (const Pending &p : clients)
        ::close(p.fd);
}

} // namespace corral::proxy
