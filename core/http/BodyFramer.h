#pragma once

// Where a message body ends, as its head framed it (RFC 9112 6.3): a Content-Length count,
// chunked coding, or the connection closing. The bytes are not copied or changed: feed() says
// how many of the next ones belong to the body, so a forwarder relays exactly those and a
// reader skips them. Inline, no allocation: it runs for every body chunk on the proxy's path.

#include "http/ChunkedDecoder.h"
#include "http/HttpParser.h"

#include <cstddef>
#include <cstdint>

namespace corral::http {

class BodyFramer {
public:
    /// Starts a body framed as `head` says (BodyKind::None: done at once).
    void start(const MessageHead &head) { start(head.body, head.contentLength); }
    void start(BodyKind kind, uint64_t contentLength) {
        m_kind = kind;
        m_remaining = kind == BodyKind::Length ? contentLength : 0;
        m_done = kind == BodyKind::None || (kind == BodyKind::Length && contentLength == 0);
        m_chunks.reset();
    }

    /// Consumes up to `size` bytes: returns how many belong to the body (fewer only when it
    /// ended inside them; every byte while it runs until the close), or -1 on a chunked
    /// framing error.
    long feed(const char *data, size_t size) {
        if (m_done) return 0;
        switch (m_kind) {
        case BodyKind::Length: {
            const size_t take = size < m_remaining ? size : size_t(m_remaining);
            m_remaining -= take;
            m_done = m_remaining == 0;
            return long(take);
        }
        case BodyKind::Chunked: {
            const long used = m_chunks.feed(data, size);
            m_done = m_chunks.done();
            return used;
        }
        case BodyKind::UntilClose:
            return long(size);
        case BodyKind::None:
            break;
        }
        return 0;
    }

    /// The peer closed: a body that runs until the close is complete now; any other that is
    /// not done was truncated (false).
    bool endOfInput() {
        if (m_kind == BodyKind::UntilClose) m_done = true;
        return m_done;
    }

    /// The payload at the start of `data`, for a reader of the body's bytes rather than its
    /// framing (the gzip encoder): `skip` framing bytes (already consumed; -1 on a chunked
    /// framing error) are followed by `length` payload bytes, which consumePayload() takes
    /// once used. Length 0: none in `data` (or the body is done).
    struct Payload {
        long skip = 0;
        size_t length = 0;
    };
    Payload nextPayload(const char *data, size_t size) {
        Payload p;
        if (m_done) return p;
        switch (m_kind) {
        case BodyKind::Length:
            p.length = size < m_remaining ? size : size_t(m_remaining);
            break;
        case BodyKind::Chunked:
            p.skip = m_chunks.skipFraming(data, size);
            m_done = m_chunks.done();
            if (p.skip >= 0 && m_chunks.inData()) {
                const size_t left = size - size_t(p.skip);
                p.length = left < m_chunks.dataLeft() ? left : size_t(m_chunks.dataLeft());
            }
            break;
        case BodyKind::UntilClose:
            p.length = size;
            break;
        case BodyKind::None:
            break;
        }
        return p;
    }
    /// Takes `size` payload bytes (no more than nextPayload() offered).
    void consumePayload(const char *data, size_t size) { feed(data, size); }

    bool done() const { return m_done; }
    BodyKind kind() const { return m_kind; }
    /// Bytes still expected of a Content-Length body.
    uint64_t remaining() const { return m_remaining; }

private:
    BodyKind m_kind = BodyKind::None;
    uint64_t m_remaining = 0;
    bool m_done = true;
    ChunkedDecoder m_chunks;
};

} // namespace corral::http
