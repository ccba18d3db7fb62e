#pragma once

#include "ByteQueue.h"
#include "Options.h"
#include "RequestParser.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <sys/socket.h>

namespace corral::demo {

/// Resolved --bind address with the port filled in.
struct ListenAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;
};

/// Resolves ADDR (numeric or a host name) for binding PORT; nullopt and error on failure.
std::optional<ListenAddress> resolveListenAddress(const std::string &address, int port,
                                                  std::string &error);

/// The worker: one thread, one epoll loop, like a Node.js process. Timers drive /sleep,
/// --ready-delay-ms, --exit-after-ms and --log-rate; signals arrive through a signalfd.
class Server {
public:
    Server(Options options, ListenAddress address);
    ~Server();
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    /// Runs until SIGTERM/SIGINT (returns 0), --exit-after-ms (7) or a fatal error (1).
    int run();

private:
    using Clock = std::chrono::steady_clock;
    struct Connection;

    bool setUpSignals();
    bool startListening();
    void handleEvent(std::uint64_t id, std::uint32_t events);
    void acceptConnections();
    void pauseAccepting();
    bool readInput(Connection &connection);
    bool writeOutput(Connection &connection);
    void pump(Connection &connection);
    bool canProduce(const Connection &connection) const;
    bool produce(Connection &connection);
    void handleRequest(Connection &connection, const Request &request);
    void handleRoute(Connection &connection, const Request &request, std::string_view session);
    void respond(Connection &connection, const Request &request, int status,
                 std::string_view contentType, std::string_view body);
    void respondJson(Connection &connection, const Request &request, const std::string &json);
    void appendHead(Connection &connection, int status, std::string_view contentType,
                    std::uint64_t contentLength, bool keepAlive);
    void beginClose(Connection &connection);
    void closeConnection(std::uint64_t id);
    void updateInterest(Connection &connection);
    void addTimer(Clock::duration delay, std::function<void()> callback);
    int millisecondsUntilNextTimer() const;
    void runDueTimers();
    void writeLogLines(Clock::time_point due);
    std::string_view sessionFor(const Request &request);

    Options m_options;
    ListenAddress m_address;
    std::string m_addressText; // "127.0.0.1" or "[::1]"
    int m_epoll = -1;
    int m_listener = -1;
    int m_signalFd = -1;
    int m_port = 0;
    std::uint64_t m_nextConnectionId;
    std::uint64_t m_requestCount = 0;
    bool m_healthFailing = false;
    std::optional<int> m_exitStatus;
    std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> m_connections;
    std::multimap<Clock::time_point, std::function<void()>> m_timers;
    std::vector<char> m_readBuffer;
    double m_logCredit = 0;
    std::uint64_t m_logLineNumber = 0;
    std::string m_logBatch;
    // --sessions memory: the demo.sid values this process issued, oldest first in the queue.
    std::unordered_set<std::string> m_sessions;
    std::deque<std::string> m_sessionOrder;
    // Extra header lines ("Name: value\r\n") for the response being produced now.
    std::string m_extraHead;
};

} // namespace corral::demo
