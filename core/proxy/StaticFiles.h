#pragma once

// The files the proxy serves itself (nginx `root DIR; try_files $uri @backend`): from a GET or
// HEAD request to the response head and the file range to send, or "not a file: the backends
// answer". No sockets here: the event loop (EventLoopFiles.cpp) sends what this decides.
//
// Choices, where nginx offers several:
// - A `..` path segment, raw or percent-encoded, with '/' or '\' around it, is refused with
//   400 (nginx answers 400 to a URI climbing above its root); so are NUL (%00), bad %-escapes.
// - Files are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) under the root's
//   descriptor: a symlink may point anywhere beneath the root (relative or absolute), one
//   leading out is refused with 403 (nginx's disable_symlinks answers 403 too) unless
//   followSymlinks. Kernels without openat2 open normally and check the opened file's real
//   path.
// - Only regular files are served (a FIFO or device in the root is never opened blocking: the
//   open is O_NONBLOCK). A directory is served its index.html when there is one (a path
//   without its trailing slash is redirected, 301, as nginx's index module does); otherwise,
//   like a missing file, the request goes to the backends: no listings.
// - Conditionals: If-None-Match (weak comparison, `*`) wins over If-Modified-Since (304 when
//   the file is not newer than the date); If-Match / If-Unmodified-Since are not evaluated.
//   Range: one `bytes=` range (206, or 416 with `Content-Range: bytes */SIZE`); several ranges
//   get the whole file (200), as RFC 9110 allows; If-Range needs the exact ETag or date.
// - gzip_static: `FILE.gz` next to FILE (same rules) is sent, Content-Encoding: gzip, when the
//   request accepts gzip with q > 0.
// - Open and fstat run on the calling (event-loop) thread: inode metadata, as nginx does; the
//   body of a file at least offloadMinBytes long is read ahead on the FileReaderPool.

#include "http/HttpParser.h"
#include "proxy/ProxyEngine.h"
#include "util/Result.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace corral::proxy {

/// The longest decoded path served; longer ones go to the backends.
inline constexpr size_t MaxStaticPath = 4096;

/// decodeStaticPath()'s verdicts besides 0 (decoded).
inline constexpr int PathRefused = 400;
inline constexpr int PathNotStatic = -1;

struct DecodedPath {
    char path[MaxStaticPath +
              32];              ///< relative to the root, NUL-terminated; room for "index.html.gz"
    size_t length = 0;          ///< "" for the root itself, "a/b.css" otherwise
    bool trailingSlash = false; ///< the request path ended in '/'
    std::string_view rawPath;   ///< the target without its query, as sent ("/a%20b/")
};

/// Decodes a request target's path (query and fragment stripped, %-escapes decoded, empty and
/// "." segments dropped) into `out`. Returns 0, PathRefused (traversal, NUL, bad escape) or
/// PathNotStatic (not an origin-form path, or too long).
int decodeStaticPath(std::string_view target, DecodedPath &out);

/// The request headers static serving reads (unset: empty).
struct StaticRequest {
    std::string_view ifNoneMatch;
    std::string_view ifModifiedSince;
    std::string_view range;
    std::string_view ifRange;
    bool acceptsGzip = false; ///< for gzip_static: requestAcceptsGzip (proxy/Compression.h)
    bool isHead = false;
    bool http10 = false;
    bool keepAlive = true; ///< the client's connection stays open after this response
};

/// The headers above, as the parse recorded them.
StaticRequest staticRequestOf(const http::RequestHead &request, bool keepAlive);

/// What to answer.
struct StaticResponse {
    /// 0: not a file here, the backends answer; 400 / 403: refused (the caller answers with
    /// its error response); 200, 206, 301, 304, 416: the head is in the buffer.
    int status = 0;
    uint32_t headLength = 0; ///< bytes of head written; 0 with a status >= 200: no room
    int fd = -1;             ///< the body's file, the caller's to close; -1: no body
    uint64_t offset = 0;     ///< the body: [offset, offset + length) of the file
    uint64_t length = 0;
    bool offload = false; ///< large enough to be read ahead off the event loop
    /// The Content-Type sent (a string of the MIME table, which outlives it), for gzip.
    std::string_view type;
    /// gzip_static: FILE.gz is sent, with Content-Encoding: gzip.
    bool precompressed = false;
};

/// A byte range of a file of `size` bytes: [first, first + length).
struct ByteRange {
    uint64_t first = 0;
    uint64_t length = 0;
};
/// Range's verdicts: Whole (absent, unparsable or several ranges), Partial, Unsatisfiable.
enum class RangeVerdict { Whole, Partial, Unsatisfiable };
RangeVerdict parseRange(std::string_view range, uint64_t size, ByteRange &out);

/// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") <-> seconds since the epoch. format writes 29
/// bytes; parse returns -1 for anything else (obsolete formats included: the condition is
/// then ignored).
void formatHttpDate(int64_t seconds, char out[29]);
int64_t parseHttpDate(std::string_view text);

/// One root directory, opened once. Thread-safe: every event loop calls respond().
class StaticFiles {
public:
    /// Opens `config.root` (which must be an existing directory); a clear error otherwise.
    static Result<std::shared_ptr<StaticFiles>> open(const StaticFilesConfig &config);
    ~StaticFiles();
    StaticFiles(const StaticFiles &) = delete;
    StaticFiles &operator=(const StaticFiles &) = delete;

    /// Maps a decoded path to a response, writing its head into `out` (up to `capacity`).
    StaticResponse respond(const DecodedPath &path, const StaticRequest &request, char *out,
                           uint32_t capacity) const;

    /// The head's size at most, besides the redirect's Location: what `capacity` must give.
    uint32_t maxHeadLength() const { return uint32_t(512 + m_cacheControl.size()); }
    const StaticFilesConfig &config() const { return m_config; }

    /// Whether files are opened with openat2(2) (the default where the kernel has it); off:
    /// the fallback of kernels before 5.6 (open, then check the real path), for tests.
    static void setUseOpenat2(bool use);

private:
    StaticFiles(const StaticFilesConfig &config, int rootFd, std::string realRoot);
    /// Opens `relative` under the root: the descriptor, or -errno (EXDEV: it leads out).
    int openBeneath(const char *relative) const;

    StaticFilesConfig m_config;
    int m_rootFd = -1;
    std::string m_realRoot; ///< realpath of the root, for the checks without openat2
    std::string m_cacheControl;
};

} // namespace corral::proxy
