#include "http/HttpParser.h"

#include <QTest>

#include <string>

using namespace corral::http;

class TestHttpParser : public QObject {
    Q_OBJECT

    static int parse(const std::string &head, RequestHead &r, HeadLimits limits = {}) {
        HeadScanner scanner;
        const long n = scanner.scan(head.data(), head.size());
        if (n < 0) return 400;
        if (n == 0) return -1;
        return parseRequest(head.data(), size_t(n), limits, r);
    }

private Q_SLOTS:
    void scansIncrementally() {
        const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
        HeadScanner s;
        for (size_t i = 1; i < head.size() - 4; ++i)
            QCOMPARE(s.scan(head.data(), i), 0L);
        QCOMPARE(s.scan(head.data(), head.size()), long(head.size() - 4));
    }

    void parsesSimpleRequest() {
        RequestHead r;
        // The parsed views point into the head: it must outlive them.
        const std::string head = "GET /a?b HTTP/1.1\r\nHost: example\r\nCookie: x=1; "
                                 "CORRALID=abc\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
        QCOMPARE(parse(head, r), 0);
        QCOMPARE(r.method, std::string_view("GET"));
        QCOMPARE(r.target, std::string_view("/a?b"));
        QCOMPARE(r.host, std::string_view("example"));
        QCOMPARE(cookieValue(r.cookie, "CORRALID"), std::string_view("abc"));
        QCOMPARE(r.forwardedFor, std::string_view("1.2.3.4"));
        QVERIFY(r.keepAlive());
        QVERIFY(r.isIdempotent);
        QCOMPARE(int(r.body), int(BodyKind::None));
    }

