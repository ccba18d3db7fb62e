#include "Server.h"

#include "http/HeaderText.h"
#include "http/StatusText.h"

#include <QByteArray>
#include <QCryptographicHash>
#include <QRandomGenerator>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace corral::demo {
namespace {

// Event ids in epoll's data field; connections count up from kFirstConnectionId.
constexpr std::uint64_t kListenerId = 0;
constexpr std::uint64_t kSignalId = 1;
constexpr std::uint64_t kFirstConnectionId = 2;

constexpr std::size_t kReadChunk = 64 * 1024;
// Past these a connection stops producing responses / reading input, so a slow or greedy
// client cannot make the worker buffer without bound.
constexpr std::size_t kOutputHighWater = 256 * 1024;
constexpr std::size_t kInputLimit = 1024 * 1024;
constexpr std::size_t kEchoBodyLimit = 64 * 1024 * 1024;
constexpr unsigned long long kMaxWorkMs = 60'000;
constexpr unsigned long long kMaxSleepMs = 3'600'000;
constexpr unsigned long long kMaxBytes = 1ULL << 40;
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr auto kLogInterval = std::chrono::milliseconds(100);
constexpr std::size_t kLogLineBytes = 100;
// --sessions memory keeps at most this many session ids; the oldest are forgotten first.
constexpr std::size_t kMaxSessions = 10'000;

// The value of cookie `name` in a Cookie header ("a=1; demo.sid=x"); empty when absent.
std::string_view cookieValue(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        const std::size_t end = header.find(';');
        std::string_view pair = header.substr(0, end);
        header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
        while (!pair.empty() && pair.front() == ' ')
            pair.remove_prefix(1);
        if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=')
            return pair.substr(name.size() + 1);
    }
    return {};
}

// The toolkit's reason phrase; "Unknown" for a status it does not list.
std::string_view reasonPhrase(int status) {
    const std::string_view reason = http::reasonPhrase(status);
    return reason.empty() ? std::string_view("Unknown") : reason;
}

std::optional<unsigned long long> parseCount(std::optional<std::string_view> text,
                                             unsigned long long max) {
    const std::optional<std::uint64_t> value = text ? http::parseDecimal(*text) : std::nullopt;
    if (!value || *value > max) return std::nullopt;
    return *value;
}

std::string webSocketAccept(std::string_view key) {
    QByteArray input(key.data(), static_cast<qsizetype>(key.size()));
    input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; // RFC 6455 section 1.3
    return QCryptographicHash::hash(input, QCryptographicHash::Sha1).toBase64().toStdString();
}

// /bytes bodies are sent straight from this block, so a 1 GB response allocates nothing.
const std::array<char, 64 * 1024> &bytesPattern() {
    static const std::array<char, 64 * 1024> pattern = [] {
        std::array<char, 64 * 1024> filled;
        filled.fill('x');
        return filled;
    }();
    return pattern;
}

std::string formatAddress(const ListenAddress &address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.storage.ss_family == AF_INET6) {
        const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&address.storage);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        return std::string("[") + text + "]";
    }
    const auto *in4 = reinterpret_cast<const sockaddr_in *>(&address.storage);
    inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
    return text;
}

void writeAll(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t written = ::write(fd, bytes.data(), bytes.size());
        if (written < 0) {
            if (errno == EINTR) continue;
            return; // stdout gone (EPIPE): the log line is lost, the worker keeps serving
        }
        bytes.remove_prefix(static_cast<std::size_t>(written));
    }
}

} // namespace

struct Server::Connection {
    std::uint64_t id = 0;
    int fd = -1;
    std::uint32_t registeredEvents = 0;
    ByteQueue input;
    ByteQueue output;
    RequestParser parser;
    unsigned long long streamRemaining = 0; // /bytes body still to send after output
    bool waiting = false;                   // a /sleep response is pending
    bool closeAfterFlush = false;
    bool peerClosed = false;
    bool webSocket = false;
    bool lingering = false; // our side shut down; draining input until the peer closes
};

