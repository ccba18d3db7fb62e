#include "http/HttpParser.h"

#include <cstring>
#include <iterator>

namespace corral::http {

namespace {

// Character classes, one table lookup per byte on the hot path.
enum : uint8_t { TokenChar = 1, ValueChar = 2 };

// RFC 9110 token characters (header names, methods); field values: visible characters, SP,
// HTAB and obs-text, no other controls.
constexpr uint8_t classOf(unsigned char c) {
    uint8_t k = 0;
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) k |= TokenChar;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        k |= TokenChar;
        break;
    default:
        break;
    }
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) k |= ValueChar;
    return k;
}

struct CharTable {
    uint8_t v[256];
    constexpr CharTable()
        : v() {
        for (int i = 0; i < 256; ++i)
            v[i] = classOf(static_cast<unsigned char>(i));
    }
};
constexpr CharTable kChars;

inline bool isTchar(unsigned char c) {
    return kChars.v[c] & TokenChar;
}

// The first byte at or after `p` that may not appear in a field value (CR ends a valid
// line), or nullptr if there is none before `end`. Eight bytes at a time: a word with no
// byte below 0x20 and none equal to 0x7f is all value (HTAB takes the byte-wise path).
inline const char *valueEnd(const char *p, const char *end) {
    constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (;;) {
        if (end - p >= 8) {
            uint64_t x;
            std::memcpy(&x, p, 8);
            const uint64_t y = x ^ (ones * 0x7f);
            if (!(((x - ones * 0x20) & ~x & highs) | ((y - ones) & ~y & highs))) {
                p += 8;
                continue;
            }
            for (const char *stop = p + 8; p < stop; ++p)
                if (!(kChars.v[static_cast<unsigned char>(*p)] & ValueChar)) return p;
            continue;
        }
        for (; p < end; ++p)
            if (!(kChars.v[static_cast<unsigned char>(*p)] & ValueChar)) return p;
        return nullptr;
    }
}

// Case-insensitive comparison of the first lower.size() bytes of `name` against `lower`, a
// lowercase name of letters and '-'. Exact for token characters (the only ones a header name
// may hold): c | 0x20 maps only 'A'-'Z' onto 'a'-'z', and only '-' (and CR, never in a token)
// onto '-'.
inline bool startsWithName(std::string_view name, std::string_view lower) {
    for (size_t i = 0; i < lower.size(); ++i)
        if ((static_cast<unsigned char>(name[i]) | 0x20) != static_cast<unsigned char>(lower[i]))
            return false;
    return true;
}

struct KnownHeader {
    std::string_view name;
    HeaderId id;
};
// The headers the proxy interprets, shortest first: a name is compared only with those of its
// own length, at most three, and most comparisons end at the first byte.
constexpr KnownHeader kKnownHeaders[] = {
    {"te", HeaderId::TE},
    {"host", HeaderId::Host},
    {"range", HeaderId::Range},
    {"expect", HeaderId::Expect},
    {"cookie", HeaderId::Cookie},
    {"trailer", HeaderId::Trailer},
    {"upgrade", HeaderId::Upgrade},
    {"referer", HeaderId::Referer},
    {"if-range", HeaderId::IfRange},
    {"x-real-ip", HeaderId::XRealIp},
    {"connection", HeaderId::Connection},
    {"keep-alive", HeaderId::KeepAlive},
    {"user-agent", HeaderId::UserAgent},
    {"authorization", HeaderId::Authorization},
    {"if-none-match", HeaderId::IfNoneMatch},
    {"content-length", HeaderId::ContentLength},
    {"x-forwarded-for", HeaderId::XForwardedFor},
    {"accept-encoding", HeaderId::AcceptEncoding},
    {"x-forwarded-host", HeaderId::XForwardedHost},
    {"transfer-encoding", HeaderId::TransferEncoding},
    {"x-forwarded-proto", HeaderId::XForwardedProto},
    {"if-modified-since", HeaderId::IfModifiedSince},
};
constexpr size_t kLongestKnownHeader = 17;

