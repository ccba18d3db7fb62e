#include "proxy/AdminServer.h"

#include "http/HttpParser.h"
#include "net/SocketAddress.h"
#include "proxy/PrometheusMetrics.h"
#include "proxy/ProxyEngine.h"
#include "util/AtomicFile.h"
#include "util/ListeningSockets.h"

#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QUrl>

#include <arpa/inet.h>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace corral {

namespace {

QString errnoText(int error = errno) {
    return QString::fromLocal8Bit(strerror(error));
}

int64_t nowMs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

QByteArray errorBody(const QString &message) {
    QJsonObject o;
    o.insert(QStringLiteral("error"), message);
    return QJsonDocument(o).toJson(QJsonDocument::Compact);
}

/// Compares a presented secret with the expected one in time that does not depend on where
/// they differ (the length is not secret: every token has the same).
bool sameSecret(std::string_view presented, const QByteArray &expected) {
    if (presented.size() != size_t(expected.size())) return false;
    unsigned char difference = 0;
    for (size_t i = 0; i < presented.size(); ++i)
        difference |= static_cast<unsigned char>(presented[i] ^ expected[qsizetype(i)]);
    return difference == 0;
}

QString text(std::string_view bytes) {
    return QString::fromUtf8(bytes.data(), qsizetype(bytes.size()));
}

/// A 256-bit token from the kernel's CSPRNG, hex-encoded.
Result<QByteArray> randomToken() {
    unsigned char raw[32];
    for (size_t got = 0; got < sizeof raw;) {
        const ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(QStringLiteral("admin token: getrandom: %1").arg(errnoText()));
        }
        got += size_t(n);
    }
    return QByteArray(reinterpret_cast<const char *>(raw), sizeof raw).toHex();
}

} // namespace

/// One admin connection: read a request, write the answer, then drain what the client still
/// sends until it closes (closing with unread bytes would reset the answer away).
struct AdminServer::Connection {
    enum class State { Reading, Writing, Lingering };
    int fd = -1;
    State state = State::Reading;
    QByteArray in;
    QByteArray out;
    qsizetype sent = 0;
    int64_t deadline = 0;
};

AdminServer::AdminServer(ProxyEngine &engine)
    : m_engine(engine) {}

AdminServer::~AdminServer() {
    stop();
}

Result<void> AdminServer::start(const AdminEndpoint &requested) {
    Result<void> listening;
    if (requested.isUnix()) {
        listening = listenUnix(requested.socketPath);
    } else if (requested.host.isEmpty()) {
        auto directory = adminRuntimeDirectory();
        if (!directory) return fail(QStringLiteral("admin API: ") + directory.error());
        // proxy-PID.sock, then proxy-PID-2.sock ... for more engines in one process.
        static std::atomic<int> defaultSockets{0};
        const int n = ++defaultSockets;
        const QString name = n == 1 ? QStringLiteral("proxy-%1.sock").arg(::getpid())
                                    : QStringLiteral("proxy-%1-%2.sock").arg(::getpid()).arg(n);
        listening = listenUnix(directory.value() + QLatin1Char('/') + name);
    } else {
        listening = listenTcp(requested.host, requested.port);
        if (listening) listening = writeTokenFile();
    }
    if (!listening) {
        if (m_listenFd >= 0) ::close(m_listenFd);
        m_listenFd = -1;
        if (m_ownsSocketFile) ::unlink(m_endpoint.socketPath.toLocal8Bit().constData());
        m_ownsSocketFile = false;
        return listening;
    }
    m_wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    m_stop = false;
    m_thread = std::thread([this] { run(); });
    return {};
}

