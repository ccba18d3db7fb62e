#include "helpers/TestBackend.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <iterator>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace corral::test {

namespace {

bool sendAll(int fd, const std::string &data) {
    size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += size_t(n);
    }
    return true;
}

std::string lowerCopy(std::string s) {
    for (char &c : s)
        c = char(tolower(c));
    return s;
}

std::string headerValue(const std::string &head, const std::string &name) {
    const std::string lower = lowerCopy(head);
    const size_t at = lower.find("\r\n" + name + ":");
    if (at == std::string::npos) return {};
    size_t start = at + name.size() + 3;
    while (start < head.size() && head[start] == ' ')
        ++start;
    return head.substr(start, head.find("\r\n", start) - start);
}

// Reads into `buffer` until it holds at least `size` bytes.
bool fillTo(int fd, std::string &buffer, size_t size) {
    char chunk[65536];
    while (buffer.size() < size) {
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer.append(chunk, size_t(n));
    }
    return true;
}

bool fillUntil(int fd, std::string &buffer, const char *marker, size_t &at) {
    char chunk[65536];
    while ((at = buffer.find(marker)) == std::string::npos) {
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer.append(chunk, size_t(n));
    }
    return true;
}

// The value of `name` in a query string ("a=1&b=x+y"), '+' read as a space.
std::string queryValue(const std::string &path, const std::string &name) {
    const size_t q = path.find('?');
    if (q == std::string::npos) return {};
    const std::string query = "&" + path.substr(q + 1);
    const size_t at = query.find("&" + name + "=");
    if (at == std::string::npos) return {};
    const size_t start = at + name.size() + 2;
    std::string value = query.substr(start, query.find('&', start) - start);
    std::replace(value.begin(), value.end(), '+', ' ');
    return value;
}

std::string chunkOf(const std::string &data) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

// /text/BYTES?OPTS (see TestBackend.h). False when the connection must close after it.
bool serveText(int fd, const std::string &path, bool isHead) {
    const std::string type = queryValue(path, "type");
    const std::string frame = queryValue(path, "frame");
    const std::string statusText = queryValue(path, "status");
    const int status = statusText.empty() ? 200 : std::atoi(statusText.c_str());
    const int pieces = std::max(1, std::atoi(queryValue(path, "pieces").c_str()));
    const bool cut = queryValue(path, "cut") == "1";
    const std::string gap = queryValue(path, "gap");
    const int gapMs = gap.empty() ? 30 : std::atoi(gap.c_str());
    const bool noBody = status == 204 || status == 304;
    const std::string body = noBody ? std::string() : textBody(std::stoul(path.substr(6)));
    std::string head = (frame == "close" ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(status) +
                       " X\r\nContent-Type: " + (type.empty() ? "text/html" : type) + "\r\n";
    for (const auto &[option, header] : {std::pair{"enc", "Content-Encoding"},
                                         {"etag", "ETag"},
                                         {"vary", "Vary"},
                                         {"cc", "Cache-Control"}})
        if (const std::string v = queryValue(path, option); !v.empty())
            head += std::string(header) + ": " + v + "\r\n";
    if (frame == "chunked" && !noBody)
        head += "Transfer-Encoding: chunked\r\n";
    else if (frame != "close" && !noBody)
        head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!sendAll(fd, head + "\r\n")) return false;
    if (isHead || noBody) return frame != "close";
    const size_t end = cut ? body.size() / 2 : body.size();
    const size_t piece = (end + size_t(pieces) - 1) / size_t(pieces);
    for (size_t at = 0; at < end; at += piece) {
        if (at > 0) {
            // Interruptible: stop() shuts the socket down, which wakes poll().
            pollfd p{fd, POLLRDHUP, 0};
            if (::poll(&p, 1, gapMs) != 0) return false;
        }
        std::string data = body.substr(at, std::min(piece, end - at));
        if (frame == "chunked") {
            // Several chunks per piece, of uneven sizes: chunk framing split across reads.
            std::string framed;
            for (size_t i = 0, n = 1000; i < data.size(); i += n, n = n * 3 % 7919 + 1)
                framed += chunkOf(data.substr(i, n));
            data.swap(framed);
        }
        if (!sendAll(fd, data)) return false;
    }
    if (cut) return false;
    if (frame == "chunked" && !sendAll(fd, "0\r\n\r\n")) return false;
    return frame != "close";
}

std::string response(int status, const std::string &body, const std::string &extra = {}) {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

} // namespace

