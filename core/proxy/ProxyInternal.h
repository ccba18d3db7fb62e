#pragma once

// Engine internals shared by ProxyEngine.cpp, EventLoop.cpp and the admin server. Not a
// public header: nothing outside core/proxy includes it.

#include "proxy/ProxyEngine.h"
#include "util/LatencyHistogram.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <vector>

namespace corral::proxy {

/// One thread's counters for one backend. Only that thread writes (load+store, no locked
/// instruction); readers sum all slots. Cache-line aligned so threads never share a line.
struct alignas(64) ThreadCounters {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> responses[4] = {};
    std::atomic<uint64_t> bytesIn{0};
    std::atomic<uint64_t> bytesOut{0};
    std::atomic<uint64_t> failovers{0};
    std::atomic<uint64_t> failures{0};
    std::atomic<uint64_t> latency[LatencyHistogram::Buckets] = {}; ///< LatencyHistogram's buckets
    std::atomic<uint64_t> latencySumUs{0};

    static void add(std::atomic<uint64_t> &counter, uint64_t n) {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void recordLatency(uint64_t us) {
        add(latency[LatencyHistogram::bucketOf(us)], 1);
        add(latencySumUs, us);
    }
};

/// What went wrong with a backend, for the 502/504 body, the log and passive health.
enum class FailReason : uint8_t {
    None,
    Refused,           ///< connection refused
    Unreachable,       ///< any other connect error
    ConnectTimeout,    ///< no connection within connectTimeoutMs
    Closed,            ///< EOF before any response byte
    Reset,             ///< a send/receive error before any response byte
    ResponseTimeout,   ///< idle for responseTimeoutMs while the proxy waited on it
    MalformedHead,     ///< a response head that does not parse or frames ambiguously
    HeadTooLarge,      ///< a response head larger than a buffer
    UnsolicitedSwitch, ///< 101 to a request that asked for no upgrade
    UnsupportedCoding, ///< a transfer coding other than chunked
};

/// "refused the connection", "did not answer within 60 s", ...: what the backend did, said
/// after its address. Failure path only (allocates).
std::string describeFailure(FailReason why, const ProxyConfig &config);
/// "60 s", "300 ms".
std::string durationText(int ms);

/// A backend as the engine sees it: configuration, health, counters. Shared (shared_ptr) by
/// the control side and the threads; a removed backend lives on until its last in-flight
/// request lets go.
struct BackendRuntime {
    BackendRuntime(const Backend &backend, int threads);

    Backend config; ///< weight and flags here are guarded by the engine's mutex
    QString key;
    std::string label; ///< key as UTF-8 ("127.0.0.1:3000"), for 502/504 bodies
    std::string id;    ///< opaque sticky-cookie value
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
    std::atomic<FailReason> lastFailure{FailReason::None}; ///< the latest, from any thread
    std::atomic<bool> passiveDown{false}; ///< a "down" event was queued; "up" not yet

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
    /// Counts a failure for passive health; true when it took the backend out just now.
    bool recordFailure(int64_t nowMs, int maxFails, int failTimeoutMs);
};

int64_t monotonicMs();
uint64_t monotonicUs();

} // namespace corral::proxy
