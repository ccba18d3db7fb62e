// LogReader: what `corralctl logs` reads from worker logs. Real files, written by the real
// RotatingLog where rotation matters.

#include "supervisor/LogReader.h"
#include "supervisor/RotatingLog.h"

#include <QDateTime>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using corral::LogLine;
using corral::WorkerLogStream;

namespace {

void write(const QString &path, const QByteArray &content) {
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write(content);
}

QStringList texts(const QList<LogLine> &lines) {
    QStringList result;
    for (const LogLine &line : lines)
        result.append(QString::number(line.port) + QLatin1Char(' ') + line.text);
    return result;
}

} // namespace

class TestLogReader : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;

private Q_SLOTS:
    void timestampsAreRead() {
        const qint64 utc =
            QDateTime::fromString(QStringLiteral("2026-12-02T16:05:46.123Z"), Qt::ISODateWithMs)
                .toMSecsSinceEpoch();
        QCOMPARE(corral::logLineTimestampMs("2026-12-02T16:05:46.123Z GET /"), utc);
        QCOMPARE(corral::logLineTimestampMs("[2026-12-02 16:05:46,123 +0000] x"), utc);
        QCOMPARE(corral::logLineTimestampMs("2026-12-02T17:05:46.123+01:00"), utc);
        QVERIFY(corral::logLineTimestampMs("[corral 2026-12-02T16:05:46] stopped -> starting"));
        QVERIFY(!corral::logLineTimestampMs("listening on 127.0.0.1:3000"));
        QVERIFY(!corral::logLineTimestampMs("3000 requests"));
        QVERIFY(!corral::logLineTimestampMs(""));
    }

    // Lines are ordered by their own time, or by the latest note before them in their log;
    // each worker's lines keep their order.
    void mergeOrdersByTimeAndKeepsEachLogsOrder() {
        const QString a = m_dir.filePath(QStringLiteral("3000.log"));
        const QString b = m_dir.filePath(QStringLiteral("3001.log"));
        write(a, "[corral 2026-12-02T10:00:01] started pid 1\n"
                 "a1\n"
                 "[corral 2026-12-02T10:00:03] running -> stopping\n"
                 "a2\n");
        write(b, "[corral 2026-12-02T10:00:02] started pid 2\n"
                 "b1\n"
                 "b2\n"
                 "2026-12-02T10:00:04 b3 with its own time\n");
        WorkerLogStream first(3000, a);
        WorkerLogStream second(3001, b);
        const QList<LogLine> merged =
            corral::mergeLogLines({first.lastLines(100), second.lastLines(100)});
        QCOMPARE(
            texts(merged),
            (QStringList{QStringLiteral("3000 [corral 2026-12-02T10:00:01] started pid 1"),
                         QStringLiteral("3000 a1"),
                         QStringLiteral("3001 [corral 2026-12-02T10:00:02] started pid 2"),
                         QStringLiteral("3001 b1"), QStringLiteral("3001 b2"),
                         QStringLiteral("3000 [corral 2026-12-02T10:00:03] running -> stopping"),
                         QStringLiteral("3000 a2"),
                         QStringLiteral("3001 2026-12-02T10:00:04 b3 with its own time")}));
    }

    // The last lines come from the rotated copies too, a line cut by a rotation whole.
    void lastLinesSpanRotatedFiles() {
        const QString path = m_dir.filePath(QStringLiteral("4000.log"));
        write(path + QStringLiteral(".2"), "one\ntwo\n");
        write(path + QStringLiteral(".1"), "three\nfou");
        write(path, "r\nfive\nsix");
        WorkerLogStream stream(4000, path);
        QCOMPARE(texts(stream.lastLines(4)),
                 (QStringList{QStringLiteral("4000 three"), QStringLiteral("4000 four"),
                              QStringLiteral("4000 five"), QStringLiteral("4000 six")}));
        QCOMPARE(stream.lastLines(100).size(), 6);
        QCOMPARE(stream.lastLines(0).size(), 0);
        QCOMPARE(corral::rotatedLogFiles(path),
                 (QStringList{path + QStringLiteral(".2"), path + QStringLiteral(".1"), path}));
    }

    // Following the real RotatingLog through rotations, some of them several between two
    // polls: every line exactly once, in order.
    void followsAcrossRotations() {
        const QString path = m_dir.filePath(QStringLiteral("follow/5000.log"));
        corral::RotatingLog log(path, 1024, 5);
        log.append("before the reader\n");
        WorkerLogStream stream(5000, path);
        QStringList seen;
        int next = 0;
        const auto writeLines = [&](int count) {
            for (int i = 0; i < count; ++i)
                log.append(QStringLiteral("line %1 ........................................\n")
                               .arg(next++)
                               .toUtf8());
        };
        for (const int burst : {3, 30, 1, 50, 80, 0, 7}) { // 80 lines: three rotations
            writeLines(burst);
            for (const LogLine &line : stream.poll())
                seen.append(line.text.section(QLatin1Char(' '), 0, 1));
        }
        QStringList expected;
        for (int i = 0; i < next; ++i)
            expected.append(QStringLiteral("line %1").arg(i));
        QCOMPARE(seen, expected);
        QVERIFY(QFile::exists(path + QStringLiteral(".3")));
    }

    // A log that appears later is read from its start; a truncated one from its new start.
    void followsNewAndTruncatedFiles() {
        const QString path = m_dir.filePath(QStringLiteral("6000.log"));
        WorkerLogStream stream(6000, path);
        QVERIFY(stream.poll().isEmpty());
        write(path, "first\nsecond\npartial");
        QCOMPARE(texts(stream.poll()),
                 (QStringList{QStringLiteral("6000 first"), QStringLiteral("6000 second")}));
        write(path, "again\n");
        QCOMPARE(texts(stream.poll()), QStringList{QStringLiteral("6000 again")});
    }
};

QTEST_GUILESS_MAIN(TestLogReader)
#include "tst_logreader.moc"
