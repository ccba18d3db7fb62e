#include "proxy/ProxyEngine.h"

#include "http/HttpParser.h"
#include "net/DevCertificateAuthority.h"
#include "net/TlsContext.h"
#include "proxy/AdminServer.h"
#include "proxy/EventLoop.h"
#include "proxy/HttpsRedirect.h"
#include "util/ListeningSockets.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <arpa/inet.h>
#include <condition_variable>
#include <cstring>
#include <iterator>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <thread>
#include <time.h>
#include <unistd.h>

namespace corral {

using namespace proxy;

namespace proxy {

int64_t monotonicMs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint64_t monotonicUs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

BackendRuntime::BackendRuntime(const Backend &backend, int threads)
    : config(backend)
    , key(backend.key())
    , counters(new ThreadCounters[size_t(threads) + 1])
    , counterSlots(threads + 1) {
    // Opaque: a hash of the address, so the cookie neither leaks it nor changes on restart.
    const QByteArray k = key.toUtf8();
    const uint64_t h = Balancer::hashBytes(k.constData(), size_t(k.size()));
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    id = hex;
    label = k.toStdString();
    enabled = !backend.down;
}

void BackendRuntime::fireDrainedIfEmpty() {
    if (!draining.load() || inFlight.load() != 0) return;
    std::function<void()> callback;
    {
        std::lock_guard lock(drainMutex);
        callback.swap(onDrained);
    }
    if (callback) callback();
}

bool BackendRuntime::recordFailure(int64_t nowMs, int maxFails, int failTimeoutMs) {
    if (maxFails <= 0) return false;
    // nginx's max_fails/fail_timeout: count failures in a window; enough of them take the
    // backend out for fail_timeout. Races between threads only blur the count by one.
    if (nowMs - failureWindowStartMs.load(std::memory_order_relaxed) > failTimeoutMs) {
        failureWindowStartMs.store(nowMs, std::memory_order_relaxed);
        recentFailures.store(0, std::memory_order_relaxed);
    }
    if (recentFailures.fetch_add(1, std::memory_order_relaxed) + 1 >= maxFails) {
        const int64_t wasDownUntil =
            downUntilMs.exchange(nowMs + failTimeoutMs, std::memory_order_relaxed);
        recentFailures.store(0, std::memory_order_relaxed);
        failureWindowStartMs.store(nowMs, std::memory_order_relaxed);
        return wasDownUntil <= nowMs;
    }
    return false;
}

} // namespace proxy

QString BackendEvent::toString() const {
    static const char *const names[] = {"down", "up", "drained"};
    QString line = QStringLiteral("backend %1 %2").arg(backend, QLatin1String(names[kind]));
    if (!reason.isEmpty()) line += QStringLiteral(": ") + reason;
    return line;
}

QString backendStateName(BackendState state) {
    static const char *const names[] = {"up", "down", "draining", "disabled"}; // BackendState order
    static_assert(std::size(names) == size_t(BackendState::Disabled) + 1);
    return QLatin1String(names[size_t(state)]);
}

static Result<void> resolve(const Backend &backend, sockaddr_storage &out, socklen_t &length) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *result = nullptr;
    const QByteArray host = backend.address.toUtf8();
    const QByteArray port = QByteArray::number(backend.port);
    const int rc = getaddrinfo(host.constData(), port.constData(), &hints, &result);
    if (rc != 0 || !result)
        return fail(QStringLiteral("%1: cannot resolve: %2")
                        .arg(backend.key(), QString::fromUtf8(gai_strerror(rc))));
    std::memcpy(&out, result->ai_addr, result->ai_addrlen);
    length = result->ai_addrlen;
    freeaddrinfo(result);
    return {};
}

struct ProxyEngine::Impl {
    ProxyEngine *q = nullptr;
    std::unique_ptr<EngineShared> shared;
    std::vector<std::unique_ptr<EventLoop>> loops;
    quint16 port = 0;
    int listenFd = -1; ///< the one listening socket, polled by every event loop
    bool running = false;
    std::unique_ptr<AdminServer> admin;
    std::unique_ptr<HttpsRedirector> redirect; ///< TlsConfig::redirectHttpListen
    quint16 redirectPort = 0;

