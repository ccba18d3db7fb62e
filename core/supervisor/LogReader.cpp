#include "supervisor/LogReader.h"

#include <QDateTime>
#include <QFile>
#include <QRegularExpression>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace corral {

namespace {

constexpr qint64 ChunkBytes = 64 * 1024;
/// Read past the lines asked for, looking for a timestamp that dates them, at most this much.
constexpr qint64 ExtraScanBytes = 1024 * 1024;
/// A line longer than this is cut into pieces (a program writing without newlines must not make
/// the reader hold its whole output).
constexpr qsizetype MaxLineBytes = 1024 * 1024;
/// RotatingLog keeps far fewer; this only bounds the search for PATH.N.
constexpr int MaxRotatedFiles = 100;

QString lineText(QByteArray line) {
    if (line.endsWith('\r')) line.chop(1);
    return QString::fromUtf8(line);
}

qint64 preadFully(int fd, char *buffer, qint64 size, qint64 offset) {
    qint64 done = 0;
    while (done < size) {
        const ssize_t n = ::pread(fd, buffer + done, size_t(size - done), off_t(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += n;
    }
    return done;
}

} // namespace

std::optional<qint64> logLineTimestampMs(QByteArrayView line) {
    if (line.isEmpty() || !(line.front() == '[' || (line.front() >= '0' && line.front() <= '9')))
        return std::nullopt;
    static const QRegularExpression pattern(QStringLiteral(
        R"(^\[?(?:corral )?(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d{1,9}))?(?: ?(Z|[+-]\d\d:?\d\d))?)"));
    const QString head = QString::fromLatin1(line.first(qMin<qsizetype>(line.size(), 48)));
    const QRegularExpressionMatch match = pattern.match(head);
    if (!match.hasMatch()) return std::nullopt;
    QString text = match.captured(1) + QLatin1Char('T') + match.captured(2) + QLatin1Char('.') +
                   QString(match.captured(3) + QStringLiteral("000")).left(3);
    QString zone = match.captured(4);
    if (zone.size() == 5) zone.insert(3, QLatin1Char(':')); // +0100 -> +01:00
    text += zone;
    const QDateTime time = QDateTime::fromString(text, Qt::ISODateWithMs);
    if (!time.isValid()) return std::nullopt;
    return time.toMSecsSinceEpoch();
}

QStringList rotatedLogFiles(const QString &path) {
    QStringList files;
    for (int n = 1; n <= MaxRotatedFiles; ++n) {
        const QString rotated = path + QLatin1Char('.') + QString::number(n);
        if (!QFile::exists(rotated)) break;
        files.prepend(rotated);
    }
    if (QFile::exists(path)) files.append(path);
    return files;
}

WorkerLogStream::WorkerLogStream(quint16 port, QString path, Start start)
    : m_port(port)
    , m_path(std::move(path)) {
    openCurrent(start == AtEnd);
}

WorkerLogStream::~WorkerLogStream() {
    if (m_fd >= 0) ::close(m_fd);
}

void WorkerLogStream::openCurrent(bool atEnd) {
    const int fd = ::open(QFile::encodeName(m_path).constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        ::close(fd);
        return;
    }
    m_fd = fd;
    m_device = info.st_dev;
    m_inode = info.st_ino;
    m_offset = atEnd ? qint64(info.st_size) : 0;
    if (atEnd) m_historyEnd = m_offset;
}

QList<LogLine> WorkerLogStream::lastLines(int count) const {
    if (count <= 0) return {};
    struct Source {
        int fd;
        qint64 size;
        bool owned;
    };
    // Newest first: the current file as it was when opened, then PATH.1, PATH.2 ...
    std::vector<Source> sources;
    if (m_fd >= 0) sources.push_back({m_fd, m_historyEnd, false});
    QStringList rotated = rotatedLogFiles(m_path);
    if (!rotated.isEmpty() && rotated.last() == m_path) rotated.removeLast();
    for (auto file = rotated.crbegin(); file != rotated.crend(); ++file) {
        const int fd = ::open(QFile::encodeName(*file).constData(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat info {};
        // Rotated since we opened it: it is the file already read.
        if (::fstat(fd, &info) != 0 || (info.st_ino == m_inode && info.st_dev == m_device)) {
            ::close(fd);
            continue;
        }
        sources.push_back({fd, qint64(info.st_size), true});
    }

    QList<QByteArray> newestFirst;
    QByteArray pending; // the (start of the) line being read backwards
    bool streamEnd = true;
    bool done = false;
    qint64 scannedPastCount = 0;
    const auto take = [&](QByteArray line) {
        if (streamEnd) {
            streamEnd = false;
            if (line.isEmpty()) return; // the final newline
        }
        newestFirst.append(std::move(line));
        if (newestFirst.size() < count) return;
        // Enough lines; one more that carries a timestamp dates those after it.
        if (newestFirst.size() > count && logLineTimestampMs(newestFirst.last())) done = true;
    };
    QByteArray chunk;
    for (const Source &source : sources) {
        qint64 position = source.size;
        while (position > 0 && !done) {
            const qint64 size = qMin(ChunkBytes, position);
            position -= size;
            chunk.resize(size);
            const qint64 got = preadFully(source.fd, chunk.data(), size, position);
            chunk.truncate(got);
            pending.prepend(chunk);
            qsizetype newline;
            while (!done && (newline = pending.lastIndexOf('\n')) >= 0) {
                take(pending.mid(newline + 1));
                pending.truncate(newline);
            }
            if (pending.size() > MaxLineBytes) {
                take(pending.right(MaxLineBytes));
                pending.clear();
            }
            if (newestFirst.size() >= count) {
                scannedPastCount += got;
                if (scannedPastCount > ExtraScanBytes) done = true;
            }
        }
        if (done) break;
    }
    if (!done && !pending.isEmpty()) take(pending);
    for (const Source &source : sources)
        if (source.owned) ::close(source.fd);

    // Oldest first, each dated by the latest timestamp at or before it (the first one found
    // for those before any).
    QList<LogLine> lines;
    lines.reserve(newestFirst.size());
    qint64 time = 0;
    for (auto line = newestFirst.crbegin(); line != newestFirst.crend(); ++line)
        if (const auto stamp = logLineTimestampMs(*line)) {
            time = *stamp;
            break;
        }
    for (auto line = newestFirst.crbegin(); line != newestFirst.crend(); ++line) {
        if (const auto stamp = logLineTimestampMs(*line)) time = qMax(time, *stamp);
        lines.append(LogLine{m_port, time, lineText(*line)});
    }
    if (lines.size() > count) lines.remove(0, lines.size() - count);
    return lines;
}

void WorkerLogStream::readToEnd(QList<LogLine> &lines) {
    struct stat info {};
    if (::fstat(m_fd, &info) != 0) return;
    if (qint64(info.st_size) < m_offset) { // truncated: start again
        m_offset = 0;
        m_partial.clear();
    }
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    QByteArray chunk;
    for (;;) {
        chunk.resize(ChunkBytes);
        const qint64 got = preadFully(m_fd, chunk.data(), ChunkBytes, m_offset);
        if (got <= 0) break;
        m_offset += got;
        m_partial.append(chunk.constData(), got);
        qsizetype start = 0;
        qsizetype newline;
        while ((newline = m_partial.indexOf('\n', start)) >= 0) {
            const QByteArray line = m_partial.mid(start, newline - start);
            m_lastTimeMs = qMax(m_lastTimeMs, logLineTimestampMs(line).value_or(now));
            lines.append(LogLine{m_port, m_lastTimeMs, lineText(line)});
            start = newline + 1;
        }
        m_partial.remove(0, start);
        if (m_partial.size() > MaxLineBytes) {
            lines.append(LogLine{m_port, qMax(m_lastTimeMs, now), lineText(m_partial)});
            m_partial.clear();
        }
        if (got < ChunkBytes) break;
    }
}

QList<LogLine> WorkerLogStream::poll() {
    QList<LogLine> lines;
    if (m_fd < 0) {
        openCurrent(false); // created since: all of it is new
        if (m_fd < 0) return lines;
    }
    readToEnd(lines);
    struct stat info {};
    if (::stat(QFile::encodeName(m_path).constData(), &info) == 0 &&
        (info.st_ino != m_inode || info.st_dev != m_device)) {
        // Rotated: RotatingLog closes the old file before renaming it, so what is left of it
        // is final. It may have rotated more than once since the last poll: the file read so
        // far is now PATH.k, and PATH.k-1 .. PATH.1 came after it (all of them when it is
        // gone); each is read whole, then the new PATH from its start.
        readToEnd(lines);
        QStringList rotated = rotatedLogFiles(m_path);
        if (!rotated.isEmpty() && rotated.last() == m_path) rotated.removeLast();
        struct stat ours {};
        ::fstat(m_fd, &ours);
        std::vector<int> newer;
        for (const QString &file : std::as_const(rotated)) {
            const int fd = ::open(QFile::encodeName(file).constData(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            struct stat copy {};
            const bool read = ::fstat(fd, &copy) != 0 ||
                              (copy.st_ino == m_inode && copy.st_dev == m_device) ||
                              // not ours, but last written before ours was: older (ours was
                              // removed, not rotated)
                              copy.st_mtim.tv_sec < ours.st_mtim.tv_sec;
            if (copy.st_ino == m_inode && copy.st_dev == m_device) {
                for (int older : newer) // older than ours: already read
                    ::close(older);
                newer.clear();
            }
            if (read) {
                ::close(fd);
                continue;
            }
            newer.push_back(fd);
        }
        ::close(m_fd);
        for (int fd : newer) {
            m_fd = fd;
            m_offset = 0;
            readToEnd(lines);
            ::close(fd);
        }
        m_fd = -1;
        openCurrent(false);
        if (m_fd >= 0) readToEnd(lines);
    }
    return lines;
}

QList<LogLine> mergeLogLines(const QList<QList<LogLine>> &perWorker) {
    QList<LogLine> merged;
    for (const QList<LogLine> &lines : perWorker)
        merged += lines;
    std::stable_sort(merged.begin(), merged.end(),
                     [](const LogLine &a, const LogLine &b) { return a.timeMs < b.timeMs; });
    return merged;
}

} // namespace corral