std::optional<ListenAddress> resolveListenAddress(const std::string &address, int port,
                                                  std::string &error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo *results = nullptr;
    const std::string service = std::to_string(port);
    const int status = getaddrinfo(address.c_str(), service.c_str(), &hints, &results);
    if (status != 0 || results == nullptr) {
        error = "--bind " + address + ": " + gai_strerror(status);
        return std::nullopt;
    }
    ListenAddress resolved;
    std::memcpy(&resolved.storage, results->ai_addr, results->ai_addrlen);
    resolved.length = results->ai_addrlen;
    freeaddrinfo(results);
    return resolved;
}

Server::Server(Options options, ListenAddress address)
    : m_options(std::move(options))
    , m_address(address)
    , m_addressText(formatAddress(address))
    , m_port(m_options.port)
    , m_nextConnectionId(kFirstConnectionId)
    , m_healthFailing(m_options.failHealth)
    , m_readBuffer(kReadChunk) {}

Server::~Server() {
    for (const auto &[id, connection] : m_connections)
        ::close(connection->fd);
    if (m_listener >= 0) ::close(m_listener);
    if (m_signalFd >= 0) ::close(m_signalFd);
    if (m_epoll >= 0) ::close(m_epoll);
}

int Server::run() {
    m_epoll = epoll_create1(EPOLL_CLOEXEC);
    if (m_epoll < 0) {
        std::perror("corral-demo-worker: epoll_create1");
        return 1;
    }
    if (!setUpSignals()) return 1;

    if (m_options.exitAfterMs >= 0) {
        addTimer(std::chrono::milliseconds(m_options.exitAfterMs), [this] {
            std::printf("corral-demo-worker pid %d exiting after %lld ms (--exit-after-ms)\n",
                        getpid(), m_options.exitAfterMs);
            m_exitStatus = 7;
        });
    }
    if (m_options.logRateBytesPerSecond > 0) {
        const Clock::time_point due = Clock::now() + kLogInterval;
        addTimer(kLogInterval, [this, due] { writeLogLines(due); });
    }
    if (!m_options.neverListen) {
        if (m_options.readyDelayMs > 0) {
            addTimer(std::chrono::milliseconds(m_options.readyDelayMs), [this] {
                if (!startListening()) m_exitStatus = 1;
            });
        } else if (!startListening()) {
            return 1;
        }
    }

    std::array<epoll_event, 256> events;
    while (!m_exitStatus) {
        const int count = epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()),
                                     millisecondsUntilNextTimer());
        if (count < 0) {
            if (errno == EINTR) continue;
            std::perror("corral-demo-worker: epoll_wait");
            return 1;
        }
        for (int i = 0; i < count && !m_exitStatus; ++i)
            handleEvent(events[static_cast<std::size_t>(i)].data.u64,
                        events[static_cast<std::size_t>(i)].events);
        runDueTimers();
    }
    return *m_exitStatus;
}

bool Server::setUpSignals() {
    std::signal(SIGPIPE, SIG_IGN); // a peer that went away is an EPIPE, not a death
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    if (m_options.ignoreSigterm)
        std::signal(SIGTERM, SIG_IGN);
    else
        sigaddset(&stopSignals, SIGTERM);
    // Blocked signals are read from a signalfd inside the loop, so stopping is just an event.
    if (sigprocmask(SIG_BLOCK, &stopSignals, nullptr) != 0) return false;
    m_signalFd = signalfd(-1, &stopSignals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m_signalFd < 0) {
        std::perror("corral-demo-worker: signalfd");
        return false;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kSignalId;
    return epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_signalFd, &event) == 0;
}

bool Server::startListening() {
    const int port = m_options.port;
    const int fd =
        ::socket(m_address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        std::perror("corral-demo-worker: socket");
        return false;
    }
    // SO_REUSEADDR only skips TIME_WAIT leftovers; a live listener still makes bind fail.
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, reinterpret_cast<const sockaddr *>(&m_address.storage), m_address.length) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
        const int error = errno;
        if (error == EADDRINUSE)
            std::fprintf(stderr,
                         "corral-demo-worker: cannot listen on %s:%d: port %d is already in use\n",
                         m_addressText.c_str(), port, port);
        else
            std::fprintf(stderr, "corral-demo-worker: cannot listen on %s:%d (port %d): %s\n",
                         m_addressText.c_str(), port, port, std::strerror(error));
        ::close(fd);
        return false;
    }
    sockaddr_storage bound{};
    socklen_t boundLength = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &boundLength) == 0) {
        m_port = ntohs(bound.ss_family == AF_INET6
                           ? reinterpret_cast<const sockaddr_in6 *>(&bound)->sin6_port
                           : reinterpret_cast<const sockaddr_in *>(&bound)->sin_port);
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kListenerId;
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event);
    m_listener = fd;
    std::printf("corral-demo-worker pid %d listening on %s:%d\n", getpid(), m_addressText.c_str(),
                m_port);
    return true;
}

