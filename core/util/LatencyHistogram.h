#pragma once

// Request latencies in fixed buckets, shared by the proxy (per backend, summed over its
// threads' lock-free counters) and the load generator (per slice of its one-second window), so
// both read percentiles the same way and their figures compare. Constant size, no allocation.

#include <array>
#include <cstddef>
#include <cstdint>

namespace corral {

class LatencyHistogram {
public:
    /// Bucket upper bounds in microseconds, inclusive; the last bucket is open-ended.
    static constexpr std::array<uint32_t, 30> BoundsUs = {
        50,     100,    200,    300,    500,     750,     1000,    1500,     2000,     3000,
        5000,   7500,   10000,  15000,  20000,   30000,   50000,   75000,    100000,   150000,
        200000, 300000, 500000, 750000, 1000000, 2000000, 5000000, 10000000, 30000000, UINT32_MAX};
    static constexpr int Buckets = int(BoundsUs.size());

    /// The bucket of a latency of `us` microseconds.
    static constexpr int bucketOf(uint64_t us) {
        int i = 0;
        while (i < Buckets - 1 && us > BoundsUs[size_t(i)])
            ++i;
        return i;
    }

    void record(uint64_t us) { ++m_counts[size_t(bucketOf(us))]; }
    /// Adds `n` samples to bucket `bucket` (a sum of another histogram's counters).
    void add(int bucket, uint64_t n) { m_counts[size_t(bucket)] += n; }
    void add(const LatencyHistogram &other) {
        for (size_t i = 0; i < m_counts.size(); ++i)
            m_counts[i] += other.m_counts[i];
    }

    uint64_t count(int bucket) const { return m_counts[size_t(bucket)]; }
    uint64_t total() const {
        uint64_t sum = 0;
        for (const uint64_t n : m_counts)
            sum += n;
        return sum;
    }

    /// The `p` quantile (0.99 for p99) in milliseconds: the upper bound of the bucket that
    /// holds the sample of rank ceil(p * total), so a percentile never reads better than it
    /// was; the open-ended last bucket reads as its lower bound. 0 when empty.
    double percentileMs(double p) const {
        const uint64_t all = total();
        if (all == 0) return 0.0;
        // Rounds up, but a product a hair above a whole number (floating-point error in
        // p * all) stays that rank rather than moving to the next.
        const auto rank = uint64_t(double(all) * p + 0.999999);
        uint64_t seen = 0;
        for (int k = 0; k < Buckets; ++k) {
            seen += m_counts[size_t(k)];
            if (seen >= rank)
                return double(BoundsUs[size_t(k == Buckets - 1 ? k - 1 : k)]) / 1000.0;
        }
        return 0.0;
    }

private:
    std::array<uint64_t, Buckets> m_counts{};
};

} // namespace corral
