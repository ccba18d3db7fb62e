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
#include "upstreams/RemoteRollingRestart.h"
#include "upstreams/SiteLock.h"
#include "util/ListeningSockets.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QScopeGuard>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <algorithm>

#include <signal.h>

using namespace corral;
using namespace corral::test;

/// Rolling restarts of workers on a "remote" host (the sshd fixture on 127.0.0.2, this
/// machine) through a real nginx, HAProxy and Apache, under continuous load; and the
/// add-backend and rolling-restart commands of corralctl.
class TestRollingRestart : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    NginxInstance m_nginx{QStringLiteral("rollnginx")};
    HaproxyInstance m_haproxy{QStringLiteral("rollhaproxy")};
    ApacheInstance m_apache{QStringLiteral("rollapache")};
    QTemporaryDir m_home;
    std::unique_ptr<SshSession> m_session;
    Site m_nginxSite;
    Site m_haproxySite;
    Site m_apacheSite;
    QList<QPair<QString, quint16>> m_started; // every remote worker, stopped in cleanup

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

    // Two workers of `site` started over SSH by RemoteWorkers, healthy, as its backends.
    bool startWorkers(Site &site, QString *error) {
        auto ports = RemoteWorkers::allocatePorts(*m_session, site, 2);
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

    QMap<quint16, qint64> pids(const Site &site) {
        QMap<quint16, qint64> result;
        auto statuses = RemoteWorkers::status(*m_session, site.name, site.ports);
        if (!statuses) return result;
        for (const RemoteWorkerStatus &status : statuses.value())
            result.insert(status.port, status.running ? status.pid : 0);
        return result;
    }

    RemoteRollingRestart runner() {
        return RemoteRollingRestart(*m_session,
                                    [this](const QString &host) -> Result<SshSession *> {
                                        if (host == QLatin1String("remote")) return m_session.get();
                                        return fail(QStringLiteral("unexpected host ") + host);
                                    });
    }

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }

    CtlRun ctl(const QStringList &args) const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()}.run(args);
    }

    void writeInventory(const Site &site) {
        QVERIFY_RESULT(corral::test::writeInventory(inventoryPath(), remoteHost(), site));
    }

    void rollUnderLoad(const Site &site, quint16 balancerPort) {
        const QMap<quint16, qint64> before = pids(site);
        QCOMPARE(before.size(), 2);
        for (qint64 pid : before)
            QVERIFY(pid > 0);

        BalancerLoad load(balancerPort);
        QVERIFY(load.waitFor(20));
        RemoteRollingRestart restart = runner();
        QStringList seen;
        restart.setStepCallback([&](const RollingStep &step) {
            if (!step.step.contains(QLatin1Char('/')))
                seen.append(step.backend + QLatin1Char(' ') + step.step);
        });
        const RollingRestartReport report =
            restart.run(site, RemoteBalancer::fromSite(*site.balancer).value(), {remoteHost()});
        const int atEnd = load.total();
        QVERIFY(load.waitFor(atEnd + 10)); // serving afterwards too
        load.stop();
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY(report.failedBackend.isEmpty());
        const QStringList keys{site.backends.at(0).key(), site.backends.at(1).key()};
        QCOMPARE(report.restarted, keys);
        QStringList expected;
        for (const QString &key : keys) // the preflight checks every backend first
            expected.append(key + QStringLiteral(" check"));
        for (const QString &key : keys)
            for (const char *name : {"host", "drain", "restart", "health", "enable"})
                expected.append(key + QLatin1Char(' ') + QLatin1String(name));
        QCOMPARE(seen, expected);

        const QMap<quint16, qint64> after = pids(site);
        for (auto it = before.cbegin(); it != before.cend(); ++it) {
            QVERIFY2(after.value(it.key()) > 0, qPrintable(QString::number(it.key())));
            QVERIFY2(
                after.value(it.key()) != it.value(),
                qPrintable(QStringLiteral("port %1 kept pid %2").arg(it.key()).arg(it.value())));
        }
        QVERIFY2(load.failed() == 0,
                 qPrintable(QStringLiteral("%1 of %2 requests failed: %3")
                                .arg(load.failed())
                                .arg(load.total())
                                .arg(load.failures().join(QStringLiteral("; ")))));
        QVERIFY(load.total() > 50);
        qInfo("%d requests during the rolling restart, none failed", load.total());
    }

    // The restarted first worker never becomes healthy: the run stops there, naming the
    // backend and the step, and puts that backend back into rotation; the second worker is
    // untouched and the site still answers.
    void failAtFirstBackend(const Site &site, quint16 balancerPort) {
        const QMap<quint16, qint64> before = pids(site);
        Site failing = site;
        failing.args.append(QStringLiteral("--fail-health"));
        RemoteRollingRestart restart = runner();
        restart.setHealthTimeoutMs(2000);
        const RollingRestartReport report =
            restart.run(failing, RemoteBalancer::fromSite(*site.balancer).value(), {remoteHost()});
        QVERIFY(!report.ok());
        const Backend &first = site.backends.at(0);
        QCOMPARE(report.failedBackend, first.key());
        QVERIFY(report.restarted.isEmpty());
        QVERIFY2(report.error.startsWith(first.key() + QStringLiteral(": health: ")),
                 qPrintable(report.error));
        QVERIFY2(report.error.contains(QStringLiteral("answered 503")), qPrintable(report.error));
        QVERIFY(!report.steps.isEmpty());
        // Put back into rotation: the last step enables it again.
        QCOMPARE(report.steps.last().step, QStringLiteral("enable"));
        QVERIFY(report.steps.last().ok);
        QVERIFY2(
            report.steps.last().detail.startsWith(QStringLiteral("put back after the failure")),
            qPrintable(report.steps.last().detail));
        bool healthFailed = false;
        for (const RollingStep &step : report.steps) {
            if (step.step == QLatin1String("check")) continue; // every backend's preflight
            QCOMPARE(step.backend, first.key());
            healthFailed = healthFailed || (step.step == QLatin1String("health") && !step.ok);
        }
        QVERIFY(healthFailed);
        QCOMPARE(report.backends.size(), 2);
        QCOMPARE(report.backends.at(0).state, RollingBackendState::State::BackInRotation);
        QCOMPARE(report.backends.at(1).state, RollingBackendState::State::Untouched);
        QVERIFY2(report.describeBackends().startsWith(first.key() +
                                                      QStringLiteral(" back in rotation (")),
                 qPrintable(report.describeBackends()));

        const QMap<quint16, qint64> after = pids(site);
        const quint16 second = site.backends.at(1).port;
        QCOMPARE(after.value(second), before.value(second));
        QVERIFY(after.value(first.port) != before.value(first.port)); // restarted, unhealthy
        QCOMPARE(httpGet(balancerPort).status, 200);

        // Put the first worker back (healthy) and into rotation for the tests that follow.
        QVERIFY_RESULT(RemoteWorkers::restart(*m_session, site, first.port));
        QVERIFY_RESULT(RemoteWorkers::waitHealthy(*m_session, site, first.port));
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        m_session = std::make_unique<SshSession>(m_server.trustedConfig());

        if (NginxInstance::available()) {
            m_nginxSite = workerSite(QStringLiteral("rollnginx"));
            QVERIFY2(startWorkers(m_nginxSite, &error), qPrintable(error));
            m_nginxSite.balancer = m_nginx.balancer(QStringLiteral("remote"));
            QVERIFY2(m_nginx.start(&error), qPrintable(error));
            ConfigApplier applier(*m_session);
            const ApplyReport applied = applier.apply(
                m_nginxSite, RemoteBalancer::fromSite(*m_nginxSite.balancer).value(), false);
            QVERIFY2(applied.ok(), qPrintable(applied.error));
        }
        if (HaproxyInstance::available()) {
            m_haproxySite = workerSite(QStringLiteral("rollhaproxy"));
            QVERIFY2(startWorkers(m_haproxySite, &error), qPrintable(error));
            m_haproxySite.balancer = m_haproxy.balancer(QStringLiteral("remote"));
            QVERIFY2(m_haproxy.start(m_haproxySite, &error), qPrintable(error));
        }
        if (ApacheInstance::available()) {
            m_apacheSite = workerSite(QStringLiteral("rollapache"));
            QVERIFY2(startWorkers(m_apacheSite, &error), qPrintable(error));
            m_apacheSite.balancer = m_apache.balancer(QStringLiteral("remote"));
            QVERIFY2(m_apache.start(&error), qPrintable(error));
            ConfigApplier applier(*m_session);
            const ApplyReport applied = applier.apply(
                m_apacheSite, RemoteBalancer::fromSite(*m_apacheSite.balancer).value(), false);
            QVERIFY2(applied.ok(), qPrintable(applied.error));
        }
    }

    void cleanupTestCase() {
        m_nginx.stop();
        m_haproxy.stop();
        m_apache.stop();
        if (m_session)
            for (const auto &[site, port] : std::as_const(m_started))
                (void)RemoteWorkers::stop(*m_session, site, port);
        m_session.reset();
    }

    void loopbackAndHostResolution() {
        QVERIFY(isLoopbackAddress(QStringLiteral("127.0.0.1")));
        QVERIFY(isLoopbackAddress(QStringLiteral("127.3.2.1")));
        QVERIFY(isLoopbackAddress(QStringLiteral("::1")));
        QVERIFY(isLoopbackAddress(QStringLiteral("[::1]")));
        QVERIFY(isLoopbackAddress(QStringLiteral("LocalHost")));
        QVERIFY(!isLoopbackAddress(QStringLiteral("10.0.0.1")));
        QVERIFY(!isLoopbackAddress(QStringLiteral("128.0.0.1")));
        QVERIFY(!isLoopbackAddress(QStringLiteral("app1.internal")));

        Host a;
        a.name = QStringLiteral("web1");
        a.address = QStringLiteral("10.0.0.5");
        Host b;
        b.name = QStringLiteral("app2.internal");
        b.address = QStringLiteral("10.0.0.6");
        const QList<Host> hosts{a, b};
        const QString lb = QStringLiteral("lb");
        QCOMPARE(workerHostFor(Backend{QStringLiteral("127.0.0.1"), 3000}, lb, hosts).value(), lb);
        QCOMPARE(workerHostFor(Backend{QStringLiteral("::1"), 3000}, lb, hosts).value(), lb);
        QCOMPARE(workerHostFor(Backend{QStringLiteral("localhost"), 3000}, lb, hosts).value(), lb);
        QCOMPARE(workerHostFor(Backend{QStringLiteral("10.0.0.5"), 3000}, lb, hosts).value(),
                 QStringLiteral("web1"));
        QCOMPARE(workerHostFor(Backend{QStringLiteral("app2.internal"), 80}, lb, hosts).value(),
                 QStringLiteral("app2.internal"));
        QCOMPARE(workerHostFor(Backend{QStringLiteral("web1"), 80}, lb, hosts).value(),
                 QStringLiteral("web1"));
        // A loopback address that a host has is that host's (as in these tests: 127.0.0.x
        // stand in for machines); 127.0.0.1 is always the balancer's own.
        Host lo8;
        lo8.name = QStringLiteral("lo8");
        lo8.address = QStringLiteral("127.0.0.8");
        Host local;
        local.name = QStringLiteral("local");
        local.address = QStringLiteral("127.0.0.1");
        const QList<Host> withLoopbackHosts{a, lo8, local};
        QCOMPARE(
            workerHostFor(Backend{QStringLiteral("127.0.0.8"), 80}, lb, withLoopbackHosts).value(),
            QStringLiteral("lo8"));
        QCOMPARE(
            workerHostFor(Backend{QStringLiteral("127.0.0.1"), 80}, lb, withLoopbackHosts).value(),
            lb);
        QCOMPARE(
            workerHostFor(Backend{QStringLiteral("127.0.0.9"), 80}, lb, withLoopbackHosts).value(),
            lb);
        const auto unknown = workerHostFor(Backend{QStringLiteral("10.9.9.9"), 3001}, lb, hosts);
        QVERIFY(!unknown);
        QVERIFY2(unknown.error().contains(QStringLiteral("10.9.9.9:3001")),
                 qPrintable(unknown.error()));
    }

    void haproxyRuntimeApiParsing() {
        const QByteArray csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot\n"
                               "corral-shop,FRONTEND,,,3,5,4096,100\n"
                               "corral-shop,127.0.0.1:3000,0,0,2,4,,50\n"
                               "corral-shop,127.0.0.1:3001,0,0,0,3,,50\n"
                               "corral-shop,BACKEND,0,0,2,5,,100\n";
        const auto currentSessions = [](const QByteArray &text, const QString &proxy,
                                        const QString &server) -> Result<int> {
            auto stat = HaproxyStat::parse(text);
            if (!stat) return fail(stat.error());
            return stat->currentSessions(proxy, server);
        };
        QCOMPARE(
            currentSessions(csv, QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:3000"))
                .value(),
            2);
        QCOMPARE(
            currentSessions(csv, QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:3001"))
                .value(),
            0);
        QVERIFY(
            !currentSessions(csv, QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:9")));
        QVERIFY(!currentSessions("garbage", QStringLiteral("x"), QStringLiteral("y")));
        const QByteArray states = "# pxname,svname,scur,status,check_status\n"
                                  "corral-shop,127.0.0.1:3000,0,DOWN 1/2,L7OK\n"
                                  "corral-shop,127.0.0.1:3001,0,UP,L7OK\n";
        QCOMPARE(HaproxyStat::parse(states)
                     ->field(QStringLiteral("corral-shop"), QStringLiteral("127.0.0.1:3000"),
                             QStringLiteral("status"))
                     .value(),
                 QStringLiteral("DOWN 1/2"));
        QVERIFY(!HaproxyStat::parse(states)->field(QStringLiteral("corral-shop"),
                                                   QStringLiteral("127.0.0.1:3001"),
                                                   QStringLiteral("nosuchcolumn")));
        QCOMPARE(haproxyServerName(Backend{QStringLiteral("::1"), 3000}),
                 QStringLiteral("::1:3000"));
        const QString command = haproxyRuntimeCommand(QStringLiteral("/run/h a/x.sock"),
                                                      QStringLiteral("set server a/b state drain"));
        QVERIFY2(command.contains(QStringLiteral("'set server a/b state drain'")),
                 qPrintable(command));
        QVERIFY2(command.contains(QStringLiteral("'/run/h a/x.sock'")), qPrintable(command));
    }

    // portHolderCommand, run by a local shell: the process listening on a port, or a child
    // of it, is the worker; any other pid is not; a free port has no holder.
    void portHolderTellsWhoListens() {
        DemoWorkers holder(1);
        QString error;
        QVERIFY2(holder.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        const auto run = [](const QString &command) {
            QProcess shell;
            shell.start(QStringLiteral("sh"), {QStringLiteral("-c"), command});
            shell.waitForFinished(15000);
            return qMakePair(shell.exitCode(),
                             QString::fromUtf8(shell.readAllStandardOutput()).trimmed());
        };
        const qint64 workerPid = holder.process(0).processId();
        QCOMPARE(run(RemoteWorkers::portHolderCommand(workerPid, holder.port(0))),
                 qMakePair(0, QStringLiteral("worker")));
        // The test is the worker's parent: a worker that listens from a child counts too.
        QCOMPARE(run(RemoteWorkers::portHolderCommand(QCoreApplication::applicationPid(),
                                                      holder.port(0)))
                     .first,
                 0);
        QCOMPARE(run(RemoteWorkers::portHolderCommand(4194304, holder.port(0))),
                 qMakePair(1, QStringLiteral("other %1").arg(workerPid)));
        QCOMPARE(run(RemoteWorkers::portHolderCommand(workerPid, freePort())).first, 2);
    }

    // Processes Corral did not start hold the backends' ports: the preflight refuses before
    // anything is touched (no config written), naming the holder of each.
    void foreignPortHolderIsNotTheNewWorker() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        DemoWorkers holders(2);
        QString error;
        QVERIFY2(holders.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
        Site site = workerSite(QStringLiteral("rollforeign"));
        for (int i = 0; i < holders.count(); ++i) {
            site.backends.append(Backend{QStringLiteral("127.0.0.1"), holders.port(i)});
            site.ports.append(holders.port(i));
        }
        // A site file of its own in the running nginx, on a port of its own.
        site.balancer = m_nginx.balancer(QStringLiteral("remote"));
        site.balancer->configPath = m_nginx.prefixPath(QStringLiteral("conf.d/rollforeign.conf"));
        site.balancer->httpPort = freePort();
        site.balancer->probeUrl =
            QStringLiteral("http://127.0.0.1:%1/").arg(site.balancer->httpPort);
        const auto removeSite = qScopeGuard([&] {
            QFile::remove(site.balancer->configPath);
            for (const QString &left : QDir(site.balancer->stateDirectory)
                                           .entryList({QStringLiteral("rollforeign.conf.*")}))
                QFile::remove(site.balancer->stateDirectory + QLatin1Char('/') + left);
            QVERIFY_RESULT(m_nginx.reload());
        });
        m_started.append({site.name, holders.port(0)});

        RemoteRollingRestart restart = runner();
        restart.setHealthTimeoutMs(5000);
        const RollingRestartReport report =
            restart.run(site, RemoteBalancer::fromSite(*site.balancer).value(), {remoteHost()});
        QVERIFY(!report.ok());
        QVERIFY(report.failedBackend.isEmpty());
        for (int i = 0; i < holders.count(); ++i)
            QVERIFY2(
                report.error.contains(QStringLiteral("%1 on remote: port %2 is held by pid %3 (")
                                          .arg(site.backends.at(i).key())
                                          .arg(holders.port(i))
                                          .arg(holders.process(i).processId())),
                qPrintable(report.error));
        QVERIFY(report.restarted.isEmpty());
        QVERIFY(report.backends.isEmpty());
        for (const RollingStep &step : report.steps)
            QCOMPARE(step.step, QStringLiteral("check"));
        QVERIFY(!QFile::exists(site.balancer->configPath));      // never applied
        QCOMPARE(holders.process(0).state(), QProcess::Running); // never signalled
    }

    void nginxRollingRestartUnderLoad() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        rollUnderLoad(m_nginxSite, m_nginx.httpPort());
        // The installed config is the site's again: nothing left marked down.
        QVERIFY(!readFile(m_nginx.siteFile()).contains(" down"));
    }

    void nginxFailureStopsAtFirstBackend() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        failAtFirstBackend(m_nginxSite, m_nginx.httpPort());
        // Put back: the installed config marks no backend down.
        const QByteArray file = readFile(m_nginx.siteFile());
        QVERIFY2(!file.contains(" down"), file.constData());
        QVERIFY(file.contains(m_nginxSite.backends.at(0).key().toUtf8()));
    }

    // The connection that holds the site's lock dies while a restarted worker's health check
    // passes: the run stops before putting anything back in rotation or touching the next
    // backend (a session that reconnected would otherwise carry on without the lock).
    void lostLockStopsTheRun() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        const Site &site = m_nginxSite;
        const RemoteBalancer target = RemoteBalancer::fromSite(*site.balancer).value();
        auto lock = SiteLock::acquire(*m_session, target, QStringLiteral("remote"), {});
        QVERIFY_RESULT(lock);
        QVERIFY(lock.value()->isHeld());
        const QMap<quint16, qint64> before = pids(site);
        const QString first = site.backends.at(0).key();
        RemoteRollingRestart restart = runner();
        restart.setLockCheck([&] { return lock.value()->isHeld(); });
        int killed = 0;
        restart.setStepCallback([&](const RollingStep &step) {
            if (step.backend != first || step.step != QLatin1String("health") || killed) return;
            // The sshd processes serving our connection (the listener itself stays).
            QList<qint64> victims;
            for (const qint64 pid : processTree(m_server.pid()))
                if (pid != m_server.pid() && ::kill(pid_t(pid), SIGKILL) == 0) victims.append(pid);
            killed = int(victims.size());
            // SIGKILL is asynchronous: the connection is gone once they are (a zombie has
            // closed its sockets already).
            const auto gone = [](qint64 pid) {
                QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
                if (!stat.open(QIODevice::ReadOnly)) return true;
                const QByteArray text = stat.readAll();
                return text.mid(text.lastIndexOf(')') + 2, 1) == "Z";
            };
            const QDeadlineTimer deadline(5000);
            while (!std::all_of(victims.cbegin(), victims.cend(), gone) && !deadline.hasExpired())
                QThread::msleep(10);
        });
        const RollingRestartReport report = restart.run(site, target, {remoteHost()});
        QVERIFY(killed > 0);
        QVERIFY(!report.ok());
        QCOMPARE(report.failedBackend, first);
        QCOMPARE(report.steps.last().step, QStringLiteral("lock"));
        QVERIFY2(report.error.contains(QStringLiteral("lock on remote was lost")),
                 qPrintable(report.error));
        QVERIFY(!lock.value()->isHeld());
        // The second worker was not touched.
        const quint16 second = site.backends.at(1).port;
        QCOMPARE(pids(site).value(second), before.value(second));

        // Put the first backend back for the tests that follow (the session reconnects).
        lock.value().reset();
        ConfigApplier applier(*m_session);
        const ApplyReport restored = applier.apply(site, target, false);
        QVERIFY2(restored.ok(), qPrintable(restored.error));
    }

    // The lock's holder record is a file anyone who could open it may have written: a
    // second operation quotes it escaped, never as terminal control sequences.
    void hostileLockHolderIsShownEscaped() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        const RemoteBalancer target = RemoteBalancer::forSite(m_nginxSite).value();
        auto held = SiteLock::acquire(*m_session, target, QStringLiteral("remote"), {});
        QVERIFY_RESULT(held);
        QFile record(held.value()->localPath());
        QVERIFY(record.open(QIODevice::WriteOnly | QIODevice::Truncate));
        record.write("evil\x1b[2J\x1b]0;pwned\x07 pid 1\n");
        record.close();
        SiteLock::Options noWait;
        noWait.noWait = true;
        auto second = SiteLock::acquire(*m_session, target, QStringLiteral("remote"), noWait);
        QVERIFY(!second);
        QVERIFY2(second.error().contains(QStringLiteral("evil")), qPrintable(second.error()));
        for (const QChar c : second.error())
            QVERIFY2(c.unicode() >= 0x20 && c.unicode() != 0x7f, qPrintable(second.error()));
    }

    void haproxyRollingRestartUnderLoad() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        rollUnderLoad(m_haproxySite, m_haproxy.httpPort());
    }

    void haproxyFailureStopsAtFirstBackend() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        failAtFirstBackend(m_haproxySite, m_haproxy.httpPort());
        // Drained on the runtime API, then set ready again after the failure: the admin state
        // has no drain flag (`show stat` may say DOWN: HAProxy's own check keeps the failing
        // worker out, which is its job).
        auto state = m_session->exec(
            haproxyRuntimeCommand(
                m_haproxy.statsSocket(),
                QStringLiteral("show servers state %1").arg(m_haproxy.backendName())),
            10000);
        QVERIFY_RESULT(state);
        const QString server = haproxyServerName(m_haproxySite.backends.at(0));
        // Fields: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
        constexpr int AdminDrainFlags = 0x18; // SRV_ADMF_FDRAIN | SRV_ADMF_IDRAIN
        int adminState = -1;
        for (const QByteArray &line : state->stdOut.split('\n')) {
            const QList<QByteArray> fields = line.simplified().split(' ');
            if (fields.size() > 6 && fields.at(3) == server.toUtf8())
                adminState = fields.at(6).toInt();
        }
        QVERIFY2(adminState >= 0 && (adminState & AdminDrainFlags) == 0, state->stdOut.constData());
    }

    // Apache has no runtime API either: drain and enable are graceful reloads of the site's
    // file with the backend marked status=+D, then without.
    void apacheRollingRestartUnderLoad() {
        if (!ApacheInstance::available()) QSKIP("apache2 is not installed");
        const qint64 parent = m_apache.pid();
        rollUnderLoad(m_apacheSite, m_apache.httpPort());
        QVERIFY(!readFile(m_apache.siteFile()).contains("status=+D"));
        QCOMPARE(m_apache.pid(), parent); // reloaded, never restarted
    }

    void apacheFailureStopsAtFirstBackend() {
        if (!ApacheInstance::available()) QSKIP("apache2 is not installed");
        failAtFirstBackend(m_apacheSite, m_apache.httpPort());
        // Both balancers (http:// and ws://) have the failed member back, not marked down.
        const QByteArray file = readFile(m_apache.siteFile());
        for (const char *scheme : {"http", "ws"}) {
            const QByteArray member = QByteArray("BalancerMember \"") + scheme + "://" +
                                      m_apacheSite.backends.at(0).key().toUtf8() + '"';
            QVERIFY2(file.contains(member), member.constData());
        }
        QVERIFY(!file.contains("status=+D"));
    }

    // corralctl add-backend: a third worker on the balancer's host, serving through nginx,
    // saved to the inventory; failures exit 1 and change nothing.
    void corralctlAddBackend() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        writeInventory(m_nginxSite);
        const CtlRun added = ctl({QStringLiteral("add-backend"), QStringLiteral("rollnginx"),
                                  QStringLiteral("--accept-new")});
        QVERIFY2(added.exitCode == 0, qPrintable(added.err + added.out));
        QVERIFY2(added.out.contains(QStringLiteral("  ok    health: ")), qPrintable(added.out));
        QVERIFY(added.out.contains(QStringLiteral("  ok    verify: ")));
        auto inventory = Inventory::load(inventoryPath());
        QVERIFY_RESULT(inventory);
        const Site *site = inventory->site(QStringLiteral("rollnginx"));
        QVERIFY(site);
        QCOMPARE(site->backends.size(), 3);
        const Backend third = site->backends.last();
        m_started.append({site->name, third.port});
        QCOMPARE(third.address, QStringLiteral("127.0.0.1"));
        QVERIFY(site->ports.contains(third.port));
        QVERIFY2(added.out.contains(QStringLiteral("added backend ") + third.key()),
                 qPrintable(added.out));
        QVERIFY(readFile(m_nginx.siteFile()).contains(third.key().toUtf8()));
        const QDeadlineTimer deadline(15000);
        bool reached = false;
        while (!reached && !deadline.hasExpired())
            reached = httpGet(m_nginx.httpPort()).jsonNumber(QStringLiteral("port")) == third.port;
        QVERIFY(reached);
        m_nginxSite = *site;

        // --json and a failing one: a host that does not exist.
        const CtlRun unknownHost =
            ctl({QStringLiteral("--json"), QStringLiteral("add-backend"),
                 QStringLiteral("rollnginx"), QStringLiteral("--on"), QStringLiteral("nope")});
        QCOMPARE(unknownHost.exitCode, 1);
        QVERIFY2(unknownHost.err.contains(QStringLiteral("no host named \"nope\"")),
                 qPrintable(unknownHost.err));
        const CtlRun noSite = ctl({QStringLiteral("add-backend"), QStringLiteral("nosuch")});
        QCOMPARE(noSite.exitCode, 1);
        QCOMPARE(ctl({QStringLiteral("add-backend")}).exitCode, 2);
        QCOMPARE(ctl({QStringLiteral("add-backend"), QStringLiteral("rollnginx"),
                      QStringLiteral("--bogus")})
                     .exitCode,
                 2);
        QCOMPARE(Inventory::load(inventoryPath())->site(QStringLiteral("rollnginx"))->backends,
                 m_nginxSite.backends);

        // A config the balancer refuses: exit 1 naming the step, the new worker stopped
        // again, the inventory and the balancer's file unchanged.
        Site refused = m_nginxSite;
        refused.balancer->validate = {QStringLiteral("sh"), QStringLiteral("-c"),
                                      QStringLiteral("echo 'nginx: [emerg] refused by test' >&2; "
                                                     "exit 1")};
        writeInventory(refused);
        const QByteArray file = readFile(m_nginx.siteFile());
        const QByteArray inventoryBefore = readFile(inventoryPath());
        const CtlRun failed = ctl(
            {QStringLiteral("--json"), QStringLiteral("add-backend"), QStringLiteral("rollnginx")});
        QCOMPARE(failed.exitCode, 1);
        const QJsonObject json = QJsonDocument::fromJson(failed.out.toUtf8()).object();
        QCOMPARE(json.value(QStringLiteral("result")).toString(), QStringLiteral("failed"));
        QVERIFY2(json.value(QStringLiteral("error"))
                     .toString()
                     .contains(QStringLiteral("validate: nginx: [emerg] refused by test")),
                 qPrintable(failed.out));
        QVERIFY2(failed.err.contains(QStringLiteral("was stopped and its pid file removed")),
                 qPrintable(failed.err));
        const QJsonArray steps = json.value(QStringLiteral("steps")).toArray();
        QVERIFY(steps.size() > 3);
        const QJsonObject allocate = steps.first().toObject();
        QCOMPARE(allocate.value(QStringLiteral("step")).toString(), QStringLiteral("allocate"));
        const quint16 newPort = quint16(
            allocate.value(QStringLiteral("detail")).toString().section(' ', 1, 1).toUInt());
        QVERIFY(newPort > 0);
        auto statuses = RemoteWorkers::status(*m_session, QStringLiteral("rollnginx"), {newPort});
        QVERIFY_RESULT(statuses);
        QCOMPARE(statuses->size(), 1);
        QVERIFY(!statuses->first().running);
        QCOMPARE(readFile(m_nginx.siteFile()), file);
        QCOMPARE(readFile(inventoryPath()), inventoryBefore);
        writeInventory(m_nginxSite);
    }

    // corralctl rolling-restart: --json shape and exit codes, success and failure.
    void corralctlRollingRestart() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        // Two backends are enough here (the added third keeps running until cleanup).
        while (m_nginxSite.backends.size() > 2)
            m_nginxSite.backends.removeLast();
        m_nginxSite.ports.clear();
        for (const Backend &backend : std::as_const(m_nginxSite.backends))
            m_nginxSite.ports.append(backend.port);
        writeInventory(m_nginxSite);
        const QMap<quint16, qint64> before = pids(m_nginxSite);
        const CtlRun ok = ctl({QStringLiteral("--json"), QStringLiteral("rolling-restart"),
                               QStringLiteral("rollnginx"), QStringLiteral("--drain-timeout"),
                               QStringLiteral("5")});
        QVERIFY2(ok.exitCode == 0, qPrintable(ok.err + ok.out));
        const QJsonObject json = QJsonDocument::fromJson(ok.out.toUtf8()).object();
        QCOMPARE(json.value(QStringLiteral("site")).toString(), QStringLiteral("rollnginx"));
        QCOMPARE(json.value(QStringLiteral("result")).toString(), QStringLiteral("restarted"));
        QVERIFY(!json.contains(QStringLiteral("error")));
        QCOMPARE(json.value(QStringLiteral("restarted")).toArray().size(),
                 m_nginxSite.backends.size());
        const QJsonArray steps = json.value(QStringLiteral("steps")).toArray();
        QVERIFY(steps.size() >= 5 * m_nginxSite.backends.size());
        const QJsonObject firstStep = steps.first().toObject();
        QCOMPARE(firstStep.value(QStringLiteral("backend")).toString(),
                 m_nginxSite.backends.first().key());
        QCOMPARE(firstStep.value(QStringLiteral("step")).toString(), QStringLiteral("check"));
        QVERIFY(firstStep.value(QStringLiteral("ok")).toBool());
        QVERIFY(firstStep.contains(QStringLiteral("detail")));
        const QMap<quint16, qint64> after = pids(m_nginxSite);
        for (auto it = before.cbegin(); it != before.cend(); ++it)
            QVERIFY(after.value(it.key()) > 0 && after.value(it.key()) != it.value());

        // Failure: exit 1, the failed backend and step named.
        Site failing = m_nginxSite;
        failing.args.append(QStringLiteral("--fail-health"));
        writeInventory(failing);
        const CtlRun failed = ctl({QStringLiteral("--json"), QStringLiteral("rolling-restart"),
                                   QStringLiteral("rollnginx"), QStringLiteral("--health-timeout"),
                                   QStringLiteral("2")});
        QCOMPARE(failed.exitCode, 1);
        const QJsonObject failure = QJsonDocument::fromJson(failed.out.toUtf8()).object();
        QCOMPARE(failure.value(QStringLiteral("result")).toString(), QStringLiteral("failed"));
        const QString firstKey = m_nginxSite.backends.first().key();
        QCOMPARE(failure.value(QStringLiteral("failedBackend")).toString(), firstKey);
        QVERIFY2(failure.value(QStringLiteral("error"))
                     .toString()
                     .startsWith(firstKey + QStringLiteral(": health: ")),
                 qPrintable(failed.out));
        QVERIFY(failure.value(QStringLiteral("restarted")).toArray().isEmpty());
        QVERIFY2(
            failed.err.contains(QStringLiteral("afterwards: %1 back in rotation").arg(firstKey)),
            qPrintable(failed.err));
        QVERIFY(!failed.err.contains(QStringLiteral("stays out of rotation")));
        const QJsonArray states = failure.value(QStringLiteral("backends")).toArray();
        QCOMPARE(states.size(), m_nginxSite.backends.size());
        QCOMPARE(states.at(0).toObject().value(QStringLiteral("state")).toString(),
                 QStringLiteral("back-in-rotation"));
        QCOMPARE(states.at(1).toObject().value(QStringLiteral("state")).toString(),
                 QStringLiteral("untouched"));
        QCOMPARE(httpGet(m_nginx.httpPort()).status, 200);
        // Text output: the steps as they happen, the failing one marked.
        const CtlRun text = ctl({QStringLiteral("rolling-restart"), QStringLiteral("rollnginx"),
                                 QStringLiteral("--health-timeout"), QStringLiteral("1")});
        QCOMPARE(text.exitCode, 1);
        QVERIFY2(text.out.contains(QStringLiteral("  ok    %1  restart: new pid ").arg(firstKey)),
                 qPrintable(text.out));
        QVERIFY2(text.out.contains(QStringLiteral("  FAIL  %1  health: ").arg(firstKey)),
                 qPrintable(text.out));
        QVERIFY2(text.err.contains(
                     QStringLiteral("rolling-restart rollnginx: %1: health: ").arg(firstKey)),
                 qPrintable(text.err));
        QCOMPARE(httpGet(m_nginx.httpPort()).status, 200);

        // Back to a healthy first worker and the full config.
        writeInventory(m_nginxSite);
        QVERIFY_RESULT(
            RemoteWorkers::restart(*m_session, m_nginxSite, m_nginxSite.backends.first().port));
        QVERIFY_RESULT(
            RemoteWorkers::waitHealthy(*m_session, m_nginxSite, m_nginxSite.backends.first().port));
        const CtlRun applied = ctl({QStringLiteral("apply"), QStringLiteral("rollnginx")});
        QVERIFY2(applied.exitCode == 0, qPrintable(applied.err));

        QCOMPARE(ctl({QStringLiteral("rolling-restart")}).exitCode, 2);
        QCOMPARE(ctl({QStringLiteral("rolling-restart"), QStringLiteral("rollnginx"),
                      QStringLiteral("--drain-timeout"), QStringLiteral("soon")})
                     .exitCode,
                 1); // a bad value: exit 1 (a malformed command line is 2)
        QCOMPARE(ctl({QStringLiteral("rolling-restart"), QStringLiteral("nosuch")}).exitCode, 1);
    }
};

QTEST_GUILESS_MAIN(TestRollingRestart)
#include "tst_rollingrestart.moc"
