#include "BalancerFixture.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

#define QVERIFY_RESULT(expr)                                                                       \
    do {                                                                                           \
        const auto &result_ = (expr);                                                              \
        QVERIFY2(result_.ok(), qPrintable(result_.error()));                                       \
    } while (false)

namespace {

int workerPortOf(const HttpReply &reply) {
    return int(reply.jsonNumber(QStringLiteral("port")));
}

struct Run {
    int exitCode = -1;
    QString out;
    QString err;
};

} // namespace

/// Transactional apply and import against a real HAProxy (master-worker mode, reloaded by
/// SIGUSR2) whose whole config is the file Corral renders, driven over a real sshd on
/// 127.0.0.2 (this machine, as root).
class TestApplyHaproxy : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    HaproxyInstance m_haproxy;
    QTemporaryDir m_home;
    QProcess m_workers[2];
    quint16 m_workerPorts[2] = {};

    SshConfig trusted() const {
        SshConfig config = m_server.config();
        config.acceptNew = true;
        return config;
    }

    Site site() const {
        Site site;
        site.name = QStringLiteral("shop");
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.workers = 0;
        site.backends = {Backend{QStringLiteral("127.0.0.1"), m_workerPorts[0]},
                         Backend{QStringLiteral("127.0.0.1"), m_workerPorts[1]}};
        site.balancer = m_haproxy.balancer(QStringLiteral("remote"));
        return site;
    }

    RemoteBalancer target() const { return RemoteBalancer::fromSite(*site().balancer).value(); }

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }

    Run ctl(const QStringList &args) {
        QProcess process;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("HOME"), m_home.path());
        env.insert(QStringLiteral("XDG_CONFIG_HOME"), m_home.filePath(QStringLiteral("config")));
        env.insert(QStringLiteral("CORRAL_INVENTORY"), inventoryPath());
        env.remove(QStringLiteral("SSH_AUTH_SOCK"));
        env.insert(QStringLiteral("DBUS_SESSION_BUS_ADDRESS"),
                   QStringLiteral("unix:path=/nonexistent/corral-test-bus"));
        env.remove(QStringLiteral("DISPLAY"));
        process.setProcessEnvironment(env);
        process.start(QStringLiteral(CORRALCTL_PATH), args);
        process.closeWriteChannel();
        if (!process.waitForFinished(60000)) {
            process.kill();
            process.waitForFinished(5000);
            return {};
        }
        return Run{process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
                   QString::fromUtf8(process.readAllStandardOutput()),
                   QString::fromUtf8(process.readAllStandardError())};
    }

    QMap<int, int> spread(int count) {
        QMap<int, int> perWorker;
        for (int i = 0; i < count; ++i)
            perWorker[workerPortOf(httpGet(m_haproxy.httpPort()))] += 1;
        return perWorker;
    }

