#include "helpers/ProxyTestUtil.h"
#include "helpers/ResultVerify.h"
#include "proxy/AdminClient.h"
#include "proxy/AdminServer.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

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
