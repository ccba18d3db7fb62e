#include "proxy/AccessLog.h"

#include "http/HttpParser.h"
#include "proxy/Connection.h"
#include "supervisor/RotatingLog.h"

#include <QFile>
#include <QFileInfo>

#include <algorithm>
#include <chrono>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

namespace corral::proxy {

namespace {

constexpr char Hex[] = "0123456789ABCDEF";

void appendNumber(std::string &out, uint64_t value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out.append(digits, size_t(end - digits));
}

/// Microseconds as nginx prints times: seconds with milliseconds, "0.003".
void appendSeconds(std::string &out, uint64_t us) {
    const uint64_t ms = us / 1000;
    appendNumber(out, ms / 1000);
    const auto frac = unsigned(ms % 1000);
    const char tail[4] = {'.', char('0' + frac / 100), char('0' + frac / 10 % 10),
                          char('0' + frac % 10)};
    out.append(tail, 4);
}

} // namespace

void appendEscaped(std::string &out, std::string_view bytes) {
    if (bytes.empty()) {
        out += '-';
        return;
    }
    size_t plain = 0; // start of the run of bytes that need no escaping
    for (size_t i = 0; i < bytes.size(); ++i) {
        const auto b = static_cast<unsigned char>(bytes[i]);
        if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') continue;
        out.append(bytes.data() + plain, i - plain);
        const char escaped[4] = {'\\', 'x', Hex[b >> 4], Hex[b & 15]};
        out.append(escaped, 4);
        plain = i + 1;
    }
    out.append(bytes.data() + plain, bytes.size() - plain);
}

// ---------------------------------------------------------------- one loop's side

void AccessLogWriter::capture(AccessLogRequest &request, std::string_view head,
                              const http::RequestHead *parsed) {
    request.text.clear();
    std::string_view line = head.substr(0, head.find('\n'));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    appendEscaped(request.text, line);
    request.requestLength = uint32_t(request.text.size());
    appendEscaped(request.text, parsed ? parsed->referer : std::string_view());
    request.text += "\" \"";
    appendEscaped(request.text, parsed ? parsed->userAgent : std::string_view());
    request.captured = true;
    request.attemptStartUs = 0;
    request.bodyBytes = 0;
    request.attemptCount = 0;
    request.triedAddresses.clear();
}

void AccessLogWriter::attemptFailed(AccessLogRequest &request, const std::string &backend,
                                    int status, uint64_t startUs) {
    const uint64_t now = monotonicUs();
    const uint64_t began = request.attemptStartUs ? request.attemptStartUs : startUs;
    request.attemptStartUs = now;
    if (request.attemptCount >= AccessLogRequest::MaxAttempts) return;
    request.triedAddresses += backend;
    request.triedAddresses += ", ";
    request.triedStatus[request.attemptCount] = uint16_t(status);
    request.triedUs[request.attemptCount] = uint32_t(std::min<uint64_t>(now - began, UINT32_MAX));
    ++request.attemptCount;
}

void AccessLogWriter::refreshTime() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == m_timeSecond) return;
    m_timeSecond = ts.tv_sec;
    // Formatted by hand: strftime's %b follows the locale (a Qt program sets it from the
    // environment), nginx's month names do not.
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const time_t now = ts.tv_sec;
    tm local{};
    localtime_r(&now, &local);
    const long offset = local.tm_gmtoff / 60;
    const long absOffset = offset < 0 ? -offset : offset;
    const int n = std::snprintf(m_time, sizeof m_time, "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld",
                                local.tm_mday, months[local.tm_mon % 12], local.tm_year + 1900,
                                local.tm_hour, local.tm_min, local.tm_sec, offset < 0 ? '-' : '+',
                                absOffset / 60, absOffset % 60);
    m_timeLength = uint8_t(std::clamp(n, 0, int(sizeof m_time) - 1));
}

