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
        site.retries = 3;
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
        QTest::newRow("retries out of range") << QJsonObject{{"name", "s"}, {"retries", 11}}
                                              << "sites[2].retries: 11 is out of range (0..10)";
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

    static QJsonObject balancerJson() {
        return QJsonObject{
            {QStringLiteral("host"), QStringLiteral("web1")},
            {QStringLiteral("format"), QStringLiteral("nginx")},
            {QStringLiteral("configPath"), QStringLiteral("/etc/nginx/sites-enabled/mysite")},
            {QStringLiteral("validate"), QJsonArray{QStringLiteral("nginx"), QStringLiteral("-t")}},
            {QStringLiteral("reload"),
             QJsonArray{QStringLiteral("systemctl"), QStringLiteral("reload"),
                        QStringLiteral("nginx")}}};
    }

    void balancerRoundTrips() {
        Site site;
        site.name = QStringLiteral("mysite");
        SiteBalancer balancer;
        balancer.host = QStringLiteral("web1");
        balancer.format = QStringLiteral("haproxy");
        balancer.configPath = QStringLiteral("/etc/haproxy/haproxy.cfg");
        balancer.validate = {QStringLiteral("haproxy"), QStringLiteral("-c"), QStringLiteral("-f"),
                             QStringLiteral("/etc/haproxy/haproxy.cfg")};
        balancer.reload = {QStringLiteral("systemctl"), QStringLiteral("reload"),
                           QStringLiteral("haproxy")};
        balancer.probeUrl = QStringLiteral("http://127.0.0.1/health");
        balancer.errorLog = QStringLiteral("/var/log/haproxy.log");
        balancer.listenAddress = QStringLiteral("127.0.0.1");
        balancer.httpPort = 8080;
        balancer.logDirectory = QStringLiteral("/srv/logs");
        site.balancer = balancer;
        const QJsonObject json = site.toJson();
        QVERIFY(json.contains(QStringLiteral("balancer")));
        const auto parsed = Site::fromJson(json, QStringLiteral("sites[0]"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.error()));
        QCOMPARE(parsed.value(), site);

        // Backward compatible: files without the object load, and saving adds nothing.
        Site plain;
        plain.name = QStringLiteral("old");
        QVERIFY(!plain.toJson().contains(QStringLiteral("balancer")));
        const auto old =
            Site::fromJson(QJsonObject{{QStringLiteral("name"), QStringLiteral("old")}},
                           QStringLiteral("sites[0]"));
        QVERIFY2(old.ok(), qPrintable(old.error()));
        QVERIFY(!old->balancer.has_value());
    }

    void balancerRejectsBadFields_data() {
        QTest::addColumn<QString>("key");
        QTest::addColumn<QJsonValue>("value");
        QTest::addColumn<QString>("expected");
        QTest::newRow("host") << QStringLiteral("host") << QJsonValue(QStringLiteral("a b"))
                              << QStringLiteral("sites[2].balancer.host");
        QTest::newRow("format") << QStringLiteral("format") << QJsonValue(QStringLiteral("iis"))
                                << QStringLiteral("sites[2].balancer.format");
        QTest::newRow("relative path")
            << QStringLiteral("configPath") << QJsonValue(QStringLiteral("sites/x"))
            << QStringLiteral("sites[2].balancer.configPath");
        QTest::newRow("newline in path")
            << QStringLiteral("configPath") << QJsonValue(QStringLiteral("/etc/x\ny"))
            << QStringLiteral("sites[2].balancer.configPath");
        QTest::newRow("no validate") << QStringLiteral("validate") << QJsonValue(QJsonArray{})
                                     << QStringLiteral("sites[2].balancer.validate");
        QTest::newRow("reload not strings") << QStringLiteral("reload") << QJsonValue(QJsonArray{1})
                                            << QStringLiteral("sites[2].balancer.reload");
        QTest::newRow("probe scheme")
            << QStringLiteral("probeUrl") << QJsonValue(QStringLiteral("ftp://x/"))
            << QStringLiteral("sites[2].balancer.probeUrl");
        QTest::newRow("errorLog") << QStringLiteral("errorLog") << QJsonValue(QStringLiteral("x"))
                                  << QStringLiteral("sites[2].balancer.errorLog");
        QTest::newRow("httpPort") << QStringLiteral("httpPort") << QJsonValue(70000)
                                  << QStringLiteral("sites[2].balancer.httpPort");
        QTest::newRow("unknown field")
            << QStringLiteral("reloadd") << QJsonValue(true) << QStringLiteral("sites[2].balancer");
    }

    void balancerRejectsBadFields() {
        QFETCH(QString, key);
        QFETCH(QJsonValue, value);
        QFETCH(QString, expected);
        QJsonObject balancer = balancerJson();
        balancer.insert(key, value);
        const QJsonObject json{{QStringLiteral("name"), QStringLiteral("mysite")},
                               {QStringLiteral("balancer"), balancer}};
        const auto parsed = Site::fromJson(json, QStringLiteral("sites[2]"));
        QVERIFY(!parsed.ok());
        QVERIFY2(parsed.error().startsWith(expected), qPrintable(parsed.error()));
        const auto notObject =
            Site::fromJson(QJsonObject{{QStringLiteral("name"), QStringLiteral("mysite")},
                                       {QStringLiteral("balancer"), 3}},
                           QStringLiteral("sites[2]"));
        QVERIFY(!notObject.ok());
        QVERIFY2(notObject.error().startsWith(QStringLiteral("sites[2].balancer")),
                 qPrintable(notObject.error()));
    }
};

QTEST_GUILESS_MAIN(TestSite)
#include "tst_site.moc"
