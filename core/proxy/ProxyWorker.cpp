#include "proxy/ProxyWorker.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corral::proxy {

enum class Kind : uint8_t { Listener, Wake, Client, Upstream };

struct Pollable {
    Kind kind;
};

struct Upstream : Pollable {
    int fd = -1;
    bool connecting = false;
    bool canRead = false;
    bool canWrite = false;
    bool hangup = false;
    bool eof = false;
    bool reused = false;
    bool closed = false;
    bool pooled = false;
    Buffer in, out;
    std::shared_ptr<BackendRuntime> runtime;
    Client *client = nullptr;
    TimerNode timer;
    http::HeadScanner scan;
};

enum class Phase : uint8_t { Head, Proxy, Tunnel, Linger };

/// Why a failed request was not retried; None: it could have been, nothing else was usable.
enum class NoRetry : uint8_t { None, Final, NotIdempotent, BodySent, Exhausted };

struct Client : Pollable {
    int fd = -1;
    Phase phase = Phase::Head;
    bool canRead = false;
    bool canWrite = true;
    bool hangup = false;
    bool eof = false;
    bool closed = false;
    bool servedOne = false;
    bool closeAfter = false;       ///< close once the current response is out
    bool clientClose = false;      ///< the request said "close": no more bytes will follow it
    bool closeWhenFlushed = false; ///< Linger without lingering: close once `out` is sent
    Buffer in, out, head;          ///< head: the rewritten request head, kept for a retry
    Upstream *up = nullptr;
    http::HeadScanner scan;
    size_t slot = 0;
    TimerNode timer;

    // The request in flight.
    http::BodyKind reqBody = http::BodyKind::None;
    uint64_t reqRemaining = 0;
    http::ChunkedDecoder reqChunks;
    bool reqDone = true;
    bool bodyQueued = false;
    bool isHead = false;
    bool keepAlive = true;
    bool http10 = false;
    bool upgrade = false;
    bool setCookie = false;
    bool idempotent = false;
    bool reqSent = false;    ///< a byte of it was written to the current backend
    bool freshOnly = false;  ///< a pooled connection failed: the retry opens a new one
    uint8_t retriesUsed = 0; ///< retries after the request had reached a backend
    NoRetry noRetry = NoRetry::None;
    FailReason failReason = FailReason::None;
    /// The backend whose failure the next 502/504 reports. Set just before the error is
    /// written, in the same call (m_backends keeps it alive that long); never read later.
    BackendRuntime *failedAt = nullptr;
    int tries = 0;
    BackendRuntime *tried[8] = {};
    int triedCount = 0;
    BackendRuntime *runtime = nullptr; ///< the backend counted for this request
    uint64_t startUs = 0;
    uint32_t stickyOffset = 0, stickyLength = 0; ///< cookie value inside `head`

    // The response.
    bool respStarted = false;
    bool respHeadDone = false;
    bool respDone = false;
    http::BodyKind respBody = http::BodyKind::None;
    uint64_t respRemaining = 0;
    http::ChunkedDecoder respChunks;
    bool respKeepAlive = false; ///< the backend's connection may serve another request
    int status = 0;

    char ip[INET6_ADDRSTRLEN] = {};
    uint8_t ipLength = 0;
    uint64_t addressHash = 0;
};

namespace {

Pollable g_listenerTag{Kind::Listener};
Pollable g_wakeTag{Kind::Wake};

template <typename T> T *ownerOf(TimerNode *node) {
    return static_cast<T *>(node->owner);
}

// Appends text to a buffer if it fits; `ok` turns false otherwise.
struct Writer {
    char *p;
    char *end;
    bool ok = true;
    void put(std::string_view s) {
        if (size_t(end - p) < s.size()) {
            ok = false;
            return;
        }
        std::memcpy(p, s.data(), s.size());
        p += s.size();
    }
    void putNumber(uint64_t n) {
        char digits[24];
        int i = 24;
        do {
            digits[--i] = char('0' + n % 10);
            n /= 10;
        } while (n);
        put(std::string_view(digits + i, size_t(24 - i)));
    }
};

void putDuration(Writer &w, int ms) {
    if (ms % 1000 == 0) {
        w.putNumber(uint64_t(ms / 1000));
        w.put(" s");
    } else {
        w.putNumber(uint64_t(ms));
        w.put(" ms");
    }
}

void putFailure(Writer &w, FailReason why, const ProxyConfig &config) {
    switch (why) {
    case FailReason::None:
        w.put("failed");
        break;
    case FailReason::Refused:
        w.put("refused the connection");
        break;
    case FailReason::Unreachable:
        w.put("could not be connected to");
        break;
    case FailReason::ConnectTimeout:
        w.put("did not accept the connection within ");
        putDuration(w, config.connectTimeoutMs);
        break;
    case FailReason::Closed:
        w.put("closed the connection before answering");
        break;
    case FailReason::Reset:
        w.put("reset the connection before answering");
        break;
    case FailReason::ResponseTimeout:
        w.put("did not answer within ");
        putDuration(w, config.responseTimeoutMs);
        break;
    case FailReason::MalformedHead:
        w.put("sent a malformed response head");
        break;
    case FailReason::HeadTooLarge:
        w.put("sent a response head too large to buffer");
        break;
    case FailReason::UnsolicitedSwitch:
        w.put("switched protocols (101) without being asked to");
        break;
    case FailReason::UnsupportedCoding:
        w.put("sent a transfer coding other than chunked");
        break;
    }
}

// Error details (which backend, what it did) are for the operator at the machine only.
bool isLoopback(std::string_view ip) {
    return ip.substr(0, 4) == "127." || ip == "::1" || ip.substr(0, 11) == "::ffff:127.";
}

std::string_view reasonFor(int status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

} // namespace

std::string durationText(int ms) {
    char text[32];
    Writer w{text, text + sizeof text};
    putDuration(w, ms);
    return std::string(text, size_t(w.p - text));
}

std::string describeFailure(FailReason why, const ProxyConfig &config) {
    char text[128];
    Writer w{text, text + sizeof text};
    putFailure(w, why, config);
    return std::string(text, size_t(w.p - text));
}

void EngineShared::pushEvent(const std::string &backend, BackendEvent::Kind kind,
                             const std::string &why) {
    BackendEvent event;
    event.backend = QString::fromStdString(backend);
    event.kind = kind;
    event.reason = QString::fromStdString(why);
    std::lock_guard lock(eventMutex);
    // Bounded: an engine nobody polls must not grow.
    if (events.size() >= 1000) events.erase(events.begin());
    events.push_back(std::move(event));
}

Worker::Worker(EngineShared &shared, int index, int listenFd)
    : m_shared(shared)
    , m_config(shared.config)
    , m_index(index)
    , m_listenFd(listenFd) {
    const ProxyLimits &l = m_config.limits;
    m_bufferSize = uint32_t(std::max(l.bufferSize, l.maxHeaderBytes + 4096));
    m_timeoutMs[ClientHeader] = l.headerTimeoutMs;
    m_timeoutMs[ClientIdle] = l.keepAliveTimeoutMs;
    m_timeoutMs[ClientBody] = l.bodyTimeoutMs;
    m_timeoutMs[ClientSend] = l.sendTimeoutMs;
    m_timeoutMs[ClientLinger] = 2000;
    m_timeoutMs[UpConnect] = m_config.connectTimeoutMs;
    m_timeoutMs[UpResponse] = m_config.responseTimeoutMs;
    m_timeoutMs[UpIdle] = l.upstreamIdleTimeoutMs;
    m_timeoutMs[TunnelIdle] = l.tunnelTimeoutMs;
    for (TimerNode &t : m_timers)
        t.prev = t.next = &t;
    m_request.headers.reserve(64);
    m_response.headers.reserve(64);
}

Worker::~Worker() {
    // Teardown after the loop ended: whatever is still open is closed and freed here.
    const auto freeUpstream = [](Upstream *u) {
        if (u->fd >= 0) ::close(u->fd);
        std::free(u->in.data);
        std::free(u->out.data);
        delete u;
    };
    for (Client *c : m_clients) {
        if (c->up) freeUpstream(c->up);
        if (c->fd >= 0) ::close(c->fd);
        std::free(c->in.data);
        std::free(c->out.data);
        std::free(c->head.data);
        delete c;
    }
    for (LocalBackend &lb : m_backends)
        for (Upstream *u : lb.idle)
            freeUpstream(u);
    for (void *dead : m_graveyard) {
        auto *p = static_cast<Pollable *>(dead);
        if (p->kind == Kind::Client)
            delete static_cast<Client *>(p);
        else
            delete static_cast<Upstream *>(p);
    }
    for (Client *c : m_freeClients)
        delete c;
    for (Upstream *u : m_freeUpstreams)
        delete u;
    for (char *b : m_freeBuffers)
        std::free(b);
    if (m_wakeFd >= 0) ::close(m_wakeFd);
    if (m_reserveFd >= 0) ::close(m_reserveFd);
}

bool Worker::init() {
    m_poller = std::make_unique<net::EpollPoller>();
    if (!m_poller->valid()) return false;
    m_wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m_wakeFd < 0) return false;
    m_reserveFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return m_poller->addListener(m_listenFd, &g_listenerTag) &&
           m_poller->addLevel(m_wakeFd, &g_wakeTag);
}

