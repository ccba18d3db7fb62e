// The load generator against the real corral-demo-worker (and a small in-test server for the
// response framings the worker never uses), over real sockets on 127.0.0.1.
#include "loadgen/LoadGenerator.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>

#include <functional>
#include <memory>
#include <optional>

using corral::LoadGenerator;
using corral::LoadStats;

#include "helpers/DemoWorker.h"
#include "helpers/TestProcess.h"

using corral::test::freePort;

namespace {

constexpr int kTimeoutMs = 15000;

// The demo worker (the one launcher), and the requests it answered for anyone but this test.
class DemoWorker : public corral::test::DemoWorker {
public:
    DemoWorker()
        : corral::test::DemoWorker(QStringLiteral(DEMO_WORKER_PATH)) {}

    // Requests the worker has answered for anyone else: its counter minus our own queries.
    qint64 requestsFromOthers() {
        QTcpSocket socket;
        socket.connectToHost(QHostAddress::LocalHost, port());
        if (!socket.waitForConnected(kTimeoutMs)) return -1;
        socket.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        QByteArray response;
        while (socket.state() == QAbstractSocket::ConnectedState &&
               socket.waitForReadyRead(kTimeoutMs))
            response += socket.readAll();
        response += socket.readAll();
        ++m_queries;
        const qsizetype bodyStart = response.indexOf("\r\n\r\n");
        if (bodyStart < 0) return -1;
        const QJsonObject json = QJsonDocument::fromJson(response.mid(bodyStart + 4)).object();
        if (!json.contains(QStringLiteral("requests"))) return -1;
        return json.value(QStringLiteral("requests")).toInteger() - m_queries;
    }

private:
    qint64 m_queries = 0;
};

// Answers by path with the framings the demo worker never uses: chunked (with extensions and
// trailers), body delimited by close, and a 503.
class FramingServer : public QObject {
public:
    bool listen() {
        QObject::connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket *socket = m_server.nextPendingConnection()) {
                socket->setParent(this);
                QObject::connect(socket, &QTcpSocket::readyRead, this,
                                 [this, socket] { serve(socket); });
            }
        });
        return m_server.listen(QHostAddress::LocalHost, 0);
    }
    quint16 port() const { return m_server.serverPort(); }
    QMap<QByteArray, int> hits;

private:
    void serve(QTcpSocket *socket) {
        QByteArray &buffer = m_buffers[socket];
        buffer += socket->readAll();
        qsizetype end;
        while ((end = buffer.indexOf("\r\n\r\n")) >= 0) {
            const QByteArray path = buffer.left(buffer.indexOf("\r\n")).split(' ').value(1);
            buffer.remove(0, end + 4);
            ++hits[path];
            if (path == "/chunked") {
                socket->write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n");
            } else if (const char *hostile = hostileResponse(path)) {
                socket->write(hostile);
            } else if (path == "/close") {
                socket->write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
                socket->disconnectFromHost();
                m_buffers.remove(socket);
                return;
            } else {
                socket->write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
            }
        }
    }

    // Responses that two HTTP implementations could frame differently, or not at all: the
    // load generator must count each as failed, never read one as a success.
    static const char *hostileResponse(const QByteArray &path) {
        if (path == "/two-lengths") // which one frames the body?
            return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk";
        if (path == "/not-chunked") // "chunked" inside another coding's name
            return "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        if (path == "/negative-length") return "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
        if (path == "/overflowing-length") // 2^64 + 2 wraps to 2 in 64 bits
            return "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551618\r\n\r\nok";
        if (path == "/bad-chunk-size")
            return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n";
        return nullptr;
    }

    QTcpServer m_server;
    QHash<QTcpSocket *, QByteArray> m_buffers;
};

// Sends GETs for `paths` at 150/s to the FramingServer on `port` until `enough` holds, then
// lets the outstanding responses in (that server answers from the test's thread, which stop()
// blocks) and stops. The final counters, or nullopt on a timeout.
std::optional<LoadStats> runUntil(quint16 port, const QStringList &paths,
                                  const std::function<bool(const LoadStats &)> &enough) {
    LoadGenerator generator;
    generator.setTarget(QStringLiteral("127.0.0.1"), port);
    generator.setPaths(paths);
    generator.setRate(150);
    generator.start();
    if (!QTest::qWaitFor([&] { return enough(generator.stats()); }, kTimeoutMs))
        return std::nullopt;
    generator.setRate(0);
    const bool settled = QTest::qWaitFor(
        [&] {
            const LoadStats stats = generator.stats();
            return stats.ok + stats.failed == stats.sent;
        },
        kTimeoutMs);
    generator.stop();
    if (!settled) return std::nullopt;
    return generator.stats();
}

} // namespace

