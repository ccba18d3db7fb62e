#include "helpers/ProxyTestUtil.h"
#include "helpers/ResultVerify.h"
#include "proxy/AdminClient.h"
#include "proxy/AdminServer.h"
#include "proxy/PrometheusMetrics.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

/// A strict reader of Prometheus' text exposition format (0.0.4), for /metrics: every line a
/// `# HELP`/`# TYPE` comment or a sample `name{labels} value`; names and label names valid;
/// one HELP and one TYPE per family, the TYPE before its samples; a family's samples
/// together; label values escaped; histogram buckets cumulative, `le` increasing, ending at
/// +Inf equal to _count, with a _sum. Returns the samples ("name{labels}" -> value) or, in
/// `error`, the first violation with its line.
QMap<QString, double> parseExposition(const QByteArray &text, QString &error) {
    QMap<QString, double> samples;
    static const QRegularExpression help(
        QStringLiteral("^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$"));
    static const QRegularExpression type(QStringLiteral(
        "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$"));
    static const QRegularExpression sample(QStringLiteral(
        "^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\["
        "\\\\\"n])*\")(?:,[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\")*)?\\})? "
        "([-+]?(?:[0-9]+(?:\\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|Inf)|NaN)$"));
    static const QRegularExpression label(
        QStringLiteral("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\""));
    if (!text.endsWith('\n')) {
        error = QStringLiteral("does not end with a line feed");
        return {};
    }
    QMap<QString, QString> types;
    QSet<QString> helped, finished;
    QString current; // the family whose samples come now
    struct Histogram {
        double lastLe = -1;
        double lastCount = -1;
        bool sawInf = false;
        double infCount = -1;
    };
    QMap<QString, Histogram> histograms; // by family + labels without le
    QMap<QString, double> counts, sums;
    const QList<QByteArray> lines = text.chopped(1).split('\n');
    for (qsizetype n = 0; n < lines.size(); ++n) {
        const QString line = QString::fromUtf8(lines[n]);
        const auto bad = [&](const QString &why) {
            error = QStringLiteral("line %1: %2: %3").arg(n + 1).arg(why, line);
        };
        const auto startFamily = [&](const QString &family) {
            if (family == current) return true;
            if (finished.contains(family)) return false;
            if (!current.isEmpty()) finished.insert(current);
            current = family;
            return true;
        };
        if (line.startsWith(QLatin1Char('#'))) {
            QRegularExpressionMatch m = help.match(line);
            if (m.hasMatch()) {
                if (helped.contains(m.captured(1)) || !startFamily(m.captured(1)))
                    return bad(QStringLiteral("second HELP")), QMap<QString, double>();
                helped.insert(m.captured(1));
                continue;
            }
            m = type.match(line);
            if (!m.hasMatch())
                return bad(QStringLiteral("neither HELP nor TYPE")), QMap<QString, double>();
            const QString family = m.captured(1);
            if (types.contains(family) || !startFamily(family))
                return bad(QStringLiteral("second TYPE")), QMap<QString, double>();
            if (samples.keys().contains(family))
                return bad(QStringLiteral("TYPE after samples")), QMap<QString, double>();
            types.insert(family, m.captured(2));
            if (m.captured(2) == QLatin1String("counter") &&
                !family.endsWith(QLatin1String("_total")))
                return bad(QStringLiteral("a counter not named _total")), QMap<QString, double>();
            continue;
        }
        const QRegularExpressionMatch m = sample.match(line);
        if (!m.hasMatch()) return bad(QStringLiteral("not a sample")), QMap<QString, double>();
        const QString name = m.captured(1);
        QString family = name;
        QString suffix;
        for (const char *s : {"_bucket", "_sum", "_count"})
            if (name.endsWith(QLatin1String(s)) &&
                types.value(name.chopped(qsizetype(strlen(s)))) == QLatin1String("histogram")) {
                family = name.chopped(qsizetype(strlen(s)));
                suffix = QLatin1String(s);
            }
        if (!types.contains(family))
            return bad(QStringLiteral("sample before its TYPE")), QMap<QString, double>();
        if (!startFamily(family))
            return bad(QStringLiteral("family not contiguous")), QMap<QString, double>();
        if (types[family] == QLatin1String("histogram") && suffix.isEmpty())
            return bad(QStringLiteral("histogram sample without a suffix")),
                   QMap<QString, double>();
        const double value =
            m.captured(3) == QLatin1String("+Inf") ? qInf() : m.captured(3).toDouble();
        QStringList otherLabels;
        QString le;
        auto it = label.globalMatch(m.captured(2));
        while (it.hasNext()) {
            const QRegularExpressionMatch l = it.next();
            if (l.captured(1) == QLatin1String("le"))
                le = l.captured(2);
            else
                otherLabels << l.captured(0);
        }
        const QString key = name + QLatin1Char('{') + m.captured(2) + QLatin1Char('}');
        if (samples.contains(key))
            return bad(QStringLiteral("sample twice")), QMap<QString, double>();
        samples.insert(key, value);
        const QString series =
            family + QLatin1Char('{') + otherLabels.join(QLatin1Char(',')) + QLatin1Char('}');
        if (suffix == QLatin1String("_bucket")) {
            Histogram &h = histograms[series];
            if (le.isEmpty() || h.sawInf)
                return bad(QStringLiteral("bucket without le, or after +Inf")),
                       QMap<QString, double>();
            const double bound = le == QLatin1String("+Inf") ? qInf() : le.toDouble();
            if (bound <= h.lastLe || value < h.lastCount)
                return bad(QStringLiteral("buckets not increasing or not cumulative")),
                       QMap<QString, double>();
            h.lastLe = bound;
            h.lastCount = value;
            if (qIsInf(bound)) {
                h.sawInf = true;
                h.infCount = value;
            }
        } else if (suffix == QLatin1String("_count")) {
            counts.insert(series, value);
        } else if (suffix == QLatin1String("_sum")) {
            sums.insert(series, value);
        }
    }
    for (auto it = histograms.cbegin(); it != histograms.cend(); ++it) {
        if (!it->sawInf)
            error = it.key() + QStringLiteral(": no +Inf bucket");
        else if (!counts.contains(it.key()) || counts[it.key()] != it->infCount)
            error = it.key() + QStringLiteral(": _count is not the +Inf bucket");
        else if (!sums.contains(it.key()))
            error = it.key() + QStringLiteral(": no _sum");
        if (!error.isEmpty()) return {};
    }
    for (auto it = types.cbegin(); it != types.cend(); ++it)
        if (!helped.contains(it.key())) {
            error = it.key() + QStringLiteral(": no HELP");
            return {};
        }
    return samples;
}

} // namespace

