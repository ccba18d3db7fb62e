#pragma once

#include "model/Backend.h"
#include "model/Site.h"
#include "proxy/AdminClient.h"
#include "util/LatencyHistogram.h"
#include "util/Result.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace corral {

/// Limits that protect the proxy from slow or hostile clients. Every one has a default.
struct ProxyLimits {
    int maxRequestLine = 8192;      ///< bytes; longer: 414
    int maxHeaderBytes = 16384;     ///< whole request head; larger: 431
    int maxHeaders = 100;           ///< header lines; more: 431
    int headerTimeoutMs = 10000;    ///< to receive a whole request head (slowloris)
    int bodyTimeoutMs = 60000;      ///< between two reads of a request body
    int keepAliveTimeoutMs = 60000; ///< idle client connection between requests
    int tunnelTimeoutMs = 3600000;  ///< idle WebSocket/upgraded tunnel
    /// Client connections; excess get 503 and are closed. Lowered at start to what
    /// RLIMIT_NOFILE allows (a proxied connection needs two descriptors).
    int maxConnections = 20000;
    int bufferSize = 16384;    ///< per-direction buffer; bounds memory per connection
    int maxIdleUpstream = 256; ///< idle keep-alive connections per backend per thread
    int upstreamIdleTimeoutMs = 30000;
    /// A client that takes none of its response for this long is closed; the backend is
    /// not blamed (it is not even timed while the proxy waits on the client).
    int sendTimeoutMs = 60000;
    /// A response body with at least this many bytes still to come (Content-Length framed)
    /// goes from the backend's socket to the client's through a pipe with splice(2), never
    /// through the proxy's memory; 0: always copy. Off by default: on loopback it cut the
    /// proxy's CPU per 256 KiB response by a fifth but cost the client more than it saved
    /// (tests/bench/proxy.sh: 0.92x HAProxy's req/s spliced, 1.16x copied).
    int spliceMinBytes = 0;
};

/// Active health checks: GET `path` every `intervalMs`; disabled when `path` is empty.
struct HealthCheckConfig {
    QString path;
    int intervalMs = 2000;
    int timeoutMs = 1000;
    int rises = 2; ///< consecutive successes to come back
    int falls = 3; ///< consecutive failures to go down
};

/// Files the proxy serves itself, before the backends: nginx's `root DIR; try_files $uri
/// @backend` for GET and HEAD. Off while `root` is empty.
struct StaticFilesConfig {
    QString root;                ///< absolute directory; empty: every request goes to a backend
    bool followSymlinks = false; ///< a symlink leading out of `root` is refused unless set
    QString cacheControl;        ///< the Cache-Control of served files; empty: none sent
    /// Files at least this large are opened and read on a small thread pool, so a slow disk
    /// never stalls an event loop; smaller ones go out with sendfile(2) from the loop.
    qint64 offloadMinBytes = 1024 * 1024;
};

/// gzip for responses from backends and static files (nginx `gzip on; gzip_types ...`).
struct CompressionConfig {
    bool gzip = true;
    int level = 1;        ///< zlib level, nginx's gzip_comp_level default
    int minLength = 1024; ///< smaller bodies (by Content-Length) go out as they are
    /// Media types compressed besides text/html (always, as nginx does): the seed's list
    /// and the other text types a site sends.
    QStringList types = defaultTypes();
    static QStringList defaultTypes() {
        return {QStringLiteral("text/css"),
                QStringLiteral("text/javascript"),
                QStringLiteral("text/plain"),
                QStringLiteral("text/xml"),
                QStringLiteral("application/javascript"),
                QStringLiteral("application/json"),
                QStringLiteral("application/xml"),
                QStringLiteral("image/svg+xml"),
                QStringLiteral("application/vnd.ms-fontobject"),
                QStringLiteral("application/x-font-ttf")};
    }
};

/// One line per request, nginx's combined format plus the upstream's address and status,
/// the request time and the upstream response time.
struct AccessLogConfig {
    QString path; ///< empty: off; "-": standard output; else a file, appended
    /// A file is rotated as worker logs are (RotatingLog): PATH.1 .. PATH.keep once PATH
    /// would grow past maxBytes.
    qint64 maxBytes = 10 * 1024 * 1024;
    int keep = 3;
};

/// HTTPS on the listening address (OpenSSL, TLS 1.2 and later, ALPN http/1.1).
struct TlsConfig {
    bool enabled = false;
    QString certFile;      ///< PEM chain; empty (with keyFile empty): issued by the local dev CA
    QString keyFile;       ///< PEM private key
    QStringList hostNames; ///< names the dev CA's certificate covers besides localhost, 127.0.0.1
    QString redirectHttpListen; ///< "HOST:PORT" answering 301 to https://; empty: none
};

struct ProxyConfig {
    QString listenAddress = QStringLiteral("127.0.0.1");
    quint16 listenPort = 0; ///< 0: an ephemeral port (see ProxyEngine::port())
    int threads = 0;        ///< event-loop threads; 0: one per core
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    QList<Backend> backends;
    ProxyLimits limits;
    HealthCheckConfig health;
    int maxFails = 1;          ///< passive health: failures within failTimeout mark it down
    int failTimeoutMs = 10000; ///< ... for this long
    int connectTimeoutMs = 5000;
    /// The backend's inactivity while the proxy waits on it (to take request bytes, or for
    /// response bytes the client has room for): 504, or a cut response once it started.
    int responseTimeoutMs = 60000;
    /// Other backends a failed request may be retried on once its bytes reached a backend
    /// (idempotent requests only; never once a response byte arrived). Failures before
    /// anything was sent (refused, connect timeout) move on without counting.
    int retries = 1;
    static constexpr int MaxRetries = Site::MaxRetries;
    /// Admin HTTP API. `adminListen`: "" for the default Unix socket
    /// ($XDG_RUNTIME_DIR/corral/proxy-PID.sock), "unix:PATH", or a loopback "HOST:PORT"
    /// (port 0: ephemeral) whose requests need the bearer token of its token file.
    bool adminEnabled = false;
    QString adminListen;