// first[n]: the index of the first known header at least n long.
struct KnownHeadersByLength {
    uint8_t first[kLongestKnownHeader + 2];
    constexpr KnownHeadersByLength()
        : first() {
        size_t k = 0;
        for (size_t n = 0; n < std::size(first); ++n) {
            while (k < std::size(kKnownHeaders) && kKnownHeaders[k].name.size() < n)
                ++k;
            first[n] = static_cast<uint8_t>(k);
        }
    }
};
constexpr KnownHeadersByLength kByLength;

constexpr bool knownHeadersSorted() {
    for (size_t i = 1; i < std::size(kKnownHeaders); ++i)
        if (kKnownHeaders[i - 1].name.size() > kKnownHeaders[i].name.size()) return false;
    return kKnownHeaders[std::size(kKnownHeaders) - 1].name.size() == kLongestKnownHeader;
}
static_assert(knownHeadersSorted(), "kKnownHeaders: shortest first, the last kLongestKnownHeader");

HeaderId classify(std::string_view name) {
    if (name.size() <= kLongestKnownHeader) {
        for (size_t i = kByLength.first[name.size()]; i < kByLength.first[name.size() + 1]; ++i)
            if (startsWithName(name, kKnownHeaders[i].name)) return kKnownHeaders[i].id;
    }
    if (name.size() > 6 && startsWithName(name, "proxy-")) return HeaderId::ProxyPrefixed;
    return HeaderId::Other;
}

// Content-Length: digits only, no sign, no overflow; a list of equal values is one value.
bool parseContentLength(std::string_view value, uint64_t &out, bool &seen) {
    bool ok = true;
    bool any = false;
    forEachToken(value, [&](std::string_view token) {
        any = true;
        const std::optional<uint64_t> n = parseDecimal(token);
        if (!n || (seen && *n != out)) {
            ok = false;
            return;
        }
        out = *n;
        seen = true;
    });
    return ok && any;
}

// Parses the header lines of a head starting at `p` (just after the start line). Shared by
// requests and responses; `strict` (requests) rejects anything ambiguous.
int parseHeaders(const char *p, const char *end, size_t maxHeaders, MessageHead &out,
                 bool &sawContentLength, bool &sawTransferEncoding, bool &chunkedLast,
                 int &hostCount) {
    out.headers.clear();
    while (p < end) {
        if (*p == '\r') return p + 1 < end && p[1] == '\n' ? 0 : 400; // the empty line
        if (*p == ' ' || *p == '\t') return 400;                      // obs-fold
        const char *colon = p;
        while (colon < end && isTchar(static_cast<unsigned char>(*colon)))
            ++colon;
        if (colon == p || colon >= end || *colon != ':') return 400; // bad name or space before ':'
        // One pass finds the line's end and checks the value: the first byte that is not a
        // value character must be the CR of a CRLF (a bare LF or a control is rejected).
        const char *eol = valueEnd(colon + 1, end);
        if (!eol || *eol != '\r' || eol + 1 >= end || eol[1] != '\n') return 400;
        if (out.headers.size() >= maxHeaders) return 431;
        Header h;
        h.name = std::string_view(p, size_t(colon - p));
        h.value = trimWhitespace(std::string_view(colon + 1, size_t(eol - colon - 1)));
        h.id = classify(h.name);
        switch (h.id) {
        case HeaderId::ContentLength:
            if (!parseContentLength(h.value, out.contentLength, sawContentLength)) return 400;
            break;
        case HeaderId::TransferEncoding:
            sawTransferEncoding = true;
            forEachToken(h.value, [&](std::string_view token) {
                chunkedLast = equalsIgnoreCase(token, "chunked");
            });
            break;
        case HeaderId::Connection:
            forEachToken(h.value, [&](std::string_view token) {
                if (equalsIgnoreCase(token, "close"))
                    out.connectionClose = true;
                else if (equalsIgnoreCase(token, "keep-alive"))
                    out.connectionKeepAlive = true;
                else if (equalsIgnoreCase(token, "upgrade"))
                    out.connectionUpgrade = true;
                else if (out.connectionTokenCount < MaxConnectionTokens)
                    out.connectionTokens[out.connectionTokenCount++] = token;
            });
            break;
        case HeaderId::Upgrade:
            out.upgrade = h.value;
            break;
        case HeaderId::Host:
            ++hostCount;
            break;
        default:
            break;
        }
        out.headers.push_back(h);
        p = eol + 2;
    }
    return 400;
}

