#include "proxy/Compression.h"

#include "http/HeaderText.h"
#include "proxy/Pools.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

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

/// Accept-Encoding values, added one header at a time, and whether they accept gzip.
class AcceptEncoding {
public:
    void add(std::string_view value) {
        http::forEachToken(value, [this](std::string_view element) {
            const size_t semi = element.find(';');
            const std::string_view coding = http::trimWhitespace(element.substr(0, semi));
            const int8_t weight = semi == std::string_view::npos
                                      ? int8_t(1)
                                      : elementWeight(element.substr(semi + 1));
            // Named twice: any acceptable mention accepts (the client did list it so).
            if (http::equalsIgnoreCase(coding, "gzip") || http::equalsIgnoreCase(coding, "x-gzip"))
                m_gzip = std::max(m_gzip, weight);
            else if (coding == "*")
                m_any = std::max(m_any, weight);
        });
    }
    bool acceptsGzip() const { return m_gzip >= 0 ? m_gzip > 0 : m_any > 0; }

private:
    int8_t m_gzip = -1; ///< -1: not named; 0: refused; 1: accepted
    int8_t m_any = -1;  ///< the same for "*"
};

} // namespace

bool requestAcceptsGzip(const http::RequestHead &request) {
    AcceptEncoding accept;
    if (!request.acceptEncodingRepeated)
        accept.add(request.acceptEncoding);
    else // rare: every one counts, found by its id
        for (const http::Header &h : request.headers)
            if (h.id == http::HeaderId::AcceptEncoding) accept.add(h.value);
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
    m_peakInUse = std::max(m_peakInUse, ++m_inUse);
    return encoder;
}