void Server::handleEvent(std::uint64_t id, std::uint32_t events) {
    if (id == kListenerId) {
        acceptConnections();
        return;
    }
    if (id == kSignalId) {
        signalfd_siginfo info{};
        if (::read(m_signalFd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
            std::printf("corral-demo-worker pid %d stopping on %s\n", getpid(),
                        info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            m_exitStatus = 0;
        }
        return;
    }
    const auto found = m_connections.find(id);
    if (found == m_connections.end()) return; // closed earlier in this batch
    Connection &connection = *found->second;
    // HUP/ERR: the peer reset or both directions are shut; nothing more can be delivered.
    if (events & (EPOLLERR | EPOLLHUP)) {
        closeConnection(id);
        return;
    }
    if ((events & EPOLLIN) && !readInput(connection)) return;
    pump(connection);
}

void Server::acceptConnections() {
    for (;;) {
        const int fd = accept4(m_listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) pauseAccepting(); // e.g. EMFILE
            return;
        }
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        auto connection = std::make_unique<Connection>();
        connection->id = m_nextConnectionId++;
        connection->fd = fd;
        connection->registeredEvents = EPOLLIN;
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = connection->id;
        if (epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event) != 0) {
            ::close(fd);
            continue;
        }
        m_connections.emplace(connection->id, std::move(connection));
    }
}

// Out of descriptors: a level-triggered listener would spin, so stop watching it briefly.
void Server::pauseAccepting() {
    epoll_event event{};
    event.data.u64 = kListenerId;
    epoll_ctl(m_epoll, EPOLL_CTL_MOD, m_listener, &event);
    addTimer(kAcceptPause, [this] {
        epoll_event resumed{};
        resumed.events = EPOLLIN;
        resumed.data.u64 = kListenerId;
        epoll_ctl(m_epoll, EPOLL_CTL_MOD, m_listener, &resumed);
    });
}

bool Server::readInput(Connection &connection) {
    const ssize_t received = ::recv(connection.fd, m_readBuffer.data(), m_readBuffer.size(), 0);
    if (received > 0) {
        if (!connection.lingering)
            connection.input.append(
                std::string_view(m_readBuffer.data(), static_cast<std::size_t>(received)));
        return true;
    }
    if (received == 0) {
        connection.peerClosed = true;
        if (!connection.lingering) return true;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return true;
    }
    closeConnection(connection.id);
    return false;
}

