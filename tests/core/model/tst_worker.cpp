#include "model/Worker.h"

#include <QTest>

using namespace corral;
using S = WorkerState;

static const QList<S> allStates = {S::Stopped,  S::Starting, S::Running, S::Unhealthy, S::Draining,
                                   S::Stopping, S::Crashed,  S::Backoff, S::Failed};

class TestWorker : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void transitionTable_data() {
        QTest::addColumn<S>("from");
        QTest::addColumn<S>("to");
        QTest::addColumn<bool>("allowed");
        // The complete table, written out independently of the implementation.
        const QMultiMap<S, S> allowed{
            {S::Stopped, S::Starting},  {S::Starting, S::Running},   {S::Starting, S::Failed},
            {S::Starting, S::Crashed},  {S::Starting, S::Stopping},  {S::Running, S::Unhealthy},
            {S::Running, S::Draining},  {S::Running, S::Stopping},   {S::Running, S::Crashed},
            {S::Unhealthy, S::Running}, {S::Unhealthy, S::Draining}, {S::Unhealthy, S::Stopping},
            {S::Unhealthy, S::Crashed}, {S::Draining, S::Running},   {S::Draining, S::Stopping},
            {S::Draining, S::Crashed},  {S::Stopping, S::Stopped},   {S::Crashed, S::Backoff},
            {S::Crashed, S::Failed},    {S::Crashed, S::Stopped},    {S::Backoff, S::Starting},
            {S::Backoff, S::Stopped},   {S::Failed, S::Starting},    {S::Failed, S::Stopped},
        };
        for (S from : allStates)
            for (S to : allStates) {
                const QByteArray name =
                    (workerStateName(from) + QStringLiteral("->") + workerStateName(to)).toUtf8();
                QTest::newRow(name.constData()) << from << to << allowed.contains(from, to);
            }
    }
    void transitionTable() {
        QFETCH(S, from);
        QFETCH(S, to);
        QFETCH(bool, allowed);
        QCOMPARE(canTransition(from, to), allowed);
    }

    void enforcesTransitions() {
        Worker worker(QStringLiteral("site"), QStringLiteral("local"), 3000);
        QCOMPARE(worker.state(), S::Stopped);
        const auto refused = worker.transitionTo(S::Running);
        QVERIFY(!refused.ok());
        QVERIFY2(refused.error().contains(QStringLiteral("cannot go from stopped to running")),
                 qPrintable(refused.error()));
        QCOMPARE(worker.state(), S::Stopped);

        QVERIFY(worker.transitionTo(S::Starting).ok());
        QVERIFY(worker.transitionTo(S::Running).ok());
        QVERIFY(worker.transitionTo(S::Crashed, QStringLiteral("killed by signal 9")).ok());
        QCOMPARE(worker.cause(), QStringLiteral("killed by signal 9"));
        QVERIFY(worker.transitionTo(S::Backoff).ok());
        QVERIFY(worker.transitionTo(S::Starting).ok());
        QVERIFY(worker.transitionTo(S::Failed, QStringLiteral("not ready within 30 s")).ok());
        QVERIFY(!worker.transitionTo(S::Running).ok());
        QCOMPARE(worker.state(), S::Failed);
    }

    void everyStateHasAName() {
        QSet<QString> names;
        for (S state : allStates)
            names.insert(workerStateName(state));
        QCOMPARE(names.size(), allStates.size());
        QVERIFY(!names.contains(QString()));
    }
};

QTEST_GUILESS_MAIN(TestWorker)
#include "tst_worker.moc"
