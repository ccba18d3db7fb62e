#include "helpers/ProxyTestUtil.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

#include <csignal>

using namespace corral;
using namespace corral::test;

// The admin HTTP API and `corralctl proxy`.
class TestProxyAdmin : public QObject {
    Q_OBJECT

    static QJsonObject call(uint16_t port, const std::string &method, const std::string &path,
                            const std::string &body, int &status) {
        HttpClient client(port);
        client.send(method + " " + path + " HTTP/1.1\r\nHost: admin\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body);
        const HttpResponse r = client.read();
        status = r.status;
        return QJsonDocument::fromJson(QByteArray::fromStdString(r.body)).object();
    }

    static uint16_t freePort() {
        TestBackend probe;
        probe.start();
        const uint16_t port = probe.port();
        probe.stop();
        return port;
    }

private Q_SLOTS:
    void adminApi() {
        TestBackend a, b;
        QVERIFY(a.start());
        QVERIFY(b.start());
        ProxyConfig config = configFor({&a});
        config.adminEnabled = true;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        QVERIFY(engine.adminPort() != 0);
        HttpClient client(engine.port());
        QCOMPARE(client.get("/").status, 200);

        int status = 0;
        QJsonObject stats = call(engine.adminPort(), "GET", "/stats", "", status);
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
        call(engine.adminPort(), "POST", "/backends", add, status);
        QCOMPARE(status, 200);
        QJsonObject list = call(engine.adminPort(), "GET", "/backends", "", status);
        QCOMPARE(list[QStringLiteral("backends")].toArray().size(), 2);
        QCOMPARE(list[QStringLiteral("backends")]
                     .toArray()[1]
                     .toObject()[QStringLiteral("weight")]
                     .toInt(),
                 2);

        call(engine.adminPort(), "POST", "/backends/" + a.key() + "/drain", "", status);
        QCOMPARE(status, 200);
        stats = call(engine.adminPort(), "GET", "/stats", "", status);
        first = stats[QStringLiteral("backends")].toArray()[0].toObject();
        QCOMPARE(first[QStringLiteral("state")].toString(), QStringLiteral("draining"));
        call(engine.adminPort(), "POST", "/backends/" + a.key() + "/enable", "", status);
        QCOMPARE(status, 200);
        call(engine.adminPort(), "DELETE", "/backends/" + b.key(), "", status);
        QCOMPARE(status, 200);
        call(engine.adminPort(), "DELETE", "/backends/" + b.key(), "", status);
        QCOMPARE(status, 404);
        call(engine.adminPort(), "POST", "/backends",
             "127.0.0.1:" + std::to_string(b.port()) + ";backup", status);
        QCOMPARE(status, 200);
        QVERIFY(engine.backends().last().backup);
        call(engine.adminPort(), "POST", "/backends", "{\"address\":1}", status);
        QCOMPARE(status, 400);
        call(engine.adminPort(), "GET", "/nope", "", status);
        QCOMPARE(status, 404);
    }

    void adminRefusesNonLoopback() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.adminEnabled = true;
        config.adminAddress = QStringLiteral("0.0.0.0");
        ProxyEngine engine;
        QVERIFY(!engine.start(config).ok());
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
