#include "loadgen/LoadGenerator.h"

#include <QMetaObject>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corral {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A response that takes longer than this is counted as failed and its connection dropped,
// so a hung backend cannot pin every connection forever.
constexpr auto kResponseTimeout = 10s;
// stop() lets outstanding responses arrive for this long, so that after stop() the server's
// request count and ok + failed agree.
constexpr auto kDrainTime = 500ms;
// The statistics window is one second in slices, so it slides without keeping every sample.
constexpr auto kSlice = 100ms;
constexpr int kSlices = 10;
// Latency histogram: 16 bins per power of two of microseconds (4.4 % wide), up to 2^24 us.
constexpr int kBinsPerOctave = 16;
constexpr int kBins = 24 * kBinsPerOctave;
// Connection failures in a row before the failed() signal: one refused connect can be a
// backend restarting, three in a row is an outage worth telling the user about.
constexpr int kFailuresBeforeReport = 3;
constexpr std::size_t kMaxHeadBytes = 64 * 1024;

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool containsIgnoreCase(std::string_view haystack, std::string_view needle) {
    if (needle.size() > haystack.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        if (equalsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
    }
    return false;
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    return text;
}

// Finds where one HTTP/1.1 response ends: status line and headers, then a body delimited by
// Content-Length, chunked encoding or the connection closing.
class ResponseParser {
public:
    enum class Progress { NeedMore, Done, Error };

    void reset() { *this = ResponseParser(); }

    int status() const { return m_status; }
    /// The server will close after this response (Connection: close, or body until EOF).
    bool closesConnection() const { return m_close; }
    bool readsUntilClose() const { return m_state == State::UntilClose; }

    /// Consumes bytes from the front of `buffer`.
    Progress feed(std::string &buffer) {
        std::size_t pos = 0;
        const Progress progress = parse(buffer, pos);
        buffer.erase(0, pos);
        return progress;
    }

private:
    enum class State { Head, Body, ChunkSize, ChunkData, ChunkEnd, Trailers, UntilClose };

    Progress parse(const std::string &buffer, std::size_t &pos) {
        for (;;) {
            switch (m_state) {
            case State::Head: {
                const std::size_t end = buffer.find("\r\n\r\n", pos);
                if (end == std::string::npos)
                    return buffer.size() - pos > kMaxHeadBytes ? Progress::Error
                                                               : Progress::NeedMore;
                if (!parseHead(std::string_view(buffer).substr(pos, end - pos)))
                    return Progress::Error;
                pos = end + 4;
                if (m_status >= 100 && m_status < 200) {
                    m_status = 0; // interim response (100 Continue): the real one follows
                    continue;
                }
                if (m_status == 204 || m_status == 304) return Progress::Done;
                if (m_chunked) {
                    m_state = State::ChunkSize;
                } else if (m_untilClose) {
                    m_state = State::UntilClose;
                    m_close = true;
                } else if (m_length > 0) {
                    m_state = State::Body;
                } else {
                    return Progress::Done;
                }
                continue;
            }
            case State::Body: {
                const std::size_t take = std::min<std::size_t>(m_length, buffer.size() - pos);
                pos += take;
                m_length -= take;
                if (m_length > 0) return Progress::NeedMore;
                return Progress::Done;
            }
            case State::ChunkSize: {
                const std::size_t end = buffer.find("\r\n", pos);
                if (end == std::string::npos)
                    return buffer.size() - pos > 1024 ? Progress::Error : Progress::NeedMore;
                std::string_view line = std::string_view(buffer).substr(pos, end - pos);
                if (const std::size_t semicolon = line.find(';'); semicolon != line.npos)
                    line = line.substr(0, semicolon);
                line = trimmed(line);
                if (line.empty() || line.size() > 15) return Progress::Error;
                std::uint64_t size = 0;
                for (const char c : line) {
                    const int digit = std::isxdigit(static_cast<unsigned char>(c))
                                          ? (std::isdigit(static_cast<unsigned char>(c))
                                                 ? c - '0'
                                                 : std::tolower(c) - 'a' + 10)
                                          : -1;
                    if (digit < 0) return Progress::Error;
                    size = size * 16 + static_cast<std::uint64_t>(digit);
                }
                pos = end + 2;
                m_length = size;
                m_state = size == 0 ? State::Trailers : State::ChunkData;
                continue;
            }
            case State::ChunkData: {
                const std::size_t take = std::min<std::size_t>(m_length, buffer.size() - pos);
                pos += take;
                m_length -= take;
                if (m_length > 0) return Progress::NeedMore;
                m_state = State::ChunkEnd;
                continue;
            }
            case State::ChunkEnd:
                if (buffer.size() - pos < 2) return Progress::NeedMore;
                if (buffer.compare(pos, 2, "\r\n") != 0) return Progress::Error;
                pos += 2;
                m_state = State::ChunkSize;
                continue;
            case State::Trailers: {
                const std::size_t end = buffer.find("\r\n", pos);
                if (end == std::string::npos)
                    return buffer.size() - pos > kMaxHeadBytes ? Progress::Error
                                                               : Progress::NeedMore;
                const bool last = end == pos;
                pos = end + 2;
                if (last) return Progress::Done;
                continue;
            }
            case State::UntilClose:
                pos = buffer.size();
                return Progress::NeedMore;
            }
        }
    }

    bool parseHead(std::string_view head) {
        std::size_t lineEnd = head.find("\r\n");
        const std::string_view statusLine = head.substr(0, lineEnd);
        // "HTTP/1.1 200 OK"
        if (statusLine.size() < 12 || statusLine.substr(0, 7) != "HTTP/1." || statusLine[8] != ' ')
            return false;
        m_status = 0;
        for (std::size_t i = 9; i < 12; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(statusLine[i]))) return false;
            m_status = m_status * 10 + (statusLine[i] - '0');
        }
        m_length = 0;
        m_chunked = false;
        bool hasLength = false;
        while (lineEnd != std::string_view::npos) {
            const std::size_t start = lineEnd + 2;
            lineEnd = head.find("\r\n", start);
            const std::string_view line = head.substr(start, lineEnd - start);
            const std::size_t colon = line.find(':');
            if (colon == line.npos) continue;
            const std::string_view name = trimmed(line.substr(0, colon));
            const std::string_view value = trimmed(line.substr(colon + 1));
            if (equalsIgnoreCase(name, "content-length")) {
                std::uint64_t length = 0;
                if (value.empty() || value.size() > 18) return false;
                for (const char c : value) {
                    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
                    length = length * 10 + static_cast<std::uint64_t>(c - '0');
                }
                m_length = length;
                hasLength = true;
            } else if (equalsIgnoreCase(name, "transfer-encoding")) {
                m_chunked = containsIgnoreCase(value, "chunked");
            } else if (equalsIgnoreCase(name, "connection")) {
                if (containsIgnoreCase(value, "close")) m_close = true;
            }
        }
        // Neither length nor chunked: the body runs until the server closes (RFC 9112 6.3).
        m_untilClose = !hasLength && !m_chunked;
        return true;
    }

    State m_state = State::Head;
    int m_status = 0;
    std::uint64_t m_length = 0;
    bool m_chunked = false;
    bool m_close = false;
    bool m_untilClose = false;
};

} // namespace