    std::thread healthThread;
    std::mutex healthMutex;
    std::condition_variable healthWake;
    bool healthStop = false;

    void publish() {
        shared->version.fetch_add(1, std::memory_order_release);
        for (auto &loop : loops)
            loop->wake();
    }
    std::shared_ptr<BackendRuntime> find(const QString &key) {
        for (auto &rt : shared->backends)
            if (rt->key == key) return rt;
        return nullptr;
    }
    /// Applies `change` to backend `key` under the lock, then tells the threads.
    template <typename Change> Result<void> changeBackend(const QString &key, Change &&change) {
        if (!shared) return fail(QStringLiteral("the proxy is not running"));
        {
            std::lock_guard lock(shared->mutex);
            const std::shared_ptr<BackendRuntime> rt = find(key);
            if (!rt) return fail(QStringLiteral("no backend %1").arg(key));
            change(rt);
        }
        publish();
        return {};
    }
    Result<std::shared_ptr<BackendRuntime>> makeRuntime(const Backend &backend) {
        if (auto valid = backend.validate(QStringLiteral("backend")); !valid)
            return fail(valid.error());
        auto rt = std::make_shared<BackendRuntime>(backend, shared->threads);
        if (auto r = resolve(backend, rt->address, rt->addressLength); !r) return fail(r.error());
        return rt;
    }
    void healthLoop();
    /// One active check; on failure `why` says what happened ("connection refused").
    bool probe(BackendRuntime &rt, std::string &why);
};

ProxyEngine::ProxyEngine()
    : d(std::make_unique<Impl>()) {
    d->q = this;
}

ProxyEngine::~ProxyEngine() {
    stop();
}

static Result<int> openListener(const QString &address, quint16 port) {
    sockaddr_storage addr{};
    socklen_t length = 0;
    Backend probe;
    probe.address = address;
    probe.port = port ? port : 1;
    if (auto r = resolve(probe, addr, length); !r) return fail(r.error());
    if (addr.ss_family == AF_INET)
        reinterpret_cast<sockaddr_in *>(&addr)->sin_port = htons(port);
    else
        reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port = htons(port);
    const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(QStringLiteral("socket: %1").arg(QString::fromLocal8Bit(strerror(errno))));
    // SO_REUSEADDR only (a restart may bind over TIME_WAIT). Never SO_REUSEPORT: with it,
    // any other socket of this user that sets it too (a second proxy, nginx) could bind the
    // same address and the kernel would split the traffic between them without a word.
    // The event loops share this one socket instead (EPOLLEXCLUSIVE, see net::Poller::addListener).
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), length) != 0 || ::listen(fd, 4096) != 0) {
        const int error = errno;
        ::close(fd);
        if (error == EADDRINUSE) {
            char host[INET6_ADDRSTRLEN] = {};
            const void *raw =
                addr.ss_family == AF_INET
                    ? static_cast<const void *>(&reinterpret_cast<sockaddr_in *>(&addr)->sin_addr)
                    : &reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_addr;
            inet_ntop(addr.ss_family, raw, host, sizeof host);
            if (auto free = checkListenAddressFree(QHostAddress(QString::fromLatin1(host)), port);
                !free)
                return fail(QStringLiteral("cannot listen: ") + free.error());
        }
        return fail(QStringLiteral("cannot listen on %1:%2: %3")
                        .arg(address)
                        .arg(port)
                        .arg(QString::fromLocal8Bit(strerror(error))));
    }
    return fd;
}

/// Raises the soft descriptor limit to the hard one, once per process: the default soft
/// limit (1024 on most systems) is far below what a proxy needs, and nothing is gained by
/// failing at it. Returns the soft limit now in force.
static rlim_t raiseDescriptorLimit() {
    static std::once_flag once;
    std::call_once(once, [] {
        rlimit limit{};
        if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
            limit.rlim_cur = limit.rlim_max;
            setrlimit(RLIMIT_NOFILE, &limit);
        }
    });
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    return limit.rlim_cur;
}