void GzipEncoderPool::giveBack(http::GzipEncoder *&encoder) {
    if (!encoder) return;
    std::unique_ptr<http::GzipEncoder> owned(encoder);
    encoder = nullptr;
    --m_inUse;
    if (++m_sinceTrim == TrimEvery) {
        m_keep = std::max(MinIdle, m_peakInUse);
        m_peakInUse = m_inUse;
        m_sinceTrim = 0;
        if (m_idle.size() > size_t(m_keep)) m_idle.resize(size_t(m_keep));
    }
    // deflateReset keeps zlib's allocations: the next response starts without a malloc.
    if (m_idle.size() < size_t(m_keep)) {
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

namespace {

// Where one step's compressed bytes go in the client's buffer: behind a chunk's size line
// (written once their count is known) on a chunked response.
struct OutputWindow {
    char *start = nullptr; ///< the step's first byte
    char *data = nullptr;  ///< where the encoder writes
    size_t room = 0;       ///< for the encoder, the chunk framing set aside
    bool chunked = false;
};

// False when the client's buffer has too little room now (or, with `cut` set, no memory).
bool openWindow(Client &c, BufferPool &buffers, OutputWindow &w, GzipProgress &result) {
    if (!buffers.ensure(c.out)) {
        result.cut = true;
        return false;
    }
    buffers.makeRoom(c.out);
    w.chunked = !c.http10;
    const uint32_t framing = w.chunked ? ChunkFramingRoom : 0;
    const uint32_t room = buffers.space(c.out);
    if (room < framing + MinimumOutput) return false; // the client's buffer must drain first
    w.start = c.out.data + c.out.end;
    w.data = w.start + (w.chunked ? ChunkHeadRoom : 0);
    w.room = room - framing;
    return true;
}

// Frames the `produced` bytes written at w.data as a chunk (and the last chunk once the
// stream is `finished`) and queues them for the client; returns the bytes queued.
uint32_t queueOutput(Client &c, const OutputWindow &w, size_t produced, bool finished) {
    char *end = w.start + produced;
    if (w.chunked) {
        end = w.start;
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
            if (headLength != ChunkHeadRoom) std::memmove(w.start + headLength, w.data, produced);
            std::memcpy(w.start, line, headLength);
            end = w.start + headLength + produced;
            std::memcpy(end, "\r\n", 2);
            end += 2;
        }
        if (finished) {
            std::memcpy(end, "0\r\n\r\n", 5);
            end += 5;
        }
    }
    const uint32_t queued = uint32_t(end - w.start);
    c.out.end += queued;
    return queued;
}

} // namespace

GzipProgress pumpGzipBody(Client &c, Upstream &u, BufferPool &buffers) {
    http::GzipEncoder &encoder = *c.gzip;
    GzipProgress result;
    if (c.respDone) return result;
    // The backend closed: the end of a close-delimited body, any other one cut short.
    if (u.eof && u.in.size() == 0 && !c.resp.endOfInput()) {
        result.cut = true;
        return result;
    }
    OutputWindow w;
    if (!openWindow(c, buffers, w, result)) return result;
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
    while (produced < w.room && !encoder.finished()) {
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
            encoder.encode(in + used, p.length, w.data + produced, w.room - produced, flush);
        c.resp.consumePayload(in + used, step.consumed);
        used += uint32_t(step.consumed);
        produced += step.produced;
        if (step.consumed == 0 && step.produced == 0) break; // e.g. a flush with nothing new
    }
    result.queued = queueOutput(c, w, produced, encoder.finished());
    result.moved = used > 0 || result.queued > 0;
    u.in.consume(used);
    if (encoder.finished()) c.respDone = true;
    return result;
}

GzipProgress pumpGzipFile(Client &c, BufferPool &buffers, std::span<char> input) {
    http::GzipEncoder &encoder = *c.gzip;
    FileBody &f = c.file;
    GzipProgress result;
    OutputWindow w;
    if (encoder.finished() || !openWindow(c, buffers, w, result)) return result;
    // An offloaded file: only as far as the reader pool has brought it into the page cache.
    const uint64_t limit = f.offload ? f.readyEnd : f.end;
    size_t produced = 0;
    bool consumed = false;
    while (produced < w.room && !encoder.finished()) {
        // What the encoder leaves unconsumed (its output ran out of room) is read again next
        // time: the page cache serves it, and no second buffer per response is needed.
        const size_t want = size_t(std::min<uint64_t>(input.size(), limit - f.offset));
        ssize_t n = 0;
        if (want > 0) {
            n = ::pread(f.fd, input.data(), want, off_t(f.offset));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { // shrank or unreadable: cut short
                result.cut = true;
                return result;
            }
        }
        using Flush = http::GzipEncoder::Flush;
        const Flush flush = f.offset + uint64_t(n) == f.end ? Flush::Finish : Flush::None;
        if (n == 0 && flush == Flush::None && !encoder.outputPending()) break;
        const http::GzipEncoder::Step step =
            encoder.encode(input.data(), size_t(n), w.data + produced, w.room - produced, flush);
        f.offset += step.consumed;
        produced += step.produced;
        consumed = consumed || step.consumed > 0;
        if (step.consumed == 0 && step.produced == 0) break;
    }
    result.queued = queueOutput(c, w, produced, encoder.finished());
    result.moved = consumed || result.queued > 0;
    return result;
}

uint32_t gzipStaticHead(Client &c, const StaticResponse &response, char *head, uint32_t capacity,
                        const CompressionPolicy &policy, GzipEncoderPool &pool,
                        http::ResponseHead &scratch) {
    const uint32_t length = response.headLength;
    // gzip_static's FILE.gz is encoded already; 206, 304 and the rest are not compressed.
    if (response.status != 200 || response.precompressed || !policy.compressibleType(response.type))
        return length;
    if (!c.isHead && response.length < policy.minLength()) return length;
    if (!c.acceptsGzip && !c.isHead) {
        // A client that takes no gzip (a benchmark, a crawler): only Vary, put in before the
        // blank line that ends the head, without parsing it.
        constexpr std::string_view Vary = "Vary: Accept-Encoding\r\n\r\n";
        if (capacity < length - 2 + Vary.size()) return length;
        std::memcpy(head + length - 2, Vary.data(), Vary.size());
        return uint32_t(length - 2 + Vary.size());
    }
    // The head StaticFiles wrote is rewritten as a backend's would be: one set of rules.
    if (http::parseResponse(head, length, c.isHead, 64, scratch) != 0) return length;
    GzipHead mode = policy.decide(scratch, c.acceptsGzip, c.isHead);
    if (mode == GzipHead::Untouched) return length;
    if (mode == GzipHead::Encoded && response.fd >= 0) {
        c.gzip = pool.lend();
        if (!c.gzip) mode = GzipHead::VaryOnly;
    }
    ResponseHeadOptions options;
    options.http10 = c.http10;
    // An HTTP/1.0 client knows no chunks: the body ends with the connection.
    options.keepAlive = c.keepAlive && !(c.gzip && c.http10);
    options.gzip = mode;
    // Written behind the original (which it reads), then moved over it.
    const uint32_t written = writeResponseHead(scratch, options, head + length, capacity - length);
    if (written == 0) {
        pool.giveBack(c.gzip);
        return length;
    }
    std::memmove(head, head + length, written);
    c.keepAlive = options.keepAlive;
    return written;
}

} // namespace corral::proxy