bool Server::writeOutput(Connection &connection) {
    const auto send = [&](const char *data, std::size_t size) -> ssize_t {
        for (;;) {
            const ssize_t sent = ::send(connection.fd, data, size, MSG_NOSIGNAL);
            if (sent >= 0 || errno != EINTR) return sent;
        }
    };
    while (!connection.output.empty()) {
        const std::string_view pending = connection.output.view();
        const ssize_t sent = send(pending.data(), pending.size());
        if (sent < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        connection.output.consume(static_cast<std::size_t>(sent));
    }
    while (connection.streamRemaining > 0) {
        const std::size_t size = static_cast<std::size_t>(
            std::min<unsigned long long>(connection.streamRemaining, bytesPattern().size()));
        const ssize_t sent = send(bytesPattern().data(), size);
        if (sent < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        connection.streamRemaining -= static_cast<unsigned long long>(sent);
    }
    return true;
}

bool Server::canProduce(const Connection &connection) const {
    return !connection.waiting && !connection.closeAfterFlush && !connection.lingering &&
           connection.streamRemaining == 0 && connection.output.size() < kOutputHighWater;
}

// Produces the next response (or the next echoed WebSocket bytes); false when more input
// is needed first.
bool Server::produce(Connection &connection) {
    if (connection.webSocket) {
        if (connection.input.empty()) return false;
        connection.output.append(connection.input.view());
        connection.input.clear();
        return true;
    }
    RequestParser &parser = connection.parser;
    for (;;) {
        switch (parser.feed(connection.input)) {
        case RequestParser::Status::NeedMore:
            return false;
        case RequestParser::Status::HeadersComplete:
            if (parser.request().path == "/echo") parser.keepBody(kEchoBodyLimit);
            if (parser.request().expectContinue && parser.expectsBody())
                connection.output.append("HTTP/1.1 100 Continue\r\n\r\n");
            continue;
        case RequestParser::Status::MessageComplete: {
            const Request request = parser.takeRequest();
            handleRequest(connection, request);
            return true;
        }
        case RequestParser::Status::Invalid: {
            // After a framing error the byte stream cannot be trusted: answer and close.
            Request broken;
            broken.keepAlive = false;
            const int status = parser.errorStatus();
            respond(connection, broken, status, "text/plain",
                    std::string(reasonPhrase(status)) + "\n");
            return true;
        }
        }
    }
}

// Moves a connection forward as far as it can without blocking: parse and answer requests
// in order, write, repeat while writing made room; then close or wait for epoll.
void Server::pump(Connection &connection) {
    bool needInput = false;
    for (;;) {
        needInput = false;
        while (canProduce(connection)) {
            if (!produce(connection)) {
                needInput = true;
                break;
            }
        }
        if (!writeOutput(connection)) {
            closeConnection(connection.id);
            return;
        }
        if (needInput || !canProduce(connection)) break;
    }
    const bool outputIdle = connection.output.empty() && connection.streamRemaining == 0;
    if (outputIdle && !connection.lingering) {
        if (connection.closeAfterFlush) {
            beginClose(connection);
            return;
        }
        if (connection.peerClosed && needInput && !connection.waiting) {
            closeConnection(connection.id);
            return;
        }
    }
    updateInterest(connection);
}

// --sessions memory, like express-session's memory store: a GET of `/` whose demo.sid this
// process did not issue gets a new one (a Set-Cookie line in m_extraHead), remembered here only.
// Returns "new" or "known"; empty when sessions are off or the request is not a GET or HEAD.
std::string_view Server::sessionFor(const Request &request) {
    if (!m_options.memorySessions || (request.method != "GET" && request.method != "HEAD"))
        return {};
    const std::string_view sent = cookieValue(request.cookie, "demo.sid");
    if (!sent.empty() && m_sessions.contains(std::string(sent))) return "known";
    char id[17];
    std::snprintf(id, sizeof id, "%016llx",
                  static_cast<unsigned long long>(QRandomGenerator::global()->generate64()));
    if (m_sessionOrder.size() >= kMaxSessions) {
        m_sessions.erase(m_sessionOrder.front());
        m_sessionOrder.pop_front();
    }
    m_sessions.insert(id);
    m_sessionOrder.emplace_back(id);
    m_extraHead = std::string("Set-Cookie: demo.sid=") + id + "; Path=/; HttpOnly\r\n";
    return "new";
}

void Server::handleRequest(Connection &connection, const Request &request) {
    ++m_requestCount;
    m_extraHead.clear();
    // Only `/` starts a session, like an app's page: /health, /ws (whose 101 is written
    // without appendHead()) and the other test routes issue no cookie, so health checks and
    // load do not churn the kMaxSessions kept.
    const std::string_view session = request.path == "/" ? sessionFor(request) : std::string_view();
    handleRoute(connection, request, session);
    m_extraHead.clear();
}

void Server::handleRoute(Connection &connection, const Request &request, std::string_view session) {
    const std::string &path = request.path;
    const auto pidAndPort = [this] {
        return "\"pid\":" + std::to_string(getpid()) + ",\"port\":" + std::to_string(m_port);
    };

    if (path == "/") {
        respondJson(connection, request,
                    "{" + pidAndPort() + ",\"requests\":" + std::to_string(m_requestCount) +
                        (session.empty() ? "" : ",\"session\":\"" + std::string(session) + "\"") +
                        "}");
    } else if (path == "/health") {
        if (m_healthFailing)
            respond(connection, request, 503, "text/plain", "failing");
        else
            respond(connection, request, 200, "text/plain", "ok");
    } else if (path == "/health/fail" || path == "/health/ok") {
        if (request.method != "POST") {
            respond(connection, request, 405, "text/plain", "use POST\n");
            return;
        }
        m_healthFailing = path == "/health/fail";
        respond(connection, request, 200, "text/plain", m_healthFailing ? "failing" : "ok");
    } else if (path == "/work") {
        const auto ms = parseCount(queryParameter(request.query, "ms"), kMaxWorkMs);
        if (!ms) {
            respond(connection, request, 400, "text/plain", "need ms=0..60000\n");
            return;
        }
        // Deliberately blocks the whole process, as CPU-bound work does in a Node.js app.
        const Clock::time_point end = Clock::now() + std::chrono::milliseconds(*ms);
        volatile unsigned long long sink = 0;
        while (Clock::now() < end) {
            for (unsigned i = 0; i < 1000; ++i)
                sink = sink + i;
        }
        respondJson(connection, request,
                    "{" + pidAndPort() + ",\"workMs\":" + std::to_string(*ms) + "}");
    } else if (path == "/sleep") {
        const auto ms = parseCount(queryParameter(request.query, "ms"), kMaxSleepMs);
        if (!ms) {
            respond(connection, request, 400, "text/plain", "need ms=0..3600000\n");
            return;
        }
        // Later pipelined requests wait behind this one (waiting stops production), which
        // keeps the responses in request order.
        connection.waiting = true;
        addTimer(std::chrono::milliseconds(*ms),
                 [this, id = connection.id, request, extraHead = m_extraHead,
                  body = "{" + pidAndPort() + ",\"sleptMs\":" + std::to_string(*ms) + "}"] {
                     const auto found = m_connections.find(id);
                     if (found == m_connections.end()) return; // the client left meanwhile
                     Connection &sleeper = *found->second;
                     sleeper.waiting = false;
                     m_extraHead = extraHead; // the session cookie decided at the request
                     respondJson(sleeper, request, body);
                     m_extraHead.clear();
                     pump(sleeper);
                 });
    } else if (path == "/bytes") {
        const auto count = parseCount(queryParameter(request.query, "n"), kMaxBytes);
        if (!count) {
            respond(connection, request, 400, "text/plain", "need n=0..1099511627776\n");
            return;
        }
        appendHead(connection, 200, "application/octet-stream", *count, request.keepAlive);
        if (request.method != "HEAD") connection.streamRemaining = *count;
        if (!request.keepAlive) connection.closeAfterFlush = true;
    } else if (path == "/crash") {
        _exit(3);
    } else if (path == "/echo") {
        respond(connection, request, 200, "application/octet-stream", request.body);
    } else if (path == "/ws") {
        if (request.method != "GET" || !request.connectionUpgrade ||
            !http::equalsIgnoreCase(request.upgrade, "websocket") || request.webSocketKey.empty()) {
            respond(connection, request, 426, "text/plain", "expected a WebSocket upgrade\n");
            return;
        }
        connection.output.append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                                 webSocketAccept(request.webSocketKey) + "\r\n\r\n");
        connection.webSocket = true; // from here on the connection is a raw byte echo
    } else {
        respond(connection, request, 404, "text/plain", "not found\n");
    }
}

void Server::appendHead(Connection &connection, int status, std::string_view contentType,
                        std::uint64_t contentLength, bool keepAlive) {
    char head[256];
    const std::string_view reason = reasonPhrase(status);
    const int length = std::snprintf(
        head, sizeof head,
        "HTTP/1.1 %d %.*s\r\nContent-Type: %.*s\r\nContent-Length: %llu\r\nConnection: "
        "%s\r\n",
        status, static_cast<int>(reason.size()), reason.data(),
        static_cast<int>(contentType.size()), contentType.data(),
        static_cast<unsigned long long>(contentLength), keepAlive ? "keep-alive" : "close");
    connection.output.append(std::string_view(head, static_cast<std::size_t>(length)));
    connection.output.append(m_extraHead);
    connection.output.append("\r\n");
}

void Server::respond(Connection &connection, const Request &request, int status,
                     std::string_view contentType, std::string_view body) {
    appendHead(connection, status, contentType, body.size(), request.keepAlive);
    if (request.method != "HEAD") connection.output.append(body);
    if (!request.keepAlive) connection.closeAfterFlush = true;
}

void Server::respondJson(Connection &connection, const Request &request, const std::string &json) {
    respond(connection, request, 200, "application/json", json);
}

// Half-close first and drain what the client still sends: closing with unread input would
// send a reset that can destroy the response before the client has read it.
void Server::beginClose(Connection &connection) {
    if (connection.peerClosed) {
        closeConnection(connection.id);
        return;
    }
    ::shutdown(connection.fd, SHUT_WR);
    connection.lingering = true;
    connection.input.clear();
    addTimer(kLingerTimeout, [this, id = connection.id] {
        if (m_connections.contains(id)) closeConnection(id);
    });
    updateInterest(connection);
}

void Server::closeConnection(std::uint64_t id) {
    const auto found = m_connections.find(id);
    if (found == m_connections.end()) return;
    ::close(found->second->fd); // also removes it from the epoll set
    m_connections.erase(found);
}

void Server::updateInterest(Connection &connection) {
    std::uint32_t events = 0;
    if (connection.lingering) {
        events = EPOLLIN;
    } else {
        const bool outputPending = !connection.output.empty() || connection.streamRemaining > 0;
        if (!connection.peerClosed && !connection.closeAfterFlush &&
            connection.input.size() < kInputLimit)
            events |= EPOLLIN;
        if (outputPending) events |= EPOLLOUT;
    }
    if (events == connection.registeredEvents) return;
    epoll_event event{};
    event.events = events;
    event.data.u64 = connection.id;
    epoll_ctl(m_epoll, EPOLL_CTL_MOD, connection.fd, &event);
    connection.registeredEvents = events;
}

void Server::addTimer(Clock::duration delay, std::function<void()> callback) {
    m_timers.emplace(Clock::now() + delay, std::move(callback));
}

int Server::millisecondsUntilNextTimer() const {
    if (m_timers.empty()) return -1;
    const auto remaining =
        std::chrono::ceil<std::chrono::milliseconds>(m_timers.begin()->first - Clock::now());
    return static_cast<int>(std::clamp<long long>(remaining.count(), 0, INT_MAX));
}

void Server::runDueTimers() {
    const Clock::time_point now = Clock::now();
    while (!m_timers.empty() && m_timers.begin()->first <= now && !m_exitStatus) {
        std::function<void()> callback = std::move(m_timers.begin()->second);
        m_timers.erase(m_timers.begin());
        callback();
    }
}

// Writes whole lines in one write per tick: "about BYTES per second" without a syscall per line.
void Server::writeLogLines(Clock::time_point due) {
    const double perTick = static_cast<double>(m_options.logRateBytesPerSecond) *
                           std::chrono::duration<double>(kLogInterval).count();
    // Credit is capped at one second's worth so a stalled stdout does not cause a burst.
    m_logCredit = std::min(m_logCredit + perTick,
                           static_cast<double>(m_options.logRateBytesPerSecond) + kLogLineBytes);
    m_logBatch.clear();
    while (m_logCredit >= static_cast<double>(kLogLineBytes)) {
        char prefix[80];
        const int length =
            std::snprintf(prefix, sizeof prefix, "corral-demo-worker pid %d log line %llu ",
                          getpid(), static_cast<unsigned long long>(++m_logLineNumber));
        std::string line(prefix, static_cast<std::size_t>(length));
        line.resize(kLogLineBytes - 1, '.');
        m_logBatch += line;
        m_logBatch += '\n';
        m_logCredit -= static_cast<double>(kLogLineBytes);
    }
    if (!m_logBatch.empty()) {
        std::fflush(stdout); // keep ordering with printf'd lines
        writeAll(STDOUT_FILENO, m_logBatch);
    }
    Clock::time_point next = due + kLogInterval;
    const Clock::time_point now = Clock::now();
    if (next < now) next = now + kLogInterval; // fell behind (stdout blocked): do not catch up
    addTimer(next - now, [this, next] { writeLogLines(next); });
}

} // namespace corral::demo
