#include "ssh/ShellQuote.h"

#include "model/FieldText.h"

namespace corral {

static bool isSafe(QChar c) {
    // '=' and ':' are safe only away from the first position; keep the set simple instead.
    return (c >= QLatin1Char('a') && c <= QLatin1Char('z')) ||
           (c >= QLatin1Char('A') && c <= QLatin1Char('Z')) ||
           (c >= QLatin1Char('0') && c <= QLatin1Char('9')) || c == QLatin1Char('_') ||
           c == QLatin1Char('-') || c == QLatin1Char('.') || c == QLatin1Char('/') ||
           c == QLatin1Char('@') || c == QLatin1Char('%') || c == QLatin1Char('+') ||
           c == QLatin1Char(',');
}

QString shellQuote(const QString &word) {
    bool safe = !word.isEmpty();
    for (QChar c : word)
        safe = safe && isSafe(c);
    if (safe) return word;
    QString quoted;
    quoted.reserve(word.size() + 2);
    quoted += QLatin1Char('\'');
    for (QChar c : word) {
        if (c == QLatin1Char('\''))
            quoted += QLatin1String("'\\''");
        else
            quoted += c;
    }
    quoted += QLatin1Char('\'');
    return quoted;
}

QString shellCommand(const QStringList &argv) {
    QStringList words;
    words.reserve(argv.size());
    for (const QString &arg : argv)
        words.append(shellQuote(arg));
    return words.join(QLatin1Char(' '));
}

/// Splits a command line into argv words the way a POSIX shell does for a simple command:
/// words separated by blanks, '...' taken literally, "..." with \" \\ \$ \` escapes, a
/// backslash outside quotes escaping the next character. The words are run without a shell
/// (exec on the host, each word quoted), so nothing is expanded; the characters a shell would
/// act on (| & ; < > ( ) $ `) are refused unquoted instead of becoming words the user did not
/// mean ("nginx -t && systemctl reload nginx" would run nginx with three stray arguments).
QString shownCommand(const QStringList &argv) {
    return escapeControls(shellCommand(argv));
}

Result<QStringList> splitShellWords(const QString &text) {
    static const QString shellOperators = QStringLiteral("|&;<>()$`");
    static const QString escapableInDoubleQuotes = QStringLiteral("\"\\$`");
    const auto notAShell = [](QChar c) {
        return fail(
            QStringLiteral("%1: the command is not run by a shell (nothing is expanded); put "
                           "the character in single quotes to pass it as is, or run sh "
                           "-c '...'")
                .arg(shown(QString(c))));
    };
    QStringList words;
    QString word;
    bool inWord = false;
    for (qsizetype i = 0; i < text.size(); ++i) {
        const QChar c = text.at(i);
        if (c == QLatin1Char(' ') || c == QLatin1Char('\t')) {
            if (inWord) words.append(word);
            word.clear();
            inWord = false;
            continue;
        }
        inWord = true;
        if (c == QLatin1Char('\'')) {
            const qsizetype end = text.indexOf(QLatin1Char('\''), i + 1);
            if (end < 0)
                return fail(QStringLiteral("unterminated quote (') in %1").arg(shown(text)));
            word += text.mid(i + 1, end - i - 1);
            i = end;
        } else if (c == QLatin1Char('"')) {
            for (++i;; ++i) {
                if (i >= text.size())
                    return fail(QStringLiteral("unterminated quote (\") in %1").arg(shown(text)));
                const QChar quoted = text.at(i);
                if (quoted == QLatin1Char('"')) break;
                if (quoted == QLatin1Char('\\') && i + 1 < text.size() &&
                    escapableInDoubleQuotes.contains(text.at(i + 1))) {
                    word += text.at(++i);
                } else if (quoted == QLatin1Char('$') || quoted == QLatin1Char('`')) {
                    return notAShell(quoted);
                } else {
                    word += quoted;
                }
            }
        } else if (c == QLatin1Char('\\')) {
            if (i + 1 >= text.size())
                return fail(QStringLiteral("%1 ends with a backslash").arg(shown(text)));
            word += text.at(++i);
        } else if (shellOperators.contains(c)) {
            return notAShell(c);
        } else {
            word += c;
        }
    }
    if (inWord) words.append(word);
    return words;
}

} // namespace corral
