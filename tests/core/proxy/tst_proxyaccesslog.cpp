#include "helpers/ProxyTestUtil.h"
#include "helpers/ResultVerify.h"

#include <QElapsedTimer>
#include <QFile>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <fcntl.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

/// One access log line, nginx's combined format plus $upstream_addr $upstream_status
/// $request_time $upstream_response_time, strictly: quoted fields hold no bare `"` or `\`
/// other than \xHH escapes, and nothing below 0x20 or from 0x7f on.
const QRegularExpression &lineFormat() {
    static const QString quoted =
        QStringLiteral(R"re("((?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\x[0-9A-F]{2})*)")re");
    static const QString addresses = QStringLiteral(R"re((-|[0-9.:]+(?:, [0-9.:]+)*))re");
    static const QString statuses = QStringLiteral(R"re((-|\d{3}(?:, \d{3})*))re");
    static const QString times = QStringLiteral(R"re((-|\d+\.\d{3}(?:, \d+\.\d{3})*))re");
    static const QRegularExpression re(
        QStringLiteral("^([0-9a-f.:]+) - - \\[(\\d{2}/[A-Z][a-z]{2}/\\d{4}:\\d{2}:\\d{2}:\\d{2} "
                       "[+-]\\d{4})\\] ") +
        quoted + QStringLiteral(R"re( (\d{3}) (\d+) )re") + quoted + QLatin1Char(' ') + quoted +
        QLatin1Char(' ') + addresses + QLatin1Char(' ') + statuses +
        QStringLiteral(R"re( (\d+\.\d{3}) )re") + times + QLatin1Char('$'));
    return re;
}

struct LogLine {
    QString remote, time, request;
    int status = 0;
    qint64 bodyBytes = 0;
    QString referer, userAgent, upstream, upstreamStatus;
    double requestTime = 0;
    QString upstreamTime;
};

bool parseLine(const QString &text, LogLine &line) {
    const QRegularExpressionMatch m = lineFormat().match(text);
    if (!m.hasMatch()) return false;
    line.remote = m.captured(1);
    line.time = m.captured(2);
    line.request = m.captured(3);
    line.status = m.captured(4).toInt();
    line.bodyBytes = m.captured(5).toLongLong();
    line.referer = m.captured(6);
    line.userAgent = m.captured(7);
    line.upstream = m.captured(8);
    line.upstreamStatus = m.captured(9);
    line.requestTime = m.captured(10).toDouble();
    line.upstreamTime = m.captured(11);
    return true;
}

QStringList readLines(const QString &path) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) return {};
    const QByteArray bytes = file.readAll();
    QStringList lines = QString::fromLatin1(bytes).split(QLatin1Char('\n'));
    if (!lines.isEmpty() && lines.last().isEmpty()) lines.removeLast();
    return lines;
}

} // namespace