/// What the owner thread and the sending thread share. Counters are relaxed atomics written by
/// the sending thread only; the knobs are atomics or under the mutex.
struct LoadGenerator::Shared {
    std::atomic<quint64> sent{0};
    std::atomic<quint64> ok{0};
    std::atomic<quint64> failed{0};
    std::atomic<int> rate{0};
    std::atomic<bool> stopping{false};
    std::atomic<quint64> requestsGeneration{0};
    int wakeFd = -1; // eventfd: knobs changed or stop requested

    mutable std::mutex mutex;
    std::vector<std::string> requests; // ready-made request bytes, one per path
    double achievedPerSecond = 0;
    double p99Ms = 0;

    Shared()
        : wakeFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
    ~Shared() {
        if (wakeFd >= 0) ::close(wakeFd);
    }
    Shared(const Shared &) = delete;
    Shared &operator=(const Shared &) = delete;

    void wake() const {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto written = ::write(wakeFd, &one, sizeof one);
    }
};

namespace {

struct WorkerConfig {
    std::string host;
    quint16 port = 0;
    int connections = 8;
    std::function<void(const QString &)> report; // thread-safe: queues failed() to the owner
};

// The sending thread: one epoll loop over the connections, the token bucket and the window.
class LoadWorker {
public:
    LoadWorker(LoadGenerator::Shared &shared, WorkerConfig config)
        : m_shared(shared)
        , m_config(std::move(config))
        , m_connections(static_cast<std::size_t>(m_config.connections)) {}

