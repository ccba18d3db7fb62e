#include "helpers/ProxyTestUtil.h"

#include <QTest>

using namespace corral;
using namespace corral::test;

// Failover, passive and active health, 502 and 504.
class TestProxyFailover : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void killedBackendMidLoadLosesNoGet() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a, &b}, BalancingPolicy::RoundRobin, 2)).ok());
        LoadGenerator load(engine.port(), 8);
        QVERIFY(waitFor([&] { return load.ok() > 300; }));
        b.stop(); // connections cut, port closed
        const int atKill = load.ok();
        QVERIFY(waitFor([&] { return load.ok() > atKill + 1000; }, 20000));
        load.stop();
        QVERIFY2(load.failed() == 0, load.lastFailure().c_str());
        const ProxyStats stats = engine.snapshot();
        QCOMPARE(backendStateName(stats.backends[1].state), QStringLiteral("down"));
    }

    void postWithSentBodyIsNotRetried() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.maxFails = 0; // no passive marking: both backends stay candidates
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"));
        QCOMPARE(client.read().status, 502);
        QCOMPARE(a.requests() + b.requests(), 1);
        // A GET that meets the same failure is retried on the other backend.
        HttpClient again(engine.port());
        QCOMPARE(again.get("/reset").status, 502);
        QCOMPARE(a.requests() + b.requests(), 3);
        QCOMPARE(engine.snapshot().backends[0].failovers + engine.snapshot().backends[1].failovers,
                 uint64_t(1));
    }

    void passiveHealthMarksDownForFailTimeout() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.maxFails = 1;
        config.failTimeoutMs = 600;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        const uint16_t bPort = b.port();
        b.stop();
        HttpClient client(engine.port());
        for (int i = 0; i < 10; ++i)
            QCOMPARE(client.get("/").status, 200);
        ProxyStats stats = engine.snapshot();
        QCOMPARE(stats.backends[1].failovers, uint64_t(1)); // failed once, then skipped
        QCOMPARE(stats.backends[1].state, BackendState::Down);
        // Back after fail_timeout once it answers again.
        TestBackend revived;
        QVERIFY(revived.start(bPort));
        QVERIFY(waitFor([&] { return engine.snapshot().backends[1].state == BackendState::Up; }));
        for (int i = 0; i < 10; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(revived.requests(), 5);
    }

    void activeHealthChecks() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.health.path = QStringLiteral("/health");
        config.health.intervalMs = 50;
        config.health.rises = 2;
        config.health.falls = 2;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        b.setHealthy(false);
        QVERIFY(waitFor([&] { return engine.snapshot().backends[1].state == BackendState::Down; }));
        const int b0 = b.requests();
        HttpClient client(engine.port());
        for (int i = 0; i < 10; ++i)
            QCOMPARE(client.get("/").status, 200);
        // Only health probes reached b, no traffic.
        QCOMPARE(engine.snapshot().backends[1].requests, uint64_t(0));
        QVERIFY(b.requests() >= b0);
        b.setHealthy(true);
        QVERIFY(waitFor([&] { return engine.snapshot().backends[1].state == BackendState::Up; }));
        for (int i = 0; i < 10; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(engine.snapshot().backends[1].requests, uint64_t(5));
    }

    void noBackendIs502() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a})).ok());
        a.stop();
        HttpClient client(engine.port());
        const HttpResponse r = client.get("/");
        QCOMPARE(r.status, 502);
        QCOMPARE(r.body, std::string("Bad Gateway\n"));
        // The connection stays usable for the next request.
        QCOMPARE(client.get("/").status, 502);
    }

    void slowBackendIs504() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.responseTimeoutMs = 300;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        const auto started = std::chrono::steady_clock::now();
        QCOMPARE(client.get("/slow/3000").status, 504);
        QVERIFY(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(2500));
        QCOMPARE(engine.snapshot().backends[0].responses[3], uint64_t(1));
    }
};

QTEST_GUILESS_MAIN(TestProxyFailover)
#include "tst_proxyfailover.moc"
