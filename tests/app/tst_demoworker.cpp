// Drives the real corral-demo-worker executable over real sockets.
#include <QCryptographicHash>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>

#include <optional>

#include <csignal>
#include <sys/types.h>
#include <unistd.h>

#include "helpers/DemoWorker.h"
#include "helpers/TestProcess.h"

using corral::test::freePort;

namespace {

constexpr int kTimeoutMs = 15000;

struct HttpResponse {
    int status = 0;
    QMap<QByteArray, QByteArray> headers; // names in lower case
    QByteArray body;

    QByteArray header(const QByteArray &name) const { return headers.value(name.toLower()); }
    QJsonObject json() const { return QJsonDocument::fromJson(body).object(); }
};

// A blocking HTTP/1.1 client on one connection. Unread bytes stay buffered, so pipelined
// responses can be read one after the other.
class HttpConnection {
public:
    bool connectTo(quint16 port) {
        m_socket.connectToHost(QHostAddress::LocalHost, port);
        return m_socket.waitForConnected(kTimeoutMs);
    }
    bool send(const QByteArray &bytes) {
        m_socket.write(bytes);
        while (m_socket.bytesToWrite() > 0) {
            if (!m_socket.waitForBytesWritten(kTimeoutMs)) return false;
        }
        return true;
    }
    std::optional<HttpResponse> request(const QByteArray &method, const QByteArray &target) {
        if (!send(method + ' ' + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n")) return {};
        return readResponse();
    }
    std::optional<HttpResponse> readResponse(int timeoutMs = kTimeoutMs) {
        QElapsedTimer timer;
        timer.start();
        qsizetype headEnd = -1;
        while ((headEnd = m_buffer.indexOf("\r\n\r\n")) < 0) {
            if (!fill(timer, timeoutMs)) return {};
        }
        const QList<QByteArray> lines = m_buffer.left(headEnd).split('\n');
        HttpResponse response;
        const QList<QByteArray> statusLine = lines.first().trimmed().split(' ');
        if (statusLine.size() < 2 || statusLine.first() != "HTTP/1.1") return {};
        response.status = statusLine.at(1).toInt();
        for (qsizetype i = 1; i < lines.size(); ++i) {
            const qsizetype colon = lines.at(i).indexOf(':');
            if (colon > 0)
                response.headers.insert(lines.at(i).left(colon).trimmed().toLower(),
                                        lines.at(i).mid(colon + 1).trimmed());
        }
        m_buffer.remove(0, headEnd + 4);
        const qsizetype length =
            response.status == 101 ? 0 : response.header("content-length").toLongLong();
        while (m_buffer.size() < length) {
            if (!fill(timer, timeoutMs)) return {};
        }
        response.body = m_buffer.left(length);
        m_buffer.remove(0, length);
        return response;
    }
    QByteArray readExactly(qsizetype count, int timeoutMs = kTimeoutMs) {
        QElapsedTimer timer;
        timer.start();
        while (m_buffer.size() < count) {
            if (!fill(timer, timeoutMs)) break;
        }
        const QByteArray bytes = m_buffer.left(count);
        m_buffer.remove(0, bytes.size());
        return bytes;
    }
    bool hasUnreadBytes() const { return !m_buffer.isEmpty() || m_socket.bytesAvailable() > 0; }
    // True once the server has closed the connection (after any buffered bytes were read).
    bool waitForServerClose() {
        QElapsedTimer timer;
        timer.start();
        while (m_socket.state() == QAbstractSocket::ConnectedState) {
            if (!fill(timer, kTimeoutMs)) break;
        }
        return m_socket.state() != QAbstractSocket::ConnectedState;
    }

private:
    bool fill(const QElapsedTimer &timer, int timeoutMs) {
        const int remaining = timeoutMs - static_cast<int>(timer.elapsed());
        if (remaining <= 0) return false;
        if (m_socket.bytesAvailable() == 0 && !m_socket.waitForReadyRead(remaining)) return false;
        m_buffer += m_socket.readAll();
        return true;
    }

    QTcpSocket m_socket;
    QByteArray m_buffer;
};

// One worker under test, started with the whole command line each test gives (start() here
// hides DemoWorker's port-and-options start on purpose). The destructor kills it (with
// ownProcessGroup its whole group), so a failing test leaves no process behind; launching,
// waiting and stopping are the shared tests/helpers/DemoWorker.
class Worker : public corral::test::DemoWorker {
public:
    explicit Worker(bool ownProcessGroup = false)
        : DemoWorker(QStringLiteral(DEMO_WORKER_PATH), ownProcessGroup) {}
    ~Worker() { kill(); }
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    // Without PORT from the test's own environment: the arguments decide.
    bool start(const QStringList &arguments,
               QProcessEnvironment environment = QProcessEnvironment::systemEnvironment()) {
        environment.remove(QStringLiteral("PORT"));
        return launch(arguments, environment);
    }
    bool startWithEnvironment(const QStringList &arguments,
                              const QProcessEnvironment &environment) {
        return launch(arguments, environment);
    }
};

QStringList portArguments(quint16 port, QStringList more = {}) {
    more.prepend(QString::number(port));
    more.prepend(QStringLiteral("--port"));
    return more;
}

} // namespace

class TestDemoWorker : public QObject {
    Q_OBJECT

