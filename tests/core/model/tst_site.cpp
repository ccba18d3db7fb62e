#include "model/Site.h"

#include <QJsonArray>
#include <QTest>

#include <functional>

using namespace corral;

namespace {

// A site with every string field set to something valid, a balancer included.
Site fullSite() {
    Site site;
    site.name = QStringLiteral("shop");
    site.command = QStringLiteral("/usr/bin/node");
    site.args = {QStringLiteral("server.js"), QStringLiteral("--port={port}")};
    site.workingDirectory = QStringLiteral("/srv/shop");
    site.environment = {{QStringLiteral("NODE_ENV"), QStringLiteral("production")}};
    site.healthPath = QStringLiteral("/health");
    site.serverNames = {QStringLiteral("shop.example.com")};
    site.staticRoot = QStringLiteral("/srv/shop/public");
    site.cacheControl = QStringLiteral("public, max-age=3600");
    site.accessLog = QStringLiteral("/var/log/corral/shop-access.log");
    site.tls = true;
    site.tlsCert = QStringLiteral("/etc/ssl/shop.pem");
    site.tlsKey = QStringLiteral("/etc/ssl/private/shop.key");
    site.redirectHttp = QStringLiteral("127.0.0.1:8081");
    site.listen = QStringLiteral("127.0.0.1:8080");
    site.backends = {Backend{QStringLiteral("127.0.0.1"), 3000}};
    site.hosts = {QStringLiteral("web1")};
    SiteBalancer balancer;
    balancer.host = QStringLiteral("web1");
    balancer.format = QStringLiteral("nginx");
    balancer.configPath = QStringLiteral("/etc/nginx/sites-enabled/shop");
    balancer.validate = {QStringLiteral("nginx"), QStringLiteral("-t")};
    balancer.reload = {QStringLiteral("systemctl"), QStringLiteral("reload"),
                       QStringLiteral("nginx")};
    balancer.probeUrl = QStringLiteral("http://127.0.0.1/health");
    balancer.errorLog = QStringLiteral("/var/log/nginx/error.log");
    balancer.listenAddress = QStringLiteral("127.0.0.1");
    balancer.logDirectory = QStringLiteral("/var/log/nginx");
    balancer.runtimeDirectory = QStringLiteral("/run/haproxy");
    site.balancer = balancer;
    return site;
}

struct StringField {
    const char *path; ///< as the error names it, under "sites[0]."
    /// Argv words (command, args, environment values, balancer commands) are never pasted
    /// into a config or a shell line unquoted, so quotes are theirs to use.
    bool commandWord;
    std::function<void(Site &, const QString &)> set;
};

QList<StringField> stringFields() {
    return {
        {"name", false, [](Site &s, const QString &v) { s.name = v; }},
        {"command", true, [](Site &s, const QString &v) { s.command = v; }},
        {"args[1]", true, [](Site &s, const QString &v) { s.args[1] = v; }},
        {"workingDirectory", false,
         [](Site &s, const QString &v) { s.workingDirectory = QLatin1Char('/') + v; }},
        {"environment.NODE_ENV", true,
         [](Site &s, const QString &v) { s.environment[QStringLiteral("NODE_ENV")] = v; }},
        {"environment", false,
         [](Site &s, const QString &v) { s.environment.insert(v, QStringLiteral("x")); }},
        {"healthPath", false,
         [](Site &s, const QString &v) { s.healthPath = QLatin1Char('/') + v; }},
        {"serverNames[0]", false, [](Site &s, const QString &v) { s.serverNames[0] = v; }},
        {"staticRoot", false,
         [](Site &s, const QString &v) { s.staticRoot = QLatin1Char('/') + v; }},
        {"listen", false,
         [](Site &s, const QString &v) { s.listen = v + QStringLiteral(":8080"); }},
        // Reaches a response header: quotes are HTTP's to use (no-cache="Set-Cookie"), but
        // no control or non-ASCII character.
        {"cacheControl", true, [](Site &s, const QString &v) { s.cacheControl = v; }},
        {"accessLog", false, [](Site &s, const QString &v) { s.accessLog = QLatin1Char('/') + v; }},
        {"tlsCert", false, [](Site &s, const QString &v) { s.tlsCert = QLatin1Char('/') + v; }},
        {"tlsKey", false, [](Site &s, const QString &v) { s.tlsKey = QLatin1Char('/') + v; }},
        {"redirectHttp", false,
         [](Site &s, const QString &v) { s.redirectHttp = v + QStringLiteral(":8081"); }},
        {"backends[0].address", false,
         [](Site &s, const QString &v) { s.backends[0].address = v; }},
        {"hosts[0]", false, [](Site &s, const QString &v) { s.hosts[0] = v; }},
        {"balancer.host", false, [](Site &s, const QString &v) { s.balancer->host = v; }},
        {"balancer.configPath", false,
         [](Site &s, const QString &v) { s.balancer->configPath = QLatin1Char('/') + v; }},
        {"balancer.validate[1]", true,
         [](Site &s, const QString &v) { s.balancer->validate[1] = v; }},
        {"balancer.reload[2]", true, [](Site &s, const QString &v) { s.balancer->reload[2] = v; }},
        {"balancer.probeUrl", false,
         [](Site &s, const QString &v) {
             s.balancer->probeUrl = QStringLiteral("http://127.0.0.1/") + v;
         }},
        {"balancer.errorLog", false,
         [](Site &s, const QString &v) { s.balancer->errorLog = QLatin1Char('/') + v; }},
        {"balancer.listenAddress", false,
         [](Site &s, const QString &v) { s.balancer->listenAddress = QStringLiteral("::1%") + v; }},
        {"balancer.logDirectory", false,
         [](Site &s, const QString &v) { s.balancer->logDirectory = QLatin1Char('/') + v; }},
        {"balancer.runtimeDirectory", false,
         [](Site &s, const QString &v) { s.balancer->runtimeDirectory = QLatin1Char('/') + v; }},
    };
}

} // namespace

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
        site.staticFollowSymlinks = true;
        site.cacheControl = QStringLiteral("public, max-age=60");
        site.gzip = false;
        site.accessLog = Site::AccessLogStdout;
        site.tls = true;
        site.tlsCert = QStringLiteral("/opt/mysite/cert.pem");
        site.tlsKey = QStringLiteral("/opt/mysite/key.pem");
        site.redirectHttp = QStringLiteral("127.0.0.1:8081");
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

    // Issue 19: an inventory written before the proxy's settings existed loads with their
    // defaults (gzip on, access log in the site's log directory, no TLS) and is written back
    // without them.
    void oldInventoryLoadsWithProxyDefaults() {
        const QJsonObject old{{"name", "shop"},          {"workers", 2},
                              {"basePort", 3000},        {"staticRoot", "/srv/shop/public"},
                              {"policy", "round-robin"}, {"listen", "127.0.0.1:8080"},
                              {"backends", QJsonArray{}}};
        const auto parsed = Site::fromJson(old, QStringLiteral("sites[0]"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.error()));
        QCOMPARE(parsed->staticRoot, QStringLiteral("/srv/shop/public"));
        QVERIFY(!parsed->staticFollowSymlinks);
        QVERIFY(parsed->cacheControl.isEmpty());
        QVERIFY(parsed->gzip);
        QVERIFY(parsed->accessLog.isEmpty());
        QVERIFY(!parsed->tls);
        QVERIFY(parsed->tlsCert.isEmpty() && parsed->tlsKey.isEmpty());
        QVERIFY(parsed->redirectHttp.isEmpty());
        QCOMPARE(parsed->toJson(), old);
    }

    void proxySettingsAreChecked_data() {
        QTest::addColumn<QJsonObject>("json");
        QTest::addColumn<QString>("expected");
        const auto site = [](QJsonObject extra) {
            extra.insert(QStringLiteral("name"), QStringLiteral("s"));
            return extra;
        };
        QTest::newRow("relative access log")
            << site({{"accessLog", "logs/access.log"}})
            << "sites[1].accessLog: \"logs/access.log\" must be an absolute path";
        QTest::newRow("relative cert")
            << site({{"tls", true}, {"tlsCert", "cert.pem"}, {"tlsKey", "/k.pem"}})
            << "sites[1].tlsCert: \"cert.pem\" must be an absolute path";
        QTest::newRow("cert without key")
            << site({{"tls", true}, {"tlsCert", "/c.pem"}})
            << "sites[1].tlsKey: tlsCert and tlsKey are given together";
        QTest::newRow("key without cert")
            << site({{"tls", true}, {"tlsKey", "/k.pem"}})
            << "sites[1].tlsCert: tlsCert and tlsKey are given together";
        QTest::newRow("cert without tls")
            << site({{"tlsCert", "/c.pem"}, {"tlsKey", "/k.pem"}}) << "sites[1].tls: false while";
        QTest::newRow("redirect without tls")
            << site({{"redirectHttp", "127.0.0.1:8081"}}) << "sites[1].redirectHttp: needs tls";
        QTest::newRow("redirect not HOST:PORT")
            << site({{"tls", true}, {"redirectHttp", "8081"}})
            << "sites[1].redirectHttp: \"8081\" is not HOST:PORT";
        QTest::newRow("cache-control header injection")
            << site({{"cacheControl", "max-age=1\r\nSet-Cookie: a=b"}})
            << "sites[1].cacheControl: \"max-age=1\\r\\nSet-Cookie: a=b\" contains a control";
        QTest::newRow("cache-control non-ASCII")
            << site({{"cacheControl", QStringLiteral("max-age=1\u00e9")}})
            << "sites[1].cacheControl:";
        QTest::newRow("gzip not a boolean")
            << site({{"gzip", "yes"}}) << "sites[1].gzip: expected true or false";
        QTest::newRow("tls not a boolean")
            << site({{"tls", 1}}) << "sites[1].tls: expected true or false";
    }
    void proxySettingsAreChecked() {
        QFETCH(QJsonObject, json);
        QFETCH(QString, expected);
        const auto parsed = Site::fromJson(json, QStringLiteral("sites[1]"));
        QVERIFY(!parsed.ok());
        QVERIFY2(parsed.error().startsWith(expected), qPrintable(parsed.error()));
    }

    // Issue 14 item 6: how long a remote validate or reload may run, per balancer.
    void balancerStepTimeoutRoundTripsAndIsChecked() {
        const QJsonObject balancer{{"host", "web1"},
                                   {"format", "nginx"},
                                   {"configPath", "/etc/nginx/conf.d/shop.conf"},
                                   {"validate", QJsonArray{"nginx", "-t"}},
                                   {"reload", QJsonArray{"nginx", "-s", "reload"}}};
        const auto defaulted = SiteBalancer::fromJson(balancer, QStringLiteral("b"));
        QVERIFY2(defaulted.ok(), qPrintable(defaulted.error()));
        QCOMPARE(defaulted->stepTimeout, 60);
        QVERIFY(!defaulted->toJson().contains(QStringLiteral("stepTimeout")));

        QJsonObject set = balancer;
        set.insert(QStringLiteral("stepTimeout"), 2);
        const auto parsed = SiteBalancer::fromJson(set, QStringLiteral("b"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.error()));
        QCOMPARE(parsed->stepTimeout, 2);
        QCOMPARE(parsed->toJson().value(QStringLiteral("stepTimeout")).toInt(), 2);
        QCOMPARE(SiteBalancer::fromJson(parsed->toJson(), QStringLiteral("b")).value(),
                 parsed.value());

        const auto refused = [&](const QJsonValue &value) {
            QJsonObject bad = balancer;
            bad.insert(QStringLiteral("stepTimeout"), value);
            return SiteBalancer::fromJson(bad, QStringLiteral("sites[2].balancer")).error();
        };
        QCOMPARE(refused(0), QStringLiteral("sites[2].balancer.stepTimeout: 0 is out of range "
                                            "(1..3600)"));
        QCOMPARE(refused(3601), QStringLiteral("sites[2].balancer.stepTimeout: 3601 is out of "
                                               "range (1..3600)"));
        QCOMPARE(refused(QStringLiteral("60")),
                 QStringLiteral("sites[2].balancer.stepTimeout: expected an integer, got a "
                                "string"));
        SiteBalancer programmatic = parsed.value();
        programmatic.stepTimeout = -5;
        QCOMPARE(programmatic.problems(QStringLiteral("balancer")),
                 QStringList{QStringLiteral("balancer.stepTimeout: -5 is out of range (1..3600)")});
    }

    void substitutesPortPlaceholder() {
        Site site;
        site.args = {QStringLiteral("--port"), QStringLiteral("{port}"),
                     QStringLiteral("--url=http://x:{port}/")};
        QCOMPARE(site.argsForPort(3005),
                 (QStringList{QStringLiteral("--port"), QStringLiteral("3005"),
                              QStringLiteral("--url=http://x:3005/")}));
    }

    // One health-URL builder for every check of a worker: IPv6 in brackets, "/" without a
    // health path, a relative path taken from the root.
    void healthUrlOfAWorker() {
        QCOMPARE(healthUrl(Endpoint{QStringLiteral("127.0.0.1"), 3001}, QStringLiteral("/health")),
                 QStringLiteral("http://127.0.0.1:3001/health"));
        QCOMPARE(healthUrl(Endpoint{QStringLiteral("::1"), 3001}, QStringLiteral("/health")),
                 QStringLiteral("http://[::1]:3001/health"));
        QCOMPARE(healthUrl(Endpoint{QStringLiteral("fd00::5"), 80}, QString()),
                 QStringLiteral("http://[fd00::5]:80/"));
        QCOMPARE(healthUrl(Endpoint{QStringLiteral("web1.lan"), 8080}, QStringLiteral("health")),
                 QStringLiteral("http://web1.lan:8080/health"));
        QCOMPARE(
            healthUrl(Endpoint{QStringLiteral("10.0.0.5"), 3000}, QStringLiteral("/status?full=1")),
            QStringLiteral("http://10.0.0.5:3000/status?full=1"));
        QCOMPARE(healthRequestPath(QString()), QStringLiteral("/"));
        QCOMPARE(healthRequestPath(QStringLiteral("ready")), QStringLiteral("/ready"));
        QCOMPARE(healthRequestPath(QStringLiteral("/ready")), QStringLiteral("/ready"));
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

    // Issue 13 item 9: any control character or quote in any field is refused, naming the
    // field, before it is saved (and so before anything renders it or sends it to a shell).
    void everyStringFieldRefusesControlCharactersAndQuotes_data() {
        QTest::addColumn<int>("field");
        QTest::addColumn<QString>("value");
        QTest::addColumn<bool>("refused");
        const QList<StringField> fields = stringFields();
        const QList<std::pair<const char *, QString>> controls = {
            {"LF", QStringLiteral("a\nb")},
            // PCRE's '$' also matches before a final newline: "^[a-z]+$" takes "shop\n".
            {"trailing LF", QStringLiteral("ab\n")},
            {"CR", QStringLiteral("a\rb")},
            {"NUL", QStringLiteral("a") + QChar(0) + QStringLiteral("b")},
            {"ESC", QStringLiteral("a\x1b[2Jb")},
            {"DEL", QStringLiteral("a\x7f")},
            {"NEL", QStringLiteral("a") + QChar(0x85) + QStringLiteral("b")},
            {"LS", QStringLiteral("a") + QChar(0x2028) + QStringLiteral("b")}};
        const QList<std::pair<const char *, QString>> quotes = {
            {"double quote", QStringLiteral("a\"b")},
            {"single quote", QStringLiteral("a'b")},
            {"backtick", QStringLiteral("a`b")}};
        for (qsizetype i = 0; i < fields.size(); ++i) {
            for (const auto &[name, value] : controls)
                QTest::addRow("%s %s", fields.at(i).path, name) << int(i) << value << true;
            for (const auto &[name, value] : quotes)
                QTest::addRow("%s %s", fields.at(i).path, name)
                    << int(i) << value << !fields.at(i).commandWord;
        }
    }
    void everyStringFieldRefusesControlCharactersAndQuotes() {
        QFETCH(int, field);
        QFETCH(QString, value);
        QFETCH(bool, refused);
        const QList<StringField> fields = stringFields();
        const StringField &target = fields.at(field);
        Site site = fullSite();
        {
            const auto valid = site.validate(QStringLiteral("sites[0]"));
            QVERIFY2(valid.ok(), qPrintable(valid.error()));
        }
        target.set(site, value);
        const auto checked = site.validate(QStringLiteral("sites[0]"));
        QCOMPARE(!checked.ok(), refused);
        if (!refused) return;
        QVERIFY2(checked.error().contains(QStringLiteral("sites[0].") + QLatin1String(target.path)),
                 qPrintable(checked.error()));
        // The error shows the value escaped: one line, nothing a terminal would interpret.
        for (const QChar c : checked.error())
            QVERIFY2(c.unicode() >= 0x20 && c.unicode() != 0x7f && c.unicode() != 0x85 &&
                         c.unicode() != 0x2028 && c.unicode() != 0x1b,
                     qPrintable(checked.error()));
        // And the same from a file.
        const auto loaded = Site::fromJson(site.toJson(), QStringLiteral("sites[0]"));
        QVERIFY(!loaded.ok());
    }

    void everyProblemIsReportedAtOnce() {
        Site site = fullSite();
        site.name = QStringLiteral("a b");
        site.healthPath = QStringLiteral("health");
        site.backends[0].address = QStringLiteral("fe80::1%x\"");
        const auto checked = site.validate(QStringLiteral("sites[0]"));
        QVERIFY(!checked.ok());
        const QStringList problems = site.problems(QStringLiteral("sites[0]"));
        QCOMPARE(problems.size(), 3);
        QVERIFY2(problems.at(0).startsWith(QStringLiteral("sites[0].name:")),
                 qPrintable(problems.at(0)));
        QVERIFY2(problems.at(1).startsWith(QStringLiteral("sites[0].healthPath:")),
                 qPrintable(problems.at(1)));
        QVERIFY2(problems.at(2).startsWith(QStringLiteral("sites[0].backends[0].address:")),
                 qPrintable(problems.at(2)));
        for (const QString &problem : problems)
            QVERIFY2(checked.error().contains(problem), qPrintable(checked.error()));
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
