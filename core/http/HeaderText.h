#pragma once

// The small text rules of HTTP/1.1 header fields, header-only and free of Qt and of the rest
// of core, so that the demo worker (an independent server on purpose, linking only Qt6::Core)
// shares them with the proxy instead of keeping its own copy: ASCII case-insensitive
// comparison, optional whitespace, comma-separated lists, decimal and hex numbers.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace corral::http {

/// ASCII lower case; other bytes (UTF-8 included) unchanged.
constexpr unsigned char asciiLower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c | 0x20) : c;
}

/// Header names, tokens and coding names compare case-insensitively (RFC 9110 5.1), in ASCII
/// only: no locale may fold a non-ASCII byte onto a letter of "transfer-encoding".
constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (asciiLower(static_cast<unsigned char>(a[i])) !=
            asciiLower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

/// Without the optional whitespace (SP, HTAB) around a field value or list element.
constexpr std::string_view trimWhitespace(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
    return v;
}

/// Calls visit(token) for each non-empty, trimmed element of a comma-separated list
/// ("close, X-Custom", "gzip, chunked"); empty elements are skipped (RFC 9110 5.6.1).
template <typename Visit> constexpr void forEachToken(std::string_view list, Visit &&visit) {
    while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view token = trimWhitespace(list.substr(0, comma));
        if (!token.empty()) visit(token);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

/// Whether the list holds `token` as a whole element, in any case ("keep-alive, Close" holds
/// "close"; "closed" does not).
constexpr bool hasToken(std::string_view list, std::string_view token) {
    bool found = false;
    forEachToken(list, [&](std::string_view t) { found = found || equalsIgnoreCase(t, token); });
    return found;
}

/// Digits of a decimal number beyond which it could overflow 64 bits: more are refused, not
/// wrapped (a wrapped Content-Length frames a different body).
inline constexpr size_t MaxDecimalDigits = 18;

/// A non-negative decimal number of 1 to MaxDecimalDigits digits, nothing else (no sign, no
/// space); nullopt otherwise.
constexpr std::optional<uint64_t> parseDecimal(std::string_view text) {
    if (text.empty() || text.size() > MaxDecimalDigits) return std::nullopt;
    uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    return value;
}

/// The value of a hex digit (either case), or -1.
constexpr int hexDigitValue(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    const unsigned char l = asciiLower(c);
    if (l >= 'a' && l <= 'f') return l - 'a' + 10;
    return -1;
}

/// Hex digits of a chunk size beyond which it could overflow 64 bits.
inline constexpr int MaxHexDigits = 15;

/// A chunk size: 1 to MaxHexDigits hex digits, nothing else; nullopt otherwise.
constexpr std::optional<uint64_t> parseHex(std::string_view text) {
    if (text.empty() || text.size() > size_t(MaxHexDigits)) return std::nullopt;
    uint64_t value = 0;
    for (const char c : text) {
        const int digit = hexDigitValue(static_cast<unsigned char>(c));
        if (digit < 0) return std::nullopt;
        value = value * 16 + static_cast<uint64_t>(digit);
    }
    return value;
}

} // namespace corral::http
