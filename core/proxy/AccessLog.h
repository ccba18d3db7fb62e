#pragma once

// The proxy's access log: one line per request in nginx's combined format plus the upstream
// fields ($upstream_addr $upstream_status $request_time $upstream_response_time), written off
// the hot path. Each event loop formats its lines into its own buffer, without a lock, and
// hands the batch over once per turn of its loop (one uncontended lock per batch, not per
// request); a writer thread takes the batches every 100 ms, or sooner when a buffer fills, and
// writes them to standard output or to a file rotated as worker logs are (RotatingLog). A
// writer that falls behind never stalls a loop: lines that find the buffer full are dropped
// and counted.

#include "proxy/ProxyEngine.h"
#include "util/Result.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace corral {
class RotatingLog;
}

namespace corral::http {
struct RequestHead;
}

namespace corral::proxy {

/// What a request's line needs that is gone by the time it is written (the request head's
/// bytes move on): kept in the client connection, filled only while the log is on. The
/// strings keep their capacity across requests and connections (ConnectionPool keeps this
/// when it recycles a Client), so a steady state allocates nothing.
struct AccessLogRequest {
    /// `request" "referer" "user agent`, each escaped; the quotes between them included.
    std::string text;
    uint32_t requestLength = 0;  ///< the escaped request line's bytes at the start of `text`
    bool captured = false;       ///< `text` belongs to the request being answered
    uint64_t attemptStartUs = 0; ///< when the current upstream attempt began
    uint64_t bodyBytes = 0;      ///< response body bytes passed to the client
    /// Earlier attempts of this request that failed and moved on, as nginx lists them in
    /// $upstream_addr ("a, b"), $upstream_status and $upstream_response_time: the addresses
    /// copied (a removed backend may be gone by the time the line is written), each followed
    /// by ", ". Attempts past MaxAttempts are left out; the final one is always there.
    static constexpr int MaxAttempts = 4;
    std::string triedAddresses;
    uint16_t triedStatus[MaxAttempts] = {};
    uint32_t triedUs[MaxAttempts] = {};
    uint8_t attemptCount = 0;
};

struct BackendRuntime;
struct Client;
class AccessLog;

/// One event loop's side of the log. Only that loop's thread calls it.
class alignas(64) AccessLogWriter {
public:
    /// At the start of a request: the request line (the first line of `head`, as received)
    /// and, when the head parsed (`parsed` non-null), its Referer and User-Agent.
    void capture(AccessLogRequest &request, std::string_view head, const http::RequestHead *parsed);
    /// An upstream attempt ended in failure and the request moved on to another backend;
    /// `startUs`: the request's start (the first attempt's).
    void attemptFailed(AccessLogRequest &request, const std::string &backend, int status,
                       uint64_t startUs);
    /// `client`'s request is answered with `status`: formats its line into this loop's batch.
    /// `upstream`: the backend whose answer (or failure) it was; null when none was tried.
    void write(Client &client, int status, const BackendRuntime *upstream);
    /// write() for the proxy's own error `response` (head and body as sent).
    void writeError(Client &client, int status, const BackendRuntime *upstream,
                    std::string_view response);
    /// Hands the lines formatted since the last call to the writer thread (once per loop turn).
    void publish();

private:
    friend class AccessLog;
    void refreshTime();

    AccessLog *m_log = nullptr;
    std::mutex m_mutex;    ///< guards m_pending, m_pendingLines: one lock per loop turn
    std::string m_pending; ///< handed over, not yet taken by the writer thread
    uint32_t m_pendingLines = 0;
    std::string m_batch; ///< lines formatted since the last publish()
    uint32_t m_batchLines = 0;
    int64_t m_timeSecond = -1; ///< the second m_time was formatted for
    char m_time[40] = {};      ///< $time_local: "03/Dec/2026:06:11:48 +0000"
    uint8_t m_timeLength = 0;
};

/// The log shared by the engine's loops; owns the writer thread.
class AccessLog {
public:
    /// Opens `config.path` ("-": standard output) for `loops` event loops. Fails naming the
    /// file when it cannot be opened.
    static Result<std::unique_ptr<AccessLog>> open(const AccessLogConfig &config, int loops);
    ~AccessLog(); ///< close()s
    AccessLog(const AccessLog &) = delete;
    AccessLog &operator=(const AccessLog &) = delete;

    AccessLogWriter &writer(int loop) { return *m_writers[size_t(loop)]; }
    /// Writes out every line handed over so far and stops the writer thread. The event loops
    /// must have stopped.
    void close();

    uint64_t writtenLines() const { return m_written.load(std::memory_order_relaxed); }
    /// Lines lost because the writer thread fell behind (the buffers were full).
    uint64_t droppedLines() const { return m_dropped.load(std::memory_order_relaxed); }

    /// A loop's hand-over buffer holds at most this many bytes; lines beyond are dropped.
    static constexpr size_t MaxPendingBytes = 4 * 1024 * 1024;
    /// The writer is woken early once a buffer holds this much.
    static constexpr size_t WakeBytes = 256 * 1024;
    static constexpr int FlushIntervalMs = 100;

private:
    friend class AccessLogWriter;
    AccessLog() = default;
    void run();
    void wakeWriter();
    /// Writes `bytes` out; returns how many of its lines could not be (standard output
    /// blocked past the stop deadline).
    uint32_t writeOut(const std::string &bytes);
    uint32_t writeToStandardOutput(const std::string &bytes);

    std::vector<std::unique_ptr<AccessLogWriter>> m_writers;
    std::unique_ptr<RotatingLog> m_file; ///< null: standard output
    std::thread m_thread;
    std::mutex m_wakeMutex;
    std::condition_variable m_wake;
    bool m_stop = false;
    /// close() was called: a standard output that takes nothing for StopGraceMs is given up on,
    /// so a reader that went away (a stopped pager) cannot hold the engine's stop forever.
    std::atomic<bool> m_closing{false};
    static constexpr int StopGraceMs = 1000;
    bool m_wakeRequested = false;
    std::atomic<uint64_t> m_written{0};
    std::atomic<uint64_t> m_dropped{0};
};

/// Appends `bytes` escaped as nginx's escape=default does: `"`, `\`, and bytes below 0x20 or
/// from 0x7f on become \xHH, so no value can end a field or a line early. Empty: "-".
void appendEscaped(std::string &out, std::string_view bytes);

} // namespace corral::proxy
