#pragma once

// A streaming gzip (RFC 1952) encoder over zlib's deflate, for response bodies that pass
// through the proxy: input and output live in the caller's buffers, nothing is buffered
// whole. One encoder serves response after response (reset() keeps zlib's allocations),
// which matters: its state is ~270 KB (a 32 KiB window and the hash tables at memLevel 8),
// so an event loop lends a few from a pool (proxy/Compression.h) to the responses being
// compressed, never one to each connection.

#include <cstddef>
#include <cstdint>
#include <memory>

namespace corral::http {

class GzipEncoder {
public:
    /// zlib's windowBits for a gzip wrapper around a 32 KiB window (15), and memLevel 8:
    /// nginx's defaults (gzip_window, gzip_hash) for bodies of unknown length.
    static constexpr int WindowBits = 15 + 16;
    static constexpr int MemLevel = 8;

    /// `level`: 1 (fastest) to 9; out-of-range values are clamped.
    explicit GzipEncoder(int level);
    ~GzipEncoder();
    GzipEncoder(const GzipEncoder &) = delete;
    GzipEncoder &operator=(const GzipEncoder &) = delete;

    /// False when zlib could not allocate its state.
    bool valid() const { return m_valid; }
    /// Ready for a new stream (a new gzip header), without reallocating.
    void reset();

    enum class Flush : uint8_t {
        None,   ///< compress as zlib sees fit; output may lag the input
        Sync,   ///< everything taken so far goes out now (a byte-aligned empty block)
        Finish, ///< the end of the input: the last block and the gzip trailer
    };
    struct Step {
        size_t consumed = 0;
        size_t produced = 0;
    };
    /// Compresses from `in` into `out`. With Sync or Finish, call again with the same mode
    /// while outputPending(): the flush did not fit in `out`.
    Step encode(const char *in, size_t inSize, char *out, size_t outSize, Flush flush);
    /// The last call filled `out`: zlib may hold more output.
    bool outputPending() const { return m_outputPending; }
    /// The trailer was written: the stream is complete.
    bool finished() const { return m_finished; }

private:
    struct State;
    std::unique_ptr<State> m_state;
    bool m_valid = false;
    bool m_outputPending = false;
    bool m_finished = false;
};

} // namespace corral::http