class TestLoadGenerator : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void honoursTheRate();
    void rateChangesWhileRunning();
    void stopStopsSending();
    void connectionRefusedIsReported();
    void parsesChunkedAndCloseDelimitedResponses();
    void ambiguousResponsesCountAsFailed();
    void destructionWhileRunning();
};

void TestLoadGenerator::honoursTheRate() {
    DemoWorker worker;
    QVERIFY(worker.start());
    LoadGenerator generator;
    generator.setTarget(QStringLiteral("127.0.0.1"), worker.port());
    generator.setRate(200);
    generator.start();
    QVERIFY(generator.isRunning());
    QTest::qWait(2000); // the measuring window
    const LoadStats stats = generator.stats();
    qInfo("200 req/s for 2 s: sent %llu, ok %llu, achieved %.1f/s, p99 %.2f ms", stats.sent,
          stats.ok, stats.achievedPerSecond, stats.p99Ms);
    QVERIFY2(stats.sent >= 300 && stats.sent <= 500, qPrintable(QString::number(stats.sent)));
    QCOMPARE(stats.failed, 0u);
    QVERIFY(stats.achievedPerSecond >= 120 && stats.achievedPerSecond <= 280);
    QVERIFY(stats.p99Ms > 0);
}

void TestLoadGenerator::rateChangesWhileRunning() {
    DemoWorker worker;
    QVERIFY(worker.start());
    LoadGenerator generator;
    generator.setTarget(QStringLiteral("127.0.0.1"), worker.port());
    generator.setPaths({QStringLiteral("/"), QStringLiteral("/work?ms=1")});
    generator.setRate(100);
    generator.start();
    QTRY_VERIFY_WITH_TIMEOUT(generator.stats().ok > 0, kTimeoutMs);

    const auto sentOver = [&generator](int ms) {
        const quint64 before = generator.stats().sent;
        QTest::qWait(ms); // the measuring window
        return generator.stats().sent - before;
    };
    const quint64 slow = sentOver(1000);
    generator.setRate(400);
    QCOMPARE(generator.rate(), 400);
    const quint64 fast = sentOver(1000);
    qInfo("100 req/s: %llu in 1 s; 400 req/s: %llu in 1 s", slow, fast);
    QVERIFY2(slow >= 60 && slow <= 140, qPrintable(QString::number(slow)));
    QVERIFY2(fast >= 250 && fast <= 520, qPrintable(QString::number(fast)));

    // Rate 0 while running: nothing more is sent, and the thread does not need a restart.
    generator.setRate(0);
    QTRY_VERIFY_WITH_TIMEOUT(
        generator.stats().ok + generator.stats().failed == generator.stats().sent, kTimeoutMs);
    QCOMPARE(sentOver(300), 0u);
    QVERIFY(generator.isRunning());
    generator.setRate(200);
    QTRY_VERIFY_WITH_TIMEOUT(sentOver(200) > 0, kTimeoutMs);
    QCOMPARE(generator.stats().failed, 0u);
}

void TestLoadGenerator::stopStopsSending() {
    DemoWorker worker;
    QVERIFY(worker.start());
    QCOMPARE(worker.requestsFromOthers(), 0);
    LoadGenerator generator;
    generator.setTarget(QStringLiteral("127.0.0.1"), worker.port());
    generator.setRate(500);
    generator.setConnections(4);
    generator.start();
    QTRY_VERIFY_WITH_TIMEOUT(generator.stats().ok >= 100, kTimeoutMs);
    generator.stop();
    QVERIFY(!generator.isRunning());

    // Outstanding responses were drained, so the server saw exactly what we counted.
    const LoadStats stats = generator.stats();
    QCOMPARE(stats.ok + stats.failed, stats.sent);
    QCOMPARE(stats.failed, 0u);
    const qint64 served = worker.requestsFromOthers();
    QCOMPARE(served, qint64(stats.ok));
    QTest::qWait(300); // the measuring window: nothing may arrive after stop()
    QCOMPARE(worker.requestsFromOthers(), served);
    QCOMPARE(generator.stats().sent, stats.sent);

    // A second start() begins from zero.
    generator.start();
    QTRY_VERIFY_WITH_TIMEOUT(generator.stats().ok > 0, kTimeoutMs);
    QVERIFY(generator.stats().sent < stats.sent);
}

