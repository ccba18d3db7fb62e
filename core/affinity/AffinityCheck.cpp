#include "affinity/AffinityCheck.h"

#include "model/FieldText.h"
#include "ssh/ShellQuote.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonParseError>
#include <QLocale>
#include <QRandomGenerator>
#include <QTimeZone>
#include <QUrl>

namespace corral {
namespace {

// Bounds against a hostile or broken backend: cookies looked at per answer, characters of any
// text from it kept in the evidence.
constexpr int MaxCookies = 20;
constexpr int MaxAnswerChars = 300;
constexpr int MaxBodyChars = 200;
constexpr int MaxCookieValueChars = 40;
// Requests through the balancer that must all stay on one worker for stickiness to count as
// verified.
constexpr int StickyRounds = 20;
// sockjs-node forgets an xhr session disconnect_delay (5 s) after its opening poll ended, and a
// message (xhr_send) does not restart that clock: a 404 to a message sent later than this after
// the session was opened may be the session's end, not another worker.
constexpr qint64 SockJsSessionWindowMs = 4000;

struct Cookie {
    QByteArray name;
    QByteArray value;
};

/// Text from a backend for the evidence: control characters escaped, at most `limit` chars.
QString shownText(const QByteArray &bytes, int limit = MaxAnswerChars) {
    const QString text = QString::fromUtf8(bytes.left(limit * 4));
    QString escaped = escapeControls(text.left(limit));
    if (text.size() > limit || escaped.size() > limit) {
        escaped.truncate(limit);
        escaped += QStringLiteral("…");
    }
    return escaped;
}

QString shownValue(const QByteArray &value) {
    return shownText(value, MaxCookieValueChars);
}

// An Expires date as servers write them: "Thu, 01 Jan 1970 00:00:00 GMT" (RFC 1123, which Qt's
// RFC 2822 parser does not take with "GMT"), or the old "Thu, 01-Jan-1970 00:00:00 GMT".
QDateTime cookieDate(const QByteArray &value) {
    QString text = QString::fromLatin1(value).simplified();
    if (text.endsWith(QLatin1String(" GMT")) || text.endsWith(QLatin1String(" UTC"))) text.chop(4);
    text.replace(QLatin1Char('-'), QLatin1Char(' '));
    for (const QString &format :
         {QStringLiteral("ddd, dd MMM yyyy hh:mm:ss"), QStringLiteral("ddd, d MMM yyyy hh:mm:ss"),
          QStringLiteral("ddd, dd MMM yy hh:mm:ss")}) {
        QDateTime when = QLocale::c().toDateTime(text, format);
        if (when.isValid()) {
            when.setTimeZone(QTimeZone::utc());
            return when;
        }
    }
    return QDateTime::fromString(QString::fromLatin1(value), Qt::RFC2822Date);
}

// A Set-Cookie that deletes the cookie (Max-Age=0 or an Expires in the past) sets no session.
bool isExpired(const QList<QByteArray> &attributes) {
    for (const QByteArray &attribute : attributes) {
        const qsizetype eq = attribute.indexOf('=');
        if (eq < 0) continue;
        const QByteArray name = attribute.left(eq).trimmed().toLower();
        const QByteArray value = attribute.mid(eq + 1).trimmed();
        if (name == "max-age") {
            bool ok = false;
            const qlonglong seconds = value.toLongLong(&ok);
            if (ok && seconds <= 0) return true;
        } else if (name == "expires") {
            const QDateTime when = cookieDate(value);
            if (when.isValid() && when < QDateTime::currentDateTimeUtc()) return true;
        }
    }
    return false;
}

/// The cookies an answer sets (name=value before the first ';'), the first MaxCookies distinct
/// names; deleted ones left out.
QList<Cookie> cookiesSet(const ProbeResponse &response) {
    QList<Cookie> cookies;
    for (const QByteArray &header : response.setCookies()) {
        if (cookies.size() >= MaxCookies) break;
        QList<QByteArray> parts = header.split(';');
        const QByteArray pair = parts.takeFirst();
        const qsizetype eq = pair.indexOf('=');
        if (eq <= 0) continue;
        const QByteArray name = pair.left(eq).trimmed();
        if (name.isEmpty() || isExpired(parts)) continue;
        const bool seen = std::any_of(cookies.cbegin(), cookies.cend(),
                                      [&](const Cookie &c) { return c.name == name; });
        if (!seen) cookies.append({name, pair.mid(eq + 1).trimmed()});
    }
    return cookies;
}

std::optional<QByteArray> cookieValue(const QList<Cookie> &cookies, const QByteArray &name) {
    for (const Cookie &cookie : cookies)
        if (cookie.name == name) return cookie.value;
    return std::nullopt;
}

/// What a browser would hold: the latest value of each cookie (at most MaxCookies).
class CookieJar {
public:
    void take(const ProbeResponse &response) {
        for (const Cookie &cookie : cookiesSet(response)) {
            auto it = std::find_if(m_cookies.begin(), m_cookies.end(),
                                   [&](const Cookie &c) { return c.name == cookie.name; });
            if (it != m_cookies.end())
                it->value = cookie.value;
            else if (m_cookies.size() < MaxCookies)
                m_cookies.append(cookie);
        }
    }
    std::optional<QByteArray> value(const QByteArray &name) const {
        return cookieValue(m_cookies, name);
    }
    QByteArray header() const {
        QByteArray text;
        for (const Cookie &cookie : m_cookies) {
            if (!text.isEmpty()) text += "; ";
            text += cookie.name + '=' + cookie.value;
        }
        return text;
    }
    void addTo(ProbeRequest &request) const {
        if (!m_cookies.isEmpty()) request.headers.append({QByteArray("Cookie"), header()});
    }
    bool isEmpty() const { return m_cookies.isEmpty(); }

private:
    QList<Cookie> m_cookies;
};

/// What an answer said, for the evidence: the cookies it set, else its body's start.
QString defaultAnswer(const ProbeResponse &response) {
    if (response.status == 0) return response.error;
    const QList<Cookie> cookies = cookiesSet(response);
    QStringList parts;
    if (!cookies.isEmpty()) {
        QStringList set;
        for (const Cookie &cookie : cookies)
            set.append(shownText(cookie.name, 60) + QLatin1Char('=') + shownValue(cookie.value));
        parts.append(QStringLiteral("Set-Cookie: ") + set.join(QStringLiteral(", ")));
    }
    if (!response.body.isEmpty()) parts.append(shownText(response.body, MaxBodyChars));
    if (!response.error.isEmpty()) parts.append(response.error);
    QString answer = parts.join(QStringLiteral(" | "));
    if (answer.isEmpty()) answer = QStringLiteral("(no body)");
    if (answer.size() > MaxAnswerChars) answer = answer.left(MaxAnswerChars) + QStringLiteral("…");
    return answer;
}

QString describeRequest(const ProbeRequest &request) {
    QString text =
        QString::fromLatin1(request.method) + QLatin1Char(' ') + shownText(request.target, 200);
    for (const auto &[name, value] : request.headers)
        if (name.compare("cookie", Qt::CaseInsensitive) == 0)
            text += QStringLiteral(" Cookie: ") + shownText(value, 200);
    if (request.upgradeWebSocket) text += QStringLiteral(" (Upgrade: websocket)");
    if (!request.body.isEmpty()) text += QStringLiteral(" body: ") + shownText(request.body, 60);
    return text;
}

bool isSticky(const QString &policy) {
    return policy == QLatin1String("sticky-cookie") || policy == QLatin1String("ip-hash");
}

/// The JSON object in an engine.io handshake body (EIO 4: `0{...}`, packets separated by
/// 0x1e; EIO 3: length-prefixed, `96:0{...}`); nullopt when it is not one. `protocol` is set to
/// the revision the framing shows (an engine.io 3 server answers every EIO in its own).
std::optional<QJsonObject> engineIoHandshake(const QByteArray &body, int *protocol = nullptr) {
    QByteArray packet = body;
    if (protocol) *protocol = 4;
    const qsizetype colon = body.indexOf(':');
    if (colon > 0 && colon <= 10 && std::all_of(body.cbegin(), body.cbegin() + colon, [](char c) {
            return c >= '0' && c <= '9';
        })) {
        packet = body.mid(colon + 1, body.left(colon).toLongLong());
        if (protocol) *protocol = 3;
    } else {
        const qsizetype separator = body.indexOf('\x1e');
        if (separator >= 0) packet = body.left(separator);
    }
    if (!packet.startsWith("0{")) return std::nullopt;
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(packet.mid(1), &error);
    if (error.error != QJsonParseError::NoError || !document.isObject()) return std::nullopt;
    const QJsonObject object = document.object();
    if (!object.value(QLatin1String("sid")).isString()) return std::nullopt;
    return object;
}

/// engine.io's error answer: {"code":N,"message":"..."}.
struct EngineIoError {
    int code = -1;
    QString message;
};
std::optional<EngineIoError> engineIoError(const ProbeResponse &response) {
    const QJsonDocument document = QJsonDocument::fromJson(response.body);
    if (!document.isObject()) return std::nullopt;
    const QJsonObject object = document.object();
    if (!object.value(QLatin1String("code")).isDouble()) return std::nullopt;
    return EngineIoError{object.value(QLatin1String("code")).toInt(),
                         object.value(QLatin1String("message")).toString()};
}

/// A POST of a packet an engine.io server takes silently to session `target` (its query has the
/// sid): EIO 4's client answers pings with pong ("3"), EIO 3's client sends pings ("2",
/// length-prefixed in its payload encoding). `spoken`: the revision the server answered in.
ProbeRequest engineIoPost(const QByteArray &target, int spoken, const CookieJar *jar) {
    ProbeRequest post;
    post.method = "POST";
    post.target = target;
    if (jar) jar->addTo(post);
    post.headers.append({QByteArray("Content-Type"), QByteArray("text/plain;charset=UTF-8")});
    post.body = spoken == 4 ? QByteArray("3") : QByteArray("1:2");
    return post;
}

class Check {
public:
    Check(const AffinityTarget &target, const ProbeFetch &fetch)
        : m_target(target)
        , m_fetch(fetch) {}

