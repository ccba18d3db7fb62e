#include "ssh/BatchedCommand.h"

#include <QRandomGenerator>

#include <algorithm>

namespace corral {

BatchedCommand::BatchedCommand()
    : m_marker(QStringLiteral("@@corral-%1")
                   .arg(QRandomGenerator::global()->generate64(), 16, 16, QLatin1Char('0'))) {}

void BatchedCommand::add(const QString &name, const QString &command) {
    Q_ASSERT(!name.isEmpty() && std::all_of(name.cbegin(), name.cend(), [](QChar c) {
        return c.isLetter() && c.unicode() < 128;
    }));
    m_names.append(name);
    m_commands.append(command);
}

QString BatchedCommand::command() const {
    QString script;
    for (qsizetype i = 0; i < m_names.size(); ++i) {
        // The closing frame starts on a line of its own even after output without a final
        // newline; split() removes exactly that one newline again.
        // A subshell: a part's `exit` or `cd` cannot end or move the ones after it.
        script += QStringLiteral("printf '%s\\n' '%1 %2'\n( %3\n)\n"
                                 "printf '\\n%s %s\\n' '%1/%2' \"$?\"\n")
                      .arg(m_marker, m_names.at(i), m_commands.at(i));
    }
    return script;
}

Result<QHash<QString, BatchedCommand::Part>> BatchedCommand::split(const QByteArray &output) const {
    QHash<QString, Part> parts;
    qsizetype position = 0;
    for (const QString &name : m_names) {
        const QByteArray open = (m_marker + QLatin1Char(' ') + name + QLatin1Char('\n')).toUtf8();
        const QByteArray close =
            (QLatin1Char('\n') + m_marker + QLatin1Char('/') + name + QLatin1Char(' ')).toUtf8();
        const qsizetype start = output.indexOf(open, position);
        if (start < 0)
            return fail(QStringLiteral("batched command: no output for \"%1\"").arg(name));
        const qsizetype begin = start + open.size();
        const qsizetype end = output.indexOf(close, begin);
        const qsizetype statusEnd = end < 0 ? -1 : output.indexOf('\n', end + close.size());
        if (statusEnd < 0)
            return fail(QStringLiteral("batched command: \"%1\" was cut short").arg(name));
        bool numeric = false;
        const int status =
            output.mid(end + close.size(), statusEnd - end - close.size()).toInt(&numeric);
        if (!numeric)
            return fail(QStringLiteral("batched command: no exit status for \"%1\"").arg(name));
        parts.insert(name, Part{output.mid(begin, end - begin), status});
        position = statusEnd + 1;
    }
    return parts;
}

} // namespace corral
