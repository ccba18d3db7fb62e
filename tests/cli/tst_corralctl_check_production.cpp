// corralctl check (issue 22) on a production site: two demo workers with sessions in memory
// run on "remote" (a real sshd on 127.0.0.71, this machine, as root) behind a real nginx
// applied by `corralctl apply`; every request of the check is made with curl on the workers'
// host and on the balancer's host over SSH (CurlFetch). Per-process under round-robin with
// both fixes (update, then apply); sticky-broken with "apply first" while the policy is saved
// but not applied, sticky-verified once it is applied; a backend no inventory host runs is
// exit 3.

#include "BalancerFixture.h"
#include "CorralctlRunner.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"

#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <unistd.h>

using namespace corral;
using namespace corral::test;

class TestCorralctlCheckProduction : public QObject {
    Q_OBJECT

    SshServer m_remote{QStringLiteral("127.0.0.71")};
    NginxInstance m_nginx{QStringLiteral("affine")};
    QTemporaryDir m_home;
    std::unique_ptr<SshSession> m_session;
    Site m_site;
    QList<quint16> m_ports; ///< the workers started on "remote", stopped at the end

    QString inventoryPath() const { return m_home.filePath(QStringLiteral("inventory.json")); }
    CtlRun ctl(const QStringList &args) const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), inventoryPath()}.run(args);
    }
    static QString shownRun(const CtlRun &run) {
        return QStringLiteral("exit %1\nstdout: %2\nstderr: %3")
            .arg(run.exitCode)
            .arg(run.out, run.err);
    }

    /// `corralctl check SITE --json`: the report, with the exit code compared.
    QJsonObject check(const QString &site, int expectedExit) {
        const CtlRun run = ctl({QStringLiteral("check"), site, QStringLiteral("--json")});
        [&] { QVERIFY2(run.exitCode == expectedExit, qPrintable(shownRun(run))); }();
        return QJsonDocument::fromJson(run.out.toUtf8()).object();
    }