    AffinityReport run(bool production);

private:
    ProbeResponse send(const ProbeEndpoint &endpoint, ProbeRequest request,
                       QList<AffinityExchange> &evidence, int timeoutMs = 0) {
        if (request.host.isEmpty()) request.host = m_target.hostHeader;
        ProbeResponse response =
            m_fetch(endpoint, request, timeoutMs > 0 ? timeoutMs : m_target.timeoutMs);
        if (response.body.size() > ProbeBodyLimit) response.body.truncate(ProbeBodyLimit);
        // A remote fetch's error may quote what a host printed: escaped and bounded like answers.
        response.error = shownText(response.error.toUtf8());
        evidence.append(
            {endpoint.label, describeRequest(request), response.status, defaultAnswer(response)});
        return response;
    }
    static ProbeRequest get(const QByteArray &target, const CookieJar *jar = nullptr) {
        ProbeRequest request;
        request.target = target;
        if (jar) jar->addTo(request);
        return request;
    }

    bool pickWorkers();
    /// `first`: A's answer to GET `path` already got (pickWorkers'), else it is asked for.
    void checkHttpSessions(const QString &path,
                           const std::optional<std::pair<ProbeResponse, AffinityExchange>> &first);
    void verifyHttpStickiness(AffinityFinding &finding, const QString &path);
    bool checkSocketIo();
    bool checkSockJs();
    void verifySocketIo(AffinityFinding &finding, int eio, int spoken);
    void verifySockJs(AffinityFinding &finding);
    /// The verdict of StickyRounds messages to one `transport` session through the balancer:
    /// `unknown` reached a worker that did not know the session, `failed` got no answer.
    /// `expired`: messages not counted because the session may have ended by then.
    void judgeStickyRounds(AffinityFinding &finding, const QString &transport, int unknown,
                           int failed, int expired = 0) const;
    void perWorker(AffinityFinding &finding, const QString &what);