    ~LoadWorker() {
        for (Connection &connection : m_connections)
            closeSocket(connection);
        if (m_epoll >= 0) ::close(m_epoll);
    }
    LoadWorker(const LoadWorker &) = delete;
    LoadWorker &operator=(const LoadWorker &) = delete;

    void run() {
        m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
        if (m_epoll < 0) {
            m_config.report(QStringLiteral("load generator: epoll_create1 failed: %1")
                                .arg(QString::fromLocal8Bit(std::strerror(errno))));
            return;
        }
        epoll_event wakeEvent{};
        wakeEvent.events = EPOLLIN;
        wakeEvent.data.ptr = nullptr; // nullptr marks the wake-up fd
        ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_shared.wakeFd, &wakeEvent);

        m_lastRefill = Clock::now();
        m_sliceStart = m_lastRefill;

        while (!m_shared.stopping.load(std::memory_order_acquire)) {
            if (!m_address && !resolve()) {
                waitEvents(1000);
                continue;
            }
            const auto now = Clock::now();
            refill(now);
            dispatch(now);
            waitEvents(timeoutMs(Clock::now()));
            housekeeping(Clock::now());
        }
        drain();
        std::lock_guard lock(m_shared.mutex);
        m_shared.achievedPerSecond = 0;
    }

private:
    enum class State { Closed, Connecting, Idle, Busy };

    struct Connection {
        int fd = -1;
        State state = State::Closed;
        std::string out;
        std::size_t outPos = 0;
        std::string in;
        ResponseParser parser;
        Clock::time_point sentAt;
        Clock::time_point retryAt;
        int failures = 0;
    };

    struct Slice {
        std::uint32_t completed = 0;
        std::uint32_t samples = 0;
        std::array<std::uint32_t, kBins> histogram{};
    };

    struct Address {
        sockaddr_storage storage{};
        socklen_t length = 0;
        int family = AF_INET;
    };

    bool resolve() {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo *found = nullptr;
        const std::string port = std::to_string(m_config.port);
        const int status = ::getaddrinfo(m_config.host.c_str(), port.c_str(), &hints, &found);
        if (status != 0 || !found) {
            if (!m_reported) {
                m_config.report(QStringLiteral("cannot resolve %1: %2")
                                    .arg(QString::fromStdString(m_config.host),
                                         QString::fromLocal8Bit(::gai_strerror(status))));
                m_reported = true;
            }
            return false;
        }
        Address address;
        std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
        address.length = found->ai_addrlen;
        address.family = found->ai_family;
        ::freeaddrinfo(found);
        m_address = address;
        m_reported = false;
        return true;
    }

    QString targetText() const {
        const QString host = QString::fromStdString(m_config.host);
        return (host.contains(u':') ? QString(u'[' + host + u']') : host) + u':' +
               QString::number(m_config.port);
    }

    void refill(Clock::time_point now) {
        const int rate = m_shared.rate.load(std::memory_order_relaxed);
        const double elapsed = std::chrono::duration<double>(now - m_lastRefill).count();
        m_lastRefill = now;
        if (rate <= 0) {
            m_tokens = 0;
            return;
        }
        // Up to 50 ms of requests may queue while every connection is busy or the thread was
        // descheduled; beyond that they are skipped rather than sent later as a burst.
        const double capacity = std::max(1.0, rate * 0.05);
        m_tokens = std::min(capacity, m_tokens + rate * elapsed);
    }