Result<void> AdminServer::listenUnix(const QString &path) {
    const QByteArray local = path.toLocal8Bit();
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (size_t(local.size()) >= sizeof address.sun_path)
        return fail(QStringLiteral("admin socket path %1 is longer than %2 bytes")
                        .arg(path)
                        .arg(sizeof address.sun_path - 1));
    std::memcpy(address.sun_path, local.constData(), size_t(local.size()));
    const auto length = socklen_t(offsetof(sockaddr_un, sun_path) + size_t(local.size()) + 1);
    struct stat st {};
    if (::lstat(local.constData(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return fail(QStringLiteral("admin socket %1 exists and is not a socket").arg(path));
        // A socket file nobody accepts on is left over from a crash; a live one is not ours.
        const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool live =
            probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr *>(&address), length) == 0;
        if (probe >= 0) ::close(probe);
        if (live)
            return fail(QStringLiteral("admin socket %1 is in use by another process").arg(path));
        ::unlink(local.constData());
    }
    m_listenFd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m_listenFd < 0) return fail(QStringLiteral("admin socket: %1").arg(errnoText()));
    if (::bind(m_listenFd, reinterpret_cast<sockaddr *>(&address), length) != 0)
        return fail(QStringLiteral("cannot listen on admin socket %1: %2").arg(path, errnoText()));
    m_endpoint = AdminEndpoint{};
    m_endpoint.socketPath = path;
    m_ownsSocketFile = true;
    // The directory already keeps others out; the mode says so again.
    if (::chmod(local.constData(), 0600) != 0 || ::listen(m_listenFd, 64) != 0)
        return fail(QStringLiteral("cannot listen on admin socket %1: %2").arg(path, errnoText()));
    m_access = Access{};
    return {};
}

