#pragma once

// gzip for responses that pass through the proxy, as nginx's `gzip on; gzip_proxied any;
// gzip_vary on; gzip_types ...` does it: which responses (CompressionPolicy), the encoders an
// event loop lends to them (GzipEncoderPool) and the body's way from the backend's framing
// through the encoder into the client's buffer (pumpGzipBody). The head's rewrite is
// HeadWriter's (ResponseHeadOptions::gzip). The event loop calls into this file only while
// ProxyConfig::compression.gzip is on.

#include "http/GzipEncoder.h"
#include "http/HttpParser.h"
#include "proxy/HeadWriter.h"
#include "proxy/ProxyEngine.h"
#include "proxy/StaticFiles.h"

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace corral::proxy {

struct Client;
struct Upstream;
class BufferPool;

/// Whether the request's Accept-Encoding headers, all of them, accept gzip (RFC 9110 12.5.3):
/// "gzip" or "x-gzip" with a q-value above 0, or, when neither is named, "*" with one.
/// "gzip;q=0" refuses it; a malformed q-value counts as 0; a coding named twice is accepted
/// when either mention accepts it. The one reading of Accept-Encoding: gzip on the fly and
/// gzip_static both ask it.
bool requestAcceptsGzip(const http::RequestHead &request);

/// CompressionConfig as the event loop reads it, per response.
class CompressionPolicy {
public:
    explicit CompressionPolicy(const CompressionConfig &config);

    bool enabled() const { return m_enabled; }
    int level() const { return m_level; }
    uint64_t minLength() const { return m_minLength; }
    /// A Content-Type value ("text/html; charset=utf-8") names a compressed type: text/html or
    /// one of the configured ones ("*": any), case-insensitive, parameters ignored.
    bool compressibleType(std::string_view contentType) const;
    /// What becomes of a response's head (and body). Untouched: not a compressible response
    /// (wrong status or type, already encoded, Cache-Control: no-transform, a Content-Length
    /// under minLength, no body); VaryOnly: it would be, but the client did not accept gzip;
    /// Encoded: it is. A HEAD response gets the head its GET would (RFC 9110 9.3.2).
    GzipHead decide(const http::ResponseHead &response, bool acceptsGzip, bool isHead) const;

private:
    bool m_enabled = false;
    bool m_anyType = false;
    int m_level = 1;
    uint64_t m_minLength = 0;
    std::vector<std::string> m_types; ///< lower case, text/html included
};

/// The encoders of one event loop, lent to responses while they are compressed. At most
/// MaxInUse at a time (each holds ~270 KB): beyond that a response goes out uncompressed.
/// Idle ones are kept up to the most that were in use at once lately (measured over
/// TrimEvery responses, at least MinIdle): a steady load never reallocates (with only 16
/// kept, 64 concurrent 16 KiB responses paid a deflateInit2 on fresh pages for most of them:
/// 186 instead of 107 us of CPU each), while the memory of a burst goes back afterwards.
class GzipEncoderPool {
public:
    static constexpr int MaxInUse = 256;
    static constexpr int MinIdle = 16;
    static constexpr int TrimEvery = 4096;

    explicit GzipEncoderPool(int level)
        : m_level(level) {}
    GzipEncoderPool(const GzipEncoderPool &) = delete;
    GzipEncoderPool &operator=(const GzipEncoderPool &) = delete;

    /// A reset encoder, or nullptr (too many in use, or no memory).
    http::GzipEncoder *lend();
    /// Takes `encoder` back (if set) and clears the pointer.
    void giveBack(http::GzipEncoder *&encoder);
    int inUse() const { return m_inUse; }
    size_t idle() const { return m_idle.size(); }
    /// The loop's buffer a static file is read into on its way to the encoder (one for all
    /// the loop's responses: each step reads, compresses and is done with it).
    std::span<char> fileInput() {
        if (!m_fileInput) m_fileInput = std::make_unique<char[]>(FileInputBytes);
        return {m_fileInput.get(), FileInputBytes};
    }

private:
    static constexpr size_t FileInputBytes = 16384;
    int m_level;
    int m_inUse = 0;
    int m_peakInUse = 0;   ///< since the last trim
    int m_keep = MaxInUse; ///< idle encoders kept
    int m_sinceTrim = 0;   ///< responses since the last trim
    std::vector<std::unique_ptr<http::GzipEncoder>> m_idle;
    std::unique_ptr<char[]> m_fileInput;
};

/// Decides for the response whose head `response` is, and lends `client` an encoder when its
/// body is to be compressed (HTTP/1.0 clients get it close-delimited: their keepAlive goes).
/// Returns what the head writer is to do.
GzipHead beginGzip(Client &client, const http::ResponseHead &response,
                   const CompressionPolicy &policy, GzipEncoderPool &pool);

/// What one pumpGzipBody() call did.
struct GzipProgress {
    bool cut = false;    ///< the response must be cut: a framing error, or the backend closed
                         ///< before the body's end
    bool moved = false;  ///< bytes were taken from the backend's buffer or queued for the client
    uint32_t queued = 0; ///< bytes queued for the client (compressed, with chunk framing)
};

/// Moves the body of a compressed response on: payload out of the backend's buffer (its
/// chunked framing removed), through the encoder, into the client's buffer as chunks (raw
/// for an HTTP/1.0 client), as far as that buffer has room (back-pressure: the backend is
/// not read while it is full). Sets `client.respDone` once the gzip trailer (and the last
/// chunk) is queued.
GzipProgress pumpGzipBody(Client &client, Upstream &upstream, BufferPool &buffers);

/// The same for a static file (Client::file): read with pread into `input`, compressed, queued
/// as chunks; the gzip trailer once the file's end was read. `cut`: the file shrank or could
/// not be read.
GzipProgress pumpGzipFile(Client &client, BufferPool &buffers, std::span<char> input);

/// gzip's rules for a static file's response, whose head StaticFiles wrote at `head`
/// (response.headLength bytes, `capacity` of room there): a compressible 200 (not gzip_static's
/// FILE.gz) gets the head of a compressed response, and `client` an encoder for its body, when
/// the client accepts gzip, or Vary when it does not. Returns the head's length now.
uint32_t gzipStaticHead(Client &client, const StaticResponse &response, char *head,
                        uint32_t capacity, const CompressionPolicy &policy, GzipEncoderPool &pool,
                        http::ResponseHead &scratch);

} // namespace corral::proxy
