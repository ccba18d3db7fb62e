#include "helpers/SmallTmpfs.h"

#include <QCryptographicHash>
#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <memory>

namespace {

struct Run {
    int exitCode = -1;
    QString out;
    QString err;
};

} // namespace

class TestCorralctl : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_inventory;

    Run ctl(const QStringList &args, const QString &inventoryEnv = QString()) {
        QProcess process;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("CORRAL_INVENTORY"), inventoryEnv);
        env.insert(QStringLiteral("XDG_CONFIG_HOME"), m_dir.filePath(QStringLiteral("xdg")));
        process.setProcessEnvironment(env);
        process.start(QStringLiteral(CORRALCTL_PATH), args);
        [&] { QVERIFY(process.waitForFinished(30000)); }();
        return Run{process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
                   QString::fromUtf8(process.readAllStandardOutput()),
                   QString::fromUtf8(process.readAllStandardError())};
    }
    QStringList withInventory(QStringList args) {
        args.prepend(m_inventory);
        args.prepend(QStringLiteral("--inventory"));
        return args;
    }
    QByteArray inventoryHash() {
        QFile file(m_inventory);
        if (!file.open(QIODevice::ReadOnly)) return {};
        return QCryptographicHash::hash(file.readAll(), QCryptographicHash::Sha256);
    }

    struct RunningProxy {
        std::unique_ptr<QProcess> process;
        quint16 port = 0; ///< 0: it did not start (output says why)
        QString output;
    };
    /// `corralctl proxy` in the background on a free loopback port, with a backend nothing
    /// listens on; returned once it said it listens.
    RunningProxy startProxy(const QStringList &extra, const QString &dataHome = QString()) {
        RunningProxy proxy;
        QTcpServer probe;
        if (!probe.listen(QHostAddress::LocalHost, 0)) return proxy;
        const quint16 port = probe.serverPort();
        QTcpServer unused; // the backend: a port nobody listens on once closed
        if (!unused.listen(QHostAddress::LocalHost, 0)) return proxy;
        const quint16 backend = unused.serverPort();
        probe.close();
        unused.close();
        proxy.process = std::make_unique<QProcess>();
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("XDG_DATA_HOME"),
                   dataHome.isEmpty() ? m_dir.filePath(QStringLiteral("data")) : dataHome);
        proxy.process->setProcessEnvironment(env);
        proxy.process->setProcessChannelMode(QProcess::MergedChannels);
        proxy.process->start(QStringLiteral(CORRALCTL_PATH),
                             QStringList{QStringLiteral("proxy"), QStringLiteral("--listen"),
                                         QStringLiteral("127.0.0.1:%1").arg(port),
                                         QStringLiteral("--backends"),
                                         QStringLiteral("127.0.0.1:%1").arg(backend)} +
                                 extra);
        QDeadlineTimer deadline(15000);
        while (!deadline.hasExpired() && !proxy.output.contains(QStringLiteral("listening on")) &&
               proxy.process->state() != QProcess::NotRunning) {
            proxy.process->waitForReadyRead(200);
            proxy.output += QString::fromUtf8(proxy.process->readAll());
        }
        // The lines after "listening on" are written with it, before the flush.
        proxy.process->waitForReadyRead(100);
        proxy.output += QString::fromUtf8(proxy.process->readAll());
        if (proxy.output.contains(QStringLiteral("listening on"))) proxy.port = port;
        return proxy;
    }
    void stopProxy(RunningProxy &proxy) {
        ::kill(pid_t(proxy.process->processId()), SIGTERM);
        QVERIFY(proxy.process->waitForFinished(15000));
        QCOMPARE(proxy.process->exitCode(), 0);
    }
    Run curl(const QStringList &args) {
        QProcess process;
        process.start(QStringLiteral("curl"),
                      QStringList{QStringLiteral("--max-time"), QStringLiteral("10")} + args);
        [&] { QVERIFY(process.waitForFinished(15000)); }();
        return Run{process.exitCode(), QString::fromUtf8(process.readAllStandardOutput()),
                   QString::fromUtf8(process.readAllStandardError())};
    }

