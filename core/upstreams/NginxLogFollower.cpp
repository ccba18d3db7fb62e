#include "upstreams/NginxLogFollower.h"

#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QStringList>

namespace corral {

NginxLogFollower::NginxLogFollower(QString logPath, bool fromStart, qint64 chunkLimit)
    : m_path(std::move(logPath))
    , m_positioned(fromStart)
    , m_limit(qMax<qint64>(4096, chunkLimit)) {}

QString NginxLogFollower::command() const {
    // First line: "SIZE START" (START 1-based; 1 again after a rotation), then the bytes.
    const QString script =
        QStringLiteral("size=$(stat -c %s -- \"$1\" 2>/dev/null) || { echo '0 1'; exit 0; }; "
                       "if [ \"$size\" -lt \"$2\" ]; then start=1; else start=$(($2 + 1)); fi; "
                       "echo \"$size $start\"; "
                       "if [ \"$3\" = 0 ]; then exit 0; fi; "
                       "tail -c +\"$start\" -- \"$1\" | head -c \"$3\"");
    const qint64 limit = m_positioned ? m_limit : 0;
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh"),
                         m_path, QString::number(m_offset), QString::number(limit)});
}

QString NginxLogFollower::upstreamOf(const QByteArray &line) {
    const qsizetype begin = line.indexOf(" upstream=");
    if (begin < 0) return {};
    const qsizetype valueStart = begin + 10;
    // nginx's value may hold spaces ("a, b") and is followed by upstream_status=; Apache's
    // (BALANCER_WORKER_NAME) is one word.
    qsizetype end = line.indexOf(" upstream_status=", valueStart);
    if (end < 0) end = line.indexOf(' ', valueStart);
    if (end < 0) end = line.size();
    QByteArray value = line.mid(valueStart, end - valueStart).trimmed();
    // "a, b" (next upstream after a failure) and "a : b" (internal redirect): the last one
    // produced the answer.
    const qsizetype comma = qMax(value.lastIndexOf(", "), value.lastIndexOf(" : "));
    if (comma >= 0) value = value.mid(comma + 2).trimmed();
    // Apache names the member by URL: "http://127.0.0.1:3001", "ws://[::1]:3001/".
    if (const qsizetype scheme = value.indexOf("://"); scheme >= 0) {
        value = value.mid(scheme + 3);
        if (const qsizetype slash = value.indexOf('/'); slash >= 0) value.truncate(slash);
    }
    if (value.isEmpty() || value == "-" || !value.contains(':')) return {};
    return QString::fromLatin1(value);
}

int NginxLogFollower::statusOf(const QByteArray &line) {
    // The request is the first quoted field; nginx escapes a quote inside it as \x22, Apache
    // as \" (and a backslash as \\), so a quote after an odd run of backslashes is not its end.
    const qsizetype open = line.indexOf('"');
    if (open < 0) return 0;
    qsizetype close = open + 1;
    for (;; ++close) {
        close = line.indexOf('"', close);
        if (close < 0) return 0;
        qsizetype backslashes = 0;
        while (line.at(close - 1 - backslashes) == '\\')
            ++backslashes;
        if (backslashes % 2 == 0) break;
    }
    if (close + 1 >= line.size() || line.at(close + 1) != ' ') return 0;
    const qsizetype begin = close + 2;
    qsizetype end = line.indexOf(' ', begin);
    if (end < 0) end = line.size();
    bool ok = false;
    const int status = line.mid(begin, end - begin).toInt(&ok);
    return ok && status >= 100 && status <= 999 ? status : 0;
}

Result<RequestCounts> NginxLogFollower::consume(const QByteArray &output) {
    const qsizetype newline = output.indexOf('\n');
    if (newline < 0) return fail(QStringLiteral("%1: unexpected follower output").arg(m_path));
    const QList<QByteArray> header = output.left(newline).trimmed().split(' ');
    bool sizeOk = false;
    bool startOk = false;
    const qint64 size = header.value(0).toLongLong(&sizeOk);
    const qint64 start = header.value(1).toLongLong(&startOk);
    if (header.size() != 2 || !sizeOk || !startOk || start < 1)
        return fail(QStringLiteral("%1: unexpected follower header \"%2\"")
                        .arg(m_path, QString::fromLatin1(output.left(newline))));
    RequestCounts counts;
    m_lastErrors.clear();
    if (!m_positioned) {
        m_offset = size;
        m_positioned = true;
        return counts;
    }
    const QByteArray data = output.mid(newline + 1);
    // Only whole lines; a partly written last line is read again next tick.
    const qsizetype lastNewline = data.lastIndexOf('\n');
    m_offset = start - 1 + (lastNewline < 0 ? 0 : lastNewline + 1);
    if (lastNewline < 0) return counts;
    qsizetype from = 0;
    while (from <= lastNewline) {
        const qsizetype to = data.indexOf('\n', from);
        const QByteArray line = data.mid(from, to - from);
        const QString upstream = upstreamOf(line);
        if (!upstream.isEmpty()) {
            counts[upstream] += 1;
            if (statusOf(line) / 100 == 5) m_lastErrors[upstream] += 1;
        }
        from = to + 1;
    }
    return counts;
}

Result<RequestCounts> NginxLogFollower::poll(SshSession &session, int timeoutMs) {
    auto result = session.exec(command(), timeoutMs);
    if (!result) return fail(result.error());
    if (result->exitStatus != 0)
        return fail(QStringLiteral("%1: follower exited with status %2: %3")
                        .arg(m_path)
                        .arg(result->exitStatus)
                        .arg(QString::fromUtf8(result->stdErr).trimmed()));
    return consume(result->stdOut);
}

} // namespace corral
