#include "proxy/Balancer.h"

#include <QTest>

#include <map>
#include <string>
#include <vector>

using namespace corral;

class TestBalancer : public QObject {
    Q_OBJECT

    static std::vector<int> run(Balancer &b, int picks, const std::vector<bool> &up,
                                const std::vector<int> &load = {}, uint64_t hash = 0) {
        std::vector<int> counts(b.size(), 0);
        for (int i = 0; i < picks; ++i) {
            const int k = b.pick(
                hash, [&](int t) { return up[size_t(t)]; },
                [&](int t) { return load.empty() ? 0 : load[size_t(t)]; });
            if (k >= 0) ++counts[size_t(k)];
        }
        return counts;
    }

private Q_SLOTS:
    void roundRobinIsExactlyEven() {
        Balancer b;
        const std::vector<BalancerTarget> t(3);
        b.reset(BalancingPolicy::RoundRobin, t);
        QCOMPARE(run(b, 300, {true, true, true}), std::vector<int>({100, 100, 100}));
        QCOMPARE(run(b, 300, {true, false, true}), std::vector<int>({150, 0, 150}));
    }

    void smoothWeightedMatchesNginx() {
        // nginx's example: weights 5,1,1 give a a b a c a a, never a run of five a's.
        Balancer b;
        const std::vector<BalancerTarget> t{{5, false}, {1, false}, {1, false}};
        b.reset(BalancingPolicy::Weighted, t);
        std::string sequence;
        for (int i = 0; i < 7; ++i)
            sequence += char('a' + b.pick(
                                       0, [](int) { return true; }, [](int) { return 0; }));
        QCOMPARE(QString::fromStdString(sequence), QStringLiteral("aabacaa"));
        QCOMPARE(run(b, 700, {true, true, true}), std::vector<int>({500, 100, 100}));
    }

    void leastConnPrefersIdle() {
        Balancer b;
        const std::vector<BalancerTarget> t(3);
        b.reset(BalancingPolicy::LeastConn, t);
        QCOMPARE(run(b, 10, {true, true, true}, {5, 0, 3}), std::vector<int>({0, 10, 0}));
        // Ties spread round-robin.
        QCOMPARE(run(b, 30, {true, true, true}, {1, 1, 1}), std::vector<int>({10, 10, 10}));
        // Weighted: load 4 at weight 4 beats load 2 at weight 1.
        const std::vector<BalancerTarget> w{{4, false}, {1, false}};
        b.reset(BalancingPolicy::LeastConn, w);
        QCOMPARE(run(b, 5, {true, true}, {4, 2}), std::vector<int>({5, 0}));
    }

    void ipHashIsStable() {
        Balancer b;
        const std::vector<BalancerTarget> t(4);
        b.reset(BalancingPolicy::IpHash, t);
        std::map<int, int> seen;
        for (int ip = 0; ip < 64; ++ip) {
            const uint64_t h = Balancer::hashBytes(&ip, sizeof ip);
            const auto counts = run(b, 10, {true, true, true, true}, {}, h);
            int target = -1;
            for (size_t k = 0; k < counts.size(); ++k)
                if (counts[k]) {
                    QCOMPARE(counts[k], 10); // always the same target
                    target = int(k);
                }
            ++seen[target];
            // Down target: moves, still stable.
            std::vector<bool> up(4, true);
            up[size_t(target)] = false;
            const auto moved = run(b, 10, up, {}, h);
            QCOMPARE(moved[size_t(target)], 0);
            QCOMPARE(*std::max_element(moved.begin(), moved.end()), 10);
        }
        QCOMPARE(int(seen.size()), 4); // every target gets some addresses
    }

    void backupsOnlyWhenPrimariesDown() {
        for (BalancingPolicy p :
             {BalancingPolicy::RoundRobin, BalancingPolicy::Weighted, BalancingPolicy::LeastConn,
              BalancingPolicy::IpHash, BalancingPolicy::StickyCookie}) {
            Balancer b;
            const std::vector<BalancerTarget> t{{1, false}, {1, false}, {1, true}};
            b.reset(p, t);
            QCOMPARE(run(b, 20, {true, true, true})[2], 0);
            QCOMPARE(run(b, 20, {false, false, true})[2], 20);
            QCOMPARE(run(b, 20, {false, false, false}), std::vector<int>({0, 0, 0}));
        }
    }
};

QTEST_GUILESS_MAIN(TestBalancer)
#include "tst_balancer.moc"
