#include "fleet/PollScheduler.h"

#include <QPointer>

#include <algorithm>
#include <limits>

namespace corral {

struct PollScheduler::HostState {
    bool queued = false;    ///< waits in m_queue
    bool inFlight = false;  ///< a poll is out and its done() has not come (even after a timeout)
    bool holdsSlot = false; ///< counted in m_running: running and not yet reported
    bool inRound = false;   ///< part of the current round and not yet reported
    quint64 attempt = 0;    ///< the poll out (m_nextAttempt when it started)
    qint64 startedAt = 0;   ///< m_clock ms
    qint64 deadline = 0;
    qint64 notBefore = 0; ///< back-off: not polled before this (m_clock ms)
    qint64 retryMs = 0;   ///< the current back-off; 0 after an answer
};

PollScheduler::PollScheduler(Poll poll, QObject *parent)
    : QObject(parent)
    , m_poll(std::move(poll)) {
    m_clock.start();
    m_timeouts.setSingleShot(true);
    connect(&m_timer, &QTimer::timeout, this, &PollScheduler::tick);
    connect(&m_timeouts, &QTimer::timeout, this, [this] {
        const qint64 now = m_clock.elapsed();
        QList<std::pair<QString, quint64>> expired;
        for (auto it = m_hosts.cbegin(); it != m_hosts.cend(); ++it)
            if (it.value()->holdsSlot && it.value()->deadline <= now)
                expired.append({it.key(), it.value()->attempt});
        // Each report may run slots that change the hosts: look every one up again.
        for (const auto &[host, attempt] : std::as_const(expired))
            finish(host, attempt, false,
                   QStringLiteral("no answer within %1 s").arg(m_options.timeoutMs / 1000.0), true);
        dispatch();
    });
}

PollScheduler::~PollScheduler() {
    qDeleteAll(m_hosts);
}

void PollScheduler::setOptions(const PollOptions &options) {
    m_options = options;
    if (m_timer.isActive()) m_timer.setInterval(std::max(1, m_options.intervalMs));
    dispatch(); // a raised cap starts queued polls now
}

void PollScheduler::setHosts(const QStringList &hosts) {
    QStringList order;
    for (const QString &host : hosts)
        if (!order.contains(host)) order.append(host);
    for (auto it = m_hosts.begin(); it != m_hosts.end();) {
        if (order.contains(it.key())) {
            ++it;
            continue;
        }
        // Forgotten: its slot and its place in the round are freed now; a done() that still
        // comes finds no state (or another attempt number) and is ignored.
        HostState *state = it.value();
        if (state->holdsSlot) --m_running;
        if (state->inRound) --m_roundPending;
        m_queue.removeAll(it.key());
        delete state;
        it = m_hosts.erase(it);
    }
    for (const QString &host : std::as_const(order))
        if (!m_hosts.contains(host)) m_hosts.insert(host, new HostState);
    m_order = order;
    if (m_roundOpen && m_roundPending == 0) {
        m_roundOpen = false;
        Q_EMIT roundFinished(m_roundClock.elapsed());
    }
    dispatch();
}

void PollScheduler::start() {
    m_timer.start(std::max(1, m_options.intervalMs));
    tick();
}

void PollScheduler::stop() {
    m_timer.stop();
}

void PollScheduler::tick() {
    const qint64 now = m_clock.elapsed();
    for (const QString &host : std::as_const(m_order)) {
        HostState *state = m_hosts.value(host);
        if (!state || state->queued || state->inFlight || state->notBefore > now) continue;
        state->queued = true;
        m_queue.append(host);
    }
    // The round: every host waiting or running now, those of an unfinished earlier round
    // included (they are reported in this one).
    m_roundPending = 0;
    for (HostState *state : std::as_const(m_hosts)) {
        state->inRound = state->queued || state->holdsSlot;
        if (state->inRound) ++m_roundPending;
    }
    m_roundOpen = m_roundPending > 0;
    m_roundClock.start();
    dispatch();
}

qint64 PollScheduler::retryInMs(const QString &host) const {
    const HostState *state = m_hosts.value(host);
    return state ? std::max<qint64>(0, state->notBefore - m_clock.elapsed()) : 0;
}

void PollScheduler::endBackOff(const QString &host) {
    HostState *state = m_hosts.value(host);
    if (!state) return;
    state->notBefore = 0;
    state->retryMs = 0;
}

void PollScheduler::dispatch() {
    // A poll may call done() before it returns: the loop below picks up the slot it freed.
    if (m_dispatching) return;
    m_dispatching = true;
    while (m_running < std::max(1, m_options.maxConcurrent) && !m_queue.isEmpty()) {
        const QString host = m_queue.takeFirst();
        HostState *state = m_hosts.value(host);
        if (!state) continue;
        state->queued = false;
        state->inFlight = true;
        state->holdsSlot = true;
        state->attempt = ++m_nextAttempt;
        state->startedAt = m_clock.elapsed();
        state->deadline = state->startedAt + std::max(1, m_options.timeoutMs);
        ++m_running;
        m_maxSeen = std::max(m_maxSeen, m_running);
        const QPointer<PollScheduler> guard(this);
        const quint64 attempt = state->attempt;
        m_poll(host, [guard, host, attempt](bool ok, const QString &error) {
            // The scheduler may be gone (the console closed) by the time a host answers.
            if (guard) guard->finish(host, attempt, ok, error, false);
        });
    }
    m_dispatching = false;
    armTimeouts();
}

void PollScheduler::armTimeouts() {
    qint64 earliest = std::numeric_limits<qint64>::max();
    for (const HostState *state : std::as_const(m_hosts))
        if (state->holdsSlot) earliest = std::min(earliest, state->deadline);
    if (earliest == std::numeric_limits<qint64>::max()) {
        m_timeouts.stop();
        return;
    }
    m_timeouts.start(int(std::clamp<qint64>(earliest - m_clock.elapsed(), 0, 1 << 30)));
}

void PollScheduler::finish(const QString &host, quint64 attempt, bool ok, const QString &error,
                           bool timedOut) {
    HostState *state = m_hosts.value(host);
    // A removed host, a poll of an earlier attempt, or a second done(): nothing to do.
    if (!state || state->attempt != attempt || !state->inFlight) return;
    if (!timedOut) state->inFlight = false; // a timed-out host stays busy until it answers
    if (state->holdsSlot) {
        report(host, *state, ok, error, m_clock.elapsed() - state->startedAt);
        // `state` may be gone: report() emits signals.
    }
    if (!timedOut) dispatch();
}

void PollScheduler::report(const QString &host, HostState &state, bool ok, const QString &error,
                           qint64 elapsedMs) {
    state.holdsSlot = false;
    --m_running;
    if (ok) {
        state.retryMs = 0;
        state.notBefore = 0;
    } else {
        const qint64 first = std::max(1, m_options.firstRetryMs);
        state.retryMs =
            state.retryMs > 0
                ? std::min<qint64>(state.retryMs * 2, std::max(first, qint64(m_options.maxRetryMs)))
                : first;
        state.notBefore = m_clock.elapsed() + state.retryMs;
    }
    const bool roundDone = state.inRound && --m_roundPending == 0 && m_roundOpen;
    state.inRound = false;
    if (roundDone) m_roundOpen = false;
    Q_EMIT polled(host, ok, error, elapsedMs);
    if (roundDone) Q_EMIT roundFinished(m_roundClock.elapsed());
}

} // namespace corral
