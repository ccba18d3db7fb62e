#include "upstreams/ConfigImport.h"

#include <QTest>

using namespace corral;

class TestImport : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void nginxUpstreams() {
        const QString text = QStringLiteral(R"(# Upstreams, as on a real host
http {
    upstream upstream-EXAMPLE  {
      server localhost:3000;       # first
      server localhost:3001 weight=3 max_fails=2 fail_timeout=30s;
      # server localhost:3002;
    }

    upstream "backend" {
        least_conn;
        keepalive 32;
        server 10.0.0.5:8080 backup;
        server [::1]:8081 down max_fails=0 fail_timeout=1m;
        server app.internal max_conns=10;
    }
    upstream hashed { hash $cookie_connect_sid consistent; server 127.0.0.1:1; }
    upstream byip { ip_hash; server 127.0.0.1:2 fail_timeout=500ms; }

    server {
        listen 80;
        location / { proxy_pass http://backend; }
    }
}
)");
        auto parsed = parseNginxUpstreams(text);
        QVERIFY2(parsed, qPrintable(parsed.error()));
        const QList<NginxUpstream> &upstreams = parsed.value();
        QCOMPARE(upstreams.size(), 4);

        const NginxUpstream &first = upstreams.at(0);
        QCOMPARE(first.name, QStringLiteral("upstream-EXAMPLE"));
        QCOMPARE(first.method, QStringLiteral("round-robin"));
        QCOMPARE(first.policy, BalancingPolicy::Weighted);
        QCOMPARE(first.line, 3);
        QCOMPARE(first.servers.size(), 2);
        QCOMPARE(first.servers.at(0).backend, (Backend{QStringLiteral("localhost"), 3000}));
        QCOMPARE(first.servers.at(0).maxFails, 1);
        QCOMPARE(first.servers.at(0).failTimeoutMs, 10000);
        QCOMPARE(first.servers.at(1).backend.weight, 3);
        QCOMPARE(first.servers.at(1).maxFails, 2);
        QCOMPARE(first.servers.at(1).failTimeoutMs, 30000);
        QCOMPARE(first.servers.at(1).line, 5);

        const NginxUpstream &second = upstreams.at(1);
        QCOMPARE(second.name, QStringLiteral("backend"));
        QCOMPARE(second.method, QStringLiteral("least_conn"));
        QCOMPARE(second.policy, BalancingPolicy::LeastConn);
        QCOMPARE(second.keepalive, 32);
        QCOMPARE(second.servers.size(), 3);
        QVERIFY(second.servers.at(0).backend.backup);
        QCOMPARE(second.servers.at(1).backend.address, QStringLiteral("::1"));
        QCOMPARE(second.servers.at(1).backend.port, quint16(8081));
        QVERIFY(second.servers.at(1).backend.down);
        QCOMPARE(second.servers.at(1).maxFails, 0);
        QCOMPARE(second.servers.at(1).failTimeoutMs, 60000);
        QCOMPARE(second.servers.at(2).backend, (Backend{QStringLiteral("app.internal"), 80}));

        QCOMPARE(upstreams.at(2).method, QStringLiteral("hash $cookie_connect_sid consistent"));
        QCOMPARE(upstreams.at(2).policy, BalancingPolicy::StickyCookie);
        QCOMPARE(upstreams.at(3).policy, BalancingPolicy::IpHash);
        QCOMPARE(upstreams.at(3).servers.at(0).failTimeoutMs, 500);
    }

