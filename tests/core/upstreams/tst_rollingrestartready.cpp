#include "BalancerFixture.h"
#include "BalancerLoad.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QTest>

using namespace corral;
using namespace corral::test;

/// "Ready" means ready at the balancer: a rolling restart through a real HAProxy (over the
/// sshd fixture on 127.0.0.2, this machine) of workers that start slowly, under continuous
/// load, with every request counted.
class TestRollingRestartReady : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    HaproxyInstance m_haproxy{QStringLiteral("readyhaproxy")};
    std::unique_ptr<SshSession> m_session;
    Site m_site;

    Host remoteHost() const { return m_server.inventoryHost(QStringLiteral("remote")); }

    RemoteRollingRestart runner() {
        return RemoteRollingRestart(*m_session,
                                    [this](const QString &host) -> Result<SshSession *> {
                                        if (host == QLatin1String("remote")) return m_session.get();
                                        return fail(QStringLiteral("unexpected host ") + host);
                                    });
    }

private Q_SLOTS:
    void initTestCase() {
        if (!HaproxyInstance::available()) QSKIP("haproxy or socat is not installed");
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        m_session = std::make_unique<SshSession>(m_server.trustedConfig());
        m_site.name = QStringLiteral("readyhaproxy");
        m_site.command = QStringLiteral(DEMO_WORKER_PATH);
        m_site.args = {QStringLiteral("--port"), QStringLiteral("{port}")};
        m_site.healthPath = QStringLiteral("/health");
        m_site.serverNames = {QStringLiteral("shop.example.com")};
        m_site.basePort = workerBasePort();
        m_site.workers = 0;
        auto ports = RemoteWorkers::allocatePorts(*m_session, m_site, 2);
        QVERIFY_RESULT(ports);
        for (quint16 port : ports.value()) {
            QVERIFY_RESULT(RemoteWorkers::start(*m_session, m_site, port));
            m_site.backends.append(Backend{QStringLiteral("127.0.0.1"), port});
            m_site.ports.append(port);
        }
        for (quint16 port : ports.value())
            QVERIFY_RESULT(RemoteWorkers::waitHealthy(*m_session, m_site, port));
        m_site.balancer = m_haproxy.balancer(QStringLiteral("remote"));
        QVERIFY2(m_haproxy.start(m_site, &error), qPrintable(error));
    }

    void cleanupTestCase() {
        m_haproxy.stop();
        if (m_session)
            for (quint16 port : std::as_const(m_site.ports))
                (void)RemoteWorkers::stop(*m_session, m_site.name, port);
        m_session.reset();
    }

    // A worker that needs 8 s to listen after its restart: HAProxy's own check (inter 2 s,
    // fall 3) has taken the server DOWN meanwhile and needs two good checks (rise 2) before it
    // sends traffic there again. Corral's health check on the worker's host passes first; the
    // next backend may only be drained once HAProxy itself reports the first one UP, or every
    // request in between gets a 503 (no server left).
    void haproxyNextDrainWaitsUntilBalancerSeesUp() {
        Site slow = m_site;
        slow.args += {QStringLiteral("--ready-delay-ms"), QStringLiteral("8000")};
        BalancerLoad load(m_haproxy.httpPort());
        QVERIFY(load.waitFor(20));
        RemoteRollingRestart restart = runner();
        restart.setHealthTimeoutMs(20000);
        QStringList enabled;
        restart.setStepCallback([&](const RollingStep &step) {
            if (step.step == QLatin1String("enable")) enabled.append(step.detail);
        });
        const RollingRestartReport report =
            restart.run(slow, RemoteBalancer::forSite(slow).value(), {remoteHost()});
        const int atEnd = load.total();
        QVERIFY(load.waitFor(atEnd + 10));
        load.stop();
        QVERIFY2(report.ok(), qPrintable(report.error));
        QCOMPARE(report.restarted.size(), 2);
        qInfo("%d requests during the slow rolling restart, %d failed", load.total(),
              load.failed());
        QVERIFY2(load.failed() == 0,
                 qPrintable(QStringLiteral("%1 of %2 requests failed: %3")
                                .arg(load.failed())
                                .arg(load.total())
                                .arg(load.failures().mid(0, 5).join(QStringLiteral("; ")))));
        QCOMPARE(enabled.size(), 2);
        for (const QString &detail : std::as_const(enabled))
            QVERIFY2(detail.contains(QStringLiteral("UP at the balancer")), qPrintable(detail));
    }
};

QTEST_GUILESS_MAIN(TestRollingRestartReady)
#include "tst_rollingrestartready.moc"
