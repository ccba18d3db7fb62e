#include "BalancerFixture.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "remote/RemoteWorkers.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/RemoteAddBackend.h"
#include "util/ListeningSockets.h"

#include <QDir>
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

/// add-backend on another host than the balancer's: a real sshd for the balancer's host
/// (127.0.0.21, with a real nginx) and one for the worker's host (127.0.0.22), the real
/// corral-demo-worker. A worker that listens only on 127.0.0.1 cannot be reached by a balancer
/// on another host: add-backend says so as soon as the worker listens, with the bind option
/// to use, instead of a bare health timeout; the worker is stopped. Bound to 0.0.0.0 it is
/// added and served.
class TestAddBackendBind : public QObject {
    Q_OBJECT

    SshServer m_balancerHost{QStringLiteral("127.0.0.21")};
    SshServer m_workerHost{QStringLiteral("127.0.0.22")};
    NginxInstance m_nginx{QStringLiteral("bindhint")};
    std::unique_ptr<SshSession> m_balancerSession;
    std::unique_ptr<SshSession> m_workerSession;
    QString m_workerDirectory; // the worker host's pid files of the site
    Site m_site;

    QStringList pidFiles() const {
        return QDir(m_workerDirectory).entryList({QStringLiteral("*.pid")}, QDir::Files);
    }
    static constexpr int healthTimeoutMs = 16000;

private Q_SLOTS:
    void initTestCase() {
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        QString error;
        QVERIFY2(m_balancerHost.start(&error), qPrintable(error));
        QVERIFY2(m_workerHost.start(&error), qPrintable(error));
        QVERIFY2(m_nginx.start(&error), qPrintable(error));
        m_balancerSession = std::make_unique<SshSession>(m_balancerHost.trustedConfig());
        m_workerSession = std::make_unique<SshSession>(m_workerHost.trustedConfig());
        auto home = m_workerSession->exec(QStringLiteral("printf %s \"$HOME\""));
        QVERIFY_RESULT(home);
        m_site.name = QStringLiteral("bindhint");
        m_workerDirectory = QString::fromUtf8(home->stdOut) +
                            QStringLiteral("/.local/state/corral/workers/") + m_site.name;
        m_site.command = QStringLiteral(DEMO_WORKER_PATH);
        m_site.healthPath = QStringLiteral("/health");
        m_site.serverNames = {QStringLiteral("bind.example.com")};
        m_site.basePort = workerBasePort();
        m_site.workers = 0;
        m_site.hosts = {QStringLiteral("web2")};
        m_site.balancer = m_nginx.balancer(QStringLiteral("lb"));
    }

    void cleanupTestCase() {
        if (!m_workerSession) return;
        for (const QString &file : pidFiles())
            (void)RemoteWorkers::stop(*m_workerSession, m_site.name,
                                      quint16(file.section(QLatin1Char('.'), 0, 0).toUInt()));
    }

    // The demo worker binds 127.0.0.1 by default; the balancer would reach it at 127.0.0.22.
    void loopbackOnlyWorkerGetsTheBindHint() {
        Site site = m_site;
        site.args = {QStringLiteral("--port"), QStringLiteral("{port}")};
        AddBackendOptions options;
        options.workerHost = QStringLiteral("web2");
        options.healthTimeoutMs = healthTimeoutMs;
        QElapsedTimer timer;
        timer.start();
        const auto added = addRemoteBackend(*m_workerSession, *m_balancerSession, site,
                                            RemoteBalancer::forSite(site).value(),
                                            m_workerHost.address(), options);
        const qint64 elapsed = timer.elapsed();
        QVERIFY(!added);
        qInfo("after %lld ms: %s", elapsed, qPrintable(added.error()));
        QVERIFY2(added.error().contains(QStringLiteral("listens only on 127.0.0.1:")),
                 qPrintable(added.error()));
        QVERIFY2(added.error().contains(QStringLiteral("balancer on lb cannot reach at "
                                                       "127.0.0.22:")),
                 qPrintable(added.error()));
        QVERIFY2(added.error().contains(QStringLiteral("--bind 0.0.0.0")),
                 qPrintable(added.error()));
        QVERIFY2(added.error().contains(QStringLiteral("was stopped and its pid file removed")),
                 qPrintable(added.error()));
        QVERIFY2(elapsed < healthTimeoutMs / 2, qPrintable(QString::number(elapsed)));
        QVERIFY2(pidFiles().isEmpty(), qPrintable(pidFiles().join(QLatin1Char(' '))));
        // Nothing of the worker listens any more.
        const quint16 port = quint16(added.error()
                                         .section(QStringLiteral("127.0.0.1:"), 1)
                                         .section(QLatin1Char(' '), 0, 0)
                                         .toUInt());
        QVERIFY(port);
        QVERIFY(listenersCovering(QHostAddress(), port).isEmpty());
    }

    // Bound to every address, the same worker passes its health check at 127.0.0.22 and is
    // served by the balancer on the other host.
    void wildcardBoundWorkerIsAdded() {
        Site site = m_site;
        site.args = {QStringLiteral("--port"), QStringLiteral("{port}"), QStringLiteral("--bind"),
                     QStringLiteral("0.0.0.0")};
        AddBackendOptions options;
        options.workerHost = QStringLiteral("web2");
        options.healthTimeoutMs = healthTimeoutMs;
        const auto added = addRemoteBackend(*m_workerSession, *m_balancerSession, site,
                                            RemoteBalancer::forSite(site).value(),
                                            m_workerHost.address(), options);
        QVERIFY_RESULT(added);
        QCOMPARE(added->backends.size(), 1);
        QCOMPARE(added->backends.first().address, m_workerHost.address());
        QVERIFY(readFile(m_nginx.siteFile()).contains(added->backends.first().key().toUtf8()));
        QVERIFY_RESULT(
            RemoteWorkers::stop(*m_workerSession, m_site.name, added->backends.first().port));
    }
};

QTEST_MAIN(TestAddBackendBind)
#include "tst_addbackendbind.moc"