// The proxy's access log (ProxyConfig::accessLog): lines, their fields, escaping, flushing,
// rotation and completeness under load.
class TestProxyAccessLog : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;

    QString logPath(const char *name) const { return m_dir.filePath(QLatin1String(name)); }

    static ProxyConfig logging(ProxyConfig config, const QString &path) {
        config.accessLog.path = path;
        return config;
    }

    /// Waits until `path` holds `count` lines (the writer flushes every 100 ms).
    static QStringList waitForLines(const QString &path, int count, int timeoutMs = 3000) {
        QStringList lines;
        waitFor(
            [&] {
                lines = readLines(path);
                return lines.size() >= count;
            },
            timeoutMs);
        return lines;
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_dir.isValid()); }

    void linesParseAndCarryTheirUpstream() {
        TestBackend a, b;
        QVERIFY(a.start() && b.start());
        ProxyEngine engine;
        const QString path = logPath("combined.log");
        QVERIFY_RESULT(engine.start(logging(configFor({&a, &b}), path)));
        HttpClient client(engine.port());
        std::vector<HttpResponse> responses;
        for (int i = 0; i < 6; ++i) {
            client.send("GET /?n=" + std::to_string(i) +
                        " HTTP/1.1\r\nHost: x\r\nReferer: http://example.test/from\r\n"
                        "User-Agent: curl/8.0\r\n"
                        // Repeated: the first is logged.
                        "referer: http://later.test/\r\nUSER-AGENT: later/1\r\n\r\n");
            responses.push_back(client.read());
            QCOMPARE(responses.back().status, 200);
        }
        const QStringList lines = waitForLines(path, 6);
        QCOMPARE(lines.size(), 6);
        QString previous;
        for (int i = 0; i < 6; ++i) {
            LogLine line;
            QVERIFY2(parseLine(lines[i], line), qPrintable(lines[i]));
            QCOMPARE(line.remote, QStringLiteral("127.0.0.1"));
            QCOMPARE(line.request, QStringLiteral("GET /?n=%1 HTTP/1.1").arg(i));
            QCOMPARE(line.status, 200);
            QCOMPARE(line.bodyBytes, qint64(responses[size_t(i)].body.size()));
            QCOMPARE(line.referer, QStringLiteral("http://example.test/from"));
            QCOMPARE(line.userAgent, QStringLiteral("curl/8.0"));
            QCOMPARE(line.upstreamStatus, QStringLiteral("200"));
            // The backend that answered: its port is in the body ("ok PORT").
            const QString body = QString::fromStdString(responses[size_t(i)].body).trimmed();
            QCOMPARE(line.upstream,
                     QStringLiteral("127.0.0.1:") + body.section(QLatin1Char(' '), -1));
            // Round-robin over two: the lines alternate.
            QVERIFY(line.upstream != previous);
            previous = line.upstream;
            QVERIFY2(line.requestTime >= line.upstreamTime.toDouble(), qPrintable(lines[i]));
            QVERIFY(line.requestTime < 5.0);
        }
    }

    void proxyErrorsAreLogged() {
        // No backend at all: 502, upstream fields "-".
        ProxyEngine engine;
        const QString path = logPath("errors.log");
        QVERIFY_RESULT(engine.start(logging(configFor({}), path)));
        HttpClient client(engine.port());
        client.send("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
        const HttpResponse noBackend = client.read();
        QCOMPARE(noBackend.status, 502);
        // A request line the parser refuses: 400, the line as received (escaped).
        HttpClient bad(engine.port());
        bad.send("GET /a\x01\"b HTTP/1.1\r\nHost: x\r\n\r\n");
        QCOMPARE(bad.read().status, 400);
        const QStringList lines = waitForLines(path, 2);
        QCOMPARE(lines.size(), 2);
        LogLine line;
        QVERIFY2(parseLine(lines[0], line), qPrintable(lines[0]));
        QCOMPARE(line.status, 502);
        QCOMPARE(line.request, QStringLiteral("GET /nowhere HTTP/1.1"));
        QVERIFY(!noBackend.body.empty());
        QCOMPARE(line.bodyBytes, qint64(noBackend.body.size())); // the error page's body
        QCOMPARE(line.upstream, QStringLiteral("-"));
        QCOMPARE(line.upstreamStatus, QStringLiteral("-"));
        QCOMPARE(line.upstreamTime, QStringLiteral("-"));
        QVERIFY2(parseLine(lines[1], line), qPrintable(lines[1]));
        QCOMPARE(line.status, 400);
        QCOMPARE(line.request, QStringLiteral(R"(GET /a\x01\x22b HTTP/1.1)"));
        QCOMPARE(line.upstream, QStringLiteral("-"));
    }

    void staticFilesAreLoggedWithoutUpstream() {
        TestBackend a;
        QVERIFY(a.start());
        QTemporaryDir root;
        QVERIFY(root.isValid());
        QFile file(root.filePath(QStringLiteral("app.css")));
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(QByteArray(300, 'c'));
        file.close();
        ProxyEngine engine;
        const QString path = logPath("static.log");
        ProxyConfig config = logging(configFor({&a}), path);
        config.staticFiles.root = root.path();
        QVERIFY_RESULT(engine.start(config));
        HttpClient client(engine.port());
        QCOMPARE(client.get("/app.css").status, 200);
        QCOMPARE(client.get("/").status, 200); // not a file: the backend's
        const QStringList lines = waitForLines(path, 2);
        QVERIFY2(lines.size() == 2, qPrintable(lines.join(QLatin1Char('\n'))));
        LogLine line;
        QVERIFY2(parseLine(lines[0], line), qPrintable(lines[0]));
        QCOMPARE(line.request, QStringLiteral("GET /app.css HTTP/1.1"));
        QCOMPARE(line.status, 200);
        QCOMPARE(line.bodyBytes, qint64(300));
        QCOMPARE(line.upstream, QStringLiteral("-"));
        QCOMPARE(line.upstreamTime, QStringLiteral("-"));
        QVERIFY2(parseLine(lines[1], line), qPrintable(lines[1]));
        QCOMPARE(line.upstream, keyOf(a));
    }

    void retriedRequestListsEveryAttempt() {
        // /close: each backend reads the request and closes without answering; the GET is
        // retried once on the other, then answered 502 (nginx: "a, b" "502, 502").
        TestBackend a, b;
        QVERIFY(a.start() && b.start());
        ProxyEngine engine;
        const QString path = logPath("retried.log");
        QVERIFY_RESULT(engine.start(logging(configFor({&a, &b}), path)));
        HttpClient client(engine.port());
        client.send("GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
        QCOMPARE(client.read().status, 502);
        const QStringList lines = waitForLines(path, 1);
        QCOMPARE(lines.size(), 1);
        LogLine line;
        QVERIFY2(parseLine(lines[0], line), qPrintable(lines[0]));
        QCOMPARE(line.status, 502);
        const QStringList tried = line.upstream.split(QStringLiteral(", "));
        QCOMPARE(tried.size(), 2);
        QCOMPARE(QSet<QString>(tried.begin(), tried.end()), QSet<QString>({keyOf(a), keyOf(b)}));
        QCOMPARE(line.upstreamStatus, QStringLiteral("502, 502"));
        QCOMPARE(line.upstreamTime.split(QStringLiteral(", ")).size(), 2);
    }

    void refusedBackendIsListedBeforeTheOneThatAnswered() {
        TestBackend a, b;
        QVERIFY(a.start() && b.start());
        ProxyEngine engine;
        const QString path = logPath("refused.log");
        QVERIFY_RESULT(engine.start(logging(configFor({&a, &b}), path)));
        a.stop(); // refuses connections from now on
        HttpClient client(engine.port());
        QCOMPARE(client.get("/").status, 200);
        const QStringList lines = waitForLines(path, 1);
        QCOMPARE(lines.size(), 1);
        LogLine line;
        QVERIFY2(parseLine(lines[0], line), qPrintable(lines[0]));
        QCOMPARE(line.upstream, keyOf(a) + QStringLiteral(", ") + keyOf(b));
        QCOMPARE(line.upstreamStatus, QStringLiteral("502, 200"));
    }

    void hostileValuesAreEscaped() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        const QString path = logPath("hostile.log");
        QVERIFY_RESULT(engine.start(logging(configFor({&a}), path)));
        HttpClient client(engine.port());
        // A User-Agent that would close its field and forge the rest of a line, a Referer with
        // a backslash and bytes above 0x7f. A header value cannot hold a line feed or another
        // control but HTAB (the parser refuses them), so the forged line rides in the request
        // line of a second request: the parser answers 400 and the log shows it escaped.
        client.send("GET /?x=%0a HTTP/1.1\r\nHost: x\r\n"
                    "User-Agent: evil\" 200 0 \"-\" \"-\" - - 0.000 -\t\xff\r\n"
                    "Referer: a\\b\xc3\xa9\r\n\r\n");
        QCOMPARE(client.read().status, 200);
        HttpClient forged(engine.port());
        forged.send(
            "GET /\x01\x0b\" 200 0 \"-\" \"-\" - - 0.000 -\r127.0.0.1 - - HTTP/1.1\r\nHost: "
            "x\r\n\r\n");
        forged.read();
        const QStringList lines = waitForLines(path, 2);
        QCOMPARE(lines.size(), 2); // one line per request, whatever they held
        LogLine line;
        QVERIFY2(parseLine(lines[0], line), qPrintable(lines[0]));
        QCOMPARE(line.userAgent,
                 QStringLiteral(R"(evil\x22 200 0 \x22-\x22 \x22-\x22 - - 0.000 -\x09\xFF)"));
        QCOMPARE(line.referer, QStringLiteral(R"(a\x5Cb\xC3\xA9)"));
        QCOMPARE(line.request, QStringLiteral("GET /?x=%0a HTTP/1.1"));
        QVERIFY2(parseLine(lines[1], line), qPrintable(lines[1]));
        QCOMPARE(line.status, 400);
        QVERIFY2(line.request.startsWith(QStringLiteral(R"(GET /\x01\x0B\x22 200 0 \x22-\x22)")),
                 qPrintable(line.request));
    }

    void idleProxyFlushesWithinASecond() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        const QString path = logPath("idle.log");
        QVERIFY_RESULT(engine.start(logging(configFor({&a}), path)));
        HttpClient client(engine.port());
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        QCOMPARE(client.read().status, 200);
        QElapsedTimer sinceAnswer;
        sinceAnswer.start();
        // The connection stays open and idle: nothing else wakes the loop.
        QCOMPARE(waitForLines(path, 1, 1000).size(), 1);
        QVERIFY2(sinceAnswer.elapsed() < 1000, qPrintable(QString::number(sinceAnswer.elapsed())));
    }

    void fileIsRotated() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        const QString path = logPath("rotated.log");
        ProxyConfig config = logging(configFor({&a}), path);
        config.accessLog.maxBytes = 2048;
        config.accessLog.keep = 2;
        QVERIFY_RESULT(engine.start(config));
        HttpClient client(engine.port());
        const int requests = 40; // about 150 bytes a line: past 2 KiB twice
        for (int i = 0; i < requests; ++i) {
            client.send("GET /?r=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
            QCOMPARE(client.read().status, 200);
            // Spread over several flushes, so the log rotates between them.
            if (i % 10 == 9)
                QVERIFY(
                    waitFor([&] { return engine.snapshot().accessLogLines >= uint64_t(i + 1); }));
        }
        QVERIFY(waitFor([&] { return engine.snapshot().accessLogLines == requests; }));
        QVERIFY(QFile::exists(path + QStringLiteral(".1")));
        QVERIFY(!QFile::exists(path + QStringLiteral(".3"))); // keep = 2
        QVERIFY(QFileInfo(path).size() <= 2048);
        // The newest lines are in PATH, the ones before in PATH.1; each parses.
        const QStringList current = readLines(path);
        const QStringList previous = readLines(path + QStringLiteral(".1"));
        QVERIFY(!current.isEmpty() && !previous.isEmpty());
        LogLine line;
        for (const QString &text : previous + current)
            QVERIFY2(parseLine(text, line), qPrintable(text));
        QCOMPARE(line.request, QStringLiteral("GET /?r=%1 HTTP/1.1").arg(requests - 1));
    }

    void noLineIsLostUnderLoad() {
        TestBackend a, b;
        QVERIFY(a.start() && b.start());
        ProxyEngine engine;
        const QString path = logPath("load.log");
        QVERIFY_RESULT(
            engine.start(logging(configFor({&a, &b}, BalancingPolicy::RoundRobin, 2), path)));
        {
            LoadGenerator load(engine.port(), 64);
            QVERIFY(waitFor([&] { return load.ok() >= 10000; }, 20000));
            load.stop();
            QCOMPARE(load.failed(), 0);
        }
        const ProxyStats stats = engine.snapshot();
        uint64_t answered = 0;
        for (const BackendStats &s : stats.backends)
            answered += s.responses[0];
        engine.stop(); // writes whatever is still buffered
        const QStringList lines = readLines(path);
        QCOMPARE(uint64_t(lines.size()), answered);
        QCOMPARE(engine.snapshot().accessLogDropped, uint64_t(0));
        QCOMPARE(engine.snapshot().accessLogLines, answered);
        LogLine line;
        for (const QString &text : lines)
            QVERIFY2(parseLine(text, line) && line.status == 200, qPrintable(text));
    }

    void standardOutput() {
        // "-": the lines go to file descriptor 1; here a pipe stands in for the terminal.
        TestBackend a;
        QVERIFY(a.start());
        int pipeFds[2];
        QCOMPARE(::pipe2(pipeFds, O_CLOEXEC), 0);
        fflush(stdout);
        const int savedStdout = ::dup(STDOUT_FILENO);
        ::dup2(pipeFds[1], STDOUT_FILENO);
        {
            ProxyEngine engine;
            const auto started = engine.start(logging(configFor({&a}), QStringLiteral("-")));
            if (started) {
                HttpClient client(engine.port());
                client.send("GET /stdout HTTP/1.1\r\nHost: x\r\n\r\n");
                client.read();
            }
            engine.stop();
            ::dup2(savedStdout, STDOUT_FILENO);
            ::close(savedStdout);
            QVERIFY_RESULT(started);
        }
        ::close(pipeFds[1]);
        QByteArray out;
        char buffer[4096];
        ssize_t n;
        while ((n = ::read(pipeFds[0], buffer, sizeof buffer)) > 0)
            out.append(buffer, n);
        ::close(pipeFds[0]);
        const QStringList lines =
            QString::fromLatin1(out).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 1);
        LogLine line;
        QVERIFY2(parseLine(lines[0], line), qPrintable(lines[0]));
        QCOMPARE(line.request, QStringLiteral("GET /stdout HTTP/1.1"));
    }

    void stalledWriterDropsLinesNotRequests() {
        // Standard output is a pipe nobody reads: the writer thread waits on it, the loops'
        // buffers fill, and then lines are dropped and counted while every request is still
        // answered at once (the loops never wait for the log).
        TestBackend a;
        QVERIFY(a.start());
        int pipeFds[2];
        QCOMPARE(::pipe2(pipeFds, O_CLOEXEC), 0);
        fflush(stdout);
        const int savedStdout = ::dup(STDOUT_FILENO);
        ::dup2(pipeFds[1], STDOUT_FILENO);
        ::close(pipeFds[1]);
        ProxyEngine engine;
        const auto started = engine.start(logging(configFor({&a}), QStringLiteral("-")));
        int answered = 0;
        const int requests = 1500; // about 4 KiB a line: past the 4 MiB a loop may hand over
        const std::string target = "/" + std::string(4000, 'p');
        if (started) {
            HttpClient client(engine.port());
            for (int i = 0; i < requests; ++i) {
                client.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
                if (client.read().status == 200) ++answered;
            }
        }
        const ProxyStats stats = engine.snapshot();
        // Nobody ever reads: stop() gives up on standard output after a grace period rather
        // than hang (a pager that was stopped, a terminal on hold).
        QElapsedTimer stopping;
        stopping.start();
        engine.stop();
        const qint64 stopMs = stopping.elapsed();
        ::dup2(savedStdout, STDOUT_FILENO);
        ::close(savedStdout);
        ::close(pipeFds[0]);
        QVERIFY_RESULT(started);
        QCOMPARE(answered, requests);
        QVERIFY2(stats.accessLogDropped > 0, "no line was dropped: the buffers did not fill");
        QVERIFY2(stopMs < 3000, qPrintable(QString::number(stopMs)));
        QCOMPARE(engine.snapshot().accessLogDropped + engine.snapshot().accessLogLines,
                 uint64_t(requests));
    }

    void unwritablePathIsAnError() {
        ProxyEngine engine;
        const auto started = engine.start(
            logging(configFor({}), m_dir.filePath(QStringLiteral("no/such/dir/x.log"))));
        QVERIFY(!started);
        QVERIFY2(started.error().contains(QStringLiteral("no/such/dir/x.log")),
                 qPrintable(started.error()));
        QVERIFY(!engine.start(logging(configFor({}), QStringLiteral("relative.log"))));
    }
};

QTEST_GUILESS_MAIN(TestProxyAccessLog)
#include "tst_proxyaccesslog.moc"