    const AffinityTarget &m_target;
    const ProbeFetch &m_fetch;
    ProbeEndpoint m_a;
    ProbeEndpoint m_b;
    QString m_pickError;
    QList<AffinityFinding> m_findings;
    /// A's answer to pickWorkers' GET, and its exchange: the HTTP check's first request (asking
    /// again would make an app with a memory store keep one more session per check).
    std::optional<std::pair<ProbeResponse, AffinityExchange>> m_firstOfA;
};

bool Check::pickWorkers() {
    const QByteArray first =
        m_target.paths.isEmpty() ? QByteArray("/") : m_target.paths.first().toUtf8();
    QList<ProbeEndpoint> answering;
    QStringList failures;
    for (const ProbeEndpoint &worker : m_target.workers) {
        if (answering.size() == 2) break;
        QList<AffinityExchange> exchanges;
        const ProbeResponse response = send(worker, get(first), exchanges);
        if (response.status != 0) {
            if (answering.isEmpty()) m_firstOfA = {response, exchanges.constFirst()};
            answering.append(worker);
        } else {
            failures.append(worker.label + QStringLiteral(": ") + response.error);
        }
    }
    if (answering.size() < 2) {
        m_pickError = QStringLiteral("fewer than two workers answer GET %1 (%2 of %3)")
                          .arg(shownText(first, 200))
                          .arg(answering.size())
                          .arg(m_target.workers.size());
        if (!failures.isEmpty())
            m_pickError += QStringLiteral(": ") + failures.join(QStringLiteral("; "));
        return false;
    }
    m_a = answering[0];
    m_b = answering[1];
    return true;
}

// Direct to the workers: A's cookies, sent back to A (does A keep them?) and to B (does B
// know them?).
void Check::checkHttpSessions(
    const QString &path, const std::optional<std::pair<ProbeResponse, AffinityExchange>> &known) {
    const QByteArray target = path.toUtf8();
    AffinityFinding base;
    base.kind = QStringLiteral("http-session");
    base.path = path;
    ProbeResponse first;
    if (known) {
        first = known->first;
        base.evidence.append(known->second);
    } else {
        first = send(m_a, get(target), base.evidence);
    }
    if (first.status == 0) {
        base.verdict = AffinityVerdict::Inconclusive;
        base.summary = QStringLiteral("%1 did not answer GET %2: %3")
                           .arg(m_a.label, shownText(target, 200), first.error);
        m_findings.append(base);
        return;
    }
    const QList<Cookie> cookies = cookiesSet(first);
    if (cookies.isEmpty()) {
        base.verdict = AffinityVerdict::Stateless;
        base.summary =
            QStringLiteral("%1 set no cookie on GET %2").arg(m_a.label, shownText(target, 200));
        m_findings.append(base);
        return;
    }
    CookieJar jar;
    jar.take(first);
    const ProbeResponse again = send(m_a, get(target, &jar), base.evidence);
    const ProbeResponse other = send(m_b, get(target, &jar), base.evidence);
    const QList<Cookie> againSet = cookiesSet(again);
    const QList<Cookie> otherSet = cookiesSet(other);
    // "200", "302 to /login": a replay's answer as the summary names it.
    const auto answerOf = [](const ProbeResponse &response) {
        QString text = QString::number(response.status);
        const QByteArray location = response.header("Location");
        if (response.status / 100 == 3 && !location.isEmpty())
            text += QStringLiteral(" to ") + shownText(location, 100);
        return text;
    };
    const bool answeredDifferently =
        again.status / 100 != other.status / 100 ||
        (again.status / 100 == 3 && again.header("Location") != other.header("Location"));
    for (const Cookie &cookie : cookies) {
        AffinityFinding finding = base;
        finding.cookie = QString::fromUtf8(cookie.name);
        const QString name = shownText(cookie.name, 60);
        const std::optional<QByteArray> fromA = cookieValue(againSet, cookie.name);
        const std::optional<QByteArray> fromB = cookieValue(otherSet, cookie.name);
        if (again.status == 0 || other.status == 0) {
            finding.verdict = AffinityVerdict::Inconclusive;
            finding.summary = QStringLiteral("cookie %1: %2 did not answer with it sent back: %3")
                                  .arg(name, again.status == 0 ? m_a.label : m_b.label,
                                       again.status == 0 ? again.error : other.error);
        } else if (answeredDifferently) {
            // B's answer to the same request with the same cookie is not A's: B does not know
            // the session the way A does, whatever cookies it sets. Refused or sent elsewhere
            // (a login page): per process. An error or anything else: no telling.
            // (A itself erring or refusing is no session to compare.)
            const bool refused =
                (again.status / 100 == 2 || again.status / 100 == 3) &&
                (other.status == 401 || other.status == 403 || other.status / 100 == 3);
            finding.verdict = refused ? AffinityVerdict::PerProcess : AffinityVerdict::Inconclusive;
            finding.summary =
                QStringLiteral("%1with cookie %2 set by %3, %3 answered %4 but %5 "
                               "answered %6")
                    .arg(refused ? QStringLiteral("Sessions are per process: ")
                                 : QStringLiteral("Could not tell: "),
                         name, m_a.label, answerOf(again), m_b.label, answerOf(other));
        } else if (fromA && *fromA != cookie.value) {
            // A token renewed on every answer (CSRF, tracking) holds no session: harmless
            // wherever requests go. This finding (not the cookie's name: on another path it may
            // be a session) counts as stateless; the report names the cookies so ignored.
            finding.verdict = AffinityVerdict::Stateless;
            finding.summary = QStringLiteral("cookie %1 changes on every request (%2 issued a new "
                                             "value when it was sent back): not a session, ignored")
                                  .arg(name, m_a.label);
        } else if (fromB && *fromB != cookie.value) {
            finding.verdict = AffinityVerdict::PerProcess;
            finding.summary = QStringLiteral("Sessions are per process: cookie %1 set by %2 is "
                                             "unknown to %3 (it answered with a new %1)")
                                  .arg(name, m_a.label, m_b.label);
        } else {
            finding.verdict = AffinityVerdict::Shared;
            finding.summary = QStringLiteral("cookie %1 set by %2 is known to %3 (kept, not "
                                             "re-issued, answered alike): the session is shared")
                                  .arg(name, m_a.label, m_b.label);
        }
        // The replays' answers as they bear on this cookie (the first lists every cookie set).
        const auto note = [&](const std::optional<QByteArray> &value) {
            if (!value) return QStringLiteral("no Set-Cookie for %1 (kept)").arg(name);
            return QStringLiteral("Set-Cookie: %1=%2 (%3)")
                .arg(name, shownValue(*value),
                     *value == cookie.value ? QStringLiteral("same value")
                                            : QStringLiteral("new value"));
        };
        if (again.status != 0) finding.evidence[1].answer = note(fromA);
        if (other.status != 0) finding.evidence[2].answer = note(fromB);
        if (finding.verdict == AffinityVerdict::PerProcess) verifyHttpStickiness(finding, path);
        m_findings.append(finding);
    }
}

// A per-process session under a sticky policy: through the balancer, one browser's requests
// must keep the cookie (never get a new one from another worker).
void Check::verifyHttpStickiness(AffinityFinding &finding, const QString &path) {
    if (!isSticky(m_target.policy)) return;
    if (!m_target.balancer) {
        // Sticky already: a "switch to sticky-cookie" fix would be wrong, and nothing here shows
        // the balancer keeps sessions: not verified.
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary += QStringLiteral("; the policy is %1, not verified (no balancer address "
                                          "to send requests through)")
                               .arg(m_target.policy);
        return;
    }
    const ProbeEndpoint &balancer = *m_target.balancer;
    const QByteArray target = path.toUtf8();
    const QByteArray name = finding.cookie.toUtf8();
    CookieJar jar;
    const ProbeResponse first = send(balancer, get(target), finding.evidence);
    jar.take(first);
    const std::optional<QByteArray> session = jar.value(name);
    if (first.status == 0 || !session) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary +=
            first.status == 0
                ? QStringLiteral("; through %1: %2").arg(balancer.label, first.error)
                : QStringLiteral("; through %1 the cookie was not set").arg(balancer.label);
        return;
    }
    int renewed = 0;
    int failed = 0;
    for (int round = 0; round < StickyRounds; ++round) {
        const ProbeResponse response = send(balancer, get(target, &jar), finding.evidence);
        if (response.status == 0) {
            ++failed;
            continue;
        }
        const std::optional<QByteArray> value = cookieValue(cookiesSet(response), name);
        if (value && *value != jar.value(name).value_or(QByteArray())) {
            ++renewed;
            finding.evidence.last().answer.prepend(QStringLiteral("(new %1) ").arg(finding.cookie));
        }
        jar.take(response);
    }
    const QString cookie = shownText(name, 60);
    if (renewed > 0) {
        finding.verdict = AffinityVerdict::StickyBroken;
        finding.summary = QStringLiteral("Sessions are per process and the %1 policy does not keep "
                                         "them: %2 of %3 requests through %4 got a new %5")
                              .arg(m_target.policy)
                              .arg(renewed)
                              .arg(StickyRounds)
                              .arg(balancer.label, cookie);
    } else if (failed > 0) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary += QStringLiteral("; %1 of %2 requests through %3 got no answer")
                               .arg(failed)
                               .arg(StickyRounds)
                               .arg(balancer.label);
    } else {
        finding.verdict = AffinityVerdict::StickyVerified;
        finding.summary = QStringLiteral("Sessions are per process (cookie %1), and the %2 policy "
                                         "keeps them: %3 requests through %4 all kept the session")
                              .arg(cookie, m_target.policy)
                              .arg(StickyRounds)
                              .arg(balancer.label);
    }
}

