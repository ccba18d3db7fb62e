#pragma once

// What one event-loop thread reuses instead of allocating per request: byte buffers,
// connection objects, and open keep-alive connections to each backend.

#include "proxy/Connection.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
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
        Client *c = take(m_freeClients, [](Client &reused) {
            // The access log's strings keep their capacity: no allocation per connection.
            std::string text = std::move(reused.log.text);
            std::string tried = std::move(reused.log.triedAddresses);
            reused = Client{};
            reused.log.text = std::move(text);
            reused.log.triedAddresses = std::move(tried);
        });
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
    template <typename T, typename Reset> static T *take(std::vector<T *> &free, Reset &&reset) {
        if (free.empty()) return new T{};
        T *object = free.back();
        free.pop_back();
        reset(*object);
        return object;
    }
    template <typename T> static T *take(std::vector<T *> &free) {
        return take(free, [](T &reused) { reused = T{}; });
    }

    std::vector<Client *> m_freeClients;
    std::vector<Upstream *> m_freeUpstreams;
    std::vector<Pollable *> m_retired;
};

/// Pipes for splicing response bodies. An emptied pipe is kept for the next large response
/// (creating one costs two descriptors and a syscall or two); a pipe with bytes left in it
/// (its client went away) is closed. At most MaxInUse at a time: each holds two
/// descriptors, and beyond that a response is copied as usual.
class PipePool {
public:
    static constexpr int MaxInUse = 256;
    static constexpr int MaxIdle = 64;
    /// Asked of the kernel per pipe (the default is 64 KiB): fewer splice calls per body.
    static constexpr int Capacity = 256 * 1024;

    PipePool() = default;
    ~PipePool() {
        for (SplicePipe &p : m_idle)
            closePipe(p);
    }
    PipePool(const PipePool &) = delete;
    PipePool &operator=(const PipePool &) = delete;

    /// Opens (or reuses) a pipe into `p`; false when none may or can be had.
    bool acquire(SplicePipe &p) {
        if (m_inUse >= MaxInUse) return false;
        if (!m_idle.empty()) {
            p = m_idle.back();
            m_idle.pop_back();
        } else {
            int fds[2];
            if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
            ::fcntl(fds[1], F_SETPIPE_SZ, Capacity); // may be refused: keep the default
            const int size = ::fcntl(fds[1], F_GETPIPE_SZ);
            p = SplicePipe{fds[0], fds[1], uint32_t(size > 0 ? size : 65536), 0};
        }
        ++m_inUse;
        return true;
    }

    void release(SplicePipe &p) {
        if (!p.open()) return;
        --m_inUse;
        if (p.bytes == 0 && m_idle.size() < size_t(MaxIdle))
            m_idle.push_back(p);
        else
            closePipe(p);
        p = SplicePipe{};
    }

private:
    static void closePipe(SplicePipe &p) {
        ::close(p.readFd);
        ::close(p.writeFd);
    }

    std::vector<SplicePipe> m_idle;
    int m_inUse = 0;
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
