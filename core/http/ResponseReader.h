#pragma once

// A client's view of the responses on one connection: where each ends and whether the server
// keeps the connection, with the proxy's own strict head parser and body framing (a response
// the proxy would refuse as ambiguous is an error here too). Used by the load generator, and
// by the affinity check's probe (core/affinity/DirectFetch.cpp), which also reads the head
// and the body through an Observer.

#include "http/BodyFramer.h"
#include "http/HttpParser.h"

#include <cstddef>
#include <functional>

namespace corral::http {

class ResponseReader {
public:
    enum class Progress { NeedMore, Done, Error };

    /// A head larger than `maxHeadBytes` or with more than `maxHeaders` fields is an error.
    explicit ResponseReader(size_t maxHeadBytes = 64 * 1024, size_t maxHeaders = 100)
        : m_maxHeadBytes(maxHeadBytes)
        , m_maxHeaders(maxHeaders) {}

    /// Expects the response to the next request; a HEAD request's has no body. With
    /// `upgradeRequested` (the request asked for a protocol switch), a 101 head is the whole
    /// answer (Done, status 101) instead of an error.
    void reset(bool requestWasHead = false, bool upgradeRequested = false);

    /// For a reader of the answer itself, not only of where it ends: `head` sees the final
    /// head once parsed (its views point into the bytes of that feed() call: copy what is
    /// kept), `payload` the body's bytes with the chunked framing taken off. Unset: neither is
    /// called (the load generator's hot path).
    struct Observer {
        std::function<void(const ResponseHead &head)> head;
        std::function<void(const char *data, size_t size)> payload;
    };
    void setObserver(Observer observer) { m_observer = std::move(observer); }

    /// Reads from the start of the bytes received and not yet consumed; `consumed` is how
    /// many of them the caller drops now (the rest must be offered again, more appended).
    /// Interim responses (100 Continue, 103 Early Hints) are skipped. Error: a malformed or
    /// ambiguously framed head, a transfer coding other than chunked, a 101 that was not
    /// asked for, a bad chunk, or a head over the limits.
    Progress feed(const char *data, size_t size, size_t &consumed);
    /// The server closed the connection: Done if that ends the response (its body runs until
    /// the close), Error if the response is cut short, Done if it was complete already.
    Progress endOfInput();

    /// The final status; 0 until its head is read.
    int status() const { return m_status; }
    /// The server closes after this response (Connection: close, HTTP/1.0 without
    /// keep-alive, or a body that runs until the close).
    bool closesConnection() const { return m_closes; }

private:
    enum class State { Head, Body, Done, Failed };

    Progress readHead(const char *data, size_t size, size_t &consumed);
    long feedObservedBody(const char *data, size_t size);

    size_t m_maxHeadBytes;
    size_t m_maxHeaders;
    bool m_requestWasHead = false;
    bool m_upgradeRequested = false;
    State m_state = State::Head;
    int m_status = 0;
    bool m_closes = false;
    HeadScanner m_scanner;
    ResponseHead m_head;
    BodyFramer m_body;
    Observer m_observer;
};

} // namespace corral::http