/// How many client connections fit under `descriptors`: each needs two (client and backend),
/// and a margin stays for the process's other files, the pollers and the reserve descriptors.
static int connectionsWithin(rlim_t descriptors, int threads, int configured) {
    if (descriptors == RLIM_INFINITY) return configured;
    const long long margin = 64 + 4LL * threads;
    const long long fit = (static_cast<long long>(descriptors) - margin) / 2;
    return int(std::clamp<long long>(fit, 1, configured));
}

static quint16 boundPort(int fd) {
    sockaddr_storage addr{};
    socklen_t length = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &length);
    if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port);
}

/// The TLS context of `tls`: its certificate and key, or else one issued by the local dev CA
/// for localhost and its host names. Errors name the file.
static Result<std::shared_ptr<net::TlsContext>> loadTls(const TlsConfig &tls) {
    if (tls.certFile.isEmpty() != tls.keyFile.isEmpty())
        return fail(QStringLiteral("TLS: a certificate and its key go together (got only the %1)")
                        .arg(tls.certFile.isEmpty() ? QStringLiteral("key")
                                                    : QStringLiteral("certificate")));
    if (!tls.certFile.isEmpty()) return net::TlsContext::load(tls.certFile, tls.keyFile);
    auto issued = net::DevCertificateAuthority().certificateFor(tls.hostNames);
    if (!issued) return fail(issued.error());
    return net::TlsContext::load(issued->certFile, issued->keyFile);
}

/// The HTTP -> HTTPS redirect listener of TlsConfig::redirectHttpListen ("HOST:PORT", port 0:
/// ephemeral), answering with Locations on `httpsPort`.
static Result<std::unique_ptr<HttpsRedirector>> startRedirect(const ProxyConfig &config,
                                                              quint16 httpsPort, quint16 &boundTo) {
    const QString &spec = config.tls.redirectHttpListen;
    const bool ephemeral = spec.endsWith(QStringLiteral(":0"));
    auto endpoint = Endpoint::parse(ephemeral ? spec.chopped(1) + u'1' : spec);
    if (!endpoint) return fail(QStringLiteral("redirect-http: ") + endpoint.error());
    auto fd = openListener(endpoint->host, ephemeral ? 0 : endpoint->port);
    if (!fd) return fail(QStringLiteral("redirect-http: ") + fd.error());
    boundTo = boundPort(fd.value());
    // The Location's host when the request's Host is absent or hostile: the HTTPS address.
    QString host = config.listenAddress;
    if (host.isEmpty() || host == QStringLiteral("0.0.0.0") || host == QStringLiteral("::"))
        host = QStringLiteral("localhost");
    else if (host.contains(u':'))
        host = u'[' + host + u']';
    auto redirect = std::make_unique<HttpsRedirector>(fd.value(), httpsPort, host.toStdString(),
                                                      config.limits.headerTimeoutMs);
    if (!redirect->start()) return fail(QStringLiteral("redirect-http: cannot start its thread"));
    return redirect;
}

