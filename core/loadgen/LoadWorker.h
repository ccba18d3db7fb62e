#pragma once

// The load generator's sending thread and what it shares with the LoadGenerator that owns it.
// Internal to core/loadgen.

#include "loadgen/LoadGenerator.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace corral {

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

    Shared();
    ~Shared();
    Shared(const Shared &) = delete;
    Shared &operator=(const Shared &) = delete;

    /// Interrupts the sending thread's wait: the knobs changed, or stop.
    void wake() const;
};

struct LoadWorkerConfig {
    std::string host;
    quint16 port = 0;
    int connections = 8;
    std::function<void(const QString &)> report; // thread-safe: queues failed() to the owner
};

/// The sending thread's body: sends until `shared.stopping`, then drains and closes.
void runLoadWorker(LoadGenerator::Shared &shared, LoadWorkerConfig config);

} // namespace corral