// Per-worker long-polling sessions: what the policy makes of them.
void Check::perWorker(AffinityFinding &finding, const QString &what) {
    if (!isSticky(m_target.policy)) {
        finding.verdict = AffinityVerdict::StickyRequired;
        finding.summary = QStringLiteral("%1 sessions are per worker: a session opened on %2 is "
                                         "unknown to %3, and the %4 policy sends a client's polls "
                                         "to any worker")
                              .arg(what, m_a.label, m_b.label, m_target.policy);
        return;
    }
    if (!m_target.balancer) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary = QStringLiteral("%1 sessions are per worker; the policy is %2, not "
                                         "verified (no balancer address to poll through)")
                              .arg(what, m_target.policy);
    }
}

// engine.io (socket.io's transport), as its server answers: a polling handshake opens a
// session ("0{"sid":...}"), an unknown sid is 400 {"code":1,"message":"Session ID unknown"},
// a protocol it does not speak 400 code 5, a transport it does not allow 400 code 0.
bool Check::checkSocketIo() {
    AffinityFinding finding;
    finding.kind = QStringLiteral("socket.io");
    for (const int eio : {4, 3}) {
        const QByteArray base = "/socket.io/?EIO=" + QByteArray::number(eio);
        finding.path = QStringLiteral("/socket.io/ (EIO=%1)").arg(eio);
        const ProbeResponse handshake =
            send(m_a, get(base + "&transport=polling"), finding.evidence);
        if (handshake.status == 0) {
            finding.verdict = AffinityVerdict::Inconclusive;
            finding.summary = QStringLiteral("socket.io probe: %1 did not answer: %2")
                                  .arg(m_a.label, handshake.error);
            m_findings.append(finding);
            return true;
        }
        const std::optional<EngineIoError> error =
            handshake.status == 400 ? engineIoError(handshake) : std::nullopt;
        if (error && error->code == 5 && eio == 4) continue; // "Unsupported protocol version"
        if (error && error->code == 0) {
            // "Transport unknown": long-polling is off. Fine without stickiness if WebSocket
            // works (through the balancer, the way clients come).
            const ProbeEndpoint &via = m_target.balancer ? *m_target.balancer : m_a;
            ProbeRequest upgrade = get(base + "&transport=websocket");
            upgrade.upgradeWebSocket = true;
            const ProbeResponse socket = send(via, upgrade, finding.evidence);
            if (socket.status == 101) {
                finding.verdict = AffinityVerdict::WebSocketOnly;
                finding.summary = QStringLiteral("socket.io refuses long-polling (\"%1\") and "
                                                 "upgrades to WebSocket through %2: no stickiness "
                                                 "needed")
                                      .arg(shownText(error->message.toUtf8(), 60), via.label);
            } else {
                finding.verdict = AffinityVerdict::Inconclusive;
                finding.summary = QStringLiteral("socket.io refuses long-polling, and the "
                                                 "WebSocket upgrade through %1 got %2")
                                      .arg(via.label, socket.status ? QString::number(socket.status)
                                                                    : socket.error);
            }
            m_findings.append(finding);
            return true;
        }
        int spoken = eio;
        const std::optional<QJsonObject> opened =
            handshake.status == 200 ? engineIoHandshake(handshake.body, &spoken) : std::nullopt;
        if (!opened) return false; // not socket.io (404, a page, another 400)
        const QByteArray sid = opened->value(QLatin1String("sid")).toString().toUtf8();
        const QByteArray sidQuery = QUrl::toPercentEncoding(QString::fromUtf8(sid));
        // A packet posted to the session, not a poll: a poll that B holds open would look the
        // same as a B that hangs. A post is answered at once either way (200 "ok" when B knows
        // the sid, 400 code 1 "Session ID unknown" when not), so no answer is no answer.
        const ProbeResponse message =
            send(m_b, engineIoPost(base + "&transport=polling&sid=" + sidQuery, spoken, nullptr),
                 finding.evidence);
        const QString shownSid = shownText(sid, 40);
        if (message.status == 200) {
            finding.verdict = AffinityVerdict::Shared;
            finding.summary =
                QStringLiteral("socket.io session %1 opened on %2 is known to %3 (it took a "
                               "message posted to it)")
                    .arg(shownSid, m_a.label, m_b.label);
        } else if (message.status == 400 || message.status == 404) {
            perWorker(finding, QStringLiteral("socket.io (EIO=%1) long-polling").arg(eio));
            if (finding.verdict == AffinityVerdict::StickyRequired)
                finding.summary += QStringLiteral(" (%1 answered a message to session %2 with %3)")
                                       .arg(m_b.label, shownSid)
                                       .arg(message.status);
            else if (m_target.balancer && isSticky(m_target.policy))
                verifySocketIo(finding, eio, spoken);
        } else {
            finding.verdict = AffinityVerdict::Inconclusive;
            finding.summary =
                QStringLiteral("socket.io session %1 opened on %2: a message to it "
                               "on %3 got %4")
                    .arg(shownSid, m_a.label, m_b.label,
                         message.status ? QString::number(message.status) : message.error);
        }
        m_findings.append(finding);
        return true;
    }
    return false;
}

