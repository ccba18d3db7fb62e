// fetchDirect(): the affinity check's requests from this process, one connection each, framed
// by the proxy's own response reader (http::ResponseReader), so the check reads answers the way
// Corral's balancer would.

#include "affinity/AffinityCheck.h"

#include "http/HeaderText.h"
#include "http/ResponseReader.h"

#include <QDeadlineTimer>
#include <QHostAddress>
#include <QRandomGenerator>
#include <QSslSocket>
#include <QTcpSocket>

#include <memory>

namespace corral {
namespace {

// A head larger than this is refused (a hostile backend's 100 KB header): the check reads
// cookies and handshakes, never anything that size.
constexpr size_t MaxHeadBytes = 64 * 1024;
// More header fields than this: refused the same way. Generous (a site sets a few cookies)
// but bounded: the check looks at no more than 20 cookies anyway.
constexpr size_t MaxHeaderFields = 500;

QByteArray hostAndPort(const ProbeEndpoint &endpoint) {
    const QString address = endpoint.address.contains(QLatin1Char(':'))
                                ? QLatin1Char('[') + endpoint.address + QLatin1Char(']')
                                : endpoint.address;
    return address.toUtf8() + ':' + QByteArray::number(endpoint.port);
}

QString endpointName(const ProbeEndpoint &endpoint) {
    return endpoint.label.isEmpty() ? QString::fromUtf8(hostAndPort(endpoint)) : endpoint.label;
}

// Header values and targets come from the check itself, but a CR or LF in one would split the
// request: dropped rather than sent.
QByteArray headerSafe(const QByteArray &text) {
    QByteArray safe = text;
    safe.removeIf([](char c) { return c == '\r' || c == '\n' || c == '\0'; });
    return safe;
}

QByteArray requestBytes(const ProbeEndpoint &endpoint, const ProbeRequest &request) {
    QByteArray out;
    out += headerSafe(request.method.isEmpty() ? QByteArray("GET") : request.method);
    out += ' ';
    out += headerSafe(request.target.isEmpty() ? QByteArray("/") : request.target);
    out += " HTTP/1.1\r\nHost: ";
    out += headerSafe(request.host.isEmpty() ? hostAndPort(endpoint) : request.host);
    out += "\r\n";
    for (const auto &[name, value] : request.headers)
        out += headerSafe(name) + ": " + headerSafe(value) + "\r\n";
    if (request.upgradeWebSocket) {
        QByteArray key(16, Qt::Uninitialized);
        for (char &c : key)
            c = char(QRandomGenerator::global()->bounded(256));
        out += "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: " +
               key.toBase64() + "\r\n";
    } else {
        out += "Connection: close\r\n";
    }
    if (!request.body.isEmpty() || request.method == "POST" || request.method == "PUT")
        out += "Content-Length: " + QByteArray::number(request.body.size()) + "\r\n";
    out += "\r\n";
    out += request.body;
    return out;
}

int remainingMs(const QDeadlineTimer &deadline) {
    return int(qMax<qint64>(1, deadline.remainingTime()));
}

} // namespace

QList<QByteArray> ProbeResponse::setCookies() const {
    QList<QByteArray> values;
    for (const auto &[name, value] : headers)
        if (http::equalsIgnoreCase(std::string_view(name.constData(), size_t(name.size())),
                                   "set-cookie"))
            values.append(value);
    return values;
}

QByteArray ProbeResponse::header(const QByteArray &name) const {
    for (const auto &[field, value] : headers)
        if (http::equalsIgnoreCase(std::string_view(field.constData(), size_t(field.size())),
                                   std::string_view(name.constData(), size_t(name.size()))))
            return value;
    return {};
}

ProbeResponse fetchDirect(const ProbeEndpoint &endpoint, const ProbeRequest &request,
                          int timeoutMs) {
    ProbeResponse response;
    if (!endpoint.host.isEmpty()) {
        response.error = QStringLiteral("cannot reach %1 from this machine: it is on host %2")
                             .arg(endpointName(endpoint), endpoint.host);
        return response;
    }
    const QDeadlineTimer deadline(qMax(1, timeoutMs));
    std::unique_ptr<QTcpSocket> socket;
    if (endpoint.tls) {
        auto tls = std::make_unique<QSslSocket>();
        // The check asks a site's own listen address about sessions, not about its identity
        // (a local site's certificate is the dev CA's, a production one may name only the
        // public host): the certificate is not verified.
        tls->setPeerVerifyMode(QSslSocket::VerifyNone);
        tls->connectToHostEncrypted(endpoint.address, endpoint.port);
        socket = std::move(tls);
    } else {
        socket = std::make_unique<QTcpSocket>();
        socket->connectToHost(endpoint.address, endpoint.port);
    }
    if (!socket->waitForConnected(remainingMs(deadline))) {
        switch (socket->error()) {
        case QAbstractSocket::ConnectionRefusedError:
            response.error = QStringLiteral("connection refused");
            break;
        case QAbstractSocket::HostNotFoundError:
            response.error = QStringLiteral("host %1 not found").arg(endpoint.address);
            break;
        case QAbstractSocket::SocketTimeoutError:
            response.error = QStringLiteral("no connection within %1 ms").arg(timeoutMs);
            break;
        default:
            response.error = QStringLiteral("cannot connect: %1").arg(socket->errorString());
        }
        return response;
    }
    if (endpoint.tls &&
        !static_cast<QSslSocket *>(socket.get())->waitForEncrypted(remainingMs(deadline))) {
        response.error =
            socket->error() == QAbstractSocket::SocketTimeoutError
                ? QStringLiteral("no TLS handshake within %1 ms").arg(timeoutMs)
                : QStringLiteral("TLS handshake failed: %1").arg(socket->errorString());
        return response;
    }

    const QByteArray out = requestBytes(endpoint, request);
    socket->write(out);
    while (socket->bytesToWrite() > 0 && !deadline.hasExpired())
        if (!socket->waitForBytesWritten(remainingMs(deadline))) break;

    http::ResponseReader reader(MaxHeadBytes, MaxHeaderFields);
    reader.reset(request.method == "HEAD", request.upgradeWebSocket);
    bool bodyCut = false;
    reader.setObserver({
        [&response](const http::ResponseHead &head) {
            response.status = head.status;
            response.headers.reserve(qsizetype(head.headers.size()));
            for (const http::Header &field : head.headers)
                response.headers.append(
                    {QByteArray(field.name.data(), qsizetype(field.name.size())),
                     QByteArray(field.value.data(), qsizetype(field.value.size()))});
        },
        [&response, &bodyCut](const char *data, size_t size) {
            const qsizetype room = ProbeBodyLimit - response.body.size();
            if (qsizetype(size) > room) bodyCut = true;
            response.body.append(data, qMin(room, qsizetype(size)));
        },
    });

    const QString from = endpointName(endpoint);
    QByteArray pending;
    http::ResponseReader::Progress progress = http::ResponseReader::Progress::NeedMore;
    bool closed = false;
    qint64 received = 0;
    while (progress == http::ResponseReader::Progress::NeedMore && !bodyCut) {
        const QByteArray bytes = socket->readAll();
        if (!bytes.isEmpty()) {
            pending += bytes;
            received += bytes.size();
            size_t consumed = 0;
            progress = reader.feed(pending.constData(), size_t(pending.size()), consumed);
            pending.remove(0, qsizetype(consumed));
            continue;
        }
        if (closed) {
            progress = reader.endOfInput();
            break;
        }
        if (deadline.hasExpired()) break;
        if (!socket->waitForReadyRead(remainingMs(deadline))) {
            if (socket->state() != QAbstractSocket::ConnectedState ||
                socket->error() == QAbstractSocket::RemoteHostClosedError)
                closed = true; // read what is left, then tell the reader
            else if (deadline.hasExpired())
                break;
            else if (socket->error() != QAbstractSocket::SocketTimeoutError)
                closed = true; // a reset: the reader decides whether the answer was complete
        }
    }
    socket->abort(); // a body past the limit is not read on: the check never needs it

    if (progress == http::ResponseReader::Progress::Error) {
        response.status = 0;
        response.headers.clear();
        response.body.clear();
        if (closed && received == 0)
            response.error = QStringLiteral("connection closed without an answer");
        else if (closed && reader.status() != 0)
            response.error = QStringLiteral("answer from %1 cut short").arg(from);
        else
            response.error = QStringLiteral("malformed response from %1").arg(from);
    } else if (progress == http::ResponseReader::Progress::NeedMore && !bodyCut) {
        // Out of time: a head but no whole body is still an answer (its status stands, the body
        // is what came); no head at all is a long-poll held open, or a backend that hangs.
        response.timedOut = true;
        response.error = response.status != 0
                             ? QStringLiteral("answer not complete within %1 ms").arg(timeoutMs)
                             : QStringLiteral("no answer within %1 ms").arg(timeoutMs);
    }
    return response;
}

} // namespace corral