void Worker::start() {
    m_thread = std::thread([this] { run(); });
}

void Worker::join() {
    if (m_thread.joinable()) m_thread.join();
}

void Worker::wake() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(m_wakeFd, &one, sizeof one);
}

// ---------------------------------------------------------------- loop

void Worker::run() {
    net::PollEvent events[256];
    m_nowMs = monotonicMs();
    refreshBackends();
    while (!m_shared.stopping.load(std::memory_order_relaxed)) {
        const int n = m_poller->wait(events, 256, nextTimeoutMs());
        m_nowMs = monotonicMs();
        if (m_shared.version.load(std::memory_order_acquire) != m_version) refreshBackends();
        for (int i = 0; i < n; ++i) {
            const net::PollEvent &ev = events[i];
            auto *p = static_cast<Pollable *>(ev.object);
            switch (p->kind) {
            case Kind::Listener:
                if (m_listening) acceptConnections();
                break;
            case Kind::Wake: {
                uint64_t value;
                [[maybe_unused]] const ssize_t r = ::read(m_wakeFd, &value, sizeof value);
                break;
            }
            case Kind::Client:
                onClientEvent(static_cast<Client *>(p), ev);
                break;
            case Kind::Upstream:
                onUpstreamEvent(static_cast<Upstream *>(p), ev);
                break;
            }
        }
        expireTimers();
        resumeAcceptingWhenDue();
        for (void *dead : m_graveyard) {
            auto *p = static_cast<Pollable *>(dead);
            if (p->kind == Kind::Client)
                m_freeClients.push_back(static_cast<Client *>(p));
            else
                m_freeUpstreams.push_back(static_cast<Upstream *>(p));
        }
        m_graveyard.clear();
        if (m_shared.draining.load(std::memory_order_relaxed)) {
            if (m_listening) {
                m_poller->remove(m_listenFd);
                m_listening = false;
            }
            // Idle keep-alive clients go now; busy ones close after their response.
            for (size_t i = m_clients.size(); i-- > 0;) {
                Client *c = m_clients[i];
                if (c->phase == Phase::Head && c->in.size() == 0 && c->out.size() == 0)
                    closeClient(c);
                else
                    c->closeAfter = true;
            }
            if (m_clients.empty()) break;
        }
    }
}

int Worker::nextTimeoutMs() const {
    int64_t next = INT64_MAX;
    for (const TimerNode &t : m_timers)
        if (t.next != &t) next = std::min(next, t.next->deadline);
    if (m_shared.draining.load(std::memory_order_relaxed)) next = std::min(next, m_nowMs + 50);
    if (m_acceptResumeMs) next = std::min(next, m_acceptResumeMs);
    if (next == INT64_MAX) return 1000;
    return int(std::clamp<int64_t>(next - monotonicMs(), 0, 1000));
}

void Worker::arm(TimerNode &node, TimerKind kind) {
    disarm(node);
    TimerNode &list = m_timers[kind];
    node.deadline = m_nowMs + m_timeoutMs[kind];
    node.list = kind;
    node.prev = list.prev;
    node.next = &list;
    list.prev->next = &node;
    list.prev = &node;
}

void Worker::disarm(TimerNode &node) {
    if (node.list < 0) return;
    node.prev->next = node.next;
    node.next->prev = node.prev;
    node.prev = node.next = nullptr;
    node.list = -1;
}

void Worker::expireTimers() {
    for (int k = 0; k < TimerKinds; ++k) {
        TimerNode &list = m_timers[k];
        // Every entry of a list has the same duration, so the list is ordered by deadline.
        while (list.next != &list && list.next->deadline <= m_nowMs) {
            TimerNode *node = list.next;
            disarm(*node);
            switch (TimerKind(k)) {
            case ClientHeader:
            case ClientIdle:
            case ClientLinger:
                closeClient(ownerOf<Client>(node));
                break;
            case ClientBody:
            case ClientSend:
            case TunnelIdle:
                // The client is the slow side: it alone is closed, the backend not blamed.
                abortClient(ownerOf<Client>(node));
                break;
            case UpConnect:
            case UpResponse: {
                Upstream *u = ownerOf<Upstream>(node);
                if (Client *c = u->client) {
                    // A connect timeout fails over; a slow answer is a 504.
                    upstreamFailed(c, true,
                                   k == UpResponse ? FailReason::ResponseTimeout
                                                   : FailReason::ConnectTimeout);
                    if (!c->closed) pump(c);
                } else {
                    closeUpstream(u);
                }
                break;
            }
            case UpIdle:
                closeUpstream(ownerOf<Upstream>(node));
                break;
            case TimerKinds:
                break;
            }
        }
    }
}

// ---------------------------------------------------------------- backends

void Worker::refreshBackends() {
    std::vector<std::shared_ptr<BackendRuntime>> fresh;
    BalancingPolicy policy;
    {
        std::lock_guard lock(m_shared.mutex);
        fresh = m_shared.backends;
        policy = m_shared.policy;
        m_version = m_shared.version.load(std::memory_order_acquire);
    }
    std::vector<LocalBackend> next;
    next.reserve(fresh.size());
    std::vector<BalancerTarget> targets;
    for (auto &rt : fresh) {
        LocalBackend lb;
        lb.runtime = rt;
        for (LocalBackend &old : m_backends)
            if (old.runtime == rt) lb.idle.swap(old.idle);
        next.push_back(std::move(lb));
        targets.push_back(BalancerTarget{rt->config.weight, rt->config.backup});
    }
    // Whatever did not carry over (removed backends) loses its idle connections.
    std::vector<LocalBackend> old;
    old.swap(m_backends);
    m_backends.swap(next);
    for (LocalBackend &lb : old)
        for (Upstream *u : lb.idle) {
            u->pooled = false;
            closeUpstream(u);
        }
    for (LocalBackend &lb : m_backends) {
        BackendRuntime *rt = lb.runtime.get();
        if (!rt->enabled.load() || rt->draining.load() || rt->removed.load()) {
            std::vector<Upstream *> idle;
            idle.swap(lb.idle);
            for (Upstream *u : idle) {
                u->pooled = false;
                closeUpstream(u);
            }
        }
    }
    m_balancer.reset(policy, targets);
}

