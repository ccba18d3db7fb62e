#include "proxy/Compression.h"

#include "http/HeaderText.h"
#include "proxy/Pools.h"

#include <cstring>

namespace corral::proxy {

namespace {

/// A q-value (RFC 9110 12.4.2): 1 above zero, 0 zero, -1 malformed.
int qValueSign(std::string_view q) {
    if (q.empty() || q.size() > 5 || (q[0] != '0' && q[0] != '1')) return -1;
    if (q.size() > 1 && q[1] != '.') return -1;
    bool nonZero = q[0] == '1';
    for (size_t i = 2; i < q.size(); ++i) {
        if (q[i] < '0' || q[i] > '9' || (q[0] == '1' && q[i] != '0')) return -1;
        nonZero = nonZero || q[i] != '0';
    }
    return nonZero ? 1 : 0;
}

/// The weight a list element ("gzip;q=0.5") gives its coding: 1 above zero, 0 otherwise.
int8_t elementWeight(std::string_view params) {
    int8_t weight = 1;
    while (!params.empty()) {
        const size_t semi = params.find(';');
        const std::string_view param = http::trimWhitespace(params.substr(0, semi));
        const size_t eq = param.find('=');
        if (eq != std::string_view::npos &&
            http::equalsIgnoreCase(http::trimWhitespace(param.substr(0, eq)), "q"))
            weight = qValueSign(http::trimWhitespace(param.substr(eq + 1))) > 0 ? 1 : 0;
        if (semi == std::string_view::npos) break;
        params.remove_prefix(semi + 1);
    }
    return weight;
}

std::string_view mediaType(std::string_view contentType) {
    return http::trimWhitespace(contentType.substr(0, contentType.find(';')));
}

// Room a chunk's framing takes around the compressed bytes: its size line (at most 8 hex
// digits and CRLF: the buffers are far smaller), the CRLF after the data, and the last chunk
// "0\r\n\r\n" when the stream ends in the same step.
constexpr uint32_t ChunkHeadRoom = 10;
constexpr uint32_t ChunkFramingRoom = ChunkHeadRoom + 2 + 5;
// Below this much free room in the client's buffer, wait for it to drain instead of writing
// tiny chunks.
constexpr uint32_t MinimumOutput = 64;

} // namespace

void AcceptEncoding::add(std::string_view value) {
    http::forEachToken(value, [this](std::string_view element) {
        const size_t semi = element.find(';');
        const std::string_view coding = http::trimWhitespace(element.substr(0, semi));
        const int8_t weight =
            semi == std::string_view::npos ? int8_t(1) : elementWeight(element.substr(semi + 1));
        // Named twice: any acceptable mention accepts (the client did list it so).
        if (http::equalsIgnoreCase(coding, "gzip") || http::equalsIgnoreCase(coding, "x-gzip"))
            m_gzip = std::max(m_gzip, weight);
        else if (coding == "*")
            m_any = std::max(m_any, weight);
    });
}

bool requestAcceptsGzip(const http::RequestHead &request) {
    AcceptEncoding accept;
    for (const http::Header &h : request.headers)
        if (h.id == http::HeaderId::Other && h.name.size() == 15 &&
            http::equalsIgnoreCase(h.name, "accept-encoding"))
            accept.add(h.value);
    return accept.acceptsGzip();
}

CompressionPolicy::CompressionPolicy(const CompressionConfig &config)
    : m_enabled(config.gzip)
    , m_level(config.level)
    , m_minLength(uint64_t(std::max(config.minLength, 0))) {
    m_types.emplace_back("text/html"); // always, as nginx does
    for (const QString &type : config.types) {
        const std::string lower = type.trimmed().toLower().toStdString();
        if (lower == "*")
            m_anyType = true;
        else if (!lower.empty())
            m_types.push_back(lower);
    }
}

bool CompressionPolicy::compressibleType(std::string_view contentType) const {
    const std::string_view type = mediaType(contentType);
    if (type.empty()) return false;
    if (m_anyType) return true;
    for (const std::string &t : m_types)
        if (http::equalsIgnoreCase(type, t)) return true;
    return false;
}

GzipHead CompressionPolicy::decide(const http::ResponseHead &r, bool acceptsGzip,
                                   bool isHead) const {
    if (!m_enabled) return GzipHead::Untouched;
    // 206: a range of the identity bytes (compressing it would make a range of nothing);
    // 204, 304 and 1xx have no body.
    if (r.status < 200 || r.status == 204 || r.status == 206 || r.status == 304)
        return GzipHead::Untouched;
    std::string_view type;
    bool typeSeen = false, encoded = false, noTransform = false, lengthSeen = false;
    for (const http::Header &h : r.headers) {
        if (h.id == http::HeaderId::ContentLength) {
            lengthSeen = true;
            continue;
        }
        if (h.id != http::HeaderId::Other) continue;
        if (h.name.size() == 12 && http::equalsIgnoreCase(h.name, "content-type")) {
            if (typeSeen) return GzipHead::Untouched; // two types: not ours to guess
            typeSeen = true;
            type = h.value;
        } else if (h.name.size() == 16 && http::equalsIgnoreCase(h.name, "content-encoding")) {
            http::forEachToken(h.value, [&](std::string_view coding) {
                encoded = encoded || !http::equalsIgnoreCase(coding, "identity");
            });
        } else if (h.name.size() == 13 && http::equalsIgnoreCase(h.name, "cache-control")) {
            noTransform = noTransform || http::hasToken(h.value, "no-transform");
        }
    }
    if (encoded || noTransform || !compressibleType(type)) return GzipHead::Untouched;
    // A Content-Length frames a GET's body; a HEAD response's tells what the GET's would be.
    const bool lengthKnown = lengthSeen && !r.framedByTransferEncoding;
    if (lengthKnown && r.contentLength < m_minLength) return GzipHead::Untouched;
    if (!isHead && r.body == http::BodyKind::None) return GzipHead::Untouched;
    return acceptsGzip ? GzipHead::Encoded : GzipHead::VaryOnly;
}

http::GzipEncoder *GzipEncoderPool::lend() {
    if (m_inUse >= MaxInUse) return nullptr;
    http::GzipEncoder *encoder;
    if (!m_idle.empty()) {
        encoder = m_idle.back().release();
        m_idle.pop_back();
    } else {
        auto fresh = std::make_unique<http::GzipEncoder>(m_level);
        if (!fresh->valid()) return nullptr;
        encoder = fresh.release();
    }
    ++m_inUse;
    return encoder;
}

void GzipEncoderPool::giveBack(http::GzipEncoder *&encoder) {
    if (!encoder) return;
    std::unique_ptr<http::GzipEncoder> owned(encoder);
    encoder = nullptr;
    --m_inUse;
    // deflateReset keeps zlib's allocations: the next response starts without a malloc.
    if (m_idle.size() < size_t(MaxIdle)) {
        owned->reset();
        m_idle.push_back(std::move(owned));
    }
}

GzipHead beginGzip(Client &c, const http::ResponseHead &r, const CompressionPolicy &policy,
                   GzipEncoderPool &pool) {
    GzipHead head = policy.decide(r, c.acceptsGzip, c.isHead);
    if (head != GzipHead::Encoded || c.resp.done()) return head; // HEAD: the head only
    c.gzip = pool.lend();
    if (!c.gzip) return GzipHead::VaryOnly; // the pool is exhausted: identity, still varying
    // An HTTP/1.0 client knows no chunks: the body ends with the connection.
    if (c.http10) c.keepAlive = false;
    return head;
}

GzipProgress pumpGzipBody(Client &c, Upstream &u, BufferPool &buffers) {
    http::GzipEncoder &encoder = *c.gzip;
    GzipProgress result;
    if (c.respDone) return result;
    // The backend closed: the end of a close-delimited body, any other one cut short.
    if (u.eof && u.in.size() == 0 && !c.resp.endOfInput()) {
        result.cut = true;
        return result;
    }
    if (!buffers.ensure(c.out)) {
        result.cut = true;
        return result;
    }
    buffers.makeRoom(c.out);
    const bool chunked = !c.http10;
    const uint32_t framing = chunked ? ChunkFramingRoom : 0;
    const uint32_t room = buffers.space(c.out);
    if (room < framing + MinimumOutput) return result; // the client's buffer must drain first
    char *const start = c.out.data + c.out.end;
    char *const data = start + (chunked ? ChunkHeadRoom : 0);
    const size_t dataRoom = room - framing;
    const char *const in = u.in.readPtr();
    const uint32_t inSize = u.in.size();
    // The backend has nothing more for now: its socket was read dry (or it closed). Then
    // whatever the encoder holds goes out with a sync flush, so a streamed or interactive
    // response (server-sent events, a page flushed in parts) reaches the client as the
    // backend sends it rather than when 32 KiB of it piled up; while the backend keeps the
    // socket full, deflate chooses its blocks itself, for the best ratio.
    const bool stalled = !u.canRead || u.eof;
    uint32_t used = 0;
    size_t produced = 0;
    while (produced < dataRoom && !encoder.finished()) {
        const http::BodyFramer::Payload p = c.resp.nextPayload(in + used, inSize - used);
        if (p.skip < 0) {
            result.cut = true;
            return result;
        }
        used += uint32_t(p.skip);
        using Flush = http::GzipEncoder::Flush;
        Flush flush = Flush::None;
        if (p.length == 0 && c.resp.done())
            flush = Flush::Finish;
        else if (stalled && used + p.length == inSize)
            flush = Flush::Sync;
        if (p.length == 0 && flush == Flush::None && !encoder.outputPending()) break;
        const http::GzipEncoder::Step step =
            encoder.encode(in + used, p.length, data + produced, dataRoom - produced, flush);
        c.resp.consumePayload(in + used, step.consumed);
        used += uint32_t(step.consumed);
        produced += step.produced;
        if (step.consumed == 0 && step.produced == 0) break; // e.g. a flush with nothing new
    }
    char *end = start + produced;
    if (chunked) {
        end = start;
        if (produced > 0) {
            static constexpr char Hex[] = "0123456789abcdef";
            char line[ChunkHeadRoom];
            size_t digits = 0;
            for (size_t n = produced; n; n >>= 4)
                ++digits;
            for (size_t i = digits, n = produced; i-- > 0; n >>= 4)
                line[i] = Hex[n & 15];
            line[digits] = '\r';
            line[digits + 1] = '\n';
            const size_t headLength = digits + 2;
            // The size line goes right before the data; the room reserved fits the longest.
            if (headLength != ChunkHeadRoom) std::memmove(start + headLength, data, produced);
            std::memcpy(start, line, headLength);
            end = start + headLength + produced;
            std::memcpy(end, "\r\n", 2);
            end += 2;
        }
        if (encoder.finished()) {
            std::memcpy(end, "0\r\n\r\n", 5);
            end += 5;
        }
    }
    result.queued = uint32_t(end - start);
    result.moved = used > 0 || result.queued > 0;
    c.out.end += result.queued;
    u.in.consume(used);
    if (encoder.finished()) c.respDone = true;
    return result;
}

} // namespace corral::proxy
