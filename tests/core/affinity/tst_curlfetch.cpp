// curlFetch() (issue 22): the affinity check's requests on a production host, made with the
// host's real curl over a real sshd (127.0.0.73, this machine, as root) to scripted HTTP
// servers in this process: what reaches the server (target, Host, cookies, a binary body from
// stdin, nothing curl adds on its own), and what comes back (interim 100 skipped, chunks
// taken off, every Set-Cookie), a 101 that ends the read at once, an answer held open (timed
// out), a refused port; output cut at the limits (a 100 KB head, a 1 MB body), and a host
// whose SSH link stalls (sshd SIGSTOPped) ending the request within its deadline.

#include "ResultVerify.h"
#include "SshServer.h"
#include "affinity/CurlFetch.h"
#include "ssh/HostSessions.h"
#include "util/ListeningSockets.h"

#include <QElapsedTimer>
#include <QScopeGuard>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>

#include <csignal>
#include <future>
#include <memory>

#include <unistd.h>

using namespace corral;

namespace {

/// A server that reads one request (head, then Content-Length bytes) per connection and
/// answers `response`, or nothing when `hold` (the connection stays open).
class ScriptedServer : public QObject {
public:
    QByteArray response;
    bool hold = false;   ///< read the request, answer nothing
    bool close = true;   ///< close once answered (else keep the connection, as after a 101)
    QByteArray received; ///< the last request, as it arrived

    bool listen() {
        connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket *socket = m_server.nextPendingConnection()) {
                socket->setParent(this);
                connect(socket, &QTcpSocket::readyRead, socket, [this, socket] { read(socket); });
            }
        });
        return m_server.listen(QHostAddress::LocalHost, 0);
    }
    quint16 port() const { return m_server.serverPort(); }

private:
    void read(QTcpSocket *socket) {
        QByteArray &buffer = m_buffers[socket];
        buffer += socket->readAll();
        const qsizetype end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        qsizetype length = 0;
        for (const QByteArray &line : buffer.left(end).split('\n'))
            if (line.toLower().startsWith("content-length:"))
                length = line.mid(15).trimmed().toLongLong();
        if (buffer.size() < end + 4 + length) return;
        received = buffer;
        m_buffers.remove(socket);
        if (hold) return;
        socket->write(response);
        if (close) socket->disconnectFromHost();
    }

    QTcpServer m_server;
    QHash<QTcpSocket *, QByteArray> m_buffers;
};

} // namespace

class TestCurlFetch : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.73")};

    /// curlFetch() of `request` to 127.0.0.1:`port` from host "remote", on a thread of its
    /// own while this one serves; waits at most `timeoutMs` + 15 s.
    ProbeResponse fetch(quint16 port, const ProbeRequest &request, int timeoutMs = 5000,
                        const QString &host = QStringLiteral("remote")) {
        auto answer = startFetch(port, request, timeoutMs, host);
        QElapsedTimer clock;
        clock.start();
        while (answer.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready &&
               clock.elapsed() < timeoutMs + 15000)
            QTest::qWait(5);
        if (answer.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
            qWarning("curlFetch did not return");
            answer.wait(); // bounded by curl's --max-time and the SSH command's timeout
        }
        return answer.get();
    }

    /// fetch() started on its own thread: `times` requests through the same curlFetch (the
    /// last one's answer; `first` gets the first's, written before the future is ready).
    std::future<ProbeResponse> startFetch(quint16 port, const ProbeRequest &request, int timeoutMs,
                                          const QString &host, int times = 1,
                                          ProbeResponse *first = nullptr) {
        ProbeEndpoint endpoint;
        endpoint.label = QStringLiteral("worker");
        endpoint.address = QStringLiteral("127.0.0.1");
        endpoint.port = port;
        endpoint.host = host;
        const QList<Host> hosts{m_server.inventoryHost(QStringLiteral("remote"))};
        const SshConfig config = m_server.trustedConfig();
        return std::async(std::launch::async, [=] {
            HostSessions sessions(hosts, [config](const Host &) {
                auto session = std::make_unique<SshSession>(config);
                auto connected = session->connect();
                return connected ? Result<std::unique_ptr<SshSession>>(std::move(session))
                                 : Result<std::unique_ptr<SshSession>>(fail(connected.error()));
            });
            const ProbeFetch fetch = curlFetch(sessions);
            ProbeResponse response;
            for (int i = 0; i < times; ++i) {
                response = fetch(endpoint, request, timeoutMs);
                if (i == 0 && first) *first = response;
            }
            return response;
        });
    }

