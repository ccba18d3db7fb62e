#pragma once

// The balancing policies as plain C++ (no Qt, no sockets), so each has exact unit tests.
// A Balancer holds only per-thread policy state (round-robin cursor, smooth-weighted current
// weights); which targets are usable and how loaded they are is asked through callbacks at
// pick time, because health and in-flight counts change under it.

#include "model/Site.h"

#include <cstdint>
#include <span>
#include <vector>

namespace corral {

struct BalancerTarget {
    int weight = 1;
    bool backup = false;
};

class Balancer {
public:
    void reset(BalancingPolicy policy, std::span<const BalancerTarget> targets);
    BalancingPolicy policy() const { return m_policy; }
    size_t size() const { return m_targets.size(); }

    /// Picks a target index, or -1 when none is usable. Primaries first; backups only when no
    /// primary is usable. `usable(i)` says whether target i may take a request now;
    /// `load(i)` is its in-flight count (least-conn); `hash` is the client address hash
    /// (ip-hash). StickyCookie picks like Weighted: the cookie lookup happens before.
    template <typename Usable, typename Load>
    int pick(uint64_t hash, Usable &&usable, Load &&load) {
        for (int pass = 0; pass < 2; ++pass) {
            const bool backup = pass == 1;
            const int chosen = pickAmong(backup, hash, usable, load);
            if (chosen >= 0) return chosen;
        }
        return -1;
    }

    /// nginx's ip_hash-style spread of an address (any bytes) to 64 bits.
    static uint64_t hashBytes(const void *data, size_t size);

private:
    template <typename Usable, typename Load>
    int pickAmong(bool backup, uint64_t hash, Usable &usable, Load &load) {
        const int n = int(m_targets.size());
        switch (m_policy) {
        case BalancingPolicy::RoundRobin:
            for (int k = 0; k < n; ++k) {
                const int i = (m_cursor + k) % n;
                if (m_targets[size_t(i)].backup == backup && usable(i)) {
                    m_cursor = (i + 1) % n;
                    return i;
                }
            }
            return -1;
        case BalancingPolicy::LeastConn: {
            // Lowest in-flight per weight; ties go round-robin so idle peers share evenly.
            int best = -1;
            int64_t bestNum = 0, bestDen = 1;
            for (int k = 0; k < n; ++k) {
                const int i = (m_cursor + k) % n;
                const BalancerTarget &t = m_targets[size_t(i)];
                if (t.backup != backup || !usable(i)) continue;
                const int64_t l = int64_t(load(i));
                if (best < 0 || l * bestDen < bestNum * t.weight) {
                    best = i;
                    bestNum = l;
                    bestDen = t.weight;
                }
            }
            if (best >= 0) m_cursor = (best + 1) % n;
            return best;
        }
        case BalancingPolicy::IpHash: {
            // Same address, same target while it is usable; rehash past unusable ones.
            std::vector<int> &pool = m_scratch;
            pool.clear();
            for (int i = 0; i < n; ++i)
                if (m_targets[size_t(i)].backup == backup) pool.push_back(i);
            if (pool.empty()) return -1;
            uint64_t h = hash;
            for (int tries = 0; tries < 20; ++tries) {
                const int i = pool[size_t(h % pool.size())];
                if (usable(i)) return i;
                h = hashBytes(&h, sizeof h);
            }
            for (int i : pool)
                if (usable(i)) return i;
            return -1;
        }
        case BalancingPolicy::Weighted:
        case BalancingPolicy::StickyCookie: {
            // nginx's smooth weighted round-robin: every usable target gains its weight, the
            // largest current wins and pays back the total.
            int best = -1;
            int64_t total = 0;
            for (int i = 0; i < n; ++i) {
                BalancerTarget &t = m_targets[size_t(i)];
                if (t.backup != backup || !usable(i)) continue;
                m_current[size_t(i)] += t.weight;
                total += t.weight;
                if (best < 0 || m_current[size_t(i)] > m_current[size_t(best)]) best = i;
            }
            if (best >= 0) m_current[size_t(best)] -= total;
            return best;
        }
        }
        return -1;
    }

    BalancingPolicy m_policy = BalancingPolicy::RoundRobin;
    std::vector<BalancerTarget> m_targets;
    std::vector<int64_t> m_current;
    std::vector<int> m_scratch;
    int m_cursor = 0;
};

} // namespace corral