void AccessLogWriter::write(Client &client, int status, const BackendRuntime *upstream) {
    AccessLogRequest &request = client.log;
    const std::string_view remoteAddress = client.address();
    const uint64_t startUs = client.startUs;
    const std::string *upstreamLabel = upstream ? &upstream->label : nullptr;
    refreshTime();
    const uint64_t now = monotonicUs();
    std::string &out = m_batch;
    // $remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer"
    // "$http_user_agent" $upstream_addr $upstream_status $request_time $upstream_response_time
    out.append(remoteAddress.empty() ? std::string_view("-") : remoteAddress);
    out += " - - [";
    out.append(m_time, m_timeLength);
    out += "] \"";
    const bool captured = request.captured;
    if (captured)
        out.append(request.text, 0, request.requestLength);
    else
        out += '-';
    out += "\" ";
    appendNumber(out, uint64_t(status));
    out += ' ';
    appendNumber(out, request.bodyBytes);
    out += " \"";
    if (captured)
        out.append(request.text, request.requestLength);
    else
        out += "-\" \"-";
    out += "\" ";
    const int tried = captured ? request.attemptCount : 0;
    if (tried == 0 && !upstreamLabel) {
        out += "- - ";
    } else {
        if (tried) out += request.triedAddresses;
        out += upstreamLabel ? std::string_view(*upstreamLabel) : std::string_view("-");
        out += ' ';
        for (int i = 0; i < tried; ++i) {
            appendNumber(out, request.triedStatus[i]);
            out += ", ";
        }
        if (upstreamLabel && status)
            appendNumber(out, uint64_t(status));
        else
            out += '-';
        out += ' ';
    }
    appendSeconds(out, startUs && now > startUs ? now - startUs : 0);
    out += ' ';
    if (tried == 0 && !upstreamLabel) {
        out += '-';
    } else {
        for (int i = 0; i < tried; ++i) {
            appendSeconds(out, request.triedUs[i]);
            out += ", ";
        }
        if (upstreamLabel) {
            const uint64_t began = request.attemptStartUs ? request.attemptStartUs : startUs;
            appendSeconds(out, began && now > began ? now - began : 0);
        } else {
            out += '-';
        }
    }
    out += '\n';
    ++m_batchLines;
    request.captured = false;
    request.bodyBytes = 0;
}

void AccessLogWriter::writeError(Client &client, int status, const BackendRuntime *upstream,
                                 std::string_view response) {
    const size_t headEnd = response.find("\r\n\r\n");
    client.log.bodyBytes = headEnd == std::string_view::npos ? 0 : response.size() - headEnd - 4;
    write(client, status, upstream);
}

void AccessLogWriter::publish() {
    if (m_batch.empty()) return;
    bool wake = false;
    {
        std::lock_guard lock(m_mutex);
        if (m_pending.size() + m_batch.size() <= AccessLog::MaxPendingBytes) {
            m_pending += m_batch;
            m_pendingLines += m_batchLines;
            wake = m_pending.size() >= AccessLog::WakeBytes &&
                   m_pending.size() - m_batch.size() < AccessLog::WakeBytes;
        } else {
            // The writer fell behind (a slow disk, a blocked standard output): the loop does
            // not wait for it.
            m_log->m_dropped.fetch_add(m_batchLines, std::memory_order_relaxed);
        }
    }
    m_batch.clear();
    m_batchLines = 0;
    if (wake) m_log->wakeWriter();
}

// ---------------------------------------------------------------- the shared log