private Q_SLOTS:
    void initTestCase() {
        if (::geteuid() != 0) QSKIP("needs root: the sshd fixture logs in as root");
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
    }

    // The request as the check wrote it (and nothing curl adds by itself); the answer with
    // its interim 100 skipped, its chunks taken off and every Set-Cookie kept in order.
    void getRequestAndChunkedAnswer() {
        ScriptedServer server;
        QVERIFY(server.listen());
        server.response =
            "HTTP/1.1 100 Continue\r\n\r\n"
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        ProbeRequest request;
        request.target = "/p q/../x?y=1&z='$(id)'";
        request.host = "shop.example.com";
        request.headers = {{"Cookie", "connect.sid=s%3Aabc; CORRALID=1"}, {"X-Split", "a\r\nb"}};
        const ProbeResponse response = fetch(server.port(), request);
        QVERIFY2(response.error.isEmpty(), qPrintable(response.error));
        QCOMPARE(response.status, 200);
        QCOMPARE(response.setCookies(), (QList<QByteArray>{"a=1; Path=/", "b=2"}));
        QCOMPARE(response.body, QByteArray("hello world"));
        QVERIFY(!response.timedOut);

        const QByteArray head = server.received;
        QVERIFY2(head.startsWith("GET /p%20q/../x?y=1&z='$(id)' HTTP/1.1\r\n"), head.constData());
        QVERIFY2(head.contains("\r\nHost: shop.example.com\r\n"), head.constData());
        QVERIFY(head.contains("\r\nCookie: connect.sid=s%3Aabc; CORRALID=1\r\n"));
        QVERIFY(head.contains("\r\nX-Split: ab\r\n")); // CR LF dropped: one header line
        QVERIFY(head.contains("\r\nConnection: close\r\n"));
        for (const char *added : {"User-Agent", "Accept:", "Expect"})
            QVERIFY2(!head.contains(added), head.constData());
    }

    // A body (binary, with a NUL) reaches the server byte for byte through curl's stdin,
    // with its Content-Length and no form Content-Type.
    void postBodyFromStdin() {
        ScriptedServer server;
        QVERIFY(server.listen());
        server.response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ProbeRequest request;
        request.method = "POST";
        request.target = "/socket.io/?EIO=4&transport=polling&sid=Kx";
        request.body = QByteArray("40\0'\"$x", 7);
        const ProbeResponse response = fetch(server.port(), request);
        QVERIFY2(response.error.isEmpty(), qPrintable(response.error));
        QCOMPARE(response.status, 200);
        QCOMPARE(response.body, QByteArray("ok"));
        QVERIFY2(server.received.startsWith("POST /socket.io/?EIO=4&transport=polling&sid=Kx "),
                 server.received.constData());
        QVERIFY(server.received.contains("\r\nContent-Length: 7\r\n"));
        QVERIFY(server.received.endsWith(QByteArray("\r\n\r\n40\0'\"$x", 11)));
        QVERIFY(!server.received.contains("Content-Type"));
        QVERIFY(server.received.contains(
            QStringLiteral("\r\nHost: 127.0.0.1:%1\r\n").arg(server.port()).toLatin1()));
    }

    // An upgrade's 101 is the whole answer: returned as soon as its head came, not when
    // curl's --max-time ends the connection it keeps open.
    void upgradeEndsAtItsHead() {
        ScriptedServer server;
        QVERIFY(server.listen());
        server.response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n\x81\x05hello";
        server.close = false; // as a WebSocket server does
        ProbeRequest request;
        request.upgradeWebSocket = true;
        request.target = "/socket.io/?EIO=4&transport=websocket";
        QElapsedTimer clock;
        clock.start();
        const ProbeResponse response = fetch(server.port(), request, 8000);
        const qint64 elapsed = clock.elapsed();
        QCOMPARE(response.status, 101);
        QVERIFY2(response.error.isEmpty(), qPrintable(response.error));
        QCOMPARE(response.header("upgrade"), QByteArray("websocket"));
        QVERIFY2(elapsed < 4000, qPrintable(QString::number(elapsed)));
        QVERIFY(server.received.contains("\r\nUpgrade: websocket\r\n"));
        QVERIFY(server.received.contains("\r\nSec-WebSocket-Key: "));
        qInfo("101 read in %lld ms (curl's --max-time 8 s)", elapsed);
    }

    // Connected, no answer: a long-poll held open, reported as timed out (no status).
    void heldAnswerTimesOut() {
        ScriptedServer server;
        QVERIFY(server.listen());
        server.hold = true;
        const ProbeResponse response = fetch(server.port(), ProbeRequest{}, 1000);
        QCOMPARE(response.status, 0);
        QVERIFY(response.timedOut);
        QCOMPARE(response.error, QStringLiteral("no answer within 1000 ms"));
    }

    void refusedPortAndNoHost() {
        quint16 closed = 0;
        {
            QTcpServer probe;
            QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
            closed = probe.serverPort();
        }
        ProbeResponse response = fetch(closed, ProbeRequest{});
        QCOMPARE(response.status, 0);
        // Older curl says "Connection refused", 7.88 "Couldn't connect to server".
        QVERIFY2(response.error == QLatin1String("connection refused") ||
                     (response.error.startsWith(QLatin1String("cannot connect: ")) &&
                      response.error.contains(QString::number(closed))),
                 qPrintable(response.error));
        QVERIFY(!response.timedOut);

        // No host: nothing runs here.
        response = fetch(closed, ProbeRequest{}, 1000, QString());
        QCOMPARE(response.status, 0);
        QVERIFY2(response.error.contains(QStringLiteral("no host")), qPrintable(response.error));
    }

    // The limits fetchDirect() keeps: a head over 64 KiB is malformed, a body is cut at
    // ProbeBodyLimit, whether curl's output came whole or was cut short.
    void parseCurlProbeLimits() {
        const QByteArray bigHead = "HTTP/1.1 200 OK\r\nX-Big: " + QByteArray(100 * 1000, 'a') +
                                   "\r\nContent-Length: 2\r\n\r\nok";
        for (bool complete : {true, false}) {
            const ProbeResponse response =
                parseCurlProbe(bigHead, 0, {}, complete, ProbeRequest{}, 1000);
            QCOMPARE(response.status, 0);
            QCOMPARE(response.error, QStringLiteral("malformed response"));
        }
        // A head not even ended within 64 KiB.
        const ProbeResponse unended =
            parseCurlProbe(bigHead.left(80 * 1000), 28, {}, false, ProbeRequest{}, 1000);
        QCOMPARE(unended.error, QStringLiteral("malformed response"));

        const QByteArray bigBody =
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + QByteArray(1000 * 1000, 'b');
        for (bool complete : {true, false}) {
            const ProbeResponse response =
                parseCurlProbe(bigBody, 0, {}, complete, ProbeRequest{}, 1000);
            QVERIFY2(response.error.isEmpty(), qPrintable(response.error));
            QCOMPARE(response.status, 200);
            QCOMPARE(response.body.size(), qsizetype(ProbeBodyLimit));
        }
    }

    // Through the host: curl's output is cut there (the rest never crosses SSH), a 100 KB
    // head refused, a 1 MB body kept up to the limit.
    void outputCutOnTheHost() {
        ScriptedServer server;
        QVERIFY(server.listen());
        server.response =
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + QByteArray(1000 * 1000, 'b');
        ProbeResponse response = fetch(server.port(), ProbeRequest{});
        QVERIFY2(response.error.isEmpty(), qPrintable(response.error));
        QCOMPARE(response.status, 200);
        QCOMPARE(response.body.size(), qsizetype(ProbeBodyLimit));

        ProbeRequest post; // the exec() path
        post.method = "POST";
        post.body = "x";
        response = fetch(server.port(), post);
        QVERIFY2(response.error.isEmpty(), qPrintable(response.error));
        QCOMPARE(response.status, 200);
        QCOMPARE(response.body.size(), qsizetype(ProbeBodyLimit));

        server.response = "HTTP/1.1 200 OK\r\nX-Big: " + QByteArray(100 * 1000, 'a') +
                          "\r\nContent-Length: 2\r\n\r\nok";
        response = fetch(server.port(), ProbeRequest{});
        QCOMPARE(response.status, 0);
        QCOMPARE(response.error, QStringLiteral("malformed response"));
    }

    // The host's sshd stops (SIGSTOP, the connection left open: a stalled link): curl's end
    // never arrives, yet the request ends within curl's --max-time plus the SSH slack, saying
    // so; a second request to the host fails at once instead of waiting as long again.
    void stalledHostEndsTheRequest() {
        ScriptedServer server;
        QVERIFY(server.listen());
        server.hold = true;
        QElapsedTimer clock;
        clock.start();
        ProbeResponse first;
        auto answer =
            startFetch(server.port(), ProbeRequest{}, 1000, QStringLiteral("remote"), 2, &first);
        // Stopped once the request reached the server: curl runs, its answer cannot come back.
        QTRY_VERIFY_WITH_TIMEOUT(!server.received.isEmpty(), 10000);
        const auto resume = qScopeGuard([&] {
            for (qint64 pid : processTree(m_server.pid()))
                ::kill(pid_t(pid), SIGCONT);
        });
        for (qint64 pid : processTree(m_server.pid()))
            ::kill(pid_t(pid), SIGSTOP);
        QTRY_VERIFY_WITH_TIMEOUT(
            answer.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready, 20000);
        const qint64 elapsed = clock.elapsed();
        const ProbeResponse second = answer.get();
        qInfo("stalled host: %lld ms: %s", elapsed, qPrintable(first.error));
        QCOMPARE(first.status, 0);
        QVERIFY2(first.error.contains(QStringLiteral("within 11000 ms")), qPrintable(first.error));
        QVERIFY2(first.error.contains(QStringLiteral("remote")), qPrintable(first.error));
        QVERIFY2(elapsed < 16000, qPrintable(QString::number(elapsed)));
        QCOMPARE(second.error, first.error);
    }
};

QTEST_GUILESS_MAIN(TestCurlFetch)
#include "tst_curlfetch.moc"
