#include "RequestParser.h"

// The header text rules (case, whitespace, lists, numbers) are the toolkit's; the parsing
// around them is this worker's own, written apart from the proxy's so that a framing bug in
// one shows up against the other.
#include "http/HeaderText.h"

#include <algorithm>

namespace corral::demo {

using http::equalsIgnoreCase;
using http::forEachToken;
using http::parseDecimal;
using http::parseHex;
using http::trimWhitespace;

namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxChunkLineBytes = 4096;
constexpr std::size_t kMaxTrailerBytes = 64 * 1024;

} // namespace

std::optional<std::string_view> queryParameter(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const std::size_t eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

RequestParser::Status RequestParser::fail(int status) {
    m_state = State::Failed;
    m_errorStatus = status;
    return Status::Invalid;
}

Request RequestParser::takeRequest() {
    Request done = std::move(m_request);
    m_request = Request();
    m_state = State::Headers;
    m_remaining = 0;
    m_trailerBytes = 0;
    m_keepBody = false;
    m_bodyLimit = 0;
    return done;
}

bool RequestParser::parseHead(std::string_view head) {
    const std::size_t lineEnd = head.find("\r\n");
    const std::string_view requestLine = head.substr(0, lineEnd);
    head = lineEnd == std::string_view::npos ? std::string_view() : head.substr(lineEnd + 2);

    // METHOD SP TARGET SP HTTP/1.x
    const std::size_t firstSpace = requestLine.find(' ');
    const std::size_t lastSpace = requestLine.rfind(' ');
    if (firstSpace == std::string_view::npos || firstSpace == 0 || lastSpace == firstSpace) {
        m_errorStatus = 400;
        return false;
    }
    const std::string_view version = requestLine.substr(lastSpace + 1);
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
        version[7] > '9') {
        m_errorStatus = version.substr(0, 5) == "HTTP/" ? 505 : 400;
        return false;
    }
    const bool http10 = version[7] == '0';
    m_request.method = requestLine.substr(0, firstSpace);
    m_request.target = requestLine.substr(firstSpace + 1, lastSpace - firstSpace - 1);
    if (m_request.target.empty() || m_request.target.find(' ') != std::string::npos) {
        m_errorStatus = 400;
        return false;
    }
    const std::size_t question = m_request.target.find('?');
    m_request.path = m_request.target.substr(0, question);
    if (question != std::string::npos) m_request.query = m_request.target.substr(question + 1);

    bool connectionClose = false;
    bool connectionKeepAlive = false;
    bool sawContentLength = false;
    bool sawTransferEncoding = false;
    while (!head.empty()) {
        const std::size_t end = head.find("\r\n");
        const std::string_view line = head.substr(0, end);
        head = end == std::string_view::npos ? std::string_view() : head.substr(end + 2);
        const std::size_t colon = line.find(':');
        // Obsolete line folding and names with spaces are rejected, as RFC 9112 asks.
        if (colon == std::string_view::npos || colon == 0 || line.front() == ' ' ||
            line.front() == '\t' || trimWhitespace(line.substr(0, colon)).size() != colon) {
            m_errorStatus = 400;
            return false;
        }
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trimWhitespace(line.substr(colon + 1));
        if (equalsIgnoreCase(name, "content-length")) {
            const auto length = parseDecimal(value);
            if (!length || (sawContentLength && *length != m_request.contentLength)) {
                m_errorStatus = 400;
                return false;
            }
            m_request.contentLength = *length;
            sawContentLength = true;
        } else if (equalsIgnoreCase(name, "transfer-encoding")) {
            sawTransferEncoding = true;
            std::string_view last;
            forEachToken(value, [&](std::string_view token) { last = token; });
            if (!equalsIgnoreCase(last, "chunked")) {
                m_errorStatus = 501;
                return false;
            }
            m_request.chunked = true;
        } else if (equalsIgnoreCase(name, "connection")) {
            forEachToken(value, [&](std::string_view token) {
                if (equalsIgnoreCase(token, "close"))
                    connectionClose = true;
                else if (equalsIgnoreCase(token, "keep-alive"))
                    connectionKeepAlive = true;
                else if (equalsIgnoreCase(token, "upgrade"))
                    m_request.connectionUpgrade = true;
            });
        } else if (equalsIgnoreCase(name, "upgrade")) {
            m_request.upgrade = value;
        } else if (equalsIgnoreCase(name, "sec-websocket-key")) {
            m_request.webSocketKey = value;
        } else if (equalsIgnoreCase(name, "cookie")) {
            if (!m_request.cookie.empty()) m_request.cookie += "; ";
            m_request.cookie += value;
        } else if (equalsIgnoreCase(name, "expect")) {
            m_request.expectContinue = equalsIgnoreCase(value, "100-continue");
        }
    }
    // Both framings at once is the classic request-smuggling shape; refuse it.
    if (sawContentLength && sawTransferEncoding) {
        m_errorStatus = 400;
        return false;
    }
    m_request.keepAlive = http10 ? (connectionKeepAlive && !connectionClose) : !connectionClose;
    return true;
}

