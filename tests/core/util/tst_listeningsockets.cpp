#include "util/ListeningSockets.h"

#include <QCoreApplication>
#include <QProcess>
#include <QTcpServer>
#include <QTest>

using namespace corral;

class TestListeningSockets : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void parsesIpv4ListenEntries() {
        // Two LISTEN sockets (127.0.0.1:8080, 0.0.0.0:22) and one ESTABLISHED (01) line.
        const char text[] =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
            "timeout inode\n"
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 "
            "       0 4242 1 0000000000000000 100 0 0 10 0\n"
            "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
            "       0 77 1 0000000000000000 100 0 0 10 0\n"
            "   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000 "
            "       0 99 1 0000000000000000 20 4 30 10 -1\n";
        const QList<TcpListener> list = parseProcNetTcp(text, false);
        QCOMPARE(list.size(), 2);
        QCOMPARE(list[0].address, QHostAddress(QStringLiteral("127.0.0.1")));
        QCOMPARE(list[0].port, quint16(8080));
        QCOMPARE(list[0].inode, quint64(4242));
        QCOMPARE(list[1].address, QHostAddress(QHostAddress::Any));
        QCOMPARE(list[1].port, quint16(22));
    }

    void parsesIpv6ListenEntries() {
        const char text[] =
            "  sl  local_address                         remote_address                        st "
            "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A "
            "00000000:00000000 00:00000000 00000000  1000        0 555 1 0000000000000000 100 0 0 "
            "10 0\n"
            "   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A "
            "00000000:00000000 00:00000000 00000000     0        0 556 1 0000000000000000 100 0 0 "
            "10 0\n";
        const QList<TcpListener> list = parseProcNetTcp(text, true);
        QCOMPARE(list.size(), 2);
        QCOMPARE(list[0].address, QHostAddress(QHostAddress::LocalHostIPv6));
        QCOMPARE(list[0].port, quint16(3000));
        QCOMPARE(list[1].address, QHostAddress(QHostAddress::AnyIPv6));
        QCOMPARE(list[1].port, quint16(80));
    }

    void ignoresGarbage() {
        QVERIFY(parseProcNetTcp("", false).isEmpty());
        QVERIFY(parseProcNetTcp("header\n 0: zz:1 00:0 0A a b c d e f\n", false).isEmpty());
        QVERIFY(
            parseProcNetTcp("header\n 0: 0100007F:FFFFF 0:0 0A 0 0 0 0 0 1\n", false).isEmpty());
    }

    void namesThisProcessAsTheHolder() {
        QTcpServer server;
        QVERIFY(server.listen(QHostAddress::LocalHost));
        const quint16 port = server.serverPort();
        const Result<void> free = checkListenAddressFree(QHostAddress::LocalHost, port);
        QVERIFY(!free);
        QVERIFY2(free.error().contains(QStringLiteral("127.0.0.1:%1 is already in use by pid %2")
                                           .arg(port)
                                           .arg(QCoreApplication::applicationPid())),
                 qPrintable(free.error()));
        QVERIFY2(free.error().contains(QStringLiteral("tst_listeningsockets")),
                 qPrintable(free.error()));
        // Another loopback address is a different endpoint; a wildcard bind covers this one.
        QVERIFY(checkListenAddressFree(QHostAddress(QStringLiteral("127.0.0.2")), port));
        QVERIFY(!checkListenAddressFree(QHostAddress::Any, port));
        QVERIFY(processTreeListensOn(QCoreApplication::applicationPid(), port));
        server.close();
        QVERIFY(checkListenAddressFree(QHostAddress::LocalHost, port));
        QVERIFY(!processTreeListensOn(QCoreApplication::applicationPid(), port));
    }

    void aChildsListenerBelongsToItsParentsTreeOnly() {
        // A child process (python's http.server would do; socat is installed with the tests'
        // dependencies) listening on a port: in our tree, not in an unrelated one.
        QTcpServer probe;
        QVERIFY(probe.listen(QHostAddress::LocalHost));
        const quint16 port = probe.serverPort();
        probe.close();
        QProcess child;
        child.start(QStringLiteral("socat"),
                    {QStringLiteral("TCP-LISTEN:%1,bind=127.0.0.1,reuseaddr").arg(port),
                     QStringLiteral("SYSTEM:true")});
        QVERIFY(child.waitForStarted());
        QTRY_VERIFY_WITH_TIMEOUT(!checkListenAddressFree(QHostAddress::LocalHost, port), 5000);
        QVERIFY(processTreeListensOn(QCoreApplication::applicationPid(), port));
        QVERIFY(processTreeListensOn(child.processId(), port));
        QVERIFY(processTree(QCoreApplication::applicationPid()).contains(child.processId()));
        // A sibling process does not hold it: the port is not in its tree.
        QProcess sibling;
        sibling.start(QStringLiteral("sleep"), {QStringLiteral("30")});
        QVERIFY(sibling.waitForStarted());
        QVERIFY(!processTreeListensOn(sibling.processId(), port));
        sibling.kill();
        child.kill();
        QVERIFY(sibling.waitForFinished());
        QVERIFY(child.waitForFinished());
    }

    void aProcessThatIsNotRunningHasNoTree() {
        // QProcess::processId() is 0 once the process ended; pid 0 is the parent of init and
        // kthreadd, so walking it would hand a caller that kills "its" tree every process.
        QProcess ended;
        QCOMPARE(ended.processId(), 0);
        QVERIFY(processTree(ended.processId()).isEmpty());
        QVERIFY(processTree(-1).isEmpty());
        QVERIFY(!processTreeListensOn(0, 22));
    }
};

QTEST_GUILESS_MAIN(TestListeningSockets)
#include "tst_listeningsockets.moc"
