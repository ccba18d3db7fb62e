#pragma once

#include <QList>

#include <cstddef>
#include <utility>
#include <vector>

namespace corral {

/// A fixed-capacity FIFO that overwrites its oldest element when full. Storage is
/// allocated once (in the constructor or setCapacity()); push() never allocates.
template <typename T> class RingBuffer {
public:
    explicit RingBuffer(std::size_t capacity = 0)
        : m_data(capacity) {}

    std::size_t capacity() const { return m_data.size(); }
    std::size_t size() const { return m_size; }
    bool isEmpty() const { return m_size == 0; }
    bool isFull() const { return m_size == m_data.size(); }

    /// Appends `value`, dropping the oldest element when the buffer is full.
    /// Does nothing when the capacity is 0.
    void push(T value) {
        if (m_data.empty()) return;
        m_data[(m_head + m_size) % m_data.size()] = std::move(value);
        if (m_size < m_data.size())
            ++m_size;
        else
            m_head = (m_head + 1) % m_data.size();
    }

    /// The `index`-th element, oldest first (0 <= index < size()).
    const T &at(std::size_t index) const { return m_data[(m_head + index) % m_data.size()]; }
    const T &operator[](std::size_t index) const { return at(index); }
    /// The oldest and newest elements; the buffer must not be empty.
    const T &first() const { return at(0); }
    const T &last() const { return at(m_size - 1); }

    void clear() {
        m_head = 0;
        m_size = 0;
    }

    /// Changes the capacity, keeping the newest min(size(), capacity) elements.
    void setCapacity(std::size_t capacity) {
        if (capacity == m_data.size()) return;
        std::vector<T> data(capacity);
        const std::size_t keep = m_size < capacity ? m_size : capacity;
        for (std::size_t i = 0; i < keep; ++i)
            data[i] = std::move(m_data[(m_head + m_size - keep + i) % m_data.size()]);
        m_data = std::move(data);
        m_head = 0;
        m_size = keep;
    }

    /// Calls `fn(const T &)` for every element, oldest first.
    template <typename Fn> void forEach(Fn &&fn) const {
        for (std::size_t i = 0; i < m_size; ++i)
            fn(at(i));
    }

    /// A copy of the contents, oldest first, each element passed through `fn`.
    template <typename Fn>
    auto toList(Fn &&fn) const -> QList<decltype(fn(std::declval<const T &>()))> {
        QList<decltype(fn(std::declval<const T &>()))> out;
        out.reserve(qsizetype(m_size));
        forEach([&](const T &value) { out.append(fn(value)); });
        return out;
    }
    QList<T> toList() const {
        return toList([](const T &value) { return value; });
    }

private:
    std::vector<T> m_data;
    std::size_t m_head = 0; // index of the oldest element
    std::size_t m_size = 0;
};

} // namespace corral
