#include "helpers/ProxyTestUtil.h"

#include <QDir>
#include <QSet>
#include <QTest>

#include <cstring>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

/// Pipes this process holds open (either end), from /proc/self/fd.
int openPipes() {
    QSet<QByteArray> pipes;
    const QDir fds(QStringLiteral("/proc/self/fd"));
    for (const QString &fd :
         fds.entryList(QDir::AllEntries | QDir::System | QDir::NoDotAndDotDot)) {
        char target[64] = {};
        const QByteArray path = fds.filePath(fd).toLocal8Bit();
        if (::readlink(path.constData(), target, sizeof target - 1) > 0 &&
            std::strncmp(target, "pipe:", 5) == 0)
            pipes.insert(QByteArray(target));
    }
    return int(pipes.size());
}

} // namespace

// HTTP semantics through the proxy, and each policy's distribution, over real sockets.
class TestProxyForwarding : public QObject {
    Q_OBJECT

    TestBackend m_a, m_b;

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_a.start());
        QVERIFY(m_b.start());
    }

    void roundRobinIsExactlyEven() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a, &m_b})).ok());
        const int a0 = m_a.requests(), b0 = m_b.requests();
        for (int c = 0; c < 10; ++c) {
            HttpClient client(engine.port());
            for (int i = 0; i < 10; ++i)
                QCOMPARE(client.get("/").status, 200);
        }
        QCOMPARE(m_a.requests() - a0, 50);
        QCOMPARE(m_b.requests() - b0, 50);
        const ProxyStats stats = engine.snapshot();
        QCOMPARE(stats.backends.size(), 2);
        QCOMPARE(stats.backends[0].requests, uint64_t(50));
        QCOMPARE(stats.backends[0].responses[0], uint64_t(50));
        QVERIFY(stats.backends[0].p99Ms > 0);
        QVERIFY(stats.backends[0].bytesIn > 0 && stats.backends[0].bytesOut > 0);
    }

    void weightsAreHonoured() {
        ProxyConfig config = configFor({&m_a, &m_b}, BalancingPolicy::Weighted);
        config.backends[0].weight = 3;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        const int a0 = m_a.requests(), b0 = m_b.requests();
        HttpClient client(engine.port());
        for (int i = 0; i < 400; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(m_a.requests() - a0, 300);
        QCOMPARE(m_b.requests() - b0, 100);
    }

    void leastConnPrefersIdle() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a, &m_b}, BalancingPolicy::LeastConn)).ok());
        // One slow request occupies a backend; every quick one must go to the other.
        HttpClient slow(engine.port());
        QVERIFY(slow.send("GET /slow/1500 HTTP/1.1\r\nHost: t\r\n\r\n"));
        QVERIFY(waitFor([&] { return m_a.inFlight() + m_b.inFlight() == 1; }));
        TestBackend &busy = m_a.inFlight() ? m_a : m_b;
        TestBackend &idle = m_a.inFlight() ? m_b : m_a;
        const int busy0 = busy.requests(), idle0 = idle.requests();
        HttpClient client(engine.port());
        for (int i = 0; i < 20; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(busy.requests() - busy0, 0);
        QCOMPARE(idle.requests() - idle0, 20);
        QCOMPARE(slow.read().status, 200);
    }

    void stickyCookiePinsAndRepins() {
        TestBackend c, d;
        QVERIFY(c.start());
        QVERIFY(d.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&c, &d}, BalancingPolicy::StickyCookie)).ok());
        HttpClient client(engine.port());
        HttpResponse first = client.get("/");
        QCOMPARE(first.status, 200);
        const std::string cookie = first.header("set-cookie");
        QVERIFY(cookie.rfind("CORRALID=", 0) == 0);
        const std::string id = cookie.substr(9, cookie.find(';') - 9);
        const std::string pinned = first.body;
        for (int i = 0; i < 10; ++i) {
            const HttpResponse r = client.get("/", "Cookie: a=b; CORRALID=" + id + "\r\n");
            QCOMPARE(r.body, pinned);
            QVERIFY(r.header("set-cookie").empty());
        }
        // The pinned backend dies: another answers and the client is re-pinned.
        (pinned == "ok " + std::to_string(c.port()) + "\n" ? c : d).stop();
        HttpClient again(engine.port());
        const HttpResponse moved = again.get("/", "Cookie: CORRALID=" + id + "\r\n");
        QCOMPARE(moved.status, 200);
        QVERIFY(moved.body != pinned);
        const std::string repin = moved.header("set-cookie");
        QVERIFY(repin.rfind("CORRALID=", 0) == 0);
        QVERIFY(repin.find(id) == std::string::npos);
        const std::string newId = repin.substr(9, repin.find(';') - 9);
        for (int i = 0; i < 5; ++i)
            QCOMPARE(again.get("/", "Cookie: CORRALID=" + newId + "\r\n").body, moved.body);
    }

    void ipHashKeepsAClientOnOneBackend() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a, &m_b}, BalancingPolicy::IpHash)).ok());
        const int a0 = m_a.requests(), b0 = m_b.requests();
        for (int c = 0; c < 5; ++c) {
            HttpClient client(engine.port());
            for (int i = 0; i < 6; ++i)
                QCOMPARE(client.get("/").status, 200);
        }
        const int da = m_a.requests() - a0, db = m_b.requests() - b0;
        QVERIFY(da == 30 || db == 30);
    }

    void keepAliveAndPipelining() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a, &m_b})).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("GET /status/201 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /chunked/3 HTTP/1.1\r\nHost: t\r\n\r\n"
                            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                            "GET /status/404 HTTP/1.1\r\nHost: t\r\n\r\n"));
        QCOMPARE(client.read().status, 201);
        const HttpResponse chunked = client.read();
        QCOMPARE(chunked.status, 200);
        QCOMPARE(chunked.body, std::string("chunk-0\nchunk-1\nchunk-2\n"));
        const HttpResponse echo = client.read();
        QCOMPARE(echo.body, std::string("hello"));
        QCOMPARE(client.read().status, 404);
        QCOMPARE(client.get("/").status, 200);
        QCOMPARE(engine.snapshot().connectionsAccepted, uint64_t(1));
    }

    void chunkedBothWays() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"));
        const HttpResponse r = client.read();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, std::string("hello, world"));
        const HttpResponse many = client.get("/chunked/500");
        QCOMPARE(many.header("transfer-encoding"), std::string("chunked"));
        QVERIFY(many.body.rfind("chunk-499\n") == many.body.size() - 10);
        QCOMPARE(client.get("/").status, 200);
    }

    void headAnd204And304HaveNoBody() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("HEAD /big/1 HTTP/1.1\r\nHost: t\r\n\r\n"));
        const HttpResponse head = client.read(true);
        QCOMPARE(head.status, 200);
        QCOMPARE(head.header("content-length"), std::string("1048576"));
        QCOMPARE(client.get("/status/204").status, 204);
        QCOMPARE(client.get("/status/304").status, 304);
        const HttpResponse after = client.get("/");
        QCOMPARE(after.status, 200);
        QCOMPARE(after.body, "ok " + std::to_string(m_a.port()) + "\n");
    }

    void expectContinueAndEarlyHints() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("POST /continue HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                            "Content-Length: 4\r\n\r\n"));
        QCOMPARE(client.read().status, 100);
        QVERIFY(client.send("data"));
        const HttpResponse r = client.read();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, std::string("data"));
        QCOMPARE(client.get("/early").status, 103);
        QCOMPARE(client.read().status, 200);
    }

    void forwardingHeaders() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        const HttpResponse r =
            client.get("/headers", "X-Forwarded-For: 9.9.9.9\r\nConnection: keep-alive, X-Hop\r\n"
                                   "X-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
                                   "TE: trailers\r\nX-Real-IP: 6.6.6.6\r\nX-Kept: yes\r\n");
        QCOMPARE(r.status, 200);
        HttpResponse seen;
        seen.head = r.body;
        QCOMPARE(seen.header("host"), std::string("test"));
        QCOMPARE(seen.header("x-forwarded-for"), std::string("9.9.9.9, 127.0.0.1"));
        QCOMPARE(seen.header("x-real-ip"), std::string("127.0.0.1"));
        QCOMPARE(seen.header("x-forwarded-proto"), std::string("http"));
        QCOMPARE(seen.header("x-forwarded-host"), std::string("test"));
        QCOMPARE(seen.header("x-kept"), std::string("yes"));
        for (const char *gone : {"x-hop", "keep-alive", "proxy-connection", "te", "connection"})
            QVERIFY2(seen.header(gone).empty(), gone);
    }

    // Issue 13.6: framing is normalised, bad heads are a 502.
    void responseFramingIsNormalised() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        const HttpResponse both = client.get("/both-framings");
        QCOMPARE(both.status, 200);
        QCOMPARE(both.header("transfer-encoding"), std::string("chunked"));
        QVERIFY2(both.header("content-length").empty(), both.head.c_str());
        QCOMPARE(both.body, std::string("hello"));
        // Connection naming Content-Length does not strip the framing the proxy relies on.
        const HttpResponse named = client.get("/conn-cl");
        QCOMPARE(named.header("content-length"), std::string("5"));
        QCOMPARE(named.body, std::string("hello"));
        QCOMPARE(client.get("/").status, 200);
    }

    void badBackendResponsesAre502_data() {
        QTest::addColumn<QByteArray>("path");
        QTest::newRow("head too large") << QByteArray("/huge-head");
        QTest::newRow("unsolicited 101") << QByteArray("/switch");
        QTest::newRow("gzip coding") << QByteArray("/gzip-te");
        QTest::newRow("half a head") << QByteArray("/partial");
    }
    void badBackendResponsesAre502() {
        QFETCH(QByteArray, path);
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        const HttpResponse r = client.get(path.toStdString());
        QCOMPARE(r.status, 502);
    }

    // Issue 13.7: a client cannot make the proxy strip what the backend relies on.
    void connectionCannotStripEndToEndHeaders() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        const HttpResponse r = client.get(
            "/headers", "Connection: host, authorization, cookie, x-forwarded-for, x-real-ip, "
                        "x-forwarded-host, x-forwarded-proto, content-length, x-gone\r\n"
                        "Authorization: Bearer t\r\nCookie: c=1\r\nX-Gone: 1\r\n");
        QCOMPARE(r.status, 200);
        HttpResponse seen;
        seen.head = r.body;
        QCOMPARE(seen.header("host"), std::string("test"));
        QCOMPARE(seen.header("authorization"), std::string("Bearer t"));
        QCOMPARE(seen.header("cookie"), std::string("c=1"));
        QCOMPARE(seen.header("x-forwarded-for"), std::string("127.0.0.1"));
        QCOMPARE(seen.header("x-real-ip"), std::string("127.0.0.1"));
        QCOMPARE(seen.header("x-forwarded-host"), std::string("test"));
        QCOMPARE(seen.header("x-forwarded-proto"), std::string("http"));
        QVERIFY(seen.header("x-gone").empty());
        // Content-Length named by Connection still frames the body (no smuggled request).
        QVERIFY(client.send("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: content-length\r\n"
                            "Content-Length: 5\r\n\r\nhello"));
        const HttpResponse echo = client.read();
        QCOMPARE(echo.status, 200);
        QCOMPARE(echo.body, std::string("hello"));
        QCOMPARE(client.get("/").status, 200);
    }

    void absoluteFormTargetUsesItsAuthority() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("GET http://a.example/headers HTTP/1.1\r\nHost: other\r\n\r\n"));
        HttpResponse r = client.read();
        QCOMPARE(r.status, 200);
        HttpResponse seen;
        seen.head = r.body;
        QVERIFY2(r.body.rfind("GET /headers HTTP/1.1\r\n", 0) == 0, r.body.c_str());
        QCOMPARE(seen.header("host"), std::string("a.example"));
        QCOMPARE(seen.header("x-forwarded-host"), std::string("a.example"));
        QVERIFY(client.send("GET HTTPS://B.example:8443 HTTP/1.1\r\nHost: b\r\n\r\n"));
        r = client.read();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, "ok " + std::to_string(m_a.port()) + "\n"); // forwarded as "/"
        for (const char *bad : {"ftp://a.example/headers", "http:///headers",
                                "http://user@a.example/headers", "javascript://x/"}) {
            HttpClient other(engine.port());
            QVERIFY(other.send("GET " + std::string(bad) + " HTTP/1.1\r\nHost: a\r\n\r\n"));
            QCOMPARE(other.read().status, 400);
        }
    }

    void webSocketTunnel() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: x\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n"));
        const HttpResponse r = client.read();
        QCOMPARE(r.status, 101);
        QCOMPARE(r.header("upgrade"), std::string("websocket"));
        for (int i = 0; i < 20; ++i) {
            const std::string frame = "frame-" + std::to_string(i);
            QVERIFY(client.send(frame));
            QVERIFY(waitFor([&] {
                client.fill();
                return client.buffer().size() >= frame.size();
            }));
            QCOMPARE(client.buffer(), frame);
            client.buffer().clear();
        }
        QCOMPARE(engine.snapshot().backends[0].inFlight, int64_t(1));
        client.close();
        QVERIFY(waitFor([&] { return engine.snapshot().backends[0].inFlight == 0; }));
    }

    // A Content-Length body of at least spliceMinBytes goes backend -> pipe -> client with
    // splice(2). Pipelined on one connection: a large body (the bytes read with its head
    // copied first, then the pipe), a second one right behind it, then a small one; every byte
    // in its place. An emptied pipe stays in the thread's pool: one pipe more afterwards with
    // splicing, none without.
    void largeBodiesAreSplicedIntact_data() {
        QTest::addColumn<int>("spliceMinBytes");
        QTest::addColumn<int>("pipesKept");
        QTest::newRow("spliced") << 65536 << 1;
        QTest::newRow("copied") << 0 << 0;
    }
    void largeBodiesAreSplicedIntact() {
        QFETCH(int, spliceMinBytes);
        QFETCH(int, pipesKept);
        ProxyConfig config = configFor({&m_a});
        config.limits.spliceMinBytes = spliceMinBytes;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        const int pipesBefore = openPipes();
        HttpClient client(engine.port(), 20000);
        const int sizesKb[] = {3000, 70, 1};
        std::string requests;
        for (int kb : sizesKb)
            requests += "GET /pattern/" + std::to_string(kb) + " HTTP/1.1\r\nHost: t\r\n\r\n";
        QVERIFY(client.send(requests));
        for (int kb : sizesKb) {
            const HttpResponse r = client.read();
            QCOMPARE(r.status, 200);
            QCOMPARE(r.body.size(), size_t(kb) << 10);
            for (size_t i = 0; i < r.body.size(); ++i)
                if (r.body[i] != patternByte(i))
                    QFAIL(
                        qPrintable(QStringLiteral("%1 KB body: byte %2 is wrong").arg(kb).arg(i)));
        }
        QCOMPARE(openPipes() - pipesBefore, pipesKept);
        const ProxyStats stats = engine.snapshot();
        QCOMPARE(stats.backends[0].bytesIn >= uint64_t(3071) << 10, true);
    }

    // A client that leaves in the middle of a spliced body: its connections close, the pipe
    // with bytes in it is closed rather than pooled (three such clients leave at most the one
    // pooled pipe), and the backend is not blamed.
    void clientLeavingMidSpliceLeavesNothingOpen() {
        ProxyConfig config = configFor({&m_a});
        config.limits.spliceMinBytes = 65536;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        const int pipesBefore = openPipes();
        for (int round = 0; round < 3; ++round) {
            HttpClient client(engine.port(), 20000);
            QVERIFY(client.send("GET /big/64 HTTP/1.1\r\nHost: t\r\n\r\n"));
            QVERIFY(waitFor([&] { return openPipes() > pipesBefore; }));
            client.close();
            QVERIFY(waitFor([&] { return engine.snapshot().connectionsOpen == 0; }));
        }
        QVERIFY(waitFor([&] { return openPipes() <= pipesBefore + 1; }));
        const ProxyStats stats = engine.snapshot();
        QCOMPARE(stats.backends[0].state, BackendState::Up);
        QCOMPARE(stats.backends[0].failures, uint64_t(0));
        HttpClient next(engine.port());
        QCOMPARE(next.get("/").status, 200);
    }

    // A backend that dies in the middle of a spliced body: the client sees the body cut short
    // (the connection closes before Content-Length bytes), never a complete-looking response.
    void backendDyingMidSpliceCutsTheClientOff() {
        ProxyConfig config = configFor({&m_a});
        config.limits.spliceMinBytes = 65536;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port(), 20000);
        QVERIFY(client.send("GET /truncated/4096 HTTP/1.1\r\nHost: t\r\n\r\n"));
        while (client.fill()) {
        }
        const std::string &got = client.buffer();
        const size_t headEnd = got.find("\r\n\r\n");
        QVERIFY(headEnd != std::string::npos);
        QVERIFY(got.find("Content-Length: 4194304") < headEnd);
        QCOMPARE(got.size() - headEnd - 4, size_t(2048) << 10);
        QVERIFY(waitFor([&] { return engine.snapshot().connectionsOpen == 0; }));
    }

    void largeBodiesStreamWithBoundedMemory() {
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&m_a})).ok());
        const size_t mb = 256;
        const long before = rssKb();
        long peak = before;
        {
            // Upload: the backend counts bytes as they stream.
            HttpClient client(engine.port(), 60000);
            const size_t total = mb << 20;
            QVERIFY(client.send("POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                std::to_string(total) + "\r\n\r\n"));
            const std::string block(1 << 20, 'u');
            for (size_t i = 0; i < mb; ++i) {
                QVERIFY(client.send(block));
                if (i % 32 == 0) peak = std::max(peak, rssKb());
            }
            const HttpResponse r = client.read();
            QCOMPARE(r.status, 200);
            QCOMPARE(r.body, std::to_string(total));
        }
        {
            // Download: read and drop as it arrives.
            HttpClient client(engine.port(), 60000);
            QVERIFY(client.send("GET /big/" + std::to_string(mb) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
            size_t got = 0;
            while (client.buffer().find("\r\n\r\n") == std::string::npos)
                QVERIFY(client.fill());
            got = client.buffer().size() - client.buffer().find("\r\n\r\n") - 4;
            client.buffer().clear();
            int rounds = 0;
            while (got < (mb << 20) && client.fill()) {
                got += client.buffer().size();
                client.buffer().clear();
                if (++rounds % 512 == 0) peak = std::max(peak, rssKb());
            }
            QCOMPARE(got, mb << 20);
        }
        // Client, backend and proxy share this process: 256 MB each way must not show up.
        QVERIFY2(peak - before < 48 * 1024,
                 qPrintable(QStringLiteral("RSS grew by %1 kB").arg(peak - before)));
    }
};

QTEST_GUILESS_MAIN(TestProxyForwarding)
#include "tst_proxyforwarding.moc"
