#include "http/GzipEncoder.h"

#include <algorithm>

#define ZLIB_CONST // next_in points at const bytes: the caller's buffer is only read
#include <zlib.h>

namespace corral::http {

struct GzipEncoder::State {
    z_stream stream{};
};

GzipEncoder::GzipEncoder(int level)
    : m_state(std::make_unique<State>()) {
    m_valid = deflateInit2(&m_state->stream, std::clamp(level, 1, 9), Z_DEFLATED, WindowBits,
                           MemLevel, Z_DEFAULT_STRATEGY) == Z_OK;
}

GzipEncoder::~GzipEncoder() {
    if (m_valid) deflateEnd(&m_state->stream);
}

void GzipEncoder::reset() {
    if (m_valid) deflateReset(&m_state->stream);
    m_outputPending = false;
    m_finished = false;
}

GzipEncoder::Step GzipEncoder::encode(const char *in, size_t inSize, char *out, size_t outSize,
                                      Flush flush) {
    Step step;
    if (!m_valid || m_finished || outSize == 0) return step;
    z_stream &z = m_state->stream;
    // zlib's counts are 32-bit; the proxy's buffers are far smaller.
    const uInt inBytes = uInt(std::min<size_t>(inSize, UINT32_MAX));
    const uInt outBytes = uInt(std::min<size_t>(outSize, UINT32_MAX));
    z.next_in = reinterpret_cast<const Bytef *>(in);
    z.avail_in = inBytes;
    z.next_out = reinterpret_cast<Bytef *>(out);
    z.avail_out = outBytes;
    const int mode = flush == Flush::Finish ? Z_FINISH
                     : flush == Flush::Sync ? Z_SYNC_FLUSH
                                            : Z_NO_FLUSH;
    // Z_BUF_ERROR only says no progress was possible (e.g. a second flush with nothing new):
    // not an error of the stream. Z_STREAM_ERROR cannot happen with a valid state.
    const int rc = deflate(&z, mode);
    step.consumed = inBytes - z.avail_in;
    step.produced = outBytes - z.avail_out;
    m_outputPending = z.avail_out == 0;
    if (rc == Z_STREAM_END) {
        m_finished = true;
        m_outputPending = false;
    }
    z.next_in = nullptr;
    z.next_out = nullptr;
    return step;
}

} // namespace corral::http
