#include "proxy/ProxyWorker.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
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
    if (m_listenFd >= 0) ::close(m_listenFd);
}

bool Worker::init() {
    m_poller = std::make_unique<EpollPoller>();
    if (!m_poller->valid()) return false;
    m_wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m_wakeFd < 0) return false;
    return m_poller->addLevel(m_listenFd, &g_listenerTag) &&
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
    PollEvent events[256];
    m_nowMs = monotonicMs();
    refreshBackends();
    while (!m_shared.stopping.load(std::memory_order_relaxed)) {
        const int n = m_poller->wait(events, 256, nextTimeoutMs());
        m_nowMs = monotonicMs();
        if (m_shared.version.load(std::memory_order_acquire) != m_version) refreshBackends();
        for (int i = 0; i < n; ++i) {
            const PollEvent &ev = events[i];
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
            case TunnelIdle:
                abortClient(ownerOf<Client>(node));
                break;
            case UpConnect:
            case UpResponse: {
                Upstream *u = ownerOf<Upstream>(node);
                if (Client *c = u->client) {
                    // A connect timeout fails over; a slow answer is a 504.
                    upstreamFailed(c, true, k == UpResponse);
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
        if (fd < 0) return;
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

void Worker::onClientEvent(Client *c, const PollEvent &ev) {
    if (c->closed) return;
    if (ev.readable) c->canRead = true;
    if (ev.writable) c->canWrite = true;
    if (ev.hangup) c->hangup = true;
    pump(c);
}

void Worker::onUpstreamEvent(Upstream *u, const PollEvent &ev) {
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
            upstreamFailed(c, true, false);
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
    w.put(r.target);
    w.put(c->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
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
        ::close(fd);
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
        while (!local.idle.empty() && !u) {
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
                rt->recordFailure(m_nowMs, m_config.maxFails, m_config.failTimeoutMs);
                ThreadCounters::add(counters(rt).failures, 1);
                ThreadCounters::add(counters(rt).failovers, 1);
                releaseAttempt(c);
                c->tried[c->triedCount++] = rt;
                continue;
            }
        }
        u->client = c;
        c->up = u;
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
            progress = true;
        } else if (n == -2) {
            upstreamFailed(c, !u->reused, false);
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
                upstreamFailed(c, !u->reused, false);
                return true;
            }
            u->eof = true;
        }
    }
    if (!c->respHeadDone) {
        if (u->in.size() > 0) {
            if (handleResponseHead(c)) progress = true;
            if (c->closed || c->phase != Phase::Proxy) return true;
        } else if (u->eof) {
            upstreamFailed(c, !u->reused, false);
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
            upstreamFailed(c, false, false); // a head larger than a buffer
            return true;
        }
        return false;
    }
    if (length < 0 || http::parseResponse(u->in.readPtr(), size_t(length), c->isHead,
                                          size_t(m_config.limits.maxHeaders) * 2, m_response)) {
        // Malformed answer: not retried (the backend did answer), 502 to the client.
        ThreadCounters::add(counters(u->runtime.get()).failures, 1);
        Upstream *dead = u;
        c->up = nullptr;
        dead->client = nullptr;
        closeUpstream(dead);
        countResponse(c->runtime, 502);
        releaseAttempt(c);
        respondError(c, 502, true);
        return true;
    }
    const http::ResponseHead &r = m_response;
    if (!ensureBuffer(c->out)) return false;
    makeRoom(c->out);
    // The rewritten head must fit whole; wait while the previous response drains.
    const uint32_t needed = uint32_t(length) + 256;
    if (space(c->out) < needed) {
        if (c->out.size() == 0) {
            upstreamFailed(c, false, false);
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
        upstreamFailed(c, false, false);
        return true;
    }
    c->status = r.status;
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
        if (r.status == 101 && h.id != http::HeaderId::Upgrade &&
            h.id != http::HeaderId::Connection && r.isHopByHop(h))
            continue;
        w.put(h.name);
        w.put(": ");
        w.put(h.value);
        w.put("\r\n");
    }
    if (r.body == http::BodyKind::Chunked) w.put("Transfer-Encoding: chunked\r\n");
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
        upstreamFailed(c, false, false);
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
                          m_response.keepAlive() && c->respBody != http::BodyKind::UntilClose &&
                          u->out.size() == 0;
    if (reusable)
        poolUpstream(u);
    else
        closeUpstream(u);
    releaseAttempt(c);
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

void Worker::upstreamFailed(Client *c, bool countFailure, bool timedOut) {
    Upstream *u = c->up;
    if (!u) return;
    BackendRuntime *rt = u->runtime.get();
    const bool wasReused = u->reused;
    c->up = nullptr;
    u->client = nullptr;
    if (countFailure) {
        rt->recordFailure(m_nowMs, m_config.maxFails, m_config.failTimeoutMs);
        ThreadCounters::add(counters(rt).failures, 1);
    }
    closeUpstream(u);
    if (c->phase == Phase::Tunnel || c->respHeadDone) {
        releaseAttempt(c);
        abortClient(c);
        return;
    }
    // Like proxy_next_upstream: nothing reached the client, so another backend may answer,
    // unless request body bytes went out (a POST must never run twice).
    if (!timedOut && !c->respStarted && !c->bodyQueued) {
        releaseAttempt(c);
        // A stale pooled connection is not the backend's fault: the same backend may retry.
        if (!(wasReused && !countFailure) && c->triedCount < 8) c->tried[c->triedCount++] = rt;
        if (c->triedCount < 8 && dispatch(c)) {
            ThreadCounters::add(counters(rt).failovers, 1);
            return;
        }
        countResponse(rt, 502);
        m_shared.noBackend.fetch_add(1, std::memory_order_relaxed);
        respondError(c, 502, !c->reqDone);
        return;
    }
    countResponse(rt, timedOut ? 504 : 502);
    releaseAttempt(c);
    if (c->respStarted && !timedOut) {
        abortClient(c);
        return;
    }
    respondError(c, timedOut ? 504 : 502, !c->reqDone || c->bodyQueued);
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
    Writer w{c->out.data + c->out.end, c->out.data + m_bufferSize};
    w.put("HTTP/1.1 ");
    w.putNumber(uint64_t(status));
    w.put(" ");
    w.put(reason);
    w.put("\r\nContent-Type: text/plain\r\nContent-Length: ");
    w.putNumber(reason.size() + 1);
    if (close || !c->keepAlive || c->closeAfter) {
        w.put("\r\nConnection: close");
        close = true;
    }
    w.put("\r\n\r\n");
    w.put(reason);
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