// ---------------------------------------------------------------- objects and buffers

Client *Worker::newClient() {
    Client *c;
    if (!m_freeClients.empty()) {
        c = m_freeClients.back();
        m_freeClients.pop_back();
        *c = Client{};
    } else {
        c = new Client{};
    }
    c->kind = Kind::Client;
    c->timer.owner = c;
    return c;
}

Upstream *Worker::newUpstream() {
    Upstream *u;
    if (!m_freeUpstreams.empty()) {
        u = m_freeUpstreams.back();
        m_freeUpstreams.pop_back();
        *u = Upstream{};
    } else {
        u = new Upstream{};
    }
    u->kind = Kind::Upstream;
    u->timer.owner = u;
    return u;
}

bool Worker::ensureBuffer(Buffer &b) {
    if (b.data) return true;
    if (!m_freeBuffers.empty()) {
        b.data = m_freeBuffers.back();
        m_freeBuffers.pop_back();
    } else {
        b.data = static_cast<char *>(std::malloc(m_bufferSize));
        if (!b.data) return false;
    }
    b.begin = b.end = 0;
    return true;
}

void Worker::releaseBuffer(Buffer &b) {
    if (!b.data) return;
    // Keep a bounded reserve: a burst's buffers are reused, then returned to the system.
    if (m_freeBuffers.size() < 1024)
        m_freeBuffers.push_back(b.data);
    else
        std::free(b.data);
    b.data = nullptr;
    b.begin = b.end = 0;
}

void Worker::makeRoom(Buffer &b) {
    if (b.begin > 0 && b.begin == b.end) {
        b.begin = b.end = 0;
    } else if (b.begin > 0 && space(b) < m_bufferSize / 4) {
        std::memmove(b.data, b.data + b.begin, b.size());
        b.end -= b.begin;
        b.begin = 0;
    }
}

int Worker::readSome(int fd, Buffer &b, bool &canRead, bool hangup) {
    if (!ensureBuffer(b)) return -2;
    makeRoom(b);
    const uint32_t room = space(b);
    if (room == 0) return -1;
    const ssize_t n = ::recv(fd, b.data + b.end, room, 0);
    if (n > 0) {
        b.end += uint32_t(n);
        // A short read drained the socket; edge-triggered polling reports the next arrival.
        // Not after a hang-up: the EOF that follows would never be reported again.
        if (uint32_t(n) < room && !hangup) canRead = false;
        return int(n);
    }
    if (n == 0) return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        canRead = false;
        return -1;
    }
    if (errno == EINTR) return -1;
    return -2;
}