// Through the balancer: one session, StickyRounds messages posted to it (each answered "ok" at
// once by the worker that holds it, 400 "Session ID unknown" by any other).
// `eio`: the EIO asked for; `spoken`: the revision the server answered in (its packets).
void Check::verifySocketIo(AffinityFinding &finding, int eio, int spoken) {
    const ProbeEndpoint &balancer = *m_target.balancer;
    const QByteArray base = "/socket.io/?EIO=" + QByteArray::number(eio) + "&transport=polling";
    CookieJar jar;
    const ProbeResponse handshake = send(balancer, get(base), finding.evidence);
    jar.take(handshake);
    const std::optional<QJsonObject> opened =
        handshake.status == 200 ? engineIoHandshake(handshake.body) : std::nullopt;
    if (!opened) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary =
            QStringLiteral("socket.io sessions are per worker; opening one through "
                           "%1 failed (%2)")
                .arg(balancer.label,
                     handshake.status ? QString::number(handshake.status) : handshake.error);
        return;
    }
    const QByteArray sid = QUrl::toPercentEncoding(opened->value(QLatin1String("sid")).toString());
    int unknown = 0;
    int failed = 0;
    for (int round = 0; round < StickyRounds; ++round) {
        const ProbeResponse response =
            send(balancer, engineIoPost(base + "&sid=" + sid, spoken, &jar), finding.evidence);
        jar.take(response);
        if (response.status == 400 || response.status == 404)
            ++unknown;
        else if (response.status != 200)
            ++failed;
    }
    judgeStickyRounds(finding, QStringLiteral("socket.io"), unknown, failed);
}

