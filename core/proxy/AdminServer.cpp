#include "proxy/AdminServer.h"

#include "proxy/ProxyEngine.h"

#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QUrl>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corral {

AdminServer::AdminServer(ProxyEngine &engine)
    : m_engine(engine) {}

AdminServer::~AdminServer() {
    stop();
}

Result<void> AdminServer::start(const QString &address, quint16 port) {
    const QHostAddress host(address);
    if (!host.isLoopback())
        return fail(QStringLiteral("admin address %1 is not a loopback address").arg(address));
    const bool v6 = host.protocol() == QAbstractSocket::IPv6Protocol;
    m_listenFd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listenFd < 0) return fail(QStringLiteral("admin socket: %1").arg(strerror(errno)));
    const int one = 1;
    setsockopt(m_listenFd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage addr{};
    socklen_t length;
    if (v6) {
        auto *a = reinterpret_cast<sockaddr_in6 *>(&addr);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        const Q_IPV6ADDR raw = host.toIPv6Address();
        std::memcpy(&a->sin6_addr, &raw, 16);
        length = sizeof *a;
    } else {
        auto *a = reinterpret_cast<sockaddr_in *>(&addr);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(host.toIPv4Address());
        length = sizeof *a;
    }
    if (::bind(m_listenFd, reinterpret_cast<sockaddr *>(&addr), length) != 0 ||
        ::listen(m_listenFd, 64) != 0) {
        const QString why = QString::fromLocal8Bit(strerror(errno));
        ::close(m_listenFd);
        m_listenFd = -1;
        return fail(
            QStringLiteral("cannot listen on admin %1:%2: %3").arg(address).arg(port).arg(why));
    }
    socklen_t len = sizeof addr;
    getsockname(m_listenFd, reinterpret_cast<sockaddr *>(&addr), &len);
    m_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port
                      : reinterpret_cast<sockaddr_in *>(&addr)->sin_port);
    m_wakeFd = eventfd(0, EFD_CLOEXEC);
    m_stop = false;
    m_thread = std::thread([this] { run(); });
    return {};
}

void AdminServer::stop() {
    if (!m_thread.joinable()) return;
    m_stop = true;
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(m_wakeFd, &one, sizeof one);
    m_thread.join();
    ::close(m_listenFd);
    ::close(m_wakeFd);
    m_listenFd = m_wakeFd = -1;
}

void AdminServer::run() {
    while (!m_stop) {
        pollfd fds[2] = {{m_listenFd, POLLIN, 0}, {m_wakeFd, POLLIN, 0}};
        if (::poll(fds, 2, -1) <= 0) continue;
        if (fds[1].revents) break;
        const int fd = ::accept4(m_listenFd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve(fd);
        ::close(fd);
    }
}

void AdminServer::serve(int fd) {
    // One request per connection, bounded in size and time.
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    QByteArray data;
    qsizetype headEnd = -1;
    qsizetype contentLength = 0;
    char buf[4096];
    while (data.size() < 65536) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        data.append(buf, n);
        if (headEnd < 0) {
            headEnd = data.indexOf("\r\n\r\n");
            if (headEnd >= 0) {
                for (const QByteArray &line : data.left(headEnd).split('\n')) {
                    const QByteArray l = line.trimmed();
                    if (l.toLower().startsWith("content-length:"))
                        contentLength = l.mid(15).trimmed().toLongLong();
                }
            }
        }
        if (headEnd >= 0 && data.size() >= headEnd + 4 + contentLength) break;
    }
    if (headEnd < 0) return;
    const QList<QByteArray> requestLine = data.left(data.indexOf("\r\n")).split(' ');
    Reply reply;
    if (requestLine.size() != 3)
        reply = {400, R"({"error":"bad request"})"};
    else
        reply = handle(requestLine[0], requestLine[1], data.mid(headEnd + 4, contentLength));
    QByteArray response = "HTTP/1.1 " + QByteArray::number(reply.status) +
                          (reply.status < 300 ? " OK" : " Error") +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          QByteArray::number(reply.body.size() + 1) +
                          "\r\nConnection: close\r\n\r\n" + reply.body + "\n";
    [[maybe_unused]] const ssize_t n =
        ::send(fd, response.constData(), size_t(response.size()), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
}

static QByteArray errorBody(const QString &message) {
    QJsonObject o;
    o.insert(QStringLiteral("error"), message);
    return QJsonDocument(o).toJson(QJsonDocument::Compact);
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
