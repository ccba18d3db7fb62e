#include "SshServer.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <signal.h>

#include <chrono>
#include <future>

using namespace corral;

namespace {

// Alive means running: a zombie (exited, not yet reaped by a parent that is not ours) is gone.
bool processRunning(qint64 pid) {
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly)) return false;
    const QByteArray text = stat.readAll();
    const qsizetype close = text.lastIndexOf(')');
    const char state = close >= 0 && close + 2 < text.size() ? text.at(close + 2) : '?';
    return state != 'Z' && state != 'X';
}

} // namespace

/// Issue 14 item 6: a remote validate or reload that hangs is ended on the host after the
/// balancer's stepTimeout (timeout(1) over a real sshd on 127.0.0.2), the apply reports it as
/// a timeout, and nothing it started keeps running.
class TestApplyTimeout : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    QTemporaryDir m_dir;

    // The site's balancer as the inventory would have it, carried into the runtime target.
    RemoteBalancer target(const QStringList &validate, int stepTimeout) const {
        SiteBalancer balancer;
        balancer.host = QStringLiteral("remote");
        balancer.format = QStringLiteral("nginx");
        balancer.configPath = m_dir.filePath(QStringLiteral("conf.d/shop.conf"));
        balancer.validate = validate;
        balancer.reload = {QStringLiteral("true")};
        balancer.stepTimeout = stepTimeout;
        auto made = RemoteBalancer::fromSite(balancer);
        if (!made) qFatal("%s", qPrintable(made.error()));
        return made.value();
    }

    // A validate command that writes its shell's pid and its sleeping child's to `marker`, then
    // waits for the child; with `ignoreTerm` both ignore SIGTERM (only SIGKILL ends them).
    static QStringList hangingValidate(const QString &marker, bool ignoreTerm) {
        const QString script = QString(ignoreTerm ? QStringLiteral("trap '' TERM; ") : QString()) +
                               QStringLiteral("sleep 300 & echo $$ $! > \"$1\"; wait");
        return {QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh"), marker};
    }

    static QList<qint64> markedPids(const QString &marker) {
        QFile file(marker);
        QList<qint64> pids;
        if (!file.open(QIODevice::ReadOnly)) return pids;
        for (const QByteArray &word : file.readAll().simplified().split(' '))
            if (const qint64 pid = word.toLongLong(); pid > 1) pids.append(pid);
        return pids;
    }

    // Runs the apply on a thread and waits at most `boundSeconds`. Past the bound (the old code
    // waited 120 s), the marked processes are killed by pid so the apply returns and the test
    // fails instead of hanging.
    ApplyReport applyWithin(const RemoteBalancer &remote, const QString &marker, int boundSeconds,
                            qint64 *elapsedMs, bool *returnedInTime) {
        QElapsedTimer elapsed;
        elapsed.start();
        auto future = std::async(std::launch::async, [&] {
            SshSession session(m_server.trustedConfig());
            ConfigApplier applier(session);
            return applier.applyContent("# shop\n", remote, false);
        });
        *returnedInTime =
            future.wait_for(std::chrono::seconds(boundSeconds)) == std::future_status::ready;
        if (!*returnedInTime)
            for (const qint64 pid : markedPids(marker))
                ::kill(pid_t(pid), SIGKILL);
        ApplyReport report = future.get();
        *elapsedMs = elapsed.elapsed();
        return report;
    }

    // After a test, whatever it asserted: nothing it started on the "host" keeps running.
    static void killLeftovers(const QString &marker) {
        for (const qint64 pid : markedPids(marker))
            if (processRunning(pid)) ::kill(pid_t(pid), SIGKILL);
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        QVERIFY(QDir().mkpath(m_dir.filePath(QStringLiteral("conf.d"))));
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
    }

    void hangingValidateIsStoppedAfterTheStepTimeout() {
        const QString marker = m_dir.filePath(QStringLiteral("validate-term.pids"));
        const auto cleanup = qScopeGuard([&] { killLeftovers(marker); });
        const RemoteBalancer remote = target(hangingValidate(marker, false), 2);
        QCOMPARE(remote.stepTimeoutSeconds, 2);
        qint64 elapsedMs = 0;
        bool inTime = false;
        const ApplyReport report = applyWithin(remote, marker, 15, &elapsedMs, &inTime);
        QVERIFY2(inTime, "apply did not return within 15 s of a 2 s step timeout");
        qInfo("apply returned after %lld ms: %s", elapsedMs, qPrintable(report.error));
        QVERIFY2(elapsedMs >= 2000, qPrintable(QString::number(elapsedMs)));
        QVERIFY(!report.ok());
        QVERIFY2(report.error.startsWith(QStringLiteral("validate: timed out after 2 s (sh -c ")),
                 qPrintable(report.error));
        QVERIFY2(report.error.contains(QStringLiteral("); the host stopped it; ")),
                 qPrintable(report.error));

        // The shell and its sleeping child: both gone from the host.
        const QList<qint64> pids = markedPids(marker);
        QCOMPARE(pids.size(), 2);
        for (const qint64 pid : pids)
            QTRY_VERIFY2_WITH_TIMEOUT(!processRunning(pid),
                                      qPrintable(QStringLiteral("pid %1 still runs").arg(pid)),
                                      5000);
        // Nothing new stays installed: there was no previous file, so it was removed again.
        QVERIFY(!QFile::exists(remote.configPath));
    }

    // A command that ignores SIGTERM is killed KillAfter (5) seconds later.
    void validateIgnoringSigtermIsKilled() {
        const QString marker = m_dir.filePath(QStringLiteral("validate-kill.pids"));
        const auto cleanup = qScopeGuard([&] { killLeftovers(marker); });
        const RemoteBalancer remote = target(hangingValidate(marker, true), 2);
        qint64 elapsedMs = 0;
        bool inTime = false;
        const ApplyReport report = applyWithin(remote, marker, 20, &elapsedMs, &inTime);
        QVERIFY2(inTime, "apply did not return within 20 s of a 2 s step timeout");
        qInfo("apply returned after %lld ms: %s", elapsedMs, qPrintable(report.error));
        QVERIFY2(elapsedMs >= 7000, qPrintable(QString::number(elapsedMs)));
        QVERIFY2(report.error.startsWith(QStringLiteral("validate: timed out after 2 s (")),
                 qPrintable(report.error));
        QVERIFY2(
            report.error.contains(QStringLiteral("); the host killed it (it ignored SIGTERM)")),
            qPrintable(report.error));
        const QList<qint64> pids = markedPids(marker);
        QCOMPARE(pids.size(), 2);
        for (const qint64 pid : pids)
            QTRY_VERIFY2_WITH_TIMEOUT(!processRunning(pid),
                                      qPrintable(QStringLiteral("pid %1 still runs").arg(pid)),
                                      5000);
    }

    // A command that fails quickly with status 124 on its own is an ordinary failure.
    void ownExitStatus124IsNotATimeout() {
        const RemoteBalancer remote = target({QStringLiteral("sh"), QStringLiteral("-c"),
                                              QStringLiteral("echo 'config broken' >&2; exit 124")},
                                             30);
        qint64 elapsedMs = 0;
        bool inTime = false;
        const ApplyReport report = applyWithin(remote, QString(), 20, &elapsedMs, &inTime);
        QVERIFY(inTime);
        QVERIFY2(report.error.startsWith(QStringLiteral("validate: config broken")),
                 qPrintable(report.error));
        QVERIFY2(!report.error.contains(QStringLiteral("timed out")), qPrintable(report.error));
    }
};

QTEST_GUILESS_MAIN(TestApplyTimeout)
#include "tst_applytimeout.moc"
