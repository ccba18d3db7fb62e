#include "supervisor/RotatingLog.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>

namespace corral {

RotatingLog::RotatingLog(QString path, qint64 maxBytes, int keep, qsizetype tailBytes)
    : m_path(std::move(path))
    , m_maxBytes(qMax<qint64>(maxBytes, 1024))
    , m_keep(qMax(keep, 1))
    , m_tailBytes(tailBytes) {}

bool RotatingLog::ensureOpen() {
    if (m_file.isOpen()) return true;
    if (!m_error.isEmpty()) return false;
    QDir().mkpath(QFileInfo(m_path).absolutePath());
    m_file.setFileName(m_path);
    if (!m_file.open(QIODevice::WriteOnly | QIODevice::Append)) {
        m_error = m_path + QStringLiteral(": ") + m_file.errorString();
        return false;
    }
    return true;
}

void RotatingLog::rotate() {
    m_file.close();
    const auto numbered = [this](int n) -> QString {
        return m_path + QLatin1Char('.') + QString::number(n);
    };
    QFile::remove(numbered(m_keep));
    for (int n = m_keep - 1; n >= 1; --n)
        QFile::rename(numbered(n), numbered(n + 1));
    QFile::rename(m_path, numbered(1));
}

void RotatingLog::append(const QByteArray &bytes) {
    if (bytes.isEmpty()) return;
    m_totalBytes += bytes.size();
    appendToTail(bytes);
    if (!ensureOpen()) return;
    if (m_file.size() > 0 && m_file.size() + bytes.size() > m_maxBytes) {
        rotate();
        if (!ensureOpen()) return;
    }
    if (m_file.write(bytes) != bytes.size())
        m_error = m_path + QStringLiteral(": ") + m_file.errorString();
    m_file.flush();
}

void RotatingLog::note(const QString &text) {
    append(QStringLiteral("[corral %1] %2\n")
               .arg(QDateTime::currentDateTime().toString(Qt::ISODate), text)
               .toUtf8());
}

void RotatingLog::appendToTail(const QByteArray &bytes) {
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
