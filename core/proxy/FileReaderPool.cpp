#include "proxy/FileReaderPool.h"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <unistd.h>

namespace corral::proxy {

namespace {
// Read in pieces this large into a scratch buffer: the bytes are not wanted, only their
// presence in the page cache (pread waits for them; readahead(2) may return before).
constexpr size_t ScratchBytes = 256 * 1024;
} // namespace

FileReaderPool::FileReaderPool(int threads, int loops)
    : m_loops(size_t(std::max(loops, 1))) {
    for (int i = 0; i < threads; ++i)
        m_threads.emplace_back([this] { run(); });
}

FileReaderPool::~FileReaderPool() {
    stop();
}

void FileReaderPool::attach(int loop, int wakeFd) {
    m_loops[size_t(loop)].wakeFd = wakeFd;
}

void FileReaderPool::submit(const Job &job) {
    {
        std::lock_guard lock(m_mutex);
        m_jobs.push_back(job);
    }
    m_wake.notify_one();
}

void FileReaderPool::takeDone(int loop, std::vector<Done> &out) {
    out.clear();
    LoopSlot &slot = m_loops[size_t(loop)];
    std::lock_guard lock(slot.mutex);
    out.swap(slot.done);
}

void FileReaderPool::stop() {
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping && m_threads.empty()) return;
        m_stopping = true;
    }
    m_wake.notify_all();
    for (std::thread &t : m_threads)
        if (t.joinable()) t.join();
    m_threads.clear();
    std::lock_guard lock(m_mutex);
    for (const Job &job : m_jobs) {
        LoopSlot &slot = m_loops[size_t(job.loop)];
        std::lock_guard slotLock(slot.mutex);
        slot.done.push_back(Done{job, ECANCELED});
    }
    m_jobs.clear();
}

void FileReaderPool::run() {
    const std::unique_ptr<char[]> scratch(new char[ScratchBytes]);
    for (;;) {
        Job job;
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [this] { return m_stopping || !m_jobs.empty(); });
            if (m_stopping) return;
            job = m_jobs.front();
            m_jobs.pop_front();
        }
        int error = 0;
        uint64_t at = job.offset;
        const uint64_t end = job.offset + job.length;
        while (at < end) {
            const ssize_t n =
                ::pread(job.fd, scratch.get(), size_t(std::min<uint64_t>(ScratchBytes, end - at)),
                        off_t(at));
            if (n > 0) {
                at += uint64_t(n);
            } else if (n == 0) {
                break; // the file shrank: the loop's sendfile finds out and cuts the response
            } else if (errno != EINTR) {
                error = errno;
                break;
            }
        }
        LoopSlot &slot = m_loops[size_t(job.loop)];
        {
            std::lock_guard lock(slot.mutex);
            slot.done.push_back(Done{job, error});
        }
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t w = ::write(slot.wakeFd, &one, sizeof one);
    }
}

} // namespace corral::proxy
