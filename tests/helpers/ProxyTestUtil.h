#pragma once

// Shared bits of the proxy tests: configs over TestBackends, load loops, process RSS.

#include "helpers/HttpClient.h"
#include "helpers/TestBackend.h"
#include "proxy/ProxyEngine.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

namespace corral::test {

inline Backend backendFor(const TestBackend &b, int weight = 1, bool backup = false) {
    Backend backend;
    backend.address = QStringLiteral("127.0.0.1");
    backend.port = b.port();
    backend.weight = weight;
    backend.backup = backup;
    return backend;
}

inline ProxyConfig configFor(std::initializer_list<const TestBackend *> backends,
                             BalancingPolicy policy = BalancingPolicy::RoundRobin,
                             int threads = 1) {
    ProxyConfig config;
    config.threads = threads;
    config.policy = policy;
    for (const TestBackend *b : backends)
        config.backends.append(backendFor(*b));
    return config;
}

inline QString keyOf(const TestBackend &b) {
    return QString::fromStdString(b.key());
}

/// Resident set size of this process in kB.
inline long rssKb() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

/// Runs `clients` threads of keep-alive GETs until stopped; counts successes and failures.
class LoadGenerator {
public:
    LoadGenerator(uint16_t port, int clients, std::string path = "/")
        : m_port(port)
        , m_path(std::move(path)) {
        for (int i = 0; i < clients; ++i)
            m_threads.emplace_back([this] { loop(); });
    }
    ~LoadGenerator() { stop(); }
    void stop() {
        m_stop = true;
        for (auto &t : m_threads)
            if (t.joinable()) t.join();
    }
    int ok() const { return m_ok.load(); }
    int failed() const { return m_failed.load(); }
    std::string lastFailure() const { return m_lastFailure; }

private:
    void loop() {
        while (!m_stop) {
            HttpClient client(m_port);
            for (int i = 0; i < 50 && !m_stop; ++i) {
                const HttpResponse r = client.get(m_path);
                if (r.status == 200) {
                    ++m_ok;
                } else {
                    ++m_failed;
                    m_lastFailure = "status " + std::to_string(r.status) + " " + r.head;
                    break;
                }
            }
        }
    }
    uint16_t m_port;
    std::string m_path;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_ok{0};
    std::atomic<int> m_failed{0};
    std::string m_lastFailure;
    std::vector<std::thread> m_threads;
};

/// Polls `condition` until it holds or `timeoutMs` passes.
template <typename F> bool waitFor(F &&condition, int timeoutMs = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

} // namespace corral::test
