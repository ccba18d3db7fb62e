#pragma once

#include <QByteArray>
#include <QDeadlineTimer>
#include <QString>
#include <QStringList>

#include <deque>

namespace corral {

/// A worker's captured output: appended to PATH with size-based rotation (PATH.1 .. PATH.N,
/// like logrotate) plus a bounded in-memory tail of recent lines for the UI. Memory stays
/// bounded whatever the writer's rate: the tail keeps at most `tailBytes`.
///
/// A full disk (or any failed write) never stops the worker: the output still reaches the tail,
/// the bytes the file missed are counted, a note in the tail says why, and writing resumes by
/// itself once the file takes writes again (with a note in the file saying how much is
/// missing). Rotation only renames files, so it never needs space and never loses the current
/// log. A `tailBytes` of 0 keeps no tail (the proxy's access log: the file is its record).
class RotatingLog {
public:
    static constexpr qint64 DefaultMaxBytes = 10 * 1024 * 1024;
    static constexpr int DefaultKeep = 3;
    static constexpr qsizetype DefaultTailBytes = 256 * 1024;

    explicit RotatingLog(QString path, qint64 maxBytes = DefaultMaxBytes, int keep = DefaultKeep,
                         qsizetype tailBytes = DefaultTailBytes);
    ~RotatingLog();
    RotatingLog(const RotatingLog &) = delete;
    RotatingLog &operator=(const RotatingLog &) = delete;

    const QString &path() const { return m_path; }
    /// Appends raw output; rotates first when the file would grow past maxBytes.
    void append(const QByteArray &bytes);
    /// Writes a supervisor note ("[corral] ...") into the same stream.
    void note(const QString &text);
    /// The last `maxLines` complete lines (and a trailing partial line), oldest first.
    QStringList tail(int maxLines = 1000) const;
    /// Why output is not reaching the file right now, naming it ("PATH: cannot write: No space
    /// left on device"); empty while writes succeed.
    QString error() const { return m_error; }
    /// Output bytes the file missed (open, write or rotation failures); they are in the tail.
    qint64 unwrittenBytes() const { return m_unwrittenBytes; }
    qint64 totalBytes() const { return m_totalBytes; }

private:
    void rotate();
    bool ensureOpen();
    /// write(2) until done or failed; returns the bytes written and sets `error` when short.
    qint64 writeToFile(const QByteArray &bytes, int *error);
    void failed(const QString &what, int error);
    void appendToTail(const QByteArray &bytes);
    QByteArray noteLine(const QString &text) const;
    /// A note for the reader of the tail only (about the file itself).
    void noteInTail(const QString &text);

    QString m_path;
    qint64 m_maxBytes;
    int m_keep;
    qsizetype m_tailBytes;
    int m_fd = -1;
    qint64 m_fileSize = 0;
    QDeadlineTimer m_retryOpen; ///< after a failed open, the next attempt waits a little
    QString m_error;
    QString m_rotateError;
    qint64 m_unwrittenBytes = 0;
    qint64 m_unwrittenNoted = 0; ///< unwrittenBytes already noted in the file
    bool m_tornLine = false;     ///< a write stopped mid-buffer: the file ends mid-line
    qint64 m_totalBytes = 0;
    std::deque<QByteArray> m_lines;
    qsizetype m_linesBytes = 0;
    QByteArray m_partial;
};

} // namespace corral
