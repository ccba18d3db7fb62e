#pragma once

// The chunked transfer coding (RFC 9112 7.1), followed byte by byte without copying: the proxy
// forwards the bytes unchanged and the load generator skips them; both need only to know
// where the body ends (and the next pipelined message starts). No Qt, no allocation.

#include <cstddef>
#include <cstdint>

namespace corral::http {

class ChunkedDecoder {
public:
    void reset() {
        m_state = State::Size;
        m_size = 0;
        m_digits = 0;
        m_lineBytes = 0;
    }
    /// Consumes up to `size` bytes; returns how many belong to the body (all of them unless
    /// the body ended inside), or -1 on a framing error: a chunk size that is not hex or has
    /// more than MaxHexDigits digits, a bare LF, a missing CRLF after the data, a control
    /// character (HTAB aside) in an extension or a trailer, a chunk-size or trailer line over
    /// 4 KiB.
    long feed(const char *data, size_t size) { return run(data, size, false); }
    bool done() const { return m_state == State::Done; }

    // For a reader of the payload (the gzip encoder), not only of its end: skipFraming()
    // consumes framing (chunk-size lines, the CRLF after data, the last chunk and trailers)
    // up to the next data byte and returns how many bytes it took (-1 on a framing error);
    // then inData() tells whether payload follows, at most dataLeft() bytes of it, which
    // feed() takes once they are used.
    long skipFraming(const char *data, size_t size) { return run(data, size, true); }
    bool inData() const { return m_state == State::Data; }
    uint64_t dataLeft() const { return m_state == State::Data ? m_size : 0; }

private:
    enum class State : uint8_t {
        Size,
        Extension,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        TrailerLine,
        TrailerLf,
        FinalLf,
        Done,
    };
    /// A state that takes one fixed byte of a line end: that byte and the state after it.
    struct LineEnd {
        unsigned char byte;
        State next;
    };
    static LineEnd lineEndAt(State state);
    long run(const char *data, size_t size, bool stopAtData);

    State m_state = State::Size;
    uint64_t m_size = 0;
    int m_digits = 0;
    size_t m_lineBytes = 0;
};

} // namespace corral::http
