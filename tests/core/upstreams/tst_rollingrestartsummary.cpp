#include "upstreams/RollingRestartSummary.h"

#include <QTest>

using namespace corral;

/// What the console says about each backend after a production rolling restart comes from
/// the steps the run recorded: a backend the run failed at before draining it was never out
/// of rotation (the host was unreachable, the config untouched), one drained and not put
/// back is out, one put back is in.
class TestRollingRestartSummary : public QObject {
    Q_OBJECT

    static Site threeBackends() {
        Site site;
        site.name = QStringLiteral("shop");
        for (quint16 port : {3001, 3002, 3003})
            site.backends.append(Backend{QStringLiteral("10.0.0.5"), port});
        return site;
    }
    static RollingStep step(const char *backend, const char *name, bool ok,
                            const char *detail = "") {
        return RollingStep{QLatin1String(backend), QLatin1String(name), ok, QLatin1String(detail)};
    }

private Q_SLOTS:
    void everyBackendRestarted() {
        RollingRestartReport report;
        report.restarted = {QStringLiteral("10.0.0.5:3001"), QStringLiteral("10.0.0.5:3002"),
                            QStringLiteral("10.0.0.5:3003")};
        const auto outcomes = rollingRestartOutcomes(threeBackends(), report);
        QCOMPARE(outcomes.size(), 3);
        for (const RollingRestartOutcome &outcome : outcomes) {
            QCOMPARE(outcome.state, RollingRestartOutcome::State::Restarted);
            QVERIFY(outcome.inRotation);
            QCOMPARE(outcome.detail, QStringLiteral("restarted, back in rotation"));
        }
    }

    // The host was down: the run failed before draining, nothing was taken out.
    void failureBeforeTheDrainLeavesItServing() {
        RollingRestartReport report;
        report.failedBackend = QStringLiteral("10.0.0.5:3001");
        report.error = QStringLiteral("10.0.0.5:3001: host: connection refused");
        report.steps = {step("10.0.0.5:3001", "host", false, "web1: connection refused")};
        const auto outcomes = rollingRestartOutcomes(threeBackends(), report);
        QCOMPARE(outcomes[0].state, RollingRestartOutcome::State::Failed);
        QVERIFY(outcomes[0].inRotation);
        QVERIFY2(outcomes[0].detail.contains(QStringLiteral("failed at host: web1: connection "
                                                            "refused")),
                 qPrintable(outcomes[0].detail));
        QVERIFY2(outcomes[0].detail.contains(QStringLiteral("never taken out of rotation")),
                 qPrintable(outcomes[0].detail));
        QVERIFY(!outcomes[0].detail.contains(QStringLiteral("still out of rotation")));
        for (int i : {1, 2}) {
            QCOMPARE(outcomes[i].state, RollingRestartOutcome::State::NotReached);
            QVERIFY(outcomes[i].inRotation);
        }
    }

    // Drained, then the restart failed and nothing put it back: out of rotation, and how to
    // put it back is said.
    void drainedAndNotPutBackIsOut() {
        RollingRestartReport report;
        report.restarted = {QStringLiteral("10.0.0.5:3001")};
        report.failedBackend = QStringLiteral("10.0.0.5:3002");
        report.error = QStringLiteral("10.0.0.5:3002: health: timed out");
        report.steps = {step("10.0.0.5:3001", "drain", true), step("10.0.0.5:3001", "enable", true),
                        step("10.0.0.5:3002", "drain", true),
                        step("10.0.0.5:3002", "health", false, "timed out")};
        const auto outcomes = rollingRestartOutcomes(threeBackends(), report);
        QCOMPARE(outcomes[0].state, RollingRestartOutcome::State::Restarted);
        QCOMPARE(outcomes[1].state, RollingRestartOutcome::State::Failed);
        QVERIFY(!outcomes[1].inRotation);
        QVERIFY2(outcomes[1].detail.contains(QStringLiteral("corralctl apply shop")),
                 qPrintable(outcomes[1].detail));
        QCOMPARE(outcomes[2].state, RollingRestartOutcome::State::NotReached);

        // Put back after the failure: in rotation again.
        report.steps.append(step("10.0.0.5:3002", "enable", true));
        QVERIFY(rollingRestartOutcomes(threeBackends(), report)[1].inRotation);
    }
};

QTEST_MAIN(TestRollingRestartSummary)
#include "tst_rollingrestartsummary.moc"