    StaticFilesConfig staticFiles;
    CompressionConfig compression;
    AccessLogConfig accessLog;
    TlsConfig tls;
};

enum class BackendState { Up, Down, Draining, Disabled };
QString backendStateName(BackendState state);

struct BackendStats {
    Backend backend;
    QString id; ///< the opaque sticky-cookie id
    BackendState state = BackendState::Up;
    uint64_t requests = 0;
    int64_t inFlight = 0;
    uint64_t responses[4] = {}; ///< 2xx, 3xx, 4xx, 5xx (5xx includes the proxy's own 502/504)
    uint64_t bytesIn = 0;       ///< received from the backend
    uint64_t bytesOut = 0;      ///< sent to the backend
    uint64_t failovers = 0;     ///< requests moved to another backend after a failure here
    uint64_t failures = 0;      ///< connect errors, resets, timeouts
    double p50Ms = 0, p90Ms = 0, p99Ms = 0;
    LatencyHistogram latency;  ///< response times (request head to last response byte)
    uint64_t latencySumUs = 0; ///< their sum, for Prometheus' _sum
};

/// A backend's state change, as `corralctl proxy` logs it.
struct BackendEvent {
    enum Kind { Down, Up, Drained };
    QString backend; ///< HOST:PORT
    Kind kind = Down;
    QString reason;
    /// "backend 127.0.0.1:3001 down: 3 failed health checks (connection refused)"
    QString toString() const;
};

struct ProxyStats {
    QList<BackendStats> backends;
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    uint64_t connectionsAccepted = 0;
    int64_t connectionsOpen = 0;
    uint64_t connectionsRejected = 0; ///< over maxConnections
    uint64_t badRequests = 0;         ///< answered 400/414/431/501/505
    uint64_t noBackend = 0;           ///< answered 502 with no backend tried (none was usable)
    uint64_t accessLogLines = 0;      ///< access log lines written
    uint64_t accessLogDropped = 0;    ///< access log lines lost: its writer fell behind
};

/// Corral's embedded HTTP/1.1 load balancer. Its event-loop threads run plain epoll code;
/// this class is the thread-safe control surface (any thread may call it).
class ProxyEngine {
public:
    ProxyEngine();
    ~ProxyEngine(); ///< stop()s
    ProxyEngine(const ProxyEngine &) = delete;
    ProxyEngine &operator=(const ProxyEngine &) = delete;

    /// Binds and starts the threads. Fails (and starts nothing) on a bad config or bind error.
    Result<void> start(const ProxyConfig &config);
    /// Closes everything now: open requests are cut.
    void stop();
    /// Stops accepting, lets in-flight requests finish (idle keep-alive connections are
    /// closed), then stop()s; returns false when `timeout` cut some requests.
    bool drainAndStop(std::chrono::milliseconds timeout);
    bool isRunning() const;

    quint16 port() const;         ///< the bound listening port
    quint16 adminPort() const;    ///< the admin API's TCP port; 0 when off or on a Unix socket
    quint16 redirectPort() const; ///< the HTTP -> HTTPS redirect listener's port; 0: none
    /// Where the admin API listens (socket path, or address and token file); empty when off.
    AdminEndpoint adminEndpoint() const;
    /// The client limit in force: maxConnections as lowered to fit the descriptor limit.
    int effectiveMaxConnections() const;
    int threadCount() const;

    // Hot reconfiguration: safe while serving, never drops a connection. Keys are
    // Backend::key() ("HOST:PORT").
    Result<void> addBackend(const Backend &backend);
    /// No new requests; in-flight ones finish on it; pooled connections close.
    Result<void> removeBackend(const QString &key);
    Result<void> setWeight(const QString &key, int weight);
    Result<void> enableBackend(const QString &key);
    Result<void> disableBackend(const QString &key);
    Result<void> setEnabled(const QString &key, bool enabled) {
        return enabled ? enableBackend(key) : disableBackend(key);
    }
    /// No new requests; in-flight requests and open tunnels finish; `onDrained` runs once,
    /// on an engine thread, when none is left (at once if already empty).
    /// enableBackend() ends the drain.
    Result<void> drainBackend(const QString &key, std::function<void()> onDrained = {});
    void setPolicy(BalancingPolicy policy);
    QList<Backend> backends() const;

    /// Counters summed over the threads; cheap enough to call once per UI tick.
    ProxyStats snapshot() const;
    /// The admin API's JSON for GET /stats.
    QByteArray statsJson() const;
    /// Backend state changes since the last call (down, up, drained, each with its reason),
    /// oldest first, fed by the health checks, passive failure marking and drains. Meant to
    /// be polled from a timer: requests never touch its lock, only state changes do.
    QList<BackendEvent> takeBackendEvents();

    struct Impl;

private:
    std::unique_ptr<Impl> d;
};

} // namespace corral
