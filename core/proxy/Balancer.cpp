#include "proxy/Balancer.h"

namespace corral {

void Balancer::reset(BalancingPolicy policy, std::span<const BalancerTarget> targets) {
    m_policy = policy;
    m_targets.assign(targets.begin(), targets.end());
    m_current.assign(targets.size(), 0);
    m_scratch.reserve(targets.size());
    m_cursor = 0;
}

uint64_t Balancer::hashBytes(const void *data, size_t size) {
    // FNV-1a followed by a murmur finaliser: cheap and well mixed for short keys.
    uint64_t h = 1469598103934665603ull;
    const auto *p = static_cast<const unsigned char *>(data);
    for (size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

} // namespace corral
