#include "model/Backend.h"
#include "model/Host.h"

#include <QTest>

using namespace corral;

class TestHost : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void roundTripsThroughJson() {
        Host host;
        host.name = QStringLiteral("web-1");
        host.kind = Host::Kind::Ssh;
        host.address = QStringLiteral("10.0.0.5");
        host.port = 2222;
        host.user = QStringLiteral("deploy");
        host.auth = Host::Auth::KeyFile;
        host.keyPath = QStringLiteral("/home/deploy/.ssh/id_ed25519");
        const auto parsed = Host::fromJson(host.toJson(), QStringLiteral("hosts[0]"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.error()));
        QCOMPARE(parsed.value(), host);
    }

    void defaultsPortTo22() {
        const auto parsed =
            Host::fromJson(QJsonObject{{"name", "a"}, {"kind", "ssh"}, {"address", "example.com"}},
                           QStringLiteral("hosts[0]"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.error()));
        QCOMPARE(parsed->port, quint16(22));
        QCOMPARE(parsed->auth, Host::Auth::Agent);
    }

    void rejectsBadFields_data() {
        QTest::addColumn<QJsonObject>("json");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no name") << QJsonObject{{"kind", "local"}} << "hosts[3].name: is required";
        QTest::newRow("bad name") << QJsonObject{{"name", "a b"}, {"kind", "local"}}
                                  << "hosts[3].name:";
        QTest::newRow("ssh without address")
            << QJsonObject{{"name", "a"}, {"kind", "ssh"}} << "hosts[3].address:";
        QTest::newRow("port out of range")
            << QJsonObject{{"name", "a"}, {"address", "h"}, {"port", 70000}}
            << "hosts[3].port: 70000 is out of range";
        QTest::newRow("port wrong type")
            << QJsonObject{{"name", "a"}, {"address", "h"}, {"port", "22"}}
            << "hosts[3].port: expected an integer";
        QTest::newRow("unknown kind")
            << QJsonObject{{"name", "a"}, {"kind", "telnet"}} << "hosts[3].kind:";
        QTest::newRow("unknown auth")
            << QJsonObject{{"name", "a"}, {"address", "h"}, {"auth", "magic"}} << "hosts[3].auth:";
        QTest::newRow("key without path")
            << QJsonObject{{"name", "a"}, {"address", "h"}, {"auth", "key"}} << "hosts[3].keyPath:";
        QTest::newRow("unknown field")
            << QJsonObject{{"name", "a"}, {"address", "h"}, {"password", "hunter2"}}
            << "hosts[3].password: unknown field";
        QTest::newRow("option-like address")
            << QJsonObject{{"name", "a"}, {"address", "-oProxyCommand=x"}} << "hosts[3].address:";
    }
    void rejectsBadFields() {
        QFETCH(QJsonObject, json);
        QFETCH(QString, expected);
        const auto parsed = Host::fromJson(json, QStringLiteral("hosts[3]"));
        QVERIFY(!parsed.ok());
        QVERIFY2(parsed.error().startsWith(expected), qPrintable(parsed.error()));
    }

    void parsesBackendSpecs() {
        const auto backend = Backend::parse(QStringLiteral("127.0.0.1:3001;weight=3;backup"));
        QVERIFY2(backend.ok(), qPrintable(backend.error()));
        QCOMPARE(backend->address, QStringLiteral("127.0.0.1"));
        QCOMPARE(backend->port, quint16(3001));
        QCOMPARE(backend->weight, 3);
        QVERIFY(backend->backup);
        QCOMPARE(backend->toSpec(), QStringLiteral("127.0.0.1:3001;weight=3;backup"));
        const auto v6 = Endpoint::parse(QStringLiteral("[::1]:8080"));
        QVERIFY(v6.ok());
        QCOMPARE(v6->host, QStringLiteral("::1"));
        QCOMPARE(v6->toString(), QStringLiteral("[::1]:8080"));
    }

    void rejectsBadBackendSpecs_data() {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no port") << "127.0.0.1"
                                 << "is not HOST:PORT";
        QTest::newRow("port zero") << "127.0.0.1:0"
                                   << "port \"0\" is not in 1..65535";
        QTest::newRow("port too big") << "127.0.0.1:65536"
                                      << "is not in 1..65535";
        QTest::newRow("weight zero") << "a:1;weight=0"
                                     << "weight must be";
        QTest::newRow("unknown option") << "a:1;fast"
                                        << "unknown option \"fast\"";
        QTest::newRow("duplicate") << "a:1,a:1"
                                   << "listed twice";
        QTest::newRow("shell metacharacters") << "$(reboot):80"
                                              << "is not a host name";
        QTest::newRow("empty") << ","
                               << "no backends given";
    }
    // Issue 13 item 9: QHostAddress takes any text after '%' as an IPv6 zone id, so a
    // backend address carried quotes and newlines into every rendered config.
    void zoneIdsAreRestricted_data() {
        QTest::addColumn<QString>("address");
        QTest::addColumn<bool>("valid");
        QTest::newRow("interface") << "fe80::1%eth0" << true;
        QTest::newRow("numeric") << "fe80::1%2" << true;
        QTest::newRow("15 characters") << "fe80::1%abcdefghijklmno" << true;
        QTest::newRow("16 characters") << "fe80::1%abcdefghijklmnop" << false;
        QTest::newRow("empty") << "fe80::1%" << false;
        QTest::newRow("quote") << "fe80::1%x\" route=9" << false;
        QTest::newRow("newline") << "fe80::1%x\n</Proxy>" << false;
        QTest::newRow("space") << "fe80::1%a b" << false;
        QTest::newRow("semicolon") << "fe80::1%a;b" << false;
        QTest::newRow("brace") << "fe80::1%a}" << false;
        QTest::newRow("on IPv4") << "127.0.0.1%lo" << false;
    }
    void zoneIdsAreRestricted() {
        QFETCH(QString, address);
        QFETCH(bool, valid);
        const auto checked = Backend{address, 3000}.validate(QStringLiteral("backends[0]"));
        QCOMPARE(checked.ok(), valid);
        if (!valid)
            QVERIFY2(checked.error().startsWith(QStringLiteral("backends[0].address: ")),
                     qPrintable(checked.error()));
        const auto parsed =
            Backend::parse(Endpoint{address, 3000}.toString() + QStringLiteral(";weight=2"));
        QCOMPARE(parsed.ok(), valid);
        const auto listen = Endpoint::parse(Endpoint{address, 8080}.toString());
        QCOMPARE(listen.ok(), valid);
    }

    void theInjectionReproIsRefused() {
        const QString spec = QStringLiteral(
            "[fe80::1%x]\" route=9\n </Proxy> RewriteRule ^/pwned http://evil.example/ "
            "[R=302] <Proxy \"balancer://y\">\n BalancerMember \"http://[::1]:3000");
        const auto parsed = Backend::parseList(spec);
        QVERIFY(!parsed.ok());
        QVERIFY2(!parsed.error().contains(QLatin1Char('\n')), qPrintable(parsed.error()));
    }

    void hostFieldsRefuseControlCharactersAndQuotes_data() {
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("value");
        for (const char *field : {"address", "user", "keyPath"}) {
            const QStringList hostile = {QStringLiteral("a\nb"),
                                         QStringLiteral("a\rb"),
                                         QStringLiteral("ab\n"),
                                         QStringLiteral("a\"b"),
                                         QStringLiteral("a'b"),
                                         QStringLiteral("a`b"),
                                         QStringLiteral("a") + QChar(0) + QStringLiteral("b"),
                                         QStringLiteral("a\x7f")};
            for (const QString &bad : hostile) {
                QTest::addRow("%s %s", field, qPrintable(bad.toUtf8().toPercentEncoding()))
                    << QString::fromLatin1(field)
                    << (QLatin1String(field) == QLatin1String("keyPath") ? QLatin1Char('/') + bad
                                                                         : bad);
            }
        }
    }
    void hostFieldsRefuseControlCharactersAndQuotes() {
        QFETCH(QString, field);
        QFETCH(QString, value);
        Host host;
        host.name = QStringLiteral("web1");
        host.kind = Host::Kind::Ssh;
        host.address = QStringLiteral("web1.example.com");
        host.user = QStringLiteral("deploy");
        host.auth = Host::Auth::KeyFile;
        host.keyPath = QStringLiteral("/home/deploy/.ssh/id_ed25519");
        QVERIFY(host.validate(QStringLiteral("hosts[0]")).ok());
        if (field == QLatin1String("address")) host.address = value;
        if (field == QLatin1String("user")) host.user = value;
        if (field == QLatin1String("keyPath")) host.keyPath = value;
        const auto checked = host.validate(QStringLiteral("hosts[0]"));
        QVERIFY(!checked.ok());
        QVERIFY2(checked.error().startsWith(QStringLiteral("hosts[0].") + field + QLatin1Char(':')),
                 qPrintable(checked.error()));
        QVERIFY2(!checked.error().contains(QLatin1Char('\n')), qPrintable(checked.error()));
    }

    void rejectsBadBackendSpecs() {
        QFETCH(QString, spec);
        QFETCH(QString, expected);
        const auto parsed = Backend::parseList(spec);
        QVERIFY(!parsed.ok());
        QVERIFY2(parsed.error().contains(expected), qPrintable(parsed.error()));
    }
};

QTEST_GUILESS_MAIN(TestHost)
#include "tst_host.moc"
