#include "proxy/EventLoop.h"

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

namespace {

Pollable g_listenerTag{Kind::Listener};
Pollable g_wakeTag{Kind::Wake};

template <typename T> T *ownerOf(TimerNode *node) {
    return static_cast<T *>(node->owner);
}

uint32_t bufferSizeFor(const ProxyLimits &limits) {
    return uint32_t(std::max(limits.bufferSize, limits.maxHeaderBytes + 4096));
}

// Over the connection limit, or out of descriptors: say so and close, rather than leave the
// client hanging.
void refuse(int fd) {
    [[maybe_unused]] const ssize_t n = ::send(fd, TooManyConnectionsResponse.data(),
                                              TooManyConnectionsResponse.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
}

// Why `rt` takes no request now, for a "no backend is up" answer.
BackendStatus statusOf(const BackendRuntime &rt) {
    BackendStatus status;
    status.backend = rt.label;
    status.lastFailure = rt.lastFailure.load(std::memory_order_relaxed);
    if (!rt.enabled.load(std::memory_order_relaxed) || rt.removed.load(std::memory_order_relaxed))
        status.condition = BackendCondition::Disabled;
    else if (rt.draining.load(std::memory_order_relaxed))
        status.condition = BackendCondition::Draining;
    else if (rt.healthDown.load(std::memory_order_relaxed))
        status.condition = BackendCondition::FailsHealthChecks;
    else if (status.lastFailure != FailReason::None)
        status.condition = BackendCondition::Failed;
    else
        status.condition = BackendCondition::Down;
    return status;
}

} // namespace

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

EventLoop::EventLoop(EngineShared &shared, int index, int listenFd)
    : m_shared(shared)
    , m_config(shared.config)
    , m_index(index)
    , m_listenFd(listenFd)
    , m_buffers(bufferSizeFor(shared.config.limits))
    , m_compression(shared.config.compression)
    , m_gzipPool(shared.config.compression.level) {
    const ProxyLimits &l = m_config.limits;
    m_tls = shared.tls.get();
    m_timers.setDuration(ClientHeader, l.headerTimeoutMs);
    m_timers.setDuration(ClientIdle, l.keepAliveTimeoutMs);
    m_timers.setDuration(ClientBody, l.bodyTimeoutMs);
    m_timers.setDuration(ClientSend, l.sendTimeoutMs);
    m_timers.setDuration(ClientLinger, 2000);
    m_timers.setDuration(UpConnect, m_config.connectTimeoutMs);
    m_timers.setDuration(UpResponse, m_config.responseTimeoutMs);
    m_timers.setDuration(UpIdle, l.upstreamIdleTimeoutMs);
    m_timers.setDuration(TunnelIdle, l.tunnelTimeoutMs);
    m_request.headers.reserve(64);
    m_response.headers.reserve(64);
    m_static = shared.staticFiles.get();
    m_fileReaders = shared.fileReaders.get();
    if (shared.accessLog) m_accessLog = &shared.accessLog->writer(index);
}

EventLoop::~EventLoop() {
    // Teardown after the loop ended: whatever is still open is closed here; the pools'
    // destructors free the objects and buffers.
    const auto discard = [this](Upstream *u) {
        if (u->fd >= 0) ::close(u->fd);
        m_buffers.release(u->in);
        m_buffers.release(u->out);
        m_objects.retire(u);
    };
    releaseFiles(); // the engine stopped the file readers first
    for (Client *c : m_clients) {
        if (c->up) discard(c->up);
        m_gzipPool.giveBack(c->gzip);
        if (c->ssl) net::tlsFree(c->ssl);
        if (c->fd >= 0) ::close(c->fd);
        m_buffers.release(c->in);
        m_buffers.release(c->out);
        m_buffers.release(c->head);
        m_objects.retire(c);
    }
    for (LocalBackend &lb : m_backends)
        for (Upstream *u : lb.idle.takeAll())
            discard(u);
    if (m_wakeFd >= 0) ::close(m_wakeFd);
    if (m_reserveFd >= 0) ::close(m_reserveFd);
}

bool EventLoop::init() {
    m_poller = std::make_unique<net::EpollPoller>();
    if (!m_poller->valid()) return false;
    m_wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m_wakeFd < 0) return false;
    m_reserveFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (m_fileReaders) m_fileReaders->attach(m_index, m_wakeFd);
    return m_poller->addListener(m_listenFd, &g_listenerTag) &&
           m_poller->addLevel(m_wakeFd, &g_wakeTag);
}