Result<void> AdminServer::listenTcp(const QString &hostText, quint16 port) {
    const QHostAddress host(hostText);
    if (!host.isLoopback())
        return fail(QStringLiteral("admin address %1 is not a loopback address").arg(hostText));
    const bool v6 = host.protocol() == QAbstractSocket::IPv6Protocol;
    m_listenFd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m_listenFd < 0) return fail(QStringLiteral("admin socket: %1").arg(errnoText()));
    const int one = 1;
    setsockopt(m_listenFd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage addr;
    const socklen_t length = net::ipSocketAddress(host, port, addr);
    if (::bind(m_listenFd, reinterpret_cast<sockaddr *>(&addr), length) != 0 ||
        ::listen(m_listenFd, 64) != 0) {
        const int error = errno;
        if (error == EADDRINUSE)
            if (auto free = checkListenAddressFree(host, port); !free)
                return fail(QStringLiteral("cannot listen on admin address: ") + free.error());
        return fail(QStringLiteral("cannot listen on admin %1: %2")
                        .arg(Endpoint{host.toString(), port}.toString(), errnoText(error)));
    }
    socklen_t len = sizeof addr;
    getsockname(m_listenFd, reinterpret_cast<sockaddr *>(&addr), &len);
    m_endpoint = AdminEndpoint{};
    m_endpoint.host = host.toString();
    m_endpoint.port = ntohs(v6 ? reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port
                               : reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
    // DNS rebinding gives a page the right IP under its own name: only our address passes.
    const QByteArray portText = QByteArray::number(m_endpoint.port);
    m_access = Access{};
    m_access.hosts = {Endpoint{m_endpoint.host, m_endpoint.port}.toString().toUtf8(),
                      "localhost:" + portText};
    return {};
}

Result<void> AdminServer::writeTokenFile() {
    auto directory = adminRuntimeDirectory();
    if (!directory) return fail(QStringLiteral("admin token: ") + directory.error());
    auto token = randomToken();
    if (!token) return fail(token.error());
    const QString path = directory.value() + QStringLiteral("/admin-%1.token").arg(m_endpoint.port);
    // Private from the first byte (mode 0600), and never half written.
    AtomicWriteOptions options;
    options.mode = 0600;
    if (auto written = writeFileAtomically(path, token.value() + '\n', options); !written)
        return fail(QStringLiteral("admin token file: ") + written.error());
    m_endpoint.tokenFile = path;
    m_access.token = token.value();
    return {};
}

void AdminServer::stop() {
    if (m_thread.joinable()) {
        m_stop = true;
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(m_wakeFd, &one, sizeof one);
        m_thread.join();
    }
    if (m_listenFd >= 0) ::close(m_listenFd);
    if (m_wakeFd >= 0) ::close(m_wakeFd);
    m_listenFd = m_wakeFd = -1;
    if (m_ownsSocketFile) ::unlink(m_endpoint.socketPath.toLocal8Bit().constData());
    m_ownsSocketFile = false;
    if (!m_endpoint.tokenFile.isEmpty()) ::unlink(m_endpoint.tokenFile.toLocal8Bit().constData());
    m_endpoint.tokenFile.clear();
}

QByteArray AdminServer::responseBytes(const Reply &reply) {
    QByteArray reason = reply.status < 300 ? "OK" : "Error";
    if (reply.status == 401) reason = "Unauthorized\r\nWWW-Authenticate: Bearer";
    const bool json = reply.contentType.isEmpty();
    return "HTTP/1.1 " + QByteArray::number(reply.status) + ' ' + reason +
           "\r\nContent-Type: " + (json ? QByteArray("application/json") : reply.contentType) +
           "\r\nContent-Length: " + QByteArray::number(reply.body.size() + (json ? 1 : 0)) +
           "\r\nConnection: close\r\n\r\n" + reply.body + (json ? "\n" : "");
}

void AdminServer::run() {
    std::vector<Connection> connections;
    std::vector<pollfd> fds;
    int64_t acceptPausedUntil = 0;
    const auto closeConnection = [&](size_t i) {
        ::close(connections[i].fd);
        connections[i] = std::move(connections.back());
        connections.pop_back();
    };
    // Best effort, on a fresh non-blocking socket: a full send buffer just loses it.
    const auto refuse = [](int fd, const Reply &reply) {
        const QByteArray bytes = responseBytes(reply);
        [[maybe_unused]] const ssize_t n =
            ::send(fd, bytes.constData(), size_t(bytes.size()), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
    };
    while (!m_stop.load()) {
        int64_t now = nowMs();
        fds.clear();
        fds.push_back({m_wakeFd, POLLIN, 0});
        const bool accepting = now >= acceptPausedUntil;
        fds.push_back({accepting ? m_listenFd : -1, POLLIN, 0});
        int64_t next = accepting ? INT64_MAX : acceptPausedUntil;
        for (const Connection &c : connections) {
            fds.push_back(
                {c.fd, short(c.state == Connection::State::Writing ? POLLOUT : POLLIN), 0});
            next = std::min(next, c.deadline);
        }
        const int timeout = next == INT64_MAX ? -1 : int(std::clamp<int64_t>(next - now, 0, 60000));
        if (::poll(fds.data(), nfds_t(fds.size()), timeout) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        now = nowMs();
        // Existing connections first; indexes in `fds` are 2 + connection index.
        for (size_t i = connections.size(); i-- > 0;) {
            Connection &c = connections[i];
            const short revents = fds[2 + i].revents;
            bool done = false;
            if (c.state == Connection::State::Reading && revents) {
                char buffer[8192];
                for (;;) {
                    const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
                    if (n > 0) {
                        c.in.append(buffer, n);
                        if (c.in.size() > MaxRequestBytes + 8192) break;
                        continue;
                    }
                    if (n == 0 || (errno != EAGAIN && errno != EINTR)) done = true;
                    break;
                }
                if (std::optional<Reply> reply = process(c.in, m_access)) {
                    done = false;
                    c.out = responseBytes(*reply);
                    c.in.clear();
                    c.state = Connection::State::Writing;
                    c.deadline = now + RequestTimeoutMs;
                }
            }
            if (c.state == Connection::State::Writing) {
                while (c.sent < c.out.size()) {
                    const ssize_t n = ::send(c.fd, c.out.constData() + c.sent,
                                             size_t(c.out.size() - c.sent), MSG_NOSIGNAL);
                    if (n > 0) {
                        c.sent += n;
                    } else {
                        if (errno != EAGAIN && errno != EINTR) done = true;
                        break;
                    }
                }
                if (c.sent == c.out.size()) {
                    ::shutdown(c.fd, SHUT_WR);
                    c.state = Connection::State::Lingering;
                    c.deadline = std::min(c.deadline, now + 1000);
                }
            } else if (c.state == Connection::State::Lingering && revents) {
                char buffer[4096];
                ssize_t n;
                while ((n = ::recv(c.fd, buffer, sizeof buffer, 0)) > 0) {
                }
                if (n == 0 || (errno != EAGAIN && errno != EINTR)) done = true;
            }
            if (done || now >= c.deadline) closeConnection(i);
        }
        if (!accepting || !fds[1].revents) continue;
        for (int k = 0; k < MaxConnections; ++k) {
            const int fd = ::accept4(m_listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                // Out of descriptors: a readable listener would wake poll() at once, forever.
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                    acceptPausedUntil = now + 100;
                break;
            }
            if (m_endpoint.isUnix()) {
                ucred peer{};
                socklen_t length = sizeof peer;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 ||
                    (peer.uid != ::geteuid() && peer.uid != 0)) {
                    refuse(
                        fd,
                        {403, errorBody(QStringLiteral("the admin API serves only its own user"))});
                    continue;
                }
            }
            if (connections.size() >= size_t(MaxConnections)) {
                refuse(fd, {503, errorBody(QStringLiteral("too many admin connections"))});
                continue;
            }
            Connection c;
            c.fd = fd;
            c.deadline = now + RequestTimeoutMs;
            connections.push_back(std::move(c));
        }
    }
    for (Connection &c : connections)
        ::close(c.fd);
}

std::optional<AdminServer::Reply> AdminServer::process(const QByteArray &received,
                                                       const Access &access) {
    const char *data = received.constData();
    const size_t size = size_t(received.size());
    const http::HeadLimits limits;
    http::HeadScanner scanner;
    const long headLength = scanner.scan(data, size);
    if (headLength < 0) return Reply{400, errorBody(QStringLiteral("malformed request head"))};
    if (headLength == 0) {
        if (size > limits.maxHeaderBytes)
            return Reply{431, errorBody(QStringLiteral("request head too large"))};
        return std::nullopt;
    }
    http::RequestHead head;
    if (const int status = http::parseRequest(data, size_t(headLength), limits, head))
        return Reply{status, errorBody(QStringLiteral("malformed request head"))};
    if (head.target.empty() || head.target[0] != '/')
        return Reply{400, errorBody(QStringLiteral("expected a path like /stats"))};
    // Refusals come before waiting for a body: a request that cannot pass costs nothing.
    std::string_view authorization;
    bool sawAuthorization = false;
    for (const http::Header &h : head.headers) {
        if (http::equalsIgnoreCase(h.name, "origin"))
            return Reply{403, errorBody(QStringLiteral(
                                  "requests from web pages (with an Origin header) are refused"))};
        if (http::equalsIgnoreCase(h.name, "authorization")) {
            if (sawAuthorization)
                return Reply{400, errorBody(QStringLiteral("more than one Authorization"))};
            sawAuthorization = true;
            authorization = h.value;
        }
    }
    if (!access.hosts.isEmpty()) {
        bool known = false;
        for (const QByteArray &host : access.hosts)
            known = known ||
                    http::equalsIgnoreCase(head.host,
                                           std::string_view(host.constData(), size_t(host.size())));
        if (!known)
            return Reply{403,
                         errorBody(QStringLiteral("Host \"%1\" is not this admin API's address")
                                       .arg(text(head.host).left(100)))};
    }
    if (!access.token.isEmpty()) {
        static constexpr std::string_view scheme = "Bearer ";
        const bool valid = authorization.size() > scheme.size() &&
                           http::equalsIgnoreCase(authorization.substr(0, scheme.size()), scheme) &&
                           sameSecret(authorization.substr(scheme.size()), access.token);
        if (!valid)
            return Reply{401, errorBody(QStringLiteral(
                                  "missing or wrong bearer token (Authorization: Bearer, "
                                  "from the admin API's token file)"))};
    }
    if (head.body == http::BodyKind::Chunked)
        return Reply{411, errorBody(QStringLiteral("send the body with Content-Length"))};
    const uint64_t bodyLength = head.body == http::BodyKind::Length ? head.contentLength : 0;
    if (bodyLength > uint64_t(MaxRequestBytes) - uint64_t(headLength))
        return Reply{413, errorBody(QStringLiteral("request body too large"))};
    if (size < size_t(headLength) + bodyLength) return std::nullopt;
    return handle(QByteArray(head.method.data(), qsizetype(head.method.size())),
                  QByteArray(head.target.data(), qsizetype(head.target.size())),
                  received.mid(headLength, qsizetype(bodyLength)));
}

AdminServer::Reply AdminServer::handle(const QByteArray &method, const QByteArray &rawPath,
                                       const QByteArray &body) {
    const QString path = QUrl::fromPercentEncoding(rawPath);
    const auto result = [](const Result<void> &r, int failStatus = 404) {
        return r ? Reply{200, R"({"ok":true})"} : Reply{failStatus, errorBody(r.error())};
    };
    if (path == QLatin1String("/stats")) {
        if (method != "GET") return {405, errorBody(QStringLiteral("use GET"))};
        return {200, m_engine.statsJson()};
    }
    if (path == QLatin1String("/metrics")) {
        if (method != "GET") return {405, errorBody(QStringLiteral("use GET"))};
        return {200, prometheusText(m_engine.snapshot()), PrometheusContentType};
    }
    if (path == QLatin1String("/backends")) {
        if (method == "GET") {
            QJsonArray list;
            for (const Backend &b : m_engine.backends())
                list.append(b.toJson());
            QJsonObject o;
            o.insert(QStringLiteral("backends"), list);
            return {200, QJsonDocument(o).toJson(QJsonDocument::Compact)};
        }
        if (method == "POST") {
            // A JSON object like the inventory's backend entries, or a spec string.
            QJsonParseError error{};
            const QJsonDocument doc = QJsonDocument::fromJson(body, &error);
            Result<Backend> backend = fail(QStringLiteral("expected a backend object"));
            if (doc.isObject())
                backend = Backend::fromJson(doc.object(), QStringLiteral("body"));
            else if (!body.trimmed().isEmpty() && error.error != QJsonParseError::NoError)
                backend = Backend::parse(QString::fromUtf8(body.trimmed()));
            if (!backend) return {400, errorBody(backend.error())};
            return result(m_engine.addBackend(backend.value()), 400);
        }
        return {405, errorBody(QStringLiteral("use GET or POST"))};
    }
    static const QString prefix = QStringLiteral("/backends/");
    if (path.startsWith(prefix)) {
        QString key = path.mid(prefix.size());
        QString action;
        for (const char *verb : {"/drain", "/enable", "/disable"}) {
            if (key.endsWith(QLatin1String(verb))) {
                action = QLatin1String(verb + 1);
                key.chop(qsizetype(std::strlen(verb)));
            }
        }
        if (action.isEmpty()) {
            if (method != "DELETE") return {405, errorBody(QStringLiteral("use DELETE"))};
            return result(m_engine.removeBackend(key));
        }
        if (method != "POST") return {405, errorBody(QStringLiteral("use POST"))};
        if (action == QLatin1String("drain")) return result(m_engine.drainBackend(key, {}));
        if (action == QLatin1String("enable")) return result(m_engine.enableBackend(key));
        return result(m_engine.disableBackend(key));
    }
    return {404, errorBody(QStringLiteral("no such endpoint"))};
}

} // namespace corral
