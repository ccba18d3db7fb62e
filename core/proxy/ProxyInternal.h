#pragma once

// Engine internals shared by ProxyEngine.cpp, ProxyWorker.cpp and the admin server. Not a
// public header: nothing outside core/proxy includes it.

#include "proxy/ProxyEngine.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <vector>

namespace corral::proxy {

/// Latency histogram bucket upper bounds in microseconds; the last is open-ended.
inline constexpr uint32_t LatencyBoundsUs[] = {
    50,     100,    200,    300,    500,     750,     1000,    1500,     2000,     3000,
    5000,   7500,   10000,  15000,  20000,   30000,   50000,   75000,    100000,   150000,
    200000, 300000, 500000, 750000, 1000000, 2000000, 5000000, 10000000, 30000000, UINT32_MAX};
inline constexpr int LatencyBuckets = int(sizeof LatencyBoundsUs / sizeof LatencyBoundsUs[0]);

inline int latencyBucket(uint64_t us) {
    int i = 0;
    while (i < LatencyBuckets - 1 && us > LatencyBoundsUs[i])
        ++i;
    return i;
}

/// One thread's counters for one backend. Only that thread writes (load+store, no locked
/// instruction); readers sum all slots. Cache-line aligned so threads never share a line.
struct alignas(64) ThreadCounters {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> responses[4] = {};
    std::atomic<uint64_t> bytesIn{0};
    std::atomic<uint64_t> bytesOut{0};
    std::atomic<uint64_t> failovers{0};
    std::atomic<uint64_t> failures{0};
    std::atomic<uint64_t> latency[LatencyBuckets] = {};

    static void add(std::atomic<uint64_t> &counter, uint64_t n) {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
};

/// A backend as the engine sees it: configuration, health, counters. Shared (shared_ptr) by
/// the control side and the threads; a removed backend lives on until its last in-flight
/// request lets go.
struct BackendRuntime {
    BackendRuntime(const Backend &backend, int threads);

    Backend config; ///< weight and flags here are guarded by the engine's mutex
    QString key;
    std::string id; ///< opaque sticky-cookie value
    sockaddr_storage address{};
    socklen_t addressLength = 0;

    std::atomic<bool> enabled{true};
    std::atomic<bool> draining{false};
    std::atomic<bool> removed{false};
    std::atomic<bool> healthDown{false};
    std::atomic<int64_t> downUntilMs{0}; ///< passive health
    std::atomic<int> recentFailures{0};
    std::atomic<int64_t> failureWindowStartMs{0};
    std::atomic<int64_t> inFlight{0}; ///< requests and tunnels; least-conn reads it

    std::unique_ptr<ThreadCounters[]> counters; ///< one per thread, + one for the control side
    int counterSlots = 0;

    std::mutex drainMutex;
    std::function<void()> onDrained;

    // Active health check bookkeeping (health thread only).
    int healthSuccesses = 0;
    int healthFailures = 0;

    /// May take new requests at `nowMs`.
    bool usable(int64_t nowMs) const {
        return enabled.load(std::memory_order_relaxed) &&
               !draining.load(std::memory_order_relaxed) &&
               !removed.load(std::memory_order_relaxed) &&
               !healthDown.load(std::memory_order_relaxed) &&
               downUntilMs.load(std::memory_order_relaxed) <= nowMs;
    }
    /// Runs and clears the drain callback if draining and empty.
    void fireDrainedIfEmpty();
    void recordFailure(int64_t nowMs, int maxFails, int failTimeoutMs);
};

int64_t monotonicMs();
uint64_t monotonicUs();

} // namespace corral::proxy
