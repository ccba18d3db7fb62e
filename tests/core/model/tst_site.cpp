#include "model/Site.h"

#include <QJsonArray>
#include <QTest>

using namespace corral;

class TestSite : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void roundTripsEveryField() {
        Site site;
        site.name = QStringLiteral("mysite");
        site.command = QStringLiteral("node");
        site.args = {QStringLiteral("app.js"), QStringLiteral("--port={port}")};
        site.workingDirectory = QStringLiteral("/opt/mysite");
        site.environment = {{QStringLiteral("NODE_ENV"), QStringLiteral("production")}};
        site.workers = 3;
        site.basePort = 3000;
        site.healthPath = QStringLiteral("/health");
        site.serverNames = {QStringLiteral("example.com"), QStringLiteral("www.example.com")};
        site.staticRoot = QStringLiteral("/opt/mysite/public");
        site.policy = BalancingPolicy::StickyCookie;
        site.listen = QStringLiteral("127.0.0.1:8080");
        site.backends = {Backend{QStringLiteral("127.0.0.1"), 3000, 2, false, false},
                         Backend{QStringLiteral("127.0.0.1"), 3001, 1, true, true}};
        site.hosts = {QStringLiteral("local")};
        site.ports = {3000, 3001, 3002};
        const auto parsed = Site::fromJson(site.toJson(), QStringLiteral("sites[0]"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.error()));
        QCOMPARE(parsed.value(), site);
    }

    void substitutesPortPlaceholder() {
        Site site;
        site.args = {QStringLiteral("--port"), QStringLiteral("{port}"),
                     QStringLiteral("--url=http://x:{port}/")};
        QCOMPARE(site.argsForPort(3005),
                 (QStringList{QStringLiteral("--port"), QStringLiteral("3005"),
                              QStringLiteral("--url=http://x:3005/")}));
    }

    void policyNamesRoundTrip() {
        for (auto policy :
             {BalancingPolicy::RoundRobin, BalancingPolicy::LeastConn, BalancingPolicy::Weighted,
              BalancingPolicy::StickyCookie, BalancingPolicy::IpHash})
            QCOMPARE(policyFromName(policyName(policy)), policy);
        QVERIFY(!policyFromName(QStringLiteral("random")));
    }

    void rejectsBadFields_data() {
        QTest::addColumn<QJsonObject>("json");
        QTest::addColumn<QString>("expected");
        QTest::newRow("basePort out of range")
            << QJsonObject{{"name", "s"}, {"basePort", 70000}}
            << "sites[2].basePort: 70000 is out of range (1..65535)";
        QTest::newRow("basePort wrong type")
            << QJsonObject{{"name", "s"}, {"basePort", "3000"}}
            << "sites[2].basePort: expected an integer, got a string";
        QTest::newRow("fractional workers") << QJsonObject{{"name", "s"}, {"workers", 2.5}}
                                            << "sites[2].workers: expected an integer";
        QTest::newRow("negative workers")
            << QJsonObject{{"name", "s"}, {"workers", -1}} << "sites[2].workers:";
        QTest::newRow("bad policy")
            << QJsonObject{{"name", "s"}, {"policy", "random"}} << "sites[2].policy: \"random\"";
        QTest::newRow("health path without slash")
            << QJsonObject{{"name", "s"}, {"healthPath", "health"}} << "sites[2].healthPath:";
        QTest::newRow("args not strings")
            << QJsonObject{{"name", "s"}, {"args", QJsonArray{"a", 1}}}
            << "sites[2].args[1]: expected a string";
        QTest::newRow("backend port")
            << QJsonObject{{"name", "s"},
                           {"backends", QJsonArray{QJsonObject{{"address", "a"}, {"port", 0}}}}}
            << "sites[2].backends[0].port: 0 is out of range";
        QTest::newRow("duplicate backend")
            << QJsonObject{{"name", "s"},
                           {"backends", QJsonArray{QJsonObject{{"address", "a"}, {"port", 1}},
                                                   QJsonObject{{"address", "a"}, {"port", 1}}}}}
            << "sites[2].backends[1]: duplicate backend a:1";
        QTest::newRow("unknown backend field")
            << QJsonObject{{"name", "s"},
                           {"backends", QJsonArray{QJsonObject{
                                            {"address", "a"}, {"port", 1}, {"max_fails", 3}}}}}
            << "sites[2].backends[0].max_fails: unknown field";
        QTest::newRow("unknown field")
            << QJsonObject{{"name", "s"}, {"wrokers", 2}} << "sites[2].wrokers: unknown field";
        QTest::newRow("bad listen")
            << QJsonObject{{"name", "s"}, {"listen", "8080"}} << "sites[2].listen:";
        QTest::newRow("env not string")
            << QJsonObject{{"name", "s"}, {"environment", QJsonObject{{"A", 1}}}}
            << "sites[2].environment.A:";
        QTest::newRow("duplicate port")
            << QJsonObject{{"name", "s"}, {"ports", QJsonArray{3000, 3000}}}
            << "sites[2].ports[1]:";
        QTest::newRow("name with slash") << QJsonObject{{"name", "../etc"}} << "sites[2].name:";
    }
    void rejectsBadFields() {
        QFETCH(QJsonObject, json);
        QFETCH(QString, expected);
        const auto parsed = Site::fromJson(json, QStringLiteral("sites[2]"));
        QVERIFY(!parsed.ok());
        QVERIFY2(parsed.error().startsWith(expected), qPrintable(parsed.error()));
    }
};

QTEST_GUILESS_MAIN(TestSite)
#include "tst_site.moc"