void TestLoadGenerator::connectionRefusedIsReported() {
    const quint16 port = freePort();
    QVERIFY(port != 0);
    LoadGenerator generator;
    QSignalSpy failures(&generator, &LoadGenerator::failed);
    generator.setTarget(QStringLiteral("127.0.0.1"), port);
    generator.setRate(100);
    generator.start();
    QTRY_VERIFY_WITH_TIMEOUT(generator.stats().failed >= 10, kTimeoutMs);
    QTRY_COMPARE_WITH_TIMEOUT(failures.count(), 1, kTimeoutMs);
    const QString message = failures.first().first().toString();
    qInfo("%s", qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("127.0.0.1:%1").arg(port)), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("refused"), Qt::CaseInsensitive), qPrintable(message));
    QCOMPARE(generator.stats().ok, 0u);

    // Retries back off instead of spinning: at most a few attempts per connection a second.
    const quint64 before = generator.stats().failed;
    QTest::qWait(1000); // the measuring window
    QVERIFY(generator.stats().failed - before <= 8 * 25);
    QCOMPARE(failures.count(), 1); // once per outage, not once per attempt

    generator.stop();
    QCOMPARE(generator.stats().failed, generator.stats().sent);

    // No target at all is reported at once.
    LoadGenerator untargeted;
    QSignalSpy untargetedFailures(&untargeted, &LoadGenerator::failed);
    untargeted.start();
    QCOMPARE(untargetedFailures.count(), 1);
    QVERIFY(!untargeted.isRunning());
}

void TestLoadGenerator::parsesChunkedAndCloseDelimitedResponses() {
    FramingServer server;
    QVERIFY(server.listen());
    const auto stats =
        runUntil(server.port(),
                 {QStringLiteral("/chunked"), QStringLiteral("close"), QStringLiteral("/fail")},
                 [](const LoadStats &s) { return s.ok >= 60; });
    QVERIFY(stats);
    QCOMPARE(stats->ok + stats->failed, stats->sent);
    // Rotation: one in three requests is /fail (503), the others succeed ("close" became
    // "/close").
    QVERIFY(server.hits.value("/chunked") >= 20);
    QVERIFY(server.hits.value("/close") >= 20);
    QVERIFY(server.hits.value("/fail") >= 20);
    QCOMPARE(stats->failed, quint64(server.hits.value("/fail")));
    QCOMPARE(stats->ok, quint64(server.hits.value("/chunked") + server.hits.value("/close")));
}

void TestLoadGenerator::ambiguousResponsesCountAsFailed() {
    FramingServer server;
    QVERIFY(server.listen());
    const QStringList paths = {QStringLiteral("/two-lengths"), QStringLiteral("/not-chunked"),
                               QStringLiteral("/negative-length"),
                               QStringLiteral("/overflowing-length"),
                               QStringLiteral("/bad-chunk-size")};
    const auto stats =
        runUntil(server.port(), paths, [](const LoadStats &s) { return s.failed >= 50; });
    QVERIFY(stats);
    QCOMPARE(stats->ok, 0u);
    QCOMPARE(stats->failed, stats->sent);
    for (const QString &path : paths)
        QVERIFY2(server.hits.value(path.toUtf8()) >= 5, qPrintable(path));
}

void TestLoadGenerator::destructionWhileRunning() {
    DemoWorker worker;
    QVERIFY(worker.start());
    auto generator = std::make_unique<LoadGenerator>();
    generator->setTarget(QStringLiteral("127.0.0.1"), worker.port());
    generator->setPaths({QStringLiteral("/"), QStringLiteral("/work?ms=1")});
    generator->setConnections(16);
    generator->setRate(LoadGenerator::MaxRate);
    generator->start();
    QTRY_VERIFY_WITH_TIMEOUT(generator->stats().sent > 200, kTimeoutMs);
    generator.reset();
    QVERIFY(worker.running());
    QVERIFY(worker.requestsFromOthers() > 200);

    // And while failing, with a failure signal possibly queued.
    auto refused = std::make_unique<LoadGenerator>();
    refused->setTarget(QStringLiteral("127.0.0.1"), freePort());
    refused->setRate(1000);
    refused->start();
    QTRY_VERIFY_WITH_TIMEOUT(refused->stats().failed >= 3, kTimeoutMs);
    refused.reset();
    QCoreApplication::processEvents();
}

QTEST_GUILESS_MAIN(TestLoadGenerator)
#include "tst_loadgenerator.moc"
