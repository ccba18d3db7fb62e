#include "http/ChunkedDecoder.h"

#include "http/HeaderText.h"

namespace corral::http {

ChunkedDecoder::LineEnd ChunkedDecoder::lineEndAt(State state) {
    switch (state) {
    case State::DataCr:
        return {'\r', State::DataLf};
    case State::DataLf:
        return {'\n', State::Size};
    case State::TrailerLf:
        return {'\n', State::TrailerStart};
    default: // FinalLf: the empty line after the trailers
        return {'\n', State::Done};
    }
}

long ChunkedDecoder::run(const char *data, size_t size, bool stopAtData) {
    // Trailer lines and chunk-size lines are bounded so a peer cannot make us scan forever.
    constexpr size_t MaxLine = 4096;
    size_t i = 0;
    while (i < size) {
        const unsigned char c = static_cast<unsigned char>(data[i]);
        // The one byte a line end allows here; taken, it leads to `next`.
        const auto expect = [&](unsigned char byte, State next) {
            if (c != byte) return false;
            m_state = next;
            ++i;
            return true;
        };
        switch (m_state) {
        case State::Size: {
            const int digit = hexDigitValue(c);
            if (digit >= 0) {
                if (++m_digits > MaxHexDigits) return -1; // overflow guard
                m_size = m_size * 16 + uint64_t(digit);
                ++i;
            } else if (m_digits == 0) {
                return -1;
            } else if (c == '\r') {
                m_state = State::SizeLf;
                ++i;
            } else if (c == ';' || c == ' ' || c == '\t') {
                m_state = State::Extension;
                m_lineBytes = 0;
                ++i;
            } else {
                return -1;
            }
            break;
        }
        case State::Extension:
        case State::TrailerLine:
            // The rest of a chunk-size line (its extensions) or a trailer field: CR ends it; a
            // bare LF, any other control but HTAB, or a line over MaxLine is refused.
            if (c == '\r') {
                m_state = m_state == State::Extension ? State::SizeLf : State::TrailerLf;
            } else if ((c < 0x20 && c != '\t') || c == 0x7f || ++m_lineBytes > MaxLine) {
                return -1;
            }
            ++i;
            break;
        case State::SizeLf:
            if (!expect('\n', m_size == 0 ? State::TrailerStart : State::Data)) return -1;
            m_digits = 0; // for the next chunk's size (m_size counts down to 0 with the data)
            break;
        case State::Data: {
            if (stopAtData) return long(i);
            const size_t take = size - i < m_size ? size - i : size_t(m_size);
            i += take;
            m_size -= take;
            if (m_size == 0) m_state = State::DataCr;
            break;
        }
        case State::DataCr:
        case State::DataLf:
        case State::TrailerLf:
        case State::FinalLf: {
            const LineEnd end = lineEndAt(m_state);
            if (!expect(end.byte, end.next)) return -1;
            if (m_state == State::Done) return long(i);
            break;
        }
        case State::TrailerStart:
            if (c == '\r') {
                m_state = State::FinalLf;
            } else if (c == '\n' || c == ' ' || c == '\t') {
                return -1;
            } else {
                m_state = State::TrailerLine;
                m_lineBytes = 1;
            }
            ++i;
            break;
        case State::Done:
            return long(i);
        }
    }
    return long(i);
}

} // namespace corral::http
