#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "inventory/Inventory.h"
#include "ssh/ShellQuote.h"

#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

/// Issue 15: a production site made with `corralctl site add` flags only (no JSON edited),
/// then applied by `corralctl apply` over a real sshd (127.0.0.2, this machine) to a real
/// nginx, HAProxy and Apache, each in a temporary prefix, in front of two demo workers.
class TestCorralctlProduction : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    QTemporaryDir m_home;
    DemoWorkers m_workers{2};

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }
    CtlRun ctl(const QStringList &args) const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()}.run(args);
    }

    /// An inventory holding only the SSH host "remote": everything else comes from flags.
    void writeHostOnlyInventory() {
        Inventory inventory;
        QVERIFY_RESULT(inventory.addHost(m_server.inventoryHost(QStringLiteral("remote"))));
        QVERIFY_RESULT(inventory.save(inventoryPath()));
    }

    /// The flags that make `expected` (a fixture's balancer), the commands written as a user
    /// would type them on a shell command line.
    static QStringList balancerFlags(const SiteBalancer &expected) {
        QStringList flags{QStringLiteral("--balancer"),
                          expected.format,
                          QStringLiteral("--balancer-host"),
                          expected.host,
                          QStringLiteral("--balancer-listen"),
                          Endpoint{expected.listenAddress, expected.httpPort}.toString(),
                          QStringLiteral("--config-path"),
                          expected.configPath,
                          QStringLiteral("--validate"),
                          shellCommand(expected.validate),
                          QStringLiteral("--reload"),
                          shellCommand(expected.reload),
                          QStringLiteral("--probe-url"),
                          expected.probeUrl,
                          QStringLiteral("--error-log=") + expected.errorLog,
                          QStringLiteral("--log-dir=") + expected.logDirectory,
                          QStringLiteral("--runtime-dir=") + expected.runtimeDirectory,
                          QStringLiteral("--state-dir=") + expected.stateDirectory};
        return flags;
    }

    /// site add from flags, the stored balancer is exactly `expected`, apply, both workers
    /// answer through the balancer on `port`.
    void addApplyAndBalance(const SiteBalancer &expected, quint16 port) {
        writeHostOnlyInventory();
        const CtlRun add =
            ctl(QStringList{QStringLiteral("site"), QStringLiteral("add"), QStringLiteral("shop"),
                            QStringLiteral("--backends=127.0.0.1:%1,127.0.0.1:%2")
                                .arg(m_workers.port(0))
                                .arg(m_workers.port(1)),
                            QStringLiteral("--host"), QStringLiteral("shop.example.com"),
                            QStringLiteral("--workers"), QStringLiteral("0")} +
                balancerFlags(expected));
        QVERIFY2(add.exitCode == 0, qPrintable(add.err));
        auto inventory = Inventory::load(inventoryPath());
        QVERIFY_RESULT(inventory);
        const Site *site = inventory->site(QStringLiteral("shop"));
        QVERIFY(site && site->balancer);
        QCOMPARE(site->balancer->toJson(), expected.toJson());

        const CtlRun apply =
            ctl({QStringLiteral("apply"), QStringLiteral("shop"), QStringLiteral("--accept-new")});
        QVERIFY2(apply.exitCode == 0, qPrintable(apply.out + apply.err));
        const QMap<int, int> perWorker = spreadOverWorkers(port, 8);
        QVERIFY2(perWorker.value(m_workers.port(0)) > 0 && perWorker.value(m_workers.port(1)) > 0,
                 qPrintable(QStringLiteral("%1/%2 of 8")
                                .arg(perWorker.value(m_workers.port(0)))
                                .arg(perWorker.value(m_workers.port(1)))));
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_workers.start(QStringLiteral(DEMO_WORKER_PATH), &error), qPrintable(error));
    }

    void cleanupTestCase() { m_workers.stop(); }

    void nginxFromFlags() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        NginxInstance nginx;
        QString error;
        QVERIFY2(nginx.start(&error), qPrintable(error));
        addApplyAndBalance(nginx.balancer(QStringLiteral("remote")), nginx.httpPort());
    }

    void haproxyFromFlags() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        HaproxyInstance haproxy;
        // HAProxy cannot start without a config: the first worker only until the apply.
        Site first;
        first.name = QStringLiteral("shop");
        first.workers = 0;
        first.backends = {Backend{QStringLiteral("127.0.0.1"), m_workers.port(0)}};
        QString error;
        QVERIFY2(haproxy.start(first, &error), qPrintable(error));
        addApplyAndBalance(haproxy.balancer(QStringLiteral("remote")), haproxy.httpPort());
    }

    void apacheFromFlags() {
        if (!ApacheInstance::available()) QSKIP("apache2 is not installed");
        ApacheInstance apache;
        QString error;
        QVERIFY2(apache.start(&error), qPrintable(error));
        addApplyAndBalance(apache.balancer(QStringLiteral("remote")), apache.httpPort());
    }
};

QTEST_GUILESS_MAIN(TestCorralctlProduction)
#include "tst_corralctl_production.moc"