    void nginxErrorsNameTheLine_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("expected");
        QTest::newRow("missing semicolon")
            << QStringLiteral("upstream a {\n  server 127.0.0.1:1\n}\n")
            << QStringLiteral("line 2:");
        QTest::newRow("unclosed upstream")
            << QStringLiteral("# c\nupstream a {\n  server 127.0.0.1:1;\n")
            << QStringLiteral("line 2:");
        QTest::newRow("bad weight")
            << QStringLiteral("upstream a {\n\n  server 127.0.0.1:1 weight=x;\n}")
            << QStringLiteral("line 3: weight");
        QTest::newRow("unknown parameter")
            << QStringLiteral("upstream a {\n  server 127.0.0.1:1 wieght=2;\n}")
            << QStringLiteral("line 2: unknown server parameter");
        QTest::newRow("bad address") << QStringLiteral("upstream a {\n  server 127.0.0.1:99999;\n}")
                                     << QStringLiteral("line 2:");
        QTest::newRow("unix socket") << QStringLiteral("upstream a {\n  server unix:/tmp/s;\n}")
                                     << QStringLiteral("line 2:");
        QTest::newRow("stray brace")
            << QStringLiteral("http {\n}\n}\n") << QStringLiteral("line 3:");
        QTest::newRow("unterminated quote")
            << QStringLiteral("upstream a {\n  server \"127.0.0.1:1;\n}")
            << QStringLiteral("line 2:");
        QTest::newRow("bad fail_timeout")
            << QStringLiteral("upstream a {\n  server h:1 fail_timeout=soon;\n}")
            << QStringLiteral("line 2: fail_timeout");
    }

    void nginxErrorsNameTheLine() {
        QFETCH(QString, text);
        QFETCH(QString, expected);
        auto parsed = parseNginxUpstreams(text);
        QVERIFY(!parsed);
        QVERIFY2(parsed.error().startsWith(expected), qPrintable(parsed.error()));
    }

    void haproxyBackends() {
        const QString text = QStringLiteral(R"(global
    maxconn 4096   # comment
    stats socket /run/haproxy/admin.sock mode 660 level admin

defaults
    mode http
    default-server weight 2

frontend www
    bind :80
    default_backend meteor

backend meteor
    balance leastconn
    cookie SERVERID insert indirect nocache
    option httpchk GET /health
    server app1 127.0.0.1:3000 check cookie s1
    server app2 127.0.0.1:3001 check weight 5 cookie s2 backup
    server "app3" [::1]:3002 disabled
    #server app4 127.0.0.1:3003

listen stats_and_app
    bind :8080
    balance source
    server w1 ipv4@10.0.0.1:80 weight 0
    server w2 web.internal
)");
        auto parsed = parseHaproxyBackends(text);
        QVERIFY2(parsed, qPrintable(parsed.error()));
        const QList<HaproxyBackend> &backends = parsed.value();
        QCOMPARE(backends.size(), 2);
        const HaproxyBackend &meteor = backends.at(0);
        QCOMPARE(meteor.name, QStringLiteral("meteor"));
        QCOMPARE(meteor.balance, QStringLiteral("leastconn"));
        QCOMPARE(meteor.cookie, QStringLiteral("SERVERID"));
        QCOMPARE(meteor.policy, BalancingPolicy::StickyCookie);
        QCOMPARE(meteor.line, 13);
        QCOMPARE(meteor.servers.size(), 3);
        QCOMPARE(meteor.servers.at(0).name, QStringLiteral("app1"));
        QCOMPARE(meteor.servers.at(0).cookie, QStringLiteral("s1"));
        QCOMPARE(meteor.servers.at(0).backend.weight, 2); // from defaults' default-server
        QCOMPARE(meteor.servers.at(1).backend.weight, 5);
        QVERIFY(meteor.servers.at(1).backend.backup);
        QCOMPARE(meteor.servers.at(1).line, 18);
        QCOMPARE(meteor.servers.at(2).name, QStringLiteral("app3"));
        QCOMPARE(meteor.servers.at(2).backend.address, QStringLiteral("::1"));
        QVERIFY(meteor.servers.at(2).backend.down);

        const HaproxyBackend &listen = backends.at(1);
        QCOMPARE(listen.balance, QStringLiteral("source"));
        QCOMPARE(listen.policy, BalancingPolicy::IpHash);
        QCOMPARE(listen.servers.at(0).backend,
                 (Backend{QStringLiteral("10.0.0.1"), 80, 1, false, true}));
        QCOMPARE(listen.servers.at(1).backend.port, quint16(80));
    }

    void haproxyErrorsNameTheLine_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("expected");
        QTest::newRow("server outside backend")
            << QStringLiteral("frontend a\n  server x 127.0.0.1:1\n") << QStringLiteral("line 2:");
        QTest::newRow("server without address")
            << QStringLiteral("backend a\n\n  server x\n") << QStringLiteral("line 3:");
        QTest::newRow("bad weight")
            << QStringLiteral("backend a\n  server x 127.0.0.1:1 weight heavy\n")
            << QStringLiteral("line 2: weight");
        QTest::newRow("bad port") << QStringLiteral("backend a\n  server x 127.0.0.1:0\n")
                                  << QStringLiteral("line 2:");
        QTest::newRow("balance without algorithm")
            << QStringLiteral("backend a\n  balance\n") << QStringLiteral("line 2:");
        QTest::newRow("unterminated quote")
            << QStringLiteral("backend a\n  server \"x 127.0.0.1:1\n") << QStringLiteral("line 2:");
        QTest::newRow("backend without name")
            << QStringLiteral("\nbackend\n") << QStringLiteral("line 2:");
    }

    void haproxyErrorsNameTheLine() {
        QFETCH(QString, text);
        QFETCH(QString, expected);
        auto parsed = parseHaproxyBackends(text);
        QVERIFY(!parsed);
        QVERIFY2(parsed.error().startsWith(expected), qPrintable(parsed.error()));
    }
};

QTEST_GUILESS_MAIN(TestImport)
#include "tst_import.moc"