    // Starts a worker on a free port and waits until it accepts connections.
    bool startServing(Worker &worker, quint16 &port, const QStringList &extra = {}) {
        const bool serving = worker.DemoWorker::start(0, extra);
        port = worker.port();
        return serving;
    }

private Q_SLOTS:
    void helpAndBadArguments() {
        Worker help;
        QVERIFY(help.start({QStringLiteral("--help")}));
        QVERIFY(help.waitForExit());
        QCOMPARE(help.exitCode(), 0);
        const QByteArray usage = help.output();
        for (const char *flag : {"--port", "--bind", "--fail-health", "--ready-delay-ms",
                                 "--never-listen", "--exit-after-ms", "--spawn-child",
                                 "--ignore-sigterm", "--log-rate", "--print-env", "--sessions"})
            QVERIFY2(usage.contains(flag), flag);

        const QList<QStringList> badArguments = {
            {QStringLiteral("--bogus")},
            {QStringLiteral("--port"), QStringLiteral("abc")},
            {QStringLiteral("--port"), QStringLiteral("70000")},
            {QStringLiteral("--port")},
            {QStringLiteral("--port"), QStringLiteral("1"), QStringLiteral("--sessions"),
             QStringLiteral("disk")},
            {}, // neither --port nor PORT
        };
        for (const QStringList &arguments : badArguments) {
            Worker bad;
            QVERIFY(bad.start(arguments));
            QVERIFY(bad.waitForExit());
            QCOMPARE(bad.exitCode(), 2);
            QVERIFY(!bad.process().readAllStandardError().isEmpty());
        }
    }

    void rootCountsRequestsOnKeepAlive() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        QVERIFY(worker.waitForOutput(QStringLiteral("corral-demo-worker pid %1 listening on "
                                                    "127.0.0.1:%2\n")
                                         .arg(worker.pid())
                                         .arg(port)
                                         .toUtf8()));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        for (int expected = 1; expected <= 2; ++expected) {
            const auto response = connection.request("GET", "/");
            QVERIFY(response);
            QCOMPARE(response->status, 200);
            QCOMPARE(response->header("content-type"), QByteArray("application/json"));
            const QJsonObject json = response->json();
            QCOMPARE(json.value(QStringLiteral("pid")).toInteger(), worker.pid());
            QCOMPARE(json.value(QStringLiteral("port")).toInt(), int(port));
            QCOMPARE(json.value(QStringLiteral("requests")).toInt(), expected);
        }
    }