Result<std::unique_ptr<AccessLog>> AccessLog::open(const AccessLogConfig &config, int loops) {
    std::unique_ptr<AccessLog> log(new AccessLog);
    if (config.path != QStringLiteral("-")) {
        if (!QFileInfo(config.path).isAbsolute())
            return fail(QStringLiteral("access log %1: expected an absolute path or \"-\"")
                            .arg(config.path));
        // Opened now, so a bad path is an error at start rather than a note in a tail.
        const QByteArray local = QFile::encodeName(config.path);
        const int fd = ::open(local.constData(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail(QStringLiteral("access log %1: cannot open: %2")
                            .arg(config.path, QString::fromLocal8Bit(std::strerror(errno))));
        ::close(fd);
        // No in-memory tail: the file is the record, and the writer need not split lines.
        log->m_file = std::make_unique<RotatingLog>(config.path, config.maxBytes, config.keep, 0);
    }
    for (int i = 0; i < loops; ++i) {
        auto writer = std::make_unique<AccessLogWriter>();
        writer->m_log = log.get();
        writer->m_batch.reserve(64 * 1024);
        log->m_writers.push_back(std::move(writer));
    }
    log->m_thread = std::thread([raw = log.get()] { raw->run(); });
    return log;
}

AccessLog::~AccessLog() {
    close();
}

void AccessLog::close() {
    if (!m_thread.joinable()) return;
    for (auto &writer : m_writers)
        writer->publish();
    m_closing = true;
    {
        std::lock_guard lock(m_wakeMutex);
        m_stop = true;
    }
    m_wake.notify_one();
    m_thread.join();
}

void AccessLog::wakeWriter() {
    {
        std::lock_guard lock(m_wakeMutex);
        m_wakeRequested = true;
    }
    m_wake.notify_one();
}

void AccessLog::run() {
    std::string taking;
    bool stop = false;
    while (!stop) {
        {
            std::unique_lock lock(m_wakeMutex);
            m_wake.wait_for(lock, std::chrono::milliseconds(FlushIntervalMs),
                            [this] { return m_stop || m_wakeRequested; });
            stop = m_stop;
            m_wakeRequested = false;
        }
        // After the stop request too: what the loops handed over last is written.
        for (auto &writer : m_writers) {
            uint32_t lines = 0;
            {
                std::lock_guard lock(writer->m_mutex);
                taking.swap(writer->m_pending);
                lines = writer->m_pendingLines;
                writer->m_pendingLines = 0;
            }
            if (taking.empty()) continue;
            const uint32_t lost = std::min(writeOut(taking), lines);
            m_written.fetch_add(lines - lost, std::memory_order_relaxed);
            m_dropped.fetch_add(lost, std::memory_order_relaxed);
            taking.clear(); // keeps its capacity: handed back to the loop at the next swap
        }
    }
}

uint32_t AccessLog::writeOut(const std::string &bytes) {
    if (!m_file) return writeToStandardOutput(bytes);
    // RotatingLog counts what a full disk keeps out of the file (and notes it there).
    m_file->append(QByteArray::fromRawData(bytes.data(), qsizetype(bytes.size())));
    return 0;
}

uint32_t AccessLog::writeToStandardOutput(const std::string &bytes) {
    // Polled, in pieces no larger than a pipe takes at once, so a stop never waits on a
    // reader that stopped reading for longer than StopGraceMs.
    size_t done = 0;
    int64_t giveUpAtMs = 0;
    while (done < bytes.size()) {
        pollfd out{STDOUT_FILENO, POLLOUT, 0};
        const int ready = ::poll(&out, 1, 100);
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) {
            if (!m_closing.load(std::memory_order_relaxed)) continue;
            const int64_t now = monotonicMs();
            if (!giveUpAtMs) giveUpAtMs = now + StopGraceMs;
            if (now >= giveUpAtMs) break;
            continue;
        }
        if (out.revents & (POLLERR | POLLHUP | POLLNVAL)) break; // nobody reads any more
        const size_t piece = std::min<size_t>(bytes.size() - done, PIPE_BUF);
        const ssize_t n = ::write(STDOUT_FILENO, bytes.data() + done, piece);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;
        done += size_t(n);
    }
    if (done == bytes.size()) return 0;
    // The lines not (or not wholly) written: a cut one counts as lost.
    const auto unwritten = std::count(bytes.begin() + std::ptrdiff_t(done), bytes.end(), '\n');
    return uint32_t(unwritten);
}

} // namespace corral::proxy
