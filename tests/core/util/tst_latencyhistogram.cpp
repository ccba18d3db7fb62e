// The one latency histogram of the proxy (admin API percentiles) and the load generator: bucket
// edges and percentiles against values worked out by hand.
#include "util/LatencyHistogram.h"

#include <QTest>

#include <cstdint>

using corral::LatencyHistogram;

class TestLatencyHistogram : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // Bounds are inclusive upper edges; everything past the last finite one is the last bucket.
    void bucketEdges() {
        QCOMPARE(LatencyHistogram::Buckets, 30);
        QCOMPARE(LatencyHistogram::bucketOf(0), 0);
        QCOMPARE(LatencyHistogram::bucketOf(50), 0);
        QCOMPARE(LatencyHistogram::bucketOf(51), 1);
        QCOMPARE(LatencyHistogram::bucketOf(1000), 6);
        QCOMPARE(LatencyHistogram::bucketOf(1001), 7);
        QCOMPARE(LatencyHistogram::bucketOf(30000000), 28);
        QCOMPARE(LatencyHistogram::bucketOf(30000001), 29);
        QCOMPARE(LatencyHistogram::bucketOf(UINT64_MAX), 29);
    }

    void percentiles() {
        LatencyHistogram h;
        QCOMPARE(h.percentileMs(0.99), 0.0); // no samples
        for (int i = 0; i < 98; ++i)
            h.record(40); // <= 50 us
        h.record(2500);   // <= 3 ms
        h.record(2999);
        QCOMPARE(h.total(), uint64_t(100));
        QCOMPARE(h.count(0), uint64_t(98));
        QCOMPARE(h.count(9), uint64_t(2));
        // Ranks 50, 90 and 98 fall in the first bucket, rank 99 in the 3 ms one: each reads as
        // its bucket's upper bound.
        QCOMPARE(h.percentileMs(0.50), 0.05);
        QCOMPARE(h.percentileMs(0.90), 0.05);
        QCOMPARE(h.percentileMs(0.98), 0.05);
        QCOMPARE(h.percentileMs(0.99), 3.0);
        QCOMPARE(h.percentileMs(1.0), 3.0);
    }

    // The rank rounds up: with ten samples, p99 is the slowest one.
    void rankRoundsUp() {
        LatencyHistogram h;
        for (int i = 0; i < 9; ++i)
            h.record(100);
        h.record(1000);
        QCOMPARE(h.percentileMs(0.90), 0.1);
        QCOMPARE(h.percentileMs(0.91), 1.0);
        QCOMPARE(h.percentileMs(0.99), 1.0);
        LatencyHistogram one;
        one.record(7000);
        QCOMPARE(one.percentileMs(0.5), 7.5);
        QCOMPARE(one.percentileMs(0.99), 7.5);
    }

    // The last bucket has no upper bound: it reads as its lower one (30 s), not as 4295 s.
    void openEndedBucket() {
        LatencyHistogram h;
        h.record(40'000'000);
        QCOMPARE(h.percentileMs(0.99), 30000.0);
    }

    // The proxy sums its threads' counters, the load generator its window's slices.
    void sums() {
        LatencyHistogram a;
        LatencyHistogram b;
        a.record(40);
        b.record(400);
        b.add(LatencyHistogram::bucketOf(400), 2);
        a.add(b);
        QCOMPARE(a.total(), uint64_t(4));
        QCOMPARE(a.count(4), uint64_t(3));
        QCOMPARE(a.percentileMs(0.25), 0.05);
        QCOMPARE(a.percentileMs(0.5), 0.5);
    }
};

QTEST_GUILESS_MAIN(TestLatencyHistogram)
#include "tst_latencyhistogram.moc"
