#include "proxy/StaticFiles.h"

#include "http/MimeTypes.h"
#include "http/StatusText.h"
#include "proxy/Compression.h"
#include "proxy/HeadWriter.h"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace corral::proxy {

namespace {

constexpr std::string_view WeekDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view Months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Howard Hinnant's civil-calendar conversions: no gmtime_r (glibc's takes the time-zone lock)
// and no locale.
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + int64_t(doe) - 719468;
}

void civilFromDays(int64_t z, int64_t &y, unsigned &m, unsigned &d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = unsigned(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = int64_t(yoe) + era * 400 + (m <= 2);
}

void put2(char *p, unsigned v) {
    p[0] = char('0' + v / 10 % 10);
    p[1] = char('0' + v % 10);
}

// "Date:" of the responses: formatted once a second per thread.
std::string_view currentDate() {
    thread_local int64_t cachedSecond = -1;
    thread_local char text[29];
    const int64_t now = int64_t(::time(nullptr));
    if (now != cachedSecond) {
        formatHttpDate(now, text);
        cachedSecond = now;
    }
    return std::string_view(text, 29);
}

bool isDigits(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// nginx's ETag: the modification time and the size in hex.
uint32_t writeEtag(const struct stat &st, char *out) {
    HeadBuilder w{out, out + 40};
    const auto hex = [&](uint64_t v) {
        char digits[16];
        int i = 16;
        do {
            digits[--i] = "0123456789abcdef"[v & 15];
            v >>= 4;
        } while (v);
        w.put(std::string_view(digits + i, size_t(16 - i)));
    };
    w.put("\"");
    hex(uint64_t(st.st_mtim.tv_sec));
    w.put("-");
    hex(uint64_t(st.st_size));
    w.put("\"");
    return uint32_t(w.p - out);
}

std::string_view withoutWeakPrefix(std::string_view tag) {
    if (tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/') tag.remove_prefix(2);
    return tag;
}

// If-None-Match holds `etag` by the weak comparison (RFC 9110 8.8.3.2), or is `*`.
bool noneMatchHolds(std::string_view header, std::string_view etag) {
    bool found = false;
    http::forEachToken(header, [&](std::string_view tag) {
        found = found || tag == "*" || withoutWeakPrefix(tag) == etag;
    });
    return found;
}

int refusalOf(int negativeErrno) {
    switch (-negativeErrno) {
    case EXDEV:  // leads out of the root
    case ELOOP:  // a symlink loop, or a /proc magic link
    case EACCES: // not readable by the proxy: nginx says 403 too
    case EPERM:
        return 403;
    default: // ENOENT, ENOTDIR, ENAMETOOLONG, ...: not a file here, the backends answer
        return 0;
    }
}

std::atomic<bool> g_noOpenat2{false};

} // namespace

void formatHttpDate(int64_t seconds, char out[29]) {
    int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
    int64_t rest = seconds - days * 86400;
    int64_t y;
    unsigned m, d;
    civilFromDays(days, y, m, d);
    y = y < 0 ? 0 : (y > 9999 ? 9999 : y);
    const std::string_view wd = WeekDays[size_t(((days % 7) + 11) % 7)];
    std::memcpy(out, wd.data(), 3);
    std::memcpy(out + 3, ", ", 2);
    put2(out + 5, d);
    out[7] = ' ';
    std::memcpy(out + 8, Months[m - 1].data(), 3);
    out[11] = ' ';
    put2(out + 12, unsigned(y / 100));
    put2(out + 14, unsigned(y % 100));
    out[16] = ' ';
    put2(out + 17, unsigned(rest / 3600));
    out[19] = ':';
    put2(out + 20, unsigned(rest / 60 % 60));
    out[22] = ':';
    put2(out + 23, unsigned(rest % 60));
    std::memcpy(out + 25, " GMT", 4);
}

int64_t parseHttpDate(std::string_view t) {
    if (t.size() != 29 || t.substr(3, 2) != ", " || t[7] != ' ' || t[11] != ' ' || t[16] != ' ' ||
        t[19] != ':' || t[22] != ':' || t.substr(25) != " GMT")
        return -1;
    const auto number = [&](size_t at, size_t n) -> int64_t {
        const std::string_view s = t.substr(at, n);
        return isDigits(s) ? int64_t(*http::parseDecimal(s)) : -1;
    };
    unsigned month = 0;
    for (unsigned i = 0; i < 12; ++i)
        if (t.substr(8, 3) == Months[i]) month = i + 1;
    const int64_t day = number(5, 2), year = number(12, 4), hour = number(17, 2),
                  minute = number(20, 2), second = number(23, 2);
    if (!month || day < 1 || day > 31 || year < 0 || hour < 0 || hour > 23 || minute < 0 ||
        minute > 59 || second < 0 || second > 60)
        return -1;
    return daysFromCivil(year, month, unsigned(day)) * 86400 + hour * 3600 + minute * 60 + second;
}

RangeVerdict parseRange(std::string_view range, uint64_t size, ByteRange &out) {
    if (range.size() < 6 || !http::equalsIgnoreCase(range.substr(0, 6), "bytes=")) {
        return RangeVerdict::Whole;
    }
    const std::string_view spec = http::trimWhitespace(range.substr(6));
    if (spec.find(',') != std::string_view::npos) return RangeVerdict::Whole; // several
    const size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return RangeVerdict::Whole;
    const std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
    if (first.empty()) { // the last N bytes
        if (!isDigits(last)) return RangeVerdict::Whole;
        const auto n = http::parseDecimal(last);
        if (!n) return RangeVerdict::Whole;
        if (*n == 0 || size == 0) return RangeVerdict::Unsatisfiable;
        out.first = size > *n ? size - *n : 0;
        out.length = size - out.first;
        return RangeVerdict::Partial;
    }
    const auto a = isDigits(first) ? http::parseDecimal(first) : std::nullopt;
    if (!a) return RangeVerdict::Whole;
    uint64_t b = UINT64_MAX;
    if (!last.empty()) {
        const auto parsed = isDigits(last) ? http::parseDecimal(last) : std::nullopt;
        if (!parsed || *parsed < *a) return RangeVerdict::Whole; // invalid: ignored
        b = *parsed;
    }
    if (*a >= size) return RangeVerdict::Unsatisfiable;
    b = std::min(b, size - 1);
    out.first = *a;
    out.length = b - *a + 1;
    return RangeVerdict::Partial;
}

int decodeStaticPath(std::string_view target, DecodedPath &out) {
    out.length = 0;
    out.trailingSlash = false;
    // An absolute-form target's path may be empty or start with its query.
    std::string_view raw = target.substr(0, target.find_first_of("?#"));
    if (raw.empty()) raw = "/";
    if (raw.front() != '/') return PathNotStatic;
    out.rawPath = raw;
    size_t segmentStart = 0;
    // Ends the segment at [segmentStart, length): an empty or "." one is dropped, a ".." one
    // refuses the request, also when backslashes cut it (`\..\`: a Windows-style climb that
    // a backend or a copy of the tree on another system might honour).
    const auto endSegment = [&]() -> bool {
        const std::string_view segment(out.path + segmentStart, out.length - segmentStart);
        std::string_view part = segment;
        while (true) {
            const size_t backslash = part.find('\\');
            if (part.substr(0, backslash) == "..") return false;
            if (backslash == std::string_view::npos) break;
            part.remove_prefix(backslash + 1);
        }
        if (segment.empty() || segment == ".") {
            out.length = segmentStart;
            out.trailingSlash = true;
        } else {
            out.path[out.length++] = '/';
            segmentStart = out.length;
            out.trailingSlash = false;
        }
        return true;
    };
    for (size_t i = 1; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '%') {
            const int hi = i + 2 < raw.size() ? http::hexDigitValue(uint8_t(raw[i + 1])) : -1;
            const int lo = hi >= 0 ? http::hexDigitValue(uint8_t(raw[i + 2])) : -1;
            if (lo < 0) return PathRefused; // nginx: 400 for a bad escape
            c = char(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') return PathRefused;
        if (c == '/') {
            if (!endSegment()) return PathRefused;
            continue;
        }
        if (out.length >= MaxStaticPath) return PathNotStatic;
        out.path[out.length++] = c;
    }
    // The last segment; a path ending in '/' (or "/.") leaves an empty one.
    out.trailingSlash = true;
    if (out.length > segmentStart && !endSegment()) return PathRefused;
    if (out.length > 0 && out.path[out.length - 1] == '/') --out.length;
    if (out.length == 0 && raw.size() > 0) out.trailingSlash = true;
    out.path[out.length] = '\0';
    return 0;
}

StaticRequest staticRequestOf(const http::RequestHead &request, bool keepAlive) {
    StaticRequest r;
    r.isHead = request.isHead;
    r.http10 = request.minor == 0;
    r.keepAlive = keepAlive;
    r.ifNoneMatch = request.ifNoneMatch;
    r.ifModifiedSince = request.ifModifiedSince;
    r.range = request.range;
    r.ifRange = request.ifRange;
    r.acceptsGzip = requestAcceptsGzip(request);
    return r;
}

Result<std::shared_ptr<StaticFiles>> StaticFiles::open(const StaticFilesConfig &config) {
    const QByteArray root = config.root.toLocal8Bit();
    if (!config.root.startsWith(u'/'))
        return fail(QStringLiteral("static files: %1: not an absolute path").arg(config.root));
    const int fd = ::open(root.constData(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(QStringLiteral("static files: %1: %2")
                        .arg(config.root, QString::fromLocal8Bit(std::strerror(errno))));
    char real[PATH_MAX];
    if (!::realpath(root.constData(), real)) {
        const int error = errno;
        ::close(fd);
        return fail(QStringLiteral("static files: %1: %2")
                        .arg(config.root, QString::fromLocal8Bit(std::strerror(error))));
    }
    for (const QChar c : config.cacheControl)
        if (c.unicode() < 0x20 || c.unicode() > 0x7e) {
            ::close(fd);
            return fail(QStringLiteral("static files: Cache-Control \"%1\": printable ASCII only")
                            .arg(config.cacheControl));
        }
    // Parse the media types now rather than on the first request.
    [[maybe_unused]] const http::MimeTypes &types = http::MimeTypes::system();
    return std::shared_ptr<StaticFiles>(new StaticFiles(config, fd, real));
}

StaticFiles::StaticFiles(const StaticFilesConfig &config, int rootFd, std::string realRoot)
    : m_config(config)
    , m_rootFd(rootFd)
    , m_realRoot(std::move(realRoot))
    , m_cacheControl(config.cacheControl.toStdString()) {
    if (m_realRoot == "/") m_realRoot.clear(); // every path is beneath "/"
}

void StaticFiles::setUseOpenat2(bool use) {
    g_noOpenat2.store(!use, std::memory_order_relaxed);
}

StaticFiles::~StaticFiles() {
    if (m_rootFd >= 0) ::close(m_rootFd);
}

int StaticFiles::openBeneath(const char *relative) const {
    // O_NONBLOCK: a FIFO planted in the root must not block the loop in open().
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    if (!g_noOpenat2.load(std::memory_order_relaxed)) {
        open_how how{};
        how.flags = uint64_t(flags);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        const long fd = ::syscall(SYS_openat2, m_rootFd, relative, &how, sizeof how);
        if (fd >= 0) return int(fd);
        // EXDEV: a symlink leads out, or is absolute (RESOLVE_BENEATH refuses those even when
        // they point inside): the checked open below decides. EAGAIN: a rename raced it.
        if (errno == ENOSYS)
            g_noOpenat2.store(true, std::memory_order_relaxed);
        else if (errno != EXDEV && errno != EAGAIN)
            return -errno;
    }
    const int fd = ::openat(m_rootFd, relative, flags);
    if (fd < 0) return -errno;
    if (m_config.followSymlinks) return fd;
    // Where the opened file really is: beneath the root, or refused.
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char real[PATH_MAX];
    const ssize_t n = ::readlink(link, real, sizeof real);
    const std::string_view path(real, n > 0 ? size_t(n) : 0);
    if (n <= 0 || size_t(n) >= sizeof real || path.substr(0, m_realRoot.size()) != m_realRoot ||
        (path.size() > m_realRoot.size() && path[m_realRoot.size()] != '/')) {
        ::close(fd);
        return -EXDEV;
    }
    return fd;
}

StaticResponse StaticFiles::respond(const DecodedPath &path, const StaticRequest &request,
                                    char *out, uint32_t capacity) const {
    StaticResponse response;
    char name[sizeof path.path];
    std::memcpy(name, path.path, path.length + 1);
    size_t nameLength = path.length;
    int fd = openBeneath(nameLength ? name : ".");
    if (fd < 0) {
        response.status = refusalOf(fd);
        return response;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return response;
    }
    bool redirect = false;
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        constexpr std::string_view Index = "index.html";
        if (nameLength) name[nameLength++] = '/';
        std::memcpy(name + nameLength, Index.data(), Index.size() + 1);
        nameLength += Index.size();
        fd = openBeneath(name);
        if (fd < 0) {
            response.status = refusalOf(fd);
            return response;
        }
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            return response; // no index: the backends answer (no listings)
        }
        // "/docs" -> "/docs/": its relative links must resolve inside it.
        redirect = !path.trailingSlash;
    } else if (!S_ISREG(st.st_mode) || path.trailingSlash) {
        ::close(fd); // "file.txt/" names a directory that is not there, as open(2) says
        return response;
    }
    const std::string_view type =
        http::MimeTypes::system().typeOf(std::string_view(name, nameLength));
    bool gzip = false;
    if (!redirect && request.acceptsGzip) {
        std::memcpy(name + nameLength, ".gz", 4);
        const int gz = openBeneath(name);
        struct stat gzStat {};
        if (gz >= 0 && ::fstat(gz, &gzStat) == 0 && S_ISREG(gzStat.st_mode)) {
            ::close(fd);
            fd = gz;
            st = gzStat;
            gzip = true;
        } else if (gz >= 0) {
            ::close(gz);
        }
    }

    char etagText[40];
    const std::string_view etag(etagText, writeEtag(st, etagText));
    char lastModified[29];
    formatHttpDate(int64_t(st.st_mtim.tv_sec), lastModified);
    const uint64_t size = uint64_t(st.st_size);

    int status = 200;
    ByteRange range{0, size};
    if (redirect) {
        status = 301;
    } else if (!request.ifNoneMatch.empty()) {
        if (noneMatchHolds(request.ifNoneMatch, etag)) status = 304;
    } else if (!request.ifModifiedSince.empty()) {
        const int64_t since = parseHttpDate(http::trimWhitespace(request.ifModifiedSince));
        if (since >= 0 && int64_t(st.st_mtim.tv_sec) <= since) status = 304;
    }
    if (status == 200 && !request.range.empty()) {
        bool rangeApplies = true;
        if (!request.ifRange.empty()) {
            const std::string_view v = http::trimWhitespace(request.ifRange);
            rangeApplies =
                v.starts_with('"') ? v == etag : parseHttpDate(v) == int64_t(st.st_mtim.tv_sec);
        }
        if (rangeApplies) {
            switch (parseRange(request.range, size, range)) {
            case RangeVerdict::Whole:
                range = ByteRange{0, size};
                break;
            case RangeVerdict::Partial:
                status = 206;
                break;
            case RangeVerdict::Unsatisfiable:
                status = 416;
                break;
            }
        }
    }

    HeadBuilder w{out, out + capacity};
    w.put("HTTP/1.1 ");
    w.putNumber(uint64_t(status));
    w.put(" ");
    w.put(http::reasonPhrase(status));
    w.put("\r\nDate: ");
    w.put(currentDate());
    if (status == 301) {
        w.put("\r\nLocation: ");
        w.put(path.rawPath);
        w.put("/\r\nContent-Length: 0");
    } else {
        if (status != 304) {
            w.put("\r\nContent-Type: ");
            w.put(type);
            w.put("\r\nContent-Length: ");
            w.putNumber(status == 416 ? 0 : range.length);
        }
        if (status == 206) {
            w.put("\r\nContent-Range: bytes ");
            w.putNumber(range.first);
            w.put("-");
            w.putNumber(range.first + range.length - 1);
            w.put("/");
            w.putNumber(size);
        } else if (status == 416) {
            w.put("\r\nContent-Range: bytes */");
            w.putNumber(size);
        }
        w.put("\r\nLast-Modified: ");
        w.put(std::string_view(lastModified, 29));
        w.put("\r\nETag: ");
        w.put(etag);
        w.put("\r\nAccept-Ranges: bytes");
        if (gzip) w.put("\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding");
        if (!m_cacheControl.empty()) {
            w.put("\r\nCache-Control: ");
            w.put(m_cacheControl);
        }
    }
    if (!request.keepAlive)
        w.put("\r\nConnection: close");
    else if (request.http10)
        w.put("\r\nConnection: keep-alive");
    w.put("\r\n\r\n");
    if (!w.ok) {
        ::close(fd);
        return response; // cannot happen with maxHeadLength() of room: the backends answer
    }
    response.status = status;
    response.headLength = uint32_t(w.p - out);
    response.type = type;
    response.precompressed = gzip;
    if ((status == 200 || status == 206) && !request.isHead && range.length > 0) {
        response.fd = fd;
        response.offset = range.first;
        response.length = range.length;
        response.offload =
            m_config.offloadMinBytes > 0 && range.length >= uint64_t(m_config.offloadMinBytes);
    } else {
        ::close(fd);
    }
    return response;
}

} // namespace corral::proxy
