#include "model/FieldText.h"

#include <QRegularExpression>

namespace corral {

// Characters that can break a line or change how text is displayed, wherever they come from.
static bool isControl(QChar c) {
    const char16_t u = c.unicode();
    if (u < 0x20 || (u >= 0x7f && u <= 0x9f)) return true; // C0, DEL, C1 (NEL is 0x85)
    if (u == 0x2028 || u == 0x2029) return true;           // line and paragraph separators
    if ((u >= 0x202a && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069)) return true; // bidi
    return u == 0xfeff;
}

static QString controlName(QChar c) {
    switch (c.unicode()) {
    case 0:
        return QStringLiteral("a NUL character");
    case '\n':
        return QStringLiteral("a newline");
    case '\r':
        return QStringLiteral("a carriage return");
    case '\t':
        return QStringLiteral("a tab");
    default:
        return QStringLiteral("the control character U+") +
               QStringLiteral("%1").arg(c.unicode(), 4, 16, QLatin1Char('0')).toUpper();
    }
}

QString textProblem(const QString &value, FieldText kind) {
    const qsizetype limit = kind == FieldText::Plain ? MaxPlainLength : MaxWordLength;
    if (value.size() > limit)
        return QStringLiteral("is longer than %1 characters (%2)").arg(limit).arg(value.size());
    for (const QChar c : value) {
        if (isControl(c)) return QStringLiteral("contains ") + controlName(c);
        if (kind == FieldText::Plain &&
            (c == QLatin1Char('"') || c == QLatin1Char('\'') || c == QLatin1Char('`')))
            return QStringLiteral("contains a quote (%1)").arg(c);
    }
    return {};
}

QString escapeControls(const QString &text) {
    QString escaped;
    escaped.reserve(text.size());
    for (const QChar c : text) {
        if (c == QLatin1Char('\n'))
            escaped += QStringLiteral("\\n");
        else if (c == QLatin1Char('\r'))
            escaped += QStringLiteral("\\r");
        else if (c == QLatin1Char('\t'))
            escaped += QStringLiteral("\\t");
        else if (c.unicode() < 0x100 && isControl(c))
            escaped += QStringLiteral("\\x%1").arg(c.unicode(), 2, 16, QLatin1Char('0'));
        else if (isControl(c) || c.isSurrogate())
            escaped += QStringLiteral("\\u%1").arg(c.unicode(), 4, 16, QLatin1Char('0'));
        else
            escaped += c;
    }
    return escaped;
}

QString shown(const QString &value) {
    constexpr qsizetype MaxShown = 80;
    QString text = escapeControls(value.left(MaxShown));
    if (value.size() > MaxShown) text += QStringLiteral("...");
    return QLatin1Char('"') + text + QLatin1Char('"');
}

// '\\z', not '$': PCRE's '$' also matches before a final newline.
bool isSafePath(const QString &path) {
    static const QRegularExpression pattern(QStringLiteral("^/[A-Za-z0-9._/+@~-]*\\z"));
    return path.size() <= MaxPlainLength && pattern.match(path).hasMatch();
}

bool isServerName(const QString &name) {
    static const QRegularExpression pattern(QStringLiteral(
        "^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\\z"));
    return name.size() <= 253 && pattern.match(name).hasMatch();
}

bool isSafeUrlPath(const QString &path) {
    static const QRegularExpression pattern(QStringLiteral("^/[A-Za-z0-9._~/%?&=+-]*\\z"));
    return path.size() <= 1024 && pattern.match(path).hasMatch();
}

QString fieldPath(const QString &path, const QString &field) {
    return path.isEmpty() ? field : path + QLatin1Char('.') + field;
}

} // namespace corral
