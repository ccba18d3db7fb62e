#include "BalancerFixture.h"
#include "ResultVerify.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/ConfigImport.h"
#include "upstreams/HaproxyRuntime.h"
#include "upstreams/NginxLogFollower.h"
#include "upstreams/Renderers.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

#include <functional>
#include <tuple>

using namespace corral;

namespace {

struct ToolRun {
    int exitCode = -1;
    QString output; ///< stdout and stderr together
};

ToolRun runTool(const QString &program, const QStringList &args,
                const QProcessEnvironment &env = QProcessEnvironment::systemEnvironment()) {
    QProcess process;
    process.setProcessEnvironment(env);
    process.setProcessChannelMode(QProcess::MergedChannels);
    process.start(program, args);
    if (!process.waitForFinished(30000)) {
        process.kill();
        process.waitForFinished(5000);
        return {-1, QStringLiteral("%1 did not finish").arg(program)};
    }
    return {process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
            QString::fromLocal8Bit(process.readAll())};
}

bool writeFile(const QString &path, const QString &text) {
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
    return file.write(text.toUtf8()) == text.toUtf8().size();
}

Site baseSite() {
    Site site;
    site.name = QStringLiteral("chat.example-1");
    site.serverNames = {QStringLiteral("chat.example.com"), QStringLiteral("*.chat.example.com")};
    site.backends = {Backend{QStringLiteral("127.0.0.1"), 3000},
                     Backend{QStringLiteral("localhost"), 3001}};
    return site;
}

// One GET over a fresh connection; returns the body (the demo worker answers JSON).
QByteArray httpGet(quint16 port, const QByteArray &path = "/") {
    QTcpSocket socket;
    socket.connectToHost(QHostAddress::LocalHost, port);
    if (!socket.waitForConnected(5000)) return {};
    socket.write("GET " + path +
                 " HTTP/1.1\r\nHost: chat.example.com\r\nConnection: close\r\n\r\n");
    QByteArray response;
    const QDeadlineTimer deadline(10000);
    while (socket.state() == QAbstractSocket::ConnectedState && !deadline.hasExpired()) {
        socket.waitForReadyRead(int(qMax<qint64>(1, deadline.remainingTime())));
        response += socket.readAll();
    }
    response += socket.readAll();
    const qsizetype split = response.indexOf("\r\n\r\n");
    return split < 0 ? QByteArray() : response.mid(split + 4);
}

// True when every occurrence of `value` in `config` sits inside a double-quoted token: an odd
// number of unescaped '"' before it on its line, and nothing in `value` that could end the
// token or the line.
bool appearsOnlyQuoted(const QString &config, const QString &value) {
    if (value.contains(QLatin1Char('"')) || value.contains(QLatin1Char('\\')) ||
        value.contains(QLatin1Char('\n')) || value.contains(QLatin1Char('\r')))
        return !config.contains(value);
    for (qsizetype at = config.indexOf(value); at >= 0; at = config.indexOf(value, at + 1)) {
        const qsizetype lineStart = config.lastIndexOf(QLatin1Char('\n'), at) + 1;
        int quotes = 0;
        for (qsizetype i = lineStart; i < at; ++i)
            if (config.at(i) == QLatin1Char('"') &&
                (i == lineStart || config.at(i - 1) != QLatin1Char('\\')))
                ++quotes;
        if (quotes % 2 == 0) return false;
    }
    return true;
}

} // namespace

