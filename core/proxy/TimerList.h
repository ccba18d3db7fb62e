#pragma once

// Intrusive deadline lists for the event loop: arming, disarming and expiring a timer are
// O(1) pointer updates with no allocation, which is what lets every connection carry one.

#include <algorithm>
#include <cstdint>

namespace corral::proxy {

/// A timer embedded in the object it times (a connection). `owner` points back to it.
struct TimerNode {
    TimerNode *prev = nullptr;
    TimerNode *next = nullptr;
    int64_t deadline = 0;
    int8_t list = -1; ///< the kind it is armed as; -1: not armed
    void *owner = nullptr;

    bool armed() const { return list >= 0; }
};

/// One list per kind of timeout. Every timer of a kind has the same duration, so appending
/// keeps each list ordered by deadline: the earliest is always its first entry.
template <int Kinds> class TimerList {
public:
    TimerList() {
        for (TimerNode &head : m_heads)
            head.prev = head.next = &head;
    }
    TimerList(const TimerList &) = delete; // the heads point at themselves
    TimerList &operator=(const TimerList &) = delete;

    void setDuration(int kind, int ms) { m_durationMs[kind] = ms; }

    /// (Re)starts `node` as a timer of `kind`, due its duration after `nowMs`.
    void arm(TimerNode &node, int kind, int64_t nowMs) {
        disarm(node);
        TimerNode &head = m_heads[kind];
        node.deadline = nowMs + m_durationMs[kind];
        node.list = int8_t(kind);
        node.prev = head.prev;
        node.next = &head;
        head.prev->next = &node;
        head.prev = &node;
    }

    static void disarm(TimerNode &node) {
        if (node.list < 0) return;
        node.prev->next = node.next;
        node.next->prev = node.prev;
        node.prev = node.next = nullptr;
        node.list = -1;
    }

    /// The earliest deadline of any armed timer, or INT64_MAX.
    int64_t nextDeadline() const {
        int64_t next = INT64_MAX;
        for (const TimerNode &head : m_heads)
            if (head.next != &head) next = std::min(next, head.next->deadline);
        return next;
    }

    /// Disarms every timer due at `nowMs` and calls `onExpired(kind, node)` for it. The
    /// callback may arm and disarm any timer, these lists included.
    template <typename OnExpired> void expire(int64_t nowMs, OnExpired &&onExpired) {
        for (int kind = 0; kind < Kinds; ++kind) {
            TimerNode &head = m_heads[kind];
            while (head.next != &head && head.next->deadline <= nowMs) {
                TimerNode *node = head.next;
                disarm(*node);
                onExpired(kind, node);
            }
        }
    }

private:
    TimerNode m_heads[Kinds];
    int m_durationMs[Kinds] = {};
};

} // namespace corral::proxy