// The admin HTTP API and `corralctl proxy`.
class TestProxyAdmin : public QObject {
    Q_OBJECT

    QTemporaryDir m_runtime;

    static QJsonObject call(const ProxyEngine &engine, const QByteArray &method,
                            const std::string &path, const std::string &body, int &status) {
        const auto response =
            AdminClient(engine.adminEndpoint())
                .call(method, QString::fromStdString(path), QByteArray::fromStdString(body));
        status = response ? response->status : 0;
        if (!response) qWarning("%s", qPrintable(response.error()));
        return response ? response->json() : QJsonObject();
    }

    /// A raw request to a TCP admin API, with `headers` as given (CRLF-terminated lines).
    static HttpResponse raw(const ProxyEngine &engine, const std::string &method,
                            const std::string &headers, const std::string &body = {}) {
        HttpClient client(engine.adminPort());
        client.send(method + " /backends HTTP/1.1\r\n" + headers +
                    "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body);
        return client.read();
    }

    static std::string tokenOf(const ProxyEngine &engine) {
        QFile file(engine.adminEndpoint().tokenFile);
        if (!file.open(QIODevice::ReadOnly)) return {};
        return file.readAll().trimmed().toStdString();
    }

    static uint16_t freePort() {
        TestBackend probe;
        probe.start();
        const uint16_t port = probe.port();
        probe.stop();
        return port;
    }

    static ProxyConfig withAdmin(ProxyConfig config, const QString &where = {}) {
        config.adminEnabled = true;
        config.adminListen = where;
        return config;
    }

private Q_SLOTS:
    void initTestCase() {
        // A private runtime directory, as a login session's XDG_RUNTIME_DIR is.
        QVERIFY(m_runtime.isValid());
        qputenv("XDG_RUNTIME_DIR", m_runtime.path().toLocal8Bit());
    }

    void adminApi_data() {
        QTest::addColumn<QString>("where");
        QTest::newRow("default unix socket") << QString();
        QTest::newRow("loopback tcp with token") << QStringLiteral("127.0.0.1:0");
    }

    void adminApi() {
        QFETCH(QString, where);
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), where)));
        HttpClient client(engine.port());
        QCOMPARE(client.get("/").status, 200);

        int status = 0;
        QJsonObject stats = call(engine, "GET", "/stats", "", status);
        QCOMPARE(status, 200);
        QCOMPARE(stats[QStringLiteral("policy")].toString(), QStringLiteral("round-robin"));
        QJsonObject first = stats[QStringLiteral("backends")].toArray()[0].toObject();
        QCOMPARE(first[QStringLiteral("key")].toString(), keyOf(a));
        QCOMPARE(first[QStringLiteral("state")].toString(), QStringLiteral("up"));
        QCOMPARE(first[QStringLiteral("requests")].toInt(), 1);
        QCOMPARE(first[QStringLiteral("responses")].toObject()[QStringLiteral("2xx")].toInt(), 1);
        QVERIFY(first[QStringLiteral("latencyMs")].toObject().contains(QStringLiteral("p99")));

        const std::string add =
            R"({"address":"127.0.0.1","port":)" + std::to_string(b.port()) + R"(,"weight":2})";
        call(engine, "POST", "/backends", add, status);
        QCOMPARE(status, 200);
        QJsonObject list = call(engine, "GET", "/backends", "", status);
        QCOMPARE(list[QStringLiteral("backends")].toArray().size(), 2);
        QCOMPARE(list[QStringLiteral("backends")]
                     .toArray()[1]
                     .toObject()[QStringLiteral("weight")]
                     .toInt(),
                 2);

        call(engine, "POST", "/backends/" + a.key() + "/drain", "", status);
        QCOMPARE(status, 200);
        stats = call(engine, "GET", "/stats", "", status);
        first = stats[QStringLiteral("backends")].toArray()[0].toObject();
        QCOMPARE(first[QStringLiteral("state")].toString(), QStringLiteral("draining"));
        call(engine, "POST", "/backends/" + a.key() + "/enable", "", status);
        QCOMPARE(status, 200);
        call(engine, "DELETE", "/backends/" + b.key(), "", status);
        QCOMPARE(status, 200);
        call(engine, "DELETE", "/backends/" + b.key(), "", status);
        QCOMPARE(status, 404);
        call(engine, "POST", "/backends", "127.0.0.1:" + std::to_string(b.port()) + ";backup",
             status);
        QCOMPARE(status, 200);
        QVERIFY(engine.backends().last().backup);
        call(engine, "POST", "/backends", "{\"address\":1}", status);
        QCOMPARE(status, 400);
        call(engine, "GET", "/nope", "", status);
        QCOMPARE(status, 404);
    }

    void defaultIsAPrivateUnixSocket() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}))));
        const AdminEndpoint admin = engine.adminEndpoint();
        QVERIFY(admin.isUnix());
        QCOMPARE(engine.adminPort(), quint16(0));
        QCOMPARE(QFileInfo(admin.socketPath).absolutePath(),
                 m_runtime.path() + QStringLiteral("/corral"));
        struct stat st {};
        QCOMPARE(::stat(qPrintable(admin.socketPath), &st), 0);
        QVERIFY(S_ISSOCK(st.st_mode));
        QCOMPARE(st.st_mode & 0777, 0600u);
        QCOMPARE(::stat(qPrintable(m_runtime.path() + QStringLiteral("/corral")), &st), 0);
        QCOMPARE(st.st_mode & 0777, 0700u);
        engine.stop();
        QVERIFY2(!QFileInfo::exists(admin.socketPath), "the socket file outlived the engine");
    }

    void runtimeDirectoryOfAnotherModeIsRefused() {
        // A directory others can enter could have been prepared by them: refuse it.
        QTemporaryDir runtime;
        QVERIFY(QDir(runtime.path()).mkdir(QStringLiteral("corral")));
        ::chmod(qPrintable(runtime.filePath(QStringLiteral("corral"))), 0755);
        qputenv("XDG_RUNTIME_DIR", runtime.path().toLocal8Bit());
        const auto directory = adminRuntimeDirectory();
        qputenv("XDG_RUNTIME_DIR", m_runtime.path().toLocal8Bit());
        QVERIFY(!directory.ok());
        QVERIFY2(directory.error().contains(QStringLiteral("0700")), qPrintable(directory.error()));
    }

    void unixSocketPathCanBeChosen() {
        TestBackend a;
        QVERIFY(a.start());
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("admin.sock"));
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), QStringLiteral("unix:") + path)));
        QCOMPARE(engine.adminEndpoint().socketPath, path);
        int status = 0;
        call(engine, "GET", "/stats", "", status);
        QCOMPARE(status, 200);
        // A second engine cannot take a live socket over.
        ProxyEngine second;
        const auto taken = second.start(withAdmin(configFor({&a}), QStringLiteral("unix:") + path));
        QVERIFY(!taken.ok());
        QVERIFY2(taken.error().contains(path), qPrintable(taken.error()));
    }

    void unixPeerOfAnotherUserIsRefused() {
        if (::geteuid() != 0) QSKIP("needs root to connect as another user");
        TestBackend a;
        QVERIFY(a.start());
        // Open the file permissions on purpose: SO_PEERCRED is the check left.
        QTemporaryDir dir;
        ::chmod(qPrintable(dir.path()), 0755);
        const QString path = dir.filePath(QStringLiteral("admin.sock"));
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), QStringLiteral("unix:") + path)));
        ::chmod(qPrintable(path), 0666);
        const QByteArray local = path.toLocal8Bit();
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, local.constData(), size_t(local.size()));
        int pipeFds[2];
        QCOMPARE(::pipe(pipeFds), 0);
        // Only async-signal-safe calls in the child: this process has threads.
        const pid_t child = ::fork();
        if (child == 0) {
            ::close(pipeFds[0]);
            char answer[16] = "none";
            if (::setuid(65534) == 0) {
                const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
                // The refusal comes at once, before any request (and sending one could
                // meet a closed socket).
                if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0) {
                    const ssize_t n = ::read(fd, answer, 12);
                    answer[n > 0 ? n : 0] = 0;
                }
            }
            [[maybe_unused]] const ssize_t n = ::write(pipeFds[1], answer, sizeof answer);
            ::_exit(0);
        }
        ::close(pipeFds[1]);
        char answer[16] = {};
        const ssize_t n = ::read(pipeFds[0], answer, sizeof answer);
        ::close(pipeFds[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        QVERIFY(n > 0);
        QCOMPARE(QByteArray(answer), QByteArray("HTTP/1.1 403"));
    }

    void tcpNeedsTheToken() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), QStringLiteral("127.0.0.1:0"))));
        const AdminEndpoint admin = engine.adminEndpoint();
        QVERIFY(admin.port != 0);
        struct stat st {};
        QCOMPARE(::stat(qPrintable(admin.tokenFile), &st), 0);
        QCOMPARE(st.st_mode & 0777, 0600u);
        const std::string token = tokenOf(engine);
        QCOMPARE(token.size(), size_t(64));
        const std::string host = "Host: 127.0.0.1:" + std::to_string(admin.port) + "\r\n";
        HttpResponse r = raw(engine, "GET", host);
        QCOMPARE(r.status, 401);
        QCOMPARE(r.header("content-type"), std::string("application/json"));
        r = raw(engine, "GET", host + "Authorization: Bearer " + std::string(64, '0') + "\r\n");
        QCOMPARE(r.status, 401);
        r = raw(engine, "GET", host + "Authorization: Basic " + token + "\r\n");
        QCOMPARE(r.status, 401);
        r = raw(engine, "GET", host + "Authorization: Bearer " + token + "\r\n");
        QCOMPARE(r.status, 200);
        r = raw(engine, "GET",
                "Host: localhost:" + std::to_string(admin.port) + "\r\nAuthorization: Bearer " +
                    token + "\r\n");
        QCOMPARE(r.status, 200);
        // DNS rebinding: the right token cannot help a foreign Host or an Origin.
        r = raw(engine, "GET", "Host: evil.example\r\nAuthorization: Bearer " + token + "\r\n");
        QCOMPARE(r.status, 403);
        r = raw(engine, "GET",
                host + "Origin: http://127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n");
        QCOMPARE(r.status, 403);
        engine.stop();
        QVERIFY2(!QFileInfo::exists(admin.tokenFile), "the token file outlived the engine");
    }

    void crossSiteSimpleRequestIsRefused() {
        // What any web page can send without a CORS preflight: a text/plain POST. With DNS
        // rebinding the page's own host name points at 127.0.0.1, so Host is the attacker's.
        TestBackend a, evil;
        QVERIFY(a.start());
        QVERIFY(evil.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), QStringLiteral("127.0.0.1:0"))));
        const std::string body = "127.0.0.1:" + std::to_string(evil.port());
        for (const std::string &headers :
             {std::string("Host: evil.example\r\nOrigin: http://evil.example\r\n"),
              std::string("Host: evil.example\r\n"),
              "Host: 127.0.0.1:" + std::to_string(engine.adminPort()) +
                  "\r\nOrigin: http://evil.example\r\n"}) {
            const HttpResponse r = raw(engine, "POST", headers, body);
            QVERIFY2(r.status == 403 || r.status == 401, r.head.c_str());
            QCOMPARE(r.header("content-type"), std::string("application/json"));
        }
        QCOMPARE(engine.backends().size(), 1);
        HttpClient client(engine.port());
        for (int i = 0; i < 6; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(evil.requests(), 0);
    }

    void requestHeadIsParsedStrictly() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}))));
        AdminClient client(engine.adminEndpoint());
        const auto send = [&](const QByteArray &request) {
            const auto r = client.sendRaw(request);
            return r ? r->status : 0;
        };
        // Two Content-Lengths, a bare LF, chunked bodies: refused, nothing added.
        QCOMPARE(send("POST /backends HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                      "Content-Length: 14\r\n\r\n127.0.0.1:9999"),
                 400);
        QCOMPARE(send("GET /stats HTTP/1.1\nHost: x\r\n\r\n"), 400);
        QCOMPARE(send("POST /backends HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "e\r\n127.0.0.1:9999\r\n0\r\n\r\n"),
                 411);
        QCOMPARE(send("POST /backends HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"),
                 413);
        QCOMPARE(engine.backends().size(), 1);
    }

    void slowAdminClientDoesNotBlockOthers() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), QStringLiteral("127.0.0.1:0"))));
        // Several clients that send half a request head and stall.
        std::vector<std::unique_ptr<HttpClient>> stalled;
        for (int i = 0; i < 4; ++i) {
            stalled.push_back(std::make_unique<HttpClient>(engine.adminPort()));
            QVERIFY(stalled.back()->send("GET /stats HTTP/1.1\r\nHo"));
        }
        QElapsedTimer timer;
        timer.start();
        int status = 0;
        call(engine, "GET", "/stats", "", status);
        QCOMPARE(status, 200);
        QVERIFY2(timer.elapsed() < 500, qPrintable(QString::number(timer.elapsed())));
        // The stalled ones are cut at their deadline, not kept forever.
        QVERIFY(stalled.front()->waitClosed());
    }

    void adminConnectionsAreBounded() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a}), QStringLiteral("127.0.0.1:0"))));
        std::vector<std::unique_ptr<HttpClient>> stalled;
        for (int i = 0; i < AdminServer::MaxConnections; ++i) {
            stalled.push_back(std::make_unique<HttpClient>(engine.adminPort()));
            QVERIFY(stalled.back()->send("G"));
        }
        // Past the bound: a quick 503, not a hang.
        HttpClient extra(engine.adminPort(), 1000);
        extra.send("GET /stats HTTP/1.1\r\n\r\n");
        QCOMPARE(extra.read().status, 503);
    }

    void adminRefusesNonLoopback() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        const auto started = engine.start(withAdmin(configFor({&a}), QStringLiteral("0.0.0.0:0")));
        QVERIFY(!started.ok());
        QVERIFY2(started.error().contains(QStringLiteral("loopback")), qPrintable(started.error()));
    }

    void corralctlProxyAdminOnUnixSocketByDefault() {
        TestBackend a;
        QVERIFY(a.start());
        const uint16_t port = freePort();
        QProcess process;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("XDG_RUNTIME_DIR"), m_runtime.path());
        process.setProcessEnvironment(env);
        process.start(QStringLiteral(CORRALCTL_PATH),
                      {QStringLiteral("proxy"), QStringLiteral("--listen"),
                       QStringLiteral("127.0.0.1:%1").arg(port), QStringLiteral("--backends"),
                       keyOf(a), QStringLiteral("--threads"), QStringLiteral("1"),
                       QStringLiteral("--admin")});
        QVERIFY(process.waitForStarted());
        QByteArray output;
        QTRY_VERIFY_WITH_TIMEOUT((output += process.readAllStandardOutput()).contains("admin API"),
                                 10000);
        const QString socket =
            m_runtime.path() + QStringLiteral("/corral/proxy-%1.sock").arg(process.processId());
        QVERIFY2(output.contains(QByteArray("admin API on unix:" + socket.toLocal8Bit())),
                 output.constData());
        AdminEndpoint endpoint;
        endpoint.socketPath = socket;
        const auto stats = AdminClient(endpoint).call("GET", QStringLiteral("/stats"));
        QVERIFY_RESULT(stats);
        QCOMPARE(stats->status, 200);
        ::kill(pid_t(process.processId()), SIGTERM);
        QVERIFY(process.waitForFinished(10000));
        QCOMPARE(process.exitCode(), 0);
        QVERIFY(!QFileInfo::exists(socket));
    }

    void corralctlProxyTcpAdminLogsTheTokenFileNotTheToken() {
        TestBackend a;
        QVERIFY(a.start());
        const uint16_t port = freePort();
        const uint16_t adminPort = freePort();
        QProcess process;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("XDG_RUNTIME_DIR"), m_runtime.path());
        process.setProcessEnvironment(env);
        process.start(QStringLiteral(CORRALCTL_PATH),
                      {QStringLiteral("proxy"), QStringLiteral("--listen"),
                       QStringLiteral("127.0.0.1:%1").arg(port), QStringLiteral("--backends"),
                       keyOf(a), QStringLiteral("--admin"),
                       QStringLiteral("127.0.0.1:%1").arg(adminPort)});
        QVERIFY(process.waitForStarted());
        QByteArray output;
        QTRY_VERIFY_WITH_TIMEOUT((output += process.readAllStandardOutput()).contains("admin API"),
                                 10000);
        const QString tokenFile =
            m_runtime.path() + QStringLiteral("/corral/admin-%1.token").arg(adminPort);
        QVERIFY2(output.contains(tokenFile.toLocal8Bit()), output.constData());
        QFile file(tokenFile);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray token = file.readAll().trimmed();
        QVERIFY(!output.contains(token));
        AdminEndpoint endpoint;
        endpoint.host = QStringLiteral("127.0.0.1");
        endpoint.port = adminPort;
        endpoint.tokenFile = tokenFile;
        const auto stats = AdminClient(endpoint).call("GET", QStringLiteral("/stats"));
        QVERIFY_RESULT(stats);
        QCOMPARE(stats->status, 200);
        ::kill(pid_t(process.processId()), SIGTERM);
        QVERIFY(process.waitForFinished(10000));
        QVERIFY(!QByteArray(output + process.readAll()).contains(token));
    }

    void corralctlProxyRunsAndDrainsOnSigterm() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        const uint16_t port = freePort();
        QProcess process;
        process.start(QStringLiteral(CORRALCTL_PATH),
                      {QStringLiteral("proxy"), QStringLiteral("--listen"),
                       QStringLiteral("127.0.0.1:%1").arg(port), QStringLiteral("--backends"),
                       QStringLiteral("%1,%2;weight=2").arg(keyOf(a), keyOf(b)),
                       QStringLiteral("--threads"), QStringLiteral("1"), QStringLiteral("--policy"),
                       QStringLiteral("weighted")});
        QVERIFY(process.waitForStarted());
        QByteArray output;
        QTRY_VERIFY_WITH_TIMEOUT((output += process.readAllStandardOutput()).contains("backend"),
                                 10000);
        QVERIFY(output.contains(QByteArray("listening on 127.0.0.1:" + QByteArray::number(port))));
        HttpClient client(port);
        for (int i = 0; i < 30; ++i)
            QCOMPARE(client.get("/").status, 200);
        QCOMPARE(a.requests(), 10);
        QCOMPARE(b.requests(), 20);
        ::kill(pid_t(process.processId()), SIGTERM);
        QVERIFY(process.waitForFinished(10000));
        QCOMPARE(process.exitStatus(), QProcess::NormalExit);
        QCOMPARE(process.exitCode(), 0);
    }

    void metricsInPrometheusFormat() {
        TestBackend a, b;
        QVERIFY(a.start() && b.start());
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(withAdmin(configFor({&a, &b}), QStringLiteral("127.0.0.1:0"))));
        HttpClient client(engine.port());
        for (const char *path : {"/", "/", "/status/404", "/status/503", "/slow/20", "/"})
            QVERIFY(client.get(path).status != 0);
        HttpClient bad(engine.port());
        bad.send("GET /\x01 HTTP/1.1\r\n\r\n");
        QCOMPARE(bad.read().status, 400);
        QVERIFY(engine.disableBackend(keyOf(b)));

        const std::string token = tokenOf(engine);
        const auto scrape = [&](HttpResponse &response) {
            HttpClient admin(engine.adminPort());
            admin.send(
                "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(engine.adminPort()) +
                "\r\nAuthorization: Bearer " + token + "\r\n\r\n");
            response = admin.read();
            QString error;
            const QMap<QString, double> samples =
                parseExposition(QByteArray::fromStdString(response.body), error);
            if (!error.isEmpty()) qWarning("%s\n%s", qPrintable(error), response.body.c_str());
            return samples;
        };
        HttpResponse response;
        const QMap<QString, double> samples = scrape(response);
        QCOMPARE(response.status, 200);
        QCOMPARE(response.header("content-type"),
                 std::string("text/plain; version=0.0.4; charset=utf-8"));
        QVERIFY(!samples.isEmpty());

        // The same figures as /stats.
        int status = 0;
        const QJsonObject stats = call(engine, "GET", "/stats", "", status);
        QCOMPARE(status, 200);
        const QJsonObject connections = stats[QStringLiteral("connections")].toObject();
        QCOMPARE(samples.value(QStringLiteral("corral_proxy_connections_accepted_total{}")),
                 connections[QStringLiteral("accepted")].toDouble());
        QCOMPARE(samples.value(QStringLiteral("corral_proxy_connections_open{}")),
                 connections[QStringLiteral("open")].toDouble());
        QCOMPARE(samples.value(QStringLiteral("corral_proxy_bad_requests_total{}")), 1.0);
        QVERIFY(samples.contains(QStringLiteral("corral_proxy_no_backend_total{}")));
        QVERIFY(samples.contains(QStringLiteral("corral_proxy_access_log_dropped_lines_total{}")));
        double latencyCount = 0;
        for (const QJsonValue &v : stats[QStringLiteral("backends")].toArray()) {
            const QJsonObject o = v.toObject();
            const QString label =
                QStringLiteral("backend=\"%1\"").arg(o[QStringLiteral("key")].toString());
            const auto value = [&](const char *name, const QString &extra = {}) {
                const QString key =
                    QLatin1String(name) + QLatin1Char('{') + label + extra + QLatin1Char('}');
                if (!samples.contains(key)) qWarning("missing %s", qPrintable(key));
                return samples.value(key, -1);
            };
            QCOMPARE(value("corral_proxy_backend_requests_total"),
                     o[QStringLiteral("requests")].toDouble());
            double responses = 0;
            for (const char *cls : {"2xx", "3xx", "4xx", "5xx"}) {
                const double n =
                    o[QStringLiteral("responses")].toObject()[QLatin1String(cls)].toDouble();
                QCOMPARE(value("corral_proxy_backend_responses_total",
                               QStringLiteral(",code=\"%1\"").arg(QLatin1String(cls))),
                         n);
                responses += n;
            }
            QCOMPARE(value("corral_proxy_backend_in_flight"),
                     o[QStringLiteral("inFlight")].toDouble());
            QCOMPARE(value("corral_proxy_backend_failovers_total"),
                     o[QStringLiteral("failovers")].toDouble());
            QCOMPARE(value("corral_proxy_backend_failures_total"),
                     o[QStringLiteral("failures")].toDouble());
            QCOMPARE(value("corral_proxy_backend_received_bytes_total"),
                     o[QStringLiteral("bytesIn")].toDouble());
            QCOMPARE(value("corral_proxy_backend_sent_bytes_total"),
                     o[QStringLiteral("bytesOut")].toDouble());
            const QString state = o[QStringLiteral("state")].toString();
            for (const char *s : {"up", "down", "draining", "disabled"})
                QCOMPARE(value("corral_proxy_backend_state",
                               QStringLiteral(",state=\"%1\"").arg(QLatin1String(s))),
                         state == QLatin1String(s) ? 1.0 : 0.0);
            // Every answered request is in the histogram, the 20 ms one above 10 ms.
            const double count = value("corral_proxy_backend_response_seconds_count");
            QCOMPARE(count, responses);
            latencyCount += count;
            QVERIFY(value("corral_proxy_backend_response_seconds_sum") > 0);
        }
        QCOMPARE(latencyCount, 6.0);
        QCOMPARE(samples.value(
                     QStringLiteral("corral_proxy_backend_state{backend=\"%1\",state=\"disabled\"}")
                         .arg(keyOf(b))),
                 1.0);

        // Counters only grow.
        for (int i = 0; i < 3; ++i)
            QCOMPARE(client.get("/").status, 200);
        const QMap<QString, double> later = scrape(response);
        for (auto it = samples.cbegin(); it != samples.cend(); ++it)
            if (it.key().contains(QLatin1String("_total{")) ||
                it.key().contains(QLatin1String("_bucket{")) ||
                it.key().contains(QLatin1String("_count{")))
                QVERIFY2(later.value(it.key()) >= it.value(), qPrintable(it.key()));
        QCOMPARE(later.value(QStringLiteral("corral_proxy_backend_requests_total{backend=\"%1\"}")
                                 .arg(keyOf(a))),
                 samples.value(QStringLiteral("corral_proxy_backend_requests_total{backend=\"%1\"}")
                                   .arg(keyOf(a))) +
                     3);
    }

    void metricLabelsAreEscaped() {
        ProxyStats stats;
        BackendStats b;
        b.backend.address = QStringLiteral("we\"ird\\ho\nst");
        b.backend.port = 80;
        b.latency.record(120);
        b.latency.record(40000000); // the open-ended bucket
        b.latencySumUs = 40000120;
        stats.backends.append(b);
        const QByteArray text = prometheusText(stats);
        QString error;
        const QMap<QString, double> samples = parseExposition(text, error);
        QVERIFY2(error.isEmpty(), qPrintable(error + QLatin1Char('\n') + QString::fromUtf8(text)));
        const QString label = QStringLiteral("backend=\"we\\\"ird\\\\ho\\nst:80\"");
        QCOMPARE(samples.value(QStringLiteral(
                                   "corral_proxy_backend_response_seconds_bucket{%1,le=\"0.0002\"}")
                                   .arg(label)),
                 1.0);
        QCOMPARE(samples.value(
                     QStringLiteral("corral_proxy_backend_response_seconds_bucket{%1,le=\"30\"}")
                         .arg(label)),
                 1.0);
        QCOMPARE(samples.value(
                     QStringLiteral("corral_proxy_backend_response_seconds_bucket{%1,le=\"+Inf\"}")
                         .arg(label)),
                 2.0);
        QCOMPARE(samples.value(
                     QStringLiteral("corral_proxy_backend_response_seconds_sum{%1}").arg(label)),
                 40.00012);
        // The checker itself refuses what breaks the format.
        for (const QByteArray &broken :
             {QByteArray("x 1\n"), QByteArray("# TYPE x gauge\nx{a=\"b\nc\"} 1\n"),
              QByteArray("# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx 2\n"),
              QByteArray(
                  "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
                  "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n"),
              QByteArray(
                  "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n")}) {
            parseExposition(broken, error);
            QVERIFY2(!error.isEmpty(), broken.constData());
            error.clear();
        }
    }

    void corralctlProxyUsageErrors() {
        QProcess process;
        process.start(QStringLiteral(CORRALCTL_PATH),
                      {QStringLiteral("proxy"), QStringLiteral("--listen"), QStringLiteral("x")});
        QVERIFY(process.waitForFinished(10000));
        QCOMPARE(process.exitCode(), 2);
    }
};

QTEST_GUILESS_MAIN(TestProxyAdmin)
#include "tst_proxyadmin.moc"