    void framing() {
        RequestHead r;
        QCOMPARE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", r), 0);
        QCOMPARE(int(r.body), int(BodyKind::Length));
        QCOMPARE(r.contentLength, uint64_t(5));
        QCOMPARE(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", r), 0);
        QCOMPARE(int(r.body), int(BodyKind::Chunked));
        QCOMPARE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", r), 0);
        QCOMPARE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r), 0);
        QVERIFY(r.keepAlive());
        const std::string named =
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Custom\r\n\r\n";
        QCOMPARE(parse(named, r), 0);
        QVERIFY(!r.keepAlive());
        Header custom{"x-custom", "1", HeaderId::Other};
        QVERIFY(r.isHopByHop(custom));
    }

    void rejectsMalformed_data() {
        QTest::addColumn<QByteArray>("head");
        QTest::addColumn<int>("status");
        const auto row = [](const char *name, const char *head, int status) {
            QTest::newRow(name) << QByteArray(head) << status;
        };
        row("cl and te",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400);
        row("conflicting cl",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400);
        row("cl list differs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400);
        row("negative cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
        row("cl plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400);
        row("huge cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            400);
        row("te not chunked last",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
        row("te gzip chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
        row("te in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
        row("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400);
        row("space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", 400);
        row("bad name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400);
        row("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", 400);
        row("no colon", "GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", 400);
        row("control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400);
        row("bare lf", "GET / HTTP/1.1\nHost: a\n\n", 400);
        row("bare lf in header", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400);
        row("no host", "GET / HTTP/1.1\r\n\r\n", 400);
        row("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
        row("bad version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
        row("bad version text", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400);
        row("no target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400);
        row("bad method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
        row("relative target", "GET abc HTTP/1.1\r\nHost: a\r\n\r\n", 400);
        row("connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501);
    }
    void rejectsMalformed() {
        QFETCH(QByteArray, head);
        QFETCH(int, status);
        RequestHead r;
        QCOMPARE(parse(head.toStdString(), r), status);
    }

    void enforcesLimits() {
        RequestHead r;
        HeadLimits limits;
        limits.maxHeaders = 3;
        QCOMPARE(parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", r, limits),
                 431);
        limits = {};
        limits.maxRequestLine = 64;
        QCOMPARE(parse("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", r, limits),
                 414);
        limits = {};
        limits.maxHeaderBytes = 100;
        QCOMPARE(parse("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'b') + "\r\n\r\n", r,
                       limits),
                 431);
    }

    void parsesResponses() {
        ResponseHead r;
        const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        QCOMPARE(parseResponse(ok.data(), ok.size(), false, 100, r), 0);
        QCOMPARE(r.status, 200);
        QCOMPARE(int(r.body), int(BodyKind::Length));
        QCOMPARE(parseResponse(ok.data(), ok.size(), true, 100, r), 0);
        QCOMPARE(int(r.body), int(BodyKind::None));
        const std::string nc = "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n";
        QCOMPARE(parseResponse(nc.data(), nc.size(), false, 100, r), 0);
        QCOMPARE(int(r.body), int(BodyKind::None));
        const std::string close = "HTTP/1.0 200 OK\r\n\r\n";
        QCOMPARE(parseResponse(close.data(), close.size(), false, 100, r), 0);
        QCOMPARE(int(r.body), int(BodyKind::UntilClose));
        QVERIFY(!r.keepAlive());
        const std::string bad = "HTTP/1.1 2x0 OK\r\n\r\n";
        QCOMPARE(parseResponse(bad.data(), bad.size(), false, 100, r), -1);
    }

    // RFC 9112 3.2.2: the authority of an absolute-form target is the Host; the target
    // forwarded is its origin form.
    void absoluteFormTarget() {
        RequestHead r;
        // The parsed views point into the head: each must outlive them.
        const std::string path = "GET http://a.example/x?y HTTP/1.1\r\nHost: other\r\n\r\n";
        QCOMPARE(parse(path, r), 0);
        QCOMPARE(r.host, std::string_view("a.example"));
        QCOMPARE(r.target, std::string_view("/x?y"));
        const std::string query = "GET HTTPS://A.example:81?q HTTP/1.1\r\nHost: other\r\n\r\n";
        QCOMPARE(parse(query, r), 0);
        QCOMPARE(r.host, std::string_view("A.example:81"));
        QCOMPARE(r.target, std::string_view("?q")); // the proxy puts "/" before it
        QVERIFY(r.absoluteForm);
        const std::string literal = "GET http://[::1]:8080/ HTTP/1.0\r\n\r\n";
        QCOMPARE(parse(literal, r), 0);
        QCOMPARE(r.host, std::string_view("[::1]:8080"));
        for (const char *bad : {"ftp://a/x", "http:///x", "http://u@a/x", "http:/a/x", "a://b/",
                                "http://a\\b/", "://a/"}) {
            const std::string head = std::string("GET ") + bad + " HTTP/1.1\r\nHost: a\r\n\r\n";
            QVERIFY2(parse(head, r) == 400, bad);
        }
    }

    // Connection may name extra hop-by-hop headers, never the ones the proxy relies on.
    void connectionCannotNameEndToEndHeaders() {
        RequestHead r;
        const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nConnection: host, authorization, "
                                 "cookie, content-length, x-forwarded-for, x-real-ip, x-other\r\n"
                                 "Authorization: x\r\nCookie: c\r\nX-Other: 1\r\n\r\n";
        QCOMPARE(parse(head, r), 0);
        for (const Header &h : r.headers) {
            const bool expected = h.name == "Connection" || h.name == "X-Other";
            QVERIFY2(r.isHopByHop(h) == expected, std::string(h.name).c_str());
        }
    }

    void responseFraming() {
        ResponseHead r;
        // Transfer-Encoding wins over Content-Length (RFC 9112 6.1); the proxy drops the latter.
        const std::string both =
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n";
        QCOMPARE(parseResponse(both.data(), both.size(), false, 100, r), 0);
        QCOMPARE(int(r.body), int(BodyKind::Chunked));
        QVERIFY(r.framedByTransferEncoding);
        // Codings other than chunked alone cannot be re-framed: refused.
        for (const char *te : {"gzip", "gzip, chunked", "chunked, gzip", "identity"}) {
            const std::string head =
                std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + te + "\r\n\r\n";
            QVERIFY2(parseResponse(head.data(), head.size(), false, 100, r) ==
                         ResponseUnsupportedCoding,
                     te);
        }
    }

    void decodesChunks() {
        const std::string body = "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        // Byte by byte and whole: the same end.
        ChunkedDecoder d;
        size_t used = 0;
        for (size_t i = 0; i < body.size() && !d.done(); ++i)
            used += size_t(d.feed(body.data() + i, 1));
        QVERIFY(d.done());
        QCOMPARE(used, body.size() - 4);
        d.reset();
        QCOMPARE(d.feed(body.data(), body.size()), long(body.size() - 4));
        for (const char *bad :
             {"x\r\n", "4\nWiki", "4\r\nWikiX\r\n", "fffffffffffffffff\r\n", "\r\n", "0\r\n\nX"}) {
            d.reset();
            QCOMPARE(d.feed(bad, std::strlen(bad)), -1L);
        }
    }
};

QTEST_GUILESS_MAIN(TestHttpParser)
#include "tst_httpparser.moc"
