#include "http/ResponseReader.h"

namespace corral::http {

void ResponseReader::reset(bool requestWasHead, bool upgradeRequested) {
    m_requestWasHead = requestWasHead;
    m_upgradeRequested = upgradeRequested;
    m_state = State::Head;
    m_status = 0;
    m_closes = false;
    m_scanner.reset();
}

ResponseReader::Progress ResponseReader::feed(const char *data, size_t size, size_t &consumed) {
    consumed = 0;
    while (m_state == State::Head) {
        const Progress head = readHead(data + consumed, size - consumed, consumed);
        if (head != Progress::Done) return head;
    }
    if (m_state == State::Body) {
        const long used = m_observer.payload ? feedObservedBody(data + consumed, size - consumed)
                                             : m_body.feed(data + consumed, size - consumed);
        if (used < 0) {
            m_state = State::Failed;
            return Progress::Error;
        }
        consumed += size_t(used);
        if (m_body.done()) m_state = State::Done;
    }
    switch (m_state) {
    case State::Done:
        return Progress::Done;
    case State::Failed:
        return Progress::Error;
    default:
        return Progress::NeedMore;
    }
}

// BodyFramer::feed() for an observer of the payload: the same bytes consumed, the payload
// among them handed out as it passes.
long ResponseReader::feedObservedBody(const char *data, size_t size) {
    size_t used = 0;
    while (used < size && !m_body.done()) {
        const BodyFramer::Payload payload = m_body.nextPayload(data + used, size - used);
        if (payload.skip < 0) return -1;
        used += size_t(payload.skip);
        if (payload.length == 0) {
            if (payload.skip == 0) break; // nothing more to take from these bytes
            continue;
        }
        m_observer.payload(data + used, payload.length);
        m_body.consumePayload(data + used, payload.length);
        used += payload.length;
    }
    return long(used);
}

// Reads one head at the start of `data`; Done when it was read (the state then says what
// follows: another head after an interim response, the body, or the end).
ResponseReader::Progress ResponseReader::readHead(const char *data, size_t size, size_t &consumed) {
    const long length = m_scanner.scan(data, size);
    if (length == 0) {
        if (size <= m_maxHeadBytes) return Progress::NeedMore;
        m_state = State::Failed;
        return Progress::Error;
    }
    if (length < 0 || size_t(length) > m_maxHeadBytes ||
        parseResponse(data, size_t(length), m_requestWasHead, m_maxHeaders, m_head) != 0 ||
        (m_head.status == 101 && !m_upgradeRequested)) {
        // (a switch nobody asked for: the bytes that follow are not HTTP)
        m_state = State::Failed;
        return Progress::Error;
    }
    consumed += size_t(length);
    m_scanner.reset();
    if (m_head.status == 101) { // the switch asked for: what follows is the new protocol's
        m_status = 101;
        m_closes = true;
        if (m_observer.head) m_observer.head(m_head);
        m_state = State::Done;
        return Progress::Done;
    }
    if (m_head.status < 200) return Progress::Done; // interim: the final response follows
    m_status = m_head.status;
    if (m_observer.head) m_observer.head(m_head);
    m_closes = !m_head.keepAlive() || m_head.body == BodyKind::UntilClose;
    m_body.start(m_head);
    m_state = m_body.done() ? State::Done : State::Body;
    return Progress::Done;
}

ResponseReader::Progress ResponseReader::endOfInput() {
    if (m_state == State::Body && m_body.endOfInput()) m_state = State::Done;
    if (m_state == State::Done) return Progress::Done;
    m_state = State::Failed;
    return Progress::Error;
}

} // namespace corral::http
