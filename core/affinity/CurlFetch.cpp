#include "affinity/CurlFetch.h"

#include "http/HeaderText.h"
#include "http/HttpParser.h"
#include "model/Backend.h"
#include "model/FieldText.h"
#include "ssh/HostSessions.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QHash>
#include <QRandomGenerator>

#include <memory>

namespace corral {
namespace {

// As fetchDirect(): a head with more fields, or longer than this, is refused as malformed.
constexpr size_t MaxHeaderFields = 500;
constexpr qsizetype MaxHeadBytes = 64 * 1024;
// curl ends by itself at --max-time; the SSH command gets this much more before it is
// abandoned (a session that stalls).
constexpr int SshSlackMs = 10000;
// What is read of curl's output on the host, at most: one head and a body at their limits,
// and room for interim heads (100 Continue) before them. The rest is not read.
constexpr qsizetype OutputLimit = MaxHeadBytes + ProbeBodyLimit + 16 * 1024;
// curl's exit status, written to stderr after it ends: the pipe through head(1) has head's.
constexpr char ExitMarker[] = "corral-curl-exit:";

// curlProbeCommand()'s argv run on the host with its output cut at OutputLimit, and curl's
// exit status reported on stderr (the arguments reach curl as "$@", quoted by shellCommand()).
// For exec(), which collects all of stdout; not for a streamed read, which stops reading at
// OutputLimit itself: head(1) holds its output in stdio buffers until it ends, which would
// delay an upgrade's 101 until curl's --max-time.
QString limitedCommand(const QStringList &argv) {
    const QString script = QStringLiteral("{ \"$@\"; echo %1$? >&2; } | head -c %2")
                               .arg(QLatin1String(ExitMarker))
                               .arg(OutputLimit);
    return shellCommand(
        QStringList{QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh")} +
        argv);
}

// curl's exit status from limitedCommand()'s stderr (taken off it); `fallback` (the
// command's own) when curl never ended (killed).
int takeExitStatus(QByteArray &stdErr, int fallback) {
    const qsizetype at = stdErr.lastIndexOf(ExitMarker);
    if (at < 0) return fallback;
    bool ok = false;
    const int status = stdErr.mid(at + qsizetype(sizeof ExitMarker) - 1).trimmed().toInt(&ok);
    stdErr.truncate(at);
    return ok ? status : fallback;
}

QString hostAndPort(const QString &address, quint16 port) {
    return Endpoint{address, port}.toString();
}

// Header fields and targets come from the check itself, but a CR or LF in one would split the
// request (curl sends a -H value as given): dropped, as fetchDirect() does.
QString fieldSafe(const QByteArray &text) {
    QByteArray safe = text;
    safe.removeIf([](char c) { return c == '\r' || c == '\n' || c == '\0'; });
    return QString::fromLatin1(safe);
}

// The target as curl must be given it inside a URL: bytes a URL cannot hold (controls, space,
// non-ASCII, '#') percent-encoded, so that --path-as-is sends it as the check wrote it.
QString urlTarget(const QByteArray &target) {
    QByteArray text = target.isEmpty() ? QByteArray("/") : target;
    if (!text.startsWith('/')) text.prepend('/');
    QByteArray out;
    for (char c : std::as_const(text)) {
        const auto byte = uchar(c);
        if (byte <= 0x20 || byte >= 0x7f || c == '#')
            out += '%' + QByteArray::number(byte, 16).rightJustified(2, '0').toUpper();
        else
            out += c;
    }
    return QString::fromLatin1(out);
}

bool hasHeader(const ProbeRequest &request, const char *name) {
    for (const auto &[field, value] : request.headers)
        if (http::equalsIgnoreCase(std::string_view(field.constData(), size_t(field.size())), name))
            return true;
    return false;
}

bool sendsBody(const ProbeRequest &request) {
    return !request.body.isEmpty() || request.method == "POST" || request.method == "PUT";
}

QString endpointName(const ProbeEndpoint &endpoint) {
    return endpoint.label.isEmpty() ? hostAndPort(endpoint.address, endpoint.port) : endpoint.label;
}

QString curlMessage(const QByteArray &stdErr) {
    QString text = escapeControls(QString::fromUtf8(stdErr).trimmed());
    if (text.startsWith(QLatin1String("curl: "))) text = text.mid(6);
    return text.left(300);
}

} // namespace

QStringList curlProbeCommand(const ProbeEndpoint &endpoint, const ProbeRequest &request,
                             int timeoutMs) {
    // -q first: no ~/.curlrc of the host's user changes the request; no proxy either.
    QStringList argv{QStringLiteral("curl"),
                     QStringLiteral("-q"),
                     QStringLiteral("-sS"),
                     QStringLiteral("--http1.1"),
                     QStringLiteral("--path-as-is"),
                     QStringLiteral("--noproxy"),
                     QStringLiteral("*"),
                     QStringLiteral("--max-time"),
                     QString::number(qMax(1, timeoutMs) / 1000.0, 'f', 3)};
    const QByteArray method = request.method.isEmpty() ? QByteArray("GET") : request.method;
    if (method == "HEAD")
        argv << QStringLiteral("--head"); // -D - would print the head twice
    else
        argv << QStringLiteral("-D") << QStringLiteral("-");
    if (method != "GET" && method != "HEAD") argv << QStringLiteral("-X") << fieldSafe(method);

    const QString target = urlTarget(request.target);
    const QString host = fieldSafe(request.host);
    QString url;
    if (endpoint.tls) {
        // Not verified (see fetchDirect()); the name asked for goes in SNI as in Host, since
        // a balancer picks its certificate and server by it: named in the URL, connected to
        // the endpoint's address.
        argv << QStringLiteral("-k");
        if (!host.isEmpty() && isHostNameOrAddress(host) && !isIpAddress(host)) {
            argv << QStringLiteral("--connect-to")
                 << QStringLiteral("%1:%2:%3")
                        .arg(host)
                        .arg(endpoint.port)
                        .arg(hostAndPort(endpoint.address, endpoint.port));
            url = QStringLiteral("https://%1%2").arg(hostAndPort(host, endpoint.port), target);
        }
    }
    if (url.isEmpty()) {
        url = (endpoint.tls ? QStringLiteral("https://") : QStringLiteral("http://")) +
              hostAndPort(endpoint.address, endpoint.port) + target;
        if (!host.isEmpty()) argv << QStringLiteral("-H") << QStringLiteral("Host: ") + host;
    }

    // What fetchDirect() sends and nothing curl would add: no Accept, User-Agent or Expect,
    // and no form Content-Type for a body the check did not type.
    for (const char *name : {"Accept", "User-Agent", "Expect"})
        if (!hasHeader(request, name)) argv << QStringLiteral("-H") << QLatin1String(name) + u':';
    for (const auto &[name, value] : request.headers) {
        const QString field = fieldSafe(name).remove(u':').trimmed();
        if (field.isEmpty()) continue;
        // "Name;" is curl's way to send a header with an empty value.
        argv << QStringLiteral("-H")
             << (value.isEmpty() ? QString(field + u';')
                                 : QString(field + QStringLiteral(": ") + fieldSafe(value)));
    }
    if (request.upgradeWebSocket) {
        QByteArray key(16, Qt::Uninitialized);
        for (char &c : key)
            c = char(QRandomGenerator::global()->bounded(256));
        argv << QStringLiteral("-H") << QStringLiteral("Connection: Upgrade")
             << QStringLiteral("-H") << QStringLiteral("Upgrade: websocket") << QStringLiteral("-H")
             << QStringLiteral("Sec-WebSocket-Version: 13") << QStringLiteral("-H")
             << QStringLiteral("Sec-WebSocket-Key: ") + QString::fromLatin1(key.toBase64());
    } else {
        argv << QStringLiteral("-H") << QStringLiteral("Connection: close");
    }
    if (sendsBody(request)) {
        if (!hasHeader(request, "Content-Type"))
            argv << QStringLiteral("-H") << QStringLiteral("Content-Type:");
        argv << QStringLiteral("--data-binary") << QStringLiteral("@-"); // from stdin
    }
    return argv << QStringLiteral("--") << url;
}

ProbeResponse parseCurlProbe(const QByteArray &output, int exitStatus, const QByteArray &stdErr,
                             bool complete, const ProbeRequest &request, int timeoutMs) {
    ProbeResponse response;
    const bool wasHead = request.method == "HEAD";
    // The heads curl printed: 100 Continue and other interim ones before the answer.
    qsizetype at = 0;
    bool malformed = false;
    for (;;) {
        http::HeadScanner scanner;
        const qsizetype rest = output.size() - at;
        const long length = scanner.scan(output.constData() + at, size_t(rest));
        // A head longer than fetchDirect() takes is refused as it refuses it: malformed.
        if (length > MaxHeadBytes || (length == 0 && rest > MaxHeadBytes)) {
            response = {};
            response.error = QStringLiteral("malformed response");
            return response;
        }
        if (length <= 0) {
            malformed = length < 0;
            break;
        }
        http::ResponseHead head;
        const int parsed = http::parseResponse(output.constData() + at, size_t(length), wasHead,
                                               MaxHeaderFields, head);
        // A transfer coding other than chunked alone was decoded by curl: the head stands.
        if (parsed != 0 && parsed != http::ResponseUnsupportedCoding) {
            malformed = true;
            break;
        }
        at += length;
        if (head.status >= 100 && head.status < 200 && head.status != 101) continue;
        response.status = head.status;
        response.headers.reserve(qsizetype(head.headers.size()));
        for (const http::Header &field : head.headers)
            response.headers.append(
                {QByteArray(field.name.data(), qsizetype(field.name.size())),
                 QByteArray(field.value.data(), qsizetype(field.value.size()))});
        // curl has taken the body's framing off (chunks) already.
        if (head.status != 101) response.body = output.mid(at, ProbeBodyLimit);
        break;
    }
    // A 101 is the whole answer to an upgrade, whatever curl did with the stream after it;
    // so is an answer read up to the body limit and left there.
    if (response.status == 101 || (response.status != 0 && !complete)) return response;
    if (!complete) {
        response = {};
        response.error = QStringLiteral("malformed response");
        return response;
    }

    const QString message = curlMessage(stdErr);
    switch (exitStatus) {
    case 0:
        if (response.status == 0) {
            response.error = QStringLiteral("malformed response");
            if (!malformed && output.isEmpty())
                response.error = QStringLiteral("connection closed without an answer");
        }
        return response;
    case 28:
        // Connecting (or resolving) ran out of time: nobody was there. Otherwise connected,
        // and the answer (or all of it) did not come: a long-poll held open, or a hang.
        if (message.contains(QLatin1String("Connection timed out")) ||
            message.contains(QLatin1String("Resolving timed out"))) {
            response = {};
            response.error = QStringLiteral("no connection within %1 ms").arg(timeoutMs);
            return response;
        }
        response.timedOut = true;
        response.error = response.status != 0
                             ? QStringLiteral("answer not complete within %1 ms").arg(timeoutMs)
                             : QStringLiteral("no answer within %1 ms").arg(timeoutMs);
        return response;
    default:
        break;
    }
    // Anything else is a failure, whatever part of a head came.
    response = {};
    switch (exitStatus) {
    case 6:
        response.error = QStringLiteral("host not found (%1)").arg(message);
        break;
    case 7:
        response.error = message.contains(QLatin1String("Connection refused"))
                             ? QStringLiteral("connection refused")
                             : QStringLiteral("cannot connect: ") + message;
        break;
    case 8:
        response.error = QStringLiteral("malformed response");
        break;
    case 35:
        response.error = QStringLiteral("TLS handshake failed: ") + message;
        break;
    case 52:
        response.error = QStringLiteral("connection closed without an answer");
        break;
    case 56:
        response.error = QStringLiteral("answer cut short: ") + message;
        break;
    case 127:
        response.error = QStringLiteral("curl is not installed on the host");
        break;
    default:
        response.error = QStringLiteral("curl failed (exit status %1): %2")
                             .arg(exitStatus)
                             .arg(message.isEmpty() ? QStringLiteral("no message") : message);
    }
    return response;
}

ProbeFetch curlFetch(HostSessions &sessions, const std::atomic<bool> *cancel) {
    // Hosts whose SSH link stalled once in this check: every later request to them would
    // wait as long again (tens of requests), so they fail at once, saying why.
    auto stalled = std::make_shared<QHash<QString, QString>>();
    return [&sessions, cancel, stalled](const ProbeEndpoint &endpoint, const ProbeRequest &request,
                                        int timeoutMs) -> ProbeResponse {
        ProbeResponse response;
        if (endpoint.host.isEmpty()) {
            response.error =
                QStringLiteral("%1: no host to run curl on").arg(endpointName(endpoint));
            return response;
        }
        if (cancel && cancel->load()) {
            response.error = QStringLiteral("not asked: the check was stopped");
            return response;
        }
        if (const auto found = stalled->constFind(endpoint.host); found != stalled->cend()) {
            response.error = found.value();
            return response;
        }
        auto session = sessions.session(endpoint.host);
        if (!session) {
            response.error = session.error();
            return response;
        }
        const QStringList argv = curlProbeCommand(endpoint, request, timeoutMs);
        const auto prefixed = [&endpoint](ProbeResponse answer) {
            if (answer.error == QLatin1String("curl is not installed on the host"))
                answer.error = QStringLiteral("curl is not installed on %1").arg(endpoint.host);
            return answer;
        };
        // curl ends by itself at --max-time; over a stalled link even its end never comes,
        // so the SSH command has a deadline of its own (exec() and stream() alike).
        const int deadlineMs = timeoutMs + SshSlackMs;
        const auto failed = [&](const QString &error, SshFailure kind) {
            ProbeResponse failure;
            failure.error = error;
            if (kind == SshFailure::Timeout) {
                failure.error = QStringLiteral("no answer from %1 over SSH within %2 ms (curl's "
                                               "--max-time %3 ms): the host or link stalled")
                                    .arg(endpoint.host)
                                    .arg(deadlineMs)
                                    .arg(timeoutMs);
                stalled->insert(endpoint.host, failure.error);
            }
            return failure;
        };
        if (sendsBody(request)) {
            auto ran = session.value()->exec(limitedCommand(argv), deadlineMs, request.body);
            if (!ran) return failed(ran.error(), session.value()->lastFailure());
            QByteArray stdErr = ran->stdErr;
            const int status = takeExitStatus(stdErr, ran->exitStatus);
            return prefixed(parseCurlProbe(ran->stdOut, status, stdErr,
                                           ran->stdOut.size() < OutputLimit, request, timeoutMs));
        }
        // Read as it comes, so that an upgrade's 101 (after which the connection stays open
        // until curl's --max-time) ends the read at once, and so does output past the limit
        // (the channel closed: the rest is not read).
        QByteArray output;
        bool enough = false;
        auto streamed = session.value()->stream(
            shellCommand(argv),
            [&](const QByteArray &chunk) {
                output += chunk;
                http::HeadScanner scanner;
                const long length = scanner.scan(output.constData(), size_t(output.size()));
                if (length > 0 && request.upgradeWebSocket &&
                    http::statusOf(std::string_view(output.constData(), 12)) == 101)
                    enough = true;
                if (output.size() >= OutputLimit) enough = true;
                return !enough;
            },
            cancel, deadlineMs);
        if (!streamed) return failed(streamed.error(), session.value()->lastFailure());
        if (cancel && cancel->load() && !enough) {
            response.error = QStringLiteral("not asked: the check was stopped");
            return response;
        }
        return prefixed(parseCurlProbe(output, streamed->exitStatus, streamed->stdErr, !enough,
                                       request, timeoutMs));
    };
}

} // namespace corral
