#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace corral::demo {

/// A byte buffer that is appended at the back and consumed from the front without moving
/// the remaining bytes on every consume (pipelined requests would otherwise be quadratic).
class ByteQueue {
public:
    std::string_view view() const { return std::string_view(m_data).substr(m_start); }
    std::size_t size() const { return m_data.size() - m_start; }
    bool empty() const { return size() == 0; }
    void append(std::string_view bytes) { m_data.append(bytes); }
    void clear() {
        m_data.clear();
        m_start = 0;
    }
    void consume(std::size_t count) {
        m_start += count;
        if (m_start >= m_data.size()) {
            clear();
        } else if (m_start > 64 * 1024 && m_start * 2 > m_data.size()) {
            m_data.erase(0, m_start);
            m_start = 0;
        }
    }

private:
    std::string m_data;
    std::size_t m_start = 0;
};

} // namespace corral::demo