std::string textBody(size_t bytes) {
    static const char *const Words[] = {
        "proxy",  "backend", "request", "the",      "of",     "and",   "a",        "to",
        "in",     "is",      "that",    "response", "header", "body",  "stream",   "gzip",
        "client", "server",  "worker",  "site",     "static", "files", "compress", "with",
        "for",    "on",      "as",      "by",       "cache",  "event", "loop",     "socket",
        "<div>",  "</div>",  "<p>",     "</p>",     "class=", "href=", "{\"id\":", "},"};
    std::string text;
    text.reserve(bytes + 16);
    uint32_t state = 12345;
    size_t line = 0;
    while (text.size() < bytes) {
        state = state * 1103515245u + 12345u;
        text += Words[(state >> 16) % std::size(Words)];
        if ((state >> 8) % 5 == 0) text += std::to_string((state >> 4) % 1000);
        text += ++line % 12 == 0 ? '\n' : ' ';
    }
    text.resize(bytes);
    return text;
}

TestBackend::TestBackend() = default;

TestBackend::~TestBackend() {
    stop();
}

bool TestBackend::start(uint16_t port) {
    m_listenFd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(m_listenFd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(m_listenFd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(m_listenFd, 512) != 0)
        return false;
    socklen_t len = sizeof addr;
    getsockname(m_listenFd, reinterpret_cast<sockaddr *>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_stopping = false;
    m_acceptThread = std::thread([this] { acceptLoop(); });
    return true;
}

void TestBackend::stop() {
    if (!m_acceptThread.joinable()) return;
    m_stopping = true;
    ::shutdown(m_listenFd, SHUT_RDWR);
    m_acceptThread.join();
    ::close(m_listenFd);
    m_listenFd = -1;
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(m_mutex);
        for (int fd : m_fds)
            ::shutdown(fd, SHUT_RDWR);
        threads.swap(m_threads);
    }
    for (std::thread &t : threads)
        t.join();
}

std::string TestBackend::lastHead() const {
    std::lock_guard lock(m_mutex);
    return m_lastHead;
}

void TestBackend::crash() {
    // Like a killed process: new connections are refused, open ones are cut.
    m_stopping = true;
    ::shutdown(m_listenFd, SHUT_RDWR);
    std::lock_guard lock(m_mutex);
    for (int fd : m_fds)
        ::shutdown(fd, SHUT_RDWR);
}

void TestBackend::acceptLoop() {
    while (!m_stopping) {
        const int fd = ::accept4(m_listenFd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (m_stopping) return;
            continue;
        }
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard lock(m_mutex);
        if (m_stopping) {
            ::close(fd);
            return;
        }
        m_fds.push_back(fd);
        ++m_connections;
        m_threads.emplace_back([this, fd] { serve(fd); });
    }
}

void TestBackend::serve(int fd) {
    std::string buffer;
    for (int onConnection = 0;; ++onConnection) {
        size_t headEnd;
        if (!fillUntil(fd, buffer, "\r\n\r\n", headEnd)) break;
        const std::string head = buffer.substr(0, headEnd + 2);
        buffer.erase(0, headEnd + 4);
        ++m_requests;
        ++m_inFlight;
        {
            std::lock_guard lock(m_mutex);
            m_lastHead = head;
        }
        const std::string path = head.substr(
            head.find(' ') + 1, head.find(' ', head.find(' ') + 1) - head.find(' ') - 1);
        const bool isHead = head.compare(0, 5, "HEAD ") == 0;
        // Request body, by its framing.
        std::string body;
        bool ok = true;
        const auto readBody = [&] {
            const std::string cl = headerValue(head, "content-length");
            if (!cl.empty()) {
                const size_t size = std::stoul(cl);
                if (path == "/count") {
                    // Counted as it streams: a huge upload is never held in memory.
                    size_t left = size;
                    while (left > 0) {
                        if (buffer.empty() && !fillTo(fd, buffer, 1)) return false;
                        const size_t take = std::min(left, buffer.size());
                        buffer.erase(0, take);
                        left -= take;
                    }
                    body = std::to_string(size);
                    return true;
                }
                if (!fillTo(fd, buffer, size)) return false;
                body = buffer.substr(0, size);
                buffer.erase(0, size);
            } else if (lowerCopy(headerValue(head, "transfer-encoding")) == "chunked") {
                for (;;) {
                    size_t eol;
                    if (!fillUntil(fd, buffer, "\r\n", eol)) return false;
                    const size_t size = std::stoul(buffer.substr(0, eol), nullptr, 16);
                    buffer.erase(0, eol + 2);
                    if (size == 0) {
                        if (!fillUntil(fd, buffer, "\r\n", eol)) return false;
                        buffer.erase(0, eol + 2);
                        break;
                    }
                    if (!fillTo(fd, buffer, size + 2)) return false;
                    body += buffer.substr(0, size);
                    buffer.erase(0, size + 2);
                }
                if (path == "/count") body = std::to_string(body.size());
            }
            return true;
        };
        const std::string me = "ok " + std::to_string(m_port) + "\n";
        if (!headerValue(head, "upgrade").empty()) {
            ok = sendAll(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n\r\n");
            // Raw echo until the peer closes.
            if (!buffer.empty()) ok = ok && sendAll(fd, buffer);
            char chunk[65536];
            while (ok) {
                const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
                if (n <= 0) break;
                ok = sendAll(fd, std::string(chunk, size_t(n)));
            }
            --m_inFlight;
            break;
        }
        if (path == "/reset") {
            linger l{1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            --m_inFlight;
            break;
        }
        if (path == "/continue" && lowerCopy(headerValue(head, "expect")) == "100-continue")
            ok = sendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        if (ok && !readBody()) ok = false;
        if (!ok || path == "/close" || (m_answerFirstOnly && onConnection > 0)) {
            --m_inFlight;
            break;
        }
        if (path == "/crash") {
            --m_inFlight;
            crash();
            break;
        }
        std::string reply;
        if (path.rfind("/status/", 0) == 0) {
            const int status = std::atoi(path.c_str() + 8);
            if (status == 204 || status == 304)
                reply = "HTTP/1.1 " + std::to_string(status) + " X\r\n\r\n";
            else
                reply = response(status, me);
        } else if (path.rfind("/chunked/", 0) == 0) {
            const int n = std::atoi(path.c_str() + 9);
            reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            for (int i = 0; i < n; ++i) {
                const std::string chunk = "chunk-" + std::to_string(i) + "\n";
                char size[16];
                std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
                reply += size + chunk + "\r\n";
            }
            reply += "0\r\n\r\n";
        } else if (path.rfind("/slow/", 0) == 0) {
            const int ms = std::atoi(path.c_str() + 6);
            // Interruptible: stop() shuts the socket down, which wakes poll().
            pollfd p{fd, POLLRDHUP, 0};
            ::poll(&p, 1, ms);
            reply = response(200, me);
        } else if (path == "/echo" || path == "/continue" || path == "/count") {
            reply = response(200, body);
        } else if (path.rfind("/big/", 0) == 0) {
            const size_t total = size_t(std::atoi(path.c_str() + 5)) << 20;
            ok = sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) +
                                 "\r\n\r\n");
            const std::string block(65536, 'x');
            for (size_t sent = 0; ok && sent < total && !isHead; sent += block.size())
                ok = sendAll(fd, block);
        } else if (path.rfind("/pattern/", 0) == 0) {
            // KB kilobytes in which every byte depends on its offset (patternByte): a byte
            // lost, doubled or moved on the way shows.
            const size_t total = size_t(std::atoi(path.c_str() + 9)) << 10;
            ok = sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) +
                                 "\r\n\r\n");
            std::string block;
            for (size_t sent = 0; ok && sent < total && !isHead; sent += block.size()) {
                block.resize(std::min<size_t>(50000, total - sent));
                for (size_t i = 0; i < block.size(); ++i)
                    block[i] = patternByte(sent + i);
                ok = sendAll(fd, block);
            }
        } else if (path.rfind("/truncated/", 0) == 0) {
            // Promises KB kilobytes, sends half, then closes: a backend dying mid-body.
            const size_t total = size_t(std::atoi(path.c_str() + 11)) << 10;
            sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n" +
                            std::string(total / 2, 't'));
            --m_inFlight;
            break;
        } else if (path == "/headers") {
            reply = response(200, head);
        } else if (path == "/early") {
            reply = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
                    response(200, me);
        } else if (path == "/partial") {
            sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Le");
            --m_inFlight;
            break;
        } else if (path == "/both-framings") {
            reply = "HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n0\r\n\r\n";
        } else if (path == "/huge-head") {
            reply = response(200, me, "X-Big: " + std::string(40000, 'h') + "\r\n");
        } else if (path == "/switch") {
            reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n";
        } else if (path == "/gzip-te") {
            sendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip");
            --m_inFlight;
            break;
        } else if (path.rfind("/text/", 0) == 0) {
            const bool keep = serveText(fd, path, isHead);
            --m_inFlight;
            if (!keep || lowerCopy(headerValue(head, "connection")) == "close") break;
            continue;
        } else if (path == "/conn-cl") {
            reply = response(200, "hello", "Connection: content-length\r\n");
        } else if (path == "/health") {
            reply = m_healthy ? response(200, me) : response(503, "sick\n");
        } else {
            reply = response(200, me);
        }
        if (isHead && !reply.empty()) reply = reply.substr(0, reply.find("\r\n\r\n") + 4);
        if (ok && !reply.empty()) ok = sendAll(fd, reply);
        --m_inFlight;
        if (!ok || lowerCopy(headerValue(head, "connection")) == "close") break;
    }
    std::lock_guard lock(m_mutex);
    for (auto it = m_fds.begin(); it != m_fds.end(); ++it)
        if (*it == fd) {
            m_fds.erase(it);
            break;
        }
    ::close(fd);
}

} // namespace corral::test
