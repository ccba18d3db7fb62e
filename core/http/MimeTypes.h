#pragma once

// Media types by file extension, from the system's /etc/mime.types (Debian's media-types
// package, the table nginx's mime.types follows), read once per process. Plain C++: the
// proxy's event loops look types up per static response.

#include <string>
#include <string_view>
#include <unordered_map>

namespace corral::http {

class MimeTypes {
public:
    /// The process-wide table: /etc/mime.types, or the built-in fallback when that file is
    /// missing or empty. Thread-safe (built on first use, read-only afterwards).
    static const MimeTypes &system();

    /// Parses mime.types text ("type ext1 ext2", '#' comments). A later line naming an
    /// extension again does not replace the first (the file lists preferred types first).
    static MimeTypes parse(std::string_view text);
    /// A few common web types, for a system without /etc/mime.types.
    static MimeTypes builtin();

    /// The type of a path by its last extension, case-insensitive ("a/b.CSS" -> "text/css");
    /// `fallback` when there is none or it is unknown.
    std::string_view typeOf(std::string_view path,
                            std::string_view fallback = "application/octet-stream") const;
    size_t size() const { return m_types.size(); }

private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, std::string, Hash, std::equal_to<>> m_types;
};

} // namespace corral::http
