#include "upstreams/ConfigImport.h"

#include "model/FieldText.h"

#include <QRegularExpression>

namespace corral {

namespace {

struct Token {
    enum Kind { Word, Semicolon, Open, Close } kind = Word;
    QString text;
    int line = 0;
};

// Messages quote the remote file's text: its control characters are escaped so that what a
// host serves cannot rewrite the terminal or forge lines of output.
QString lineError(int line, const QString &message) {
    return QStringLiteral("line %1: %2").arg(line).arg(escapeControls(message));
}

// nginx's lexical rules: words separated by whitespace, '#' comments to the end of the line,
// single or double quotes with backslash escapes, and ';', '{', '}' as their own tokens.
Result<QList<Token>> tokenizeNginx(const QString &text) {
    QList<Token> tokens;
    int line = 1;
    qsizetype i = 0;
    const qsizetype size = text.size();
    while (i < size) {
        const QChar c = text.at(i);
        if (c == QLatin1Char('\n')) {
            ++line;
            ++i;
        } else if (c.isSpace()) {
            ++i;
        } else if (c == QLatin1Char('#')) {
            while (i < size && text.at(i) != QLatin1Char('\n'))
                ++i;
        } else if (c == QLatin1Char(';')) {
            tokens.append({Token::Semicolon, QStringLiteral(";"), line});
            ++i;
        } else if (c == QLatin1Char('{')) {
            tokens.append({Token::Open, QStringLiteral("{"), line});
            ++i;
        } else if (c == QLatin1Char('}')) {
            tokens.append({Token::Close, QStringLiteral("}"), line});
            ++i;
        } else if (c == QLatin1Char('"') || c == QLatin1Char('\'')) {
            const int start = line;
            QString word;
            ++i;
            while (i < size && text.at(i) != c) {
                if (text.at(i) == QLatin1Char('\\') && i + 1 < size) ++i;
                if (text.at(i) == QLatin1Char('\n')) ++line;
                word += text.at(i++);
            }
            if (i >= size) return fail(lineError(start, QStringLiteral("unterminated quote")));
            ++i;
            tokens.append({Token::Word, word, start});
        } else {
            QString word;
            while (i < size) {
                const QChar d = text.at(i);
                if (d.isSpace() || d == QLatin1Char(';') || d == QLatin1Char('{') ||
                    d == QLatin1Char('}'))
                    break;
                if (d == QLatin1Char('\\') && i + 1 < size) ++i;
                word += text.at(i++);
            }
            tokens.append({Token::Word, word, line});
        }
    }
    return tokens;
}

// "10s", "1m", "500ms", "10" (seconds) into milliseconds.
std::optional<int> parseNginxTime(const QString &text) {
    static const QRegularExpression pattern(QStringLiteral("^([0-9]{1,7})(ms|s|m|h)?\\z"));
    const auto match = pattern.match(text);
    if (!match.hasMatch()) return std::nullopt;
    const qint64 value = match.captured(1).toLongLong();
    const QString unit = match.captured(2);
    qint64 ms = value * 1000;
    if (unit == QLatin1String("ms")) ms = value;
    if (unit == QLatin1String("m")) ms = value * 60000;
    if (unit == QLatin1String("h")) ms = value * 3600000;
    if (ms > std::numeric_limits<int>::max()) return std::nullopt;
    return int(ms);
}

std::optional<int> parseInteger(const QString &text, int min, int max) {
    bool ok = false;
    const int value = text.toInt(&ok);
    if (!ok || value < min || value > max) return std::nullopt;
    return value;
}

// "HOST:PORT", "[V6]:PORT" or a bare host (port `defaultPort`).
Result<Endpoint> parseAddress(const QString &text, quint16 defaultPort) {
    auto endpoint = Endpoint::parse(text);
    if (endpoint) return endpoint;
    // HOST:PORT that did not parse: its own error says why (port, host, IPv6 zone id).
    if ((text.startsWith(QLatin1Char('[')) && text.contains(QStringLiteral("]:"))) ||
        (!text.startsWith(QLatin1Char('[')) && text.count(QLatin1Char(':')) == 1))
        return fail(endpoint.error());
    QString host = text;
    if (text.startsWith(QLatin1Char('[')) && text.endsWith(QLatin1Char(']')))
        host = text.mid(1, text.size() - 2);
    else if (text.contains(QLatin1Char(':')))
        return fail(QStringLiteral("\"%1\" is not HOST[:PORT]").arg(text));
    const Backend probe{host, defaultPort};
    if (!probe.validate(QStringLiteral("server")))
        return fail(QStringLiteral("\"%1\" is not HOST[:PORT]").arg(text));
    return Endpoint{host, defaultPort};
}

Result<NginxUpstreamServer> parseNginxServer(const QList<Token> &words) {
    const int line = words.first().line;
    if (words.size() < 2) return fail(lineError(line, QStringLiteral("server needs an address")));
    const QString address = words.at(1).text;
    if (address.startsWith(QLatin1String("unix:")))
        return fail(lineError(line, QStringLiteral("unix socket server \"%1\" cannot be "
                                                   "imported (Corral balances host:port)")
                                        .arg(address)));
    auto endpoint = parseAddress(address, 80);
    if (!endpoint) return fail(lineError(line, endpoint.error()));
    NginxUpstreamServer server;
    server.line = line;
    server.backend.address = endpoint->host;
    server.backend.port = endpoint->port;
    for (qsizetype i = 2; i < words.size(); ++i) {
        const QString &param = words.at(i).text;
        const qsizetype eq = param.indexOf(QLatin1Char('='));
        const QString key = eq < 0 ? param : param.left(eq);
        const QString value = eq < 0 ? QString() : param.mid(eq + 1);
        if (param == QLatin1String("backup")) {
            server.backend.backup = true;
        } else if (param == QLatin1String("down")) {
            server.backend.down = true;
        } else if (key == QLatin1String("weight") && eq > 0) {
            const auto weight = parseInteger(value, 1, Backend::MaxWeight);
            if (!weight)
                return fail(lineError(line, QStringLiteral("weight \"%1\" is not in 1..%2")
                                                .arg(value)
                                                .arg(Backend::MaxWeight)));
            server.backend.weight = *weight;
        } else if (key == QLatin1String("max_fails") && eq > 0) {
            const auto maxFails = parseInteger(value, 0, 1000000);
            if (!maxFails)
                return fail(
                    lineError(line, QStringLiteral("max_fails \"%1\" is not a number").arg(value)));
            server.maxFails = *maxFails;
        } else if (key == QLatin1String("fail_timeout") && eq > 0) {
            const auto timeout = parseNginxTime(value);
            if (!timeout)
                return fail(lineError(
                    line, QStringLiteral("fail_timeout \"%1\" is not a time").arg(value)));
            server.failTimeoutMs = *timeout;
        } else if (key == QLatin1String("max_conns") || key == QLatin1String("slow_start") ||
                   key == QLatin1String("route") || key == QLatin1String("service") ||
                   param == QLatin1String("resolve") || param == QLatin1String("drain")) {
            // Valid nginx parameters with no inventory equivalent: accepted, not kept.
        } else {
            return fail(
                lineError(line, QStringLiteral("unknown server parameter \"%1\"").arg(param)));
        }
    }
    return server;
}

Result<NginxUpstream> parseUpstreamBody(const QList<Token> &tokens, qsizetype &i,
                                        NginxUpstream upstream) {
    QList<Token> words;
    while (i < tokens.size()) {
        const Token &token = tokens.at(i++);
        if (token.kind == Token::Word) {
            words.append(token);
            continue;
        }
        if (token.kind == Token::Open)
            return fail(
                lineError(token.line,
                          QStringLiteral("unexpected '{' in upstream \"%1\"").arg(upstream.name)));
        if (token.kind == Token::Close) {
            if (!words.isEmpty())
                return fail(
                    lineError(words.first().line,
                              QStringLiteral("missing ';' after \"%1\"").arg(words.first().text)));
            bool weighted = false;
            for (const auto &server : upstream.servers)
                weighted = weighted || server.backend.weight != 1;
            if (upstream.policy == BalancingPolicy::RoundRobin && weighted)
                upstream.policy = BalancingPolicy::Weighted;
            return upstream;
        }
        // A semicolon ends one directive.
        if (words.isEmpty()) return fail(lineError(token.line, QStringLiteral("empty directive")));
        const QString directive = words.first().text;
        const int line = words.first().line;
        if (directive == QLatin1String("server")) {
            auto server = parseNginxServer(words);
            if (!server) return fail(server.error());
            upstream.servers.append(std::move(server).value());
        } else if (directive == QLatin1String("least_conn")) {
            upstream.method = directive;
            upstream.policy = BalancingPolicy::LeastConn;
        } else if (directive == QLatin1String("ip_hash")) {
            upstream.method = directive;
            upstream.policy = BalancingPolicy::IpHash;
        } else if (directive == QLatin1String("hash")) {
            if (words.size() < 2) return fail(lineError(line, QStringLiteral("hash needs a key")));
            QStringList parts;
            for (const Token &word : words)
                parts.append(word.text);
            upstream.method = parts.join(QLatin1Char(' '));
            upstream.policy = words.at(1).text.startsWith(QLatin1String("$cookie_"))
                                  ? BalancingPolicy::StickyCookie
                                  : BalancingPolicy::IpHash;
        } else if (directive == QLatin1String("random")) {
            QStringList parts;
            for (const Token &word : words)
                parts.append(word.text);
            upstream.method = parts.join(QLatin1Char(' '));
        } else if (directive == QLatin1String("keepalive")) {
            const auto keepalive = parseInteger(words.value(1).text, 1, 1000000);
            if (words.size() != 2 || !keepalive)
                return fail(lineError(line, QStringLiteral("keepalive needs a number")));
            upstream.keepalive = *keepalive;
        }
        // Other upstream directives (zone, keepalive_timeout, ...) do not affect balancing.
        words.clear();
    }
    return fail(lineError(upstream.line,
                          QStringLiteral("upstream \"%1\" is not closed").arg(upstream.name)));
}

} // namespace

Result<QList<NginxUpstream>> parseNginxUpstreams(const QString &text) {
    auto tokenized = tokenizeNginx(text);
    if (!tokenized) return fail(tokenized.error());
    const QList<Token> &tokens = tokenized.value();
    QList<NginxUpstream> upstreams;
    QList<Token> words;
    QList<int> openBlocks; // lines of the blocks we are inside, for the unbalanced error
    qsizetype i = 0;
    while (i < tokens.size()) {
        const Token &token = tokens.at(i++);
        switch (token.kind) {
        case Token::Word:
            words.append(token);
            break;
        case Token::Semicolon:
            if (words.isEmpty())
                return fail(lineError(token.line, QStringLiteral("unexpected ';'")));
            words.clear();
            break;
        case Token::Open:
            if (words.isEmpty())
                return fail(lineError(token.line, QStringLiteral("unexpected '{'")));
            if (words.first().text == QLatin1String("upstream")) {
                if (words.size() != 2)
                    return fail(lineError(words.first().line,
                                          QStringLiteral("upstream needs exactly one name")));
                NginxUpstream upstream;
                upstream.name = words.at(1).text;
                upstream.method = QStringLiteral("round-robin");
                upstream.line = words.first().line;
                auto parsed = parseUpstreamBody(tokens, i, std::move(upstream));
                if (!parsed) return fail(parsed.error());
                upstreams.append(std::move(parsed).value());
            } else {
                openBlocks.append(token.line);
            }
            words.clear();
            break;
        case Token::Close:
            if (!words.isEmpty())
                return fail(
                    lineError(words.first().line,
                              QStringLiteral("missing ';' after \"%1\"").arg(words.first().text)));
            if (openBlocks.isEmpty())
                return fail(lineError(token.line, QStringLiteral("unexpected '}'")));
            openBlocks.removeLast();
            break;
        }
    }
    if (!words.isEmpty())
        return fail(lineError(words.first().line,
                              QStringLiteral("missing ';' after \"%1\"").arg(words.first().text)));
    if (!openBlocks.isEmpty())
        return fail(lineError(openBlocks.last(), QStringLiteral("block is not closed")));
    return upstreams;
}

namespace {

// HAProxy splits on whitespace, with '#' comments and quotes; a backslash escapes.
Result<QStringList> splitHaproxyLine(const QString &line, int number) {
    QStringList words;
    QString word;
    bool inWord = false;
    QChar quote;
    for (qsizetype i = 0; i < line.size(); ++i) {
        const QChar c = line.at(i);
        if (!quote.isNull()) {
            if (c == quote)
                quote = QChar();
            else
                word += c;
            continue;
        }
        if (c == QLatin1Char('#')) break;
        if (c == QLatin1Char('\\') && i + 1 < line.size()) {
            word += line.at(++i);
            inWord = true;
        } else if (c == QLatin1Char('"') || c == QLatin1Char('\'')) {
            quote = c;
            inWord = true;
        } else if (c.isSpace()) {
            if (inWord) words.append(word);
            word.clear();
            inWord = false;
        } else {
            word += c;
            inWord = true;
        }
    }
    if (!quote.isNull()) return fail(lineError(number, QStringLiteral("unterminated quote")));
    if (inWord) words.append(word);
    return words;
}

const QStringList haproxySections = {
    QStringLiteral("global"),  QStringLiteral("defaults"),    QStringLiteral("frontend"),
    QStringLiteral("backend"), QStringLiteral("listen"),      QStringLiteral("userlist"),
    QStringLiteral("peers"),   QStringLiteral("resolvers"),   QStringLiteral("mailers"),
    QStringLiteral("program"), QStringLiteral("http-errors"), QStringLiteral("ring"),
    QStringLiteral("cache"),
};

} // namespace

Result<QList<HaproxyBackend>> parseHaproxyBackends(const QString &text) {
    QList<HaproxyBackend> backends;
    const QStringList lines = text.split(QLatin1Char('\n'));
    bool inBackend = false;
    int defaultWeight = 1;  // from "default-server weight N" in the current section
    int defaultsWeight = 1; // from the last defaults section
    for (qsizetype n = 0; n < lines.size(); ++n) {
        const int number = int(n + 1);
        auto split = splitHaproxyLine(lines.at(n), number);
        if (!split) return fail(split.error());
        const QStringList words = split.value();
        if (words.isEmpty()) continue;
        const QString &keyword = words.first();
        if (haproxySections.contains(keyword)) {
            inBackend = keyword == QLatin1String("backend") || keyword == QLatin1String("listen");
            if (keyword == QLatin1String("defaults")) defaultsWeight = 1;
            defaultWeight = defaultsWeight;
            if (inBackend) {
                if (words.size() < 2)
                    return fail(lineError(number, QStringLiteral("%1 needs a name").arg(keyword)));
                HaproxyBackend backend;
                backend.name = words.at(1);
                backend.line = number;
                backends.append(backend);
            }
            continue;
        }
        const bool defaultsSection = !inBackend && keyword == QLatin1String("default-server");
        if (keyword == QLatin1String("default-server")) {
            const qsizetype at = words.indexOf(QStringLiteral("weight"));
            if (at > 0) {
                const auto weight = parseInteger(words.value(at + 1), 0, 256);
                if (!weight)
                    return fail(lineError(
                        number,
                        QStringLiteral("weight \"%1\" is not in 0..256").arg(words.value(at + 1))));
                defaultWeight = qMax(1, *weight);
                if (defaultsSection) defaultsWeight = defaultWeight;
            }
            continue;
        }
        if (!inBackend) {
            if (keyword == QLatin1String("server") || keyword == QLatin1String("balance"))
                return fail(lineError(number, QStringLiteral("\"%1\" outside a backend or listen "
                                                             "section")
                                                  .arg(keyword)));
            continue;
        }
        HaproxyBackend &backend = backends.last();
        if (keyword == QLatin1String("balance")) {
            if (words.size() < 2)
                return fail(lineError(number, QStringLiteral("balance needs an algorithm")));
            backend.balance = words.mid(1).join(QLatin1Char(' '));
            const QString &algorithm = words.at(1);
            if (algorithm == QLatin1String("leastconn"))
                backend.policy = BalancingPolicy::LeastConn;
            else if (algorithm == QLatin1String("source"))
                backend.policy = BalancingPolicy::IpHash;
            else
                backend.policy = BalancingPolicy::RoundRobin;
        } else if (keyword == QLatin1String("cookie")) {
            if (words.size() < 2)
                return fail(lineError(number, QStringLiteral("cookie needs a name")));
            backend.cookie = words.at(1);
        } else if (keyword == QLatin1String("server")) {
            if (words.size() < 3)
                return fail(
                    lineError(number, QStringLiteral("server needs a name and an address")));
            HaproxyServer server;
            server.name = words.at(1);
            server.line = number;
            QString address = words.at(2);
            if (address.startsWith(QLatin1String("ipv4@")) ||
                address.startsWith(QLatin1String("ipv6@")))
                address = address.mid(5);
            auto endpoint = parseAddress(address, 80);
            if (!endpoint) return fail(lineError(number, endpoint.error()));
            server.backend.address = endpoint->host;
            server.backend.port = endpoint->port;
            server.backend.weight = defaultWeight;
            for (qsizetype i = 3; i < words.size(); ++i) {
                const QString &param = words.at(i);
                if (param == QLatin1String("backup")) {
                    server.backend.backup = true;
                } else if (param == QLatin1String("disabled")) {
                    server.backend.down = true;
                } else if (param == QLatin1String("weight")) {
                    const auto weight = parseInteger(words.value(i + 1), 0, 256);
                    if (!weight)
                        return fail(
                            lineError(number, QStringLiteral("weight \"%1\" is not in 0..256")
                                                  .arg(words.value(i + 1))));
                    // Weight 0 takes a server out of rotation: the inventory's "down".
                    server.backend.weight = qMax(1, *weight);
                    if (*weight == 0) server.backend.down = true;
                    ++i;
                } else if (param == QLatin1String("cookie")) {
                    if (i + 1 >= words.size())
                        return fail(lineError(number, QStringLiteral("cookie needs a value")));
                    server.cookie = words.at(++i);
                }
                // Other keywords (check, inter, fall, ssl, ...) carry no inventory state.
            }
            backend.servers.append(server);
        }
    }
    for (HaproxyBackend &backend : backends) {
        if (!backend.cookie.isEmpty()) {
            backend.policy = BalancingPolicy::StickyCookie;
            continue;
        }
        if (backend.policy != BalancingPolicy::RoundRobin) continue;
        for (const HaproxyServer &server : backend.servers)
            if (server.backend.weight != 1) backend.policy = BalancingPolicy::Weighted;
    }
    return backends;
}

} // namespace corral
