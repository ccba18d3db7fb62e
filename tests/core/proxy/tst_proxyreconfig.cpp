#include "helpers/ProxyTestUtil.h"

#include <QTest>

using namespace corral;
using namespace corral::test;

// Hot reconfiguration while serving: nothing may fail, drains wait for in-flight work.
class TestProxyReconfig : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void addRemoveDrainUnderLoad() {
        TestBackend a, b, c;
        QVERIFY(a.start());
        QVERIFY(b.start());
        QVERIFY(c.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a, &b}, BalancingPolicy::RoundRobin, 2)).ok());
        LoadGenerator load(engine.port(), 6);
        QVERIFY(waitFor([&] { return load.ok() > 200; }));

        QVERIFY(engine.addBackend(backendFor(c)).ok());
        QVERIFY(waitFor([&] { return c.requests() > 50; }));

        std::atomic<bool> drained{false};
        QVERIFY(engine.drainBackend(keyOf(a), [&] { drained = true; }).ok());
        QVERIFY(waitFor([&] { return drained.load(); }));
        const int aAfterDrain = a.requests();
        const int okAtDrain = load.ok();
        QVERIFY(waitFor([&] { return load.ok() > okAtDrain + 300; }));
        QCOMPARE(a.requests(), aAfterDrain); // no new request reached a
        QCOMPARE(backendStateName(engine.snapshot().backends[0].state), QStringLiteral("draining"));

        QVERIFY(engine.removeBackend(keyOf(a)).ok());
        QVERIFY(engine.setWeight(keyOf(b), 3).ok());
        QVERIFY(engine.disableBackend(keyOf(c)).ok());
        // Requests already sent to c before the disable may still arrive; count from the
        // point where every connection has completed requests since.
        const int okAtDisableCall = load.ok();
        QVERIFY(waitFor([&] { return load.ok() > okAtDisableCall + 60; }));
        const int cAfter = c.requests();
        const int okAtDisable = load.ok();
        QVERIFY(waitFor([&] { return load.ok() > okAtDisable + 300; }));
        QCOMPARE(c.requests(), cAfter);
        QVERIFY(engine.enableBackend(keyOf(c)).ok());
        QVERIFY(waitFor([&] { return c.requests() > cAfter + 20; }));
        engine.setPolicy(BalancingPolicy::LeastConn);
        const int okAtPolicy = load.ok();
        QVERIFY(waitFor([&] { return load.ok() > okAtPolicy + 300; }));
        load.stop();
        QVERIFY2(load.failed() == 0, load.lastFailure().c_str());
        QCOMPARE(engine.snapshot().backends.size(), 2);
        QVERIFY(!engine.removeBackend(keyOf(a)).ok());
    }

    void drainWaitsForInFlightRequestAndTunnel() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a, &b})).ok());
        // A slow request and a WebSocket on a.
        HttpClient slow(engine.port());
        QVERIFY(slow.send("GET /slow/600 HTTP/1.1\r\nHost: t\r\n\r\n"));
        QVERIFY(waitFor([&] { return a.inFlight() == 1; }));
        HttpClient filler(engine.port());
        QCOMPARE(filler.get("/").status, 200); // round-robin: b
        HttpClient ws(engine.port());
        QVERIFY(ws.send(
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
        QCOMPARE(ws.read().status, 101);
        QCOMPARE(engine.snapshot().backends[0].inFlight, int64_t(2));

        std::atomic<bool> drained{false};
        QVERIFY(engine.drainBackend(keyOf(a), [&] { drained = true; }).ok());
        QVERIFY(!drained);
        QCOMPARE(slow.read().status, 200); // the in-flight request finishes
        QVERIFY(ws.send("still open"));
        QVERIFY(waitFor([&] {
            ws.fill();
            return ws.buffer() == "still open";
        }));
        QVERIFY(!drained);
        ws.close();
        QVERIFY(waitFor([&] { return drained.load(); }));
        // Re-enabling ends the drain.
        QVERIFY(engine.enableBackend(keyOf(a)).ok());
        const int a0 = a.requests();
        HttpClient client(engine.port());
        for (int i = 0; i < 4; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(a.requests() - a0, 2);
    }

    void drainOfIdleBackendCallsBackAtOnce() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a})).ok());
        bool drained = false;
        QVERIFY(engine.drainBackend(keyOf(a), [&] { drained = true; }).ok());
        QVERIFY(drained);
        QVERIFY(!engine.drainBackend(QStringLiteral("127.0.0.1:1"), {}).ok());
    }

    void drainAndStopFinishesRequests() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a})).ok());
        HttpClient idle(engine.port());
        QCOMPARE(idle.get("/").status, 200);
        HttpClient slow(engine.port());
        QVERIFY(slow.send("GET /slow/300 HTTP/1.1\r\nHost: t\r\n\r\n"));
        QVERIFY(waitFor([&] { return a.inFlight() == 1; }));
        std::thread stopper([&] { QVERIFY(engine.drainAndStop(std::chrono::seconds(5))); });
        const HttpResponse r = slow.read();
        stopper.join();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.header("connection"), std::string("close"));
        QVERIFY(idle.waitClosed());
        QVERIFY(!engine.isRunning());
    }
};

QTEST_GUILESS_MAIN(TestProxyReconfig)
#include "tst_proxyreconfig.moc"
