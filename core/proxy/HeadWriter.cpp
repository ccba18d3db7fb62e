#include "proxy/HeadWriter.h"

#include "http/StatusText.h"

#include <iterator>

namespace corral::proxy {

namespace {

void putDuration(HeadBuilder &w, int ms) {
    if (ms % 1000 == 0) {
        w.putNumber(uint64_t(ms / 1000));
        w.put(" s");
    } else {
        w.putNumber(uint64_t(ms));
        w.put(" ms");
    }
}

// What the backend did, said after its address; indexed by FailReason.
constexpr std::string_view FailureText[] = {
    "failed",
    "refused the connection",
    "could not be connected to",
    "did not accept the connection within ", // + connectTimeoutMs
    "closed the connection before answering",
    "reset the connection before answering",
    "did not answer within ", // + responseTimeoutMs
    "sent a malformed response head",
    "sent a response head too large to buffer",
    "switched protocols (101) without being asked to",
    "sent a transfer coding other than chunked",
};
static_assert(std::size(FailureText) == size_t(FailReason::UnsupportedCoding) + 1);

void putFailure(HeadBuilder &w, FailReason why, const ProxyConfig &config) {
    w.put(FailureText[size_t(why)]);
    if (why == FailReason::ConnectTimeout)
        putDuration(w, config.connectTimeoutMs);
    else if (why == FailReason::ResponseTimeout)
        putDuration(w, config.responseTimeoutMs);
}

std::string_view reasonFor(int status) {
    const std::string_view phrase = http::reasonPhrase(status);
    return phrase.empty() ? std::string_view("Error") : phrase;
}

// Why a backend took no request, said after its address; indexed by BackendCondition
// (Failed is followed by what it did).
constexpr std::string_view ConditionText[] = {
    " is disabled", " is draining", " fails its health checks", " ", " is down",
};
static_assert(std::size(ConditionText) == size_t(BackendCondition::Down) + 1);

void putAttempt(HeadBuilder &w, const FailedAttempt &attempt, const ProxyConfig &config) {
    // Retry allowed but nothing else usable: the pool is the problem, not this request.
    if (attempt.noRetry == NoRetry::None) w.put("no backend is up: ");
    w.put(attempt.backend);
    w.put(" ");
    if (attempt.why == FailReason::Closed && attempt.midHead)
        w.put("closed the connection in the middle of its response head");
    else
        putFailure(w, attempt.why, config);
    switch (attempt.noRetry) {
    case NoRetry::NotIdempotent:
        w.put("; not retried: the method is not idempotent");
        break;
    case NoRetry::BodySent:
        w.put("; not retried: its body was sent");
        break;
    case NoRetry::Exhausted:
        w.put("; not retried again (retries: ");
        w.putNumber(uint64_t(config.retries));
        w.put(")");
        break;
    case NoRetry::None:
    case NoRetry::Final:
        break;
    }
}

void putUnusable(HeadBuilder &w, const ErrorCause &cause, const ProxyConfig &config) {
    w.put("no backend is up");
    size_t listed = 0;
    for (const BackendStatus &b : cause.unusable) {
        if (listed == MaxListedBackends) break;
        w.put(listed++ ? ", " : ": ");
        w.put(b.backend);
        w.put(ConditionText[size_t(b.condition)]);
        if (b.condition == BackendCondition::Failed) putFailure(w, b.lastFailure, config);
    }
    if (cause.configured == 0) w.put(": none is configured");
}

// Whether a Vary header of the response covers Accept-Encoding already ("*" covers all).
bool varyListsAcceptEncoding(const http::ResponseHead &r) {
    for (const http::Header &h : r.headers)
        if (h.id == http::HeaderId::Other && http::equalsIgnoreCase(h.name, "vary") &&
            (http::hasToken(h.value, "accept-encoding") || http::hasToken(h.value, "*")))
            return true;
    return false;
}

// A header gzip changes, written changed; false for one it leaves alone. `varyPending`:
// Accept-Encoding is still to be added to Vary, here to the first one.
bool putGzipChange(HeadBuilder &w, const http::Header &h, bool encoded, bool &varyPending) {
    if (h.id == http::HeaderId::ContentLength) return encoded; // chunked, or the close, frames it
    if (h.id != http::HeaderId::Other) return false;
    if (varyPending && http::equalsIgnoreCase(h.name, "vary")) {
        w.put(h.name);
        w.put(": ");
        w.put(h.value);
        w.put(", Accept-Encoding\r\n");
        varyPending = false;
        return true;
    }
    if (!encoded) return false;
    if (http::equalsIgnoreCase(h.name, "content-encoding")) return true; // "identity": replaced
    // Ranges would be of the gzip stream, which no request can name (nginx drops it too).
    if (http::equalsIgnoreCase(h.name, "accept-ranges")) return true;
    if (http::equalsIgnoreCase(h.name, "etag") && !h.value.empty() && h.value[0] == '"') {
        // A strong validator promises these very bytes; the gzip stream is not them (nginx
        // makes it weak the same way).
        w.put(h.name);
        w.put(": W/");
        w.put(h.value);
        w.put("\r\n");
        return true;
    }
    return false;
}

} // namespace

std::string durationText(int ms) {
    char text[32];
    HeadBuilder w{text, text + sizeof text};
    putDuration(w, ms);
    return std::string(text, size_t(w.p - text));
}

std::string describeFailure(FailReason why, const ProxyConfig &config) {
    char text[128];
    HeadBuilder w{text, text + sizeof text};
    putFailure(w, why, config);
    return std::string(text, size_t(w.p - text));
}

bool isLoopback(std::string_view ip) {
    return ip.substr(0, 4) == "127." || ip == "::1" || ip.substr(0, 11) == "::ffff:127.";
}

uint32_t writeRequestHead(const http::RequestHead &r, std::string_view clientIp, char *out,
                          uint32_t capacity, bool https) {
    HeadBuilder w{out, out + capacity};
    const bool http10 = r.minor == 0;
    w.put(r.method);
    w.put(" ");
    // An absolute-form target goes out in origin form; its authority became the Host.
    if (r.absoluteForm && (r.target.empty() || r.target[0] != '/')) w.put("/");
    w.put(r.target);
    w.put(http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    if (!r.host.empty()) {
        w.put("Host: ");
        w.put(r.host);
        w.put("\r\n");
    }
    // X-Forwarded-For: every value the client sent, then the client's own address.
    bool firstXff = true;
    for (const http::Header &h : r.headers) {
        if (h.id != http::HeaderId::XForwardedFor) continue;
        w.put(firstXff ? "X-Forwarded-For: " : ", ");
        w.put(h.value);
        firstXff = false;
    }
    w.put(firstXff ? "X-Forwarded-For: " : ", ");
    w.put(clientIp);
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
    if (r.body == http::BodyKind::Chunked) w.put("Transfer-Encoding: chunked\r\n");
    w.put("X-Real-IP: ");
    w.put(clientIp);
    w.put(https ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n");
    if (!r.host.empty()) {
        w.put("X-Forwarded-Host: ");
        w.put(r.host);
        w.put("\r\n");
    }
    if (r.wantsUpgrade()) {
        w.put("Connection: upgrade\r\nUpgrade: ");
        w.put(r.upgrade);
        w.put("\r\n");
    } else if (http10) {
        w.put("Connection: keep-alive\r\n");
    }
    w.put("\r\n");
    return w.ok ? uint32_t(w.p - out) : 0;
}

uint32_t writeResponseHead(const http::ResponseHead &r, const ResponseHeadOptions &options,
                           char *out, uint32_t capacity) {
    HeadBuilder w{out, out + capacity};
    w.put(options.http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    w.putNumber(uint64_t(r.status));
    w.put(" ");
    w.put(r.reason);
    w.put("\r\n");
    const bool gzip = options.gzip != GzipHead::Untouched;
    const bool encoded = options.gzip == GzipHead::Encoded;
    bool varyPending = gzip && !varyListsAcceptEncoding(r);
    for (const http::Header &h : r.headers) {
        if (r.status != 101 && r.isHopByHop(h)) continue;
        // Both framings: Transfer-Encoding wins, Content-Length must not reach the client.
        if (h.id == http::HeaderId::ContentLength && r.framedByTransferEncoding) continue;
        if (r.status == 101 && h.id != http::HeaderId::Upgrade &&
            h.id != http::HeaderId::Connection && r.isHopByHop(h))
            continue;
        if (gzip && putGzipChange(w, h, encoded, varyPending)) continue;
        w.put(h.name);
        w.put(": ");
        w.put(h.value);
        w.put("\r\n");
    }
    // Re-framed as received (HEAD: would be); compressed, the proxy's own framing: chunks,
    // or the close for an HTTP/1.0 client.
    const bool chunked =
        encoded ? !options.http10
                : r.body == http::BodyKind::Chunked ||
                      (r.framedByTransferEncoding && r.status >= 200 && r.status != 204);
    if (chunked) w.put("Transfer-Encoding: chunked\r\n");
    if (encoded) w.put("Content-Encoding: gzip\r\n");
    if (varyPending) w.put("Vary: Accept-Encoding\r\n");
    if (!options.stickyId.empty()) {
        w.put("Set-Cookie: CORRALID=");
        w.put(options.stickyId);
        w.put("; Path=/; HttpOnly\r\n");
    }
    if (r.status != 101) {
        if (!options.keepAlive)
            w.put("Connection: close\r\n");
        else if (options.http10)
            w.put("Connection: keep-alive\r\n");
    }
    w.put("\r\n");
    return w.ok ? uint32_t(w.p - out) : 0;
}

uint32_t writeErrorResponse(int status, bool close, std::string_view clientIp,
                            const ErrorCause &cause, const ProxyConfig &config, char *out,
                            uint32_t capacity) {
    const std::string_view reason = reasonFor(status);
    // Error details (which backend, what it did) are for the operator at the machine only.
    char detail[512];
    std::string_view body = reason;
    if ((status == 502 || status == 504) && isLoopback(clientIp)) {
        HeadBuilder d{detail, detail + sizeof detail};
        if (cause.attempt)
            putAttempt(d, *cause.attempt, config);
        else
            putUnusable(d, cause, config);
        if (d.ok) body = std::string_view(detail, size_t(d.p - detail));
    }
    HeadBuilder w{out, out + capacity};
    w.put("HTTP/1.1 ");
    w.putNumber(uint64_t(status));
    w.put(" ");
    w.put(reason);
    w.put("\r\nContent-Type: text/plain\r\nContent-Length: ");
    w.putNumber(body.size() + 1);
    if (close) w.put("\r\nConnection: close");
    w.put("\r\n\r\n");
    w.put(body);
    w.put("\n");
    return w.ok ? uint32_t(w.p - out) : 0;
}

} // namespace corral::proxy
