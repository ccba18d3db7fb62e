#pragma once

#include "ByteQueue.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::demo {

/// The parts of an HTTP/1.x request the demo worker acts on.
struct Request {
    std::string method;
    std::string target;
    std::string path;
    std::string query;
    bool keepAlive = true;
    bool connectionUpgrade = false; // "upgrade" among the Connection tokens
    std::string upgrade;            // Upgrade header value
    std::string webSocketKey;       // Sec-WebSocket-Key
    std::string cookie;             // the Cookie headers, joined with "; "
    bool expectContinue = false;
    bool chunked = false;
    std::uint64_t contentLength = 0;
    std::string body; // only filled when the parser was told to keep it
};

/// Value of NAME in a query string ("a=1&b=2"), without percent-decoding.
std::optional<std::string_view> queryParameter(std::string_view query, std::string_view name);

/// Incremental HTTP/1.x request parser. It consumes bytes from the front of the input as it
/// goes, so the input holds only what is not parsed yet; bodies (Content-Length or chunked)
/// are always read to the end so the next pipelined request starts at the right byte.
class RequestParser {
public:
    enum class Status {
        NeedMore,        // the input ends inside the current request
        HeadersComplete, // reported once per request, before the body is read
        MessageComplete, // takeRequest() hands it over and readies the next one
        Invalid,         // errorStatus() tells the HTTP status to answer with
    };

    Status feed(ByteQueue &input);
    Request &request() { return m_request; }
    Request takeRequest();
    /// Keep the body of the current request (up to limit bytes; more is an error 413).
    void keepBody(std::size_t limit) {
        m_keepBody = true;
        m_bodyLimit = limit;
    }
    bool expectsBody() const { return m_request.chunked || m_request.contentLength > 0; }
    int errorStatus() const { return m_errorStatus; }

private:
    enum class State {
        Headers,
        FixedBody,
        ChunkSize,
        ChunkData,
        ChunkDataEnd,
        Trailers,
        Done,
        Failed
    };

    Status fail(int status);
    bool parseHead(std::string_view head);
    bool takeBody(ByteQueue &input);

    State m_state = State::Headers;
    Request m_request;
    std::uint64_t m_remaining = 0; // bytes left in the fixed body or the current chunk
    std::size_t m_trailerBytes = 0;
    bool m_keepBody = false;
    std::size_t m_bodyLimit = 0;
    int m_errorStatus = 0;
};

} // namespace corral::demo