private Q_SLOTS:
    void initTestCase() {
        if (!HaproxyInstance::available())
            QSKIP("haproxy or socat is not installed (installer/install-deps.sh installs them)");
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        for (int i = 0; i < 2; ++i) {
            m_workerPorts[i] = freePort();
            m_workers[i].start(QStringLiteral(DEMO_WORKER_PATH),
                               {QStringLiteral("--port"), QString::number(m_workerPorts[i])});
            QVERIFY(m_workers[i].waitForStarted(5000));
        }
        for (int i = 0; i < 2; ++i)
            QVERIFY(waitForListener(m_workerPorts[i], m_workers[i]));
        // HAProxy needs a config to start: the site with its first backend only, so the
        // first apply below has something to change.
        Site first = site();
        first.backends.removeLast();
        QVERIFY2(m_haproxy.start(first, &error), qPrintable(error));
        QCOMPARE(workerPortOf(httpGet(m_haproxy.httpPort())), int(m_workerPorts[0]));
    }

    void cleanupTestCase() {
        m_haproxy.stop();
        for (QProcess &worker : m_workers)
            stopProcess(worker);
    }

    // Apply adds the second backend: validated by haproxy -c, reloaded by SIGUSR2 to the
    // master, verified through the frontend; then round robin over both workers.
    void applyReloadsAndBalances() {
        const qint64 master = m_haproxy.masterPid();
        SshSession session(trusted());
        ConfigApplier applier(session);
        QStringList seen;
        applier.setStepCallback([&](const ApplyStep &step) { seen.append(step.name); });
        const ApplyReport report = applier.apply(site(), target(), false);
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY(report.changed);
        QVERIFY(report.applied);
        QVERIFY(!report.rolledBack);
        QVERIFY2(report.diff.contains(QStringLiteral("+    server 127.0.0.1:%1 127.0.0.1:%1 check")
                                          .arg(m_workerPorts[1])),
                 qPrintable(report.diff));
        QCOMPARE(seen, (QStringList{QStringLiteral("read"), QStringLiteral("diff"),
                                    QStringLiteral("upload"), QStringLiteral("backup"),
                                    QStringLiteral("install"), QStringLiteral("validate"),
                                    QStringLiteral("reload"), QStringLiteral("verify")}));
        QVERIFY(!QFile::exists(ConfigApplier::temporaryPath(m_haproxy.siteFile())));
        // The same master process, reloaded rather than restarted.
        QVERIFY(m_haproxy.isRunning());
        QCOMPARE(m_haproxy.masterPid(), master);

        // The new worker process takes every new connection once the reload completed.
        const QDeadlineTimer deadline(10000);
        QMap<int, int> perWorker;
        while (!deadline.hasExpired()) {
            perWorker = spread(20);
            if (perWorker.value(m_workerPorts[1]) > 0) break;
        }
        QCOMPARE(perWorker.value(m_workerPorts[0]) + perWorker.value(m_workerPorts[1]), 20);
        QVERIFY2(perWorker.value(m_workerPorts[0]) >= 8 && perWorker.value(m_workerPorts[1]) >= 8,
                 qPrintable(QStringLiteral("%1/%2")
                                .arg(perWorker.value(m_workerPorts[0]))
                                .arg(perWorker.value(m_workerPorts[1]))));

        const ApplyReport again = applier.apply(site(), target(), false);
        QVERIFY2(again.ok(), qPrintable(again.error));
        QVERIFY(!again.changed);
    }

    // A certificate that does not exist: haproxy -c rejects the file, the backup comes back,
    // and the running config keeps serving.
    void brokenConfigRejectedByValidate() {
        const QByteArray before = readFile(m_haproxy.siteFile());
        QVERIFY(!before.isEmpty());
        QCOMPARE(httpGet(m_haproxy.httpPort()).status, 200);

        SshSession session(trusted());
        ConfigApplier applier(session);
        RemoteBalancer broken = target();
        broken.renderOptions.tlsCertificate = m_haproxy.prefixPath(QStringLiteral("missing.pem"));
        broken.renderOptions.tlsKey = broken.renderOptions.tlsCertificate;
        broken.renderOptions.httpsPort = freePort();
        const ApplyReport report = applier.apply(site(), broken, false);
        QVERIFY(!report.ok());
        QVERIFY2(report.error.startsWith(QStringLiteral("validate: ")), qPrintable(report.error));
        QVERIFY2(report.error.contains(QStringLiteral("missing.pem")), qPrintable(report.error));
        QVERIFY(report.rolledBack);
        QVERIFY(!report.applied);
        QVERIFY(report.diff.contains(QStringLiteral(" ssl crt ")));
        QCOMPARE(readFile(m_haproxy.siteFile()), before);
        QVERIFY(!QFile::exists(ConfigApplier::temporaryPath(m_haproxy.siteFile())));
        QVERIFY(m_haproxy.isRunning());

        const QMap<int, int> after = spread(4);
        QCOMPARE(after.value(m_workerPorts[0]) + after.value(m_workerPorts[1]), 4);
    }

    // corralctl import of a hand-written HAProxy file on the host: one site per backend or
    // listen section; the file is untouched.
    void importHandWrittenHaproxy() {
        const QString file = m_haproxy.prefixPath(QStringLiteral("legacy.cfg"));
        const QByteArray text = "# written by hand\n"
                                "global\n    maxconn 100\n\n"
                                "defaults\n    mode http\n\n"
                                "frontend www\n    bind :80\n    default_backend app\n\n"
                                "backend app\n"
                                "    balance leastconn\n"
                                "    server a1 10.0.0.5:8080 check weight 3\n"
                                "    server a2 10.0.0.6:8080 check\n"
                                "    server a3 10.0.0.7:8080 backup\n\n"
                                "listen \"odd name!\"\n"
                                "    bind :8081\n"
                                "    balance source\n"
                                "    server o1 10.0.0.9:80 disabled\n";
        QVERIFY(writeFile(file, text));
        Inventory inventory;
        Host host;
        host.name = QStringLiteral("remote");
        host.kind = Host::Kind::Ssh;
        host.address = m_server.address();
        host.port = m_server.port();
        host.user = QStringLiteral("root");
        host.auth = Host::Auth::KeyFile;
        host.keyPath = m_server.clientKey();
        QVERIFY_RESULT(inventory.addHost(host));
        QVERIFY_RESULT(inventory.addSite(site()));
        QVERIFY_RESULT(inventory.save(inventoryPath()));

        const Run dry =
            ctl({QStringLiteral("import"), QStringLiteral("remote"), QStringLiteral("--haproxy"),
                 file, QStringLiteral("--dry-run"), QStringLiteral("--accept-new")});
        QVERIFY2(dry.exitCode == 0, qPrintable(dry.err));
        QVERIFY2(dry.out.contains(QStringLiteral("would import site app from app: least-conn")),
                 qPrintable(dry.out));
        QVERIFY(!Inventory::load(inventoryPath())->site(QStringLiteral("app")));

        const Run run = ctl({QStringLiteral("--json"), QStringLiteral("import"),
                             QStringLiteral("remote"), QStringLiteral("--haproxy"), file});
        QVERIFY2(run.exitCode == 0, qPrintable(run.err));
        auto loaded = Inventory::load(inventoryPath());
        QVERIFY_RESULT(loaded);
        const Site *app = loaded->site(QStringLiteral("app"));
        QVERIFY2(app, qPrintable(run.out));
        QCOMPARE(app->policy, BalancingPolicy::LeastConn);
        QCOMPARE(app->backends.size(), 3);
        QCOMPARE(app->backends.at(0).key(), QStringLiteral("10.0.0.5:8080"));
        QCOMPARE(app->backends.at(0).weight, 3);
        QVERIFY(app->backends.at(2).backup);
        const Site *odd = loaded->site(QStringLiteral("odd-name-"));
        QVERIFY2(odd, qPrintable(run.out));
        QCOMPARE(odd->policy, BalancingPolicy::IpHash);
        QVERIFY(odd->backends.at(0).down);
        QVERIFY(loaded->site(QStringLiteral("shop")));
        QCOMPARE(readFile(file), text);

        const Run twice = ctl({QStringLiteral("import"), QStringLiteral("remote"),
                               QStringLiteral("--haproxy"), file});
        QCOMPARE(twice.exitCode, 1);
        QVERIFY2(twice.err.contains(QStringLiteral("already exists")), qPrintable(twice.err));
        const Run both = ctl({QStringLiteral("import"), QStringLiteral("remote"),
                              QStringLiteral("--haproxy"), file, QStringLiteral("--nginx"), file});
        QCOMPARE(both.exitCode, 2);
    }
};

QTEST_GUILESS_MAIN(TestApplyHaproxy)
#include "tst_applyhaproxy.moc"