// Authority characters of RFC 3986 without userinfo ('@'): host, IP literal, port.
bool isAuthorityChar(unsigned char c) {
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '%':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '[':
    case ']':
        return true;
    default:
        return false;
    }
}

// "http://authority/rest" or "https://authority?rest": the scheme must be http(s) (any
// case), the authority non-empty and without userinfo. `rest` is what follows it.
bool splitAbsoluteForm(std::string_view target, std::string_view &authority,
                       std::string_view &rest) {
    const size_t colon = target.find("://");
    if (colon == std::string_view::npos) return false;
    const std::string_view scheme = target.substr(0, colon);
    if (!equalsIgnoreCase(scheme, "http") && !equalsIgnoreCase(scheme, "https")) return false;
    const std::string_view afterScheme = target.substr(colon + 3);
    size_t end = 0;
    while (end < afterScheme.size() && afterScheme[end] != '/' && afterScheme[end] != '?') {
        if (!isAuthorityChar(static_cast<unsigned char>(afterScheme[end]))) return false;
        ++end;
    }
    if (end == 0) return false;
    authority = afterScheme.substr(0, end);
    rest = afterScheme.substr(end);
    return true;
}

// HTTP/1.x SP 3DIGIT [SP reason]: the version, a status from 100 to 999 and the reason.
bool parseStatusLine(std::string_view line, ResponseHead &out) {
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
    if (line[7] != '0' && line[7] != '1') return false;
    out.minor = line[7] - '0';
    const std::optional<uint64_t> status = parseDecimal(line.substr(9, 3));
    if (!status || *status < 100) return false;
    out.status = int(*status);
    if (line.size() > 12) {
        if (line[12] != ' ') return false;
        out.reason = line.substr(13);
    }
    return true;
}

void resetHead(MessageHead &h) {
    h.minor = 1;
    h.body = BodyKind::None;
    h.contentLength = 0;
    h.connectionClose = h.connectionKeepAlive = h.connectionUpgrade = false;
    h.upgrade = {};
    h.connectionTokenCount = 0;
}

} // namespace

std::string_view cookieValue(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        const size_t semi = header.find(';');
        std::string_view pair = trimWhitespace(header.substr(0, semi));
        if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
            pair[name.size()] == '=')
            return pair.substr(name.size() + 1);
        if (semi == std::string_view::npos) break;
        header.remove_prefix(semi + 1);
    }
    return {};
}

bool MessageHead::isHopByHop(const Header &h) const {
    switch (h.id) {
    case HeaderId::Connection:
    case HeaderId::KeepAlive:
    case HeaderId::TE:
    case HeaderId::Trailer:
    case HeaderId::Upgrade:
    case HeaderId::ProxyPrefixed:
    case HeaderId::TransferEncoding: // re-framed by the proxy, never forwarded blindly
        return true;
    case HeaderId::Other:
    case HeaderId::AcceptEncoding: // only read: a client may name them as it could before
    case HeaderId::Range:
    case HeaderId::IfRange:
    case HeaderId::IfNoneMatch:
    case HeaderId::IfModifiedSince:
    case HeaderId::Referer:
    case HeaderId::UserAgent:
        break;
    default:
        return false; // interpreted or set by the proxy: Connection cannot remove it
    }
    for (size_t i = 0; i < connectionTokenCount; ++i)
        if (equalsIgnoreCase(connectionTokens[i], h.name)) return true;
    return false;
}