    void reloadRequests() {
        const quint64 generation = m_shared.requestsGeneration.load(std::memory_order_acquire);
        if (generation == m_requestsGeneration && !m_requests.empty()) return;
        std::lock_guard lock(m_shared.mutex);
        m_requests = m_shared.requests;
        m_requestsGeneration = generation;
        if (m_nextRequest >= m_requests.size()) m_nextRequest = 0;
    }

    void dispatch(Clock::time_point now) {
        reloadRequests();
        if (m_requests.empty()) return;
        while (m_tokens >= 1.0) {
            Connection *connection = nullptr;
            while (!m_idle.empty() && !connection) {
                connection = m_idle.front();
                m_idle.pop_front();
                if (connection->state != State::Idle) connection = nullptr; // closed meanwhile
            }
            if (!connection) connection = reconnectable(now);
            if (!connection) return; // all busy: tokens wait, up to the bucket's capacity
            m_tokens -= 1.0;
            send(*connection, now);
        }
    }

    Connection *reconnectable(Clock::time_point now) {
        for (Connection &connection : m_connections) {
            if (connection.state == State::Closed && connection.retryAt <= now) return &connection;
        }
        return nullptr;
    }

    void send(Connection &connection, Clock::time_point now) {
        connection.out = m_requests[m_nextRequest];
        m_nextRequest = (m_nextRequest + 1) % m_requests.size();
        connection.outPos = 0;
        connection.sentAt = now;
        connection.parser.reset();
        connection.in.clear();
        m_shared.sent.fetch_add(1, std::memory_order_relaxed);
        if (connection.state == State::Idle) {
            connection.state = State::Busy;
            flush(connection);
            return;
        }
        openSocket(connection);
    }

