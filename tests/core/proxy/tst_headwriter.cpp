// The heads and error responses the proxy writes itself, checked byte for byte against
// expected text: no sockets, the head writer is a pure function of its inputs.

#include "http/HttpParser.h"
#include "proxy/HeadWriter.h"

#include <QTest>

#include <string>

using namespace corral;
using namespace corral::proxy;

class TestHeadWriter : public QObject {
    Q_OBJECT

    // Parsed views point into the text: the caller keeps `text` alive while `r` is used.
    static void parse(const std::string &text, http::RequestHead &r) {
        QCOMPARE(http::parseRequest(text.data(), text.size(), http::HeadLimits{}, r), 0);
    }
    static void parse(const std::string &text, http::ResponseHead &r, bool requestWasHead = false) {
        QCOMPARE(http::parseResponse(text.data(), text.size(), requestWasHead, 200, r), 0);
    }

    static std::string requestHead(const std::string &text, std::string_view clientIp) {
        http::RequestHead r;
        parse(text, r);
        char out[4096];
        const uint32_t n = writeRequestHead(r, clientIp, out, sizeof out);
        return std::string(out, n);
    }

    static std::string responseHead(const std::string &text, const ResponseHeadOptions &options) {
        http::ResponseHead r;
        parse(text, r);
        char out[4096];
        const uint32_t n = writeResponseHead(r, options, out, sizeof out);
        return std::string(out, n);
    }

    static std::string errorResponse(int status, bool close, std::string_view clientIp,
                                     const ErrorCause &cause, const ProxyConfig &config = {}) {
        char out[4096];
        const uint32_t n =
            writeErrorResponse(status, close, clientIp, cause, config, out, sizeof out);
        return std::string(out, n);
    }

private Q_SLOTS:
    void requestHeadWithoutBody() {
        QCOMPARE(requestHead("GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n",
                             "10.0.0.7"),
                 std::string("GET /a?b=1 HTTP/1.1\r\n"
                             "Host: example.org\r\n"
                             "X-Forwarded-For: 10.0.0.7\r\n"
                             "Accept: */*\r\n"
                             "X-Real-IP: 10.0.0.7\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: example.org\r\n"
                             "\r\n"));
    }

    void requestHeadWithBody() {
        // Content-Length is the body's framing: it goes to the backend as sent.
        QCOMPARE(requestHead("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                             "Content-Type: text/plain\r\n\r\n",
                             "127.0.0.1"),
                 std::string("POST /form HTTP/1.1\r\n"
                             "Host: h\r\n"
                             "X-Forwarded-For: 127.0.0.1\r\n"
                             "Content-Length: 5\r\n"
                             "Content-Type: text/plain\r\n"
                             "X-Real-IP: 127.0.0.1\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: h\r\n"
                             "\r\n"));
    }

    void requestHeadChunked() {
        // The client's Transfer-Encoding (hop-by-hop) is replaced by the proxy's own, after
        // the forwarded headers; TE and Trailer do not cross either.
        QCOMPARE(requestHead("PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                             "TE: trailers\r\nX-Id: 7\r\n\r\n",
                             "10.1.2.3"),
                 std::string("PUT /up HTTP/1.1\r\n"
                             "Host: h\r\n"
                             "X-Forwarded-For: 10.1.2.3\r\n"
                             "X-Id: 7\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "X-Real-IP: 10.1.2.3\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: h\r\n"
                             "\r\n"));
    }

    void requestHeadUpgrade() {
        QCOMPARE(requestHead("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                             "Upgrade: websocket\r\nSec-WebSocket-Key: abc==\r\n\r\n",
                             "10.0.0.1"),
                 std::string("GET /ws HTTP/1.1\r\n"
                             "Host: h\r\n"
                             "X-Forwarded-For: 10.0.0.1\r\n"
                             "Sec-WebSocket-Key: abc==\r\n"
                             "X-Real-IP: 10.0.0.1\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: h\r\n"
                             "Connection: upgrade\r\n"
                             "Upgrade: websocket\r\n"
                             "\r\n"));
    }