int Worker::writeSome(int fd, Buffer &b, bool &canWrite) {
    const ssize_t n = ::send(fd, b.readPtr(), b.size(), MSG_NOSIGNAL);
    if (n >= 0) {
        b.consume(uint32_t(n));
        return int(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        canWrite = false;
        return -1;
    }
    if (errno == EINTR) return -1;
    return -2;
}

// ---------------------------------------------------------------- accept and events

void Worker::acceptConnections() {
    for (int i = 0; i < 64; ++i) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        const int fd = accept4(m_listenFd, reinterpret_cast<sockaddr *>(&addr), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            // Out of descriptors: the listener stays readable, so retrying at once would spin
            // (issue 13). Answer one waiting client through the reserve, then stop accepting
            // for a moment; the others wait in the backlog.
            if (errno == EMFILE || errno == ENFILE) {
                refuseWithReserve();
                pauseAccepting();
            } else if (errno == ENOBUFS || errno == ENOMEM) {
                pauseAccepting();
            }
            return;
        }
        m_shared.accepted.fetch_add(1, std::memory_order_relaxed);
        if (m_shared.openConnections.load(std::memory_order_relaxed) >=
            m_config.limits.maxConnections) {
            // Over the limit: say so and close, rather than leave the client hanging.
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: "
                                       "20\r\nConnection: close\r\n\r\ntoo many connections\n";
            [[maybe_unused]] const ssize_t n = ::send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
            ::shutdown(fd, SHUT_WR);
            ::close(fd);
            m_shared.rejected.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        // TCP_NODELAY is inherited from the listening socket (set in ProxyEngine).
        Client *c = newClient();
        c->fd = fd;
        if (addr.ss_family == AF_INET) {
            const auto *a = reinterpret_cast<const sockaddr_in *>(&addr);
            inet_ntop(AF_INET, &a->sin_addr, c->ip, sizeof c->ip);
            c->addressHash = Balancer::hashBytes(&a->sin_addr, sizeof a->sin_addr);
        } else if (addr.ss_family == AF_INET6) {
            const auto *a = reinterpret_cast<const sockaddr_in6 *>(&addr);
            inet_ntop(AF_INET6, &a->sin6_addr, c->ip, sizeof c->ip);
            c->addressHash = Balancer::hashBytes(&a->sin6_addr, sizeof a->sin6_addr);
        }
        c->ipLength = uint8_t(std::strlen(c->ip));
        if (!m_poller->add(fd, c)) {
            ::close(fd);
            c->fd = -1;
            m_freeClients.push_back(c);
            continue;
        }
        m_shared.openConnections.fetch_add(1, std::memory_order_relaxed);
        c->slot = m_clients.size();
        m_clients.push_back(c);
        arm(c->timer, ClientHeader);
        // Deferred accept: the request is usually already there.
        c->canRead = true;
        pump(c);
    }
}

void Worker::refuseWithReserve() {
    if (m_reserveFd < 0) return;
    // The reserve's slot takes one waiting client at a time: accept, 503, close. A bounded
    // batch, so a flood cannot keep this thread here.
    ::close(m_reserveFd);
    m_reserveFd = -1;
    for (int i = 0; i < 32; ++i) {
        const int fd = accept4(m_listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: "
                                   "20\r\nConnection: close\r\n\r\ntoo many connections\n";
        [[maybe_unused]] const ssize_t n = ::send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
        m_shared.accepted.fetch_add(1, std::memory_order_relaxed);
        m_shared.rejected.fetch_add(1, std::memory_order_relaxed);
    }
    m_reserveFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Worker::pauseAccepting() {
    if (!m_listening) return;
    m_poller->remove(m_listenFd);
    m_listening = false;
    m_acceptResumeMs = m_nowMs + 100;
}

void Worker::resumeAcceptingWhenDue() {
    if (!m_acceptResumeMs || m_nowMs < m_acceptResumeMs) return;
    if (m_reserveFd < 0) m_reserveFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    m_acceptResumeMs = 0;
    if (m_shared.draining.load(std::memory_order_relaxed)) return;
    m_listening = m_poller->addListener(m_listenFd, &g_listenerTag);
    if (!m_listening) m_acceptResumeMs = m_nowMs + 100; // e.g. ENOMEM: try again later
}

void Worker::onClientEvent(Client *c, const net::PollEvent &ev) {
    if (c->closed) return;
    if (ev.readable) c->canRead = true;
    if (ev.writable) c->canWrite = true;
    if (ev.hangup) c->hangup = true;
    pump(c);
}

void Worker::onUpstreamEvent(Upstream *u, const net::PollEvent &ev) {
    if (u->closed) return;
    if (ev.readable) u->canRead = true;
    if (ev.writable) u->canWrite = true;
    if (ev.hangup) u->hangup = true;
    if (!u->client) {
        // Idle in the pool: any event is the backend closing it (or junk): drop it.
        if (ev.readable || ev.hangup) closeUpstream(u);
        return;
    }
    if (u->connecting && (ev.writable || ev.hangup)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            Client *c = u->client;
            upstreamFailed(c, true,
                           err == ECONNREFUSED ? FailReason::Refused : FailReason::Unreachable);
            if (!c->closed) pump(c);
            return;
        }
        u->connecting = false;
        arm(u->timer, UpResponse);
    }
    pump(u->client);
}

// ---------------------------------------------------------------- the state machine

void Worker::pump(Client *c) {
    // Run every step until none makes progress: with edge-triggered polling nothing may be
    // left that could proceed now, or it would wait for an event that never comes.
    bool progress = true;
    while (progress && !c->closed) {
        progress = flushClient(c);
        if (c->closed) return;
        switch (c->phase) {
        case Phase::Head:
            progress |= stepHead(c);
            break;
        case Phase::Proxy:
            progress |= stepProxy(c);
            break;
        case Phase::Tunnel:
            progress |= stepTunnel(c);
            break;
        case Phase::Linger:
            progress |= stepLinger(c);
            break;
        }
    }
    if (c->closed) return;
    if (c->phase == Phase::Proxy) updateProxyTimers(c);
    // Idle connections hold no buffers: that is what keeps 10,000 of them cheap.
    if (c->in.data && c->in.size() == 0 && c->phase == Phase::Head) releaseBuffer(c->in);
    if (c->out.data && c->out.size() == 0) releaseBuffer(c->out);
}

bool Worker::flushClient(Client *c) {
    if (!c->out.data || c->out.size() == 0 || !c->canWrite) return false;
    const int n = writeSome(c->fd, c->out, c->canWrite);
    if (n == -2) {
        abortClient(c);
        return false;
    }
    if (n > 0 && c->timer.list == ClientSend) arm(c->timer, ClientSend); // it reads: progress
    if (n > 0 && c->phase == Phase::Linger && c->out.size() == 0) {
        if (c->closeWhenFlushed) {
            closeClient(c);
            return false;
        }
        ::shutdown(c->fd, SHUT_WR);
    }
    return n > 0;
}

bool Worker::stepHead(Client *c) {
    if (c->closeAfter && c->servedOne && c->out.size() == 0 && c->in.size() == 0) {
        closeClient(c);
        return false;
    }
    if (c->in.size() > 0) {
        // Tolerate empty lines before a request (RFC 9112 2.2).
        while (c->scan.scanned == 0 && c->in.size() >= 2 && c->in.readPtr()[0] == '\r' &&
               c->in.readPtr()[1] == '\n')
            c->in.consume(2);
        if (c->in.size() > 0) {
            if (c->timer.list == ClientIdle) arm(c->timer, ClientHeader);
            const long length = c->scan.scan(c->in.readPtr(), c->in.size());
            if (length < 0) {
                respondError(c, 400, true);
                return true;
            }
            if (length > 0) return startRequest(c, uint32_t(length));
            // Incomplete: enforce the limits now rather than when the buffer fills.
            const http::HeadLimits &limits = m_shared.headLimits;
            if (c->in.size() > limits.maxRequestLine &&
                !std::memchr(c->in.readPtr(), '\n', c->in.size())) {
                respondError(c, 414, true);
                return true;
            }
            if (c->in.size() >= limits.maxHeaderBytes) {
                respondError(c, 431, true);
                return true;
            }
        }
    }
    if (!c->canRead) return false;
    const int n = readSome(c->fd, c->in, c->canRead, c->hangup);
    if (n > 0) return true;
    if (n == 0 || n == -2) closeClient(c);
    return false;
}

bool Worker::startRequest(Client *c, uint32_t headLength) {
    const int rc = http::parseRequest(c->in.readPtr(), headLength, m_shared.headLimits, m_request);
    if (rc != 0) {
        m_shared.badRequests.fetch_add(1, std::memory_order_relaxed);
        respondError(c, rc, true);
        return true;
    }
    const http::RequestHead &r = m_request;
    c->reqBody = r.body;
    c->reqRemaining = r.contentLength;
    c->reqChunks.reset();
    c->reqDone = r.body == http::BodyKind::None;
    c->bodyQueued = false;
    c->isHead = r.isHead;
    c->http10 = r.minor == 0;
    c->keepAlive = r.keepAlive() && !c->closeAfter;
    c->clientClose = !r.keepAlive();
    c->upgrade = r.wantsUpgrade();
    c->setCookie = false;
    c->idempotent = r.isIdempotent;
    c->reqSent = c->freshOnly = false;
    c->retriesUsed = 0;
    c->noRetry = NoRetry::None;
    c->failReason = FailReason::None;
    c->failedAt = nullptr;
    c->tries = 0;
    c->triedCount = 0;
    c->runtime = nullptr;
    c->respStarted = c->respHeadDone = c->respDone = false;
    c->status = 0;
    if (!buildRequestHead(c)) {
        m_shared.badRequests.fetch_add(1, std::memory_order_relaxed);
        respondError(c, 431, true);
        return true;
    }
    c->in.consume(headLength);
    c->scan.reset();
    c->phase = Phase::Proxy;
    c->startUs = monotonicUs();
    if (!c->reqDone)
        arm(c->timer, ClientBody);
    else
        disarm(c->timer);
    if (!dispatch(c)) {
        m_shared.noBackend.fetch_add(1, std::memory_order_relaxed);
        respondError(c, 502, !c->reqDone);
    }
    return true;
}

bool Worker::buildRequestHead(Client *c) {
    const http::RequestHead &r = m_request;
    if (!ensureBuffer(c->head)) return false;
    Writer w{c->head.data, c->head.data + m_bufferSize};
    w.put(r.method);
    w.put(" ");
    // An absolute-form target goes out in origin form; its authority became the Host.
    if (r.absoluteForm && (r.target.empty() || r.target[0] != '/')) w.put("/");
    w.put(r.target);
    w.put(c->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    if (!r.host.empty()) {
        w.put("Host: ");
        w.put(r.host);
        w.put("\r\n");
    }
    bool firstXff = true;
    for (const http::Header &h : r.headers) {
        if (h.id == http::HeaderId::XForwardedFor) {
            w.put(firstXff ? "X-Forwarded-For: " : ", ");
            w.put(h.value);
            firstXff = false;
            continue;
        }
    }
    // X-Forwarded-For: every value the client sent, then the client's own address.
    w.put(firstXff ? "X-Forwarded-For: " : ", ");
    w.put(std::string_view(c->ip, c->ipLength));
    w.put("\r\n");
    for (const http::Header &h : r.headers) {
        if (r.isHopByHop(h)) continue;
        switch (h.id) {
        case http::HeaderId::Host: // written above, from the authority if absolute-form
        case http::HeaderId::XForwardedFor:
        case http::HeaderId::XForwardedProto:
        case http::HeaderId::XForwardedHost:
        case http::HeaderId::XRealIp:
            continue;
        default:
            break;
        }
        w.put(h.name);
        w.put(": ");
        w.put(h.value);
        w.put("\r\n");
    }
    if (c->reqBody == http::BodyKind::Chunked) w.put("Transfer-Encoding: chunked\r\n");
    w.put("X-Real-IP: ");
    w.put(std::string_view(c->ip, c->ipLength));
    w.put("\r\nX-Forwarded-Proto: http\r\n");
    if (!r.host.empty()) {
        w.put("X-Forwarded-Host: ");
        w.put(r.host);
        w.put("\r\n");
    }
    if (c->upgrade) {
        w.put("Connection: upgrade\r\nUpgrade: ");
        w.put(r.upgrade);
        w.put("\r\n");
    } else if (c->http10) {
        w.put("Connection: keep-alive\r\n");
    }
    w.put("\r\n");
    if (!w.ok) return false;
    c->head.begin = 0;
    c->head.end = uint32_t(w.p - c->head.data);
    // The sticky cookie is looked up at dispatch time, possibly again after a failover;
    // remember where its value sits, since the client's buffer moves on.
    c->stickyLength = 0;
    if (m_balancer.policy() == BalancingPolicy::StickyCookie && !r.cookie.empty()) {
        const std::string_view v = http::cookieValue(r.cookie, "CORRALID");
        if (!v.empty() && v.size() <= 64 && space(c->head) >= v.size()) {
            std::memcpy(c->head.data + c->head.end, v.data(), v.size());
            c->stickyOffset = c->head.end;
            c->stickyLength = uint32_t(v.size());
        }
    }
    return true;
}

int Worker::chooseBackend(Client *c) {
    const int64_t now = m_nowMs;
    const auto usable = [&](int i) {
        BackendRuntime *rt = m_backends[size_t(i)].runtime.get();
        if (!rt->usable(now)) return false;
        for (int k = 0; k < c->triedCount; ++k)
            if (c->tried[k] == rt) return false;
        return true;
    };
    if (m_balancer.policy() == BalancingPolicy::StickyCookie && c->stickyLength) {
        const std::string_view want(c->head.data + c->stickyOffset, c->stickyLength);
        for (size_t i = 0; i < m_backends.size(); ++i)
            if (m_backends[i].runtime->id == want && usable(int(i))) return int(i);
    }
    const int i = m_balancer.pick(c->addressHash, usable, [&](int k) {
        return m_backends[size_t(k)].runtime->inFlight.load(std::memory_order_relaxed);
    });
    if (i >= 0 && m_balancer.policy() == BalancingPolicy::StickyCookie) c->setCookie = true;
    return i;
}

Upstream *Worker::connectUpstream(LocalBackend &local) {
    BackendRuntime *rt = local.runtime.get();
    const int fd = ::socket(rt->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc =
        ::connect(fd, reinterpret_cast<const sockaddr *>(&rt->address), rt->addressLength);
    if (rc != 0 && errno != EINPROGRESS) {
        const int error = errno; // for the caller, past close()
        ::close(fd);
        errno = error;
        return nullptr;
    }
    Upstream *u = newUpstream();
    u->fd = fd;
    u->runtime = local.runtime;
    u->connecting = rc != 0;
    u->canWrite = rc == 0;
    if (!m_poller->add(fd, u)) {
        ::close(fd);
        u->runtime.reset();
        m_freeUpstreams.push_back(u);
        return nullptr;
    }
    return u;
}

bool Worker::dispatch(Client *c) {
    while (c->tries < 8) {
        const int index = chooseBackend(c);
        if (index < 0) return false;
        LocalBackend &local = m_backends[size_t(index)];
        BackendRuntime *rt = local.runtime.get();
        // Count first, then re-check: drainBackend() sets the flag and then reads the count,
        // so either it sees this request or this request sees the drain.
        rt->inFlight.fetch_add(1);
        if (rt->draining.load() || rt->removed.load() || !rt->enabled.load()) {
            rt->inFlight.fetch_sub(1);
            rt->fireDrainedIfEmpty();
            c->tried[c->triedCount++] = rt;
            ++c->tries;
            continue;
        }
        ++c->tries;
        c->runtime = rt;
        ThreadCounters::add(counters(rt).requests, 1);
        Upstream *u = nullptr;
        while (!c->freshOnly && !local.idle.empty() && !u) {
            u = local.idle.back();
            local.idle.pop_back();
            u->pooled = false;
            if (u->closed || u->hangup) {
                closeUpstream(u);
                u = nullptr;
            }
        }
        if (u) {
            u->reused = true;
            disarm(u->timer);
        } else {
            u = connectUpstream(local);
            if (!u) {
                // Nothing was sent: the next backend may take it without using a retry.
                const FailReason why =
                    errno == ECONNREFUSED ? FailReason::Refused : FailReason::Unreachable;
                noteFailure(rt, why);
                c->failedAt = rt;
                c->failReason = why;
                c->noRetry = NoRetry::None;
                ThreadCounters::add(counters(rt).failovers, 1);
                releaseAttempt(c);
                c->tried[c->triedCount++] = rt;
                continue;
            }
        }
        u->client = c;
        c->up = u;
        c->reqSent = false;
        if (!ensureBuffer(u->out) || !ensureBuffer(u->in)) return false;
        std::memcpy(u->out.data, c->head.data, c->head.size());
        u->out.begin = 0;
        u->out.end = c->head.size();
        u->scan.reset();
        arm(u->timer, u->connecting ? UpConnect : UpResponse);
        return true;
    }
    return false;
}

void Worker::releaseAttempt(Client *c) {
    BackendRuntime *rt = c->runtime;
    if (!rt) return;
    c->runtime = nullptr;
    if (rt->inFlight.fetch_sub(1) == 1 && rt->draining.load()) rt->fireDrainedIfEmpty();
}

bool Worker::stepProxy(Client *c) {
    bool progress = false;
    Upstream *u = c->up;
    // Request body: client -> upstream, only once connected (an unsent body keeps a
    // failover possible) and only as far as the upstream buffer has room (back-pressure).
    if (u && !u->connecting && !c->reqDone && c->in.size() > 0) {
        makeRoom(u->out);
        uint32_t n = std::min(c->in.size(), space(u->out));
        if (n > 0) {
            if (c->reqBody == http::BodyKind::Length) {
                n = uint32_t(std::min<uint64_t>(n, c->reqRemaining));
                c->reqRemaining -= n;
                if (c->reqRemaining == 0) c->reqDone = true;
            } else {
                const long used = c->reqChunks.feed(c->in.readPtr(), n);
                if (used < 0) {
                    abortClient(c);
                    return false;
                }
                n = uint32_t(used);
                if (c->reqChunks.done()) c->reqDone = true;
            }
            std::memcpy(u->out.data + u->out.end, c->in.readPtr(), n);
            u->out.end += n;
            c->in.consume(n);
            c->bodyQueued = true;
            if (c->reqDone)
                disarm(c->timer);
            else
                arm(c->timer, ClientBody);
            progress = true;
        }
    }
    if (!c->reqDone && c->canRead) {
        const int n = readSome(c->fd, c->in, c->canRead, c->hangup);
        if (n > 0) {
            progress = true;
        } else if (n == 0 || n == -2) {
            abortClient(c); // the client went away in the middle of its request body
            return false;
        }
    }
    u = c->up;
    if (!u) return progress;
    if (!u->connecting && u->out.size() > 0 && u->canWrite) {
        const int n = writeSome(u->fd, u->out, u->canWrite);
        if (n > 0) {
            ThreadCounters::add(counters(u->runtime.get()).bytesOut, uint64_t(n));
            c->reqSent = true; // from here on only an idempotent request may be retried
            arm(u->timer, UpResponse);
            progress = true;
        } else if (n == -2) {
            upstreamFailed(c, !u->reused, FailReason::Reset);
            return true;
        }
    }
    if (!u->connecting && u->canRead && !c->respDone) {
        const int n = readSome(u->fd, u->in, u->canRead, u->hangup);
        if (n > 0) {
            ThreadCounters::add(counters(u->runtime.get()).bytesIn, uint64_t(n));
            progress = true;
            if (!c->respStarted) {
                c->respStarted = true;
                releaseBuffer(c->head);
            }
            arm(u->timer, UpResponse);
        } else if (n == 0) {
            u->eof = true;
        } else if (n == -2) {
            if (!c->respStarted) {
                upstreamFailed(c, !u->reused, FailReason::Reset);
                return true;
            }
            u->eof = true;
        }
    }
    if (!c->respHeadDone) {
        if (u->in.size() > 0) {
            if (handleResponseHead(c)) progress = true;
            if (c->closed || c->phase != Phase::Proxy) return true;
        }
        // Closed before its head was complete (or begun): a 502, never a hang.
        if (!c->respHeadDone && c->up == u && u->eof) {
            upstreamFailed(c, !u->reused, FailReason::Closed);
            return true;
        }
        if (!c->respHeadDone) return progress;
    }
    // Response body: upstream -> client, bounded by the client's buffer.
    u = c->up;
    if (u && !c->respDone && u->in.size() > 0 && ensureBuffer(c->out)) {
        makeRoom(c->out);
        uint32_t n = std::min(u->in.size(), space(c->out));
        if (n > 0) {
            switch (c->respBody) {
            case http::BodyKind::Length:
                n = uint32_t(std::min<uint64_t>(n, c->respRemaining));
                c->respRemaining -= n;
                if (c->respRemaining == 0) c->respDone = true;
                break;
            case http::BodyKind::Chunked: {
                const long used = c->respChunks.feed(u->in.readPtr(), n);
                if (used < 0) {
                    abortClient(c);
                    return false;
                }
                n = uint32_t(used);
                if (c->respChunks.done()) c->respDone = true;
                break;
            }
            default:
                break;
            }
            std::memcpy(c->out.data + c->out.end, u->in.readPtr(), n);
            c->out.end += n;
            u->in.consume(n);
            progress = true;
        }
    }
    if (u && !c->respDone && u->eof && u->in.size() == 0) {
        if (c->respBody == http::BodyKind::UntilClose) {
            c->respDone = true;
        } else {
            abortClient(c); // truncated by the backend: the client must see it truncated
            return false;
        }
    }
    if (c->respDone && c->up) {
        finishResponse(c);
        progress = true;
    }
    return progress;
}

bool Worker::handleResponseHead(Client *c) {
    Upstream *u = c->up;
    const long length = u->scan.scan(u->in.readPtr(), u->in.size());
    if (length == 0) {
        if (space(u->in) == 0 && u->in.begin == 0) {
            badResponse(c, FailReason::HeadTooLarge);
            return true;
        }
        return false;
    }
    const int parsed =
        length < 0 ? http::ResponseMalformed
                   : http::parseResponse(u->in.readPtr(), size_t(length), c->isHead,
                                         size_t(m_config.limits.maxHeaders) * 2, m_response);
    if (parsed != 0) {
        badResponse(c, parsed == http::ResponseUnsupportedCoding ? FailReason::UnsupportedCoding
                                                                 : FailReason::MalformedHead);
        return true;
    }
    const http::ResponseHead &r = m_response;
    if (!ensureBuffer(c->out)) return false;
    makeRoom(c->out);
    // The rewritten head must fit whole; wait while the previous response drains.
    const uint32_t needed = uint32_t(length) + 256;
    if (space(c->out) < needed) {
        if (c->out.size() == 0) {
            badResponse(c, FailReason::HeadTooLarge);
            return true;
        }
        return false;
    }
    Writer w{c->out.data + c->out.end, c->out.data + m_bufferSize};
    const bool informational = r.status >= 100 && r.status < 200 && r.status != 101;
    if (informational) {
        // 100 Continue and friends: relayed to HTTP/1.1 clients, then the real answer.
        if (!c->http10) {
            w.put(std::string_view(u->in.readPtr(), size_t(length)));
            c->out.end = uint32_t(w.p - c->out.data);
        }
        u->in.consume(uint32_t(length));
        u->scan.reset();
        return true;
    }
    if (r.status == 101 && !c->upgrade) {
        badResponse(c, FailReason::UnsolicitedSwitch);
        return true;
    }
    c->status = r.status;
    c->respKeepAlive = r.keepAlive(); // m_response is the next response's once this one streams
    c->respBody = r.body;
    c->respRemaining = r.contentLength;
    c->respChunks.reset();
    if (r.body == http::BodyKind::UntilClose) c->keepAlive = false;
    if (!c->reqDone) c->keepAlive = false; // answered before the body arrived: close after
    if (c->closeAfter) c->keepAlive = false;
    w.put(c->http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    w.putNumber(uint64_t(r.status));
    w.put(" ");
    w.put(r.reason);
    w.put("\r\n");
    for (const http::Header &h : r.headers) {
        if (r.status != 101 && r.isHopByHop(h)) continue;
        // Both framings: Transfer-Encoding wins, Content-Length must not reach the client.
        if (h.id == http::HeaderId::ContentLength && r.framedByTransferEncoding) continue;
        if (r.status == 101 && h.id != http::HeaderId::Upgrade &&
            h.id != http::HeaderId::Connection && r.isHopByHop(h))
            continue;
        w.put(h.name);
        w.put(": ");
        w.put(h.value);
        w.put("\r\n");
    }
    if (r.body == http::BodyKind::Chunked ||
        (r.framedByTransferEncoding && r.status >= 200 && r.status != 204))
        w.put("Transfer-Encoding: chunked\r\n"); // re-framed as received (HEAD: would be)
    if (c->setCookie && c->runtime) {
        w.put("Set-Cookie: CORRALID=");
        w.put(c->runtime->id);
        w.put("; Path=/; HttpOnly\r\n");
    }
    if (r.status != 101) {
        if (!c->keepAlive)
            w.put("Connection: close\r\n");
        else if (c->http10)
            w.put("Connection: keep-alive\r\n");
    }
    w.put("\r\n");
    if (!w.ok) {
        badResponse(c, FailReason::HeadTooLarge);
        return true;
    }
    c->out.end = uint32_t(w.p - c->out.data);
    u->in.consume(uint32_t(length));
    c->respHeadDone = true;
    countResponse(c->runtime, r.status);
    if (r.status == 101) {
        // Upgraded: bytes flow both ways untouched until either side closes. The tunnel
        // keeps counting as in flight, so a drain waits for it.
        c->phase = Phase::Tunnel;
        disarm(u->timer);
        arm(c->timer, TunnelIdle);
        return true;
    }
    if (r.body == http::BodyKind::None) c->respDone = true;
    return true;
}

void Worker::countResponse(BackendRuntime *rt, int status) {
    if (!rt) return;
    const int cls = status / 100 - 2;
    if (cls >= 0 && cls < 4) ThreadCounters::add(counters(rt).responses[cls], 1);
}

void Worker::finishResponse(Client *c) {
    Upstream *u = c->up;
    BackendRuntime *rt = c->runtime;
    if (rt) {
        const uint64_t us = monotonicUs() - c->startUs;
        ThreadCounters::add(counters(rt).latency[latencyBucket(us)], 1);
    }
    c->up = nullptr;
    u->client = nullptr;
    disarm(u->timer);
    const bool reusable = c->reqDone && u->in.size() == 0 && !u->eof && !u->hangup &&
                          c->respKeepAlive && c->respBody != http::BodyKind::UntilClose &&
                          u->out.size() == 0;
    // First: a removed backend's runtime may go with its last connection.
    releaseAttempt(c);
    if (reusable)
        poolUpstream(u);
    else
        closeUpstream(u);
    c->servedOne = true;
    releaseBuffer(c->head);
    if (c->keepAlive && !c->closeAfter) {
        c->phase = Phase::Head;
        c->scan.reset();
        arm(c->timer, c->in.size() > 0 ? ClientHeader : ClientIdle);
    } else {
        // Close once the response is out; Linger discards what the client still sends so
        // the close does not turn into a reset that eats the response.
        c->phase = Phase::Linger;
        arm(c->timer, ClientLinger);
        // Like nginx's lingering_close: a client that asked to close, whose request was read
        // to its end with nothing after it, sends nothing more, so a plain close cannot turn
        // into a reset; skip the half-close and the wait for its FIN.
        c->closeWhenFlushed = c->clientClose && c->reqDone && c->in.size() == 0 && !c->upgrade;
        if (c->out.size() == 0) {
            if (c->closeWhenFlushed)
                closeClient(c);
            else
                ::shutdown(c->fd, SHUT_WR);
        }
    }
}

void Worker::poolUpstream(Upstream *u) {
    BackendRuntime *rt = u->runtime.get();
    LocalBackend *local = nullptr;
    for (LocalBackend &lb : m_backends)
        if (lb.runtime.get() == rt) local = &lb;
    if (!local || !rt->enabled.load(std::memory_order_relaxed) ||
        rt->draining.load(std::memory_order_relaxed) ||
        rt->removed.load(std::memory_order_relaxed) ||
        local->idle.size() >= size_t(m_config.limits.maxIdleUpstream)) {
        closeUpstream(u);
        return;
    }
    releaseBuffer(u->in);
    releaseBuffer(u->out);
    u->reused = false;
    u->pooled = true;
    local->idle.push_back(u);
    arm(u->timer, UpIdle);
}

void Worker::noteFailure(BackendRuntime *rt, FailReason why) {
    rt->lastFailure.store(why, std::memory_order_relaxed);
    ThreadCounters::add(counters(rt).failures, 1);
    if (rt->recordFailure(m_nowMs, m_config.maxFails, m_config.failTimeoutMs)) {
        // Rare (once per fail timeout at most): the event queue's lock is affordable here.
        rt->passiveDown.store(true, std::memory_order_relaxed);
        m_shared.pushEvent(rt->label, BackendEvent::Down,
                           describeFailure(why, m_config) + "; out of rotation for " +
                               durationText(m_config.failTimeoutMs));
    }
}

// The retry rule (nginx's proxy_next_upstream, RFC 9110 9.2.2): never after a timeout
// waiting for the answer or once a response byte arrived; freely while nothing of the request
// was written (connect errors and timeouts); after that only an idempotent request without a
// body byte sent, on at most `retries` further backends.
bool Worker::mayRetry(Client *c, FailReason why) {
    c->noRetry = NoRetry::None;
    if (why == FailReason::ResponseTimeout || c->respStarted) {
        c->noRetry = NoRetry::Final;
        return false;
    }
    if (!c->reqSent) return true;
    if (!c->idempotent) {
        c->noRetry = NoRetry::NotIdempotent;
        return false;
    }
    if (c->bodyQueued) {
        c->noRetry = NoRetry::BodySent;
        return false;
    }
    if (c->retriesUsed >= m_config.retries) {
        c->noRetry = NoRetry::Exhausted;
        return false;
    }
    ++c->retriesUsed;
    return true;
}

void Worker::upstreamFailed(Client *c, bool countFailure, FailReason why) {
    Upstream *u = c->up;
    if (!u) return;
    // Held until the error is written: a removed backend may go with this connection.
    const std::shared_ptr<BackendRuntime> keep = u->runtime;
    BackendRuntime *rt = keep.get();
    // A pooled connection that failed without it being counted went stale while idle.
    const bool stale = u->reused && !countFailure;
    c->up = nullptr;
    u->client = nullptr;
    if (countFailure) noteFailure(rt, why);
    closeUpstream(u);
    if (c->phase == Phase::Tunnel || c->respHeadDone) {
        // Part of the answer is with the client: all it can be told is the cut.
        releaseAttempt(c);
        abortClient(c);
        return;
    }
    const bool retry = mayRetry(c, why);
    releaseAttempt(c);
    if (retry) {
        // A stale connection is no sign against its backend: it may take the retry, on a
        // new connection (its other pooled ones may be as stale).
        if (stale)
            c->freshOnly = true;
        else if (c->triedCount < 8)
            c->tried[c->triedCount++] = rt;
        if (c->triedCount < 8 && dispatch(c)) {
            ThreadCounters::add(counters(rt).failovers, 1);
            return;
        }
        // Not noBackend: this 502 is counted against `rt` below, and views that add the two
        // (the console's errors/s) must not count it twice.
    }
    const int status = why == FailReason::ResponseTimeout ? 504 : 502;
    countResponse(rt, status);
    c->failedAt = rt;
    c->failReason = why;
    respondError(c, status, !c->reqDone || c->bodyQueued);
}

void Worker::badResponse(Client *c, FailReason why) {
    // The backend answered, wrongly: not retried (it ran the request), 502 to the client.
    Upstream *u = c->up;
    const std::shared_ptr<BackendRuntime> keep = u->runtime;
    BackendRuntime *rt = keep.get();
    rt->lastFailure.store(why, std::memory_order_relaxed);
    ThreadCounters::add(counters(rt).failures, 1);
    c->up = nullptr;
    u->client = nullptr;
    closeUpstream(u);
    countResponse(c->runtime, 502);
    releaseAttempt(c);
    c->failedAt = rt;
    c->failReason = why;
    c->noRetry = NoRetry::Final;
    respondError(c, 502, true);
}

// Each timer measures the side the proxy waits on. The backend's runs while it owes
// something: to take request bytes queued for it, or response bytes the client side has room
// for; never while a slow client holds things up (issue 13.5). The client's runs while its
// response waits in the proxy's buffer; its body has the ClientBody timer.
void Worker::updateProxyTimers(Client *c) {
    if (c->reqDone) {
        if (c->out.size() > 0) {
            if (c->timer.list != ClientSend) arm(c->timer, ClientSend);
        } else if (c->timer.list == ClientSend) {
            disarm(c->timer);
        }
    }
    Upstream *u = c->up;
    if (!u || u->connecting) return;
    // Still readable after the loop: the backend has more, there is no room for it.
    const bool blockedByClient =
        u->canRead || (u->in.size() > 0 && c->out.size() > 0 && !c->canWrite);
    const bool backendOwes = u->out.size() > 0 || (c->reqDone && !c->respDone && !blockedByClient);
    if (!backendOwes)
        disarm(u->timer);
    else if (u->timer.list != UpResponse)
        arm(u->timer, UpResponse);
}

uint32_t Worker::writeErrorDetail(Client *c, char *out, uint32_t capacity) {
    Writer w{out, out + capacity};
    if (BackendRuntime *rt = c->failedAt) {
        // Retry allowed but nothing else usable: the pool is the problem, not this request.
        if (c->noRetry == NoRetry::None) w.put("no backend is up: ");
        w.put(rt->label);
        w.put(" ");
        if (c->failReason == FailReason::Closed && c->respStarted)
            w.put("closed the connection in the middle of its response head");
        else
            putFailure(w, c->failReason, m_config);
        switch (c->noRetry) {
        case NoRetry::NotIdempotent:
            w.put("; not retried: the method is not idempotent");
            break;
        case NoRetry::BodySent:
            w.put("; not retried: its body was sent");
            break;
        case NoRetry::Exhausted:
            w.put("; not retried again (retries: ");
            w.putNumber(uint64_t(m_config.retries));
            w.put(")");
            break;
        case NoRetry::None:
        case NoRetry::Final:
            break;
        }
    } else {
        w.put("no backend is up");
        int listed = 0;
        for (const LocalBackend &lb : m_backends) {
            const BackendRuntime *rt = lb.runtime.get();
            if (rt->usable(m_nowMs) || listed == 4) continue;
            w.put(listed++ ? ", " : ": ");
            w.put(rt->label);
            if (!rt->enabled.load(std::memory_order_relaxed) ||
                rt->removed.load(std::memory_order_relaxed))
                w.put(" is disabled");
            else if (rt->draining.load(std::memory_order_relaxed))
                w.put(" is draining");
            else if (rt->healthDown.load(std::memory_order_relaxed))
                w.put(" fails its health checks");
            else if (const FailReason why = rt->lastFailure.load(std::memory_order_relaxed);
                     why != FailReason::None) {
                w.put(" ");
                putFailure(w, why, m_config);
            } else {
                w.put(" is down");
            }
        }
        if (m_backends.empty()) w.put(": none is configured");
    }
    return w.ok ? uint32_t(w.p - out) : 0;
}

void Worker::respondError(Client *c, int status, bool close) {
    if (c->up) {
        Upstream *u = c->up;
        c->up = nullptr;
        u->client = nullptr;
        closeUpstream(u);
        releaseAttempt(c);
    }
    releaseBuffer(c->head);
    if (!ensureBuffer(c->out)) {
        abortClient(c);
        return;
    }
    makeRoom(c->out);
    const std::string_view reason = reasonFor(status);
    // 502/504 say why to a client on this machine; others get the reason phrase only.
    char detail[512];
    uint32_t detailLength = 0;
    if ((status == 502 || status == 504) && isLoopback(std::string_view(c->ip, c->ipLength)))
        detailLength = writeErrorDetail(c, detail, sizeof detail);
    c->failedAt = nullptr;
    const std::string_view body = detailLength ? std::string_view(detail, detailLength) : reason;
    Writer w{c->out.data + c->out.end, c->out.data + m_bufferSize};
    w.put("HTTP/1.1 ");
    w.putNumber(uint64_t(status));
    w.put(" ");
    w.put(reason);
    w.put("\r\nContent-Type: text/plain\r\nContent-Length: ");
    w.putNumber(body.size() + 1);
    if (close || !c->keepAlive || c->closeAfter) {
        w.put("\r\nConnection: close");
        close = true;
    }
    w.put("\r\n\r\n");
    w.put(body);
    w.put("\n");
    if (!w.ok) {
        abortClient(c);
        return;
    }
    c->out.end = uint32_t(w.p - c->out.data);
    c->servedOne = true;
    c->respDone = true;
    if (close) {
        c->phase = Phase::Linger;
        arm(c->timer, ClientLinger);
    } else {
        c->phase = Phase::Head;
        c->scan.reset();
        arm(c->timer, c->in.size() > 0 ? ClientHeader : ClientIdle);
    }
}

bool Worker::stepTunnel(Client *c) {
    Upstream *u = c->up;
    if (!u) {
        abortClient(c);
        return false;
    }
    bool progress = false;
    // client -> upstream
    if (c->in.size() > 0 && ensureBuffer(u->out)) {
        makeRoom(u->out);
        const uint32_t n = std::min(c->in.size(), space(u->out));
        std::memcpy(u->out.data + u->out.end, c->in.readPtr(), n);
        u->out.end += n;
        c->in.consume(n);
        progress |= n > 0;
    }
    // upstream -> client
    if (u->in.size() > 0 && ensureBuffer(c->out)) {
        makeRoom(c->out);
        const uint32_t n = std::min(u->in.size(), space(c->out));
        std::memcpy(c->out.data + c->out.end, u->in.readPtr(), n);
        c->out.end += n;
        u->in.consume(n);
        progress |= n > 0;
    }
    if (u->out.size() > 0 && u->canWrite) {
        const int n = writeSome(u->fd, u->out, u->canWrite);
        if (n == -2) {
            releaseAttempt(c);
            abortClient(c);
            return false;
        }
        if (n > 0) {
            ThreadCounters::add(counters(u->runtime.get()).bytesOut, uint64_t(n));
            progress = true;
        }
    }
    if (!c->eof && c->canRead) {
        const int n = readSome(c->fd, c->in, c->canRead, c->hangup);
        if (n > 0) progress = true;
        if (n == 0 || n == -2) c->eof = true, progress = true;
    }
    if (!u->eof && u->canRead) {
        const int n = readSome(u->fd, u->in, u->canRead, u->hangup);
        if (n > 0) {
            ThreadCounters::add(counters(u->runtime.get()).bytesIn, uint64_t(n));
            progress = true;
        }
        if (n == 0 || n == -2) u->eof = true, progress = true;
    }
    if (progress) arm(c->timer, TunnelIdle);
    // Either side closing ends the tunnel once what it sent has been delivered.
    const bool clientDone = c->eof && c->in.size() == 0 && u->out.size() == 0;
    const bool upstreamDone = u->eof && u->in.size() == 0 && c->out.size() == 0;
    if (clientDone || upstreamDone) {
        releaseAttempt(c);
        closeClient(c);
        return false;
    }
    return progress;
}

bool Worker::stepLinger(Client *c) {
    if (c->out.size() > 0) return false;
    if (!c->canRead) return false;
    char sink[4096];
    for (int i = 0; i < 16; ++i) {
        const ssize_t n = ::recv(c->fd, sink, sizeof sink, 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->canRead = false;
            return false;
        }
        closeClient(c);
        return false;
    }
    return true;
}

void Worker::abortClient(Client *c) {
    if (c->up) {
        Upstream *u = c->up;
        c->up = nullptr;
        u->client = nullptr;
        closeUpstream(u);
    }
    releaseAttempt(c);
    closeClient(c);
}

void Worker::closeClient(Client *c) {
    if (c->closed) return;
    if (c->up) {
        Upstream *u = c->up;
        c->up = nullptr;
        u->client = nullptr;
        closeUpstream(u);
    }
    releaseAttempt(c);
    c->closed = true;
    disarm(c->timer);
    m_poller->forget(c->fd); // epoll: no EPOLL_CTL_DEL, one syscall less per connection
    ::close(c->fd);
    c->fd = -1;
    releaseBuffer(c->in);
    releaseBuffer(c->out);
    releaseBuffer(c->head);
    m_clients[c->slot] = m_clients.back();
    m_clients[c->slot]->slot = c->slot;
    m_clients.pop_back();
    m_shared.openConnections.fetch_sub(1, std::memory_order_relaxed);
    m_graveyard.push_back(c);
}

void Worker::closeUpstream(Upstream *u) {
    if (u->closed) return;
    if (u->pooled) {
        for (LocalBackend &lb : m_backends) {
            auto it = std::find(lb.idle.begin(), lb.idle.end(), u);
            if (it != lb.idle.end()) {
                *it = lb.idle.back();
                lb.idle.pop_back();
            }
        }
        u->pooled = false;
    }
    u->closed = true;
    disarm(u->timer);
    m_poller->forget(u->fd);
    ::close(u->fd);
    u->fd = -1;
    releaseBuffer(u->in);
    releaseBuffer(u->out);
    u->runtime.reset();
    m_graveyard.push_back(u);
}

} // namespace corral::proxy