    void openSocket(Connection &connection) {
        const int fd =
            ::socket(m_address->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            connectFailed(connection, errno);
            return;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        connection.fd = fd;
        const int status = ::connect(fd, reinterpret_cast<const sockaddr *>(&m_address->storage),
                                     m_address->length);
        if (status != 0 && errno != EINPROGRESS) {
            connectFailed(connection, errno);
            return;
        }
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.ptr = &connection;
        if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event) != 0) {
            connectFailed(connection, errno);
            return;
        }
        connection.state = State::Connecting;
        if (status == 0) connected(connection);
    }

    void connected(Connection &connection) {
        connection.failures = 0;
        m_failureStreak = 0;
        m_reported = false;
        connection.state = State::Busy;
        flush(connection);
    }

    // The request on this connection fails with the connection; it retries after a backoff,
    // so a refused target costs a few attempts a second per connection, not a busy loop.
    void connectFailed(Connection &connection, int error) {
        closeSocket(connection);
        finish(false, std::nullopt);
        connection.failures = std::min(connection.failures + 1, 6);
        connection.retryAt =
            Clock::now() + std::min<Clock::duration>(1s, 50ms * (1 << (connection.failures - 1)));
        if (++m_failureStreak >= kFailuresBeforeReport && !m_reported) {
            m_reported = true;
            m_config.report(QStringLiteral("cannot connect to %1: %2")
                                .arg(targetText(), QString::fromLocal8Bit(std::strerror(error))));
        }
    }

    void closeSocket(Connection &connection) {
        if (connection.fd >= 0) {
            ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, connection.fd, nullptr);
            ::close(connection.fd);
        }
        connection.fd = -1;
        connection.state = State::Closed;
        connection.out.clear();
        connection.in.clear();
    }

    // The request in flight is lost (reset, bad response, timeout); the connection is
    // reopened on demand.
    void dropBusy(Connection &connection) {
        closeSocket(connection);
        finish(false, std::nullopt);
    }

    void flush(Connection &connection) {
        while (connection.outPos < connection.out.size()) {
            const ssize_t written = ::send(connection.fd, connection.out.data() + connection.outPos,
                                           connection.out.size() - connection.outPos, MSG_NOSIGNAL);
            if (written > 0) {
                connection.outPos += static_cast<std::size_t>(written);
            } else if (written < 0 && errno == EINTR) {
                continue;
            } else if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return; // EPOLLOUT resumes
            } else {
                dropBusy(connection);
                return;
            }
        }
    }

    void onEvent(Connection &connection, std::uint32_t events) {
        if (connection.state == State::Connecting) {
            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            int error = 0;
            socklen_t length = sizeof error;
            ::getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length);
            if (error != 0) {
                connectFailed(connection, error);
                return;
            }
            connected(connection);
            if (connection.state != State::Busy) return;
        }
        if (connection.state == State::Busy && (events & EPOLLOUT)) flush(connection);
        if (connection.state == State::Closed) return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readInput(connection);
    }

    void readInput(Connection &connection) {
        char buffer[16384];
        bool eof = false;
        for (;;) {
            const ssize_t n = ::recv(connection.fd, buffer, sizeof buffer, 0);
            if (n > 0) {
                if (connection.state == State::Busy) connection.in.append(buffer, std::size_t(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            eof = true; // orderly close or a reset: either way this socket is done
            break;
        }
        if (connection.state == State::Busy && !connection.in.empty()) {
            switch (connection.parser.feed(connection.in)) {
            case ResponseParser::Progress::NeedMore:
                break;
            case ResponseParser::Progress::Error:
                dropBusy(connection);
                return;
            case ResponseParser::Progress::Done:
                completed(connection);
                break;
            }
        }
        if (!eof) return;
        if (connection.state == State::Busy && connection.parser.readsUntilClose()) {
            completed(connection);
        }
        if (connection.state == State::Busy)
            dropBusy(connection);
        else
            closeSocket(connection); // an idle keep-alive connection the server closed
    }

    void completed(Connection &connection) {
        const int status = connection.parser.status();
        finish(status >= 200 && status < 400, Clock::now() - connection.sentAt);
        if (connection.parser.closesConnection()) {
            closeSocket(connection);
            connection.retryAt = Clock::now();
            return;
        }
        connection.state = State::Idle;
        connection.in.clear();
        m_idle.push_back(&connection);
    }

    void finish(bool ok, std::optional<Clock::duration> latency) {
        (ok ? m_shared.ok : m_shared.failed).fetch_add(1, std::memory_order_relaxed);
        Slice &slice = m_window[m_sliceIndex];
        ++slice.completed;
        if (!latency) return;
        const double us =
            std::max(1.0, std::chrono::duration<double, std::micro>(*latency).count());
        const int bin = std::clamp(static_cast<int>(std::log2(us) * kBinsPerOctave), 0, kBins - 1);
        ++slice.histogram[static_cast<std::size_t>(bin)];
        ++slice.samples;
    }

    int timeoutMs(Clock::time_point now) const {
        Clock::duration wait = m_sliceStart + kSlice - now;
        const int rate = m_shared.rate.load(std::memory_order_relaxed);
        if (rate > 0 && m_tokens < 1.0) {
            wait = std::min(wait, std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>((1.0 - m_tokens) / rate)));
        } else if (rate > 0) {
            // Tokens are waiting for a connection: a free one arrives as an event, a closed
            // one becomes usable when its backoff ends.
            for (const Connection &connection : m_connections) {
                if (connection.state == State::Closed)
                    wait = std::min(wait, connection.retryAt - now);
            }
        }
        if (wait <= Clock::duration::zero()) return 0;
        // Round up: waking early would only spin until the token is there.
        return static_cast<int>(
            std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    }

    void waitEvents(int timeout) {
        std::array<epoll_event, 64> events;
        const int n = ::epoll_wait(m_epoll, events.data(), int(events.size()), timeout);
        for (int i = 0; i < n; ++i) {
            if (!events[std::size_t(i)].data.ptr) {
                std::uint64_t value = 0;
                [[maybe_unused]] const auto read = ::read(m_shared.wakeFd, &value, sizeof value);
                continue;
            }
            onEvent(*static_cast<Connection *>(events[std::size_t(i)].data.ptr),
                    events[std::size_t(i)].events);
        }
    }

    void housekeeping(Clock::time_point now) {
        if (now < m_sliceStart + kSlice) return;
        const auto elapsed = static_cast<std::size_t>((now - m_sliceStart) / kSlice);
        m_slicesDone += elapsed;
        m_sliceStart += kSlice * static_cast<std::int64_t>(elapsed);
        // After a stall longer than the window every slice is stale: clearing each once is enough.
        for (std::size_t i = 0; i < std::min(elapsed, m_window.size()); ++i) {
            m_sliceIndex = (m_sliceIndex + 1) % m_window.size();
            m_window[m_sliceIndex] = Slice();
        }
        for (Connection &connection : m_connections) {
            if ((connection.state == State::Busy || connection.state == State::Connecting) &&
                now - connection.sentAt > kResponseTimeout)
                dropBusy(connection);
        }
        publish();
    }

    // The last second is the kSlices slices before the current (still filling) one.
    void publish() {
        std::uint64_t completed = 0;
        std::uint64_t samples = 0;
        std::array<std::uint64_t, kBins> histogram{};
        for (std::size_t i = 0; i < m_window.size(); ++i) {
            if (i == m_sliceIndex) continue;
            completed += m_window[i].completed;
            samples += m_window[i].samples;
            for (std::size_t b = 0; b < histogram.size(); ++b)
                histogram[b] += m_window[i].histogram[b];
        }
        const int slices = static_cast<int>(std::min<std::uint64_t>(m_slicesDone, kSlices));
        const double seconds = slices * std::chrono::duration<double>(kSlice).count();
        double p99 = 0;
        if (samples > 0) {
            const auto rank = static_cast<std::uint64_t>(std::ceil(0.99 * double(samples)));
            std::uint64_t seen = 0;
            for (std::size_t b = 0; b < histogram.size(); ++b) {
                seen += histogram[b];
                if (seen >= rank) {
                    // The bin's upper edge: a p99 never reads better than it was.
                    p99 = std::exp2(double(b + 1) / kBinsPerOctave) / 1000.0;
                    break;
                }
            }
        }
        std::lock_guard lock(m_shared.mutex);
        m_shared.achievedPerSecond = seconds > 0 ? double(completed) / seconds : 0;
        if (samples > 0 || completed == 0) m_shared.p99Ms = p99;
    }

    // Stops sending but lets outstanding responses arrive, then gives up on the rest.
    void drain() {
        const auto deadline = Clock::now() + kDrainTime;
        for (;;) {
            const bool outstanding =
                std::any_of(m_connections.begin(), m_connections.end(), [](const Connection &c) {
                    return c.state == State::Busy || c.state == State::Connecting;
                });
            const auto now = Clock::now();
            if (!outstanding || now >= deadline) break;
            waitEvents(static_cast<int>(
                std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count()));
        }
        for (Connection &connection : m_connections) {
            if (connection.state == State::Busy || connection.state == State::Connecting)
                dropBusy(connection);
            closeSocket(connection);
        }
    }

    LoadGenerator::Shared &m_shared;
    WorkerConfig m_config;
    int m_epoll = -1;
    std::optional<Address> m_address;
    // Fixed size: epoll events point at the elements, so they must never move.
    std::vector<Connection> m_connections;
    std::deque<Connection *> m_idle; // FIFO, so every keep-alive connection gets its share
    std::vector<std::string> m_requests;
    quint64 m_requestsGeneration = 0;
    std::size_t m_nextRequest = 0;
    double m_tokens = 0;
    Clock::time_point m_lastRefill;
    Clock::time_point m_sliceStart;
    std::array<Slice, kSlices + 1> m_window{};
    std::size_t m_sliceIndex = 0;
    std::uint64_t m_slicesDone = 0;
    int m_failureStreak = 0;
    bool m_reported = false;
};

} // namespace

LoadGenerator::LoadGenerator(QObject *parent)
    : QObject(parent)
    , m_shared(std::make_unique<Shared>()) {
    setPaths(m_paths);
}

LoadGenerator::~LoadGenerator() {
    stop();
}

void LoadGenerator::setTarget(const QString &host, quint16 port) {
    if (host == m_host && port == m_port) return;
    m_host = host;
    m_port = port;
    setPaths(m_paths); // the Host header changes with the target
    if (isRunning()) {
        stop();
        start();
    }
}

void LoadGenerator::setPaths(const QStringList &paths) {
    QStringList usable;
    for (QString path : paths) {
        path = path.trimmed();
        // No whitespace or control characters: they would break (or inject into) the request.
        if (path.isEmpty() || std::any_of(path.begin(), path.end(), [](QChar c) {
                return c.unicode() <= 0x20 || c.unicode() == 0x7f;
            }))
            continue;
        usable.append(path.startsWith(u'/') ? path : QString(u'/' + path));
    }
    if (usable.isEmpty()) usable = {QStringLiteral("/")};
    m_paths = usable;

    const QString hostHeader = (m_host.contains(u':') ? QString(u'[' + m_host + u']') : m_host) +
                               u':' + QString::number(m_port);
    std::vector<std::string> requests;
    for (const QString &path : std::as_const(usable)) {
        const QString request = u"GET " + path + u" HTTP/1.1\r\nHost: " + hostHeader +
                                u"\r\nUser-Agent: corral-loadgen/" CORRAL_VERSION
                                "\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";
        requests.push_back(request.toStdString());
    }
    {
        std::lock_guard lock(m_shared->mutex);
        m_shared->requests = std::move(requests);
    }
    m_shared->requestsGeneration.fetch_add(1, std::memory_order_release);
}

void LoadGenerator::setRate(int requestsPerSecond) {
    m_rate = std::clamp(requestsPerSecond, 0, MaxRate);
    m_shared->rate.store(m_rate, std::memory_order_relaxed);
    m_shared->wake(); // a thread idling at rate 0 must not wait for its next tick
}

void LoadGenerator::setConnections(int connections) {
    connections = std::clamp(connections, 1, MaxConnections);
    if (connections == m_connections) return;
    m_connections = connections;
    if (isRunning()) {
        stop();
        start();
    }
}

void LoadGenerator::start() {
    if (isRunning()) return;
    if (m_port == 0 || m_host.isEmpty()) {
        Q_EMIT failed(QStringLiteral("load generator: no target set"));
        return;
    }
    m_shared->sent = 0;
    m_shared->ok = 0;
    m_shared->failed = 0;
    {
        std::lock_guard lock(m_shared->mutex);
        m_shared->achievedPerSecond = 0;
        m_shared->p99Ms = 0;
    }
    m_shared->rate.store(m_rate, std::memory_order_relaxed);
    m_shared->stopping.store(false, std::memory_order_release);

    // A failure queued by an earlier run must not be reported against this one.
    const quint64 run = ++m_run;
    WorkerConfig config;
    config.host = m_host.toStdString();
    config.port = m_port;
    config.connections = m_connections;
    config.report = [this, run](const QString &message) {
        // Queued to the owner's thread; the destructor joins this thread before QObject's
        // destructor discards pending events, so `this` is alive whenever the lambda runs.
        QMetaObject::invokeMethod(
            this,
            [this, run, message] {
                if (run == m_run) Q_EMIT failed(message);
            },
            Qt::QueuedConnection);
    };
    m_thread = std::thread([shared = m_shared.get(), config = std::move(config)]() mutable {
        ::pthread_setname_np(::pthread_self(), "corral-loadgen");
        LoadWorker worker(*shared, std::move(config));
        worker.run();
    });
}

void LoadGenerator::stop() {
    if (!isRunning()) return;
    m_shared->stopping.store(true, std::memory_order_release);
    m_shared->wake();
    m_thread.join();
}

LoadStats LoadGenerator::stats() const {
    LoadStats stats;
    stats.sent = m_shared->sent.load(std::memory_order_relaxed);
    stats.ok = m_shared->ok.load(std::memory_order_relaxed);
    stats.failed = m_shared->failed.load(std::memory_order_relaxed);
    std::lock_guard lock(m_shared->mutex);
    stats.achievedPerSecond = m_shared->achievedPerSecond;
    stats.p99Ms = m_shared->p99Ms;
    return stats;
}

} // namespace corral
