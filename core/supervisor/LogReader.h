#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

#include <optional>
#include <sys/types.h>

namespace corral {

/// One line of a worker's log as `corralctl logs` shows it.
struct LogLine {
    quint16 port = 0;
    /// When it was written, as far as the log says: the line's own leading timestamp, else the
    /// latest one before it in the same worker's log (Corral's "[corral TIME]" notes mark every
    /// start and state change), else the earliest one after it; 0 when the log has none.
    qint64 timeMs = 0;
    QString text;
};

/// The timestamp a log line starts with, in ms since the epoch: Corral's own notes
/// ("[corral 2026-12-02T16:05:46+01:00] ...") and ISO 8601 date-times at the start of a line,
/// optionally in brackets ("2026-12-02T16:05:46.123Z", "2026-12-02 16:05:46,123").
std::optional<qint64> logLineTimestampMs(QByteArrayView line);

/// The files of the log at `path`, oldest first: the rotated copies PATH.N .. PATH.1 that exist
/// (RotatingLog's naming), then PATH.
QStringList rotatedLogFiles(const QString &path);

/// One worker's log, for `corralctl logs`: its recent lines and, when followed, the lines
/// written since, across rotation (PATH renamed to PATH.1 and a new PATH created: the rest of
/// the old file is read, then the new one from its start), truncation and worker restarts (the
/// log of a port is one file whoever writes it).
class WorkerLogStream {
public:
    /// Opens PATH (when it exists) and notes where it ends: lastLines() reads up to there and
    /// poll() returns what comes after, so no line is shown twice or skipped.
    enum Start { AtEnd, FromStart };
    /// FromStart: a log created after the reader looked, all of it new for poll().
    WorkerLogStream(quint16 port, QString path, Start start = AtEnd);
    ~WorkerLogStream();
    WorkerLogStream(const WorkerLogStream &) = delete;
    WorkerLogStream &operator=(const WorkerLogStream &) = delete;

    quint16 port() const { return m_port; }
    const QString &path() const { return m_path; }

    /// The last `count` lines (rotated files included), oldest first, with their times.
    QList<LogLine> lastLines(int count) const;
    /// The complete lines written since the previous call (or since construction), timed now
    /// when they carry no timestamp of their own.
    QList<LogLine> poll();

private:
    void openCurrent(bool atEnd);
    void readToEnd(QList<LogLine> &lines);

    quint16 m_port;
    QString m_path;
    int m_fd = -1;
    dev_t m_device = 0;
    ino_t m_inode = 0;
    qint64 m_offset = 0;
    qint64 m_historyEnd = 0; ///< where PATH ended when opened: lastLines() reads up to here
    qint64 m_lastTimeMs = 0;
    QByteArray m_partial;
};

/// Merges the lines of several workers by time; lines with the same time keep their order
/// (each worker's lines stay in the order its log has them).
QList<LogLine> mergeLogLines(const QList<QList<LogLine>> &perWorker);

} // namespace corral
