#include "supervisor/PortAllocator.h"
#include "supervisor/RotatingLog.h"
#include "util/PortRule.h"

#include <QDir>
#include <QFile>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;

// A run of `count` consecutive ports that are free now, found from an ephemeral port.
static quint16 freeRun(int count) {
    for (int attempt = 0; attempt < 50; ++attempt) {
        QTcpServer probe;
        if (!probe.listen(QHostAddress::LocalHost, 0)) continue;
        const quint16 base = probe.serverPort();
        probe.close();
        if (base > 65000) continue;
        bool allFree = true;
        for (int i = 0; i < count && allFree; ++i)
            allFree = PortAllocator::isFree(QHostAddress::LocalHost, quint16(base + i));
        if (allFree) return base;
    }
    return 0;
}

class TestPortAllocator : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void skipsPortsInUse() {
        const quint16 base = freeRun(4);
        QVERIFY(base);
        QTcpServer foreign; // another process's listener, as far as the allocator can tell
        QVERIFY(foreign.listen(QHostAddress::LocalHost, base + 1));
        QVERIFY(!PortAllocator::isFree(QHostAddress::LocalHost, base + 1));
        const auto ports = PortAllocator::allocate(QHostAddress::LocalHost, base, 3);
        QVERIFY2(ports.ok(), qPrintable(ports.error()));
        QCOMPARE(ports.value(), (QList<quint16>{base, quint16(base + 2), quint16(base + 3)}));
    }

    void prefersRememberedAndSkipsReserved() {
        const quint16 base = freeRun(6);
        QVERIFY(base);
        const QList<quint16> remembered{quint16(base + 4), quint16(base + 5)};
        const auto ports =
            PortAllocator::allocate(QHostAddress::LocalHost, base, 3, remembered, {base});
        QVERIFY2(ports.ok(), qPrintable(ports.error()));
        QCOMPARE(ports.value(),
                 (QList<quint16>{quint16(base + 4), quint16(base + 5), quint16(base + 1)}));
    }

    // The one rule behind PortAllocator (local) and RemoteWorkers::allocatePorts (remote),
    // with what is taken given as a set.
    void pickPortsRule() {
        const QSet<quint16> listening{3000, 3002, 3006};
        const auto taken = [&](quint16 port) { return listening.contains(port); };
        // From basePort upwards, skipping what listens and what is reserved.
        QCOMPARE(pickPorts(3, 3000, {}, {3001}, taken, QStringLiteral("h")).value(),
                 (QList<quint16>{3003, 3004, 3005}));
        // Remembered ports first, in their order, when usable; a taken, reserved, zero or
        // repeated one is passed over.
        QCOMPARE(pickPorts(4, 3000, {3009, 3002, 0, 3008, 3009, 3004}, {3008}, taken,
                           QStringLiteral("h"))
                     .value(),
                 (QList<quint16>{3009, 3004, 3001, 3003}));
        // Enough remembered ones: nothing from the range.
        QCOMPARE(pickPorts(1, 3000, {4000, 4001}, {}, taken, QStringLiteral("h")).value(),
                 QList<quint16>{4000});
        QVERIFY(pickPorts(0, 3000, {}, {}, taken, QStringLiteral("h"))->isEmpty());
        // The range ends at 65535 without wrapping around to 0.
        QCOMPARE(pickPorts(2, 65534, {}, {}, taken, QStringLiteral("h")).value(),
                 (QList<quint16>{65534, 65535}));
        const auto full = pickPorts(3, 65534, {}, {65535}, taken, QStringLiteral("the host"));
        QVERIFY(!full);
        QCOMPARE(full.error(),
                 QStringLiteral("only 1 of 3 ports are free on the host in 65534..65535"));
        const auto narrowed =
            pickPorts(2, 3000, {}, {}, taken, QStringLiteral("127.0.0.1"), quint16(3001));
        QCOMPARE(narrowed.error(),
                 QStringLiteral("only 1 of 2 ports are free on 127.0.0.1 in 3000..3001"));
        // isTaken is asked only for candidates that pass the cheap checks.
        QList<quint16> asked;
        (void)pickPorts(
            1, 3000, {3000}, {3000},
            [&](quint16 port) {
                asked.append(port);
                return false;
            },
            QStringLiteral("h"));
        QCOMPARE(asked, QList<quint16>{3001});
    }

    void failsWhenTheRangeIsFull() {
        const quint16 base = freeRun(2);
        QVERIFY(base);
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, base + 1));
        const auto ports =
            PortAllocator::allocate(QHostAddress::LocalHost, base, 2, {}, {}, quint16(base + 1));
        QVERIFY(!ports.ok());
        QVERIFY2(ports.error().contains(QStringLiteral("only 1 of 2 ports are free")),
                 qPrintable(ports.error()));
    }

    void rotatesBySize() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("logs/site/3000.log"));
        RotatingLog log(path, 2048, 2, 1024);
        const QByteArray line = QByteArray(99, 'x') + '\n';
        for (int i = 0; i < 100; ++i)
            log.append(line);
        QVERIFY2(log.error().isEmpty(), qPrintable(log.error()));
        QVERIFY(QFile::exists(path));
        QVERIFY(QFile::exists(path + QStringLiteral(".1")));
        QVERIFY(QFile::exists(path + QStringLiteral(".2")));
        QVERIFY(!QFile::exists(path + QStringLiteral(".3")));
        for (const QString &name :
             QStringList{path, path + QStringLiteral(".1"), path + QStringLiteral(".2")})
            QVERIFY2(QFileInfo(name).size() <= 2048, qPrintable(name));
        QCOMPARE(log.totalBytes(), qint64(100 * line.size()));
        // The in-memory tail keeps only the newest lines, within its byte budget.
        const QStringList tail = log.tail(1000);
        QCOMPARE(tail.size(), 10);
        QCOMPARE(log.tail(3).size(), 3);
    }

    void tailKeepsPartialLinesBounded() {
        QTemporaryDir dir;
        RotatingLog log(dir.filePath(QStringLiteral("a.log")), 1 << 20, 1, 64);
        log.append("first\nsecond\npart");
        QCOMPARE(log.tail(), (QStringList{QStringLiteral("first"), QStringLiteral("second"),
                                          QStringLiteral("part")}));
        log.append(QByteArray(1000, 'y')); // a huge unterminated line is cut, not kept whole
        QVERIFY(log.tail().last().size() <= 64);
    }
};

QTEST_GUILESS_MAIN(TestPortAllocator)
#include "tst_portallocator.moc"