    // --sessions memory: a demo.sid issued once, known afterwards to this process only; the
    // default sets no cookie at all.
    void memorySessionsAreKnownToTheirProcessOnly() {
        Worker first, second, plain;
        quint16 firstPort = 0, secondPort = 0, plainPort = 0;
        QVERIFY(startServing(first, firstPort,
                             {QStringLiteral("--sessions"), QStringLiteral("memory")}));
        QVERIFY(startServing(second, secondPort, {QStringLiteral("--sessions=memory")}));
        QVERIFY(startServing(plain, plainPort));
        HttpConnection connection;
        QVERIFY(connection.connectTo(firstPort));
        const auto issued = connection.request("GET", "/");
        QVERIFY(issued);
        QCOMPARE(issued->json().value(QStringLiteral("session")).toString(), QStringLiteral("new"));
        const QRegularExpressionMatch cookie =
            QRegularExpression(QStringLiteral("^demo\\.sid=([0-9a-f]{16}); Path=/; HttpOnly$"))
                .match(QString::fromLatin1(issued->header("set-cookie")));
        QVERIFY2(cookie.hasMatch(), issued->header("set-cookie").constData());
        // Only `/` starts a session: health checks and the other routes issue no cookie.
        const auto health = connection.request("GET", "/health");
        QVERIFY(health);
        QCOMPARE(health->status, 200);
        QVERIFY(health->header("set-cookie").isEmpty());
        const QByteArray withCookie =
            "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; demo.sid=" + cookie.captured(1).toLatin1() +
            "\r\n\r\n";
        QVERIFY(connection.send(withCookie));
        const auto known = connection.readResponse();
        QVERIFY(known);
        QCOMPARE(known->status, 200);
        QVERIFY(known->header("set-cookie").isEmpty());
        QCOMPARE(known->json().value(QStringLiteral("session")).toString(),
                 QStringLiteral("known"));

        HttpConnection other;
        QVERIFY(other.connectTo(secondPort));
        QVERIFY(other.send("GET / HTTP/1.1\r\nHost: x\r\nCookie: demo.sid=" +
                           cookie.captured(1).toLatin1() + "\r\n\r\n"));
        const auto unknown = other.readResponse();
        QVERIFY(unknown);
        QCOMPARE(unknown->json().value(QStringLiteral("session")).toString(),
                 QStringLiteral("new"));
        QVERIFY(unknown->header("set-cookie").startsWith("demo.sid="));
        QVERIFY(!unknown->header("set-cookie").contains(cookie.captured(1).toLatin1()));

        HttpConnection none;
        QVERIFY(none.connectTo(plainPort));
        const auto stateless = none.request("GET", "/");
        QVERIFY(stateless);
        QVERIFY(stateless->header("set-cookie").isEmpty());
        QVERIFY(!stateless->json().contains(QStringLiteral("session")));
    }

    void pipelinedResponsesComeInOrder() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        // The slow request goes first: its answer must still come first.
        QVERIFY(connection.send("GET /sleep?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
        const auto slept = connection.readResponse();
        QVERIFY(slept);
        QCOMPARE(slept->json().value(QStringLiteral("sleptMs")).toInt(), 150);
        const auto root = connection.readResponse();
        QVERIFY(root);
        QCOMPARE(root->json().value(QStringLiteral("requests")).toInt(), 2);
        const auto health = connection.readResponse();
        QVERIFY(health);
        QCOMPARE(health->body, QByteArray("ok"));
    }

    void healthCanBeSteered() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        auto response = connection.request("GET", "/health");
        QVERIFY(response);
        QCOMPARE(response->status, 200);
        QCOMPARE(response->body, QByteArray("ok"));
        QCOMPARE(connection.request("GET", "/health/fail")->status, 405);
        QCOMPARE(connection.request("POST", "/health/fail")->status, 200);
        QCOMPARE(connection.request("GET", "/health")->status, 503);
        QCOMPARE(connection.request("POST", "/health/ok")->status, 200);
        QCOMPARE(connection.request("GET", "/health")->status, 200);
    }

