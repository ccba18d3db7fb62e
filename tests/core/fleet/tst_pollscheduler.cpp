// PollScheduler on its own: polls are answered by timers the test controls (or not at all),
// so the cap, the queue order, timeouts, back-off and removal are checked exactly.
#include "fleet/PollScheduler.h"

#include <QSignalSpy>
#include <QTest>

#include <memory>

using namespace corral;

namespace {

/// What the test's hosts do when polled: answer after `delayMs` (ok or failing), or hang
/// until the test answers for them.
struct FakeFleet {
    struct Behaviour {
        int delayMs = 10;
        bool ok = true;
        bool hang = false;
    };
    QHash<QString, Behaviour> behaviour;
    QStringList started;                      ///< every poll, in start order
    QHash<QString, PollScheduler::Done> hung; ///< polls the test answers itself
    int running = 0;
    int maxRunning = 0;
    QObject context;

    PollScheduler::Poll poll() {
        return [this](const QString &host, PollScheduler::Done done) {
            started.append(host);
            maxRunning = std::max(maxRunning, ++running);
            const Behaviour b = behaviour.value(host);
            if (b.hang) {
                hung.insert(host, std::move(done));
                return;
            }
            const auto answer = [this, b, done] {
                --running;
                done(b.ok, b.ok ? QString() : QStringLiteral("refused"));
            };
            if (b.delayMs == 0)
                answer(); // done() before poll() returns
            else
                QTimer::singleShot(b.delayMs, &context, answer);
        };
    }
    /// Answers a hung poll now (the host's late answer).
    void answerHung(const QString &host, bool ok) {
        const PollScheduler::Done done = hung.take(host);
        QVERIFY(done);
        --running;
        done(ok, QString());
    }
    int pollsOf(const QString &host) const { return int(started.count(host)); }
};

QStringList hostNames(int count) {
    QStringList names;
    for (int i = 0; i < count; ++i)
        names.append(QStringLiteral("h%1").arg(i, 2, 10, QLatin1Char('0')));
    return names;
}

} // namespace

