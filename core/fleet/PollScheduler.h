#pragma once

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QTimer>

#include <functional>

namespace corral {

/// How the fleet is polled (the console's Options, `corral --poll-interval`, bench_fleet).
struct PollOptions {
    int intervalMs = 1000;   ///< one round is started this often
    int maxConcurrent = 16;  ///< polls (SSH commands) running at once; the rest wait in a queue
    int timeoutMs = 3000;    ///< a poll not answered by then counts as failed ("no answer")
    int firstRetryMs = 1000; ///< back-off for a host whose poll failed: first wait...
    int maxRetryMs = 30000;  ///< ...doubling up to this
    bool operator==(const PollOptions &) const = default;
};

/// Who is polled when, with no I/O of its own: every `intervalMs` each host that is due (not
/// in flight, not backing off) joins a FIFO queue; at most `maxConcurrent` polls run at once.
/// A poll not finished within `timeoutMs` is reported failed and frees its slot at once, so a
/// dead or hung host never delays the others; that host is not polled again until its late
/// answer has come (it is never polled twice at once). A host whose poll failed waits
/// firstRetryMs, then twice that ... up to maxRetryMs before its next poll; an answer resets it.
class PollScheduler : public QObject {
    Q_OBJECT

public:
    /// Starts one poll of `host`; `done(ok, error)` must be called exactly once, on this
    /// object's thread, whenever it finishes (even after the scheduler gave up on it).
    using Done = std::function<void(bool ok, const QString &error)>;
    using Poll = std::function<void(const QString &host, Done done)>;

    explicit PollScheduler(Poll poll, QObject *parent = nullptr);
    ~PollScheduler() override;

    void setOptions(const PollOptions &options);
    const PollOptions &options() const { return m_options; }
    /// Hosts polled from now on (those removed are forgotten; one in flight is ignored when
    /// it answers).
    void setHosts(const QStringList &hosts);

    void start(); ///< a round now, then every intervalMs
    void stop();
    /// Starts a round now: queues every due host.
    void tick();

    int inFlight() const { return m_running; } ///< slots in use now
    int maxInFlightSeen() const { return m_maxSeen; }
    int queued() const { return int(m_queue.size()); }
    /// ms until the host's next poll is allowed (0: due now); for the overview's "retry in".
    qint64 retryInMs(const QString &host) const;
    /// The host is known to answer again (its SSH session came back): its back-off ends, so
    /// the next round polls it instead of showing it unreachable for up to maxRetryMs more.
    void endBackOff(const QString &host);

Q_SIGNALS:
    /// A poll ended: answered (`ok`), failed, or given up after timeoutMs (`ok` false,
    /// `error` "no answer within N s"); the late answer of a timed-out poll is not reported.
    void polled(const QString &host, bool ok, const QString &error, qint64 elapsedMs);
    /// Every host of the round that began at the last tick() has been reported.
    void roundFinished(qint64 elapsedMs);

private:
    struct HostState;
    void dispatch();
    void finish(const QString &host, quint64 attempt, bool ok, const QString &error, bool timedOut);

    void armTimeouts();
    void report(const QString &host, HostState &state, bool ok, const QString &error,
                qint64 elapsedMs);

    Poll m_poll;
    PollOptions m_options;
    QHash<QString, HostState *> m_hosts;
    QStringList m_order;       ///< setHosts() order: a round queues its hosts in it
    quint64 m_nextAttempt = 0; ///< unique per poll: a late done() finds no poll of that number
    bool m_dispatching = false;
    bool m_roundOpen = false; ///< a round began and not all its hosts are reported
    QStringList m_queue;
    int m_running = 0;
    int m_maxSeen = 0;
    int m_roundPending = 0;
    QElapsedTimer m_roundClock;
    QElapsedTimer m_clock; ///< monotonic time for back-off and timeouts
    QTimer m_timer;
    QTimer m_timeouts; ///< fires at the earliest running poll's deadline
};

} // namespace corral
