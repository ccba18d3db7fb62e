#include "loadgen/LoadWorker.h"

#include "http/ResponseReader.h"
#include "net/Poller.h"
#include "util/LatencyHistogram.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corral {

LoadGenerator::Shared::Shared()
    : wakeFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

LoadGenerator::Shared::~Shared() {
    if (wakeFd >= 0) ::close(wakeFd);
}

void LoadGenerator::Shared::wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wakeFd, &one, sizeof one);
}

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
// Connection failures in a row before the failed() signal: one refused connect can be a
// backend restarting, three in a row is an outage worth telling the user about.
constexpr int kFailuresBeforeReport = 3;

// The sending thread: one poll loop (the proxy's net::Poller) over the connections, the token
// bucket and the window.
class LoadWorker {
public:
    LoadWorker(LoadGenerator::Shared &shared, LoadWorkerConfig config)
        : m_shared(shared)
        , m_config(std::move(config))
        , m_connections(static_cast<std::size_t>(m_config.connections)) {}

    ~LoadWorker() {
        for (Connection &connection : m_connections)
            closeSocket(connection);
    }
    LoadWorker(const LoadWorker &) = delete;
    LoadWorker &operator=(const LoadWorker &) = delete;

    void run() {
        // nullptr marks the wake-up fd.
        if (!m_poller.valid() || !m_poller.addLevel(m_shared.wakeFd, nullptr)) {
            m_config.report(QStringLiteral("load generator: cannot poll: %1")
                                .arg(QString::fromLocal8Bit(std::strerror(errno))));
            return;
        }

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
        http::ResponseReader response;
        Clock::time_point sentAt;
        Clock::time_point retryAt;
        int failures = 0;
    };

    struct Slice {
        std::uint32_t completed = 0;
        LatencyHistogram latency; ///< of the requests answered
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
        connection.response.reset();
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
        if (!m_poller.add(fd, &connection)) {
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
            m_poller.remove(connection.fd);
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

    void onEvent(Connection &connection, const net::PollEvent &event) {
        if (connection.state == State::Connecting) {
            if (!event.writable) return; // connected, refused or failed: writable says so
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
        if (connection.state == State::Busy && event.writable) flush(connection);
        if (connection.state == State::Closed) return;
        if (event.readable) readInput(connection);
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
            std::size_t consumed = 0;
            const auto progress =
                connection.response.feed(connection.in.data(), connection.in.size(), consumed);
            connection.in.erase(0, consumed);
            switch (progress) {
            case http::ResponseReader::Progress::NeedMore:
                break;
            case http::ResponseReader::Progress::Error:
                dropBusy(connection);
                return;
            case http::ResponseReader::Progress::Done:
                completed(connection);
                break;
            }
        }
        if (!eof) return;
        if (connection.state == State::Busy &&
            connection.response.endOfInput() == http::ResponseReader::Progress::Done) {
            completed(connection); // a body that ran until the close
        }
        if (connection.state == State::Busy)
            dropBusy(connection);
        else
            closeSocket(connection); // an idle keep-alive connection the server closed
    }

    void completed(Connection &connection) {
        const int status = connection.response.status();
        finish(status >= 200 && status < 400, Clock::now() - connection.sentAt);
        if (connection.response.closesConnection()) {
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
        if (latency)
            slice.latency.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(*latency).count()));
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
        std::array<net::PollEvent, 64> events;
        const int n = m_poller.wait(events.data(), int(events.size()), timeout);
        for (int i = 0; i < n; ++i) {
            const net::PollEvent &event = events[std::size_t(i)];
            if (!event.object) {
                std::uint64_t value = 0;
                [[maybe_unused]] const auto read = ::read(m_shared.wakeFd, &value, sizeof value);
                continue;
            }
            onEvent(*static_cast<Connection *>(event.object), event);
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
        LatencyHistogram latency;
        for (std::size_t i = 0; i < m_window.size(); ++i) {
            if (i == m_sliceIndex) continue;
            completed += m_window[i].completed;
            latency.add(m_window[i].latency);
        }
        const int slices = static_cast<int>(std::min<std::uint64_t>(m_slicesDone, kSlices));
        const double seconds = slices * std::chrono::duration<double>(kSlice).count();
        const bool sampled = latency.total() > 0;
        std::lock_guard lock(m_shared.mutex);
        m_shared.achievedPerSecond = seconds > 0 ? double(completed) / seconds : 0;
        // The bucket's upper bound: a p99 never reads better than it was.
        if (sampled || completed == 0) m_shared.p99Ms = latency.percentileMs(0.99);
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
    LoadWorkerConfig m_config;
    net::EpollPoller m_poller;
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

void runLoadWorker(LoadGenerator::Shared &shared, LoadWorkerConfig config) {
    LoadWorker worker(shared, std::move(config));
    worker.run();
}

} // namespace corral