private Q_SLOTS:
    void initTestCase() {
        if (::geteuid() != 0) QSKIP("needs root: the sshd fixture logs in as root");
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QVERIFY(m_home.isValid());
        QString error;
        QVERIFY2(m_remote.start(&error), qPrintable(error));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        m_session = std::make_unique<SshSession>(m_remote.trustedConfig());
        QVERIFY_RESULT(m_session->connect());

        m_site.name = QStringLiteral("affine");
        m_site.command = QStringLiteral(DEMO_WORKER_PATH);
        m_site.args = {QStringLiteral("--port"), Site::PortPlaceholder,
                       QStringLiteral("--sessions"), QStringLiteral("memory")};
        m_site.basePort = workerBasePort(2);
        m_site.workers = 0;
        auto ports = RemoteWorkers::allocatePorts(*m_session, m_site, 2);
        QVERIFY_RESULT(ports);
        for (quint16 port : ports.value()) {
            QVERIFY_RESULT(RemoteWorkers::start(*m_session, m_site, port));
            m_ports.append(port);
        }
        for (quint16 port : std::as_const(m_ports)) {
            QVERIFY_RESULT(RemoteWorkers::waitHealthy(*m_session, m_site, port));
            m_site.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
        }
        m_site.ports = m_ports;
        m_site.balancer = m_nginx.balancer(QStringLiteral("remote"));
        Inventory inventory;
        QVERIFY_RESULT(inventory.addHost(m_remote.inventoryHost(QStringLiteral("remote"))));
        QVERIFY_RESULT(inventory.addSite(m_site));
        QVERIFY_RESULT(inventory.save(inventoryPath()));
        const CtlRun apply =
            ctl({QStringLiteral("apply"), m_site.name, QStringLiteral("--accept-new")});
        QVERIFY2(apply.exitCode == 0, qPrintable(shownRun(apply)));
    }

    void cleanupTestCase() {
        if (!m_session) return;
        for (quint16 port : std::as_const(m_ports))
            (void)RemoteWorkers::stop(*m_session, m_site.name, port); // best effort
        m_session.reset();
    }

    // Round-robin nginx in front of workers that keep sessions in memory: per-process, the
    // cookie A set unknown to B, each request made on "remote", and both fixes.
    void memorySessionsArePerProcess() {
        QElapsedTimer clock;
        clock.start();
        const QJsonObject report = check(m_site.name, 1);
        qInfo("check over SSH (curl on the hosts) took %lld ms", clock.elapsed());
        QCOMPARE(report.value(QStringLiteral("verdict")).toString(), QStringLiteral("per-process"));
        QCOMPARE(report.value(QStringLiteral("policy")).toString(), QStringLiteral("round-robin"));
        const QJsonArray fixes = report.value(QStringLiteral("fixes")).toArray();
        QVERIFY2(
            fixes.contains(QStringLiteral("corralctl site update affine --policy sticky-cookie")) &&
                fixes.contains(QStringLiteral("corralctl apply affine")),
            qPrintable(QJsonDocument(report).toJson()));
        const QJsonArray findings = report.value(QStringLiteral("findings")).toArray();
        QVERIFY(!findings.isEmpty());
        const QJsonObject finding = findings.first().toObject();
        QCOMPARE(finding.value(QStringLiteral("cookie")).toString(), QStringLiteral("demo.sid"));
        // Both workers answered (over curl on their host): A set the cookie, B did not know it.
        QSet<QString> endpoints;
        for (const QJsonValue &exchange : finding.value(QStringLiteral("evidence")).toArray()) {
            const QJsonObject object = exchange.toObject();
            QCOMPARE(object.value(QStringLiteral("status")).toInt(), 200);
            endpoints.insert(object.value(QStringLiteral("endpoint")).toString());
        }
        for (quint16 port : std::as_const(m_ports))
            QVERIFY2(endpoints.contains(QStringLiteral("worker 127.0.0.1:%1 on remote").arg(port)),
                     qPrintable(QStringList(endpoints.values()).join(u'\n')));

        // The terminal form with --evidence: the Set-Cookie curl's head carried, replayed.
        const CtlRun text =
            ctl({QStringLiteral("check"), m_site.name, QStringLiteral("--evidence")});
        QCOMPARE(text.exitCode, 1);
        QVERIFY2(
            text.out.startsWith(QStringLiteral("affine: per-process (policy round-robin)\n")) &&
                text.out.contains(QStringLiteral("Set-Cookie: demo.sid=")) &&
                text.out.contains(QStringLiteral("Cookie: demo.sid=")) &&
                text.out.contains(QStringLiteral("  corralctl apply affine\n")),
            qPrintable(text.out));
    }

    // sticky-cookie applied (free nginx: ip_hash for a site without a named session cookie):
    // the polls through the balancer, made with curl on its host, all keep the session.
    void stickyPolicyAppliedIsVerified() {
        const CtlRun update = ctl({QStringLiteral("site"), QStringLiteral("update"), m_site.name,
                                   QStringLiteral("--policy"), QStringLiteral("sticky-cookie")});
        QVERIFY2(update.exitCode == 0, qPrintable(shownRun(update)));
        // Saved, not applied: nginx still runs round-robin, so the sessions move; the report
        // says the likeliest cause (the apply not made yet) first.
        const QJsonObject unapplied = check(m_site.name, 1);
        QCOMPARE(unapplied.value(QStringLiteral("verdict")).toString(),
                 QStringLiteral("sticky-broken"));
        const QJsonArray fixes = unapplied.value(QStringLiteral("fixes")).toArray();
        QVERIFY2(!fixes.isEmpty() && fixes.first().toString().startsWith(
                                         QStringLiteral("corralctl apply affine first")),
                 qPrintable(QJsonDocument(unapplied).toJson()));
        QVERIFY2(unapplied.value(QStringLiteral("summary"))
                     .toString()
                     .contains(QStringLiteral("\"corralctl apply affine\" first")),
                 qPrintable(QJsonDocument(unapplied).toJson()));
        const CtlRun apply = ctl({QStringLiteral("apply"), m_site.name});
        QVERIFY2(apply.exitCode == 0, qPrintable(shownRun(apply)));
        const QJsonObject report = check(m_site.name, 0);
        QCOMPARE(report.value(QStringLiteral("verdict")).toString(),
                 QStringLiteral("sticky-verified"));
        bool throughBalancer = false;
        for (const QJsonValue &finding : report.value(QStringLiteral("findings")).toArray())
            for (const QJsonValue &exchange :
                 finding.toObject().value(QStringLiteral("evidence")).toArray())
                throughBalancer = throughBalancer || exchange.toObject()
                                                         .value(QStringLiteral("endpoint"))
                                                         .toString()
                                                         .startsWith(QStringLiteral("balancer "));
        QVERIFY(throughBalancer);
    }

    // A backend whose worker no inventory host runs cannot be asked: exit 3, naming it.
    void unknownWorkerHostCannotBeChecked() {
        auto inventory = Inventory::load(inventoryPath());
        QVERIFY_RESULT(inventory);
        Site orphan = m_site;
        orphan.name = QStringLiteral("orphan");
        orphan.backends = {Backend{QStringLiteral("127.0.0.72"), m_ports.first()},
                           Backend{QStringLiteral("127.0.0.1"), m_ports.first()}};
        QVERIFY_RESULT(inventory->addSite(orphan));
        QVERIFY_RESULT(inventory->save(inventoryPath()));
        const CtlRun run = ctl({QStringLiteral("check"), orphan.name});
        QVERIFY2(run.exitCode == 3, qPrintable(shownRun(run)));
        QVERIFY2(run.err.contains(QStringLiteral("127.0.0.72")), qPrintable(run.err));
    }
};

QTEST_GUILESS_MAIN(TestCorralctlCheckProduction)
#include "tst_corralctl_check_production.moc"