    void requestHeadHttp10AbsoluteForm() {
        // HTTP/1.0 keeps its version and asks the backend to keep the connection; an
        // absolute-form target goes out in origin form, its authority as the Host.
        QCOMPARE(requestHead("GET http://example.org?q HTTP/1.0\r\n\r\n", "10.0.0.2"),
                 std::string("GET /?q HTTP/1.0\r\n"
                             "Host: example.org\r\n"
                             "X-Forwarded-For: 10.0.0.2\r\n"
                             "X-Real-IP: 10.0.0.2\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: example.org\r\n"
                             "Connection: keep-alive\r\n"
                             "\r\n"));
    }

    void xForwardedForAppendsTheClient() {
        // Every value the client sent, in order, then its own address, on one line.
        QCOMPARE(requestHead("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"
                             "Accept: a\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n",
                             "::1"),
                 std::string("GET / HTTP/1.1\r\n"
                             "Host: h\r\n"
                             "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, ::1\r\n"
                             "Accept: a\r\n"
                             "X-Real-IP: ::1\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: h\r\n"
                             "\r\n"));
    }

    // Behind a TLS listener the backend is told https, whatever the client claimed.
    void requestHeadOverTls() {
        const std::string text = "GET / HTTP/1.1\r\nHost: example.org\r\n"
                                 "X-Forwarded-Proto: http\r\n\r\n";
        http::RequestHead r;
        parse(text, r);
        char out[4096];
        const uint32_t n = writeRequestHead(r, "10.0.0.7", out, sizeof out, true);
        QCOMPARE(std::string(out, n), std::string("GET / HTTP/1.1\r\n"
                                                  "Host: example.org\r\n"
                                                  "X-Forwarded-For: 10.0.0.7\r\n"
                                                  "X-Real-IP: 10.0.0.7\r\n"
                                                  "X-Forwarded-Proto: https\r\n"
                                                  "X-Forwarded-Host: example.org\r\n"
                                                  "\r\n"));
    }

    void hostileRequestHeaders() {
        // A client cannot set the headers Corral vouches for (X-Real-IP, X-Forwarded-Proto,
        // X-Forwarded-Host), cannot strip them or the framing through Connection, and what
        // Connection names otherwise is dropped with the other hop-by-hop headers.
        QCOMPARE(requestHead("POST /x HTTP/1.1\r\nHost: real\r\n"
                             "Connection: keep-alive, X-Forwarded-For, Content-Length, X-Drop\r\n"
                             "X-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
                             "X-Forwarded-Host: evil\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\n"
                             "Proxy-Authorization: Basic eA==\r\nContent-Length: 2\r\n"
                             "X-Odd: a;b=\"c\\\" d\"\t, <>\r\n\r\n",
                             "10.9.9.9"),
                 std::string("POST /x HTTP/1.1\r\n"
                             "Host: real\r\n"
                             "X-Forwarded-For: 10.9.9.9\r\n"
                             "Content-Length: 2\r\n"
                             "X-Odd: a;b=\"c\\\" d\"\t, <>\r\n"
                             "X-Real-IP: 10.9.9.9\r\n"
                             "X-Forwarded-Proto: http\r\n"
                             "X-Forwarded-Host: real\r\n"
                             "\r\n"));
    }

    void responseHeadKeepAlive() {
        QCOMPARE(responseHead("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n"
                              "Connection: keep-alive\r\nServer: b\r\n\r\n",
                              {}),
                 std::string("HTTP/1.1 200 OK\r\n"
                             "Content-Length: 2\r\n"
                             "Server: b\r\n"
                             "\r\n"));
    }

    void responseHeadClosesAndTellsHttp10() {
        ResponseHeadOptions close;
        close.keepAlive = false;
        QCOMPARE(responseHead("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", close),
                 std::string("HTTP/1.1 404 Not Found\r\n"
                             "Content-Length: 0\r\n"
                             "Connection: close\r\n"
                             "\r\n"));
        ResponseHeadOptions http10;
        http10.http10 = true;
        QCOMPARE(responseHead("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", http10),
                 std::string("HTTP/1.0 200 OK\r\n"
                             "Content-Length: 0\r\n"
                             "Connection: keep-alive\r\n"
                             "\r\n"));
    }

