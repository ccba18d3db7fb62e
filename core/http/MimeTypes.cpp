#include "http/MimeTypes.h"

#include <fstream>
#include <sstream>

namespace corral::http {

namespace {

bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? char(c + ('a' - 'A')) : c;
}

} // namespace

MimeTypes MimeTypes::parse(std::string_view text) {
    MimeTypes table;
    while (!text.empty()) {
        const size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
        if (const size_t hash = line.find('#'); hash != std::string_view::npos)
            line = line.substr(0, hash);
        std::string_view type;
        while (!line.empty()) {
            size_t i = 0;
            while (i < line.size() && isSpace(line[i]))
                ++i;
            size_t j = i;
            while (j < line.size() && !isSpace(line[j]))
                ++j;
            const std::string_view word = line.substr(i, j - i);
            line = line.substr(j);
            if (word.empty()) break;
            if (type.empty()) {
                // Only "major/minor" types; a malformed line is skipped, not half-used.
                if (word.find('/') == std::string_view::npos) break;
                type = word;
                continue;
            }
            std::string extension(word);
            for (char &c : extension)
                c = lower(c);
            table.m_types.try_emplace(std::move(extension), type);
        }
    }
    return table;
}

MimeTypes MimeTypes::builtin() {
    return parse("text/html html htm\n"
                 "text/css css\n"
                 "text/javascript js mjs\n"
                 "text/plain txt\n"
                 "text/xml xml\n"
                 "application/json json map\n"
                 "application/wasm wasm\n"
                 "application/pdf pdf\n"
                 "application/gzip gz\n"
                 "application/zip zip\n"
                 "image/svg+xml svg svgz\n"
                 "image/png png\n"
                 "image/jpeg jpg jpeg\n"
                 "image/gif gif\n"
                 "image/webp webp\n"
                 "image/avif avif\n"
                 "image/vnd.microsoft.icon ico\n"
                 "font/woff woff\n"
                 "font/woff2 woff2\n"
                 "font/ttf ttf\n"
                 "font/otf otf\n"
                 "audio/mpeg mp3\n"
                 "video/mp4 mp4\n"
                 "video/webm webm\n");
}

const MimeTypes &MimeTypes::system() {
    static const MimeTypes table = [] {
        std::ifstream file("/etc/mime.types");
        if (file) {
            std::ostringstream text;
            text << file.rdbuf();
            MimeTypes parsed = parse(text.str());
            if (parsed.size() > 0) return parsed;
        }
        return builtin();
    }();
    return table;
}

std::string_view MimeTypes::typeOf(std::string_view path, std::string_view fallback) const {
    const size_t slash = path.find_last_of('/');
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    const size_t dot = name.find_last_of('.');
    if (dot == std::string_view::npos || dot + 1 == name.size()) return fallback;
    const std::string_view extension = name.substr(dot + 1);
    char key[32];
    if (extension.size() > sizeof key) return fallback;
    for (size_t i = 0; i < extension.size(); ++i)
        key[i] = lower(extension[i]);
    const auto it = m_types.find(std::string_view(key, extension.size()));
    return it == m_types.end() ? fallback : std::string_view(it->second);
}

} // namespace corral::http