// Moves up to m_remaining bytes of body from the input; false when the kept body is too big.
bool RequestParser::takeBody(ByteQueue &input) {
    const std::size_t take = static_cast<std::size_t>(
        std::min<std::uint64_t>(m_remaining, static_cast<std::uint64_t>(input.size())));
    if (m_keepBody) {
        if (m_request.body.size() + take > m_bodyLimit) return false;
        m_request.body.append(input.view().substr(0, take));
    }
    input.consume(take);
    m_remaining -= take;
    return true;
}

RequestParser::Status RequestParser::feed(ByteQueue &input) {
    for (;;) {
        switch (m_state) {
        case State::Headers: {
            // Stray CRLFs between pipelined requests are allowed (RFC 9112 section 2.2).
            while (input.view().substr(0, 2) == "\r\n")
                input.consume(2);
            const std::size_t end = input.view().find("\r\n\r\n");
            if (end == std::string_view::npos) {
                if (input.size() > kMaxHeaderBytes) return fail(431);
                return Status::NeedMore;
            }
            if (end > kMaxHeaderBytes) return fail(431);
            if (!parseHead(input.view().substr(0, end))) return fail(m_errorStatus);
            input.consume(end + 4);
            if (m_request.chunked) {
                m_state = State::ChunkSize;
            } else {
                m_remaining = m_request.contentLength;
                m_state = m_remaining > 0 ? State::FixedBody : State::Done;
            }
            return Status::HeadersComplete;
        }
        case State::FixedBody:
            if (!takeBody(input)) return fail(413);
            if (m_remaining > 0) return Status::NeedMore;
            m_state = State::Done;
            break;
        case State::ChunkSize: {
            const std::size_t end = input.view().find("\r\n");
            if (end == std::string_view::npos) {
                if (input.size() > kMaxChunkLineBytes) return fail(400);
                return Status::NeedMore;
            }
            const std::string_view line = input.view().substr(0, end);
            const auto size = parseHex(trimWhitespace(line.substr(0, line.find(';'))));
            if (!size) return fail(400);
            input.consume(end + 2);
            m_remaining = *size;
            m_state = m_remaining == 0 ? State::Trailers : State::ChunkData;
            break;
        }
        case State::ChunkData:
            if (!takeBody(input)) return fail(413);
            if (m_remaining > 0) return Status::NeedMore;
            m_state = State::ChunkDataEnd;
            break;
        case State::ChunkDataEnd:
            if (input.size() < 2) return Status::NeedMore;
            if (input.view().substr(0, 2) != "\r\n") return fail(400);
            input.consume(2);
            m_state = State::ChunkSize;
            break;
        case State::Trailers: {
            const std::size_t end = input.view().find("\r\n");
            if (end == std::string_view::npos) {
                if (m_trailerBytes + input.size() > kMaxTrailerBytes) return fail(431);
                return Status::NeedMore;
            }
            input.consume(end + 2);
            m_trailerBytes += end + 2;
            if (m_trailerBytes > kMaxTrailerBytes) return fail(431);
            if (end == 0) m_state = State::Done;
            break;
        }
        case State::Done:
            return Status::MessageComplete;
        case State::Failed:
            return Status::Invalid;
        }
    }
}

} // namespace corral::demo
