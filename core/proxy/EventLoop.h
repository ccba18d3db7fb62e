#pragma once

#include "http/HttpParser.h"
#include "net/Poller.h"
#include "net/TlsContext.h"
#include "proxy/Balancer.h"
#include "proxy/Compression.h"
#include "proxy/Connection.h"
#include "proxy/FileReaderPool.h"
#include "proxy/Pools.h"
#include "proxy/ProxyInternal.h"
#include "proxy/StaticFiles.h"
#include "proxy/TimerList.h"

#include <memory>
#include <thread>
#include <vector>

namespace corral::proxy {

/// What the threads share with the control side.
struct EngineShared {
    ProxyConfig config;
    http::HeadLimits headLimits;
    int threads = 1;

    std::mutex mutex; ///< guards backends and policy
    std::vector<std::shared_ptr<BackendRuntime>> backends;
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    std::atomic<uint64_t> version{1}; ///< bumped on every change; threads re-read lazily

    std::atomic<bool> draining{false};
    std::atomic<bool> stopping{false};
    std::atomic<int64_t> openConnections{0};
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> rejected{0};
    std::atomic<uint64_t> badRequests{0};
    std::atomic<uint64_t> noBackend{0};
    std::unique_ptr<AccessLog> accessLog; ///< null while the access log is off
    /// Set: clients speak TLS (ProxyConfig::tls), every loop shares the one context.
    std::shared_ptr<net::TlsContext> tls;
    std::shared_ptr<StaticFiles> staticFiles;    ///< null: no static files (root unset)
    std::unique_ptr<FileReaderPool> fileReaders; ///< with staticFiles: reads large files ahead

    /// Backend state changes for ProxyEngine::takeBackendEvents(). Only state changes take
    /// this lock (a passive "down", a health transition, a drain), never a request.
    std::mutex eventMutex;
    std::vector<BackendEvent> events;
    void pushEvent(const std::string &backend, BackendEvent::Kind kind, const std::string &why);
};

/// One event-loop thread: its own poller, connections, pools and timers. The listening
/// socket is the engine's, shared by every event loop (the engine closes it).
class EventLoop {
public:
    EventLoop(EngineShared &shared, int index, int listenFd);
    ~EventLoop();
    EventLoop(const EventLoop &) = delete;
    EventLoop &operator=(const EventLoop &) = delete;

    bool init();
    void start();
    void join();
    void wake();

private:
    // The loop.
    void run();
    int nextTimeoutMs() const;
    void onTimerExpired(int kind, TimerNode *node);

    // Accept: new client connections from the shared listening socket.
    void acceptConnections();
    void refuseWithReserve();
    void pauseAccepting();
    void resumeAcceptingWhenDue();

    void onClientEvent(Client *c, const net::PollEvent &ev);
    void onUpstreamEvent(Upstream *u, const net::PollEvent &ev);

    // A client connection's state machine: pump() runs its steps until none progresses.
    void pump(Client *c);
    bool flushClient(Client *c);
    bool stepHead(Client *c);
    bool startRequest(Client *c, uint32_t headLength);
    bool buildRequestHead(Client *c);
    bool stepProxy(Client *c);
    long forwardBody(Buffer &from, Buffer &to, http::BodyFramer *body);
    bool shouldSplice(const Client *c) const;
    int spliceBody(Client *c);
    bool handleResponseHead(Client *c);
    void finishResponse(Client *c);
    /// The response is complete (proxied or the proxy's own file): the next request, or the
    /// close once it is out.
    void completeResponse(Client *c);
    void updateProxyTimers(Client *c);
    void respondError(Client *c, int status, bool close);
    bool stepTunnel(Client *c);
    bool stepLinger(Client *c);

    // Static files (EventLoopFiles.cpp): 0 not one (the backends answer), 1 answered,
    // -1 wait until `out` has room for the head.
    int serveStatic(Client *c, uint32_t headLength);
    bool stepFile(Client *c);
    bool copyFileChunk(Client *c);
    void requestReadAhead(Client *c);
    void endFileResponse(Client *c);
    void closeFile(Client *c);
    void takeFileReads();
    void releaseFiles();

    // Backends: the choice, the connections to them, their failures.
    void refreshBackends();
    int chooseBackend(Client *c);
    Upstream *connectUpstream(LocalBackend &local);
    bool dispatch(Client *c);
    void releaseAttempt(Client *c);
    void poolUpstream(Upstream *u);
    void countResponse(BackendRuntime *rt, int status);
    ThreadCounters &counters(BackendRuntime *rt) { return rt->counters[size_t(m_index)]; }
    void noteFailure(BackendRuntime *rt, FailReason why);
    bool mayRetry(Client *c, FailReason why);
    void upstreamFailed(Client *c, bool countFailure, FailReason why);
    void badResponse(Client *c, FailReason why);

    // Closing. A client's backend connection is closed with it, never pooled.
    void closeClient(Client *c);
    /// Separates `c` from its backend connection and returns that (nullptr: it had none).
    Upstream *detachUpstream(Client *c);
    /// detachUpstream() and close it; true if there was one.
    bool dropUpstream(Client *c);
    void closeUpstream(Upstream *u);

    // I/O helpers: >0 bytes, 0 EOF, -1 would block, -2 error.
    int readSome(int fd, Buffer &b, bool &canRead, bool hangup);
    int writeSome(int fd, Buffer &b, bool &canWrite);
    // The client's side: readSome/writeSome, or through its TLS session.
    int readClient(Client *c);
    int writeClient(Client *c);
    /// The response is out and nothing more will be: close_notify (TLS), then the FIN.
    void shutdownClientWrite(Client *c);

    void arm(TimerNode &node, TimerKind kind) { m_timers.arm(node, kind, m_nowMs); }
    static void disarm(TimerNode &node) { Timers::disarm(node); }

    EngineShared &m_shared;
    const ProxyConfig &m_config;
    int m_index;
    int m_listenFd;
    const net::TlsContext *m_tls = nullptr; ///< the shared TLS context; null: plain HTTP
    int m_wakeFd = -1;
    bool m_listening = true;
    /// Held open for the moment accept() fails with EMFILE: closed to accept one client and
    /// tell it 503, then reopened (nginx and HAProxy keep accepting sane the same way).
    int m_reserveFd = -1;
    int64_t m_acceptResumeMs = 0; ///< accepting paused after EMFILE until then; 0: not paused
    std::unique_ptr<net::Poller> m_poller;
    std::thread m_thread;
    int64_t m_nowMs = 0;

    uint64_t m_version = 0;
    std::vector<LocalBackend> m_backends;
    Balancer m_balancer;

    http::RequestHead m_request;
    http::ResponseHead m_response;

    BufferPool m_buffers;
    PipePool m_pipes;
    ConnectionPool m_objects;
    CompressionPolicy m_compression; ///< gzip's rules; enabled(): the per-loop switch
    GzipEncoderPool m_gzipPool;      ///< encoders lent to the responses being compressed
    std::vector<Client *> m_clients; ///< open ones; Client::slot indexes it
    Timers m_timers;

    const StaticFiles *m_static = nullptr; ///< null: every request goes to a backend
    FileReaderPool *m_fileReaders = nullptr;
    std::vector<FileReaderPool::Done> m_fileReads; ///< reused by takeFileReads()
    uint64_t m_nextFileTicket = 0;
    AccessLogWriter *m_accessLog = nullptr; ///< this loop's side of the access log; null: off
};

} // namespace corral::proxy