    void failHealthFlagAnswers503() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port, {QStringLiteral("--fail-health")}));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        const auto response = connection.request("GET", "/health");
        QVERIFY(response);
        QCOMPARE(response->status, 503);
    }

    void bytesHaveTheRequestedLength() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        const auto response = connection.request("GET", "/bytes?n=100000");
        QVERIFY(response);
        QCOMPARE(response->status, 200);
        QCOMPARE(response->header("content-length"), QByteArray("100000"));
        QCOMPARE(response->body, QByteArray(100000, 'x'));
        QCOMPARE(connection.request("GET", "/bytes?n=0")->body, QByteArray());
        QCOMPARE(connection.request("GET", "/bytes")->status, 400);
        // The connection is still in step after a streamed body.
        QCOMPARE(connection.request("GET", "/")->json().value(QStringLiteral("requests")).toInt(),
                 4);
    }

    void echoesChunkedBodyAndDiscardsOthers() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        QVERIFY(
            connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            "\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"));
        auto response = connection.readResponse();
        QVERIFY(response);
        QCOMPARE(response->status, 200);
        QCOMPARE(response->body, QByteArray("hello world"));
        QCOMPARE(response->header("content-length"), QByteArray("11"));
        // Bodies sent to other paths are read and dropped, keeping keep-alive in step.
        QVERIFY(connection.send("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"
                                "GET /nope"));
        response = connection.readResponse();
        QVERIFY(response);
        QCOMPARE(response->body, QByteArray("ok"));
        QVERIFY(connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"));
        QCOMPARE(connection.readResponse()->body, QByteArray("abcd"));
        QCOMPARE(connection.request("GET", "/")->json().value(QStringLiteral("requests")).toInt(),
                 4);
    }

    void sleepDoesNotBlockOtherConnections() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection sleeper;
        QVERIFY(sleeper.connectTo(port));
        QElapsedTimer timer;
        timer.start();
        QVERIFY(sleeper.send("GET /sleep?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n"));
        HttpConnection other;
        QVERIFY(other.connectTo(port));
        const auto health = other.request("GET", "/health");
        QVERIFY(health);
        QCOMPARE(health->status, 200);
        QVERIFY2(timer.elapsed() < 2000, "another connection waited for /sleep");
        QVERIFY(!sleeper.hasUnreadBytes());
        const auto slept = sleeper.readResponse();
        QVERIFY(slept);
        QCOMPARE(slept->status, 200);
        QVERIFY(timer.elapsed() >= 2000);
    }

    void workBurnsTheRequestedTime() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        QElapsedTimer timer;
        timer.start();
        const auto response = connection.request("GET", "/work?ms=100");
        QVERIFY(response);
        QVERIFY(timer.elapsed() >= 100);
        QCOMPARE(response->json().value(QStringLiteral("pid")).toInteger(), worker.pid());
        QCOMPARE(response->json().value(QStringLiteral("port")).toInt(), int(port));
    }

    void unknownPathIs404AndConnectionCloseIsHonoured() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        QCOMPARE(connection.request("GET", "/no/such/path")->status, 404);
        QVERIFY(connection.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        const auto response = connection.readResponse();
        QVERIFY(response);
        QCOMPARE(response->header("connection"), QByteArray("close"));
        QVERIFY(connection.waitForServerClose());
    }

    void webSocketUpgradeEchoesBytes() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection plain;
        QVERIFY(plain.connectTo(port));
        QCOMPARE(plain.request("GET", "/ws")->status, 426);

        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        const QByteArray key =
            QByteArray("corral-").append(QByteArray::number(worker.pid())).toBase64();
        QVERIFY(connection.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: " +
                                key + "\r\n\r\n"));
        const auto response = connection.readResponse();
        QVERIFY(response);
        QCOMPARE(response->status, 101);
        QCOMPARE(response->header("upgrade").toLower(), QByteArray("websocket"));
        const QByteArray expectedAccept =
            QCryptographicHash::hash(QByteArray(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
                                     QCryptographicHash::Sha1)
                .toBase64();
        QCOMPARE(response->header("sec-websocket-accept"), expectedAccept);

        // Raw bytes, including something that looks like HTTP, come back unchanged.
        QByteArray payload = "GET / HTTP/1.1\r\n\r\n";
        for (int i = 0; i < 256; ++i)
            payload += char(i);
        payload += QByteArray(200000, 'w');
        QVERIFY(connection.send(payload));
        QCOMPARE(connection.readExactly(payload.size()), payload);
    }

    void webSocketAcceptMatchesRfcExample() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        QVERIFY(connection.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                "dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        const auto response = connection.readResponse();
        QVERIFY(response);
        QCOMPARE(response->header("sec-websocket-accept"),
                 QByteArray("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")); // RFC 6455 section 1.3
    }

    void crashExitsWithStatus3() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        QVERIFY(connection.send("GET /crash HTTP/1.1\r\nHost: x\r\n\r\n"));
        QVERIFY(worker.waitForExit());
        QCOMPARE(worker.exitCode(), 3);
    }

    void sigtermExitsCleanly() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port));
        QCOMPARE(::kill(static_cast<pid_t>(worker.pid()), SIGTERM), 0);
        QVERIFY(worker.waitForExit());
        QCOMPARE(worker.exitCode(), 0);
    }

    void ignoreSigtermKeepsServing() {
        Worker worker;
        quint16 port = 0;
        QVERIFY(startServing(worker, port, {QStringLiteral("--ignore-sigterm")}));
        QCOMPARE(::kill(static_cast<pid_t>(worker.pid()), SIGTERM), 0);
        // The signal is discarded when sent, so a request made after it must be served.
        HttpConnection connection;
        QVERIFY(connection.connectTo(port));
        const auto response = connection.request("GET", "/");
        QVERIFY(response);
        QCOMPARE(response->status, 200);
        QVERIFY(worker.running());
        worker.kill();
        QCOMPARE(worker.process().exitStatus(), QProcess::CrashExit);
    }

    void neverListenNeverAccepts() {
        Worker worker;
        const quint16 port = freePort();
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("CORRAL_DEMO_MARK"), QStringLiteral("started"));
        QVERIFY(worker.start(
            portArguments(port, {QStringLiteral("--never-listen"), QStringLiteral("--print-env"),
                                 QStringLiteral("CORRAL_DEMO_MARK")}),
            environment));
        QVERIFY(worker.waitForOutput("CORRAL_DEMO_MARK=started\n"));
        // Past start-up and alive, yet every connection attempt is refused.
        QElapsedTimer timer;
        timer.start();
        while (timer.elapsed() < 500) {
            QTcpSocket probe;
            probe.connectToHost(QHostAddress::LocalHost, port);
            QVERIFY(!probe.waitForConnected(200));
            QVERIFY(!worker.process().waitForFinished(20));
        }
        QVERIFY(worker.running());
        QVERIFY(!worker.output().contains("listening"));
    }

    void portInUseExitsWith1NamingThePort() {
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, 0));
        const QByteArray port = QByteArray::number(holder.serverPort());
        Worker worker;
        QVERIFY(worker.start(portArguments(holder.serverPort())));
        QVERIFY(worker.waitForExit());
        QCOMPARE(worker.exitCode(), 1);
        const QByteArray error = worker.process().readAllStandardError();
        QVERIFY2(error.contains(QByteArray("port " + port)) && error.contains("in use"),
                 error.constData());
    }

    void portComesFromEnvironmentUnlessGiven() {
        const quint16 environmentPort = freePort();
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("PORT"), QString::number(environmentPort));
        {
            Worker worker;
            QVERIFY(worker.startWithEnvironment({}, environment));
            QVERIFY(worker.waitUntilAccepting(environmentPort));
            HttpConnection connection;
            QVERIFY(connection.connectTo(environmentPort));
            QCOMPARE(connection.request("GET", "/")->json().value(QStringLiteral("port")).toInt(),
                     int(environmentPort));
        }
        const quint16 flagPort = freePort();
        Worker worker;
        QVERIFY(worker.startWithEnvironment(portArguments(flagPort), environment));
        QVERIFY(worker.waitUntilAccepting(flagPort));
        HttpConnection connection;
        QVERIFY(connection.connectTo(flagPort));
        QCOMPARE(connection.request("GET", "/")->json().value(QStringLiteral("port")).toInt(),
                 int(flagPort));
    }

    void readyDelayAndExitAfter() {
        Worker worker;
        const quint16 port = freePort();
        QElapsedTimer timer;
        timer.start();
        QVERIFY(worker.start(
            portArguments(port, {QStringLiteral("--ready-delay-ms"), QStringLiteral("300"),
                                 QStringLiteral("--exit-after-ms"), QStringLiteral("1500")})));
        QVERIFY(worker.waitUntilAccepting(port));
        QVERIFY(timer.elapsed() >= 300);
        QVERIFY(worker.waitForExit());
        QCOMPARE(worker.exitCode(), 7);
        QVERIFY(timer.elapsed() >= 1500);
    }

    void spawnedChildSharesTheProcessGroup() {
        Worker worker(/*ownProcessGroup=*/true);
        QVERIFY(worker.start(portArguments(freePort(), {QStringLiteral("--spawn-child")})));
        QVERIFY(worker.waitForOutput("listening on"));
        const auto match = QRegularExpression(QStringLiteral("child pid (\\d+)\n"))
                               .match(QString::fromUtf8(worker.output()));
        QVERIFY(match.hasMatch());
        const pid_t child = match.captured(1).toInt();
        QVERIFY(child > 0);
        QCOMPARE(::getpgid(child), static_cast<pid_t>(worker.pid()));
        worker.kill(); // SIGKILL to the group
        QTRY_VERIFY_WITH_TIMEOUT(!corral::test::isAlive(child), kTimeoutMs);
    }

    void logRateWritesSteadily() {
        Worker worker;
        QElapsedTimer timer;
        timer.start();
        QVERIFY(worker.start(
            portArguments(freePort(), {QStringLiteral("--log-rate"), QStringLiteral("200000")})));
        QVERIFY(worker.waitForOutput("listening on"));
        // About 200 KB/s: 150 KB needs a good part of a second, not an instant burst.
        const qsizetype start = worker.output().size();
        QElapsedTimer window;
        window.start();
        while (worker.output().size() - start < 150000 && window.elapsed() < kTimeoutMs)
            worker.process().waitForReadyRead(500);
        QVERIFY(worker.output().size() - start >= 150000);
        QVERIFY2(window.elapsed() >= 400, "log lines came much faster than --log-rate");
        QVERIFY(worker.output().contains(" log line "));
    }
};

QTEST_GUILESS_MAIN(TestDemoWorker)
#include "tst_demoworker.moc"
