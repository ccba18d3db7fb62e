#pragma once

// The seam for a portable fallback: the workers talk to a Poller, and Linux gets the epoll
// implementation below. A poll()/kqueue Poller would implement the same four calls (with
// edge-triggered semantics emulated by re-arming), without touching the proxy logic.

#include <cerrno>
#include <cstdint>
#include <sys/epoll.h>
#include <unistd.h>

namespace corral::net {

struct PollEvent {
    void *object = nullptr;
    bool readable = false; ///< data, EOF or error: a read will not block
    bool writable = false;
    bool hangup = false; ///< peer closed or error: a short read is not the end
};

class Poller {
public:
    virtual ~Poller() = default;
    virtual bool valid() const = 0;
    /// Watches `fd` for both directions, edge-triggered: an event means "try again now".
    virtual bool add(int fd, void *object) = 0;
    /// Level-triggered readability only (wake-ups).
    virtual bool addLevel(int fd, void *object) = 0;
    /// A listening socket that every thread's poller watches: level-triggered readability,
    /// and a new connection wakes one idle poller rather than all of them.
    virtual bool addListener(int fd, void *object) { return addLevel(fd, object); }
    virtual void remove(int fd) = 0;
    /// `fd` is about to be closed. A poll()-style poller drops it; epoll does so by itself
    /// when the last reference to the file goes (the proxy never dup()s its sockets).
    virtual void forget(int fd) { remove(fd); }
    /// Waits at most `timeoutMs` (-1: forever); returns the number of events filled in.
    virtual int wait(PollEvent *events, int capacity, int timeoutMs) = 0;
};

class EpollPoller final : public Poller {
public:
    EpollPoller()
        : m_fd(epoll_create1(EPOLL_CLOEXEC)) {}
    ~EpollPoller() override {
        if (m_fd >= 0) ::close(m_fd);
    }
    EpollPoller(const EpollPoller &) = delete;
    EpollPoller &operator=(const EpollPoller &) = delete;

    bool valid() const override { return m_fd >= 0; }
    bool add(int fd, void *object) override {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = object;
        return epoll_ctl(m_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
    }
    bool addLevel(int fd, void *object) override {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = object;
        return epoll_ctl(m_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
    }
    bool addListener(int fd, void *object) override {
        // EPOLLEXCLUSIVE: the kernel wakes one epoll instance with a waiter, skipping busy
        // threads, so the shared socket spreads connections without a thundering herd.
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.ptr = object;
        return epoll_ctl(m_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
    }
    void remove(int fd) override { epoll_ctl(m_fd, EPOLL_CTL_DEL, fd, nullptr); }
    void forget(int) override {}
    int wait(PollEvent *events, int capacity, int timeoutMs) override {
        epoll_event raw[256];
        if (capacity > 256) capacity = 256;
        const int n = epoll_wait(m_fd, raw, capacity, timeoutMs);
        for (int i = 0; i < n; ++i) {
            const uint32_t e = raw[i].events;
            events[i].object = raw[i].data.ptr;
            events[i].hangup = e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
            events[i].readable = (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            events[i].writable = (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
        }
        return n < 0 ? 0 : n;
    }

private:
    int m_fd;
};

} // namespace corral::net