int statusOf(std::string_view text) {
    ResponseHead head;
    return parseStatusLine(text.substr(0, text.find('\r')), head) ? head.status : 0;
}

long HeadScanner::scan(const char *data, size_t size) {
    // Resume a few bytes back so a CRLFCRLF split across reads is still found.
    size_t i = scanned;
    while (i < size) {
        const void *nl = std::memchr(data + i, '\n', size - i);
        if (!nl) {
            scanned = size;
            return 0;
        }
        const size_t at = size_t(static_cast<const char *>(nl) - data);
        if (at == 0 || data[at - 1] != '\r') return -1;
        if (at >= 3 && data[at - 2] == '\n' && data[at - 3] == '\r') return long(at + 1);
        i = at + 1;
    }
    scanned = size;
    return 0;
}

int parseRequest(const char *data, size_t size, const HeadLimits &limits, RequestHead &out) {
    resetHead(out);
    out.method = out.target = out.host = out.cookie = out.forwardedFor = {};
    out.acceptEncoding = out.range = out.ifRange = out.ifNoneMatch = out.ifModifiedSince = {};
    out.referer = out.userAgent = {};
    out.acceptEncodingRepeated = false;
    out.expectContinue = out.isHead = out.isIdempotent = out.absoluteForm = false;
    out.headers.clear();
    if (size > limits.maxHeaderBytes) return 431;
    const char *p = data;
    const char *end = data + size;
    const char *eol = static_cast<const char *>(std::memchr(p, '\r', size));
    if (!eol || eol + 1 >= end || eol[1] != '\n') return 400;
    if (size_t(eol - p) > limits.maxRequestLine) return 414;
    // METHOD SP request-target SP HTTP/1.x
    const char *m = p;
    while (m < eol && isTchar(static_cast<unsigned char>(*m)))
        ++m;
    if (m == p || m >= eol || *m != ' ') return 400;
    out.method = std::string_view(p, size_t(m - p));
    const char *t = m + 1;
    const char *te = t;
    while (te<eol &&static_cast<unsigned char>(*te)> 0x20 && *te != 0x7f)
        ++te;
    if (te == t || te >= eol || *te != ' ') return 400;
    out.target = std::string_view(t, size_t(te - t));
    const std::string_view version(te + 1, size_t(eol - te - 1));
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/") return 400;
    if (version[5] != '1' || version[6] != '.') return 505;
    if (version[7] == '1')
        out.minor = 1;
    else if (version[7] == '0')
        out.minor = 0;
    else
        return 505;
    // Origin form, absolute form or OPTIONS *; CONNECT (authority form) is not proxied.
    if (out.method == "CONNECT") return 501;
    std::string_view authority;
    if (out.target[0] != '/' && !(out.method == "OPTIONS" && out.target == "*")) {
        if (!splitAbsoluteForm(out.target, authority, out.target)) return 400;
        out.absoluteForm = true;
    }

    bool sawCl = false, sawTe = false, chunkedLast = false;
    int hostCount = 0;
    const int rc =
        parseHeaders(eol + 2, end, limits.maxHeaders, out, sawCl, sawTe, chunkedLast, hostCount);
    if (rc) return rc;
    if (out.minor == 1 && hostCount != 1) return 400;
    if (hostCount > 1) return 400;
    if (sawTe) {
        // Both framings at once, chunked not last, or chunked from an HTTP/1.0 client:
        // each is a known smuggling vector.
        if (sawCl || out.minor == 0) return 400;
        if (!chunkedLast) return 400;
        // Only "chunked" alone: other codings are not implemented by the proxy.
        for (const Header &h : out.headers)
            if (h.id == HeaderId::TransferEncoding && !equalsIgnoreCase(h.value, "chunked"))
                return 501;
        out.body = BodyKind::Chunked;
    } else if (sawCl) {
        out.body = out.contentLength ? BodyKind::Length : BodyKind::None;
    }
    // "Seen" rather than "empty": an empty first value still wins over the ones after it.
    bool sawAcceptEncoding = false, sawReferer = false, sawUserAgent = false;
    for (const Header &h : out.headers) {
        switch (h.id) {
        case HeaderId::Host:
            if (!out.absoluteForm) out.host = h.value;
            break;
        case HeaderId::Cookie:
            if (out.cookie.empty()) out.cookie = h.value;
            break;
        case HeaderId::XForwardedFor:
            if (out.forwardedFor.empty()) out.forwardedFor = h.value;
            break;
        case HeaderId::Expect:
            if (equalsIgnoreCase(h.value, "100-continue")) out.expectContinue = true;
            break;
        case HeaderId::AcceptEncoding:
            if (sawAcceptEncoding)
                out.acceptEncodingRepeated = true;
            else
                out.acceptEncoding = h.value;
            sawAcceptEncoding = true;
            break;
        case HeaderId::Range:
            out.range = h.value;
            break;
        case HeaderId::IfRange:
            out.ifRange = h.value;
            break;
        case HeaderId::IfNoneMatch:
            out.ifNoneMatch = h.value;
            break;
        case HeaderId::IfModifiedSince:
            out.ifModifiedSince = h.value;
            break;
        case HeaderId::Referer:
            if (!sawReferer) out.referer = h.value;
            sawReferer = true;
            break;
        case HeaderId::UserAgent:
            if (!sawUserAgent) out.userAgent = h.value;
            sawUserAgent = true;
            break;
        default:
            break;
        }
    }
    if (out.absoluteForm) out.host = authority; // the received Host is ignored (RFC 9112 3.2.2)
    const std::string_view mth = out.method;
    out.isHead = mth == "HEAD";
    out.isIdempotent = mth == "GET" || mth == "HEAD" || mth == "PUT" || mth == "DELETE" ||
                       mth == "OPTIONS" || mth == "TRACE";
    return 0;
}

