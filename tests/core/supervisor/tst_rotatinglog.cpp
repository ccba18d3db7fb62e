#include "helpers/SmallTmpfs.h"
#include "supervisor/RotatingLog.h"

#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;
using namespace corral::test;

namespace {

QByteArray readAll(const QString &path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

} // namespace

/// A worker's log on a real full disk (issue 14 item 1): rotation keeps the current log, failed
/// writes are counted and said, output stays in the tail, and writing resumes by itself.
class TestRotatingLog : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void rotatesBySize() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("logs/w.log"));
        RotatingLog log(path, 1024, 2);
        const QByteArray line(99, 'x');
        for (int i = 0; i < 40; ++i)
            log.append(line + '\n');
        QVERIFY(log.error().isEmpty());
        QCOMPARE(log.unwrittenBytes(), 0);
        QVERIFY(QFileInfo(path).size() <= 1024);
        QCOMPARE(QFileInfo(path + QStringLiteral(".1")).size(), 1000);
        QCOMPARE(QFileInfo(path + QStringLiteral(".2")).size(), 1000);
        QVERIFY(!QFile::exists(path + QStringLiteral(".3")));
        QCOMPARE(log.tail(5).size(), 5);
    }

    void fullDiskKeepsTheLogAndCountsWhatItMissed() {
        SmallTmpfs disk;
        QString error;
        if (!disk.mount(QStringLiteral("64k"), &error)) QSKIP(qPrintable(error));
        const QString path = disk.filePath(QStringLiteral("shop-3000.log"));
        RotatingLog log(path, 4096, 2);
        const QByteArray first = "written before the disk filled up\n";
        log.append(first);
        QVERIFY(log.error().isEmpty());
        QVERIFY2(disk.fill(&error), qPrintable(error));

        // The first file page still has room; past 4096 bytes the log rotates (renames only)
        // and the new file gets no page at all.
        for (int i = 0; i < 300; ++i)
            log.append(QStringLiteral("output while the disk is full %1\n").arg(i, 3).toUtf8());
        QCOMPARE(log.error(), path + QStringLiteral(": cannot write: No space left on device"));
        QVERIFY(log.unwrittenBytes() > 0);
        // Nothing went missing without being counted.
        const qint64 inFiles =
            QFileInfo(path).size() + QFileInfo(path + QStringLiteral(".1")).size();
        QCOMPARE(inFiles + log.unwrittenBytes(), log.totalBytes());
        // The current log survived its rotation.
        QVERIFY(readAll(path + QStringLiteral(".1")).startsWith(first));
        // The reader of the tail sees every line, and why the file misses some.
        const QStringList tail = log.tail(1000);
        QVERIFY(tail.contains(QStringLiteral("output while the disk is full 299")));
        QCOMPARE(
            tail.filter(QStringLiteral("No space left on device; output is kept in memory")).size(),
            1);

        // Room again: writing resumes, and the file says how much is missing.
        QVERIFY(QFile::remove(disk.filePath(QStringLiteral("filler"))));
        log.append("after the disk was freed\n");
        QVERIFY2(log.error().isEmpty(), qPrintable(log.error()));
        const QByteArray resumed = readAll(path);
        QVERIFY2(resumed.contains(QStringLiteral("%1 bytes of output are missing here (%2: "
                                                 "cannot write: No space left on device)")
                                      .arg(log.unwrittenBytes())
                                      .arg(path)
                                      .toUtf8()),
                 resumed.constData());
        QVERIFY(resumed.endsWith("after the disk was freed\n"));
        QVERIFY(!resumed.contains("\n\n")); // a torn line is ended before the note, not doubled
    }
};

QTEST_GUILESS_MAIN(TestRotatingLog)
#include "tst_rotatinglog.moc"
