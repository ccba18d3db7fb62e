#pragma once

// Plain C++ HTTP/1.1 head parsing for the proxy's hot path: no Qt, no allocation once the
// header vector has grown to its working size. Strict on purpose: anything that two HTTP
// implementations could frame differently is rejected (request smuggling). The body a head
// announces is followed by BodyFramer (http/BodyFramer.h).

#include "http/HeaderText.h" // equalsIgnoreCase and the other header text rules

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace corral::http {

/// Headers the proxy looks at or rewrites; everything else is passed through as Other.
enum class HeaderId : uint8_t {
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    TE,
    Trailer,
    Upgrade,
    ProxyPrefixed, ///< Proxy-Connection, Proxy-Authorization, ...: hop-by-hop
    Expect,
    Cookie,
    Authorization,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XRealIp,
    // Read (never rewritten) by static serving, gzip and the access log: recorded in
    // RequestHead by the parse. To Connection they are end-to-end headers like Other.
    AcceptEncoding,
    Range,
    IfRange,
    IfNoneMatch,
    IfModifiedSince,
    Referer,
    UserAgent,
};

struct Header {
    std::string_view name;
    std::string_view value;
    HeaderId id = HeaderId::Other;
};

struct HeadLimits {
    size_t maxRequestLine = 8192;
    size_t maxHeaderBytes = 16384;
    size_t maxHeaders = 100;
};

enum class BodyKind : uint8_t { None, Length, Chunked, UntilClose };

/// Where the end of a head is: scanned incrementally as bytes arrive.
struct HeadScanner {
    size_t scanned = 0;
    void reset() { scanned = 0; }
    /// Returns the head's length including the final CRLFCRLF, 0 while incomplete, or -1 on
    /// a bare LF (a line ending that other parsers might read differently).
    long scan(const char *data, size_t size);
};

/// Connection tokens other than close/keep-alive/upgrade name extra hop-by-hop headers.
static constexpr size_t MaxConnectionTokens = 16;

struct MessageHead {
    std::vector<Header> headers;
    int minor = 1; ///< HTTP/1.minor
    BodyKind body = BodyKind::None;
    uint64_t contentLength = 0;
    bool connectionClose = false;
    bool connectionKeepAlive = false;
    bool connectionUpgrade = false;
    std::string_view upgrade;
    std::string_view connectionTokens[MaxConnectionTokens];
    size_t connectionTokenCount = 0;

    /// True when `header` must not be forwarded (hop-by-hop, or named by Connection).
    /// Connection may name only headers the proxy does not interpret: never Host,
    /// Content-Length, Authorization, Cookie or the X-Forwarded-* / X-Real-IP set by Corral
    /// (a client must not strip what the backend relies on, nor the framing).
    bool isHopByHop(const Header &header) const;
    /// Whether the sender wants the connection kept open after this message.
    bool keepAlive() const { return minor >= 1 ? !connectionClose : connectionKeepAlive; }
};

struct RequestHead : MessageHead {
    std::string_view method;
    /// Origin form ("/x?y"). For an absolute-form target ("http://a/x?y") the part after the
    /// authority, possibly empty or starting with '?': the proxy forwards it behind a '/'.
    std::string_view target;
    /// The Host header, or an absolute-form target's authority (RFC 9112 3.2.2).
    std::string_view host;
    std::string_view cookie; ///< first Cookie header (the one browsers send)
    std::string_view forwardedFor;
    // The headers static serving, gzip and the access log read, recorded here so that none of
    // them looks for a name again. Repeated: the first Referer and User-Agent (what the access
    // log shows); the last Range, If-Range, If-None-Match and If-Modified-Since (what static
    // serving evaluates); every Accept-Encoding counts (proxy::requestAcceptsGzip).
    std::string_view acceptEncoding;     ///< the first Accept-Encoding
    bool acceptEncodingRepeated = false; ///< there are more: their values are in `headers`
    std::string_view range;
    std::string_view ifRange;
    std::string_view ifNoneMatch;
    std::string_view ifModifiedSince;
    std::string_view referer;
    std::string_view userAgent;
    bool expectContinue = false;
    bool isHead = false;
    bool isIdempotent = false; ///< RFC 9110 9.2.2: GET HEAD OPTIONS TRACE PUT DELETE
    bool absoluteForm = false;
    bool wantsUpgrade() const { return connectionUpgrade && !upgrade.empty(); }
};

struct ResponseHead : MessageHead {
    int status = 0;
    std::string_view reason;
    /// Transfer-Encoding frames the body: any Content-Length is not forwarded (RFC 9112 6.1).
    bool framedByTransferEncoding = false;
};

/// parseResponse()'s failures.
inline constexpr int ResponseMalformed = -1;
/// A transfer coding other than "chunked" alone: the proxy cannot re-frame it.
inline constexpr int ResponseUnsupportedCoding = -2;

/// Parses a complete request head (as found by HeadScanner, CRLFCRLF included). Returns 0 on
/// success or the HTTP status to answer with: 400, 414, 431, 501, 505.
int parseRequest(const char *data, size_t size, const HeadLimits &limits, RequestHead &out);

/// Parses a complete response head. Returns 0 on success, ResponseMalformed when it is
/// malformed or its framing is ambiguous, ResponseUnsupportedCoding for a body framed by a
/// transfer coding other than chunked (the proxy answers 502 to both). `requestWasHead`
/// selects "no body".
int parseResponse(const char *data, size_t size, bool requestWasHead, size_t maxHeaders,
                  ResponseHead &out);

/// The status code of a response that starts `text` ("HTTP/1.1 503 Busy\r\n...", or just its
/// first 12 bytes), 0 when it is not one: for a probe that reads no further than the status.
int statusOf(std::string_view text);
/// Finds `name`'s value in a Cookie header ("a=1; CORRALID=x; b=2").
std::string_view cookieValue(std::string_view cookieHeader, std::string_view name);

} // namespace corral::http
