#include "proxy/AdminClient.h"

#include "http/HttpParser.h"
#include "model/Backend.h"
#include "net/SocketAddress.h"

#include <QFile>
#include <QHostAddress>
#include <QJsonDocument>
#include <QScopeGuard>

#include <arpa/inet.h>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace corral {

static QString errnoText() {
    return QString::fromLocal8Bit(strerror(errno));
}

QString AdminEndpoint::toString() const {
    if (isUnix()) return QStringLiteral("unix:") + socketPath;
    return Endpoint{host, port}.toString();
}

Result<AdminEndpoint> AdminEndpoint::parse(const QString &spec) {
    AdminEndpoint endpoint;
    if (spec.isEmpty()) return endpoint;
    if (spec.startsWith(QLatin1String("unix:"))) {
        endpoint.socketPath = spec.mid(5);
        if (endpoint.socketPath.isEmpty() || !endpoint.socketPath.startsWith(QLatin1Char('/')))
            return fail(QStringLiteral("\"%1\": expected unix:/ABSOLUTE/PATH").arg(spec));
        if (endpoint.socketPath.toLocal8Bit().size() >= qsizetype(sizeof(sockaddr_un::sun_path)))
            return fail(QStringLiteral("\"%1\": a Unix socket path must be shorter than %2 bytes")
                            .arg(spec)
                            .arg(sizeof(sockaddr_un::sun_path)));
        return endpoint;
    }
    // Port 0 (ephemeral: tests, embedding) is fine here; Endpoint::parse wants 1..65535.
    const bool ephemeral = spec.endsWith(QLatin1String(":0"));
    auto parsed = Endpoint::parse(ephemeral ? spec.chopped(1) + QLatin1Char('1') : spec);
    if (!parsed) return fail(parsed.error());
    if (ephemeral) parsed->port = 0;
    const QHostAddress address(parsed->host);
    if (!address.isLoopback())
        return fail(QStringLiteral("%1 is not a loopback address (use unix:PATH or 127.0.0.1:PORT)")
                        .arg(parsed->host));
    endpoint.host = address.toString();
    endpoint.port = parsed->port;
    return endpoint;
}

Result<QString> adminRuntimeDirectory() {
    const QByteArray runtime = qgetenv("XDG_RUNTIME_DIR");
    const uid_t uid = ::geteuid();
    QByteArray directory;
    if (!runtime.isEmpty() && runtime.startsWith('/')) {
        directory = runtime + "/corral";
    } else {
        directory = "/tmp/corral-" + QByteArray::number(uid);
    }
    if (::mkdir(directory.constData(), 0700) != 0 && errno != EEXIST)
        return fail(QStringLiteral("cannot create %1: %2")
                        .arg(QString::fromLocal8Bit(directory), errnoText()));
    struct stat st {};
    if (::lstat(directory.constData(), &st) != 0)
        return fail(QStringLiteral("%1: %2").arg(QString::fromLocal8Bit(directory), errnoText()));
    if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077) != 0)
        return fail(QStringLiteral("%1 is not a private directory of this user (it must be a "
                                   "directory owned by uid %2 with mode 0700)")
                        .arg(QString::fromLocal8Bit(directory))
                        .arg(uid));
    return QString::fromLocal8Bit(directory);
}

QJsonObject AdminClient::Response::json() const {
    return QJsonDocument::fromJson(body).object();
}

AdminClient::AdminClient(AdminEndpoint endpoint, int timeoutMs)
    : m_endpoint(std::move(endpoint))
    , m_timeoutMs(timeoutMs) {}

Result<QByteArray> AdminClient::authorizationHeader() const {
    if (m_endpoint.isUnix()) return QByteArray();
    QFile file(m_endpoint.tokenFile);
    if (m_endpoint.tokenFile.isEmpty() || !file.open(QIODevice::ReadOnly))
        return fail(QStringLiteral("admin token file %1: %2")
                        .arg(m_endpoint.tokenFile, m_endpoint.tokenFile.isEmpty()
                                                       ? QStringLiteral("not given")
                                                       : file.errorString()));
    const QByteArray token = file.read(256).trimmed();
    if (token.isEmpty())
        return fail(QStringLiteral("admin token file %1 is empty").arg(m_endpoint.tokenFile));
    return QByteArray("Authorization: Bearer " + token + "\r\n");
}

Result<AdminClient::Response> AdminClient::call(const QByteArray &method, const QString &path,
                                                const QByteArray &body) const {
    auto authorization = authorizationHeader();
    if (!authorization) return fail(authorization.error());
    const QByteArray host = m_endpoint.isUnix()
                                ? QByteArrayLiteral("localhost")
                                : Endpoint{m_endpoint.host, m_endpoint.port}.toString().toUtf8();
    QByteArray request = method + ' ' + path.toUtf8() + " HTTP/1.1\r\nHost: " + host + "\r\n" +
                         authorization.value() + "Connection: close\r\n";
    if (!body.isEmpty() || method == "POST" || method == "PUT")
        request +=
            "Content-Type: application/json\r\nContent-Length: " + QByteArray::number(body.size()) +
            "\r\n";
    request += "\r\n" + body;
    return sendRaw(request);
}

Result<AdminClient::Response> AdminClient::sendRaw(const QByteArray &request) const {
    const QString where = m_endpoint.toString();
    sockaddr_storage address{};
    socklen_t length = 0;
    if (m_endpoint.isUnix()) {
        auto *un = reinterpret_cast<sockaddr_un *>(&address);
        un->sun_family = AF_UNIX;
        const QByteArray path = m_endpoint.socketPath.toLocal8Bit();
        if (size_t(path.size()) >= sizeof un->sun_path)
            return fail(QStringLiteral("admin socket path %1 is too long").arg(where));
        std::memcpy(un->sun_path, path.constData(), size_t(path.size()));
        length = socklen_t(offsetof(sockaddr_un, sun_path) + size_t(path.size()) + 1);
    } else {
        length = net::ipSocketAddress(QHostAddress(m_endpoint.host), m_endpoint.port, address);
    }
    const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(QStringLiteral("admin API %1: socket: %2").arg(where, errnoText()));
    const auto closeFd = qScopeGuard([fd] { ::close(fd); });
    const timeval tv{m_timeoutMs / 1000, (m_timeoutMs % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&address), length) != 0)
        return fail(QStringLiteral("admin API %1: %2").arg(where, errnoText()));
    for (qsizetype sent = 0; sent < request.size();) {
        const ssize_t n =
            ::send(fd, request.constData() + sent, size_t(request.size() - sent), MSG_NOSIGNAL);
        if (n <= 0) return fail(QStringLiteral("admin API %1: send: %2").arg(where, errnoText()));
        sent += n;
    }
    // The server closes after its answer; read up to that, bounded.
    QByteArray received;
    char buffer[8192];
    while (received.size() < 16 * 1024 * 1024) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ECONNRESET && !received.isEmpty()) break;
            return fail(QStringLiteral("admin API %1: no answer: %2").arg(where, errnoText()));
        }
        received.append(buffer, n);
    }
    http::HeadScanner scanner;
    const long headLength = scanner.scan(received.constData(), size_t(received.size()));
    http::ResponseHead head;
    if (headLength <= 0 ||
        http::parseResponse(received.constData(), size_t(headLength), false, 100, head) != 0)
        return fail(QStringLiteral("admin API %1: malformed answer").arg(where));
    Response response;
    response.status = head.status;
    response.body = received.mid(headLength);
    if (head.body == http::BodyKind::Length) response.body.truncate(qsizetype(head.contentLength));
    return response;
}

} // namespace corral
