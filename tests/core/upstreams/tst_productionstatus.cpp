// runBounded(), the queue under productionBackendStatus() (`corralctl ps`): the work items
// are held by the test, so the number running at once is seen exactly; the hosts themselves
// are exercised by tst_corralctl_remoteops (ps) and bench_fleet.
#include "upstreams/ProductionStatus.h"

#include <QTest>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using namespace corral;

class TestProductionStatus : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // 50 held items under the default cap: exactly the cap runs at once, the rest wait in the
    // queue, and every item runs once when they are let go.
    void neverRunsMoreThanTheCap() {
        const int cap = PollOptions{}.maxConcurrent;
        constexpr int count = 50;
        std::mutex mutex;
        std::condition_variable released;
        bool open = false;
        std::atomic<int> running{0};
        std::atomic<int> most{0};
        std::vector<std::atomic<int>> runs(count);
        std::thread caller([&] {
            runBounded(count, cap, [&](int index) {
                const int now = ++running;
                for (int seen = most; now > seen && !most.compare_exchange_weak(seen, now);) {
                }
                ++runs[std::size_t(index)];
                {
                    std::unique_lock lock(mutex);
                    // Bounded, so a broken queue fails the test instead of hanging it.
                    released.wait_for(lock, std::chrono::seconds(20), [&] { return open; });
                }
                --running;
            });
        });
        // Held, the first `cap` items fill every slot and stay (more threads would pass it).
        QTRY_COMPARE_WITH_TIMEOUT(running.load(), cap, 5000);
        {
            std::lock_guard lock(mutex);
            open = true;
        }
        released.notify_all();
        caller.join();
        QCOMPARE(most.load(), cap);
        QCOMPARE(running.load(), 0);
        for (int i = 0; i < count; ++i)
            QCOMPARE(runs[std::size_t(i)].load(), 1);
    }

    // Fewer items than the cap, and a cap below one (taken as one): all run, none twice.
    void smallQueues() {
        for (const auto &[count, cap] : {std::pair{3, 16}, std::pair{4, 0}, std::pair{0, 16}}) {
            std::atomic<int> running{0};
            std::atomic<int> most{0};
            std::atomic<int> done{0};
            runBounded(count, cap, [&](int) {
                const int now = ++running;
                for (int seen = most; now > seen && !most.compare_exchange_weak(seen, now);) {
                }
                ++done;
                --running;
            });
            QCOMPARE(done.load(), count);
            QVERIFY(most <= std::max(cap, 1));
        }
    }
};

QTEST_GUILESS_MAIN(TestProductionStatus)
#include "tst_productionstatus.moc"
