#pragma once

// The objects the event loop polls: what one thread knows about each client connection and
// each connection to a backend. Plain structs: the loop owns the logic.

#include "http/BodyFramer.h"
#include "http/GzipEncoder.h"
#include "http/HttpParser.h"
#include "net/Poller.h"
#include "proxy/AccessLog.h"
#include "proxy/HeadWriter.h"
#include "proxy/ProxyInternal.h"
#include "proxy/TimerList.h"

#include <memory>
#include <netinet/in.h>

struct ssl_st; // OpenSSL's SSL, see net/TlsContext.h

namespace corral::proxy {

/// What a poller event points at; `kind` says which of the structs below it is.
enum class Kind : uint8_t { Listener, Wake, Client, Upstream };

struct Pollable {
    Kind kind;
};

/// Fixed-size byte buffer lent from a thread's BufferPool; idle connections hold none.
struct Buffer {
    char *data = nullptr;
    uint32_t begin = 0;
    uint32_t end = 0;

    uint32_t size() const { return end - begin; }
    const char *readPtr() const { return data + begin; }
    void consume(uint32_t n) {
        begin += n;
        if (begin == end) begin = end = 0;
    }
};

/// The timeouts of a connection; each is a list of the loop's TimerList.
enum TimerKind : int8_t {
    ClientHeader,
    ClientIdle,
    ClientBody,
    ClientSend, ///< the client takes none of the response waiting for it
    ClientLinger,
    UpConnect,
    UpResponse,
    UpIdle,
    TunnelIdle,
    TimerKinds
};

using Timers = TimerList<TimerKinds>;

/// What client and backend connections share: the socket, its readiness as the poller last
/// reported it (edge-triggered: a flag stays set until a read or write finds it drained), the
/// bytes buffered each way, its timer and the head being scanned in `in`.
struct Connection : Pollable {
    int fd = -1;
    bool canRead = false;
    bool canWrite = false;
    bool hangup = false;
    bool eof = false;
    bool closed = false;
    Buffer in, out;
    TimerNode timer;
    http::HeadScanner scan;

    /// Takes in a poller event; false when the connection was closed earlier in the batch
    /// (the event is stale, the object waits to be recycled).
    bool noteEvent(const net::PollEvent &ev) {
        if (closed) return false;
        if (ev.readable) canRead = true;
        if (ev.writable) canWrite = true;
        if (ev.hangup) hangup = true;
        return true;
    }
};

struct Client;

/// A connection to a backend, serving one client's request or idle in its backend's pool.
struct Upstream : Connection {
    bool connecting = false;
    bool reused = false;
    bool pooled = false;
    std::shared_ptr<BackendRuntime> runtime;
    Client *client = nullptr;
};

/// File: a static file's body goes out (proxy/EventLoopFiles.cpp); its head is in `out`.
enum class Phase : uint8_t { Head, Proxy, Tunnel, Linger, File };

/// A pipe a large response body goes through, from the backend's socket to the client's
/// with splice(2): the kernel moves the pages, the proxy never copies the bytes.
struct SplicePipe {
    int readFd = -1;
    int writeFd = -1;
    uint32_t capacity = 0;
    uint32_t bytes = 0; ///< in the pipe, not yet sent to the client

    bool open() const { return readFd >= 0; }
};

/// A static file's body on its way to the client: sendfile(2) from `fd`, or pread into
/// `out` on the copy path. A large file is read ahead on the FileReaderPool first: only
/// [offset, readyEnd) is known to be in the page cache.
struct FileBody {
    int fd = -1;
    uint64_t offset = 0;   ///< the next byte to send
    uint64_t end = 0;      ///< one past the last byte to send
    uint64_t readyEnd = 0; ///< offload: read ahead up to here
    uint64_t ticket = 0;   ///< offload: the read in flight (it owns `fd` meanwhile); 0: none
    bool offload = false;
};

struct Client : Connection {
    Client() { canWrite = true; } // nothing is queued yet in a new socket's send buffer

    Phase phase = Phase::Head;
    bool servedOne = false;
    bool closeAfter = false;       ///< close once the current response is out
    bool clientClose = false;      ///< the request said "close": no more bytes will follow it
    bool closeWhenFlushed = false; ///< Linger without lingering: close once `out` is sent
    Buffer head;                   ///< the rewritten request head, kept for a retry
    Upstream *up = nullptr;
    ssl_st *ssl = nullptr; ///< the TLS session on an HTTPS listener; null: plain HTTP
    size_t slot = 0;       ///< index in the loop's list of open clients

    // The request in flight.
    http::BodyFramer req; ///< its body, client -> backend
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
    /// written, in the same call (the loop's backend list keeps it alive that long); never
    /// read later.
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
    http::BodyFramer resp;      ///< its body, backend -> client
    SplicePipe pipe;            ///< open while the body is spliced
    bool respDone = false;      ///< the response was sent whole (or an error in its place)
    bool respKeepAlive = false; ///< the backend's connection may serve another request
    int status = 0;
    bool acceptsGzip = false;   ///< the request's Accept-Encoding does (read while gzip is on)
    /// Lent while the body is compressed (proxy/Compression.h).
    http::GzipEncoder *gzip = nullptr;
    FileBody file; ///< open while a static file's body goes out
    /// Static file bodies go by pread into `out` (then out like any response bytes), not by
    /// sendfile(2): for whatever must see the bytes (TLS, gzip). Set per client.
    bool useCopyPath = false;

    char ip[INET6_ADDRSTRLEN] = {};
    uint8_t ipLength = 0;
    AccessLogRequest log; ///< the access log's view of the request; untouched while it is off
    uint64_t addressHash = 0;

    std::string_view address() const { return std::string_view(ip, ipLength); }
};

} // namespace corral::proxy
