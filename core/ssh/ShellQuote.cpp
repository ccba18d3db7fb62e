#include "ssh/ShellQuote.h"

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

} // namespace corral