QByteArray sockJsSessionId() {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    QByteArray id(8, 'a');
    for (char &c : id)
        c = alphabet[QRandomGenerator::global()->bounded(int(sizeof alphabet - 1))];
    return id;
}

ProbeRequest sockJsPost(const QByteArray &target, const QByteArray &body = {}) {
    ProbeRequest request;
    request.method = "POST";
    request.target = target;
    request.body = body;
    if (!body.isEmpty())
        request.headers.append(
            {QByteArray("Content-Type"), QByteArray("text/plain;charset=UTF-8")});
    return request;
}

// SockJS (Meteor, Rocket.Chat): /sockjs/info, then an xhr session opened on A
// (POST .../xhr answers "o") and a message for it posted to B (.../xhr_send: 204 when the
// session is known there, 404 when not).
bool Check::checkSockJs() {
    AffinityFinding finding;
    finding.kind = QStringLiteral("sockjs");
    finding.path = QStringLiteral("/sockjs");
    const ProbeResponse info = send(m_a, get("/sockjs/info"), finding.evidence);
    if (info.status == 0) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary =
            QStringLiteral("SockJS probe: %1 did not answer: %2").arg(m_a.label, info.error);
        m_findings.append(finding);
        return true;
    }
    const QJsonDocument document = QJsonDocument::fromJson(info.body);
    if (info.status != 200 || !document.isObject() ||
        !document.object().contains(QLatin1String("websocket")))
        return false;
    const QByteArray session = "/sockjs/000/" + sockJsSessionId();
    const ProbeResponse open = send(m_a, sockJsPost(session + "/xhr"), finding.evidence);
    if (open.status != 200 || !open.body.startsWith('o')) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary =
            QStringLiteral("SockJS answers on %1, but opening an xhr session there "
                           "got %2")
                .arg(m_a.label, open.status ? QString::number(open.status) : open.error);
        m_findings.append(finding);
        return true;
    }
    const ProbeResponse send_ =
        send(m_b, sockJsPost(session + "/xhr_send", "[\"x\"]"), finding.evidence);
    if (send_.status == 204 || send_.status == 200) {
        finding.verdict = AffinityVerdict::Shared;
        finding.summary =
            QStringLiteral("SockJS session opened on %1 is known to %2").arg(m_a.label, m_b.label);
    } else if (send_.status == 404) {
        perWorker(finding, QStringLiteral("SockJS long-polling"));
        if (finding.verdict == AffinityVerdict::StickyRequired)
            finding.summary +=
                QStringLiteral(" (%1 answered a message to it with 404)").arg(m_b.label);
        else if (m_target.balancer && isSticky(m_target.policy))
            verifySockJs(finding);
    } else {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary =
            QStringLiteral("SockJS session opened on %1: a message to it on %2 got %3")
                .arg(m_a.label, m_b.label,
                     send_.status ? QString::number(send_.status) : send_.error);
    }
    m_findings.append(finding);
    return true;
}

void Check::judgeStickyRounds(AffinityFinding &finding, const QString &transport, int unknown,
                              int failed, int expired) const {
    const QString balancer = m_target.balancer->label;
    if (unknown > 0) {
        finding.verdict = AffinityVerdict::StickyBroken;
        finding.summary = QStringLiteral("%1 sessions are per worker and the %2 policy does not "
                                         "keep them: %3 of %4 messages to one session through "
                                         "%5 reached a worker that does not know it")
                              .arg(transport, m_target.policy)
                              .arg(unknown)
                              .arg(StickyRounds)
                              .arg(balancer);
    } else if (expired > 0) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary = QStringLiteral("%1 sessions are per worker; %2 of %3 messages to one "
                                         "session through %4 were not sent or answered within "
                                         "%5 s of its opening (the session may have ended by "
                                         "then): not verified")
                              .arg(transport)
                              .arg(expired)
                              .arg(StickyRounds)
                              .arg(balancer)
                              .arg(SockJsSessionWindowMs / 1000);
    } else if (failed > 0) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary = QStringLiteral("%1 sessions are per worker; %2 of %3 messages "
                                         "through %4 got no answer or an error")
                              .arg(transport)
                              .arg(failed)
                              .arg(StickyRounds)
                              .arg(balancer);
    } else {
        finding.verdict = AffinityVerdict::StickyVerified;
        finding.summary = QStringLiteral("%1 sessions are per worker, and the %2 policy keeps "
                                         "them: %3 messages to one session through %4 all "
                                         "reached its worker")
                              .arg(transport, m_target.policy)
                              .arg(StickyRounds)
                              .arg(balancer);
    }
}

