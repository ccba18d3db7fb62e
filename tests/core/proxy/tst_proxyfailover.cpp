#include "helpers/ProxyTestUtil.h"
#include "helpers/TestProcess.h"

#include <QProcess>
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

    // Issue 13.1: two backends that read a request and close without answering. Only an
    // idempotent request (and PUT/DELETE only without a body) may reach the second one.
    void nonIdempotentRequestIsSentOnce_data() {
        QTest::addColumn<QByteArray>("request");
        QTest::addColumn<int>("executions");
        const auto row = [](const char *name, const QByteArray &request, int executions) {
            QTest::newRow(name) << request << executions;
        };
        row("post cl 0", "POST /close HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 1);
        row("post no body", "POST /close HTTP/1.1\r\nHost: t\r\n\r\n", 1);
        row("patch no body", "PATCH /close HTTP/1.1\r\nHost: t\r\n\r\n", 1);
        row("post body", "POST /close HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody", 1);
        row("put body", "PUT /close HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody", 1);
        row("delete", "DELETE /close HTTP/1.1\r\nHost: t\r\n\r\n", 2);
        row("get", "GET /close HTTP/1.1\r\nHost: t\r\n\r\n", 2);
        row("put no body", "PUT /close HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 2);
    }
    void nonIdempotentRequestIsSentOnce() {
        QFETCH(QByteArray, request);
        QFETCH(int, executions);
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.maxFails = 0; // both stay candidates
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send(request.toStdString()));
        QCOMPARE(client.read().status, 502);
        QCOMPARE(a.requests() + b.requests(), executions);
    }

    // A pooled keep-alive connection that the backend closes as the request arrives: a GET
    // is retried on a fresh connection, a POST (its bytes were written) is not.
    void staleKeepAliveConnection() {
        TestBackend a;
        QVERIFY(a.start());
        a.setAnswerFirstOnly(true);
        ProxyConfig config = configFor({&a});
        config.maxFails = 0;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QCOMPARE(client.get("/").status, 200); // its connection goes to the pool
        QCOMPARE(client.get("/").status, 200); // stale, retried on a fresh connection
        QCOMPARE(a.requests(), 3);
        QVERIFY(client.send("POST /charge HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
        QCOMPARE(client.read().status, 502);
        QCOMPARE(a.requests(), 4);
    }

    // Issue 13.2: one GET /crash through the proxy killed every worker.
    void requestThatKillsItsBackendReachesTwoAtMost() {
        TestBackend a, b, c;
        QVERIFY(a.start());
        QVERIFY(b.start());
        QVERIFY(c.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a, &b, &c})).ok());
        HttpClient client(engine.port());
        const HttpResponse r = client.get("/crash");
        QCOMPARE(r.status, 502);
        QCOMPARE(int(!a.alive()) + int(!b.alive()) + int(!c.alive()), 2);
        HttpClient again(engine.port());
        QCOMPARE(again.get("/").status, 200);
    }

    // Never retried once a response byte arrived, and never a dropped connection.
    void partialResponseIsNotRetried() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.maxFails = 0;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QCOMPARE(client.get("/partial").status, 502);
        QCOMPARE(a.requests() + b.requests(), 1);
    }

    // Issue 13.5: a slow client is not the backend's fault.
    void slowUploaderIsNotTheBackendsFault() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.responseTimeoutMs = 300;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n"));
        // One byte every 150 ms: the upload takes three times the response timeout.
        for (char ch : std::string("upload")) {
            std::this_thread::sleep_for(std::chrono::milliseconds(150));
            QVERIFY(client.send(std::string(1, ch)));
        }
        const HttpResponse r = client.read();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, std::string("upload"));
        QCOMPARE(engine.snapshot().backends[0].state, BackendState::Up);
        QCOMPARE(engine.snapshot().backends[0].failures, uint64_t(0));
        HttpClient next(engine.port());
        QCOMPARE(next.get("/").status, 200);
    }

    void slowReaderIsNotTheBackendsFault() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.responseTimeoutMs = 300;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port(), 20000);
        QVERIFY(client.send("GET /big/64 HTTP/1.1\r\nHost: t\r\n\r\n"));
        // The client stops reading for three response timeouts: every buffer on the way fills
        // and the proxy stops reading the backend, which is then idle through no fault of its own.
        std::this_thread::sleep_for(std::chrono::milliseconds(900));
        const HttpResponse r = client.read();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body.size(), size_t(64) << 20);
        QCOMPARE(engine.snapshot().backends[0].state, BackendState::Up);
        QCOMPARE(engine.snapshot().backends[0].failures, uint64_t(0));
        QCOMPARE(client.get("/").status, 200);
    }

    // --retries: how many other backends a request that reached one may still be tried on.
    void retriesBoundTheBackendsARequestReaches_data() {
        QTest::addColumn<int>("retries");
        QTest::addColumn<int>("killed");
        QTest::newRow("none") << 0 << 1;
        QTest::newRow("two") << 2 << 3;
    }
    void retriesBoundTheBackendsARequestReaches() {
        QFETCH(int, retries);
        QFETCH(int, killed);
        TestBackend a, b, c;
        QVERIFY(a.start());
        QVERIFY(b.start());
        QVERIFY(c.start());
        ProxyConfig config = configFor({&a, &b, &c});
        config.retries = retries;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QCOMPARE(client.get("/crash").status, 502);
        QCOMPARE(int(!a.alive()) + int(!b.alive()) + int(!c.alive()), killed);
    }

    void retriesAreValidated() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.retries = -1;
        ProxyEngine engine;
        const Result<void> started = engine.start(config);
        QVERIFY(!started);
        QVERIFY2(started.error().contains(QStringLiteral("retries")), qPrintable(started.error()));
    }

    // A client that takes none of its response is closed after sendTimeoutMs; the backend,
    // idle because of it, is not blamed.
    void stalledReaderIsClosedAlone() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.responseTimeoutMs = 300;
        config.limits.sendTimeoutMs = 600;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("GET /big/64 HTTP/1.1\r\nHost: t\r\n\r\n"));
        QVERIFY(waitFor([&] { return engine.snapshot().connectionsOpen == 0; }, 10000));
        const ProxyStats stats = engine.snapshot();
        QCOMPARE(stats.backends[0].state, BackendState::Up);
        QCOMPARE(stats.backends[0].failures, uint64_t(0));
        HttpClient next(engine.port());
        QCOMPARE(next.get("/").status, 200);
    }

    // Issue 13.16: a 502/504 says why to a client on this machine.
    void errorBodiesSayWhy() {
        TestBackend gone;
        QVERIFY(gone.start());
        const std::string goneKey = gone.key();
        gone.stop();
        {
            ProxyConfig config;
            config.threads = 1;
            config.backends.append(backendFor(gone));
            ProxyEngine engine;
            QVERIFY(engine.start(config).ok());
            HttpClient client(engine.port());
            const std::string expected =
                "no backend is up: " + goneKey + " refused the connection\n";
            QCOMPARE(client.get("/").body, expected);
            QCOMPARE(client.get("/").body, expected); // now marked down, for the same reason
        }
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.responseTimeoutMs = 300;
        config.maxFails = 0;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        HttpResponse r = client.get("/slow/3000");
        QCOMPARE(r.status, 504);
        QCOMPARE(r.body, a.key() + " did not answer within 300 ms\n");
        QVERIFY(client.send("POST /close HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
        r = client.read();
        QCOMPARE(r.status, 502);
        QCOMPARE(r.body, a.key() + " closed the connection before answering; not retried: the "
                                   "method is not idempotent\n");
        HttpClient other(engine.port());
        r = other.get("/huge-head");
        QCOMPARE(r.status, 502);
        QCOMPARE(r.body, a.key() + " sent a response head too large to buffer\n");
    }

    // corralctl proxy logs these: down and up with the reason, drained.
    void backendStateChangesAreReported() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.failTimeoutMs = 300;
        config.health.path = QStringLiteral("/health");
        config.health.intervalMs = 50;
        config.health.falls = 2;
        config.health.rises = 2;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        QStringList lines;
        const auto collect = [&] {
            for (const BackendEvent &e : engine.takeBackendEvents())
                lines.append(e.toString());
        };
        const QString aKey = keyOf(a), bKey = keyOf(b);
        // Passive: a request meets a backend that closes without answering.
        HttpClient client(engine.port());
        for (int i = 0; i < 2; ++i)
            QCOMPARE(client.get("/close").status, 502);
        collect();
        QVERIFY2(lines.contains(QStringLiteral("backend %1 down: closed the connection before "
                                               "answering; out of rotation for 300 ms")
                                    .arg(aKey)),
                 qPrintable(lines.join(QLatin1Char('\n'))));
        QVERIFY(waitFor([&] {
            collect();
            return lines.contains(
                QStringLiteral("backend %1 up: back in rotation after its 300 ms fail timeout")
                    .arg(aKey));
        }));
        // Active: failed and passed health checks.
        b.setHealthy(false);
        QVERIFY(waitFor([&] {
            collect();
            return lines.contains(
                QStringLiteral("backend %1 down: 2 failed health checks (answered 503)").arg(bKey));
        }));
        b.setHealthy(true);
        QVERIFY(waitFor([&] {
            collect();
            return lines.contains(
                QStringLiteral("backend %1 up: 2 successful health checks").arg(bKey));
        }));
        QVERIFY(engine.drainBackend(aKey).ok());
        collect();
        QVERIFY2(
            lines.contains(QStringLiteral("backend %1 drained: no request in flight").arg(aKey)),
            qPrintable(lines.join(QLatin1Char('\n'))));
    }

    // The same events as corralctl proxy prints them: one line each on stderr.
    void corralctlProxyLogsBackendStateChanges() {
        TestBackend a;
        QVERIFY(a.start());
        const quint16 port = freePort();
        QProcess proxy;
        proxy.start(QStringLiteral(CORRALCTL_PATH),
                    {QStringLiteral("proxy"), QStringLiteral("--listen"),
                     QStringLiteral("127.0.0.1:%1").arg(port), QStringLiteral("--backends"),
                     keyOf(a), QStringLiteral("--threads"), QStringLiteral("1")});
        QVERIFY(proxy.waitForStarted());
        QString out, err;
        QTRY_VERIFY_WITH_TIMEOUT(
            (out += QString::fromUtf8(proxy.readAllStandardOutput())).contains(u"listening on"),
            10000);
        HttpClient client(port);
        QCOMPARE(client.get("/close").status, 502);
        const QString expected = QStringLiteral("backend %1 down: closed the connection before "
                                                "answering; out of rotation for 10 s\n")
                                     .arg(keyOf(a));
        QTRY_VERIFY_WITH_TIMEOUT(
            (err += QString::fromUtf8(proxy.readAllStandardError())).contains(expected), 5000);
        proxy.terminate();
        QVERIFY(proxy.waitForFinished(15000));
        QCOMPARE(proxy.exitCode(), 0);
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
        QCOMPARE(r.body, "no backend is up: " + a.key() + " refused the connection\n");
        // The connection stays usable for the next request.
        QCOMPARE(client.get("/").status, 502);
    }

    void every502IsCountedOnce() {
        // Each 502 is counted once: against the backend that failed, or as noBackend when
        // none was tried. The console adds the two for its errors/s.
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a, &b});
        config.maxFails = 100; // both stay in rotation: every request fails over, then fails
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        for (int i = 0; i < 3; ++i)
            QCOMPARE(client.get("/close").status, 502);
        b.stop();
        a.stop();
        HttpClient another(engine.port());
        QCOMPARE(another.get("/").status, 502); // refused by both
        const ProxyStats stats = engine.snapshot();
        uint64_t errors = stats.noBackend;
        for (const BackendStats &s : stats.backends)
            errors += s.responses[3];
        QCOMPARE(errors, uint64_t(4));
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