class TestRenderers : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_cert;
    QString m_key;
    bool m_haveApache = false;
    int m_counter = 0;

    QString freshDir() {
        const QString path = m_dir.filePath(QStringLiteral("run%1").arg(++m_counter));
        QDir().mkpath(path + QStringLiteral("/logs"));
        return path;
    }

    RenderOptions optionsIn(const QString &dir) const {
        RenderOptions options;
        options.logDirectory = dir + QStringLiteral("/logs");
        options.runtimeDirectory = dir;
        return options;
    }

    // `config` as the site file of a balancer prefix of its own (tests/helpers/BalancerProcess:
    // its main config, temp paths, pid and logs all inside the prefix, so a validation as
    // root touches nothing outside it), checked by the real tool.
    static ToolRun validated(const test::BalancerProcess &balancer, const QString &config) {
        if (!writeFile(balancer.siteFile(), config))
            return {-1, QStringLiteral("cannot write ") + balancer.siteFile()};
        const auto result = balancer.validate();
        return result ? ToolRun{0, result.value()} : ToolRun{1, result.error()};
    }

    ToolRun nginxTest(const QString &config) {
        test::NginxInstance nginx;
        QString error;
        if (!nginx.prepare(&error)) return {-1, error};
        return validated(nginx, config);
    }

    ToolRun haproxyTest(const QString &config) {
        return validated(test::HaproxyInstance(), config);
    }

    // apache2 -t against a throwaway ServerRoot: nothing in /etc/apache2 is read.
    ToolRun apacheTest(const QString &config) {
        test::ApacheInstance apache;
        QString error;
        if (!apache.prepare(&error)) return {-1, error};
        return validated(apache, config);
    }

    // Renders in all three formats and runs the real validators.
    void checkAllFormats(const Site &site, const RenderOptions &base, bool nginxRefuses = false) {
        {
            const QString dir = freshDir();
            RenderOptions options = base;
            options.logDirectory = dir + QStringLiteral("/logs");
            auto config = renderNginx(site, options);
            if (nginxRefuses) {
                QVERIFY(!config);
                QVERIFY2(config.error().contains(QStringLiteral("backup")),
                         qPrintable(config.error()));
            } else {
                QVERIFY2(config, qPrintable(config.error()));
                const ToolRun run = nginxTest(config.value());
                QVERIFY2(run.exitCode == 0,
                         qPrintable(run.output + QLatin1Char('\n') + config.value()));
                QVERIFY2(!run.output.contains(QStringLiteral("[warn]")), qPrintable(run.output));
            }
        }
        {
            const QString dir = freshDir();
            RenderOptions options = base;
            options.runtimeDirectory = dir;
            auto config = renderHaproxy(site, options);
            QVERIFY2(config, qPrintable(config.error()));
            const ToolRun run = haproxyTest(config.value());
            QVERIFY2(run.exitCode == 0,
                     qPrintable(run.output + QLatin1Char('\n') + config.value()));
            QVERIFY2(!run.output.contains(QStringLiteral("WARNING")),
                     qPrintable(run.output + config.value()));
        }
        if (m_haveApache) {
            const QString dir = freshDir();
            RenderOptions options = base;
            options.logDirectory = dir + QStringLiteral("/logs");
            auto config = renderApache(site, options);
            QVERIFY2(config, qPrintable(config.error()));
            const ToolRun run = apacheTest(config.value());
            QVERIFY2(run.exitCode == 0 && run.output.contains(QStringLiteral("Syntax OK")),
                     qPrintable(run.output + QLatin1Char('\n') + config.value()));
        }
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        if (QStandardPaths::findExecutable(QStringLiteral("nginx")).isEmpty() &&
            !QFile::exists(QStringLiteral("/usr/sbin/nginx")))
            QSKIP("nginx is not installed (installer/install-deps.sh installs it)");
        if (QStandardPaths::findExecutable(QStringLiteral("haproxy")).isEmpty() &&
            !QFile::exists(QStringLiteral("/usr/sbin/haproxy")))
            QSKIP("haproxy is not installed (installer/install-deps.sh installs it)");
        m_haveApache = QFile::exists(QStringLiteral("/usr/sbin/apache2ctl"));
        if (!m_haveApache)
            qWarning("apache2 is not installed: Apache configs are rendered but not validated "
                     "(installer/install-deps.sh installs it)");
        // HAProxy reads the key from CERT.key when the certificate file has none, so this
        // layout works for all three tools.
        m_cert = m_dir.filePath(QStringLiteral("tls/cert.pem"));
        m_key = m_cert + QStringLiteral(".key");
        QDir().mkpath(m_dir.filePath(QStringLiteral("tls")));
        const ToolRun openssl =
            runTool(QStringLiteral("openssl"),
                    {QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                     QStringLiteral("rsa:2048"), QStringLiteral("-nodes"), QStringLiteral("-days"),
                     QStringLiteral("1"), QStringLiteral("-subj"), QStringLiteral("/CN=localhost"),
                     QStringLiteral("-keyout"), m_key, QStringLiteral("-out"), m_cert});
        QVERIFY2(openssl.exitCode == 0, qPrintable(openssl.output));
    }

    void validatedByRealTools_data() {
        QTest::addColumn<QString>("policy");
        QTest::addColumn<bool>("weights");
        QTest::addColumn<bool>("backupAndDown");
        QTest::addColumn<bool>("staticRoot");
        QTest::addColumn<bool>("tls");
        QTest::addColumn<QString>("health");
        QTest::addColumn<QString>("stickyCookie");
        const QString none;
        for (const QString &policy : {QStringLiteral("round-robin"), QStringLiteral("weighted"),
                                      QStringLiteral("least-conn"), QStringLiteral("ip-hash"),
                                      QStringLiteral("sticky-cookie")}) {
            const QByteArray p = policy.toLatin1();
            QTest::newRow(QByteArray(p + " plain").constData())
                << policy << false << false << false << false << none << none;
            QTest::newRow(QByteArray(p + " weights, static").constData())
                << policy << true << false << true << false << none << none;
            QTest::newRow(QByteArray(p + " backup/down, health").constData())
                << policy << true << true << false << false << QStringLiteral("/health") << none;
            QTest::newRow(QByteArray(p + " tls, static, health").constData())
                << policy << false << false << true << true << QStringLiteral("/health?full=1")
                << none;
        }
        QTest::newRow("sticky-cookie hash cookie")
            << QStringLiteral("sticky-cookie") << false << false << true << true << none
            << QStringLiteral("connect_sid");
    }

    void validatedByRealTools() {
        QFETCH(QString, policy);
        QFETCH(bool, weights);
        QFETCH(bool, backupAndDown);
        QFETCH(bool, staticRoot);
        QFETCH(bool, tls);
        QFETCH(QString, health);
        QFETCH(QString, stickyCookie);
        Site site = baseSite();
        site.policy = *policyFromName(policy);
        site.healthPath = health;
        if (weights) {
            site.backends[0].weight = 3;
            site.backends[1].weight = 2;
        }
        if (backupAndDown) {
            site.backends.append(Backend{QStringLiteral("127.0.0.2"), 3002, 1, true, false});
            site.backends.append(Backend{QStringLiteral("::1"), 3003, 1, false, true});
        }
        if (staticRoot) {
            site.staticRoot = m_dir.filePath(QStringLiteral("public"));
            QDir().mkpath(site.staticRoot);
        }
        RenderOptions options;
        options.stickyCookie = stickyCookie;
        if (tls) {
            options.tlsCertificate = m_cert;
            options.tlsKey = m_key;
        }
        // nginx cannot combine backup servers with ip_hash/hash; the renderer says so.
        const bool hashing =
            site.policy == BalancingPolicy::IpHash || site.policy == BalancingPolicy::StickyCookie;
        checkAllFormats(site, options, backupAndDown && hashing);
    }

    void generatedConfigsHaveTheSeedsDirectives() {
        Site site = baseSite();
        site.staticRoot = QStringLiteral("/srv/chat/public");
        site.healthPath = QStringLiteral("/health");
        site.policy = BalancingPolicy::StickyCookie;
        RenderOptions options;
        options.tlsCertificate = QStringLiteral("/etc/ssl/chat.pem");
        options.tlsKey = QStringLiteral("/etc/ssl/chat.pem.key");
        const QString nginx = renderNginx(site, options).value();
        for (const char *needle :
             {"upstream corral-chat.example-1 {", "ip_hash;", "keepalive 16;",
              "server 127.0.0.1:3000 max_fails=3 fail_timeout=10s;", "listen 443 ssl;",
              "ssl_protocols TLSv1.2 TLSv1.3;", "return 301 https://$host$request_uri;",
              "try_files $uri @corral-chat.example-1;", "proxy_set_header Upgrade $http_upgrade;",
              "proxy_set_header X-Forwarded-Proto https;", "X-Real-IP $remote_addr",
              "proxy_next_upstream error timeout invalid_header http_502 http_503 http_504;",
              "client_max_body_size 32m;", "$upstream_addr", "$upstream_status",
              "$upstream_response_time", "$request_time", "gzip_types text/css"})
            QVERIFY2(nginx.contains(QLatin1String(needle)), needle);
        const QString haproxy = renderHaproxy(site, options).value();
        for (const char *needle :
             {"balance roundrobin", "cookie SERVERID insert indirect nocache", "cookie s1",
              "option httpchk GET /health", "timeout tunnel 1h", "stats socket",
              "bind :443 ssl crt /etc/ssl/chat.pem", "frontend corral-chat.example-1",
              "backend corral-chat.example-1", "defaults"})
            QVERIFY2(haproxy.contains(QLatin1String(needle)), needle);
        const QString apache = renderApache(site, options).value();
        for (const char *needle :
             {"SSLEngine on", "stickysession=ROUTEID", "balancer://corral-chat.example-1-ws",
              "BalancerMember \"ws://127.0.0.1:3000\" route=1", "ServerName chat.example.com",
              "ServerAlias *.chat.example.com", "RewriteCond %{HTTP:Upgrade} =websocket [NC]"})
            QVERIFY2(apache.contains(QLatin1String(needle)), needle);

        options.stickyCookie = QStringLiteral("connect_sid");
        QVERIFY(renderNginx(site, options)
                    ->contains(QStringLiteral("hash $cookie_connect_sid consistent;")));
        site.policy = BalancingPolicy::LeastConn;
        QVERIFY(renderNginx(site, options)->contains(QStringLiteral("least_conn;\n    keepalive")));
        QVERIFY(renderHaproxy(site, options)->contains(QStringLiteral("balance leastconn")));
        QVERIFY(renderApache(site, options)->contains(QStringLiteral("lbmethod=bybusyness")));
    }

    void hostileInputIsRejected_data() {
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("expected");
        const QStringList hostile = {QStringLiteral("example.com; include /etc/passwd"),
                                     QStringLiteral("}"),
                                     QStringLiteral("a.com\nserver { }"),
                                     QStringLiteral("\"quoted\""),
                                     QStringLiteral("'x'"),
                                     QStringLiteral("$host"),
                                     QStringLiteral("a b"),
                                     QStringLiteral("x#comment"),
                                     QStringLiteral("~^(.*)$")};
        for (qsizetype i = 0; i < hostile.size(); ++i) {
            QTest::newRow(qPrintable(QStringLiteral("serverName %1").arg(i)))
                << QStringLiteral("serverName") << hostile.at(i)
                << QStringLiteral("serverNames[1]");
            QTest::newRow(qPrintable(QStringLiteral("staticRoot %1").arg(i)))
                << QStringLiteral("staticRoot") << QStringLiteral("/srv/") + hostile.at(i)
                << QStringLiteral("staticRoot");
            QTest::newRow(qPrintable(QStringLiteral("healthPath %1").arg(i)))
                << QStringLiteral("healthPath") << QStringLiteral("/") + hostile.at(i)
                << QStringLiteral("healthPath");
            QTest::newRow(qPrintable(QStringLiteral("tlsCertificate %1").arg(i)))
                << QStringLiteral("tlsCertificate") << QStringLiteral("/etc/") + hostile.at(i)
                << QStringLiteral("tlsCertificate");
            QTest::newRow(qPrintable(QStringLiteral("logDirectory %1").arg(i)))
                << QStringLiteral("logDirectory") << QStringLiteral("/var/") + hostile.at(i)
                << QStringLiteral("logDirectory");
        }
        QTest::newRow("relative static root")
            << QStringLiteral("staticRoot") << QStringLiteral("public")
            << QStringLiteral("staticRoot");
        QTest::newRow("sticky cookie") << QStringLiteral("stickyCookie") << QStringLiteral("a;b")
                                       << QStringLiteral("stickyCookie");
        QTest::newRow("body size")
            << QStringLiteral("clientMaxBodySize") << QStringLiteral("1m; include x")
            << QStringLiteral("clientMaxBodySize");
        QTest::newRow("listen address")
            << QStringLiteral("listenAddress") << QStringLiteral("0.0.0.0;")
            << QStringLiteral("listen address");
    }

    void hostileInputIsRejected() {
        QFETCH(QString, field);
        QFETCH(QString, value);
        QFETCH(QString, expected);
        Site site = baseSite();
        RenderOptions options;
        if (field == QLatin1String("serverName")) site.serverNames[1] = value;
        if (field == QLatin1String("staticRoot")) site.staticRoot = value;
        if (field == QLatin1String("healthPath")) site.healthPath = value;
        if (field == QLatin1String("tlsCertificate")) {
            options.tlsCertificate = value;
            options.tlsKey = m_key;
        }
        if (field == QLatin1String("logDirectory")) options.logDirectory = value;
        if (field == QLatin1String("stickyCookie")) options.stickyCookie = value;
        if (field == QLatin1String("clientMaxBodySize")) options.clientMaxBodySize = value;
        if (field == QLatin1String("listenAddress")) options.listenAddress = value;
        for (RenderFormat format :
             {RenderFormat::Nginx, RenderFormat::Haproxy, RenderFormat::Apache}) {
            auto result = render(format, site, options);
            QVERIFY2(!result, qPrintable(value));
            QVERIFY2(result.error().contains(expected), qPrintable(result.error()));
            QVERIFY2(!result.error().contains(QLatin1Char('\n')), qPrintable(result.error()));
        }
    }

    void inconsistentSitesAreRefused() {
        Site site = baseSite();
        site.backends[0].weight = 300;
        QVERIFY(renderNginx(site));
        QVERIFY(renderHaproxy(site).error().contains(QStringLiteral("backends[0].weight")));
        QVERIFY(renderApache(site).error().contains(QStringLiteral("backends[0].weight")));

        site = baseSite();
        RenderOptions options;
        options.tlsCertificate = QStringLiteral("/etc/ssl/a.pem");
        options.tlsKey = QStringLiteral("/etc/ssl/private/a.key");
        QVERIFY(renderNginx(site, options));
        QVERIFY(renderHaproxy(site, options).error().contains(QStringLiteral("tlsKey")));
        options.tlsKey.clear();
        QVERIFY(renderNginx(site, options).error().contains(QStringLiteral("tls")));

        site.backends.clear();
        site.workers = 0;
        QVERIFY(renderNginx(site).error().contains(QStringLiteral("backends")));
        site.workers = 2;
        site.basePort = 4100;
        QVERIFY(renderNginx(site)->contains(QStringLiteral("server 127.0.0.1:4101 ")));
        site.serverNames = {QStringLiteral("*.wild.example.com")};
        QVERIFY(renderApache(site).error().contains(QStringLiteral("serverNames[0]")));
    }

    // A real nginx and a real HAProxy, each with the rendered config, in front of two demo
    // workers on loopback: requests alternate over both backends.
    void realBalancersSpreadRequests() {
        test::DemoWorkers workers(2);
        QString error;
        QVERIFY2(workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        const quint16 workerPorts[2] = {workers.port(0), workers.port(1)};

        Site site = baseSite();
        site.healthPath = QStringLiteral("/health");
        site.backends = {Backend{QStringLiteral("127.0.0.1"), workerPorts[0]},
                         Backend{QStringLiteral("127.0.0.1"), workerPorts[1]}};
        site.staticRoot = m_dir.filePath(QStringLiteral("static"));
        QDir().mkpath(site.staticRoot);
        QVERIFY(
            writeFile(site.staticRoot + QStringLiteral("/hello.txt"), QStringLiteral("static!")));

        const auto spreadsEvenly = [&](quint16 port) {
            constexpr int Requests = 20;
            QMap<int, int> perBackend;
            for (int i = 0; i < Requests; ++i) {
                const QJsonObject reply = QJsonDocument::fromJson(httpGet(port)).object();
                perBackend[reply.value(QStringLiteral("port")).toInt()] += 1;
            }
            QVERIFY2(perBackend.size() == 2,
                     qPrintable(QStringLiteral("%1").arg(perBackend.size())));
            QCOMPARE(perBackend.value(workerPorts[0]), Requests / 2);
            QCOMPARE(perBackend.value(workerPorts[1]), Requests / 2);
        };

        {
            // nginx: the rendered file goes into its conf.d, then a reload.
            test::NginxInstance nginx(site.name);
            QVERIFY2(nginx.start(&error), qPrintable(error));
            RenderOptions options;
            options.logDirectory = nginx.logDirectory();
            options.listenAddress = QStringLiteral("127.0.0.1");
            options.httpPort = nginx.httpPort();
            auto config = renderNginx(site, options);
            QVERIFY2(config, qPrintable(config.error()));
            QVERIFY(writeFile(nginx.siteFile(), config.value()));
            QVERIFY_RESULT(nginx.validate());
            QVERIFY_RESULT(nginx.reload());
            QTRY_VERIFY_WITH_TIMEOUT(!httpGet(nginx.httpPort()).isEmpty(), 10000);
            spreadsEvenly(nginx.httpPort());
            if (QTest::currentTestFailed()) return;
            // Static files come from the root; the access log names the upstream.
            QCOMPARE(httpGet(nginx.httpPort(), "/hello.txt"), QByteArray("static!"));
            QFile log(nginx.accessLog());
            QVERIFY(log.open(QIODevice::ReadOnly));
            const QByteArray text = log.readAll();
            QVERIFY2(text.contains(
                         QByteArray("upstream=127.0.0.1:" + QByteArray::number(workerPorts[0]))),
                     text.constData());
            QVERIFY(text.contains("upstream_status=200"));
        }
        {
            // HAProxy starts from the rendered file (its whole config), stats socket included.
            test::HaproxyInstance haproxy(site.name);
            QVERIFY2(haproxy.start(site, &error), qPrintable(error));
            spreadsEvenly(haproxy.httpPort());
            if (QTest::currentTestFailed()) return;
            QVERIFY(QFile::exists(haproxy.statsSocket()));
        }
    }

    // Issue 13 item 9, as a property: every field that can reach a config, set to each hostile
    // string, is either refused with an error naming the field, or appears only inside a
    // correctly quoted token of a config the real tool accepts. Sites refused at render time
    // are refused by Site::validate too, so `site add`/`update` and loading the inventory
    // refuse them before they are saved.
    void everyFieldIsRefusedOrQuoted() {
        const QString bigValue(10 * 1024, QLatin1Char('a'));
        const QList<std::pair<QString, QString>> hostile = {
            {QStringLiteral("newline"), QStringLiteral("a\n}\nserver {")},
            {QStringLiteral("CR"), QStringLiteral("a\rb")},
            {QStringLiteral("semicolon"), QStringLiteral("a;b")},
            {QStringLiteral("open brace"), QStringLiteral("a{b")},
            {QStringLiteral("close brace"), QStringLiteral("a}b")},
            {QStringLiteral("double quote"), QStringLiteral("a\"b")},
            {QStringLiteral("single quote"), QStringLiteral("a'b")},
            {QStringLiteral("hash"), QStringLiteral("a#b")},
            {QStringLiteral("command substitution"), QStringLiteral("$(touch /tmp/corral-pwned)")},
            {QStringLiteral("backticks"), QStringLiteral("`touch /tmp/corral-pwned`")},
            {QStringLiteral("NUL"), QStringLiteral("a") + QChar(0) + QStringLiteral("b")},
            {QStringLiteral("10 kB"), bigValue},
            {QStringLiteral("zone id repro"),
             QStringLiteral("fe80::1%x]\" route=9\n </Proxy> RewriteRule ^/pwned "
                            "http://evil.example/ [R=302]")},
            {QStringLiteral("valid zone id"), QStringLiteral("fe80::1%lo")},
        };
        using Setter = std::function<void(Site &, RenderOptions &, const QString &)>;
        struct Field {
            QString name;   ///< what the error must name
            bool siteField; ///< Site::validate must refuse it too
            Setter set;
        };
        const QString staticRoot = m_dir.filePath(QStringLiteral("public"));
        QDir().mkpath(staticRoot);
        const QList<Field> fields = {
            {QStringLiteral("name"), true,
             [](Site &s, RenderOptions &, const QString &v) { s.name = v; }},
            {QStringLiteral("serverNames[1]"), true,
             [](Site &s, RenderOptions &, const QString &v) { s.serverNames[1] = v; }},
            {QStringLiteral("staticRoot"), true,
             [&](Site &s, RenderOptions &, const QString &v) {
                 s.staticRoot = staticRoot + QLatin1Char('/') + v;
             }},
            {QStringLiteral("healthPath"), true,
             [](Site &s, RenderOptions &, const QString &v) {
                 s.healthPath = QLatin1Char('/') + v;
             }},
            {QStringLiteral("backends[0].address"), true,
             [](Site &s, RenderOptions &, const QString &v) { s.backends[0].address = v; }},
            {QStringLiteral("command"), true,
             [](Site &s, RenderOptions &, const QString &v) { s.command = v; }},
            {QStringLiteral("args[0]"), true,
             [](Site &s, RenderOptions &, const QString &v) { s.args = {v}; }},
            {QStringLiteral("environment.APP"), true,
             [](Site &s, RenderOptions &, const QString &v) {
                 s.environment = {{QStringLiteral("APP"), v}};
             }},
            {QStringLiteral("workingDirectory"), true,
             [](Site &s, RenderOptions &, const QString &v) {
                 s.workingDirectory = QLatin1Char('/') + v;
             }},
            {QStringLiteral("listen"), true,
             [](Site &s, RenderOptions &, const QString &v) {
                 s.listen = QLatin1Char('[') + v + QStringLiteral("]:8080");
             }},
            {QStringLiteral("listen address"), false,
             [](Site &, RenderOptions &o, const QString &v) { o.listenAddress = v; }},
            {QStringLiteral("tlsCertificate"), false,
             [](Site &, RenderOptions &o, const QString &v) {
                 o.tlsCertificate = QStringLiteral("/etc/ssl/") + v;
                 o.tlsKey = o.tlsCertificate + QStringLiteral(".key");
             }},
            {QStringLiteral("tlsKey"), false,
             [](Site &, RenderOptions &o, const QString &v) {
                 o.tlsKey = QStringLiteral("/etc/ssl/") + v;
             }},
            {QStringLiteral("logDirectory"), false,
             [](Site &, RenderOptions &o, const QString &v) {
                 o.logDirectory = o.logDirectory + QLatin1Char('/') + v;
             }},
            {QStringLiteral("runtimeDirectory"), false,
             [](Site &, RenderOptions &o, const QString &v) {
                 o.runtimeDirectory = o.runtimeDirectory + QLatin1Char('/') + v;
             }},
            {QStringLiteral("clientMaxBodySize"), false,
             [](Site &, RenderOptions &o, const QString &v) { o.clientMaxBodySize = v; }},
            {QStringLiteral("stickyCookie"), false,
             [](Site &, RenderOptions &o, const QString &v) { o.stickyCookie = v; }},
        };

        const QString dir = freshDir();
        const auto baseOptions = [&] {
            RenderOptions options = optionsIn(dir);
            options.listenAddress = QStringLiteral("127.0.0.1");
            options.tlsCertificate = m_cert;
            options.tlsKey = m_key;
            options.stickyCookie = QStringLiteral("sid");
            return options;
        };
        // Accepted configs, deduplicated (most hostile values in command fields never reach a
        // config, so they render the same file): one validator run per distinct config.
        QMap<RenderFormat, QMap<QString, QString>> accepted; // config -> the case it came from
        int refused = 0;
        for (const Field &field : fields) {
            for (const auto &[label, value] : hostile) {
                Site site = baseSite();
                site.policy = BalancingPolicy::StickyCookie;
                site.healthPath = QStringLiteral("/health");
                site.staticRoot = staticRoot;
                site.command = QStringLiteral("/usr/bin/node");
                RenderOptions options = baseOptions();
                field.set(site, options, value);
                const QString what = field.name + QStringLiteral(" = ") + label;
                if (field.siteField && !site.validate()) {
                    // Refused before it is ever saved: the error names the field.
                    QVERIFY2(site.validate().error().contains(field.name),
                             qPrintable(what + QStringLiteral(": ") + site.validate().error()));
                }
                for (const RenderFormat format :
                     {RenderFormat::Nginx, RenderFormat::Haproxy, RenderFormat::Apache}) {
                    const auto config = render(format, site, options);
                    if (!config) {
                        ++refused;
                        QVERIFY2(config.error().contains(field.name),
                                 qPrintable(what + QStringLiteral(": ") + config.error()));
                        QVERIFY2(!config.error().contains(QLatin1Char('\n')) &&
                                     !config.error().contains(QChar(0)),
                                 qPrintable(what));
                        // Anything the renderer refuses because of a site field is refused
                        // at add/update time too.
                        // (A valid zone id is a per-format limit: nginx and HAProxy cannot
                        // use one, Apache can.)
                        if (field.siteField && label != QLatin1String("valid zone id"))
                            QVERIFY2(!site.validate() || !config.error().contains(field.name),
                                     qPrintable(what +
                                                QStringLiteral(" passes Site::validate "
                                                               "but not render: ") +
                                                config.error()));
                        continue;
                    }
                    QVERIFY2(appearsOnlyQuoted(config.value(), value),
                             qPrintable(what + QStringLiteral(" reached the config unquoted:\n") +
                                        config.value()));
                    accepted[format].insert(config.value(), what);
                }
            }
        }
        QVERIFY(refused > 0);
        for (auto it = accepted.cbegin(); it != accepted.cend(); ++it) {
            for (auto config = it.value().cbegin(); config != it.value().cend(); ++config) {
                ToolRun run;
                if (it.key() == RenderFormat::Nginx) {
                    run = nginxTest(config.key());
                } else if (it.key() == RenderFormat::Haproxy) {
                    run = haproxyTest(config.key());
                } else {
                    if (!m_haveApache) continue;
                    run = apacheTest(config.key());
                }
                QVERIFY2(run.exitCode == 0, qPrintable(config.value() + QLatin1Char('\n') +
                                                       run.output + config.key()));
            }
        }
    }

    // Issue 13 item 14: every bad render option in one error, not one per run.
    void everyBadOptionIsReportedAtOnce() {
        RenderOptions options;
        options.logDirectory = QStringLiteral("/var/log/a b");
        options.stickyCookie = QStringLiteral("a;b");
        options.clientMaxBodySize = QStringLiteral("lots");
        const auto rendered = renderNginx(baseSite(), options);
        QVERIFY(!rendered);
        for (const char *field : {"logDirectory", "stickyCookie", "clientMaxBodySize"})
            QVERIFY2(rendered.error().contains(QLatin1String(field)), qPrintable(rendered.error()));
    }

    // What `corralctl import` reads from a host's config is as untrusted as the inventory: a
    // zone id smuggling a quote is refused, and the remote text in errors cannot carry
    // control characters to the terminal.
    void importedStringsAreCheckedAndEscaped() {
        const auto nginx = parseNginxUpstreams(
            QStringLiteral("upstream a {\n    server '[fe80::1%x\" route=9\n</Proxy>]:80';\n}\n"));
        QVERIFY(!nginx);
        QVERIFY2(nginx.error().contains(QStringLiteral("zone id")), qPrintable(nginx.error()));
        QVERIFY2(!nginx.error().contains(QLatin1Char('\n')), qPrintable(nginx.error()));
        const auto haproxy = parseHaproxyBackends(
            QStringLiteral("backend b\n    server s1 \"fe80::1%eth0\x1b[2J\":80 check\n"));
        QVERIFY(!haproxy);
        QVERIFY2(!haproxy.error().contains(QChar(0x1b)), qPrintable(haproxy.error()));
        QVERIFY2(haproxy.error().contains(QStringLiteral("\\x1b")), qPrintable(haproxy.error()));
        const auto valid = parseHaproxyBackends(
            QStringLiteral("backend b\n    server s1 [fe80::1%eth0]:80 check\n"));
        QVERIFY2(valid, qPrintable(valid.error()));
        QCOMPARE(valid->first().servers.first().backend.address, QStringLiteral("fe80::1%eth0"));
    }

    // corralctl render as a real process: exit codes and output the real tools accept.
    void corralctlRender() {
        const QString dir = freshDir();
        const QString inventory = dir + QStringLiteral("/inventory.json");
        QJsonObject site = baseSite().toJson();
        site.insert(QStringLiteral("staticRoot"), dir);
        const QJsonObject root{{QStringLiteral("version"), 1},
                               {QStringLiteral("sites"), QJsonArray{site}}};
        QVERIFY(writeFile(inventory, QString::fromUtf8(QJsonDocument(root).toJson())));
        const auto ctl = [&](QStringList args) {
            args.prepend(inventory);
            args.prepend(QStringLiteral("--inventory"));
            QProcess process;
            process.start(QStringLiteral(CORRALCTL_PATH), args);
            [&] { QVERIFY(process.waitForFinished(30000)); }();
            return std::make_tuple(process.exitCode(),
                                   QString::fromUtf8(process.readAllStandardOutput()),
                                   QString::fromUtf8(process.readAllStandardError()));
        };
        const QString name = baseSite().name;
        const QStringList common = {QStringLiteral("render"),    name,
                                    QStringLiteral("--log-dir"), dir + QStringLiteral("/logs"),
                                    QStringLiteral("--run-dir"), dir};
        {
            auto [code, out, err] =
                ctl(common + QStringList{QStringLiteral("--format"), QStringLiteral("nginx"),
                                         QStringLiteral("--tls-cert"), m_cert,
                                         QStringLiteral("--tls-key"), m_key});
            QVERIFY2(code == 0, qPrintable(err));
            const ToolRun run = nginxTest(out);
            QVERIFY2(run.exitCode == 0, qPrintable(run.output + out));
        }
        {
            auto [code, out, err] = ctl(common + QStringList{QStringLiteral("--format=haproxy")});
            QVERIFY2(code == 0, qPrintable(err));
            const ToolRun run = haproxyTest(out);
            QVERIFY2(run.exitCode == 0, qPrintable(run.output + out));
        }
        {
            auto [code, out, err] =
                ctl(common + QStringList{QStringLiteral("--format"), QStringLiteral("apache")});
            QVERIFY2(code == 0, qPrintable(err));
            QVERIFY(out.contains(QStringLiteral("<VirtualHost *:80>")));
            if (m_haveApache) {
                const ToolRun run = apacheTest(out);
                QVERIFY2(run.exitCode == 0, qPrintable(run.output + out));
            }
        }
        {
            auto [code, out, err] = ctl({QStringLiteral("render"), name, QStringLiteral("--format"),
                                         QStringLiteral("caddy")});
            QCOMPARE(code, 1); // a bad value, not a malformed command line
            QVERIFY(err.contains(QStringLiteral("caddy")));
        }
        {
            auto [code, out, err] = ctl({QStringLiteral("render"), name});
            QCOMPARE(code, 2);
        }
        {
            auto [code, out, err] =
                ctl({QStringLiteral("render"), name, QStringLiteral("--format=nginx"),
                     QStringLiteral("--tls-cert"), m_cert});
            QCOMPARE(code, 2);
        }
        {
            auto [code, out, err] = ctl({QStringLiteral("render"), QStringLiteral("nosuchsite"),
                                         QStringLiteral("--format=nginx")});
            QCOMPARE(code, 1);
            QVERIFY(err.contains(QStringLiteral("nosuchsite")));
            QVERIFY(out.isEmpty());
        }
        {
            // Hostile values in the inventory are refused with the field named, exit 1.
            site.insert(QStringLiteral("serverNames"),
                        QJsonArray{QStringLiteral("example.com; include /etc/passwd")});
            const QJsonObject hostile{{QStringLiteral("version"), 1},
                                      {QStringLiteral("sites"), QJsonArray{site}}};
            QVERIFY(writeFile(inventory, QString::fromUtf8(QJsonDocument(hostile).toJson())));
            auto [code, out, err] =
                ctl({QStringLiteral("render"), name, QStringLiteral("--format=nginx")});
            QCOMPARE(code, 1);
            QVERIFY2(err.contains(QStringLiteral("serverNames[0]")), qPrintable(err));
            QVERIFY(out.isEmpty());
        }
    }

    // The names and paths of BalancerConventions are the ones the renderers write, so the
    // steps and the monitor that look things up by them find what the configs define.
    void conventionsAreWhatTheConfigsHold() {
        Site site = baseSite();
        site.backends.append(Backend{QStringLiteral("::1"), 3002});
        const QString name = site.name;
        RenderOptions options;
        options.logDirectory = QStringLiteral("/srv/logs");
        options.runtimeDirectory = QStringLiteral("/srv/run");
        QCOMPARE(balancerBlockName(name), QStringLiteral("corral-chat.example-1"));

        auto nginx = renderNginx(site, options);
        QVERIFY_RESULT(nginx);
        QVERIFY(nginx->contains(QStringLiteral("upstream %1 {").arg(balancerBlockName(name))));
        QVERIFY(nginx->contains(
            QStringLiteral("access_log %1 ").arg(accessLogPath(options.logDirectory, name))));
        QVERIFY(nginx->contains(
            QStringLiteral("error_log %1;").arg(errorLogPath(options.logDirectory, name))));

        auto haproxy = renderHaproxy(site, options);
        QVERIFY_RESULT(haproxy);
        QVERIFY(haproxy->contains(QStringLiteral("backend %1\n").arg(balancerBlockName(name))));
        QVERIFY(haproxy->contains(QStringLiteral("stats socket %1 ")
                                      .arg(haproxyStatsSocket(options.runtimeDirectory, name))));
        QCOMPARE(haproxyStatsSocket(options.runtimeDirectory, name),
                 QStringLiteral("/srv/run/corral-chat.example-1.sock"));
        for (const Backend &backend : site.backends)
            QVERIFY2(haproxy->contains(QStringLiteral("    server %1 %2 check")
                                           .arg(haproxyServerName(backend), backend.key())),
                     qPrintable(backend.key()));
        QCOMPARE(haproxyServerName(site.backends.last()), QStringLiteral("::1:3002"));

        auto apache = renderApache(site, options);
        QVERIFY_RESULT(apache);
        QVERIFY(apache->contains(QStringLiteral("balancer://%1").arg(balancerBlockName(name))));
        QVERIFY(apache->contains(
            QStringLiteral("CustomLog %1 ").arg(accessLogPath(options.logDirectory, name))));

        // Empty options: the defaults the renderers fill in are the conventions' defaults.
        auto stock = renderHaproxy(site, RenderOptions{});
        QVERIFY_RESULT(stock);
        QVERIFY(stock->contains(haproxyStatsSocket(QString(), name)));
        QCOMPARE(haproxyStatsSocket(QString(), name),
                 QStringLiteral("/run/haproxy/corral-chat.example-1.sock"));
        auto stockNginx = renderNginx(site, RenderOptions{});
        QVERIFY_RESULT(stockNginx);
        QVERIFY(stockNginx->contains(
            accessLogPath(logDirectoryFor(RenderFormat::Nginx, RenderOptions{}), name)));
        QCOMPARE(logDirectoryFor(RenderFormat::Apache, RenderOptions{}),
                 QStringLiteral("/var/log/apache2"));
        QCOMPARE(logDirectoryFor(RenderFormat::Apache, options), options.logDirectory);

        // A new site's stock Debian balancer (the inventory's defaults) names the same log and
        // runtime directories as the renderers' defaults.
        QCOMPARE(SiteBalancer::stockDebian(QStringLiteral("nginx"), name).logDirectory,
                 defaultLogDirectory(RenderFormat::Nginx));
        QCOMPARE(SiteBalancer::stockDebian(QStringLiteral("apache"), name).logDirectory,
                 defaultLogDirectory(RenderFormat::Apache));
        QCOMPARE(SiteBalancer::stockDebian(QStringLiteral("haproxy"), name).runtimeDirectory,
                 defaultHaproxyRuntimeDirectory());

        // Import: a rendered block gives its site's name back; other names stay as they are.
        QCOMPARE(siteNameOfBlock(balancerBlockName(name)), name);
        QCOMPARE(siteNameOfBlock(QStringLiteral("backend_pool")), QStringLiteral("backend_pool"));
        QCOMPARE(siteNameOfBlock(QStringLiteral("corral-")), QStringLiteral("corral-"));
    }

    // HAProxy's runtime API: the socat command keeps its arguments out of the script, and one
    // parser of `show stat` answers the drain (scur), the health (status) and the monitor (stot).
    void haproxyRuntimeCommandsAndShowStat() {
        const QString command = haproxyRuntimeCommand(
            QStringLiteral("/run/h a/x.sock"),
            haproxySetServerState(QStringLiteral("corral-a"), QStringLiteral("b:1"),
                                  QStringLiteral("drain")));
        QVERIFY2(command.contains(QStringLiteral("'set server corral-a/b:1 state drain'")),
                 qPrintable(command));
        QVERIFY2(command.contains(QStringLiteral("'/run/h a/x.sock'")), qPrintable(command));
        QVERIFY2(command.contains(QStringLiteral("socat stdio")), qPrintable(command));
        // Run by a real shell with a stand-in socat on PATH that prints what it was given:
        // the command and the socket arrive intact, quotes and spaces included.
        QTemporaryDir bin;
        QVERIFY(bin.isValid());
        QVERIFY(writeFile(bin.filePath(QStringLiteral("socat")),
                          QStringLiteral("#!/bin/sh\nprintf '%s|' \"$@\"\ncat\n")));
        QVERIFY(QFile::setPermissions(bin.filePath(QStringLiteral("socat")),
                                      QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner));
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("PATH"), bin.path() + QStringLiteral(":/usr/bin:/bin"));
        const ToolRun ran = runTool(
            QStringLiteral("/bin/sh"),
            {QStringLiteral("-c"), haproxyRuntimeCommand(QStringLiteral("/run/h a/'x'.sock"),
                                                         QStringLiteral("show stat"))},
            env);
        QCOMPARE(ran.exitCode, 0);
        QCOMPARE(ran.output, QStringLiteral("stdio|UNIX-CONNECT:/run/h a/'x'.sock|show stat\n"));

        const QByteArray csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,addr,status\n"
                               "corral-shop,FRONTEND,,,3,5,4096,100,,OPEN\n"
                               "corral-shop,127.0.0.1:3000,0,0,2,4,,50,127.0.0.1:3000,UP\n"
                               "corral-shop,::1:3001,0,0,0,3,,7,[::1]:3001,DOWN 1/2\n"
                               "corral-shop,BACKEND,0,0,2,5,,100,,UP\n"
                               "other,10.0.0.1:80,0,0,9,9,,11,10.0.0.1:80,UP\n";
        auto stat = HaproxyStat::parse(csv);
        QVERIFY_RESULT(stat);
        QCOMPARE(
            stat->currentSessions(QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:3000"))
                .value(),
            2);
        QCOMPARE(stat->field(QStringLiteral("corral-shop"), QStringLiteral("::1:3001"),
                             QStringLiteral("status"))
                     .value(),
                 QStringLiteral("DOWN 1/2"));
        const auto missingServer =
            stat->currentSessions(QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:9"));
        QVERIFY(!missingServer);
        QCOMPARE(missingServer.error(),
                 QStringLiteral("show stat: no server corral-shop/127.0.0.1:9"));
        QVERIFY(!stat->field(QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:3000"),
                             QStringLiteral("nosuchcolumn")));
        auto totals = stat->sessionTotalsByAddress(QStringLiteral("corral-shop"));
        QVERIFY_RESULT(totals);
        QCOMPARE(totals->size(), 2);
        QCOMPARE(totals->value(QStringLiteral("127.0.0.1:3000")), quint64(50));
        QCOMPARE(totals->value(QStringLiteral("[::1]:3001")), quint64(7));
        auto everyProxy = stat->sessionTotalsByAddress(QString());
        QVERIFY_RESULT(everyProxy);
        QCOMPARE(everyProxy->value(QStringLiteral("10.0.0.1:80")), quint64(11));
        QVERIFY(!HaproxyStat::parse("garbage"));
        QVERIFY(!HaproxyStat::parse("# pxname,svname\n")->sessionTotalsByAddress(QString()));

        // The follower turns the totals into deltas per tick, from its second reading on.
        HaproxyStatFollower follower(QStringLiteral("/run/x.sock"), QStringLiteral("corral-shop"));
        QVERIFY(follower.consume(csv)->isEmpty());
        QByteArray later = csv;
        later.replace(",50,127.0.0.1:3000", ",53,127.0.0.1:3000");
        auto delta = follower.consume(later);
        QVERIFY_RESULT(delta);
        QCOMPARE(delta->size(), 1);
        QCOMPARE(delta->value(QStringLiteral("127.0.0.1:3000")), quint64(3));
    }

    // 5xx answers per backend (the fleet overview's errors/s): the status field of Corral's
    // nginx and Apache access-log lines, and HAProxy's hrsp_5xx column as a delta.
    void errorCountsPerBackend() {
        // The status follows the quoted request, whatever the request holds.
        QCOMPARE(NginxLogFollower::statusOf(
                     "10.0.0.9 - - [03/Dec/2026:09:00:00 +0000] \"GET / HTTP/1.1\" 502 157 \"-\" "
                     "\"curl\" upstream=10.0.0.1:3000 upstream_status=502 upstream_time=0.001 "
                     "request_time=0.001"),
                 502);
        QCOMPARE(
            NginxLogFollower::statusOf("1.2.3.4 - - [x] \"GET /a\\x22b HTTP/1.1\" 200 5 \"-\""),
            200);
        // Apache escapes a quote as \" and a backslash as \\.
        QCOMPARE(NginxLogFollower::statusOf("h - - [x] \"GET /a\\\" 404 b HTTP/1.1\" 503 0 "
                                            "upstream=http://127.0.0.1:3001 request_time_us=9"),
                 503);
        QCOMPARE(NginxLogFollower::statusOf("h - - [x] \"GET /a\\\\\" 201 0 upstream=-"), 201);
        QCOMPARE(NginxLogFollower::statusOf("no quotes at all"), 0);
        QCOMPARE(NginxLogFollower::statusOf("h \"GET / HTTP/1.1\" - 0"), 0);
        QCOMPARE(NginxLogFollower::statusOf("h \"unterminated 500"), 0);

        NginxLogFollower follower(QStringLiteral("/var/log/nginx/shop.access.log"), true);
        const QByteArray lines =
            "a - - [x] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" upstream=10.0.0.1:3000 "
            "upstream_status=200 u\n"
            "a - - [x] \"GET / HTTP/1.1\" 502 1 \"-\" \"-\" upstream=10.0.0.1:3000 "
            "upstream_status=502 u\n"
            "a - - [x] \"GET / HTTP/1.1\" 500 1 \"-\" \"-\" upstream=10.0.0.1:3000, 10.0.0.2:3000 "
            "upstream_status=502, 500 u\n"
            "a - - [x] \"GET /s.css HTTP/1.1\" 503 1 \"-\" \"-\" upstream=- upstream_status=- u\n"
            "a - - [x] \"GET / HTTP/1.1\" 404 1 \"-\" \"-\" upstream=10.0.0.2:3000 "
            "upstream_status=404 u\n";
        auto counts = follower.consume(QByteArray::number(lines.size()) + " 1\n" + lines);
        QVERIFY_RESULT(counts);
        QCOMPARE(counts->value(QStringLiteral("10.0.0.1:3000")), quint64(2));
        QCOMPARE(counts->value(QStringLiteral("10.0.0.2:3000")), quint64(2));
        // A 5xx counts against the backend that answered last; the balancer's own 503 (no
        // upstream) against none.
        QCOMPARE(follower.lastErrors().size(), 2);
        QCOMPARE(follower.lastErrors().value(QStringLiteral("10.0.0.1:3000")), quint64(1));
        QCOMPARE(follower.lastErrors().value(QStringLiteral("10.0.0.2:3000")), quint64(1));
        // The next reading starts afresh.
        auto idle = follower.consume(QByteArray::number(lines.size()) + " " +
                                     QByteArray::number(lines.size() + 1) + "\n");
        QVERIFY_RESULT(idle);
        QVERIFY(idle->isEmpty());
        QVERIFY(follower.lastErrors().isEmpty());

        // HAProxy: hrsp_5xx per server, counted from the second reading like stot.
        const QByteArray csv = "# pxname,svname,stot,addr,hrsp_2xx,hrsp_5xx,status\n"
                               "corral-shop,FRONTEND,100,,90,10,OPEN\n"
                               "corral-shop,127.0.0.1:3000,60,127.0.0.1:3000,55,5,UP\n"
                               "corral-shop,127.0.0.1:3001,40,127.0.0.1:3001,35,5,UP\n"
                               "corral-shop,BACKEND,100,,90,10,UP\n";
        HaproxyStatFollower haproxy(QStringLiteral("/run/x.sock"), QStringLiteral("corral-shop"));
        QVERIFY_RESULT(haproxy.consume(csv));
        QVERIFY(haproxy.lastErrors().isEmpty());
        QByteArray later = csv;
        later.replace("60,127.0.0.1:3000,55,5", "70,127.0.0.1:3000,62,8");
        later.replace("40,127.0.0.1:3001,35,5", "41,127.0.0.1:3001,36,5");
        auto delta = haproxy.consume(later);
        QVERIFY_RESULT(delta);
        QCOMPARE(delta->value(QStringLiteral("127.0.0.1:3000")), quint64(10));
        QCOMPARE(delta->value(QStringLiteral("127.0.0.1:3001")), quint64(1));
        QCOMPARE(haproxy.lastErrors().size(), 1);
        QCOMPARE(haproxy.lastErrors().value(QStringLiteral("127.0.0.1:3000")), quint64(3));
        // A restarted HAProxy (counters back near zero) counts from zero.
        QByteArray restarted = csv;
        restarted.replace("60,127.0.0.1:3000,55,5", "2,127.0.0.1:3000,1,1");
        QVERIFY_RESULT(haproxy.consume(restarted));
        QCOMPARE(haproxy.lastErrors().value(QStringLiteral("127.0.0.1:3000")), quint64(1));
        // Without the column the requests are still counted, with no errors.
        HaproxyStatFollower noColumn(QStringLiteral("/run/x.sock"), QStringLiteral("corral-shop"));
        const QByteArray plain = "# pxname,svname,stot,addr\ncorral-shop,a:1,5,a:1\n";
        QVERIFY_RESULT(noColumn.consume(plain));
        QByteArray plainLater = plain;
        plainLater.replace(",5,", ",9,");
        auto plainDelta = noColumn.consume(plainLater);
        QVERIFY_RESULT(plainDelta);
        QCOMPARE(plainDelta->value(QStringLiteral("a:1")), quint64(4));
        QVERIFY(noColumn.lastErrors().isEmpty());
    }
};

QTEST_GUILESS_MAIN(TestRenderers)
#include "tst_renderers.moc"