private Q_SLOTS:
    void init() {
        m_inventory = m_dir.filePath(QStringLiteral("inventory.json"));
        QFile::remove(m_inventory);
        QFile::remove(m_inventory + QStringLiteral(".bak"));
    }

    void printsVersionAndHelp() {
        const Run version = ctl({QStringLiteral("--version")});
        QCOMPARE(version.exitCode, 0);
        QVERIFY(version.out.startsWith(QStringLiteral("corralctl ")));
        const Run help = ctl({QStringLiteral("help")});
        QCOMPARE(help.exitCode, 0);
        QVERIFY(help.out.contains(QStringLiteral("site")));
        const Run siteHelp = ctl({QStringLiteral("help"), QStringLiteral("site")});
        QCOMPARE(siteHelp.exitCode, 0);
        QVERIFY(siteHelp.out.contains(QStringLiteral("--backends")));
        for (const char *flag :
             {"--command", "--arg", "--worker-host", "--balancer-host",
              "--balancer nginx|haproxy|apache", "--balancer-listen", "--config-path", "--validate",
              "--reload", "--probe-url", "--error-log", "--log-dir", "--runtime-dir",
              "--no-balancer", "/etc/nginx/sites-enabled/NAME",
              "haproxy -c -f /etc/haproxy/haproxy.cfg", "/etc/apache2/sites-enabled/NAME.conf"})
            QVERIFY2(siteHelp.out.contains(QLatin1String(flag)), flag);
    }

    void versionsComeFromOnePlace() {
        // CORRAL_VERSION is CMake's PROJECT_VERSION; both programs must report exactly it.
        const Run ctlVersion = ctl({QStringLiteral("--version")});
        QCOMPARE(ctlVersion.out.trimmed(), QStringLiteral("corralctl " CORRAL_VERSION));
        const Run json = ctl({QStringLiteral("--version"), QStringLiteral("--json")});
        QCOMPARE(QJsonDocument::fromJson(json.out.toUtf8())
                     .object()
                     .value(QStringLiteral("version"))
                     .toString(),
                 QStringLiteral(CORRAL_VERSION));
        QProcess console;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        console.setProcessEnvironment(env);
        console.start(QStringLiteral(CORRAL_PATH), {QStringLiteral("--version")});
        QVERIFY(console.waitForFinished(30000));
        QCOMPARE(QString::fromUtf8(console.readAllStandardOutput()).trimmed(),
                 QStringLiteral("corral " CORRAL_VERSION));

        // Bad polling settings stop the console before it opens a window, naming the flag
        // and the value given.
        const QList<QStringList> badPolling{
            {QStringLiteral("--poll-interval"), QStringLiteral("99")},
            {QStringLiteral("--poll-interval"), QStringLiteral("1s")},
            {QStringLiteral("--poll-interval"), QStringLiteral("-500")},
            {QStringLiteral("--max-ssh-sessions"), QStringLiteral("0")},
            {QStringLiteral("--max-ssh-sessions"), QStringLiteral("many")}};
        for (const QStringList &arguments : badPolling) {
            QProcess bad;
            bad.setProcessEnvironment(env);
            bad.start(QStringLiteral(CORRAL_PATH), arguments);
            QVERIFY(bad.waitForFinished(30000));
            const QString err = QString::fromUtf8(bad.readAllStandardError());
            QVERIFY2(bad.exitStatus() == QProcess::NormalExit && bad.exitCode() == 2,
                     qPrintable(arguments.join(u' ') + QStringLiteral(": exit ") +
                                QString::number(bad.exitCode()) + u' ' + err));
            QVERIFY2(err.contains(arguments[0] + QStringLiteral(": '") + arguments[1] + u'\''),
                     qPrintable(err));
        }
    }

    void siteLifecycle() {
        Run add = ctl(
            withInventory({QStringLiteral("site"), QStringLiteral("add"), QStringLiteral("mysite"),
                           QStringLiteral("--backends=127.0.0.1:3000,127.0.0.1:3001;weight=2"),
                           QStringLiteral("--host"), QStringLiteral("www.example.com"),
                           QStringLiteral("--static"), QStringLiteral("/srv/mysite/public"),
                           QStringLiteral("--policy"), QStringLiteral("least-conn")}));
        QCOMPARE(add.exitCode, 0);
        QVERIFY2(add.err.isEmpty(), qPrintable(add.err));

        // Global options are accepted after the command too.
        Run show = ctl({QStringLiteral("site"), QStringLiteral("show"), QStringLiteral("mysite"),
                        QStringLiteral("--json"), QStringLiteral("--inventory"), m_inventory});
        QCOMPARE(show.exitCode, 0);
        const QJsonObject site = QJsonDocument::fromJson(show.out.toUtf8()).object();
        QCOMPARE(site.value(QStringLiteral("name")).toString(), QStringLiteral("mysite"));
        QCOMPARE(site.value(QStringLiteral("policy")).toString(), QStringLiteral("least-conn"));
        QCOMPARE(site.value(QStringLiteral("staticRoot")).toString(),
                 QStringLiteral("/srv/mysite/public"));
        QCOMPARE(site.value(QStringLiteral("serverNames")).toArray().first().toString(),
                 QStringLiteral("www.example.com"));
        const QJsonArray backends = site.value(QStringLiteral("backends")).toArray();
        QCOMPARE(backends.size(), 2);
        QCOMPARE(backends.at(1).toObject().value(QStringLiteral("weight")).toInt(), 2);

        Run update = ctl(
            withInventory({QStringLiteral("site"), QStringLiteral("update"),
                           QStringLiteral("mysite"), QStringLiteral("--backends=127.0.0.1:4000")}));
        QCOMPARE(update.exitCode, 0);
        QVERIFY(QFile::exists(m_inventory + QStringLiteral(".bak")));

        // The environment variable selects the inventory when no flag is given.
        Run list = ctl({QStringLiteral("--json"), QStringLiteral("site"), QStringLiteral("list")},
                       m_inventory);
        QCOMPARE(list.exitCode, 0);
        const QJsonArray sites = QJsonDocument::fromJson(list.out.toUtf8())
                                     .object()
                                     .value(QStringLiteral("sites"))
                                     .toArray();
        QCOMPARE(sites.size(), 1);
        const QJsonObject updated = sites.first().toObject();
        QCOMPARE(updated.value(QStringLiteral("backends")).toArray().size(), 1);
        QCOMPARE(updated.value(QStringLiteral("policy")).toString(),
                 QStringLiteral("least-conn")); // untouched

        Run textList = ctl(withInventory({QStringLiteral("site"), QStringLiteral("list")}));
        QCOMPARE(textList.exitCode, 0);
        QVERIFY(textList.out.contains(QStringLiteral("mysite")));

        Run remove = ctl(withInventory(
            {QStringLiteral("site"), QStringLiteral("remove"), QStringLiteral("mysite")}));
        QCOMPARE(remove.exitCode, 0);
        Run after = ctl(withInventory(
            {QStringLiteral("site"), QStringLiteral("show"), QStringLiteral("mysite")}));
        QCOMPARE(after.exitCode, 1);
        QVERIFY2(after.err.contains(QStringLiteral("no site named \"mysite\"")),
                 qPrintable(after.err));
    }

    // A production site from flags only (issue 15): the workers' command and hosts, and a
    // balancer of each kind with the stock Debian defaults filled in.
    void writeHostsInventory() {
        QFile file(m_inventory);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(R"({"version":1,"hosts":[
            {"name":"lb","kind":"ssh","address":"127.0.0.2","user":"deploy"},
            {"name":"app1","kind":"ssh","address":"127.0.0.3","user":"deploy"},
            {"name":"app2","kind":"ssh","address":"127.0.0.4","user":"deploy"}],"sites":[]})");
    }
    QJsonObject siteJson(const QString &name) {
        const Run show = ctl(withInventory(
            {QStringLiteral("site"), QStringLiteral("show"), name, QStringLiteral("--json")}));
        [&] { QVERIFY2(show.exitCode == 0, qPrintable(show.err)); }();
        return QJsonDocument::fromJson(show.out.toUtf8()).object();
    }

    void productionSiteFromFlags_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("configPath");
        QTest::addColumn<QStringList>("validate");
        QTest::addColumn<QStringList>("reload");
        QTest::addColumn<QString>("errorLog");
        QTest::addColumn<QString>("logDirectory");
        QTest::addColumn<QString>("runtimeDirectory");
        QTest::newRow("nginx") << "nginx"
                               << "/etc/nginx/sites-enabled/shop" << QStringList{"nginx", "-t"}
                               << QStringList{"systemctl", "reload", "nginx"}
                               << "/var/log/nginx/error.log"
                               << "/var/log/nginx"
                               << "";
        QTest::newRow("haproxy") << "haproxy"
                                 << "/etc/haproxy/haproxy.cfg"
                                 << QStringList{"haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg"}
                                 << QStringList{"systemctl", "reload", "haproxy"} << ""
                                 << ""
                                 << "/run/haproxy";
        QTest::newRow("apache") << "apache"
                                << "/etc/apache2/sites-enabled/shop.conf"
                                << QStringList{"apache2ctl", "-t"}
                                << QStringList{"systemctl", "reload", "apache2"}
                                << "/var/log/apache2/error.log"
                                << "/var/log/apache2"
                                << "";
    }
    void productionSiteFromFlags() {
        QFETCH(QString, kind);
        QFETCH(QString, configPath);
        QFETCH(QStringList, validate);
        QFETCH(QStringList, reload);
        QFETCH(QString, errorLog);
        QFETCH(QString, logDirectory);
        QFETCH(QString, runtimeDirectory);
        writeHostsInventory();
        const Run add = ctl(withInventory({"site",
                                           "add",
                                           "shop",
                                           "--command",
                                           "/usr/bin/shop-server",
                                           "--arg",
                                           "--port",
                                           "--arg",
                                           "{port}",
                                           "--worker-host",
                                           "app1",
                                           "--worker-host",
                                           "app2",
                                           "--backends=127.0.0.3:3000,127.0.0.4:3000",
                                           "--host",
                                           "shop.example",
                                           "--balancer-host",
                                           "lb",
                                           "--balancer",
                                           kind,
                                           "--balancer-listen",
                                           "127.0.0.2:8080",
                                           "--probe-url",
                                           "http://127.0.0.2:8080/health"}));
        QVERIFY2(add.exitCode == 0, qPrintable(add.err));
        const QJsonObject site = siteJson(QStringLiteral("shop"));
        QCOMPARE(site.value(QStringLiteral("command")).toString(),
                 QStringLiteral("/usr/bin/shop-server"));
        QCOMPARE(site.value(QStringLiteral("args")).toVariant().toStringList(),
                 (QStringList{"--port", "{port}"}));
        QCOMPARE(site.value(QStringLiteral("hosts")).toVariant().toStringList(),
                 (QStringList{"app1", "app2"}));
        const QJsonObject balancer = site.value(QStringLiteral("balancer")).toObject();
        QCOMPARE(balancer.value(QStringLiteral("host")).toString(), QStringLiteral("lb"));
        QCOMPARE(balancer.value(QStringLiteral("format")).toString(), kind);
        QCOMPARE(balancer.value(QStringLiteral("configPath")).toString(), configPath);
        QCOMPARE(balancer.value(QStringLiteral("validate")).toVariant().toStringList(), validate);
        QCOMPARE(balancer.value(QStringLiteral("reload")).toVariant().toStringList(), reload);
        QCOMPARE(balancer.value(QStringLiteral("errorLog")).toString(), errorLog);
        QCOMPARE(balancer.value(QStringLiteral("logDirectory")).toString(), logDirectory);
        QCOMPARE(balancer.value(QStringLiteral("runtimeDirectory")).toString(), runtimeDirectory);
        QCOMPARE(balancer.value(QStringLiteral("listenAddress")).toString(),
                 QStringLiteral("127.0.0.2"));
        QCOMPARE(balancer.value(QStringLiteral("httpPort")).toInt(), 8080);
        QCOMPARE(balancer.value(QStringLiteral("probeUrl")).toString(),
                 QStringLiteral("http://127.0.0.2:8080/health"));

        // The text form shows the balancer too.
        const Run show = ctl(withInventory({"site", "show", "shop"}));
        QCOMPARE(show.exitCode, 0);
        QVERIFY2(show.out.contains(QStringLiteral("balancer:")) && show.out.contains(kind) &&
                     show.out.contains(configPath) &&
                     show.out.contains(QStringLiteral("127.0.0.2:8080")),
                 qPrintable(show.out));
        QVERIFY2(show.out.contains(QStringLiteral("/usr/bin/shop-server --port '{port}'")),
                 qPrintable(show.out));
    }

    void productionSiteUpdateChangesOnlyTheGivenFlags() {
        writeHostsInventory();
        QCOMPARE(
            ctl(withInventory({"site", "add", "shop", "--worker-host", "app1", "--balancer-host",
                               "lb", "--balancer", "nginx", "--balancer-listen", "127.0.0.2:8080"}))
                .exitCode,
            0);
        const QJsonObject before = siteJson(QStringLiteral("shop"));
        const Run update = ctl(withInventory({"site", "update", "shop", "--validate",
                                              "/usr/sbin/nginx -t -c '/etc/nginx/my conf'"}));
        QVERIFY2(update.exitCode == 0, qPrintable(update.err));
        QJsonObject after = siteJson(QStringLiteral("shop"));
        QJsonObject balancer = after.value(QStringLiteral("balancer")).toObject();
        QCOMPARE(balancer.value(QStringLiteral("validate")).toVariant().toStringList(),
                 (QStringList{"/usr/sbin/nginx", "-t", "-c", "/etc/nginx/my conf"}));
        // Everything else as it was.
        balancer.insert(
            QStringLiteral("validate"),
            before.value(QStringLiteral("balancer")).toObject().value(QStringLiteral("validate")));
        after.insert(QStringLiteral("balancer"), balancer);
        QCOMPARE(after, before);

        // Another kind: its defaults replace the old kind's, what is given stays.
        QCOMPARE(ctl(withInventory({"site", "update", "shop", "--balancer", "haproxy",
                                    "--config-path", "/etc/haproxy/conf.d/shop.cfg"}))
                     .exitCode,
                 0);
        balancer = siteJson(QStringLiteral("shop")).value(QStringLiteral("balancer")).toObject();
        QCOMPARE(balancer.value(QStringLiteral("format")).toString(), QStringLiteral("haproxy"));
        QCOMPARE(balancer.value(QStringLiteral("configPath")).toString(),
                 QStringLiteral("/etc/haproxy/conf.d/shop.cfg"));
        QCOMPARE(balancer.value(QStringLiteral("reload")).toVariant().toStringList(),
                 (QStringList{"systemctl", "reload", "haproxy"}));
        QVERIFY(!balancer.contains(QStringLiteral("errorLog")));
        QCOMPARE(balancer.value(QStringLiteral("httpPort")).toInt(), 8080);

        QCOMPARE(ctl(withInventory({"site", "update", "shop", "--no-balancer"})).exitCode, 0);
        const QJsonObject removed = siteJson(QStringLiteral("shop"));
        QVERIFY(!removed.contains(QStringLiteral("balancer")));
        QCOMPARE(removed.value(QStringLiteral("hosts")).toVariant().toStringList(),
                 QStringList{"app1"});
    }

    // --validate and --reload are split like a shell splits a simple command, and never run
    // by one: quoting works, operators are refused (see productionSiteBadValuesNameTheField).
    void balancerCommandsAreSplitLikeAShell_data() {
        QTest::addColumn<QString>("commandLine");
        QTest::addColumn<QStringList>("argv");
        QTest::newRow("plain") << "  nginx   -t  " << QStringList{"nginx", "-t"};
        QTest::newRow("single quotes keep everything")
            << "sh -c 'kill -USR2 \"$(cat \"$1\")\"' sh /run/h.pid"
            << QStringList{"sh", "-c", "kill -USR2 \"$(cat \"$1\")\"", "sh", "/run/h.pid"};
        QTest::newRow("double quotes and escapes")
            << "nginx -c \"/etc/my \\\"x\\\" conf\" a\\ b ''"
            << QStringList{"nginx", "-c", "/etc/my \"x\" conf", "a b", ""};
        QTest::newRow("quoted operator") << "nginx '&&' \\;" << QStringList{"nginx", "&&", ";"};
    }
    void balancerCommandsAreSplitLikeAShell() {
        QFETCH(QString, commandLine);
        QFETCH(QStringList, argv);
        writeHostsInventory();
        const Run add = ctl(withInventory({"site", "add", "shop", "--balancer-host", "lb",
                                           "--balancer", "nginx", "--reload", commandLine}));
        QVERIFY2(add.exitCode == 0, qPrintable(add.err));
        QCOMPARE(siteJson(QStringLiteral("shop"))
                     .value(QStringLiteral("balancer"))
                     .toObject()
                     .value(QStringLiteral("reload"))
                     .toVariant()
                     .toStringList(),
                 argv);
    }

    void productionSiteBadValuesNameTheField_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("exitCode");
        QTest::addColumn<QString>("expected");
        const QStringList base{"site", "add", "shop", "--balancer-host", "lb"};
        QTest::newRow("relative config path")
            << base + QStringList{"--balancer", "nginx", "--config-path", "sites/shop"} << 1
            << "balancer.configPath: \"sites/shop\" must be an absolute path";
        QTest::newRow("unknown kind")
            << base + QStringList{"--balancer", "caddy"} << 1
            << "--balancer: \"caddy\" is not one of nginx, haproxy, apache";
        QTest::newRow("unknown worker host")
            << base + QStringList{"--balancer", "nginx", "--worker-host", "app9"} << 1
            << "--worker-host: no host named \"app9\"";
        QTest::newRow("balancer host not an ssh host")
            << QStringList{"site", "add", "shop", "--balancer-host", "local", "--balancer", "nginx"}
            << 1 << "--balancer-host: \"local\" is not an SSH host";
        QTest::newRow("unterminated quote in validate")
            << base + QStringList{"--balancer", "nginx", "--validate", "nginx -t -c 'x"} << 2
            << "--validate: unterminated quote";
        QTest::newRow("shell operator in reload")
            << base + QStringList{"--balancer", "nginx", "--reload",
                                  "nginx -t && systemctl reload nginx"}
            << 2 << "--reload: \"&\": the command is not run by a shell";
        QTest::newRow("control character in validate")
            << base + QStringList{"--balancer", "nginx", "--validate", "nginx '-t\x1b[2J'"} << 1
            << "balancer.validate[1]:";
        QTest::newRow("empty validate")
            << base + QStringList{"--balancer", "nginx", "--validate", "  "} << 1
            << "balancer.validate: a command is required";
        QTest::newRow("bad listen")
            << base + QStringList{"--balancer", "nginx", "--balancer-listen", "127.0.0.2:0"} << 1
            << "--balancer-listen: \"127.0.0.2:0\": port";
        QTest::newRow("log dir with a space")
            << base + QStringList{"--balancer", "apache", "--log-dir", "/var/log/a b"} << 1
            << "balancer.logDirectory: \"/var/log/a b\"";
        QTest::newRow("balancer flags without a balancer")
            << QStringList{"site", "add", "shop", "--config-path", "/etc/x"} << 2
            << "--config-path needs --balancer";
        QTest::newRow("balancer without a host")
            << QStringList{"site", "add", "shop", "--balancer", "nginx"} << 2
            << "--balancer needs --balancer-host";
    }
    void productionSiteBadValuesNameTheField() {
        QFETCH(QStringList, args);
        QFETCH(int, exitCode);
        QFETCH(QString, expected);
        writeHostsInventory();
        const QByteArray before = inventoryHash();
        const Run run = ctl(withInventory(args));
        QCOMPARE(run.exitCode, exitCode);
        QVERIFY2(run.err.contains(expected), qPrintable(run.err));
        QCOMPARE(inventoryHash(), before);
    }

    void usageErrorsExitWith2_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no command") << QStringList{} << "no command given";
        QTest::newRow("unknown command")
            << QStringList{"frobnicate"} << "unknown command \"frobnicate\"";
        QTest::newRow("unknown subcommand")
            << QStringList{"site", "explode"} << "unknown subcommand \"explode\"";
        QTest::newRow("unknown option")
            << QStringList{"site", "add", "x", "--colour=red"} << "unknown option --colour";
        QTest::newRow("missing name")
            << QStringList{"site", "add", "--backends=a:1"} << "expected exactly one site NAME";
        QTest::newRow("option without value")
            << QStringList{"site", "add", "x", "--static"} << "option --static needs a value";
        QTest::newRow("inventory without value")
            << QStringList{"site", "list", "--inventory"} << "--inventory needs a value";
    }
    void usageErrorsExitWith2() {
        QFETCH(QStringList, args);
        QFETCH(QString, expected);
        const Run run =
            ctl(args.contains(QStringLiteral("--inventory")) ? args : withInventory(args));
        QCOMPARE(run.exitCode, 2);
        QVERIFY2(run.err.contains(expected), qPrintable(run.err));
        QVERIFY(!QFile::exists(m_inventory));
        // One line and a pointer to the help, not the whole usage text.
        QCOMPARE(run.err.count(QLatin1Char('\n')), 1);
        QVERIFY2(run.err.startsWith(QStringLiteral("corralctl: ")), qPrintable(run.err));
        QVERIFY2(run.err.contains(QStringLiteral("(see 'corralctl help")), qPrintable(run.err));
    }

    // A hostile or absurd --splice-min-bytes is refused before anything listens.
    void proxyRefusesAbsurdSpliceMinBytes_data() {
        QTest::addColumn<QString>("value");
        QTest::newRow("negative") << QStringLiteral("-1");
        QTest::newRow("not a number") << QStringLiteral("64k");
        QTest::newRow("over int") << QStringLiteral("99999999999");
    }
    void proxyRefusesAbsurdSpliceMinBytes() {
        QFETCH(QString, value);
        const Run run =
            ctl({QStringLiteral("proxy"), QStringLiteral("--listen"), QStringLiteral("127.0.0.1:1"),
                 QStringLiteral("--backends"), QStringLiteral("127.0.0.1:2"),
                 QStringLiteral("--splice-min-bytes=") + value});
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("--splice-min-bytes: expected 0 or more bytes")),
                 qPrintable(run.err));
    }

    // Issue 19: the embedded proxy's settings are refused with the flag they came from, all
    // at once, exit 1, before anything listens.
    void proxySettingsBadValuesNameTheFlag_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expected");
        const QString file = m_dir.filePath(QStringLiteral("plain-file"));
        QFile touch(file);
        QVERIFY(touch.open(QIODevice::WriteOnly));
        touch.close();
        QTest::newRow("static missing") << QStringList{"--static", m_dir.filePath("missing")}
                                        << QStringLiteral("proxy: --static: \"%1\" does not exist")
                                               .arg(m_dir.filePath("missing"));
        QTest::newRow("static is a file")
            << QStringList{"--static", file}
            << QStringLiteral("proxy: --static: \"%1\" is not a directory").arg(file);
        QTest::newRow("cert without key")
            << QStringList{"--cert", file} << QStringLiteral("proxy: --cert and --key go together");
        QTest::newRow("key without cert")
            << QStringList{"--key", file} << QStringLiteral("proxy: --cert and --key go together");
        QTest::newRow("unreadable cert")
            << QStringList{"--cert", m_dir.filePath("none.pem"), "--key", file}
            << QStringLiteral("proxy: --cert: \"%1\" is not a readable file")
                   .arg(m_dir.filePath("none.pem"));
        QTest::newRow("redirect without tls")
            << QStringList{"--redirect-http", "127.0.0.1:8081"}
            << QStringLiteral("proxy: --redirect-http needs --tls");
        QTest::newRow("redirect not ADDR:PORT")
            << QStringList{"--tls", "--redirect-http", "8081"}
            << QStringLiteral("proxy: --redirect-http: \"8081\" is not HOST:PORT");
        QTest::newRow("cache-control header injection")
            << QStringList{"--cache-control", "max-age=60\r\nSet-Cookie: x=1"}
            << QStringLiteral("proxy: --cache-control: \"max-age=60\\r\\nSet-Cookie: x=1\" "
                              "contains a control character");
        QTest::newRow("gzip and no-gzip")
            << QStringList{"--gzip", "--no-gzip"}
            << QStringLiteral("proxy: --gzip and --no-gzip exclude each other");
        QTest::newRow("host without tls")
            << QStringList{"--host", "shop.test"} << QStringLiteral("proxy: --host needs --tls");
        QTest::newRow("bad host") << QStringList{"--tls", "--host", "a b"}
                                  << QStringLiteral("proxy: --host: \"a b\" is not a DNS name");
        QTest::newRow("access log is a directory")
            << QStringList{"--access-log", m_dir.path()}
            << QStringLiteral("proxy: --access-log: \"%1\" is a directory").arg(m_dir.path());
    }
    void proxySettingsBadValuesNameTheFlag() {
        QFETCH(QStringList, args);
        QFETCH(QString, expected);
        const Run run = ctl(QStringList{QStringLiteral("proxy"), QStringLiteral("--listen"),
                                        QStringLiteral("127.0.0.1:1"), QStringLiteral("--backends"),
                                        QStringLiteral("127.0.0.1:2")} +
                            args);
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(expected), qPrintable(run.err));
        QVERIFY(run.out.isEmpty()); // nothing started
    }

    // The same rules for a local cluster (up) and every problem at once.
    void upRefusesBadProxySettings() {
        const Run run = ctl(
            withInventory({QStringLiteral("up"), QStringLiteral("--demo"),
                           QStringLiteral("--static"), m_dir.filePath(QStringLiteral("missing")),
                           QStringLiteral("--redirect-http"), QStringLiteral("127.0.0.1:8081")}));
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("up: --static: ")), qPrintable(run.err));
        QVERIFY2(run.err.contains(QStringLiteral("up: --redirect-http needs --tls")),
                 qPrintable(run.err));
        QVERIFY(!QFile::exists(m_inventory));
    }

    // site add/update keep the settings in the inventory (relative paths made absolute), show
    // prints them, and update changes only the flags given.
    void siteKeepsProxySettings() {
        QDir(m_dir.path()).mkpath(QStringLiteral("public"));
        const auto add = [&](const QStringList &args) {
            QProcess process;
            QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
            env.insert(QStringLiteral("CORRAL_INVENTORY"), QString());
            env.insert(QStringLiteral("XDG_CONFIG_HOME"), m_dir.filePath(QStringLiteral("xdg")));
            process.setProcessEnvironment(env);
            process.setWorkingDirectory(m_dir.path());
            process.start(QStringLiteral(CORRALCTL_PATH), withInventory(args));
            [&] { QVERIFY(process.waitForFinished(30000)); }();
            return process.exitCode();
        };
        QCOMPARE(add({"site", "add", "shop", "--static", "public", "--static-follow-symlinks",
                      "--cache-control", "public, max-age=600", "--no-gzip", "--access-log",
                      "logs/shop.log", "--cert", "/etc/ssl/shop.pem", "--key", "/etc/ssl/shop.key",
                      "--redirect-http", "127.0.0.1:8081", "--host", "shop.test"}),
                 0);
        Run shown = ctl(withInventory({"site", "show", "shop", "--json"}));
        QCOMPARE(shown.exitCode, 0);
        QJsonObject site = QJsonDocument::fromJson(shown.out.toUtf8()).object();
        QCOMPARE(site.value("staticRoot").toString(), m_dir.filePath(QStringLiteral("public")));
        QCOMPARE(site.value("staticFollowSymlinks").toBool(), true);
        QCOMPARE(site.value("cacheControl").toString(), QStringLiteral("public, max-age=600"));
        QCOMPARE(site.value("gzip").toBool(true), false);
        QCOMPARE(site.value("accessLog").toString(),
                 m_dir.filePath(QStringLiteral("logs/shop.log")));
        QCOMPARE(site.value("tls").toBool(), true); // implied by --cert and --key
        QCOMPARE(site.value("tlsCert").toString(), QStringLiteral("/etc/ssl/shop.pem"));
        QCOMPARE(site.value("tlsKey").toString(), QStringLiteral("/etc/ssl/shop.key"));
        QCOMPARE(site.value("redirectHttp").toString(), QStringLiteral("127.0.0.1:8081"));
        shown = ctl(withInventory({"site", "show", "shop"}));
        QVERIFY2(shown.out.contains(QStringLiteral("gzip:         off")), qPrintable(shown.out));
        QVERIFY2(shown.out.contains(QStringLiteral("cache-control: public, max-age=600")),
                 qPrintable(shown.out));
        QVERIFY2(shown.out.contains(QStringLiteral("tls:          on, cert /etc/ssl/shop.pem")),
                 qPrintable(shown.out));

        QCOMPARE(ctl(withInventory(
                         {"site", "update", "shop", "--gzip", "--no-tls", "--access-log", "off"}))
                     .exitCode,
                 0);
        shown = ctl(withInventory({"site", "show", "shop", "--json"}));
        site = QJsonDocument::fromJson(shown.out.toUtf8()).object();
        QVERIFY(!site.contains("gzip")); // back to the default
        QVERIFY(!site.contains("tls") && !site.contains("tlsCert") &&
                !site.contains("redirectHttp"));
        QCOMPARE(site.value("accessLog").toString(), QStringLiteral("off"));
        QCOMPARE(site.value("cacheControl").toString(), QStringLiteral("public, max-age=600"));
        QCOMPARE(site.value("staticRoot").toString(), m_dir.filePath(QStringLiteral("public")));

        // Refused values name the flag and leave the inventory alone.
        const QByteArray before = inventoryHash();
        const Run bad = ctl(withInventory(
            {"site", "update", "shop", "--cert", "/etc/ssl/a.pem", "--cache-control", "a\x01"}));
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.contains(QStringLiteral("--cert and --key go together")),
                 qPrintable(bad.err));
        QVERIFY2(bad.err.contains(QStringLiteral("--cache-control:")), qPrintable(bad.err));
        QCOMPARE(inventoryHash(), before);
    }

    // `corralctl proxy --static DIR --access-log FILE`: a file under DIR comes from the proxy
    // itself (no backend even listens), everything else goes to the backends, and each
    // request is a line of the access log.
    void proxyServesStaticFilesAndLogsThem() {
        const QString root = m_dir.filePath(QStringLiteral("public"));
        QVERIFY(QDir().mkpath(root));
        QFile page(root + QStringLiteral("/hello.txt"));
        QVERIFY(page.open(QIODevice::WriteOnly));
        page.write("served by corralctl proxy\n");
        page.close();
        const QString log = m_dir.filePath(QStringLiteral("proxy-access.log"));
        RunningProxy proxy =
            startProxy({QStringLiteral("--static"), root, QStringLiteral("--cache-control"),
                        QStringLiteral("max-age=60"), QStringLiteral("--access-log"), log});
        QVERIFY2(proxy.port, qPrintable(proxy.output));
        QVERIFY2(proxy.output.contains(QStringLiteral("static files from ") + root),
                 qPrintable(proxy.output));
        const Run file = curl({QStringLiteral("-si"),
                               QStringLiteral("http://127.0.0.1:%1/hello.txt").arg(proxy.port)});
        QVERIFY2(file.out.startsWith(QStringLiteral("HTTP/1.1 200")), qPrintable(file.out));
        QVERIFY2(file.out.contains(QStringLiteral("Cache-Control: max-age=60")),
                 qPrintable(file.out));
        QVERIFY2(file.out.endsWith(QStringLiteral("served by corralctl proxy\n")),
                 qPrintable(file.out));
        const Run other = curl(
            {QStringLiteral("-si"), QStringLiteral("http://127.0.0.1:%1/missing").arg(proxy.port)});
        QVERIFY2(other.out.startsWith(QStringLiteral("HTTP/1.1 502")), qPrintable(other.out));
        stopProxy(proxy);
        QFile written(log);
        QVERIFY(written.open(QIODevice::ReadOnly));
        const QString lines = QString::fromUtf8(written.readAll());
        QVERIFY2(lines.contains(QStringLiteral("\"GET /hello.txt HTTP/1.1\" 200")),
                 qPrintable(lines));
        QVERIFY2(lines.contains(QStringLiteral("\"GET /missing HTTP/1.1\" 502")),
                 qPrintable(lines));
    }

    // `corralctl proxy --tls` without a certificate: the development CA is created once, the
    // trust instructions are printed that time only, and curl trusting the CA gets through.
    void proxyTlsWithTheDevelopmentCa() {
        const QString root = m_dir.filePath(QStringLiteral("public-tls"));
        QVERIFY(QDir().mkpath(root));
        QFile page(root + QStringLiteral("/index.html"));
        QVERIFY(page.open(QIODevice::WriteOnly));
        page.write("<p>https</p>\n");
        page.close();
        const QString dataHome = m_dir.filePath(QStringLiteral("data-tls"));
        const QStringList args{QStringLiteral("--tls"), QStringLiteral("--host"),
                               QStringLiteral("shop.test"), QStringLiteral("--static"), root};
        for (int run = 0; run < 2; ++run) {
            RunningProxy proxy = startProxy(args, dataHome);
            QVERIFY2(proxy.port, qPrintable(proxy.output));
            QCOMPARE(proxy.output.contains(QStringLiteral("update-ca-certificates")), run == 0);
            QVERIFY2(proxy.output.contains(QStringLiteral("https (development CA")),
                     qPrintable(proxy.output));
            const Run fetched =
                curl({QStringLiteral("-s"), QStringLiteral("--cacert"),
                      dataHome + QStringLiteral("/corral/ca/ca.pem"), QStringLiteral("--resolve"),
                      QStringLiteral("shop.test:%1:127.0.0.1").arg(proxy.port),
                      QStringLiteral("https://shop.test:%1/").arg(proxy.port)});
            QCOMPARE(fetched.exitCode, 0);
            QCOMPARE(fetched.out, QStringLiteral("<p>https</p>\n"));
            stopProxy(proxy);
        }
    }

    void helpListsProxySettings() {
        for (const char *command : {"proxy", "up", "start", "site"}) {
            const Run help = ctl({QStringLiteral("help"), QLatin1String(command)});
            QCOMPARE(help.exitCode, 0);
            for (const char *flag :
                 {"--static", "--static-follow-symlinks", "--cache-control", "--no-gzip",
                  "--access-log", "--tls", "--cert", "--key", "--redirect-http", "--host"})
                QVERIFY2(help.out.contains(QLatin1String(flag)),
                         qPrintable(QLatin1String(command) + QLatin1Char(' ') +
                                    QLatin1String(flag) + QLatin1Char('\n') + help.out));
        }
    }

    void usageErrorIsOneLineNamingTheCommand() {
        const Run run = ctl(withInventory({QStringLiteral("site"), QStringLiteral("add"),
                                           QStringLiteral("x"), QStringLiteral("--frob")}));
        QCOMPARE(run.exitCode, 2);
        QCOMPARE(run.err, QStringLiteral("corralctl: site add: unknown option --frob (see "
                                         "'corralctl help site')\n"));
        QVERIFY(run.out.isEmpty());
    }

    void helpDocumentsExitCodes() {
        const Run help = ctl({QStringLiteral("help")});
        QCOMPARE(help.exitCode, 0);
        QVERIFY2(help.out.contains(QStringLiteral("1  a value is invalid")), qPrintable(help.out));
        QVERIFY2(help.out.contains(QStringLiteral("2  the command line is malformed")),
                 qPrintable(help.out));
    }

    // A value that fails validation is exit 1 (the command line itself was fine), and every
    // bad value is reported in the same run, each on its own line naming its field.
    void valueErrorsExitWith1AndNameEveryProblem_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QStringList>("expected");
        QTest::addColumn<int>("lines");
        QTest::newRow("bad name and bad backend")
            << QStringList{"site", "add", "a b", "--backends=x"}
            << QStringList{"name: \"a b\" is not a valid name", "--backends: backend \"x\""} << 2;
        QTest::newRow("bad backend") << QStringList{"site", "add", "x", "--backends=a:99999"}
                                     << QStringList{"--backends: backend \"a:99999\""} << 1;
        QTest::newRow("bad policy") << QStringList{"site", "add", "x", "--policy", "random"}
                                    << QStringList{"--policy: \"random\""} << 1;
        QTest::newRow("three bad values")
            << QStringList{"site", "add", "x", "--workers=many", "--base-port=0", "--health=up"}
            << QStringList{"--workers:", "--base-port:", "healthPath: \"up\""} << 3;
        QTest::newRow("injection through a zone id")
            << QStringList{"site", "add", "x",
                           "--backends=[fe80::1%x\" route=9\n </Proxy> RewriteRule ^/pwned "
                           "http://evil.example/ [R=302]:80"}
            << QStringList{"--backends:", "zone id"} << 1;
        QTest::newRow("control character in a server name")
            << QStringList{"site", "add", "x", "--host", "a.example\rb"}
            << QStringList{"serverNames[0]: \"a.example\\rb\""} << 1;
        QTest::newRow("render: bad format and port")
            << QStringList{"render", "x", "--format", "caddy", "--http-port", "0"}
            << QStringList{"render: --format: \"caddy\"", "render: --http-port:"} << 2;
        QTest::newRow("up: bad values")
            << QStringList{"up", "--demo", "--workers", "many", "--policy", "random"}
            << QStringList{"up: --workers:", "up: --policy:"} << 2;
    }
    void valueErrorsExitWith1AndNameEveryProblem() {
        QFETCH(QStringList, args);
        QFETCH(QStringList, expected);
        QFETCH(int, lines);
        const Run run = ctl(withInventory(args));
        QCOMPARE(run.exitCode, 1);
        for (const QString &problem : expected)
            QVERIFY2(run.err.contains(problem),
                     qPrintable(problem + QStringLiteral(" in\n") + run.err));
        // One line per problem (two expected strings may be parts of one problem).
        QCOMPARE(run.err.count(QLatin1Char('\n')), lines);
        for (const QString &line : run.err.split(QLatin1Char('\n'), Qt::SkipEmptyParts))
            QVERIFY2(line.startsWith(QStringLiteral("corralctl: ")), qPrintable(run.err));
        QVERIFY(!QFile::exists(m_inventory));
    }

    void failuresExitWith1AndKeepTheFile_data() {
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expected");
        const QByteArray valid =
            R"({"version":1,"sites":[{"name":"a","backends":[{"address":"127.0.0.1","port":3000}]}]})";
        QTest::newRow("duplicate add")
            << valid << QStringList{"site", "add", "a", "--backends=127.0.0.1:1"}
            << "a site named \"a\" already exists";
        QTest::newRow("remove unknown")
            << valid << QStringList{"site", "remove", "b"} << "no site named \"b\"";
        QTest::newRow("update unknown")
            << valid << QStringList{"site", "update", "b", "--policy=ip-hash"}
            << "no site named \"b\"";
        QTest::newRow("broken file, add") << QByteArray("{\"version\":1,\n\"sites\":[")
                                          << QStringList{"site", "add", "b"} << "inventory.json:2:";
        QTest::newRow("broken file, list")
            << QByteArray(R"({"version":1,"sites":[{"name":"a","basePort":-5}]})")
            << QStringList{"site", "list"} << "sites[0].basePort: -5 is out of range";
    }
    void failuresExitWith1AndKeepTheFile() {
        QFETCH(QByteArray, content);
        QFETCH(QStringList, args);
        QFETCH(QString, expected);
        {
            QFile file(m_inventory);
            QVERIFY(file.open(QIODevice::WriteOnly));
            file.write(content);
        }
        const QByteArray before = inventoryHash();
        const Run run = ctl(withInventory(args));
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(expected), qPrintable(run.err));
        QCOMPARE(inventoryHash(), before);
        QVERIFY(!QFile::exists(m_inventory + QStringLiteral(".bak")));
    }

    // Issue 14: on a full disk an update used to exit 0 and leave inventory.json.bak (and,
    // depending on what was left, inventory.json) at 0 bytes. Now it fails naming the file and
    // the cause, and both files are byte for byte what they were.
    void fullDiskKeepsInventoryAndBackup() {
        corral::test::SmallTmpfs disk;
        QString error;
        if (!disk.mount(QStringLiteral("64k"), &error)) QSKIP(qPrintable(error));
        const QString inventory = disk.filePath(QStringLiteral("inventory.json"));
        const QString backup = inventory + QStringLiteral(".bak");
        const auto onDisk = [&](const QStringList &args) {
            return ctl(QStringList{QStringLiteral("--inventory"), inventory} + args);
        };
        QCOMPARE(onDisk({QStringLiteral("site"), QStringLiteral("add"), QStringLiteral("web"),
                         QStringLiteral("--backends=127.0.0.1:3000,127.0.0.1:3001")})
                     .exitCode,
                 0);
        QCOMPARE(onDisk({QStringLiteral("site"), QStringLiteral("update"), QStringLiteral("web"),
                         QStringLiteral("--policy"), QStringLiteral("round-robin")})
                     .exitCode,
                 0);
        const auto contentOf = [](const QString &path) {
            QFile file(path);
            return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray("<unreadable>");
        };
        const QByteArray inventoryBefore = contentOf(inventory);
        const QByteArray backupBefore = contentOf(backup);
        QVERIFY(inventoryBefore.contains("\"web\""));
        QVERIFY(backupBefore.contains("\"web\""));
        QVERIFY2(disk.fill(&error), qPrintable(error));

        const Run update =
            onDisk({QStringLiteral("site"), QStringLiteral("update"), QStringLiteral("web"),
                    QStringLiteral("--policy"), QStringLiteral("least-conn")});
        QCOMPARE(update.exitCode, 1);
        QVERIFY2(update.err.contains(inventory +
                                     QStringLiteral(": cannot save: No space left on device")),
                 qPrintable(update.err));
        QVERIFY2(!update.out.contains(QStringLiteral("updated")), qPrintable(update.out));
        QCOMPARE(contentOf(inventory), inventoryBefore);
        QCOMPARE(contentOf(backup), backupBefore);
        QCOMPARE(QDir(disk.path()).entryList(QDir::Files | QDir::Hidden).size(), 3); // + filler
    }
};

QTEST_GUILESS_MAIN(TestCorralctl)
#include "tst_corralctl.moc"
