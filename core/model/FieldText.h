#pragma once

#include <QString>

namespace corral {

/// What a text field of the inventory may hold. Every string field of Site, Backend, Host and
/// SiteBalancer is checked with one of these before it is saved and again before it is
/// rendered, so nothing from the inventory can end a token, a line or a quoted string in a
/// generated config, a systemd unit or a shell command.
enum class FieldText {
    /// Names, paths, URLs: no control character (C0, C1, DEL, line and paragraph separators,
    /// bidirectional overrides) and no quote (", ', `); at most MaxPlainLength characters.
    Plain,
    /// One argv word (command, args, environment values, balancer validate/reload commands):
    /// no control character; quotes allowed, since argv words are only ever passed to exec or
    /// quoted with shellQuote(), never pasted into a config; at most MaxWordLength characters.
    CommandWord,
};

inline constexpr qsizetype MaxPlainLength = 4096;
inline constexpr qsizetype MaxWordLength = 65536;

/// Why `value` may not be stored in a field of `kind` ("contains a newline", "contains a
/// quote ('\"')", "is longer than 4096 characters"), or an empty string when it may.
QString textProblem(const QString &value, FieldText kind = FieldText::Plain);

/// `value` for an error message: in double quotes, with control characters written as \n,
/// \r, \t, \xNN or \uNNNN so the message stays on one line and a terminal interprets nothing;
/// values longer than 80 characters are cut with "...".
QString shown(const QString &value);

/// The stricter sets for values printed bare into nginx, HAProxy and Apache configs, checked
/// when a site is saved and again when it is rendered:
/// an absolute path of [A-Za-z0-9._/+@~-] (no whitespace, quotes, ';', '{', '}', '$', '#',
/// '%'), at most 4096 characters;
bool isSafePath(const QString &path);
/// a DNS name, optionally with nginx's leading "*." wildcard (no regex names: a regex could
/// contain anything), at most 253 characters;
bool isServerName(const QString &name);
/// an HTTP path (and query) of [A-Za-z0-9._~/%?&=+-] starting with '/', at most 1024.
bool isSafeUrlPath(const QString &path);

/// `text` with control characters written as in shown(), without quotes or a length limit:
/// for messages that quote text from elsewhere (a remote config file, a command line).
QString escapeControls(const QString &text);

/// "PATH.FIELD" (or "FIELD" when `path` is empty).
QString fieldPath(const QString &path, const QString &field);

} // namespace corral
