#include "supervisor/RotatingLog.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace corral {

namespace {

constexpr int RetryOpenMs = 1000;

QString errnoText(int error) {
    return QString::fromLocal8Bit(std::strerror(error));
}

} // namespace

RotatingLog::RotatingLog(QString path, qint64 maxBytes, int keep, qsizetype tailBytes)
    : m_path(std::move(path))
    , m_maxBytes(qMax<qint64>(maxBytes, 1024))
    , m_keep(qMax(keep, 1))
    , m_tailBytes(tailBytes) {}

RotatingLog::~RotatingLog() {
    if (m_fd >= 0) ::close(m_fd);
}

bool RotatingLog::ensureOpen() {
    if (m_fd >= 0) return true;
    if (!m_retryOpen.hasExpired()) return false;
    QDir().mkpath(QFileInfo(m_path).absolutePath());
    const int fd = ::open(QFile::encodeName(m_path).constData(),
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        failed(QStringLiteral("cannot open"), errno);
        m_retryOpen.setRemainingTime(RetryOpenMs);
        return false;
    }
    struct stat info {};
    m_fileSize = ::fstat(fd, &info) == 0 ? qint64(info.st_size) : 0;
    m_fd = fd;
    return true;
}

qint64 RotatingLog::writeToFile(const QByteArray &bytes, int *error) {
    qint64 written = 0;
    while (written < bytes.size()) {
        const ssize_t n =
            ::write(m_fd, bytes.constData() + written, size_t(bytes.size() - written));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            *error = n < 0 ? errno : ENOSPC;
            break;
        }
        written += n;
        m_fileSize += n;
    }
    return written;
}

void RotatingLog::failed(const QString &what, int error) {
    const QString message =
        m_path + QStringLiteral(": ") + what + QStringLiteral(": ") + errnoText(error);
    if (message == m_error) return;
    // Said once per cause, in the tail only: the file is what cannot take it.
    m_error = message;
    noteInTail(message + QStringLiteral("; output is kept in memory until the log "
                                        "file can be written again"));
}

void RotatingLog::rotate() {
    ::close(m_fd);
    m_fd = -1;
    const auto numbered = [this](int n) {
        return QFile::encodeName(m_path + QLatin1Char('.') + QString::number(n));
    };
    // Renames only: no copy, so a full disk cannot cost the current log.
    ::unlink(numbered(m_keep).constData());
    for (int n = m_keep - 1; n >= 1; --n)
        ::rename(numbered(n).constData(), numbered(n + 1).constData());
    if (::rename(QFile::encodeName(m_path).constData(), numbered(1).constData()) != 0 &&
        errno != ENOENT) {
        // The current file stays and keeps growing rather than being lost.
        const QString message = m_path + QStringLiteral(": cannot rotate: ") + errnoText(errno);
        if (message != m_rotateError) noteInTail(message);
        m_rotateError = message;
        return;
    }
    m_rotateError.clear();
}

void RotatingLog::append(const QByteArray &bytes) {
    if (bytes.isEmpty()) return;
    m_totalBytes += bytes.size();
    appendToTail(bytes);
    if (!ensureOpen()) {
        m_unwrittenBytes += bytes.size();
        return;
    }
    if (m_fileSize > 0 && m_fileSize + bytes.size() > m_maxBytes && m_rotateError.isEmpty()) {
        rotate();
        if (!ensureOpen()) {
            m_unwrittenBytes += bytes.size();
            return;
        }
    }
    int error = 0;
    if (!m_error.isEmpty()) {
        // The file may take writes again: first say what it missed.
        const QByteArray resumed =
            (m_tornLine ? QByteArray("\n") : QByteArray()) +
            noteLine(QStringLiteral("%1 bytes of output are missing here (%2)")
                         .arg(m_unwrittenBytes - m_unwrittenNoted)
                         .arg(m_error));
        const qint64 written = writeToFile(resumed, &error);
        if (written > 0) m_tornLine = written < resumed.size();
        if (written < resumed.size()) {
            failed(QStringLiteral("cannot write"), error);
            m_unwrittenBytes += bytes.size();
            return;
        }
        m_unwrittenNoted = m_unwrittenBytes;
        noteInTail(QStringLiteral("%1: writing again").arg(m_path));
        m_error.clear();
    }
    const qint64 written = writeToFile(bytes, &error);
    if (written < bytes.size()) {
        m_unwrittenBytes += bytes.size() - written;
        if (written > 0) m_tornLine = true;
        failed(QStringLiteral("cannot write"), error);
    }
}

void RotatingLog::noteInTail(const QString &text) {
    if (!m_partial.isEmpty()) appendToTail("\n");
    appendToTail(noteLine(text));
}

void RotatingLog::note(const QString &text) {
    append(noteLine(text));
}

QByteArray RotatingLog::noteLine(const QString &text) const {
    return QStringLiteral("[corral %1] %2\n")
        .arg(QDateTime::currentDateTime().toString(Qt::ISODate), text)
        .toUtf8();
}

void RotatingLog::appendToTail(const QByteArray &bytes) {
    if (m_tailBytes <= 0) return; // no tail kept: nothing to split into lines
    qsizetype start = 0;
    while (start < bytes.size()) {
        const qsizetype newline = bytes.indexOf('\n', start);
        if (newline < 0) {
            m_partial.append(bytes.constData() + start, bytes.size() - start);
            // A line longer than the whole tail is cut rather than kept without bound.
            if (m_partial.size() > m_tailBytes) m_partial = m_partial.right(m_tailBytes);
            break;
        }
        m_partial.append(bytes.constData() + start, newline - start);
        m_linesBytes += m_partial.size();
        m_lines.push_back(std::move(m_partial));
        m_partial = QByteArray();
        start = newline + 1;
    }
    while (m_linesBytes > m_tailBytes && !m_lines.empty()) {
        m_linesBytes -= m_lines.front().size();
        m_lines.pop_front();
    }
}

QStringList RotatingLog::tail(int maxLines) const {
    QStringList lines;
    const qsizetype available = qsizetype(m_lines.size()) + (m_partial.isEmpty() ? 0 : 1);
    const qsizetype skip = qMax<qsizetype>(0, available - maxLines);
    for (qsizetype i = skip; i < qsizetype(m_lines.size()); ++i)
        lines.append(QString::fromUtf8(m_lines[size_t(i)]));
    if (!m_partial.isEmpty() && lines.size() < maxLines) lines.append(QString::fromUtf8(m_partial));
    return lines;
}

} // namespace corral