int parseResponse(const char *data, size_t size, bool requestWasHead, size_t maxHeaders,
                  ResponseHead &out) {
    resetHead(out);
    out.status = 0;
    out.reason = {};
    out.framedByTransferEncoding = false;
    const char *end = data + size;
    const char *eol = static_cast<const char *>(std::memchr(data, '\r', size));
    if (!eol || eol + 1 >= end || eol[1] != '\n') return -1;
    const std::string_view line(data, size_t(eol - data));
    if (!parseStatusLine(line, out)) return -1;
    bool sawCl = false, sawTe = false, chunkedLast = false;
    int hostCount = 0;
    if (parseHeaders(eol + 2, end, maxHeaders, out, sawCl, sawTe, chunkedLast, hostCount))
        return -1;
    out.framedByTransferEncoding = sawTe;
    if (requestWasHead || out.status < 200 || out.status == 204 || out.status == 304) {
        out.body = BodyKind::None;
    } else if (sawTe) {
        // Transfer-Encoding overrides Content-Length (RFC 9112 6.3). Only "chunked" alone
        // can be followed and re-framed; any other coding would reach the client stripped of
        // the header that says how to decode it.
        int codings = 0;
        for (const Header &h : out.headers)
            if (h.id == HeaderId::TransferEncoding &&
                (++codings > 1 || !equalsIgnoreCase(h.value, "chunked")))
                return ResponseUnsupportedCoding;
        if (!chunkedLast) return ResponseUnsupportedCoding;
        out.body = BodyKind::Chunked;
    } else if (sawCl)
        out.body = out.contentLength ? BodyKind::Length : BodyKind::None;
    else
        out.body = BodyKind::UntilClose;
    return 0;
}

} // namespace corral::http