void Check::verifySockJs(AffinityFinding &finding) {
    const ProbeEndpoint &balancer = *m_target.balancer;
    const QByteArray session = "/sockjs/000/" + sockJsSessionId();
    CookieJar jar;
    ProbeRequest open = sockJsPost(session + "/xhr");
    // The rounds are bounded in time rather than kept alive with polls: sockjs-node forgets the
    // session 5 s after the opening poll ended (xhr_send does not restart that clock), and a
    // poll to keep it would hang up to 25 s on an app that has nothing to send (Meteor). So a
    // 404 counts as "another worker" only when the session cannot have ended yet (the clock
    // starts here, before the server's); messages not sent by SockJsSessionWindowMs after the
    // open (a slow link) are not sent and count as not checked, never as a guess.
    QElapsedTimer sinceOpen;
    sinceOpen.start();
    const ProbeResponse opened = send(balancer, open, finding.evidence);
    jar.take(opened);
    if (opened.status != 200 || !opened.body.startsWith('o')) {
        finding.verdict = AffinityVerdict::Inconclusive;
        finding.summary =
            QStringLiteral("SockJS sessions are per worker; opening one through %1 "
                           "failed (%2)")
                .arg(balancer.label, opened.status ? QString::number(opened.status) : opened.error);
        return;
    }
    int unknown = 0;
    int failed = 0;
    int expired = 0;
    for (int round = 0; round < StickyRounds; ++round) {
        if (sinceOpen.elapsed() >= SockJsSessionWindowMs) {
            expired = StickyRounds - round;
            break;
        }
        ProbeRequest message = sockJsPost(session + "/xhr_send", "[\"x\"]");
        jar.addTo(message);
        const ProbeResponse response = send(balancer, message, finding.evidence);
        jar.take(response);
        if (response.status == 404 && sinceOpen.elapsed() >= SockJsSessionWindowMs)
            ++expired; // answered after the session may have ended
        else if (response.status == 404)
            ++unknown;
        else if (response.status != 204 && response.status != 200)
            ++failed;
    }
    judgeStickyRounds(finding, QStringLiteral("SockJS"), unknown, failed, expired);
}

AffinityReport Check::run(bool production) {
    AffinityReport report;
    report.site = m_target.site;
    report.policy = m_target.policy;
    if (!pickWorkers()) {
        report.error = m_pickError;
        report.verdict = AffinityVerdict::Inconclusive;
        report.summary = m_pickError;
        return report;
    }
    const QStringList paths =
        m_target.paths.isEmpty() ? QStringList{QStringLiteral("/")} : m_target.paths;
    for (qsizetype i = 0; i < paths.size(); ++i)
        checkHttpSessions(paths[i], i == 0 ? m_firstOfA : std::nullopt);
    checkSocketIo();
    checkSockJs();
    report.findings = m_findings;

    const auto first = [&](auto predicate) -> const AffinityFinding * {
        for (const AffinityFinding &finding : m_findings)
            if (predicate(finding.verdict)) return &finding;
        return nullptr;
    };
    const AffinityFinding *chosen = first(verdictNeedsFix);
    if (!chosen)
        chosen = first([](AffinityVerdict v) { return v == AffinityVerdict::Inconclusive; });
    for (const AffinityVerdict best : {AffinityVerdict::StickyVerified,
                                       AffinityVerdict::WebSocketOnly, AffinityVerdict::Shared}) {
        if (chosen) break;
        chosen = first([best](AffinityVerdict v) { return v == best; });
    }
    if (chosen) {
        report.verdict = chosen->verdict;
        report.summary = chosen->summary;
    } else {
        report.verdict = AffinityVerdict::Stateless;
        report.summary = QStringLiteral("stateless as far as Corral can see: no session cookie "
                                        "set on %1, no socket.io or SockJS endpoint")
                             .arg(paths.join(QStringLiteral(", ")));
        // Cookies found to change on every request: stateless findings that name a cookie.
        QStringList rotating;
        for (const AffinityFinding &finding : m_findings)
            if (finding.verdict == AffinityVerdict::Stateless && !finding.cookie.isEmpty() &&
                !rotating.contains(finding.cookie))
                rotating.append(finding.cookie);
        if (!rotating.isEmpty()) {
            QStringList shown;
            for (const QString &cookie : rotating.mid(0, 5))
                shown.append(shownText(cookie.toUtf8(), 60));
            if (rotating.size() > 5) shown.append(QStringLiteral("…"));
            report.summary += QStringLiteral(" (cookies that change on every request ignored: %1)")
                                  .arg(shown.join(QStringLiteral(", ")));
        }
    }
    if (verdictNeedsFix(report.verdict)) {
        const QString site = shellQuote(m_target.site);
        report.fixes.append(
            QStringLiteral("corralctl site update %1 --policy sticky-cookie").arg(site));
        if (production) report.fixes.append(QStringLiteral("corralctl apply %1").arg(site));
        const bool httpSessions =
            std::any_of(m_findings.cbegin(), m_findings.cend(), [](const AffinityFinding &f) {
                return f.kind == QLatin1String("http-session") && verdictNeedsFix(f.verdict);
            });
        if (httpSessions)
            report.fixes.append(QStringLiteral("or keep sessions in a shared store (Redis, "
                                               "MongoDB): the seeds' advice in "
                                               "README#session-affinity"));
    }
    return report;
}

