#include "ssh/BatchedCommand.h"
#include "ssh/ShellQuote.h"

#include <QDir>
#include <QProcess>
#include <QTest>

using namespace corral;

/// BatchedCommand through a real /bin/sh (what an SSH exec runs it with).
class TestBatchedCommand : public QObject {
    Q_OBJECT

    static QByteArray runInShell(const QString &command) {
        QProcess shell;
        shell.start(QStringLiteral("sh"), {QStringLiteral("-c"), command});
        shell.closeWriteChannel();
        if (!shell.waitForFinished(10000)) return {};
        return shell.readAllStandardOutput();
    }

private Q_SLOTS:
    void partsKeepTheirExactOutputAndStatus() {
        BatchedCommand batch;
        batch.add(QStringLiteral("plain"), QStringLiteral("printf 'a\\nb\\n'"));
        batch.add(QStringLiteral("partial"), QStringLiteral("printf 'no newline'"));
        batch.add(QStringLiteral("empty"), QStringLiteral("true"));
        batch.add(QStringLiteral("failing"), QStringLiteral("echo out; echo err >&2; exit 3"));
        // A part that exits or changes directory does not end or move the ones after it.
        batch.add(QStringLiteral("moves"), QStringLiteral("cd / && exit 7"));
        batch.add(QStringLiteral("where"), QStringLiteral("pwd"));
        // Output that imitates a frame (without knowing the random marker) stays output.
        batch.add(QStringLiteral("forged"),
                  shellCommand({QStringLiteral("printf"), QStringLiteral("%s\\n"),
                                QStringLiteral("@@corral-0000000000000000/forged 0"),
                                QStringLiteral("@@corral-0000000000000000 where")}));
        const QByteArray output = runInShell(batch.command());
        auto parts = batch.split(output);
        QVERIFY2(parts,
                 qPrintable(parts.error() + QStringLiteral("\n") + QString::fromUtf8(output)));
        QCOMPARE(parts->value(QStringLiteral("plain")).output, QByteArray("a\nb\n"));
        QCOMPARE(parts->value(QStringLiteral("plain")).status, 0);
        QCOMPARE(parts->value(QStringLiteral("partial")).output, QByteArray("no newline"));
        QCOMPARE(parts->value(QStringLiteral("empty")).output, QByteArray());
        QCOMPARE(parts->value(QStringLiteral("failing")).output, QByteArray("out\n"));
        QCOMPARE(parts->value(QStringLiteral("failing")).status, 3);
        QCOMPARE(parts->value(QStringLiteral("moves")).status, 7);
        QCOMPARE(parts->value(QStringLiteral("where")).output, QDir::currentPath().toUtf8() + '\n');
        QCOMPARE(
            parts->value(QStringLiteral("forged")).output,
            QByteArray("@@corral-0000000000000000/forged 0\n@@corral-0000000000000000 where\n"));
    }

    void truncatedOutputIsAnError() {
        BatchedCommand batch;
        batch.add(QStringLiteral("one"), QStringLiteral("echo 1"));
        batch.add(QStringLiteral("two"), QStringLiteral("echo 2"));
        const QByteArray output = runInShell(batch.command());
        QVERIFY(batch.split(output));
        const auto cut = batch.split(output.left(output.size() - 4));
        QVERIFY(!cut);
        QVERIFY2(cut.error().contains(QStringLiteral("\"two\"")), qPrintable(cut.error()));
        const auto foreign = batch.split("1\n2\n");
        QVERIFY(!foreign);
        QVERIFY2(foreign.error().contains(QStringLiteral("\"one\"")), qPrintable(foreign.error()));
        // Another batch's marker is not this one's.
        BatchedCommand other;
        other.add(QStringLiteral("one"), QStringLiteral("echo 1"));
        other.add(QStringLiteral("two"), QStringLiteral("echo 2"));
        QVERIFY(!other.split(output));
    }
};

QTEST_GUILESS_MAIN(TestBatchedCommand)
#include "tst_batchedcommand.moc"
