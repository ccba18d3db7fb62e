#pragma once

// What the proxy writes itself: the request head it sends a backend, the response head it
// sends the client, and its own error responses. Pure functions from inputs to bytes in the
// caller's buffer: no sockets, no allocation (the hot path calls them once per request).
// Each returns the length written, or 0 when the result would not fit in `capacity`.

#include "http/HttpParser.h"
#include "proxy/ProxyInternal.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace corral::proxy {

/// Appends text to a buffer while it fits; `ok` turns false on the first that does not.
struct HeadBuilder {
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

/// The request head for the backend: origin-form target, Host first, X-Forwarded-For with
/// every value the client sent followed by `clientIp`, the client's other headers minus
/// hop-by-hop ones and the X-Forwarded-* / X-Real-IP it sent, then Corral's own
/// X-Real-IP, X-Forwarded-Proto (https when the client came over TLS) and X-Forwarded-Host,
/// and the connection headers (upgrade, or keep-alive to an HTTP/1.0 request).
uint32_t writeRequestHead(const http::RequestHead &request, std::string_view clientIp, char *out,
                          uint32_t capacity, bool https = false);

/// What gzip does to a response head (proxy/Compression.h decides).
enum class GzipHead : uint8_t {
    Untouched,
    /// Sent as it is, but its form depends on Accept-Encoding: Vary says so to caches.
    VaryOnly,
    /// Compressed: Content-Length goes (chunked for HTTP/1.1 clients), Content-Encoding: gzip,
    /// a strong ETag becomes weak (the bytes differ from the identity's), Accept-Ranges goes,
    /// Vary.
    Encoded,
};

struct ResponseHeadOptions {
    bool http10 = false;       ///< the client spoke HTTP/1.0
    bool keepAlive = true;     ///< the client's connection stays open after this response
    std::string_view stickyId; ///< non-empty: set the CORRALID cookie to it
    GzipHead gzip = GzipHead::Untouched;
};

/// The response head for the client, rewritten from the backend's (final, not 1xx other than
/// 101): the client's HTTP version, hop-by-hop headers dropped (a 101 keeps Upgrade and
/// Connection), Content-Length dropped when Transfer-Encoding frames the body, the sticky
/// cookie, the Connection header the client's connection needs, and gzip's changes.
uint32_t writeResponseHead(const http::ResponseHead &response, const ResponseHeadOptions &options,
                           char *out, uint32_t capacity);

/// Why a failed request was not retried; None: it could have been, nothing else was usable.
enum class NoRetry : uint8_t { None, Final, NotIdempotent, BodySent, Exhausted };

/// The backend attempt a 502/504 reports.
struct FailedAttempt {
    std::string_view backend; ///< its label, "127.0.0.1:3000"
    FailReason why = FailReason::None;
    bool midHead = false; ///< some of the response head had arrived
    NoRetry noRetry = NoRetry::None;
};

/// Why a backend took no request, for "no backend is up" answers.
enum class BackendCondition : uint8_t { Disabled, Draining, FailsHealthChecks, Failed, Down };

struct BackendStatus {
    std::string_view backend;
    BackendCondition condition = BackendCondition::Down;
    FailReason lastFailure = FailReason::None; ///< for Failed
};

/// What a 502/504 says about its cause: the failed attempt if there was one, otherwise the
/// state of the backends that were not usable (`configured`: how many there are at all).
struct ErrorCause {
    const FailedAttempt *attempt = nullptr;
    std::span<const BackendStatus> unusable;
    size_t configured = 0;
};

/// How many unusable backends a "no backend is up" answer names at the most.
inline constexpr size_t MaxListedBackends = 4;

/// A complete error response with a text/plain body. 502 and 504 say what went wrong (which
/// backend, what it did, why it was not retried) to a client on this machine only; every
/// other client, and every other status, gets the reason phrase. `close` adds
/// "Connection: close".
uint32_t writeErrorResponse(int status, bool close, std::string_view clientIp,
                            const ErrorCause &cause, const ProxyConfig &config, char *out,
                            uint32_t capacity);

/// Said to a client accepted over the connection limit, before closing it.
inline constexpr std::string_view TooManyConnectionsResponse =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
    "too many connections\n";

/// Whether error details may be shown to a client at `ip` (a loopback address).
bool isLoopback(std::string_view ip);

} // namespace corral::proxy
