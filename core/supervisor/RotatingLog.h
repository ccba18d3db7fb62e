#pragma once

#include <QByteArray>
#include <QFile>
#include <QString>
#include <QStringList>

#include <deque>

namespace corral {

/// A worker's captured output: appended to PATH with size-based rotation (PATH.1 .. PATH.N,
/// like logrotate) plus a bounded in-memory tail of recent lines for the UI. Memory stays
/// bounded whatever the writer's rate: the tail keeps at most `tailBytes`.
class RotatingLog {
public:
    static constexpr qint64 DefaultMaxBytes = 10 * 1024 * 1024;
    static constexpr int DefaultKeep = 3;
    static constexpr qsizetype DefaultTailBytes = 256 * 1024;

    explicit RotatingLog(QString path, qint64 maxBytes = DefaultMaxBytes, int keep = DefaultKeep,
                         qsizetype tailBytes = DefaultTailBytes);

    const QString &path() const { return m_path; }
    /// Appends raw output; rotates first when the file would grow past maxBytes.
    void append(const QByteArray &bytes);
    /// Writes a supervisor note ("[corral] ...") into the same stream.
    void note(const QString &text);
    /// The last `maxLines` complete lines (and a trailing partial line), oldest first.
    QStringList tail(int maxLines = 1000) const;
    /// Error opening or writing the file, if any (output is then kept only in memory).
    QString error() const { return m_error; }
    qint64 totalBytes() const { return m_totalBytes; }

private:
    void rotate();
    bool ensureOpen();
    void appendToTail(const QByteArray &bytes);

    QString m_path;
    qint64 m_maxBytes;
    int m_keep;
    qsizetype m_tailBytes;
    QFile m_file;
    QString m_error;
    qint64 m_totalBytes = 0;
    std::deque<QByteArray> m_lines;
    qsizetype m_linesBytes = 0;
    QByteArray m_partial;
};

} // namespace corral
