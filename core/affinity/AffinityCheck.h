#pragma once

// Does a site survive its requests moving between workers? (issue 22)
//
// The seeds' trap: an app that keeps sessions in one process (express-session's memory store,
// Sails' default) logs users out when the balancer sends their next request to another worker,
// and long-polling transports (socket.io, SockJS: Meteor, Rocket.Chat) answer "Session ID
// unknown" on any worker but the one that opened the session. The check talks to two workers
// directly (A and B), replays what A handed out to B, and reports facts with the requests made
// and the answers got as evidence. Blocking and bounded (every request has a timeout): run it
// off the GUI thread. Requests go through a ProbeFetch, so a local site's workers are reached
// over TCP from here and a production site's with curl on the worker's host, over SSH.

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

#include <functional>
#include <optional>
#include <utility>

namespace corral {

/// Where one request of the check goes: a worker of the site, or its balancer.
struct ProbeEndpoint {
    QString label;    ///< for evidence: "worker 127.0.0.1:3001", "balancer 127.0.0.1:8080"
    QString address;  ///< IP address (or name) to connect to
    quint16 port = 0;
    bool tls = false; ///< HTTPS (a balancer with TLS; workers speak plain HTTP)
    QString host;     ///< inventory host the request is made from; empty: this machine
};

using HeaderList = QList<std::pair<QByteArray, QByteArray>>;

struct ProbeRequest {
    QByteArray method = "GET";
    QByteArray target = "/"; ///< origin form: path and query
    /// Besides Host (ProbeRequest::host, else ADDRESS:PORT), Connection: close and, with a
    /// body, Content-Length, which the fetch adds.
    HeaderList headers;
    QByteArray body;
    QByteArray host;               ///< the Host header; empty: ADDRESS:PORT of the endpoint
    bool upgradeWebSocket = false; ///< asks for a WebSocket upgrade: a 101 head ends the answer
};

/// At most this much of a body is kept (the check reads handshakes and error messages).
inline constexpr int ProbeBodyLimit = 64 * 1024;

struct ProbeResponse {
    int status = 0;     ///< 0: no response; `error` says why
    HeaderList headers; ///< as received, in order (names as sent)
    QByteArray body;    ///< de-chunked, cut at ProbeBodyLimit
    QString error;      ///< "connection refused", "no answer within 2000 ms", "malformed response"
    bool timedOut = false; ///< connected, but no complete answer in time (a long-poll held open)

    /// Every Set-Cookie header's value, in order.
    QList<QByteArray> setCookies() const;
    /// The first value of header `name` (case-insensitive); empty when absent.
    QByteArray header(const QByteArray &name) const;
};

/// Makes one request to an endpoint and returns what came back within `timeoutMs`.
/// Blocking; called from the check's thread only.
using ProbeFetch =
    std::function<ProbeResponse(const ProbeEndpoint &, const ProbeRequest &, int timeoutMs)>;

/// A ProbeFetch over a TCP (or TLS, certificate not verified: the check asks about sessions,
/// not identity, and only of the site's own listen address) connection from this process,
/// framed by the proxy's own response reader (http::ResponseReader). For local sites and
/// anything this machine reaches; `endpoint.host` must be empty.
ProbeResponse fetchDirect(const ProbeEndpoint &endpoint, const ProbeRequest &request,
                          int timeoutMs);

/// What the check is asked to look at.
struct AffinityTarget {
    QString site;
    QString policy; ///< policyName(site.policy): "round-robin", "sticky-cookie", ...
    /// The site's workers; the first two that answer are A and B. Fewer than two: an error.
    QList<ProbeEndpoint> workers;
    /// The site's balancer: verifies stickiness and WebSocket upgrades through it. Absent: those
    /// steps are reported as not checked.
    std::optional<ProbeEndpoint> balancer;
    QStringList paths{QStringLiteral("/")}; ///< paths whose cookies are checked
    QByteArray hostHeader; ///< Host sent to every endpoint (a server name); empty: ADDRESS:PORT
    int timeoutMs = 3000;  ///< per request
};

enum class AffinityVerdict {
    Stateless,      ///< no cookie kept and no long-polling endpoint found
    Shared,         ///< every session is known to every worker: fine under any policy
    PerProcess,     ///< an HTTP session cookie is known only to the worker that set it
    StickyRequired, ///< long-polling sessions are per worker and the policy is not sticky
    StickyVerified, ///< long-polling sessions are per worker; the sticky policy keeps them
    StickyBroken,   ///< sticky policy, yet polls of one session reached another worker
    WebSocketOnly,  ///< polling refused, WebSocket upgrade works: fine without stickiness
    Inconclusive,   ///< could not tell (errors, timeouts); the evidence says why
};

/// "stateless", "shared", "per-process", "sticky-required", "sticky-verified", "sticky-broken",
/// "websocket-only", "inconclusive" (the JSON's verdict values).
QString verdictName(AffinityVerdict verdict);
/// PerProcess, StickyRequired and StickyBroken: users are hurt today; a fix is offered.
bool verdictNeedsFix(AffinityVerdict verdict);

/// One request the check made and what the endpoint answered: the evidence.
struct AffinityExchange {
    QString endpoint; ///< ProbeEndpoint::label
    QString request;  ///< "GET /socket.io/?EIO=4&transport=polling&sid=Kx… Cookie: connect.sid=s%3A…"
    int status = 0;   ///< 0: no answer
    QString answer;   ///< what mattered, control characters escaped, at most 300 characters
};

struct AffinityFinding {
    QString kind;   ///< "http-session", "socket.io" or "sockjs"
    QString path;   ///< "/" or "/socket.io/ (EIO=4)", "/sockjs"
    QString cookie; ///< http-session: the cookie's name ("connect.sid", "sails.sid")
    AffinityVerdict verdict = AffinityVerdict::Inconclusive;
    QString summary; ///< one sentence of what was seen
    QList<AffinityExchange> evidence;
};

struct AffinityReport {
    QString site;
    QString policy;
    /// The finding that needs a fix first, else Inconclusive, else the best news
    /// (StickyVerified, WebSocketOnly, Shared); Stateless when nothing was found.
    AffinityVerdict verdict = AffinityVerdict::Inconclusive;
    /// One sentence for a banner: "Sessions are per process: connect.sid set by worker
    /// 127.0.0.1:3001 is unknown to 127.0.0.1:3002" / "stateless as far as Corral can see".
    QString summary;
    /// What to do, most direct first: "corralctl site update shop --policy sticky-cookie",
    /// "corralctl apply shop" (production), "or keep sessions in a shared store (...)".
    QStringList fixes;
    QList<AffinityFinding> findings;
    QString error; ///< the check could not run ("fewer than two workers answer: ..."); verdict Inconclusive

    bool ok() const { return error.isEmpty(); }
    /// {"site","policy","verdict","summary","fixes":[..],"error"?,
    ///  "findings":[{"kind","path","cookie"?,"verdict","summary",
    ///               "evidence":[{"endpoint","request","status","answer"}]}]}
    QJsonObject toJson() const;
    static std::optional<AffinityReport> fromJson(const QJsonObject &object);
};

/// Runs the check. `production`: the fixes say to apply the balancer config after the update.
AffinityReport checkAffinity(const AffinityTarget &target, const ProbeFetch &fetch,
                             bool production = false);

} // namespace corral