void EventLoop::start() {
    m_thread = std::thread([this] { run(); });
}

void EventLoop::join() {
    if (m_thread.joinable()) m_thread.join();
}

void EventLoop::wake() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(m_wakeFd, &one, sizeof one);
}

// ---------------------------------------------------------------- the loop

void EventLoop::run() {
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
                if (m_fileReaders) takeFileReads();
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
        m_timers.expire(m_nowMs, [this](int kind, TimerNode *node) { onTimerExpired(kind, node); });
        if (m_accessLog) m_accessLog->publish(); // this turn's lines, in one hand-over
        resumeAcceptingWhenDue();
        m_objects.recycleRetired();
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

int EventLoop::nextTimeoutMs() const {
    int64_t next = m_timers.nextDeadline();
    if (m_shared.draining.load(std::memory_order_relaxed)) next = std::min(next, m_nowMs + 50);
    if (m_acceptResumeMs) next = std::min(next, m_acceptResumeMs);
    if (next == INT64_MAX) return 1000;
    return int(std::clamp<int64_t>(next - monotonicMs(), 0, 1000));
}

void EventLoop::onTimerExpired(int kind, TimerNode *node) {
    switch (TimerKind(kind)) {
    case ClientHeader:
    case ClientIdle:
    case ClientLinger:
    case ClientBody:
    case ClientSend:
    case TunnelIdle:
        // The client is the slow side: it is closed (with its backend connection, if any),
        // the backend is not blamed.
        closeClient(ownerOf<Client>(node));
        break;
    case UpConnect:
    case UpResponse: {
        Upstream *u = ownerOf<Upstream>(node);
        if (Client *c = u->client) {
            // A connect timeout fails over; a slow answer is a 504.
            upstreamFailed(c, true,
                           kind == UpResponse ? FailReason::ResponseTimeout
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

// ---------------------------------------------------------------- accept

void EventLoop::acceptConnections() {
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
            refuse(fd);
            m_shared.rejected.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        // TCP_NODELAY is inherited from the listening socket (set in ProxyEngine).
        Client *c = m_objects.newClient();
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
            m_objects.giveBack(c);
            continue;
        }
        m_shared.openConnections.fetch_add(1, std::memory_order_relaxed);
        c->slot = m_clients.size();
        m_clients.push_back(c);
        arm(c->timer, ClientHeader); // on TLS, the handshake's timeout too
        if (m_tls) {
            if (!(c->ssl = m_tls->newSession(fd))) {
                closeClient(c);
                continue;
            }
            c->useCopyPath = true; // TLS must see every byte: no sendfile
        }
        // Deferred accept: the request is usually already there.
        c->canRead = true;
        pump(c);
    }
}

void EventLoop::refuseWithReserve() {
    if (m_reserveFd < 0) return;
    // The reserve's slot takes one waiting client at a time: accept, 503, close. A bounded
    // batch, so a flood cannot keep this thread here.
    ::close(m_reserveFd);
    m_reserveFd = -1;
    for (int i = 0; i < 32; ++i) {
        const int fd = accept4(m_listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        refuse(fd);
        m_shared.accepted.fetch_add(1, std::memory_order_relaxed);
        m_shared.rejected.fetch_add(1, std::memory_order_relaxed);
    }
    m_reserveFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void EventLoop::pauseAccepting() {
    if (!m_listening) return;
    m_poller->remove(m_listenFd);
    m_listening = false;
    m_acceptResumeMs = m_nowMs + 100;
}

void EventLoop::resumeAcceptingWhenDue() {
    if (!m_acceptResumeMs || m_nowMs < m_acceptResumeMs) return;
    if (m_reserveFd < 0) m_reserveFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    m_acceptResumeMs = 0;
    if (m_shared.draining.load(std::memory_order_relaxed)) return;
    m_listening = m_poller->addListener(m_listenFd, &g_listenerTag);
    if (!m_listening) m_acceptResumeMs = m_nowMs + 100; // e.g. ENOMEM: try again later
}

// ---------------------------------------------------------------- events and socket I/O

void EventLoop::onClientEvent(Client *c, const net::PollEvent &ev) {
    if (c->noteEvent(ev)) pump(c);
}

void EventLoop::onUpstreamEvent(Upstream *u, const net::PollEvent &ev) {
    if (!u->noteEvent(ev)) return;
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

int EventLoop::readSome(int fd, Buffer &b, bool &canRead, bool hangup) {
    if (!m_buffers.ensure(b)) return -2;
    m_buffers.makeRoom(b);
    const uint32_t room = m_buffers.space(b);
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

int EventLoop::writeSome(int fd, Buffer &b, bool &canWrite) {
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

int EventLoop::readClient(Client *c) {
    if (!c->ssl) return readSome(c->fd, c->in, c->canRead, c->hangup);
    Buffer &b = c->in;
    if (!m_buffers.ensure(b)) return -2;
    m_buffers.makeRoom(b);
    const uint32_t room = m_buffers.space(b);
    if (room == 0) return -1;
    const int n = net::tlsRead(c->ssl, b.data + b.end, room, c->canRead, c->canWrite);
    if (n > 0) b.end += uint32_t(n);
    return n;
}

int EventLoop::writeClient(Client *c) {
    if (!c->ssl) return writeSome(c->fd, c->out, c->canWrite);
    const int n = net::tlsWrite(c->ssl, c->out.readPtr(), c->out.size(), c->canWrite);
    if (n > 0) c->out.consume(uint32_t(n));
    return n;
}

void EventLoop::shutdownClientWrite(Client *c) {
    if (c->ssl) net::tlsShutdown(c->ssl);
    ::shutdown(c->fd, SHUT_WR);
}

// ---------------------------------------------------------------- client state machine

void EventLoop::pump(Client *c) {
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
        case Phase::File:
            progress |= stepFile(c);
            break;
        }
    }
    if (c->closed) return;
    if (c->phase == Phase::Proxy) updateProxyTimers(c);
    // Idle connections hold no buffers: that is what keeps 10,000 of them cheap.
    if (c->in.data && c->in.size() == 0 && c->phase == Phase::Head) m_buffers.release(c->in);
    if (c->out.data && c->out.size() == 0) m_buffers.release(c->out);
}

bool EventLoop::flushClient(Client *c) {
    if (!c->out.data || c->out.size() == 0 || !c->canWrite) return false;
    const int n = writeClient(c);
    if (n == -2) {
        closeClient(c);
        return false;
    }
    if (n > 0 && c->timer.list == ClientSend) arm(c->timer, ClientSend); // it reads: progress
    if (n > 0 && c->phase == Phase::Linger && c->out.size() == 0) {
        if (c->closeWhenFlushed) {
            if (c->ssl) net::tlsShutdown(c->ssl); // the end is the response's, not a cut
            closeClient(c);
            return false;
        }
        shutdownClientWrite(c);
    }
    return n > 0;
}

bool EventLoop::stepHead(Client *c) {
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
    const int n = readClient(c);
    if (n > 0) return true;
    if (n == 0 || n == -2) closeClient(c);
    return false;
}

bool EventLoop::startRequest(Client *c, uint32_t headLength) {
    const int rc = http::parseRequest(c->in.readPtr(), headLength, m_shared.headLimits, m_request);
    if (m_accessLog)
        m_accessLog->capture(c->log, std::string_view(c->in.readPtr(), headLength),
                             rc == 0 ? &m_request : nullptr);
    if (rc != 0) {
        m_shared.badRequests.fetch_add(1, std::memory_order_relaxed);
        respondError(c, rc, true);
        return true;
    }
    const http::RequestHead &r = m_request;
    c->req.start(r);
    c->bodyQueued = false;
    c->isHead = r.isHead;
    c->http10 = r.minor == 0;
    c->keepAlive = r.keepAlive() && !c->closeAfter;
    c->clientClose = !r.keepAlive();
    c->upgrade = r.wantsUpgrade();
    c->acceptsGzip = m_compression.enabled() && requestAcceptsGzip(r);
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
    if (m_static) {
        const int served = serveStatic(c, headLength);
        if (served != 0) return served > 0;
    }
    if (!buildRequestHead(c)) {
        m_shared.badRequests.fetch_add(1, std::memory_order_relaxed);
        respondError(c, 431, true);
        return true;
    }
    c->in.consume(headLength);
    c->scan.reset();
    c->phase = Phase::Proxy;
    c->startUs = monotonicUs();
    if (!c->req.done())
        arm(c->timer, ClientBody);
    else
        disarm(c->timer);
    if (!dispatch(c)) {
        m_shared.noBackend.fetch_add(1, std::memory_order_relaxed);
        respondError(c, 502, !c->req.done());
    }
    return true;
}

bool EventLoop::buildRequestHead(Client *c) {
    const http::RequestHead &r = m_request;
    if (!m_buffers.ensure(c->head)) return false;
    const uint32_t length =
        writeRequestHead(r, c->address(), c->head.data, m_buffers.bufferSize(), m_tls != nullptr);
    if (length == 0) return false;
    c->head.begin = 0;
    c->head.end = length;
    // The sticky cookie is looked up at dispatch time, possibly again after a failover;
    // remember where its value sits, since the client's buffer moves on.
    c->stickyLength = 0;
    if (m_balancer.policy() == BalancingPolicy::StickyCookie && !r.cookie.empty()) {
        const std::string_view v = http::cookieValue(r.cookie, "CORRALID");
        if (!v.empty() && v.size() <= 64 && m_buffers.space(c->head) >= v.size()) {
            std::memcpy(c->head.data + c->head.end, v.data(), v.size());
            c->stickyOffset = c->head.end;
            c->stickyLength = uint32_t(v.size());
        }
    }
    return true;
}

bool EventLoop::stepProxy(Client *c) {
    bool progress = false;
    Upstream *u = c->up;
    // Request body: client -> upstream, only once connected (an unsent body keeps a
    // failover possible) and only as far as the upstream buffer has room (back-pressure).
    if (u && !u->connecting && !c->req.done() && c->in.size() > 0) {
        const long n = forwardBody(c->in, u->out, &c->req);
        if (n < 0) {
            closeClient(c);
            return false;
        }
        if (n > 0) {
            c->bodyQueued = true;
            if (c->req.done())
                disarm(c->timer);
            else
                arm(c->timer, ClientBody);
            progress = true;
        }
    }
    if (!c->req.done() && c->canRead) {
        const int n = readClient(c);
        if (n > 0) {
            progress = true;
        } else if (n == 0 || n == -2) {
            closeClient(c); // the client went away in the middle of its request body
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
    // Before reading more of a large body into the buffer, see whether it can go by pipe.
    if (!c->pipe.open() && shouldSplice(c)) m_pipes.acquire(c->pipe);
    if (!u->connecting && u->canRead && !c->respDone && !c->pipe.open()) {
        const int n = readSome(u->fd, u->in, u->canRead, u->hangup);
        if (n > 0) {
            ThreadCounters::add(counters(u->runtime.get()).bytesIn, uint64_t(n));
            progress = true;
            if (!c->respStarted) {
                c->respStarted = true;
                m_buffers.release(c->head);
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
    // Response body: upstream -> client, bounded by the client's buffer; a large one through
    // a pipe once what was read with the head is out.
    u = c->up;
    if (c->pipe.open() && u) {
        const int n = spliceBody(c);
        if (n < 0) return false; // closed
        progress |= n > 0;
    } else if (c->gzip && u) {
        const GzipProgress gz = pumpGzipBody(*c, *u, m_buffers); // ends it at the backend's close
        if (gz.cut) {
            closeClient(c); // the client sees no last chunk
            return false;
        }
        progress |= gz.moved;
        c->log.bodyBytes += gz.queued;
    } else if (u && !c->respDone && u->in.size() > 0) {
        const long n = forwardBody(u->in, c->out, &c->resp);
        if (n < 0) {
            closeClient(c);
            return false;
        }
        c->log.bodyBytes += uint64_t(n);
        if (c->resp.done()) c->respDone = true;
        progress |= n > 0;
    }
    if (u && !c->respDone && !c->pipe.open() && !c->gzip && u->eof && u->in.size() == 0) {
        if (c->resp.endOfInput()) {
            c->respDone = true;
        } else {
            closeClient(c); // truncated by the backend: the client must see it truncated
            return false;
        }
    }
    if (c->respDone && c->up) {
        finishResponse(c);
        progress = true;
    }
    return progress;
}

// Moves body bytes from one connection's buffer to the other's, as many as `to` has room for
// (back-pressure) and, when `body` is given, no more than its framing says belong to it (the
// rest is the next pipelined message). Returns the bytes moved, or -1 on a chunked framing
// error. `body` null: a tunnel, everything goes.
long EventLoop::forwardBody(Buffer &from, Buffer &to, http::BodyFramer *body) {
    if (from.size() == 0 || !m_buffers.ensure(to)) return 0;
    m_buffers.makeRoom(to);
    uint32_t n = std::min(from.size(), m_buffers.space(to));
    if (n == 0) return 0;
    if (body) {
        const long used = body->feed(from.readPtr(), n);
        if (used < 0) return -1;
        n = uint32_t(used);
    }
    std::memcpy(to.data + to.end, from.readPtr(), n);
    to.end += n;
    from.consume(n);
    return long(n);
}

// Splice only what needs no look at the bytes: a Content-Length body (chunked framing would
// have to be followed), large enough to be worth a pipe, once nothing of it is buffered (the
// bytes read with the head go first, in order) and the client's buffer is sent.
bool EventLoop::shouldSplice(const Client *c) const {
    const int threshold = m_config.limits.spliceMinBytes;
    return threshold > 0 && !c->ssl && !c->gzip && c->respHeadDone && !c->respDone &&
           c->resp.kind() == http::BodyKind::Length && c->resp.remaining() >= uint64_t(threshold) &&
           c->up->in.size() == 0 && c->out.size() == 0;
}

// Moves the body backend -> pipe -> client until neither side can proceed. Returns >0 when
// bytes moved, 0 when none could, -1 when the client was closed (the backend closed early or
// either socket failed). EAGAIN from the backend's side is ambiguous while the pipe holds
// bytes (a full pipe says so too), so the socket counts as drained only when the pipe is
// empty; until then the client's side draining the pipe brings the next attempt.
int EventLoop::spliceBody(Client *c) {
    Upstream *u = c->up;
    SplicePipe &pipe = c->pipe;
    bool moved = false;
    for (bool progress = true; progress;) {
        progress = false;
        if (!c->resp.done() && u->canRead && pipe.bytes < pipe.capacity) {
            const size_t want =
                size_t(std::min<uint64_t>(c->resp.remaining(), pipe.capacity - pipe.bytes));
            const ssize_t n = ::splice(u->fd, nullptr, pipe.writeFd, nullptr, want,
                                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                c->resp.feed(nullptr, size_t(n)); // Length framing counts, it does not read
                pipe.bytes += uint32_t(n);
                ThreadCounters::add(counters(u->runtime.get()).bytesIn, uint64_t(n));
                arm(u->timer, UpResponse);
                progress = true;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                u->eof = true;
                closeClient(c); // truncated by the backend: the client must see it truncated
                return -1;
            } else if (errno == EAGAIN && pipe.bytes == 0) {
                u->canRead = false;
            }
        }
        if (pipe.bytes > 0 && c->canWrite) {
            // More of the body to come: let TCP fill whole segments (MSG_MORE), as the
            // client's receive path pays per segment.
            const unsigned more = c->resp.done() ? 0 : SPLICE_F_MORE;
            const ssize_t n = ::splice(pipe.readFd, nullptr, c->fd, nullptr, pipe.bytes,
                                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK | more);
            if (n > 0) {
                pipe.bytes -= uint32_t(n);
                c->log.bodyBytes += uint64_t(n);
                if (c->timer.list == ClientSend) arm(c->timer, ClientSend); // it reads
                progress = true;
            } else if (n < 0 && errno == EAGAIN) {
                c->canWrite = false;
            } else if (n < 0 && errno != EINTR) {
                closeClient(c);
                return -1;
            }
        }
        moved |= progress;
    }
    if (c->resp.done() && pipe.bytes == 0) {
        m_pipes.release(pipe);
        c->respDone = true;
    }
    return moved ? 1 : 0;
}

bool EventLoop::handleResponseHead(Client *c) {
    Upstream *u = c->up;
    const long length = u->scan.scan(u->in.readPtr(), u->in.size());
    if (length == 0) {
        if (m_buffers.space(u->in) == 0 && u->in.begin == 0) {
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
    if (!m_buffers.ensure(c->out)) return false;
    m_buffers.makeRoom(c->out);
    // The rewritten head must fit whole; wait while the previous response drains.
    const uint32_t needed = uint32_t(length) + 256;
    if (m_buffers.space(c->out) < needed) {
        if (c->out.size() == 0) {
            badResponse(c, FailReason::HeadTooLarge);
            return true;
        }
        return false;
    }
    const bool informational = r.status >= 100 && r.status < 200 && r.status != 101;
    if (informational) {
        // 100 Continue and friends: relayed to HTTP/1.1 clients, then the real answer.
        if (!c->http10) {
            std::memcpy(c->out.data + c->out.end, u->in.readPtr(), size_t(length));
            c->out.end += uint32_t(length);
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
    c->resp.start(r);
    if (r.body == http::BodyKind::UntilClose) c->keepAlive = false;
    if (!c->req.done()) c->keepAlive = false; // answered before the body arrived: close after
    if (c->closeAfter) c->keepAlive = false;
    ResponseHeadOptions options;
    if (m_compression.enabled()) options.gzip = beginGzip(*c, r, m_compression, m_gzipPool);
    options.http10 = c->http10;
    options.keepAlive = c->keepAlive;
    if (c->setCookie && c->runtime) options.stickyId = c->runtime->id;
    const uint32_t written =
        writeResponseHead(r, options, c->out.data + c->out.end, m_buffers.space(c->out));
    if (written == 0) {
        badResponse(c, FailReason::HeadTooLarge);
        return true;
    }
    c->out.end += written;
    u->in.consume(uint32_t(length));
    c->respHeadDone = true;
    countResponse(c->runtime, r.status);
    if (r.status == 101) {
        if (m_accessLog) m_accessLog->write(*c, 101, c->runtime); // logged when it switches
        // Upgraded: bytes flow both ways untouched until either side closes. The tunnel
        // keeps counting as in flight, so a drain waits for it.
        c->phase = Phase::Tunnel;
        disarm(u->timer);
        arm(c->timer, TunnelIdle);
        return true;
    }
    c->respDone = c->resp.done(); // no body
    return true;
}

void EventLoop::finishResponse(Client *c) {
    Upstream *u = c->up;
    BackendRuntime *rt = c->runtime;
    if (rt) {
        const uint64_t us = monotonicUs() - c->startUs;
        counters(rt).recordLatency(us);
    }
    if (m_accessLog) m_accessLog->write(*c, c->status, rt);
    detachUpstream(c);
    disarm(u->timer);
    const bool reusable = c->req.done() && u->in.size() == 0 && !u->eof && !u->hangup &&
                          c->respKeepAlive && c->resp.kind() != http::BodyKind::UntilClose &&
                          u->out.size() == 0;
    // First: a removed backend's runtime may go with its last connection.
    releaseAttempt(c);
    if (reusable)
        poolUpstream(u);
    else
        closeUpstream(u);
    completeResponse(c);
}

void EventLoop::completeResponse(Client *c) {
    m_gzipPool.giveBack(c->gzip);
    c->servedOne = true;
    m_buffers.release(c->head);
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
        c->closeWhenFlushed = c->clientClose && c->req.done() && c->in.size() == 0 && !c->upgrade;
        if (c->out.size() == 0) {
            if (c->closeWhenFlushed) {
                if (c->ssl) net::tlsShutdown(c->ssl); // the end is the response's, not a cut
                closeClient(c);
            } else {
                shutdownClientWrite(c);
            }
        }
    }
}

// Each timer measures the side the proxy waits on. The backend's runs while it owes
// something: to take request bytes queued for it, or response bytes the client side has room
// for; never while a slow client holds things up (issue 13.5). The client's runs while its
// response waits in the proxy's buffer; its body has the ClientBody timer.
void EventLoop::updateProxyTimers(Client *c) {
    const bool responseWaits = c->out.size() > 0 || c->pipe.bytes > 0;
    if (c->req.done()) {
        if (responseWaits) {
            if (c->timer.list != ClientSend) arm(c->timer, ClientSend);
        } else if (c->timer.list == ClientSend) {
            disarm(c->timer);
        }
    }
    Upstream *u = c->up;
    if (!u || u->connecting) return;
    // Still readable after the loop: the backend has more, there is no room for it.
    const bool blockedByClient =
        u->canRead || ((u->in.size() > 0 || c->pipe.bytes > 0) && responseWaits && !c->canWrite);
    const bool backendOwes =
        u->out.size() > 0 || (c->req.done() && !c->respDone && !blockedByClient);
    if (!backendOwes)
        disarm(u->timer);
    else if (u->timer.list != UpResponse)
        arm(u->timer, UpResponse);
}

void EventLoop::respondError(Client *c, int status, bool close) {
    if (dropUpstream(c)) releaseAttempt(c);
    m_buffers.release(c->head);
    if (!m_buffers.ensure(c->out)) {
        closeClient(c);
        return;
    }
    m_buffers.makeRoom(c->out);
    close = close || !c->keepAlive || c->closeAfter;
    // What a 502/504 tells a client on this machine: the attempt that failed, or else why no
    // backend was usable. Failure path only, so building it for every client costs nothing.
    FailedAttempt attempt;
    BackendStatus unusable[MaxListedBackends];
    ErrorCause cause;
    cause.configured = m_backends.size();
    if (BackendRuntime *rt = c->failedAt) {
        attempt.backend = rt->label;
        attempt.why = c->failReason;
        attempt.midHead = c->respStarted;
        attempt.noRetry = c->noRetry;
        cause.attempt = &attempt;
    } else if (status == 502 || status == 504) {
        size_t listed = 0;
        for (const LocalBackend &lb : m_backends) {
            const BackendRuntime *rt = lb.runtime.get();
            if (rt->usable(m_nowMs)) continue;
            if (listed == MaxListedBackends) break;
            unusable[listed++] = statusOf(*rt);
        }
        cause.unusable = std::span<const BackendStatus>(unusable, listed);
    }
    const BackendRuntime *failedAt = c->failedAt; // for the access log
    c->failedAt = nullptr;
    const uint32_t written = writeErrorResponse(status, close, c->address(), cause, m_config,
                                                c->out.data + c->out.end, m_buffers.space(c->out));
    if (written == 0) {
        closeClient(c);
        return;
    }
    if (m_accessLog)
        m_accessLog->writeError(*c, status, failedAt, {c->out.data + c->out.end, written});
    c->out.end += written;
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

bool EventLoop::stepTunnel(Client *c) {
    Upstream *u = c->up;
    if (!u) {
        closeClient(c);
        return false;
    }
    bool progress = false;
    progress |= forwardBody(c->in, u->out, nullptr) > 0; // client -> upstream
    progress |= forwardBody(u->in, c->out, nullptr) > 0; // upstream -> client
    if (u->out.size() > 0 && u->canWrite) {
        const int n = writeSome(u->fd, u->out, u->canWrite);
        if (n == -2) {
            releaseAttempt(c);
            closeClient(c);
            return false;
        }
        if (n > 0) {
            ThreadCounters::add(counters(u->runtime.get()).bytesOut, uint64_t(n));
            progress = true;
        }
    }
    if (!c->eof && c->canRead) {
        const int n = readClient(c);
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

bool EventLoop::stepLinger(Client *c) {
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

// ---------------------------------------------------------------- backends

void EventLoop::refreshBackends() {
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
            if (old.runtime == rt) std::swap(lb.idle, old.idle);
        next.push_back(std::move(lb));
        targets.push_back(BalancerTarget{rt->config.weight, rt->config.backup});
    }
    // Whatever did not carry over (removed backends) loses its idle connections.
    std::vector<LocalBackend> old;
    old.swap(m_backends);
    m_backends.swap(next);
    for (LocalBackend &lb : old)
        for (Upstream *u : lb.idle.takeAll())
            closeUpstream(u);
    for (LocalBackend &lb : m_backends) {
        BackendRuntime *rt = lb.runtime.get();
        if (!rt->enabled.load() || rt->draining.load() || rt->removed.load())
            for (Upstream *u : lb.idle.takeAll())
                closeUpstream(u);
    }
    m_balancer.reset(policy, targets);
}

int EventLoop::chooseBackend(Client *c) {
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

Upstream *EventLoop::connectUpstream(LocalBackend &local) {
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
    Upstream *u = m_objects.newUpstream();
    u->fd = fd;
    u->runtime = local.runtime;
    u->connecting = rc != 0;
    u->canWrite = rc == 0;
    if (!m_poller->add(fd, u)) {
        ::close(fd);
        u->runtime.reset();
        m_objects.giveBack(u);
        return nullptr;
    }
    return u;
}

bool EventLoop::dispatch(Client *c) {
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
            u = local.idle.take();
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
        if (!m_buffers.ensure(u->out) || !m_buffers.ensure(u->in)) return false;
        std::memcpy(u->out.data, c->head.data, c->head.size());
        u->out.begin = 0;
        u->out.end = c->head.size();
        u->scan.reset();
        arm(u->timer, u->connecting ? UpConnect : UpResponse);
        return true;
    }
    return false;
}

void EventLoop::releaseAttempt(Client *c) {
    BackendRuntime *rt = c->runtime;
    if (!rt) return;
    c->runtime = nullptr;
    if (rt->inFlight.fetch_sub(1) == 1 && rt->draining.load()) rt->fireDrainedIfEmpty();
}

void EventLoop::poolUpstream(Upstream *u) {
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
    m_buffers.release(u->in);
    m_buffers.release(u->out);
    u->reused = false;
    local->idle.put(u);
    arm(u->timer, UpIdle);
}

void EventLoop::countResponse(BackendRuntime *rt, int status) {
    if (!rt) return;
    const int cls = status / 100 - 2;
    if (cls >= 0 && cls < 4) ThreadCounters::add(counters(rt).responses[cls], 1);
}

void EventLoop::noteFailure(BackendRuntime *rt, FailReason why) {
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
bool EventLoop::mayRetry(Client *c, FailReason why) {
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

void EventLoop::upstreamFailed(Client *c, bool countFailure, FailReason why) {
    Upstream *u = c->up;
    if (!u) return;
    // Held until the error is written: a removed backend may go with this connection.
    const std::shared_ptr<BackendRuntime> keep = u->runtime;
    BackendRuntime *rt = keep.get();
    // A pooled connection that failed without it being counted went stale while idle.
    const bool stale = u->reused && !countFailure;
    detachUpstream(c);
    if (countFailure) noteFailure(rt, why);
    closeUpstream(u);
    if (c->phase == Phase::Tunnel || c->respHeadDone) {
        // Part of the answer is with the client: all it can be told is the cut.
        releaseAttempt(c);
        closeClient(c);
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
            if (m_accessLog) m_accessLog->attemptFailed(c->log, rt->label, 502, c->startUs);
            return;
        }
        // Not noBackend: this 502 is counted against `rt` below, and views that add the two
        // (the console's errors/s) must not count it twice.
    }
    const int status = why == FailReason::ResponseTimeout ? 504 : 502;
    countResponse(rt, status);
    c->failedAt = rt;
    c->failReason = why;
    respondError(c, status, !c->req.done() || c->bodyQueued);
}

void EventLoop::badResponse(Client *c, FailReason why) {
    // The backend answered, wrongly: not retried (it ran the request), 502 to the client.
    Upstream *u = c->up;
    const std::shared_ptr<BackendRuntime> keep = u->runtime;
    BackendRuntime *rt = keep.get();
    rt->lastFailure.store(why, std::memory_order_relaxed);
    ThreadCounters::add(counters(rt).failures, 1);
    dropUpstream(c);
    countResponse(c->runtime, 502);
    releaseAttempt(c);
    c->failedAt = rt;
    c->failReason = why;
    c->noRetry = NoRetry::Final;
    respondError(c, 502, true);
}

// ---------------------------------------------------------------- closing

void EventLoop::closeClient(Client *c) {
    if (c->closed) return;
    // Cut before its answer was complete: logged as sent so far, or nginx's 499 (the client
    // went away before a response began).
    if (m_accessLog && c->log.captured)
        m_accessLog->write(*c, c->respHeadDone ? c->status : 499,
                           c->respHeadDone ? c->runtime : nullptr);
    dropUpstream(c);
    releaseAttempt(c);
    m_gzipPool.giveBack(c->gzip);
    c->closed = true;
    disarm(c->timer);
    m_poller->forget(c->fd); // epoll: no EPOLL_CTL_DEL, one syscall less per connection
    if (c->ssl) {
        net::tlsFree(c->ssl);
        c->ssl = nullptr;
    }
    ::close(c->fd);
    c->fd = -1;
    m_buffers.release(c->in);
    m_buffers.release(c->out);
    m_buffers.release(c->head);
    m_pipes.release(c->pipe);
    if (c->file.fd >= 0) closeFile(c);
    m_clients[c->slot] = m_clients.back();
    m_clients[c->slot]->slot = c->slot;
    m_clients.pop_back();
    m_shared.openConnections.fetch_sub(1, std::memory_order_relaxed);
    m_objects.retire(c);
}

Upstream *EventLoop::detachUpstream(Client *c) {
    Upstream *u = c->up;
    if (u) {
        c->up = nullptr;
        u->client = nullptr;
    }
    return u;
}

bool EventLoop::dropUpstream(Client *c) {
    Upstream *u = detachUpstream(c);
    if (u) closeUpstream(u);
    return u;
}

void EventLoop::closeUpstream(Upstream *u) {
    if (u->closed) return;
    if (u->pooled)
        for (LocalBackend &lb : m_backends)
            lb.idle.remove(u);
    u->closed = true;
    disarm(u->timer);
    m_poller->forget(u->fd);
    ::close(u->fd);
    u->fd = -1;
    m_buffers.release(u->in);
    m_buffers.release(u->out);
    u->runtime.reset();
    m_objects.retire(u);
}

} // namespace corral::proxy
