#pragma once

// A few threads that read the next part of large static files into the page cache, so the
// event loops' sendfile(2) (or pread) of it never waits on the disk: nginx's `aio threads`.
// One pool per engine, shared by its event loops; a finished read is queued for its loop and
// the loop is woken through its eventfd.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace corral::proxy {

class FileReaderPool {
public:
    struct Job {
        int fd = -1;
        uint64_t offset = 0;
        uint64_t length = 0;
        void *owner = nullptr; ///< the loop's client; only the loop reads it
        uint64_t ticket = 0;   ///< the loop's number for this job
        int loop = 0;
    };
    /// A job back on its loop: `error` 0 once [offset, offset + length) was read (or the file
    /// ended before), an errno otherwise (ECANCELED: the pool stopped before reading it).
    /// The loop owns `fd` again.
    struct Done {
        Job job;
        int error = 0;
    };

    FileReaderPool(int threads, int loops);
    ~FileReaderPool(); ///< stop()s
    FileReaderPool(const FileReaderPool &) = delete;
    FileReaderPool &operator=(const FileReaderPool &) = delete;

    /// Where loop `loop` is woken (its eventfd); set before it submits.
    void attach(int loop, int wakeFd);
    void submit(const Job &job);
    /// Swaps the finished jobs of `loop` into `out` (cleared first).
    void takeDone(int loop, std::vector<Done> &out);
    /// Joins the threads; jobs not started come back as ECANCELED. Call once no loop runs,
    /// before the loops (and their eventfds) go.
    void stop();

private:
    void run();

    struct LoopSlot {
        std::mutex mutex;
        std::vector<Done> done;
        int wakeFd = -1;
    };

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<Job> m_jobs;
    bool m_stopping = false;
    std::vector<std::thread> m_threads;
    std::vector<LoopSlot> m_loops;
};

} // namespace corral::proxy