Result<void> ProxyEngine::start(const ProxyConfig &config) {
    if (d->running) return fail(QStringLiteral("the proxy is already running"));
    const ProxyLimits &l = config.limits;
    if (l.maxRequestLine < 64 || l.maxHeaderBytes < 256 || l.maxHeaders < 1 ||
        l.bufferSize < 1024 || l.maxConnections < 1)
        return fail(QStringLiteral("proxy limits are too small"));
    if (l.spliceMinBytes < 0) return fail(QStringLiteral("spliceMinBytes must be 0 or more"));
    // send() says MSG_NOSIGNAL, but splice(2) into a socket whose client went away raises
    // SIGPIPE: a process that runs the proxy takes that as EPIPE, as nginx and HAProxy do.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
    if (config.retries < 0 || config.retries > ProxyConfig::MaxRetries)
        return fail(QStringLiteral("retries: expected 0..%1, got %2")
                        .arg(ProxyConfig::MaxRetries)
                        .arg(config.retries));
    auto adminEndpoint = AdminEndpoint::parse(config.adminListen);
    if (config.adminEnabled && !adminEndpoint)
        return fail(QStringLiteral("admin API: ") + adminEndpoint.error());
    auto shared = std::make_unique<EngineShared>();
    shared->config = config;
    shared->threads = config.threads > 0 ? config.threads
                                         : int(std::max(1u, std::thread::hardware_concurrency()));
    // Past the descriptor limit accept() fails; the limit on connections must bite first.
    shared->config.limits.maxConnections =
        connectionsWithin(raiseDescriptorLimit(), shared->threads, l.maxConnections);
    shared->headLimits.maxRequestLine = size_t(l.maxRequestLine);
    shared->headLimits.maxHeaderBytes = size_t(l.maxHeaderBytes);
    shared->headLimits.maxHeaders = size_t(l.maxHeaders);
    shared->policy = config.policy;
    d->shared = std::move(shared);
    if (!config.staticFiles.root.isEmpty()) {
        auto files = StaticFiles::open(config.staticFiles);
        if (!files) return fail(files.error());
        d->shared->staticFiles = files.value();
        // Two threads: enough to keep a disk busy ahead of the loops (nginx's aio threads
        // default to 32 for many disks; a developer's site has one).
        d->shared->fileReaders = std::make_unique<FileReaderPool>(2, d->shared->threads);
    }
    for (const Backend &b : config.backends) {
        if (d->find(b.key())) return fail(QStringLiteral("%1: listed twice").arg(b.key()));
        auto rt = d->makeRuntime(b);
        if (!rt) return fail(rt.error());
        d->shared->backends.push_back(rt.value());
    }
    if (!config.tls.enabled && !config.tls.redirectHttpListen.isEmpty())
        return fail(QStringLiteral("redirect-http: redirects to HTTPS, which is not enabled"));
    if (config.tls.enabled) {
        auto tls = loadTls(config.tls);
        if (!tls) return fail(tls.error());
        d->shared->tls = std::move(tls).value();
    }
    auto fd = openListener(config.listenAddress, config.listenPort);
    if (!fd) return fail(fd.error());
    const int listenFd = fd.value();
    // Accept only once a request has arrived: saves a wake-up and a read per connection.
    const int deferSeconds = 1;
    setsockopt(listenFd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &deferSeconds, sizeof deferSeconds);
    // Accepted sockets inherit TCP_NODELAY from the listener: no setsockopt per connection.
    const int noDelay = 1;
    setsockopt(listenFd, IPPROTO_TCP, TCP_NODELAY, &noDelay, sizeof noDelay);
    d->port = boundPort(listenFd);
    d->loops.clear();
    const auto abandon = [&] {
        d->redirect.reset();
        d->loops.clear();
        d->shared->accessLog.reset();
        ::close(listenFd);
    };
    if (!config.accessLog.path.isEmpty()) {
        auto log = AccessLog::open(config.accessLog, d->shared->threads);
        if (!log) {
            abandon();
            return fail(log.error());
        }
        d->shared->accessLog = std::move(log).value();
    }
    for (int i = 0; i < d->shared->threads; ++i) {
        auto loop = std::make_unique<EventLoop>(*d->shared, i, listenFd);
        if (!loop->init()) {
            abandon();
            return fail(QStringLiteral("cannot create the event loop"));
        }
        d->loops.push_back(std::move(loop));
    }
    if (!config.tls.redirectHttpListen.isEmpty()) {
        auto redirect = startRedirect(config, d->port, d->redirectPort);
        if (!redirect) {
            abandon();
            return fail(redirect.error());
        }
        d->redirect = std::move(redirect).value();
    }
    if (config.adminEnabled) {
        d->admin = std::make_unique<AdminServer>(*this);
        if (auto r = d->admin->start(adminEndpoint.value()); !r) {
            d->admin.reset();
            abandon();
            return fail(r.error());
        }
    }
    d->listenFd = listenFd;
    for (auto &loop : d->loops)
        loop->start();
    d->healthStop = false;
    if (!config.health.path.isEmpty()) d->healthThread = std::thread([this] { d->healthLoop(); });
    d->running = true;
    return {};
}