class TestPollScheduler : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // 50 hosts, cap 16: never more than 16 at once, started in inventory order, one round.
    void capAndFifo() {
        FakeFleet fleet;
        PollScheduler scheduler(fleet.poll());
        PollOptions options;
        options.maxConcurrent = 16;
        options.intervalMs = 60000; // rounds by tick() only
        scheduler.setOptions(options);
        const QStringList hosts = hostNames(50);
        for (int i = 0; i < hosts.size(); ++i)
            fleet.behaviour[hosts.at(i)].delayMs = 5 + (i * 7) % 20;
        scheduler.setHosts(hosts);
        QSignalSpy polled(&scheduler, &PollScheduler::polled);
        QSignalSpy rounds(&scheduler, &PollScheduler::roundFinished);
        int maxInFlight = 0;
        connect(&scheduler, &PollScheduler::polled, this,
                [&] { maxInFlight = std::max(maxInFlight, scheduler.inFlight()); });

        scheduler.tick();
        QCOMPARE(scheduler.inFlight(), 16);
        QCOMPARE(scheduler.queued(), 34);
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 1, 5000);
        QCOMPARE(polled.size(), 50);
        QCOMPARE(fleet.started, hosts); // FIFO: inventory order
        QCOMPARE(fleet.maxRunning, 16);
        QCOMPARE(scheduler.maxInFlightSeen(), 16);
        QVERIFY(maxInFlight <= 16);
        QCOMPARE(scheduler.inFlight(), 0);
        for (const QList<QVariant> &signal : std::as_const(polled))
            QVERIFY(signal.at(1).toBool());

        // A lower cap applies to the next round.
        options.maxConcurrent = 3;
        scheduler.setOptions(options);
        fleet.maxRunning = 0;
        scheduler.tick();
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 2, 10000);
        QCOMPARE(fleet.maxRunning, 3);
        QCOMPARE(polled.size(), 100);
    }

    // A hung host is reported failed at its timeout and frees its slot; the others keep
    // being polled meanwhile; it is not polled again until its late answer, which is not
    // reported.
    void timeoutFreesTheSlot() {
        FakeFleet fleet;
        PollScheduler scheduler(fleet.poll());
        PollOptions options;
        options.maxConcurrent = 2;
        options.timeoutMs = 300;
        options.firstRetryMs = 1; // due again at once: only the hang keeps it from a poll
        options.intervalMs = 60000;
        scheduler.setOptions(options);
        fleet.behaviour[QStringLiteral("dead")].hang = true;
        const QStringList hosts{QStringLiteral("dead"), QStringLiteral("a"), QStringLiteral("b"),
                                QStringLiteral("c"), QStringLiteral("d")};
        for (const QString &host : hosts.mid(1))
            fleet.behaviour[host].delayMs = 20;
        scheduler.setHosts(hosts);
        QSignalSpy rounds(&scheduler, &PollScheduler::roundFinished);
        QStringList order;
        QList<bool> results;
        QString deadError;
        qint64 deadAfterMs = -1;
        QElapsedTimer clock;
        connect(&scheduler, &PollScheduler::polled, this,
                [&](const QString &host, bool ok, const QString &error, qint64) {
                    order.append(host);
                    results.append(ok);
                    if (host == QStringLiteral("dead") && deadAfterMs < 0) {
                        deadError = error;
                        deadAfterMs = clock.elapsed();
                    }
                });
        clock.start();
        scheduler.tick();
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 1, 3000);
        // The four live hosts went through the one other slot while "dead" held its own.
        QCOMPARE(order, (QStringList{QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c"),
                                     QStringLiteral("d"), QStringLiteral("dead")}));
        QCOMPARE(results, (QList<bool>{true, true, true, true, false}));
        QCOMPARE(deadError, QStringLiteral("no answer within 0.3 s"));
        QVERIFY2(deadAfterMs >= 300 && deadAfterMs < 300 + 250,
                 qPrintable(QString::number(deadAfterMs)));
        QCOMPARE(scheduler.inFlight(), 0);

        // Still hung: the next rounds poll the others, never "dead" a second time.
        order.clear();
        results.clear();
        scheduler.tick();
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 2, 3000);
        scheduler.tick();
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 3, 3000);
        QCOMPARE(fleet.pollsOf(QStringLiteral("dead")), 1);
        QCOMPARE(fleet.pollsOf(QStringLiteral("a")), 3);
        QVERIFY(!order.contains(QStringLiteral("dead")));

        // Its late answer is not reported, but frees it for the next round.
        fleet.answerHung(QStringLiteral("dead"), true);
        QVERIFY(!order.contains(QStringLiteral("dead")));
        QTRY_COMPARE_WITH_TIMEOUT(scheduler.retryInMs(QStringLiteral("dead")), qint64(0), 1000);
        fleet.behaviour[QStringLiteral("dead")] = {20, true, false};
        scheduler.tick();
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 4, 3000);
        QCOMPARE(fleet.pollsOf(QStringLiteral("dead")), 2);
        QCOMPARE(order.count(QStringLiteral("dead")), 1);
        QVERIFY(results.at(order.indexOf(QStringLiteral("dead")))); // answered in time now
    }

    // Failed polls wait firstRetryMs, doubling up to maxRetryMs; an answer resets it.
    void backOffDoublesAndResets() {
        FakeFleet fleet;
        PollScheduler scheduler(fleet.poll());
        PollOptions options;
        options.firstRetryMs = 100;
        options.maxRetryMs = 400;
        options.intervalMs = 60000;
        scheduler.setOptions(options);
        const QString host = QStringLiteral("flaky");
        fleet.behaviour[host] = {0, false, false}; // fails at once
        scheduler.setHosts({host});
        QSignalSpy polled(&scheduler, &PollScheduler::polled);

        for (const int expected : {100, 200, 400, 400}) {
            QTRY_COMPARE_WITH_TIMEOUT(scheduler.retryInMs(host), qint64(0), 2000);
            const int before = fleet.pollsOf(host);
            scheduler.tick();
            QCOMPARE(fleet.pollsOf(host), before + 1);
            QCOMPARE(polled.size(), before + 1);
            QVERIFY(!polled.last().at(1).toBool());
            const qint64 wait = scheduler.retryInMs(host);
            QVERIFY2(wait > expected - 50 && wait <= expected, qPrintable(QString::number(wait)));
            // Backing off: a tick now skips it.
            scheduler.tick();
            QCOMPARE(fleet.pollsOf(host), before + 1);
        }

        fleet.behaviour[host] = {0, true, false};
        QTRY_COMPARE_WITH_TIMEOUT(scheduler.retryInMs(host), qint64(0), 2000);
        scheduler.tick();
        QVERIFY(polled.last().at(1).toBool());
        QCOMPARE(scheduler.retryInMs(host), qint64(0));
        // Polled again at the very next tick, and a new failure starts from firstRetryMs.
        fleet.behaviour[host] = {0, false, false};
        const int before = fleet.pollsOf(host);
        scheduler.tick();
        QCOMPARE(fleet.pollsOf(host), before + 1);
        QVERIFY(scheduler.retryInMs(host) > 50 && scheduler.retryInMs(host) <= 100);
    }

    // A host known to answer again (its session came back) leaves its back-off at once.
    void endBackOffMakesTheHostDue() {
        FakeFleet fleet;
        PollScheduler scheduler(fleet.poll());
        PollOptions options;
        options.firstRetryMs = 60000;
        options.maxRetryMs = 60000;
        options.intervalMs = 60000;
        scheduler.setOptions(options);
        const QString host = QStringLiteral("back");
        fleet.behaviour[host] = {0, false, false}; // fails at once
        scheduler.setHosts({host});
        scheduler.tick();
        QCOMPARE(fleet.pollsOf(host), 1);
        QVERIFY(scheduler.retryInMs(host) > 50000);
        scheduler.tick();
        QCOMPARE(fleet.pollsOf(host), 1); // backing off
        scheduler.endBackOff(host);
        QCOMPARE(scheduler.retryInMs(host), qint64(0));
        fleet.behaviour[host] = {0, true, false};
        scheduler.tick();
        QCOMPARE(fleet.pollsOf(host), 2);
        scheduler.endBackOff(QStringLiteral("unknown")); // no such host: nothing happens
    }

    // A removed host's slot is freed at once and its late done() is ignored, even after the
    // scheduler itself is gone.
    void removalForgetsTheHost() {
        FakeFleet fleet;
        auto scheduler = std::make_unique<PollScheduler>(fleet.poll());
        PollOptions options;
        options.maxConcurrent = 1;
        options.timeoutMs = 60000;
        options.intervalMs = 60000;
        scheduler->setOptions(options);
        fleet.behaviour[QStringLiteral("gone")].hang = true;
        fleet.behaviour[QStringLiteral("stays")].delayMs = 10;
        scheduler->setHosts({QStringLiteral("gone"), QStringLiteral("stays")});
        QSignalSpy polled(scheduler.get(), &PollScheduler::polled);
        QSignalSpy rounds(scheduler.get(), &PollScheduler::roundFinished);
        scheduler->tick();
        QCOMPARE(scheduler->inFlight(), 1);
        QCOMPARE(scheduler->queued(), 1);

        // Removing the hung host frees the only slot: "stays" runs and the round ends.
        scheduler->setHosts({QStringLiteral("stays")});
        QTRY_COMPARE_WITH_TIMEOUT(rounds.size(), 1, 3000);
        QCOMPARE(polled.size(), 1);
        QCOMPARE(polled.first().at(0).toString(), QStringLiteral("stays"));
        fleet.answerHung(QStringLiteral("gone"), true);
        QCOMPARE(polled.size(), 1);
        QCOMPARE(scheduler->inFlight(), 0);

        // Added back: polled afresh; its answer after the scheduler is destroyed is dropped.
        scheduler->setHosts({QStringLiteral("gone"), QStringLiteral("stays")});
        scheduler->tick();
        QVERIFY(fleet.hung.contains(QStringLiteral("gone")));
        scheduler.reset();
        fleet.answerHung(QStringLiteral("gone"), true);
    }

    // start() polls at once and then every intervalMs.
    void startTicksEveryInterval() {
        FakeFleet fleet;
        PollScheduler scheduler(fleet.poll());
        PollOptions options;
        options.intervalMs = 50;
        scheduler.setOptions(options);
        scheduler.setHosts({QStringLiteral("x")});
        QSignalSpy rounds(&scheduler, &PollScheduler::roundFinished);
        scheduler.start();
        QCOMPARE(fleet.pollsOf(QStringLiteral("x")), 1);
        QTRY_VERIFY_WITH_TIMEOUT(rounds.size() >= 4, 3000);
        scheduler.stop();
    }
};

QTEST_GUILESS_MAIN(TestPollScheduler)
#include "tst_pollscheduler.moc"
