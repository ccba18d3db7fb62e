#pragma once

// Continuous requests through a balancer while something happens to its backends (a rolling
// restart, a reload), counting every answer that is not a 200.

#include "BalancerFixture.h"

#include <QDeadlineTimer>
#include <QMutex>
#include <QStringList>
#include <QTest>

#include <atomic>
#include <chrono>
#include <thread>

namespace corral::test {

/// Requests to a balancer from a thread of its own, one fresh connection each, until stopped;
/// every answer that is not a 200 counts as a failure.
class BalancerLoad {
public:
    explicit BalancerLoad(quint16 port)
        : m_thread([this, port] {
            while (!m_stop) {
                const HttpReply reply = httpGet(port, "/", "shop.example.com", 10000);
                ++m_total;
                if (reply.status != 200) {
                    ++m_failed;
                    const QMutexLocker lock(&m_mutex);
                    m_failures.append(QString::number(reply.status) + QLatin1Char(' ') +
                                      QString::fromUtf8(reply.body.left(80)));
                }
                // Paced (a few hundred requests a second), so the balancer and sshd on this
                // two-core machine are not starved while the restart runs.
                std::this_thread::sleep_for(std::chrono::milliseconds(3));
            }
        }) {}
    ~BalancerLoad() { stop(); }
    void stop() {
        m_stop = true;
        if (m_thread.joinable()) m_thread.join();
    }
    int total() const { return m_total; }
    int failed() const { return m_failed; }
    QStringList failures() {
        const QMutexLocker lock(&m_mutex);
        return m_failures;
    }
    /// Waits until `count` requests were answered (the load is really running).
    bool waitFor(int count) {
        const QDeadlineTimer deadline(10000);
        while (m_total < count && !deadline.hasExpired())
            QTest::qWait(20);
        return m_total >= count;
    }

private:
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_total{0};
    std::atomic<int> m_failed{0};
    QMutex m_mutex;
    QStringList m_failures;
    std::thread m_thread; // last: starts once the counters exist
};

} // namespace corral::test