    void responseHeadChunkedAndStickyCookie() {
        // Transfer-Encoding frames the body: Content-Length must not reach the client, and
        // the proxy writes its own Transfer-Encoding line.
        ResponseHeadOptions sticky;
        sticky.stickyId = "0a1b2c";
        QCOMPARE(responseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                              "Content-Type: text/html\r\nTrailer: X-Sum\r\n\r\n",
                              sticky),
                 std::string("HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/html\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "Set-Cookie: CORRALID=0a1b2c; Path=/; HttpOnly\r\n"
                             "\r\n"));
    }

    void responseHeadSwitchingProtocols() {
        // A 101 keeps Upgrade and Connection (the client needs them) and gets no Connection
        // header of the proxy's.
        ResponseHeadOptions close;
        close.keepAlive = false;
        QCOMPARE(responseHead("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: x=\r\n\r\n",
                              close),
                 std::string("HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: x=\r\n"
                             "\r\n"));
    }

    void errorDetailsOnlyForLoopbackClients() {
        FailedAttempt attempt;
        attempt.backend = "127.0.0.1:3001";
        attempt.why = FailReason::Refused;
        ErrorCause cause;
        cause.attempt = &attempt;
        cause.configured = 1;
        const std::string detail = "no backend is up: 127.0.0.1:3001 refused the connection\n";
        const std::string expected = "HTTP/1.1 502 Bad Gateway\r\n"
                                     "Content-Type: text/plain\r\n"
                                     "Content-Length: " +
                                     std::to_string(detail.size()) + "\r\n\r\n" + detail;
        QCOMPARE(errorResponse(502, false, "127.0.0.1", cause), expected);
        QCOMPARE(errorResponse(502, false, "::ffff:127.0.0.9", cause), expected);
        QCOMPARE(errorResponse(502, false, "::1", cause), expected);
        // Anyone else learns nothing about the backends.
        QCOMPARE(errorResponse(502, false, "10.0.0.7", cause),
                 std::string("HTTP/1.1 502 Bad Gateway\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 12\r\n\r\n"
                             "Bad Gateway\n"));
        QCOMPARE(errorResponse(502, false, "128.0.0.1", cause).find("3001"), std::string::npos);
    }

    void gatewayTimeoutSaysWhyItWasNotRetried() {
        ProxyConfig config;
        config.responseTimeoutMs = 1500;
        config.retries = 2;
        FailedAttempt attempt;
        attempt.backend = "127.0.0.1:3002";
        attempt.why = FailReason::ResponseTimeout;
        attempt.noRetry = NoRetry::Final;
        ErrorCause cause;
        cause.attempt = &attempt;
        const std::string timeout = "127.0.0.1:3002 did not answer within 1500 ms\n";
        QCOMPARE(errorResponse(504, true, "127.0.0.1", cause, config),
                 "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain\r\nContent-Length: " +
                     std::to_string(timeout.size()) + "\r\nConnection: close\r\n\r\n" + timeout);

        attempt.why = FailReason::Reset;
        attempt.noRetry = NoRetry::Exhausted;
        const std::string exhausted = "127.0.0.1:3002 reset the connection before answering; "
                                      "not retried again (retries: 2)\n";
        QCOMPARE(errorResponse(502, false, "127.0.0.1", cause, config),
                 "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: " +
                     std::to_string(exhausted.size()) + "\r\n\r\n" + exhausted);

        attempt.why = FailReason::Closed;
        attempt.midHead = true;
        attempt.noRetry = NoRetry::NotIdempotent;
        const std::string midHead = "127.0.0.1:3002 closed the connection in the middle of its "
                                    "response head; not retried: the method is not idempotent\n";
        QVERIFY(
            errorResponse(502, false, "127.0.0.1", cause, config).ends_with("\r\n\r\n" + midHead));
    }

    void noBackendUpNamesTheUnusableOnes() {
        ProxyConfig config;
        config.connectTimeoutMs = 5000;
        const BackendStatus unusable[] = {
            {"127.0.0.1:1", BackendCondition::Disabled, FailReason::None},
            {"127.0.0.1:2", BackendCondition::Draining, FailReason::None},
            {"127.0.0.1:3", BackendCondition::FailsHealthChecks, FailReason::None},
            {"127.0.0.1:4", BackendCondition::Failed, FailReason::ConnectTimeout},
            {"127.0.0.1:5", BackendCondition::Down, FailReason::None},
        };
        ErrorCause cause;
        cause.unusable = unusable;
        cause.configured = 5;
        // At most four are named.
        QVERIFY(errorResponse(502, false, "127.0.0.1", cause, config)
                    .ends_with("\r\n\r\nno backend is up: 127.0.0.1:1 is disabled, 127.0.0.1:2 is "
                               "draining, 127.0.0.1:3 fails its health checks, 127.0.0.1:4 did "
                               "not accept the connection within 5 s\n"));
        cause.unusable = std::span<const BackendStatus>(unusable + 4, 1);
        QVERIFY(errorResponse(502, false, "127.0.0.1", cause, config)
                    .ends_with("\r\n\r\nno backend is up: 127.0.0.1:5 is down\n"));
        ErrorCause none;
        QVERIFY(errorResponse(502, false, "127.0.0.1", none, config)
                    .ends_with("\r\n\r\nno backend is up: none is configured\n"));
    }

    void clientErrorsGetTheReasonPhrase() {
        // Not a backend's doing: no detail, even on this machine.
        FailedAttempt attempt{"127.0.0.1:3001", FailReason::Refused, false, NoRetry::None};
        ErrorCause cause;
        cause.attempt = &attempt;
        QCOMPARE(errorResponse(431, true, "127.0.0.1", cause),
                 std::string("HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 32\r\n"
                             "Connection: close\r\n\r\n"
                             "Request Header Fields Too Large\n"));
        QCOMPARE(errorResponse(400, true, "10.0.0.1", {}),
                 std::string("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 12\r\nConnection: close\r\n\r\nBad Request\n"));
    }

    void bufferTooSmall() {
        // Nothing is written partially: 0 when it does not fit, the whole when it just does.
        const std::string requestText = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        http::RequestHead request;
        parse(requestText, request);
        char out[512];
        const uint32_t requestLength = writeRequestHead(request, "10.0.0.1", out, sizeof out);
        QVERIFY(requestLength > 0);
        QCOMPARE(writeRequestHead(request, "10.0.0.1", out, requestLength), requestLength);
        QCOMPARE(writeRequestHead(request, "10.0.0.1", out, requestLength - 1), 0u);

        const std::string responseText = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        http::ResponseHead response;
        parse(responseText, response);
        const uint32_t responseLength = writeResponseHead(response, {}, out, sizeof out);
        QVERIFY(responseLength > 0);
        QCOMPARE(writeResponseHead(response, {}, out, responseLength), responseLength);
        QCOMPARE(writeResponseHead(response, {}, out, responseLength - 1), 0u);

        const ProxyConfig config;
        const uint32_t errorLength =
            writeErrorResponse(503, true, "10.0.0.1", {}, config, out, sizeof out);
        QVERIFY(errorLength > 0);
        QCOMPARE(writeErrorResponse(503, true, "10.0.0.1", {}, config, out, errorLength),
                 errorLength);
        QCOMPARE(writeErrorResponse(503, true, "10.0.0.1", {}, config, out, errorLength - 1), 0u);

        // A detail too long for its own buffer falls back to the reason phrase.
        const std::string longName(600, 'b');
        FailedAttempt attempt{longName, FailReason::Refused, false, NoRetry::Final};
        ErrorCause cause;
        cause.attempt = &attempt;
        QVERIFY(errorResponse(502, false, "127.0.0.1", cause).ends_with("\r\n\r\nBad Gateway\n"));
    }
};

QTEST_MAIN(TestHeadWriter)
#include "tst_headwriter.moc"
