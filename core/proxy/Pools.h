#pragma once

// What one event-loop thread reuses instead of allocating per request: byte buffers,
// connection objects, and open keep-alive connections to each backend.

#include "proxy/Connection.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace corral::proxy {

/// Fixed-size buffers lent to connections while they have bytes to hold.
class BufferPool {
public:
    explicit BufferPool(uint32_t bufferSize)
        : m_bufferSize(bufferSize) {}
    ~BufferPool() {
        for (char *b : m_free)
            std::free(b);
    }
    BufferPool(const BufferPool &) = delete;
    BufferPool &operator=(const BufferPool &) = delete;

    uint32_t bufferSize() const { return m_bufferSize; }

    /// Gives `b` a buffer unless it has one; false when memory ran out.
    bool ensure(Buffer &b) {
        if (b.data) return true;
        if (!m_free.empty()) {
            b.data = m_free.back();
            m_free.pop_back();
        } else {
            b.data = static_cast<char *>(std::malloc(m_bufferSize));
            if (!b.data) return false;
        }
        b.begin = b.end = 0;
        return true;
    }

    /// Takes `b`'s buffer back (whatever it still held is dropped).
    void release(Buffer &b) {
        if (!b.data) return;
        // Keep a bounded reserve: a burst's buffers are reused, then returned to the system.
        if (m_free.size() < 1024)
            m_free.push_back(b.data);
        else
            std::free(b.data);
        b.data = nullptr;
        b.begin = b.end = 0;
    }

    /// Free bytes behind what `b` holds.
    uint32_t space(const Buffer &b) const { return m_bufferSize - b.end; }

    /// Moves what `b` holds to its start when little room is left behind it.
    void makeRoom(Buffer &b) const {
        if (b.begin > 0 && b.begin == b.end) {
            b.begin = b.end = 0;
        } else if (b.begin > 0 && space(b) < m_bufferSize / 4) {
            std::memmove(b.data, b.data + b.begin, b.size());
            b.end -= b.begin;
            b.begin = 0;
        }
    }

private:
    uint32_t m_bufferSize;
    std::vector<char *> m_free;
};

/// Client and Upstream objects. A closed one is retired, not reused at once: events of the
/// current batch may still point at it (they see it `closed` and skip it).
class ConnectionPool {
public:
    ConnectionPool() = default;
    ~ConnectionPool() {
        recycleRetired();
        for (Client *c : m_freeClients)
            delete c;
        for (Upstream *u : m_freeUpstreams)
            delete u;
    }
    ConnectionPool(const ConnectionPool &) = delete;
    ConnectionPool &operator=(const ConnectionPool &) = delete;

    Client *newClient() {
        Client *c = take(m_freeClients);
        c->kind = Kind::Client;
        c->timer.owner = c;
        return c;
    }
    Upstream *newUpstream() {
        Upstream *u = take(m_freeUpstreams);
        u->kind = Kind::Upstream;
        u->timer.owner = u;
        return u;
    }

    /// Back at once: for an object no event can point at yet (never registered for polling).
    void giveBack(Client *c) { m_freeClients.push_back(c); }
    void giveBack(Upstream *u) { m_freeUpstreams.push_back(u); }

    /// Closed during this batch of events: reusable after it.
    void retire(Pollable *p) { m_retired.push_back(p); }

    /// Call between batches: what was retired is reusable now.
    void recycleRetired() {
        for (Pollable *p : m_retired) {
            if (p->kind == Kind::Client)
                m_freeClients.push_back(static_cast<Client *>(p));
            else
                m_freeUpstreams.push_back(static_cast<Upstream *>(p));
        }
        m_retired.clear();
    }

private:
    template <typename T> static T *take(std::vector<T *> &free) {
        if (free.empty()) return new T{};
        T *object = free.back();
        free.pop_back();
        *object = T{};
        return object;
    }

    std::vector<Client *> m_freeClients;
    std::vector<Upstream *> m_freeUpstreams;
    std::vector<Pollable *> m_retired;
};

/// One backend's open keep-alive connections, waiting for the next request to it.
class IdleUpstreams {
public:
    bool empty() const { return m_idle.empty(); }
    size_t size() const { return m_idle.size(); }

    void put(Upstream *u) {
        u->pooled = true;
        m_idle.push_back(u);
    }
    /// The most recently pooled one (the least likely to have been closed by the backend).
    Upstream *take() {
        Upstream *u = m_idle.back();
        m_idle.pop_back();
        u->pooled = false;
        return u;
    }
    /// Takes `u` out if it is here.
    void remove(Upstream *u) {
        const auto it = std::find(m_idle.begin(), m_idle.end(), u);
        if (it == m_idle.end()) return;
        *it = m_idle.back();
        m_idle.pop_back();
        u->pooled = false;
    }
    /// Empties the pool, for closing what it held.
    std::vector<Upstream *> takeAll() {
        std::vector<Upstream *> all;
        all.swap(m_idle);
        for (Upstream *u : all)
            u->pooled = false;
        return all;
    }

private:
    std::vector<Upstream *> m_idle;
};

/// A backend as one thread sees it: its policy slot and its idle keep-alive connections.
struct LocalBackend {
    std::shared_ptr<BackendRuntime> runtime;
    IdleUpstreams idle;
};

} // namespace corral::proxy