void ProxyEngine::stop() {
    if (!d->running) return;
    if (d->admin) d->admin->stop();
    {
        std::lock_guard lock(d->healthMutex);
        d->healthStop = true;
    }
    d->healthWake.notify_all();
    if (d->healthThread.joinable()) d->healthThread.join();
    d->shared->stopping = true;
    for (auto &loop : d->loops)
        loop->wake();
    for (auto &loop : d->loops)
        loop->join();
    // Before the loops go: no read may finish into a loop that is gone.
    if (d->shared->fileReaders) d->shared->fileReaders->stop();
    d->loops.clear();
    // The loops are gone: every line they formatted is written before stop() returns.
    if (d->shared->accessLog) d->shared->accessLog->close();
    if (d->listenFd >= 0) ::close(d->listenFd);
    d->listenFd = -1;
    d->admin.reset();
    d->redirect.reset();
    d->running = false;
}

bool ProxyEngine::drainAndStop(std::chrono::milliseconds timeout) {
    if (!d->running) return true;
    d->shared->draining = true;
    for (auto &loop : d->loops)
        loop->wake();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (d->shared->openConnections.load() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const bool clean = d->shared->openConnections.load() == 0;
    stop();
    return clean;
}

bool ProxyEngine::isRunning() const {
    return d->running;
}
quint16 ProxyEngine::port() const {
    return d->port;
}
quint16 ProxyEngine::redirectPort() const {
    return d->redirect ? d->redirectPort : 0;
}
quint16 ProxyEngine::adminPort() const {
    return d->admin ? d->admin->endpoint().port : 0;
}
AdminEndpoint ProxyEngine::adminEndpoint() const {
    return d->admin ? d->admin->endpoint() : AdminEndpoint{};
}
int ProxyEngine::effectiveMaxConnections() const {
    return d->shared ? d->shared->config.limits.maxConnections : 0;
}
int ProxyEngine::threadCount() const {
    return d->shared ? d->shared->threads : 0;
}

Result<void> ProxyEngine::addBackend(const Backend &backend) {
    if (!d->shared) return fail(QStringLiteral("the proxy is not running"));
    auto rt = d->makeRuntime(backend);
    if (!rt) return fail(rt.error());
    {
        std::lock_guard lock(d->shared->mutex);
        if (auto existing = d->find(backend.key())) {
            // Re-adding a drained or disabled backend brings it back (rolling restarts).
            existing->config.weight = backend.weight;
            existing->config.backup = backend.backup;
            existing->draining = false;
            existing->enabled = !backend.down;
            existing->downUntilMs = 0;
        } else {
            d->shared->backends.push_back(rt.value());
        }
    }
    d->publish();
    return {};
}

Result<void> ProxyEngine::removeBackend(const QString &key) {
    if (!d->shared) return fail(QStringLiteral("the proxy is not running"));
    {
        std::lock_guard lock(d->shared->mutex);
        auto &list = d->shared->backends;
        auto it = std::find_if(list.begin(), list.end(), [&](auto &rt) { return rt->key == key; });
        if (it == list.end()) return fail(QStringLiteral("no backend %1").arg(key));
        (*it)->removed = true;
        list.erase(it);
    }
    d->publish();
    return {};
}

Result<void> ProxyEngine::setWeight(const QString &key, int weight) {
    if (!d->shared) return fail(QStringLiteral("the proxy is not running"));
    if (weight < 1 || weight > Backend::MaxWeight)
        return fail(QStringLiteral("weight %1 is out of range (1..%2)")
                        .arg(weight)
                        .arg(Backend::MaxWeight));
    return d->changeBackend(key, [&](const auto &rt) { rt->config.weight = weight; });
}

Result<void> ProxyEngine::enableBackend(const QString &key) {
    return d->changeBackend(key, [](const auto &rt) {
        rt->enabled = true;
        rt->draining = false;
        rt->downUntilMs = 0;
        std::lock_guard drainLock(rt->drainMutex);
        rt->onDrained = nullptr;
    });
}

Result<void> ProxyEngine::disableBackend(const QString &key) {
    return d->changeBackend(key, [](const auto &rt) { rt->enabled = false; });
}

Result<void> ProxyEngine::drainBackend(const QString &key, std::function<void()> onDrained) {
    std::shared_ptr<BackendRuntime> drained;
    auto changed = d->changeBackend(key, [&](const std::shared_ptr<BackendRuntime> &rt) {
        {
            std::lock_guard drainLock(rt->drainMutex);
            // The event first: whatever the callback does next (stop the worker) follows it.
            rt->onDrained = [shared = d->shared.get(), label = rt->label,
                             callback = std::move(onDrained)] {
                shared->pushEvent(label, BackendEvent::Drained, "no request in flight");
                if (callback) callback();
            };
        }
        rt->draining = true; // seq_cst, paired with the threads' count-then-check
        drained = rt;
    });
    if (!changed) return changed;
    drained->fireDrainedIfEmpty();
    return {};
}

void ProxyEngine::setPolicy(BalancingPolicy policy) {
    if (!d->shared) return;
    {
        std::lock_guard lock(d->shared->mutex);
        d->shared->policy = policy;
    }
    d->publish();
}

QList<Backend> ProxyEngine::backends() const {
    QList<Backend> list;
    if (!d->shared) return list;
    std::lock_guard lock(d->shared->mutex);
    for (auto &rt : d->shared->backends)
        list.append(rt->config);
    return list;
}

ProxyStats ProxyEngine::snapshot() const {
    ProxyStats stats;
    if (!d->shared) return stats;
    EngineShared &s = *d->shared;
    std::vector<std::shared_ptr<BackendRuntime>> list;
    {
        std::lock_guard lock(s.mutex);
        list = s.backends;
        stats.policy = s.policy;
    }
    stats.connectionsAccepted = s.accepted.load(std::memory_order_relaxed);
    stats.connectionsOpen = s.openConnections.load(std::memory_order_relaxed);
    stats.connectionsRejected = s.rejected.load(std::memory_order_relaxed);
    stats.badRequests = s.badRequests.load(std::memory_order_relaxed);
    stats.noBackend = s.noBackend.load(std::memory_order_relaxed);
    if (s.accessLog) {
        stats.accessLogLines = s.accessLog->writtenLines();
        stats.accessLogDropped = s.accessLog->droppedLines();
    }
    const int64_t now = monotonicMs();
    for (auto &rt : list) {
        BackendStats b;
        b.backend = rt->config;
        b.id = QString::fromStdString(rt->id);
        if (!rt->enabled.load())
            b.state = BackendState::Disabled;
        else if (rt->draining.load())
            b.state = BackendState::Draining;
        else if (!rt->usable(now))
            b.state = BackendState::Down;
        b.backend.down = b.state == BackendState::Disabled;
        b.inFlight = rt->inFlight.load(std::memory_order_relaxed);
        LatencyHistogram histogram;
        for (int t = 0; t < rt->counterSlots; ++t) {
            const ThreadCounters &c = rt->counters[size_t(t)];
            b.requests += c.requests.load(std::memory_order_relaxed);
            for (int k = 0; k < 4; ++k)
                b.responses[k] += c.responses[k].load(std::memory_order_relaxed);
            b.bytesIn += c.bytesIn.load(std::memory_order_relaxed);
            b.bytesOut += c.bytesOut.load(std::memory_order_relaxed);
            b.failovers += c.failovers.load(std::memory_order_relaxed);
            b.failures += c.failures.load(std::memory_order_relaxed);
            for (int k = 0; k < LatencyHistogram::Buckets; ++k)
                histogram.add(k, c.latency[k].load(std::memory_order_relaxed));
            b.latencySumUs += c.latencySumUs.load(std::memory_order_relaxed);
        }
        b.latency = histogram;
        // Percentiles as bucket upper bounds: coarse, but lock-free and constant-size.
        b.p50Ms = histogram.percentileMs(0.50);
        b.p90Ms = histogram.percentileMs(0.90);
        b.p99Ms = histogram.percentileMs(0.99);
        stats.backends.append(b);
    }
    return stats;
}

QByteArray ProxyEngine::statsJson() const {
    const ProxyStats stats = snapshot();
    QJsonArray backends;
    for (const BackendStats &b : stats.backends) {
        QJsonObject o;
        o.insert(QStringLiteral("key"), b.backend.key());
        o.insert(QStringLiteral("address"), b.backend.address);
        o.insert(QStringLiteral("port"), b.backend.port);
        o.insert(QStringLiteral("weight"), b.backend.weight);
        o.insert(QStringLiteral("backup"), b.backend.backup);
        o.insert(QStringLiteral("id"), b.id);
        o.insert(QStringLiteral("state"), backendStateName(b.state));
        o.insert(QStringLiteral("requests"), qint64(b.requests));
        o.insert(QStringLiteral("inFlight"), qint64(b.inFlight));
        QJsonObject responses;
        responses.insert(QStringLiteral("2xx"), qint64(b.responses[0]));
        responses.insert(QStringLiteral("3xx"), qint64(b.responses[1]));
        responses.insert(QStringLiteral("4xx"), qint64(b.responses[2]));
        responses.insert(QStringLiteral("5xx"), qint64(b.responses[3]));
        o.insert(QStringLiteral("responses"), responses);
        o.insert(QStringLiteral("bytesIn"), qint64(b.bytesIn));
        o.insert(QStringLiteral("bytesOut"), qint64(b.bytesOut));
        o.insert(QStringLiteral("failovers"), qint64(b.failovers));
        o.insert(QStringLiteral("failures"), qint64(b.failures));
        QJsonObject latency;
        latency.insert(QStringLiteral("p50"), b.p50Ms);
        latency.insert(QStringLiteral("p90"), b.p90Ms);
        latency.insert(QStringLiteral("p99"), b.p99Ms);
        o.insert(QStringLiteral("latencyMs"), latency);
        backends.append(o);
    }
    QJsonObject root;
    root.insert(QStringLiteral("policy"), policyName(stats.policy));
    root.insert(QStringLiteral("listen"),
                d->shared ? Endpoint{d->shared->config.listenAddress, d->port}.toString()
                          : QString());
    root.insert(QStringLiteral("threads"), threadCount());
    QJsonObject connections;
    connections.insert(QStringLiteral("accepted"), qint64(stats.connectionsAccepted));
    connections.insert(QStringLiteral("open"), qint64(stats.connectionsOpen));
    connections.insert(QStringLiteral("rejected"), qint64(stats.connectionsRejected));
    root.insert(QStringLiteral("connections"), connections);
    root.insert(QStringLiteral("badRequests"), qint64(stats.badRequests));
    root.insert(QStringLiteral("noBackend"), qint64(stats.noBackend));
    QJsonObject accessLog;
    accessLog.insert(QStringLiteral("lines"), qint64(stats.accessLogLines));
    accessLog.insert(QStringLiteral("dropped"), qint64(stats.accessLogDropped));
    root.insert(QStringLiteral("accessLog"), accessLog);
    root.insert(QStringLiteral("backends"), backends);
    return QJsonDocument(root).toJson(QJsonDocument::Compact);
}

QList<BackendEvent> ProxyEngine::takeBackendEvents() {
    if (!d->shared) return {};
    EngineShared &s = *d->shared;
    // A passive "down" ends silently when its fail timeout passes: say so here, where it is
    // noticed, rather than have a thread watch the clock.
    std::vector<std::shared_ptr<BackendRuntime>> list;
    {
        std::lock_guard lock(s.mutex);
        list = s.backends;
    }
    const int64_t now = monotonicMs();
    for (auto &rt : list)
        if (rt->passiveDown.load() && rt->usable(now) && rt->passiveDown.exchange(false))
            s.pushEvent(rt->label, BackendEvent::Up,
                        "back in rotation after its " + durationText(s.config.failTimeoutMs) +
                            " fail timeout");
    std::lock_guard lock(s.eventMutex);
    QList<BackendEvent> events(s.events.begin(), s.events.end());
    s.events.clear();
    return events;
}

// ---------------------------------------------------------------- active health checks

bool ProxyEngine::Impl::probe(BackendRuntime &rt, std::string &why) {
    // Blocking with a deadline on its own thread: a handful of backends every few seconds
    // does not need the event loops.
    const int timeoutMs = shared->config.health.timeoutMs;
    const int fd = ::socket(rt.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        why = std::strerror(errno);
        return false;
    }
    const auto deadline = monotonicMs() + timeoutMs;
    const auto waitFor = [&](short events) {
        pollfd p{fd, events, 0};
        const int64_t left = deadline - monotonicMs();
        return left > 0 && ::poll(&p, 1, int(left)) == 1 && !(p.revents & (POLLERR | POLLNVAL));
    };
    bool ok = false;
    const std::string timedOut = "no answer within " + durationText(timeoutMs);
    do {
        if (::connect(fd, reinterpret_cast<const sockaddr *>(&rt.address), rt.addressLength) != 0 &&
            errno != EINPROGRESS) {
            why = errno == ECONNREFUSED ? "connection refused" : std::strerror(errno);
            break;
        }
        if (!waitFor(POLLOUT)) {
            why = "no connection within " + durationText(timeoutMs);
            break;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            why = err == ECONNREFUSED ? "connection refused" : std::strerror(err);
            break;
        }
        const QByteArray request = "GET " + shared->config.health.path.toUtf8() +
                                   " HTTP/1.1\r\nHost: " + rt.key.toUtf8() +
                                   "\r\nUser-Agent: corral-health\r\nConnection: close\r\n\r\n";
        if (::send(fd, request.constData(), size_t(request.size()), MSG_NOSIGNAL) !=
            request.size()) {
            why = std::strerror(errno);
            break;
        }
        char buf[64];
        size_t got = 0;
        bool closed = false;
        while (got < 12 && waitFor(POLLIN)) {
            const ssize_t n = ::recv(fd, buf + got, sizeof buf - got, 0);
            if (n <= 0) {
                closed = true;
                break;
            }
            got += size_t(n);
        }
        const int status = http::statusOf(std::string_view(buf, got));
        ok = status >= 200 && status < 300;
        if (status && !ok)
            why = "answered " + std::to_string(status);
        else if (!status)
            why = got ? "answered something other than HTTP"
                      : (closed ? "closed the connection without answering" : timedOut);
    } while (false);
    ::close(fd);
    return ok;
}

void ProxyEngine::Impl::healthLoop() {
    const HealthCheckConfig &h = shared->config.health;
    std::unique_lock lock(healthMutex);
    while (!healthStop) {
        lock.unlock();
        std::vector<std::shared_ptr<BackendRuntime>> list;
        {
            std::lock_guard l(shared->mutex);
            list = shared->backends;
        }
        bool changed = false;
        std::string why;
        for (auto &rt : list) {
            if (!rt->enabled.load()) continue;
            if (probe(*rt, why)) {
                rt->healthFailures = 0;
                if (rt->healthDown.load() && ++rt->healthSuccesses >= h.rises) {
                    rt->healthDown = false;
                    rt->downUntilMs = 0;
                    rt->passiveDown = false; // this "up" covers a passive "down" too
                    changed = true;
                    shared->pushEvent(rt->label, BackendEvent::Up,
                                      std::to_string(h.rises) + " successful health checks");
                }
            } else {
                rt->healthSuccesses = 0;
                if (!rt->healthDown.load() && ++rt->healthFailures >= h.falls) {
                    rt->healthDown = true;
                    changed = true;
                    shared->pushEvent(rt->label, BackendEvent::Down,
                                      std::to_string(h.falls) + " failed health checks (" + why +
                                          ")");
                }
            }
        }
        if (changed) publish();
        lock.lock();
        healthWake.wait_for(lock, std::chrono::milliseconds(h.intervalMs),
                            [&] { return healthStop; });
    }
}

} // namespace corral
