#include "BalancerFixture.h"
#include "BalancerLoad.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/BalancerConventions.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/HaproxyRuntime.h"
#include "upstreams/RemoteAddBackend.h"
#include "upstreams/RemoteRemoveBackend.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

/// The lifecycle of production sites (issue 17) against real parts: a "remote" host (sshd on
/// 127.0.0.15, this machine) runs demo workers as fallback workers behind a real nginx,
/// HAProxy and Apache, and corralctl removes a backend under continuous load, restarts one
/// worker under load, stops and starts a site, scales one over "remote" and "remote2" (sshd
/// on 127.0.0.57); failures leave config and inventory as they were.
class TestRemoteLifecycle : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.15")};
    NginxInstance m_nginx{QStringLiteral("lcnginx")};
    HaproxyInstance m_haproxy{QStringLiteral("lchaproxy")};
    ApacheInstance m_apache{QStringLiteral("lcapache")};
    QTemporaryDir m_home;
    std::unique_ptr<SshSession> m_session;
    Site m_nginxSite;
    Site m_haproxySite;
    Site m_apacheSite;
    QList<QPair<QString, quint16>> m_started; // every remote worker, stopped in cleanup
    // scale: a second worker host (sshd on 127.0.0.57, this machine too) and an nginx of its
    // own in front of the site's workers on both hosts.
    SshServer m_second{QStringLiteral("127.0.0.57")};
    NginxInstance m_scaleNginx{QStringLiteral("lcscale")};
    Site m_scaleSite;

    Host remoteHost() const { return m_server.inventoryHost(QStringLiteral("remote")); }

    Site workerSite(const QString &name) const {
        Site site;
        site.name = name;
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), QStringLiteral("{port}")};
        site.healthPath = QStringLiteral("/health");
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.basePort = workerBasePort();
        site.workers = 0;
        return site;
    }

    // `count` workers of `site` started over SSH as fallback workers, healthy, as its backends.
    bool startWorkers(Site &site, int count, QString *error) {
        auto ports = RemoteWorkers::allocatePorts(*m_session, site, count);
        if (!ports) return *error = ports.error(), false;
        for (quint16 port : ports.value()) {
            auto started = RemoteWorkers::start(*m_session, site, port);
            if (!started) return *error = started.error(), false;
            m_started.append({site.name, port});
            site.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
            site.ports.append(port);
        }
        for (quint16 port : ports.value())
            if (auto healthy = RemoteWorkers::waitHealthy(*m_session, site, port); !healthy)
                return *error = healthy.error(), false;
        return true;
    }

    /// The pid of each backend's worker (0: not running).
    QMap<quint16, qint64> pids(const Site &site) {
        QMap<quint16, qint64> result;
        QList<quint16> ports;
        for (const Backend &backend : site.backends)
            ports.append(backend.port);
        auto statuses = RemoteWorkers::status(*m_session, site.name, ports);
        if (!statuses) return result;
        for (const RemoteWorkerStatus &status : statuses.value())
            result.insert(status.port, status.running ? status.pid : 0);
        return result;
    }

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }

    CtlRun ctl(QStringList args) const {
        args.append(QStringLiteral("--accept-new"));
        Corralctl runner{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()};
        runner.timeoutMs = 120000;
        return runner.run(args);
    }

    void writeInventory(const Site &site) {
        QVERIFY_RESULT(corral::test::writeInventory(inventoryPath(), remoteHost(), site));
    }

    Site savedSite(const QString &name) {
        auto inventory = Inventory::load(inventoryPath());
        if (!inventory || !inventory->site(name)) return {};
        return *inventory->site(name);
    }

    static QStringList stepNames(const CtlRun &run) {
        QStringList names;
        const QJsonObject object = QJsonDocument::fromJson(run.out.toUtf8()).object();
        for (const QJsonValue &step : object.value(QStringLiteral("steps")).toArray())
            names.append(step.toObject().value(QStringLiteral("step")).toString());
        return names;
    }

    Host secondHost() const { return m_second.inventoryHost(QStringLiteral("remote2")); }

    /// The pid file of a worker of `site` on port `port` ("remote" and "remote2" are this
    /// machine's root: the same file on both).
    QString pidFile(const QString &site, quint16 port) const {
        auto home = RemoteWorkers::homeDirectory(*m_session);
        return home ? RemoteWorkers::workerFile(home.value(), site, port, QStringLiteral(".pid"))
                    : QString();
    }

    /// The ports of `site`'s workers with a pid file (on either host).
    QList<quint16> workersWithPidFiles(const QString &site) const {
        QList<quint16> ports;
        const QDir directory = QFileInfo(pidFile(site, 1)).dir();
        for (const QString &file : directory.entryList({QStringLiteral("*.pid")}, QDir::Files))
            ports.append(quint16(file.section(QLatin1Char('.'), 0, 0).toUInt()));
        return ports;
    }

    /// corralctl --json scale SITE ARGS..., its JSON object.
    QJsonObject scale(const QStringList &args, CtlRun *run) {
        *run = ctl(QStringList{QStringLiteral("--json"), QStringLiteral("scale")} + args);
        return QJsonDocument::fromJson(run->out.toUtf8()).object();
    }

    /// How many of `site`'s backends run on each host ("remote": loopback, "remote2": its
    /// address).
    QMap<QString, int> spreadOverHosts(const Site &site) const {
        QMap<QString, int> hosts;
        for (const Backend &backend : site.backends)
            ++hosts[backend.address == m_second.address()           ? QStringLiteral("remote2")
                    : backend.address == QLatin1String("127.0.0.1") ? QStringLiteral("remote")
                                                                    : backend.address];
        return hosts;
    }

    static QString changesReport(const QJsonObject &result) {
        QStringList lines;
        for (const QJsonValue &value : result.value(QStringLiteral("changes")).toArray()) {
            const QJsonObject change = value.toObject();
            lines.append(QStringLiteral("%1 %2 on %3: %4 ms")
                             .arg(change.value(QStringLiteral("operation")).toString(),
                                  change.value(QStringLiteral("backend")).toString(),
                                  change.value(QStringLiteral("host")).toString())
                             .arg(change.value(QStringLiteral("ms")).toInteger()));
        }
        return lines.join(QStringLiteral("; "));
    }

    static QString loadReport(BalancerLoad &load) {
        return QStringLiteral("%1 of %2 requests failed: %3")
            .arg(load.failed())
            .arg(load.total())
            .arg(load.failures().mid(0, 5).join(QStringLiteral("; ")));
    }

    /// corralctl remove-backend of the site's first backend under continuous load: no request
    /// fails, the installed config and the saved inventory no longer have it, its worker is
    /// gone and the others answer every request.
    void removeUnderLoad(Site &site, const QString &configPath, quint16 balancerPort) {
        writeInventory(site);
        const Backend gone = site.backends.first();
        const qint64 pid = pids(site).value(gone.port);
        QVERIFY(pid > 0);
        QVERIFY(readFile(configPath).contains(gone.key().toUtf8()));

        BalancerLoad load(balancerPort);
        QVERIFY(load.waitFor(20));
        const CtlRun removed = ctl(
            {QStringLiteral("--json"), QStringLiteral("remove-backend"), site.name, gone.key()});
        QVERIFY(load.waitFor(load.total() + 10)); // serving afterwards too
        load.stop();
        QVERIFY2(removed.exitCode == 0, qPrintable(removed.err + removed.out));
        const QJsonObject result = QJsonDocument::fromJson(removed.out.toUtf8()).object();
        QCOMPARE(result.value(QStringLiteral("result")).toString(), QStringLiteral("removed"));
        QCOMPARE(result.value(QStringLiteral("backend")).toString(), gone.key());
        QStringList main; // the module's own steps, without the applies' inner ones
        for (const QString &name : stepNames(removed))
            if (!name.contains(QLatin1Char('/')) || name == QLatin1String("apply/validate"))
                main.append(name);
        QCOMPARE(main, (QStringList{QStringLiteral("check"), QStringLiteral("drain"),
                                    QStringLiteral("wait"), QStringLiteral("stop"),
                                    QStringLiteral("apply/validate"), QStringLiteral("verify")}));
        QVERIFY2(load.failed() == 0, qPrintable(loadReport(load)));
        QVERIFY(load.total() > 50);
        qInfo("%s: %d requests during remove-backend, %d failed", qPrintable(site.name),
              load.total(), load.failed());

        QVERIFY(!configTextLists(readFile(configPath), gone));
        const Site saved = savedSite(site.name);
        QCOMPARE(saved.backends.size(), site.backends.size() - 1);
        for (const Backend &backend : saved.backends)
            QVERIFY(backend.key() != gone.key());
        QVERIFY(!saved.ports.contains(gone.port));
        QVERIFY2(!isAlive(pid), qPrintable(QStringLiteral("worker pid %1 still runs").arg(pid)));
        QCOMPARE(pids(Site{site}).value(gone.port), 0);
        const QMap<int, int> spread = spreadOverWorkers(balancerPort, 20);
        QCOMPARE(spread.value(gone.port), 0);
        QCOMPARE(spread.value(0), 0);
        site = saved;
    }

    /// corralctl restart SITE --worker HOST:PORT under load: that worker has a new pid, the
    /// others keep theirs, and no request fails.
    void restartOneUnderLoad(const Site &site, quint16 balancerPort) {
        writeInventory(site);
        QVERIFY(site.backends.size() >= 2);
        const Backend chosen = site.backends.last();
        const QMap<quint16, qint64> before = pids(site);
        BalancerLoad load(balancerPort);
        QVERIFY(load.waitFor(20));
        const CtlRun restarted = ctl({QStringLiteral("--json"), QStringLiteral("restart"),
                                      site.name, QStringLiteral("--worker"), chosen.key()});
        QVERIFY(load.waitFor(load.total() + 10));
        load.stop();
        QVERIFY2(restarted.exitCode == 0, qPrintable(restarted.err + restarted.out));
        QStringList main;
        for (const QString &name : stepNames(restarted))
            if (!name.contains(QLatin1Char('/'))) main.append(name);
        QCOMPARE(main, (QStringList{QStringLiteral("check"), QStringLiteral("host"),
                                    QStringLiteral("drain"), QStringLiteral("restart"),
                                    QStringLiteral("health"), QStringLiteral("enable")}));
        const QMap<quint16, qint64> after = pids(site);
        for (const Backend &backend : site.backends) {
            QVERIFY(after.value(backend.port) > 0);
            if (backend.port == chosen.port)
                QVERIFY(after.value(backend.port) != before.value(backend.port));
            else
                QCOMPARE(after.value(backend.port), before.value(backend.port));
        }
        QVERIFY2(load.failed() == 0, qPrintable(loadReport(load)));
        qInfo("%s: %d requests while one worker restarted, %d failed", qPrintable(site.name),
              load.total(), load.failed());
        QCOMPARE(savedSite(site.name).backends, site.backends); // nothing to save
    }

    /// corralctl stop SITE --maintenance PAGE: the balancer answers `stoppedStatus` itself with
    /// the page and every worker is gone; `reload` (when given) keeps it so; corralctl start
    /// SITE: every worker answers through the balancer again.
    void stopAndStart(const Site &site, quint16 balancerPort, int stoppedStatus,
                      const QStringList &reload = {}) {
        writeInventory(site);
        const QByteArray page = "<h1>" + site.name.toUtf8() + " is down for maintenance</h1>\n";
        const QString pageFile = m_home.filePath(site.name + QStringLiteral("-maintenance.html"));
        QVERIFY(writeFile(pageFile, page));
        const QMap<quint16, qint64> before = pids(site);
        const CtlRun stopped =
            ctl({QStringLiteral("stop"), site.name, QStringLiteral("--maintenance"), pageFile});
        QVERIFY2(stopped.exitCode == 0, qPrintable(stopped.err + stopped.out));
        QVERIFY2(stopped.out.contains(QStringLiteral("  ok    maintenance: ")) &&
                     stopped.out.contains(QStringLiteral("  ok    verify: ")),
                 qPrintable(stopped.out));
        for (int i = 0; i < 5; ++i) {
            const HttpReply reply = httpGet(balancerPort);
            QCOMPARE(reply.status, stoppedStatus);
            QCOMPARE(reply.body, page);
        }
        for (auto it = before.cbegin(); it != before.cend(); ++it)
            QVERIFY2(!isAlive(it.value()), qPrintable(QString::number(it.key())));
        for (qint64 pid : pids(site))
            QCOMPARE(pid, 0);
        if (!reload.isEmpty()) {
            // Every server is written down in the config: a reload does not bring one back.
            QProcess reloader;
            reloader.start(reload.first(), reload.mid(1));
            QVERIFY(reloader.waitForFinished(15000));
            QCOMPARE(reloader.exitCode(), 0);
            QTest::qWait(1000);
            for (int i = 0; i < 5; ++i)
                QCOMPARE(httpGet(balancerPort).status, stoppedStatus);
        }
        QCOMPARE(savedSite(site.name).backends, site.backends); // stop changes no inventory

        const CtlRun started = ctl({QStringLiteral("start"), site.name});
        QVERIFY2(started.exitCode == 0, qPrintable(started.err + started.out));
        QVERIFY2(started.out.contains(QStringLiteral("  ok    apply/verify: ")),
                 qPrintable(started.out));
        for (qint64 pid : pids(site))
            QVERIFY(pid > 0);
        const QMap<int, int> spread = spreadOverWorkers(balancerPort, 30);
        QCOMPARE(spread.value(0), 0);
        for (const Backend &backend : site.backends)
            QVERIFY2(spread.value(backend.port) > 0, qPrintable(backend.key()));
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        m_session = std::make_unique<SshSession>(m_server.trustedConfig());

        if (NginxInstance::available()) {
            m_nginxSite = workerSite(QStringLiteral("lcnginx"));
            QVERIFY2(startWorkers(m_nginxSite, 3, &error), qPrintable(error));
            m_nginxSite.balancer = m_nginx.balancer(QStringLiteral("remote"));
            QVERIFY2(m_nginx.start(&error), qPrintable(error));
            ConfigApplier applier(*m_session);
            const ApplyReport applied =
                applier.apply(m_nginxSite, RemoteBalancer::forSite(m_nginxSite).value(), false);
            QVERIFY2(applied.ok(), qPrintable(applied.error));
        }
        if (HaproxyInstance::available()) {
            m_haproxySite = workerSite(QStringLiteral("lchaproxy"));
            QVERIFY2(startWorkers(m_haproxySite, 3, &error), qPrintable(error));
            m_haproxySite.balancer = m_haproxy.balancer(QStringLiteral("remote"));
            QVERIFY2(m_haproxy.start(m_haproxySite, &error), qPrintable(error));
        }
        if (ApacheInstance::available()) {
            m_apacheSite = workerSite(QStringLiteral("lcapache"));
            QVERIFY2(startWorkers(m_apacheSite, 3, &error), qPrintable(error));
            m_apacheSite.balancer = m_apache.balancer(QStringLiteral("remote"));
            QVERIFY2(m_apache.start(&error), qPrintable(error));
            ConfigApplier applier(*m_session);
            const ApplyReport applied =
                applier.apply(m_apacheSite, RemoteBalancer::forSite(m_apacheSite).value(), false);
            QVERIFY2(applied.ok(), qPrintable(applied.error));
        }
    }

    void cleanupTestCase() {
        m_nginx.stop();
        m_haproxy.stop();
        m_apache.stop();
        // Every worker at once (each stop waits for its process group to be gone).
        QStringList stops;
        for (const auto &[site, port] : std::as_const(m_started))
            stops.append(QStringLiteral("( %1 ) &").arg(RemoteWorkers::stopCommand(site, port)));
        if (m_session && !m_scaleSite.name.isEmpty()) // workers corralctl scale started
            for (quint16 port : workersWithPidFiles(m_scaleSite.name))
                stops.append(QStringLiteral("( %1 ) &")
                                 .arg(RemoteWorkers::stopCommand(m_scaleSite.name, port)));
        if (m_session && !stops.isEmpty())
            (void)m_session->exec(stops.join(QLatin1Char('\n')) + QStringLiteral("\nwait"), 60000);
        m_session.reset();
    }

    void nginxRemoveBackendUnderLoad() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        removeUnderLoad(m_nginxSite, m_nginx.siteFile(), m_nginx.httpPort());
    }

    // A validate that refuses the config without the backend (it passes the drain's config,
    // which still names it): the apply rolls back, the worker is started again, the backend
    // put back, and the installed config and the inventory are byte for byte as before.
    void refusedValidationLeavesConfigAndInventory() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        Site site = m_nginxSite;
        QVERIFY(site.backends.size() >= 2);
        const Backend kept = site.backends.first();
        site.balancer->validate = QStringList{QStringLiteral("sh"),
                                              QStringLiteral("-c"),
                                              QStringLiteral("grep -qF -- \"$1\" \"$2\" && shift 2 "
                                                             "&& exec \"$@\""),
                                              QStringLiteral("sh"),
                                              kept.key(),
                                              m_nginx.siteFile()} +
                                  m_nginx.validateCommand();
        writeInventory(site);
        const QByteArray configBefore = readFile(m_nginx.siteFile());
        const QByteArray inventoryBefore = readFile(inventoryPath());
        const qint64 pid = pids(site).value(kept.port);
        QVERIFY(configBefore.contains(kept.key().toUtf8()));

        // No wait for in-flight requests: this is about the apply.
        const CtlRun refused = ctl({QStringLiteral("remove-backend"), site.name, kept.key(),
                                    QStringLiteral("--drain-timeout"), QStringLiteral("0")});
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(QStringLiteral("remove-backend lcnginx: apply/validate: ")),
                 qPrintable(refused.err));
        QVERIFY2(refused.err.contains(QStringLiteral("back in rotation")), qPrintable(refused.err));
        QVERIFY2(refused.out.contains(QStringLiteral("  ok    restore/health: ")),
                 qPrintable(refused.out));
        QCOMPARE(readFile(m_nginx.siteFile()), configBefore);
        QCOMPARE(readFile(inventoryPath()), inventoryBefore);
        const qint64 again = pids(site).value(kept.port);
        QVERIFY(again > 0 && again != pid); // stopped, then started again
        const QMap<int, int> spread = spreadOverWorkers(m_nginx.httpPort(), 20);
        QVERIFY(spread.value(kept.port) > 0);
        QCOMPARE(spread.value(0), 0);
    }

    // The last backend in rotation is not removed without --force, and one worker of a site
    // with one backend in rotation is not restarted through a drain; nothing changes.
    void lastBackendInRotationIsRefused() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        Site site = m_nginxSite;
        for (qsizetype i = 1; i < site.backends.size(); ++i)
            site.backends[i].down = true;
        writeInventory(site);
        const QByteArray configBefore = readFile(m_nginx.siteFile());
        const QByteArray inventoryBefore = readFile(inventoryPath());
        const QMap<quint16, qint64> before = pids(site);
        const CtlRun refused =
            ctl({QStringLiteral("remove-backend"), site.name, site.backends.first().key()});
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(QStringLiteral("check: ")) &&
                     refused.err.contains(QStringLiteral("last backend")) &&
                     refused.err.contains(QStringLiteral("force")),
                 qPrintable(refused.err));
        const CtlRun restart = ctl({QStringLiteral("restart"), site.name,
                                    QStringLiteral("--worker"), site.backends.first().key()});
        QCOMPARE(restart.exitCode, 1);
        QVERIFY2(restart.err.contains(QStringLiteral("only backend")), qPrintable(restart.err));
        QCOMPARE(readFile(m_nginx.siteFile()), configBefore);
        QCOMPARE(readFile(inventoryPath()), inventoryBefore);
        QCOMPARE(pids(site), before);
        // An unknown backend is named with the site's.
        const CtlRun unknown =
            ctl({QStringLiteral("remove-backend"), site.name, QStringLiteral("127.0.0.1:1")});
        QCOMPARE(unknown.exitCode, 1);
        QVERIFY2(unknown.err.contains(QStringLiteral("no backend 127.0.0.1:1")),
                 qPrintable(unknown.err));
        QCOMPARE(ctl({QStringLiteral("remove-backend"), site.name}).exitCode, 2);
    }

    void nginxRestartOneWorkerUnderLoad() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        restartOneUnderLoad(m_nginxSite, m_nginx.httpPort());
    }

    void nginxStopThenStart() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        stopAndStart(m_nginxSite, m_nginx.httpPort(), 502);
    }

    void haproxyRemoveBackendUnderLoad() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        removeUnderLoad(m_haproxySite, m_haproxy.siteFile(), m_haproxy.httpPort());
    }

    // HAProxy drains at runtime, so a refused apply is rolled back with a reload while the
    // backend's worker is stopped: it is started again and set ready, and under load no
    // request fails; config and inventory are as before.
    void haproxyRefusedValidationUnderLoad() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        Site site = m_haproxySite;
        QVERIFY(site.backends.size() >= 2);
        const Backend kept = site.backends.first();
        site.balancer->validate =
            QStringList{QStringLiteral("sh"),
                        QStringLiteral("-c"),
                        QStringLiteral("grep -qF -- \"$1\" \"$2\" && shift 2 && exec \"$@\""),
                        QStringLiteral("sh"),
                        kept.key(),
                        m_haproxy.siteFile()} +
            m_haproxy.validateCommand();
        writeInventory(site);
        const QByteArray configBefore = readFile(m_haproxy.siteFile());
        const QByteArray inventoryBefore = readFile(inventoryPath());
        BalancerLoad load(m_haproxy.httpPort());
        QVERIFY(load.waitFor(20));
        const CtlRun refused = ctl({QStringLiteral("remove-backend"), site.name, kept.key()});
        QVERIFY(load.waitFor(load.total() + 10));
        load.stop();
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(QStringLiteral("apply/validate: ")) &&
                     refused.err.contains(QStringLiteral("back in rotation")),
                 qPrintable(refused.err));
        QVERIFY2(load.failed() == 0, qPrintable(loadReport(load)));
        qInfo("%s: %d requests during a refused remove-backend, %d failed", qPrintable(site.name),
              load.total(), load.failed());
        QCOMPARE(readFile(m_haproxy.siteFile()), configBefore);
        QCOMPARE(readFile(inventoryPath()), inventoryBefore);
        QVERIFY(pids(site).value(kept.port) > 0);
        // Back in rotation means HAProxy's check says UP when the command returns (the next
        // operation may drain the other server at once).
        auto csv = readHaproxyStat(*m_session, m_haproxy.statsSocket());
        QVERIFY_RESULT(csv);
        auto stat = HaproxyStat::parse(csv.value());
        QVERIFY_RESULT(stat);
        auto status =
            stat->field(m_haproxy.backendName(), haproxyServerName(kept), QStringLiteral("status"));
        QVERIFY_RESULT(status);
        QVERIFY2(status->startsWith(QLatin1String("UP")), qPrintable(status.value()));
    }

    void haproxyRestartOneWorkerUnderLoad() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        restartOneUnderLoad(m_haproxySite, m_haproxy.httpPort());
    }

    // Restarting one worker drains it only while another server is UP at HAProxy: with the
    // other in maintenance (as right after a reload, while its checks are not yet passed) the
    // run stops at "drain" without draining, and no request fails.
    void haproxyDrainWaitsForAnotherServerUp() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        const Site &site = m_haproxySite;
        QCOMPARE(site.backends.size(), 2);
        const QString socket = m_haproxy.statsSocket();
        const QString proxy = m_haproxy.backendName();
        const QString other = haproxyServerName(site.backends.first());
        const Backend chosen = site.backends.last();
        QVERIFY_RESULT(runHaproxyCommand(
            *m_session, socket, haproxySetServerState(proxy, other, QStringLiteral("maint"))));
        auto ready = qScopeGuard([&] {
            (void)runHaproxyCommand(*m_session, socket,
                                    haproxySetServerState(proxy, other, QStringLiteral("ready")));
        });
        const qint64 pid = pids(site).value(chosen.port);
        BalancerLoad load(m_haproxy.httpPort());
        QVERIFY(load.waitFor(20));
        RemoteRollingRestart restart(*m_session,
                                     [this](const QString &host) -> Result<SshSession *> {
                                         if (host == QLatin1String("remote"))
                                             return m_session.get();
                                         return fail(QStringLiteral("unexpected host ") + host);
                                     });
        restart.setOnly(chosen.key());
        restart.setBalancerUpTimeoutMs(1500);
        const RollingRestartReport report =
            restart.run(site, RemoteBalancer::forSite(site).value(), {remoteHost()});
        QVERIFY(load.waitFor(load.total() + 10));
        load.stop();
        QVERIFY(!report.ok());
        QVERIFY2(report.error.startsWith(chosen.key() + QStringLiteral(": drain: no other server")),
                 qPrintable(report.error));
        QVERIFY2(load.failed() == 0, qPrintable(loadReport(load)));
        QCOMPARE(pids(site).value(chosen.port), pid);
    }

    void haproxyStopThenStart() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        stopAndStart(m_haproxySite, m_haproxy.httpPort(), 503, m_haproxy.reloadCommand());
    }

    void apacheRemoveBackendUnderLoad() {
        if (!ApacheInstance::available()) QSKIP("apache2 is not installed");
        removeUnderLoad(m_apacheSite, m_apache.siteFile(), m_apache.httpPort());
        if (QTest::currentTestFailed()) return;
        // Apache has no maintenance page yet: refused before anything changes.
        const QString pageFile = m_home.filePath(QStringLiteral("apache-maintenance.html"));
        QVERIFY(writeFile(pageFile, "<h1>down</h1>\n"));
        const QByteArray config = readFile(m_apache.siteFile());
        const CtlRun refused = ctl(
            {QStringLiteral("stop"), m_apacheSite.name, QStringLiteral("--maintenance"), pageFile});
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(QStringLiteral("maintenance: ")) &&
                     refused.err.contains(QStringLiteral("not supported for Apache")),
                 qPrintable(refused.err));
        QCOMPARE(readFile(m_apache.siteFile()), config);
        QCOMPARE(spreadOverWorkers(m_apache.httpPort(), 10).value(0), 0);
    }

    // corralctl scale of a production site over two worker hosts: 2 -> 4 puts both new
    // workers on the host with none (2/2), every one answering through nginx; 4 -> 1 under
    // load takes one from the host with the most each time, without a failed request, and
    // the removed workers are gone with their pid files; inventory and config agree.
    void nginxScaleTwoToFourToOneOverTwoHosts() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QString error;
        QVERIFY2(m_second.start(&error), qPrintable(error));
        QVERIFY2(m_scaleNginx.start(&error), qPrintable(error));
        Site site = workerSite(QStringLiteral("lcscale"));
        // Reached at 127.0.0.1 on "remote" (the balancer's host) and at 127.0.0.57 on
        // "remote2": the workers bind every address (see tst_addbackendbind).
        site.args += {QStringLiteral("--bind"), QStringLiteral("0.0.0.0")};
        site.hosts = {QStringLiteral("remote"), QStringLiteral("remote2")};
        QVERIFY2(startWorkers(site, 2, &error), qPrintable(error));
        m_scaleSite = site;
        site.balancer = m_scaleNginx.balancer(QStringLiteral("remote"));
        ConfigApplier applier(*m_session);
        const ApplyReport applied =
            applier.apply(site, RemoteBalancer::forSite(site).value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));
        Inventory inventory;
        QVERIFY_RESULT(inventory.addHost(remoteHost()));
        QVERIFY_RESULT(inventory.addHost(secondHost()));
        QVERIFY_RESULT(inventory.addSite(site));
        QVERIFY_RESULT(inventory.save(inventoryPath()));
        const quint16 balancerPort = m_scaleNginx.httpPort();

        QElapsedTimer clock;
        clock.start();
        CtlRun run = ctl({QStringLiteral("scale"), site.name, QStringLiteral("4")});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err + run.out));
        QStringList changes; // the output without the steps
        for (const QString &line : run.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts))
            if (!line.startsWith(QLatin1String("  ok"))) changes.append(line);
        qInfo("scale 2 -> 4 in %lld ms: %s", clock.elapsed(),
              qPrintable(changes.join(QStringLiteral(" | "))));
        for (const char *line :
             {"scale lcscale: 2 -> 4 backends\n", "add a worker on remote2 (2 -> 3)\n",
              "add a worker on remote2 (3 -> 4)\n", "  ok    health: "})
            QVERIFY2(run.out.contains(QLatin1String(line)), line);
        const Site saved = savedSite(site.name);
        QCOMPARE(saved.backends.size(), qsizetype(4));
        QCOMPARE(spreadOverHosts(saved), (QMap<QString, int>{{QStringLiteral("remote"), 2},
                                                             {QStringLiteral("remote2"), 2}}));
        QStringList keys;
        for (const Backend &backend : saved.backends)
            keys.append(backend.key());
        QVERIFY2(run.out.contains(QStringLiteral("  added %1 on remote2 in ").arg(keys.at(3))) &&
                     run.out.endsWith(QStringLiteral("scaled lcscale to 4 backends: %1\n")
                                          .arg(keys.join(QLatin1Char(' ')))),
                 qPrintable(run.out));
        const QByteArray config = readFile(m_scaleNginx.siteFile());
        for (const Backend &backend : saved.backends) {
            QVERIFY2(configTextLists(config, backend), qPrintable(backend.key()));
            QVERIFY2(QFile::exists(pidFile(site.name, backend.port)), qPrintable(backend.key()));
        }
        const QMap<int, int> spread = spreadOverWorkers(balancerPort, 40);
        QCOMPARE(spread.value(0), 0);
        for (const Backend &backend : saved.backends)
            QVERIFY2(spread.value(backend.port) > 0, qPrintable(backend.key()));

        const QMap<quint16, qint64> before = pids(saved);
        BalancerLoad load(balancerPort);
        QVERIFY(load.waitFor(20));
        const QJsonObject result = scale({site.name, QStringLiteral("1")}, &run);
        QVERIFY(load.waitFor(load.total() + 10)); // serving afterwards too
        load.stop();
        QVERIFY2(run.exitCode == 0, qPrintable(run.err + run.out));
        QCOMPARE(result.value(QStringLiteral("result")).toString(), QStringLiteral("scaled"));
        QCOMPARE(result.value(QStringLiteral("from")).toInt(), 4);
        QCOMPARE(result.value(QStringLiteral("to")).toInt(), 1);
        qInfo("scale 4 -> 1: %s", qPrintable(changesReport(result)));
        QVERIFY2(load.failed() == 0, qPrintable(loadReport(load)));
        qInfo("%d requests during scale 4 -> 1, %d failed", load.total(), load.failed());
        const Site after = savedSite(site.name);
        QCOMPARE(after.backends.size(), qsizetype(1));
        // Balanced on the way down: one from remote2 (the newest), then from remote, then
        // remote2's last; what stays is remote's first worker.
        QCOMPARE(after.backends.first(), saved.backends.first());
        QCOMPARE(result.value(QStringLiteral("backends")).toVariant().toStringList(),
                 QStringList{keys.first()});
        QStringList removed;
        for (const QJsonValue &value : result.value(QStringLiteral("changes")).toArray())
            removed.append(value.toObject().value(QStringLiteral("backend")).toString());
        QCOMPARE(removed, (QStringList{keys.at(3), keys.at(1), keys.at(2)}));
        const QByteArray configAfter = readFile(m_scaleNginx.siteFile());
        QVERIFY(configTextLists(configAfter, after.backends.first()));
        for (const Backend &backend : saved.backends.mid(1)) {
            QVERIFY2(!configTextLists(configAfter, backend), qPrintable(backend.key()));
            QVERIFY2(!isAlive(before.value(backend.port)), qPrintable(backend.key()));
            QVERIFY2(!QFile::exists(pidFile(site.name, backend.port)), qPrintable(backend.key()));
            QVERIFY(!after.ports.contains(backend.port));
        }
        QCOMPARE(workersWithPidFiles(site.name), QList<quint16>{after.backends.first().port});
        QCOMPARE(spreadOverWorkers(balancerPort, 10).value(after.backends.first().port), 10);
    }

    // A scale stops at the first failing change and keeps the ones before it: +2 over
    // remote2 and a host whose sshd does not answer adds one worker on remote2 (saved,
    // served), then fails on the other, naming it. Scaling to 0 needs --force.
    void scaleStopsAtTheFirstFailure() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QVERIFY(!m_scaleSite.name.isEmpty());
        const QString name = m_scaleSite.name;
        Host down = m_second.inventoryHost(QStringLiteral("down"));
        down.address = QStringLiteral("127.0.0.58"); // nothing listens there
        auto inventory = Inventory::load(inventoryPath());
        QVERIFY_RESULT(inventory);
        QVERIFY_RESULT(inventory->addHost(down));
        QVERIFY_RESULT(inventory->save(inventoryPath()));
        QCOMPARE(savedSite(name).backends.size(), qsizetype(1));

        CtlRun run;
        const QJsonObject result = scale(
            {name, QStringLiteral("+2"), QStringLiteral("--on"), QStringLiteral("remote2,down")},
            &run);
        QCOMPARE(run.exitCode, 1);
        QCOMPARE(result.value(QStringLiteral("result")).toString(), QStringLiteral("failed"));
        const QString message = result.value(QStringLiteral("error")).toString();
        QVERIFY2(message.contains(QStringLiteral("stopped at 2 backends")) &&
                     message.contains(QStringLiteral("down")),
                 qPrintable(message));
        QVERIFY2(run.err.contains(message), qPrintable(run.err));
        const QJsonArray changes = result.value(QStringLiteral("changes")).toArray();
        QCOMPARE(changes.size(), 2);
        QCOMPARE(changes.at(0).toObject().value(QStringLiteral("host")).toString(),
                 QStringLiteral("remote2"));
        QVERIFY(changes.at(0).toObject().value(QStringLiteral("ok")).toBool());
        QCOMPARE(changes.at(1).toObject().value(QStringLiteral("host")).toString(),
                 QStringLiteral("down"));
        QVERIFY(!changes.at(1).toObject().value(QStringLiteral("ok")).toBool());
        const Site saved = savedSite(name);
        QCOMPARE(saved.backends.size(), qsizetype(2));
        QCOMPARE(result.value(QStringLiteral("backends")).toArray().size(), 2);
        const Backend added = saved.backends.last();
        QCOMPARE(added.address, m_second.address());
        QVERIFY(configTextLists(readFile(m_scaleNginx.siteFile()), added));
        QVERIFY(spreadOverWorkers(m_scaleNginx.httpPort(), 10).value(added.port) > 0);

        // To 0 only with --force; refused before anything changes.
        const QByteArray inventoryBefore = readFile(inventoryPath());
        const CtlRun zero = ctl({QStringLiteral("scale"), name, QStringLiteral("0")});
        QCOMPARE(zero.exitCode, 1);
        QVERIFY2(zero.err.contains(QStringLiteral("--force")), qPrintable(zero.err));
        QCOMPARE(readFile(inventoryPath()), inventoryBefore);
        // An unknown --on host is named before anything changes.
        const CtlRun unknown = ctl({QStringLiteral("scale"), name, QStringLiteral("3"),
                                    QStringLiteral("--on"), QStringLiteral("nowhere")});
        QCOMPARE(unknown.exitCode, 1);
        QVERIFY2(unknown.err.contains(QStringLiteral("no host named \"nowhere\"")),
                 qPrintable(unknown.err));
        QCOMPARE(readFile(inventoryPath()), inventoryBefore);
    }
};

QTEST_MAIN(TestRemoteLifecycle)
#include "tst_remotelifecycle.moc"
