#include "http/BodyFramer.h"
#include "http/ChunkedDecoder.h"
#include "http/HeaderText.h"
#include "http/HttpParser.h"
#include "http/ResponseReader.h"
#include "http/StatusText.h"

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

    // The headers static serving, gzip and the access log read are recorded by the parse,
    // repeated ones as those readers always took them, and are still end-to-end headers that
    // Connection may name.
    void recordsTheHeadersItsReadersNeed() {
        RequestHead r;
        const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n"
                                 "Referer: \r\nREFERER: http://later/\r\n"
                                 "User-Agent: first/1\r\nuser-agent: second/2\r\n"
                                 "Range: bytes=0-1\r\nrange: bytes=2-3\r\n"
                                 "If-Range: \"a\"\r\nIf-Range: \"b\"\r\n"
                                 "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\n"
                                 "If-Modified-Since: one\r\nIf-Modified-Since: two\r\n"
                                 "Accept-Encoding: br\r\nAccept-Encoding: gzip\r\n"
                                 "Connection: range, user-agent\r\n\r\n";
        QCOMPARE(parse(head, r), 0);
        QCOMPARE(r.referer, std::string_view()); // the first, empty as it is
        QCOMPARE(r.userAgent, std::string_view("first/1"));
        QCOMPARE(r.range, std::string_view("bytes=2-3"));
        QCOMPARE(r.ifRange, std::string_view("\"b\""));
        QCOMPARE(r.ifNoneMatch, std::string_view("\"y\""));
        QCOMPARE(r.ifModifiedSince, std::string_view("two"));
        QCOMPARE(r.acceptEncoding, std::string_view("br"));
        QVERIFY(r.acceptEncodingRepeated);
        for (const Header &h : r.headers) {
            const bool expected = h.id == HeaderId::Connection || h.id == HeaderId::Range ||
                                  h.id == HeaderId::UserAgent;
            QVERIFY2(r.isHopByHop(h) == expected, std::string(h.name).c_str());
        }
        // The next request on the connection starts from nothing.
        // (Kept in a variable: the recorded values point into the parsed text.)
        const std::string next = "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
        QCOMPARE(parse(next, r), 0);
        QCOMPARE(r.acceptEncoding, std::string_view("gzip"));
        QVERIFY(!r.acceptEncodingRepeated);
        for (const std::string_view v :
             {r.range, r.ifRange, r.ifNoneMatch, r.ifModifiedSince, r.referer, r.userAgent})
            QVERIFY(v.empty());
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
             {"x\r\n", "4\nWiki", "4\r\nWikiX\r\n", "fffffffffffffffff\r\n", "\r\n", "0\r\n\nX",
              "1;a\x01"
              "b\r\nx\r\n",
              "0\r\nT: a\x01"
              "b\r\n\r\n",
              "0\r\nT: a\nb\r\n\r\n"}) {
            d.reset();
            QCOMPARE(d.feed(bad, std::strlen(bad)), -1L);
        }
        // HTAB and obs-text are field-value bytes, in a trailer as in a header.
        const std::string trailer = "0\r\nT: a\tb\x80\r\n\r\n";
        d.reset();
        QCOMPARE(d.feed(trailer.data(), trailer.size()), long(trailer.size()));
        QVERIFY(d.done());
    }

    // Header names in any case, and only whole names, are the headers the proxy interprets.
    void classifiesHeaderNames() {
        const std::pair<const char *, HeaderId> known[] = {
            {"TE", HeaderId::TE},
            {"HOST", HeaderId::Host},
            {"Expect", HeaderId::Expect},
            {"COOKIE", HeaderId::Cookie},
            {"Trailer", HeaderId::Trailer},
            {"UPGRADE", HeaderId::Upgrade},
            {"X-Real-IP", HeaderId::XRealIp},
            {"Connection", HeaderId::Connection},
            {"Keep-Alive", HeaderId::KeepAlive},
            {"AUTHORIZATION", HeaderId::Authorization},
            {"Content-Length", HeaderId::ContentLength},
            {"X-FORWARDED-FOR", HeaderId::XForwardedFor},
            {"x-forwarded-host", HeaderId::XForwardedHost},
            {"Transfer-Encoding", HeaderId::TransferEncoding},
            {"X-Forwarded-Proto", HeaderId::XForwardedProto},
            {"Accept-Encoding", HeaderId::AcceptEncoding},
            {"RANGE", HeaderId::Range},
            {"If-Range", HeaderId::IfRange},
            {"if-none-match", HeaderId::IfNoneMatch},
            {"If-Modified-Since", HeaderId::IfModifiedSince},
            {"Referer", HeaderId::Referer},
            {"User-Agent", HeaderId::UserAgent},
            {"Proxy-Authorization", HeaderId::ProxyPrefixed},
            {"proxy-x", HeaderId::ProxyPrefixed},
            {"Proxy-", HeaderId::Other},
            {"Hosts", HeaderId::Other},
            {"Te2", HeaderId::Other},
            {"X-Forwarded-Prot", HeaderId::Other},
            {"Content_Length", HeaderId::Other},
            {"Referrer", HeaderId::Other},
            {"Ranges", HeaderId::Other},
            {"If-Match", HeaderId::Other},
        };
        ResponseHead r;
        for (const auto &[name, id] : known) {
            const std::string head =
                std::string("HTTP/1.1 204 No Content\r\n") + name + ": 0\r\nX-Last: 1\r\n\r\n";
            QVERIFY2(parseResponse(head.data(), head.size(), false, 100, r) == 0, name);
            QCOMPARE(r.headers.size(), size_t(2));
            QVERIFY2(r.headers[0].id == id, name);
            QVERIFY2(r.headers[1].id == HeaderId::Other, name);
        }
    }

    void headerText() {
        QVERIFY(equalsIgnoreCase("Transfer-Encoding", "transfer-encoding"));
        QVERIFY(!equalsIgnoreCase("chunked", "chunkee"));
        QVERIFY(!equalsIgnoreCase("chunked", "xchunked"));
        // '@' | 0x20 is '`': only letters fold.
        QVERIFY(!equalsIgnoreCase("@", "`"));
        QVERIFY(!equalsIgnoreCase("\xc4\xb0", "\xc4\x91"));
        QCOMPARE(trimWhitespace(" \t a b\t "), std::string_view("a b"));
        QVERIFY(hasToken("keep-alive, Close", "close"));
        QVERIFY(!hasToken("closed, x-close", "close"));
        QVERIFY(!hasToken("", "close"));
        std::string tokens;
        forEachToken(" a ,, b,\tc ,", [&](std::string_view t) { tokens += std::string(t) + '|'; });
        QCOMPARE(tokens, std::string("a|b|c|"));
        QCOMPARE(parseDecimal("0"), std::optional<uint64_t>(0));
        QCOMPARE(parseDecimal("999999999999999999"), std::optional<uint64_t>(999999999999999999));
        for (const char *bad :
             {"", "-1", "+1", " 1", "1 ", "0x1", "1000000000000000000", "18446744073709551618"})
            QVERIFY2(!parseDecimal(bad), bad);
        QCOMPARE(parseHex("fF"), std::optional<uint64_t>(255));
        QCOMPARE(parseHex("fffffffffffffff"), std::optional<uint64_t>(0xfffffffffffffff));
        for (const char *bad : {"", "-1", "g", " a", "1000000000000000"})
            QVERIFY2(!parseHex(bad), bad);
    }

    // What a health probe reads: the status of the first line, or 0 for anything else.
    void statusOfAProbesAnswer() {
        QCOMPARE(statusOf("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 200);
        QCOMPARE(statusOf("HTTP/1.0 503"), 503);
        QCOMPARE(statusOf("HTTP/1.1 204 No"), 204); // cut short after the status
        for (const char *bad : {"", "HTTP/1.1 20", "HTTP/1.1 2x0 OK", "HTTP/1.1 099 Low",
                                "HTTP/1.2 200 OK", "HTTP/2 200 OK", "HTTP/1.1 2000 OK",
                                "HTTP/1.1 +20 OK", "SSH-2.0-OpenSSH_9.2\r\n", "http/1.1 200 OK"})
            QVERIFY2(statusOf(bad) == 0, bad);
    }

    void reasonPhrases() {
        QCOMPARE(reasonPhrase(502), std::string_view("Bad Gateway"));
        QCOMPARE(reasonPhrase(431), std::string_view("Request Header Fields Too Large"));
        QVERIFY(reasonPhrase(299).empty()); // the caller's fallback
    }

    void framesBodies() {
        BodyFramer body;
        body.start(BodyKind::Length, 5);
        QCOMPARE(body.feed("hel", 3), 3L);
        QVERIFY(!body.done());
        QCOMPARE(body.remaining(), uint64_t(2));
        QCOMPARE(body.feed("loNEXT", 6), 2L);
        QVERIFY(body.done());
        QCOMPARE(body.feed("NEXT", 4), 0L);
        body.start(BodyKind::Chunked, 0);
        QCOMPARE(body.feed("2\r\nok\r\n0\r\n\r\nNEXT", 16), 12L);
        QVERIFY(body.done());
        body.start(BodyKind::Chunked, 0);
        QCOMPARE(body.feed("2\r\nokX", 6), -1L);
        body.start(BodyKind::UntilClose, 0);
        QCOMPARE(body.feed("all of it", 9), 9L);
        QVERIFY(!body.done());
        QVERIFY(body.endOfInput());
        body.start(BodyKind::Length, 5);
        QCOMPARE(body.feed("hel", 3), 3L);
        QVERIFY(!body.endOfInput()); // truncated
        body.start(BodyKind::None, 0);
        QVERIFY(body.done());
        body.start(BodyKind::Length, 0);
        QVERIFY(body.done());
    }

    // The responses as the load generator reads them: whole, and a byte at a time from a
    // buffer it appends to and consumes from.
    void readsResponses_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("outcome"); // "done", "done at close", "error", "need more"
        QTest::addColumn<int>("status");
        QTest::addColumn<bool>("closes");
        QTest::addColumn<int>("rest"); // bytes after the response, left unconsumed

        const auto row = [](const char *name, const QByteArray &bytes, const char *outcome,
                            int status = 0, bool closes = false, int rest = 0) {
            QTest::newRow(name) << bytes << QString::fromLatin1(outcome) << status << closes
                                << rest;
        };
        row("length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT", "done", 200, false, 4);
        row("chunked",
            "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n"
            "0\r\nX-Trailer: y\r\n\r\nNEXT",
            "done", 503, false, 4);
        row("interim responses skipped",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            "HTTP/1.1 204 No Content\r\n\r\n",
            "done", 204);
        row("not modified has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            "done", 304);
        row("same length twice",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "done", 200);
        row("connection close",
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n"
            "Content-Length: 0\r\n\r\n",
            "done", 200, true);
        row("close inside another token",
            "HTTP/1.1 200 OK\r\nConnection: x-closed\r\n"
            "Content-Length: 0\r\n\r\n",
            "done", 200, false);
        row("http/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "done", 200, true);
        row("http/1.0 keep-alive",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
            "Content-Length: 0\r\n\r\n",
            "done", 200, false);
        row("until close", "HTTP/1.1 200 OK\r\n\r\nall that follows", "done at close", 200, true);
        row("incomplete head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "need more");
        row("incomplete body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", "need more");
        // Hostile: each could be framed two ways or not at all.
        row("two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
            "error");
        row("length list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nokk", "error");
        row("negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "error");
        row("overflowing length",
            "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551618\r\n\r\nok", "error");
        row("length with sign", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "error");
        row("not chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            "error");
        row("other coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "error");
        row("negative chunk size",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n", "error");
        row("overflowing chunk size",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx", "error");
        row("chunk size not hex",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n", "error");
        row("chunk longer than its size",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxx\r\n0\r\n\r\n", "error");
        row("bare LF in head", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "error");
        row("status below 100", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", "error");
        row("unsolicited switch", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            "error");
        row("not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", "error");
        row("head too large",
            "HTTP/1.1 200 OK\r\nX: " + QByteArray(70 * 1024, 'a') + "\r\nContent-Length: 0\r\n\r\n",
            "error");
        row("endless head", "HTTP/1.1 200 OK\r\nX: " + QByteArray(70 * 1024, 'a'), "error");
    }

    void readsResponses() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, outcome);
        QFETCH(int, status);
        QFETCH(bool, closes);
        QFETCH(int, rest);
        for (const size_t step : {size_t(bytes.size()), size_t(1)}) {
            ResponseReader reader;
            reader.reset();
            std::string buffer;
            ResponseReader::Progress progress = ResponseReader::Progress::NeedMore;
            for (qsizetype at = 0;
                 at < bytes.size() && progress == ResponseReader::Progress::NeedMore;
                 at += qsizetype(step)) {
                buffer.append(bytes.constData() + at,
                              std::min<size_t>(step, size_t(bytes.size() - at)));
                size_t consumed = 0;
                progress = reader.feed(buffer.data(), buffer.size(), consumed);
                QVERIFY(consumed <= buffer.size());
                buffer.erase(0, consumed);
            }
            const QByteArray context = outcome.toLatin1() + ", " +
                                       QByteArray::number(qulonglong(step)) + " byte(s) at a time";
            if (outcome == u"error") {
                QVERIFY2(progress == ResponseReader::Progress::Error, context);
                continue;
            }
            if (outcome == u"need more") {
                QVERIFY2(progress == ResponseReader::Progress::NeedMore, context);
                QVERIFY2(reader.endOfInput() == ResponseReader::Progress::Error, context);
                continue;
            }
            if (outcome == u"done at close") {
                QVERIFY2(progress == ResponseReader::Progress::NeedMore, context);
                QVERIFY2(reader.endOfInput() == ResponseReader::Progress::Done, context);
            } else {
                QVERIFY2(progress == ResponseReader::Progress::Done, context);
                // What follows the response stays for the next one (fed a byte at a time, the
                // reader stops before it arrives).
                QCOMPARE(buffer.size(), step == 1 ? size_t(0) : size_t(rest));
            }
            QCOMPARE(reader.status(), status);
            QCOMPARE(reader.closesConnection(), closes);
        }
    }

    // One reader, one response after another on a keep-alive connection.
    void readsResponsesInTurn() {
        ResponseReader reader;
        const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
        const std::string second =
            "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        size_t consumed = 0;
        reader.reset();
        QCOMPARE(reader.feed(first.data(), first.size(), consumed), ResponseReader::Progress::Done);
        QCOMPARE(consumed, first.size());
        QCOMPARE(reader.status(), 200);
        reader.reset();
        QCOMPARE(reader.status(), 0);
        QCOMPARE(reader.feed(second.data(), second.size(), consumed),
                 ResponseReader::Progress::Done);
        QCOMPARE(consumed, second.size());
        QCOMPARE(reader.status(), 404);
        // The response to a HEAD request has no body, whatever its length says.
        const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        reader.reset(true);
        QCOMPARE(reader.feed(head.data(), head.size(), consumed), ResponseReader::Progress::Done);
        QCOMPARE(consumed, head.size());
    }
};

QTEST_GUILESS_MAIN(TestHttpParser)
#include "tst_httpparser.moc"
