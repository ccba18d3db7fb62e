#include "helpers/ProxyTestUtil.h"

#include <QTest>

using namespace corral;
using namespace corral::test;

// Hostile and broken clients: every malformed request gets 400/414/431 and a closed
// connection; slow clients are cut off without disturbing the others.
class TestProxyHardening : public QObject {
    Q_OBJECT

    TestBackend m_backend;

    ProxyConfig config() {
        ProxyConfig c = configFor({&m_backend});
        c.limits.maxHeaders = 20;
        c.limits.maxHeaderBytes = 4096;
        c.limits.maxRequestLine = 1024;
        return c;
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_backend.start()); }

    void malformedRequestsAreRejected_data() {
        QTest::addColumn<QByteArray>("request");
        QTest::addColumn<int>("status");
        const auto row = [](const char *name, const QByteArray &request, int status) {
            QTest::newRow(name) << request << status;
        };
        row("cl and te",
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: "
            "chunked\r\n\r\n0\r\n\r\n",
            400);
        row("conflicting cl",
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400);
        row("te chunked twice",
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "x\r\n\r\n",
            400);
        row("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n", 400);
        row("bare lf", "GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", 400);
        row("bad header name", "GET / HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n", 400);
        row("space before colon", "GET / HTTP/1.1\r\nHost: a\r\nHost : b\r\n\r\n", 400);
        static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
        row("nul in value", QByteArray(nul, sizeof nul - 1), 400);
        row("missing host", "GET / HTTP/1.1\r\n\r\n", 400);
        static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
        row("garbage", QByteArray(tls, sizeof tls - 1), 400);
        row("long request line", "GET /" + QByteArray(2000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n",
            414);
        row("too many headers",
            "GET / HTTP/1.1\r\nHost: a\r\n" + QByteArray("X: 1\r\n").repeated(30) + "\r\n", 431);
        row("header too large",
            "GET / HTTP/1.1\r\nHost: a\r\nX: " + QByteArray(5000, 'b') + "\r\n\r\n", 431);
        row("http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
    }
    void malformedRequestsAreRejected() {
        QFETCH(QByteArray, request);
        QFETCH(int, status);
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        const int before = m_backend.requests();
        HttpClient client(engine.port());
        QVERIFY(client.send(request.toStdString()));
        const HttpResponse r = client.read();
        QCOMPARE(r.status, status);
        QCOMPARE(r.header("connection"), std::string("close"));
        QVERIFY(client.waitClosed());
        QCOMPARE(m_backend.requests(), before); // nothing reached the backend
    }

    void badChunkSizeCutsTheRequest() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "zz\r\nhello\r\n0\r\n\r\n"));
        QVERIFY(client.waitClosed());
    }

    void slowlorisIsClosedWhileOthersAreServed() {
        ProxyConfig c = config();
        c.limits.headerTimeoutMs = 400;
        ProxyEngine engine;
        QVERIFY(engine.start(c).ok());
        HttpClient slow(engine.port(), 5000);
        QVERIFY(slow.send("GET / HTTP/1.1\r\nHost: a\r\n"));
        const auto started = std::chrono::steady_clock::now();
        // Trickle a header byte at a time: progress does not extend the deadline.
        std::atomic<bool> closed{false};
        std::thread trickle([&] {
            for (int i = 0; i < 40 && !closed; ++i) {
                if (!slow.send("X")) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
        HttpClient other(engine.port());
        for (int i = 0; i < 20; ++i)
            QCOMPARE(other.get("/").status, 200);
        const bool wasClosed = slow.waitClosed();
        closed = true;
        trickle.join();
        QVERIFY(wasClosed);
        QVERIFY(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(1500));
        QCOMPARE(other.get("/").status, 200);
    }

    void idleKeepAliveIsClosed() {
        ProxyConfig c = config();
        c.limits.keepAliveTimeoutMs = 300;
        ProxyEngine engine;
        QVERIFY(engine.start(c).ok());
        HttpClient client(engine.port());
        QCOMPARE(client.get("/").status, 200);
        const auto started = std::chrono::steady_clock::now();
        QVERIFY(client.waitClosed());
        QVERIFY(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(250));
    }

    void excessConnectionsAreRefusedPolitely() {
        ProxyConfig c = config();
        c.limits.maxConnections = 2;
        ProxyEngine engine;
        QVERIFY(engine.start(c).ok());
        HttpClient one(engine.port()), two(engine.port());
        QCOMPARE(one.get("/").status, 200);
        QCOMPARE(two.get("/").status, 200);
        HttpClient three(engine.port());
        const HttpResponse r = three.get("/");
        QCOMPARE(r.status, 503);
        QVERIFY(three.waitClosed());
        // The counter is bumped by the thread that refused, possibly just after the close.
        QVERIFY(waitFor([&] { return engine.snapshot().connectionsRejected == 1; }));
        one.close();
        QVERIFY(waitFor([&] { return engine.snapshot().connectionsOpen == 1; }));
        HttpClient four(engine.port());
        QCOMPARE(four.get("/").status, 200);
    }
};

QTEST_GUILESS_MAIN(TestProxyHardening)
#include "tst_proxyhardening.moc"