const struct {
    AffinityVerdict verdict;
    const char *name;
} VerdictNames[] = {
    {AffinityVerdict::Stateless, "stateless"},
    {AffinityVerdict::Shared, "shared"},
    {AffinityVerdict::PerProcess, "per-process"},
    {AffinityVerdict::StickyRequired, "sticky-required"},
    {AffinityVerdict::StickyVerified, "sticky-verified"},
    {AffinityVerdict::StickyBroken, "sticky-broken"},
    {AffinityVerdict::WebSocketOnly, "websocket-only"},
    {AffinityVerdict::Inconclusive, "inconclusive"},
};

std::optional<AffinityVerdict> verdictFromName(const QString &name) {
    for (const auto &entry : VerdictNames)
        if (name == QLatin1String(entry.name)) return entry.verdict;
    return std::nullopt;
}

} // namespace

QString verdictName(AffinityVerdict verdict) {
    for (const auto &entry : VerdictNames)
        if (entry.verdict == verdict) return QLatin1String(entry.name);
    return QStringLiteral("inconclusive");
}

bool verdictNeedsFix(AffinityVerdict verdict) {
    return verdict == AffinityVerdict::PerProcess || verdict == AffinityVerdict::StickyRequired ||
           verdict == AffinityVerdict::StickyBroken;
}

QJsonObject AffinityReport::toJson() const {
    QJsonArray findingsJson;
    for (const AffinityFinding &finding : findings) {
        QJsonArray evidence;
        for (const AffinityExchange &exchange : finding.evidence)
            evidence.append(QJsonObject{{QStringLiteral("endpoint"), exchange.endpoint},
                                        {QStringLiteral("request"), exchange.request},
                                        {QStringLiteral("status"), exchange.status},
                                        {QStringLiteral("answer"), exchange.answer}});
        QJsonObject object{{QStringLiteral("kind"), finding.kind},
                           {QStringLiteral("path"), finding.path},
                           {QStringLiteral("verdict"), verdictName(finding.verdict)},
                           {QStringLiteral("summary"), finding.summary},
                           {QStringLiteral("evidence"), evidence}};
        if (!finding.cookie.isEmpty()) object.insert(QStringLiteral("cookie"), finding.cookie);
        findingsJson.append(object);
    }
    QJsonObject object{{QStringLiteral("site"), site},
                       {QStringLiteral("policy"), policy},
                       {QStringLiteral("verdict"), verdictName(verdict)},
                       {QStringLiteral("summary"), summary},
                       {QStringLiteral("fixes"), QJsonArray::fromStringList(fixes)},
                       {QStringLiteral("findings"), findingsJson}};
    if (!error.isEmpty()) object.insert(QStringLiteral("error"), error);
    return object;
}

std::optional<AffinityReport> AffinityReport::fromJson(const QJsonObject &object) {
    const auto verdict = verdictFromName(object.value(QLatin1String("verdict")).toString());
    if (!verdict || !object.value(QLatin1String("findings")).isArray()) return std::nullopt;
    AffinityReport report;
    report.site = object.value(QLatin1String("site")).toString();
    report.policy = object.value(QLatin1String("policy")).toString();
    report.verdict = *verdict;
    report.summary = object.value(QLatin1String("summary")).toString();
    report.error = object.value(QLatin1String("error")).toString();
    for (const QJsonValue &fix : object.value(QLatin1String("fixes")).toArray())
        report.fixes.append(fix.toString());
    for (const QJsonValue &value : object.value(QLatin1String("findings")).toArray()) {
        const QJsonObject f = value.toObject();
        const auto findingVerdict = verdictFromName(f.value(QLatin1String("verdict")).toString());
        if (!findingVerdict) return std::nullopt;
        AffinityFinding finding;
        finding.kind = f.value(QLatin1String("kind")).toString();
        finding.path = f.value(QLatin1String("path")).toString();
        finding.cookie = f.value(QLatin1String("cookie")).toString();
        finding.verdict = *findingVerdict;
        finding.summary = f.value(QLatin1String("summary")).toString();
        for (const QJsonValue &e : f.value(QLatin1String("evidence")).toArray()) {
            const QJsonObject exchange = e.toObject();
            finding.evidence.append({exchange.value(QLatin1String("endpoint")).toString(),
                                     exchange.value(QLatin1String("request")).toString(),
                                     exchange.value(QLatin1String("status")).toInt(),
                                     exchange.value(QLatin1String("answer")).toString()});
        }
        report.findings.append(finding);
    }
    return report;
}

AffinityReport checkAffinity(const AffinityTarget &target, const ProbeFetch &fetch,
                             bool production) {
    return Check(target, fetch).run(production);
}

} // namespace corral
