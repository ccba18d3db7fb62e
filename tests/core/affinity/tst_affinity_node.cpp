// The session affinity check (issue 22) against a real Node app, not an imitation of one:
// tests/fixtures/affinity-app (Express, express-session with its memory store or
// session-file-store, socket.io, SockJS), installed by npm ci in the setup test
// affinity_app_npm_ci, two workers as real node processes, and Corral's embedded balancer in front
// where the check goes through one.

#include "affinity/AffinityCheck.h"
#include "helpers/NodeAffinityApp.h"
#include "model/Site.h"
#include "proxy/ProxyEngine.h"

#include <QJsonDocument>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>

using namespace corral;
using namespace corral::test;

namespace {

ProbeEndpoint workerEndpoint(const NodeAffinityApp &app, int index) {
    ProbeEndpoint endpoint;
    endpoint.address = QStringLiteral("127.0.0.1");
    endpoint.port = app.port(index);
    endpoint.label = QStringLiteral("worker 127.0.0.1:%1").arg(endpoint.port);
    return endpoint;
}

/// The embedded balancer over the app's workers, with `policy`; its endpoint for the check.
ProbeEndpoint startBalancer(ProxyEngine &engine, const NodeAffinityApp &app, BalancingPolicy policy,
                            QString *error) {
    ProxyConfig config;
    config.threads = 1;
    config.policy = policy;
    for (int i = 0; i < app.count(); ++i) {
        Backend backend;
        backend.address = QStringLiteral("127.0.0.1");
        backend.port = app.port(i);
        config.backends.append(backend);
    }
    ProbeEndpoint endpoint;
    const Result<void> started = engine.start(config);
    if (!started.ok()) {
        *error = started.error();
        return endpoint;
    }
    endpoint.address = QStringLiteral("127.0.0.1");
    endpoint.port = engine.port();
    endpoint.label = QStringLiteral("balancer 127.0.0.1:%1").arg(endpoint.port);
    return endpoint;
}

AffinityTarget targetFor(const NodeAffinityApp &app, BalancingPolicy policy) {
    AffinityTarget target;
    target.site = QStringLiteral("shop");
    target.policy = policyName(policy);
    for (int i = 0; i < app.count(); ++i)
        target.workers.append(workerEndpoint(app, i));
    return target;
}

/// The app's two workers, started with `args`, behind Corral's embedded balancer with
/// `policy`, described as the check's target (the balancer stops before the workers).
struct BalancedApp {
    NodeAffinityApp app;
    ProxyEngine balancer;
    AffinityTarget target;

    bool start(const QStringList &args, BalancingPolicy policy, QString *error) {
        if (!app.start(2, args, error)) return false;
        target = targetFor(app, policy);
        target.balancer = startBalancer(balancer, app, policy, error);
        return balancer.isRunning();
    }
};

const AffinityFinding *findingOf(const AffinityReport &report, const QString &kind) {
    for (const AffinityFinding &finding : report.findings)
        if (finding.kind == kind) return &finding;
    return nullptr;
}

/// The report as its JSON, for failure messages: what the check saw is the diagnosis.
QByteArray describe(const AffinityReport &report) {
    return QJsonDocument(report.toJson()).toJson(QJsonDocument::Indented);
}

/// The exchanges of `finding` made with `endpoint` whose answer contains `needle`.
qsizetype answersContaining(const AffinityFinding &finding, const ProbeEndpoint &endpoint,
                            const QString &needle) {
    return std::count_if(
        finding.evidence.cbegin(), finding.evidence.cend(), [&](const AffinityExchange &exchange) {
            return exchange.endpoint == endpoint.label && exchange.answer.contains(needle);
        });
}

qsizetype exchangesWith(const AffinityFinding &finding, const ProbeEndpoint &endpoint) {
    return answersContaining(finding, endpoint, QString());
}

bool fixesMention(const AffinityReport &report, const QString &needle) {
    return std::any_of(report.fixes.cbegin(), report.fixes.cend(),
                       [&](const QString &fix) { return fix.contains(needle); });
}

} // namespace

class TestAffinityNode : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() {
        // Not a skip: the setup test installs the app, and without node it fails loudly.
        const QString problem = affinityAppProblem();
        QVERIFY2(problem.isEmpty(), qPrintable(problem));
    }

    // express-session's default MemoryStore: the cookie A sets is a stranger to B.
    void memorySessionsArePerProcess() {
        NodeAffinityApp app;
        QString error;
        QVERIFY2(app.start(2,
                           {QStringLiteral("--sessions"), QStringLiteral("memory"),
                            QStringLiteral("--socketio"), QStringLiteral("off")},
                           &error),
                 qPrintable(error));
        const AffinityTarget target = targetFor(app, BalancingPolicy::RoundRobin);
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::PerProcess, describe(report).constData());
        QVERIFY(verdictNeedsFix(report.verdict));
        const AffinityFinding *session = findingOf(report, QStringLiteral("http-session"));
        QVERIFY2(session, describe(report).constData());
        QCOMPARE(session->cookie, QStringLiteral("connect.sid"));
        QCOMPARE(session->verdict, AffinityVerdict::PerProcess);
        QVERIFY2(report.summary.contains(QStringLiteral("connect.sid")),
                 describe(report).constData());
        QVERIFY2(fixesMention(report, QStringLiteral("--policy sticky-cookie")),
                 describe(report).constData());
        // The evidence: A handed out the cookie, B was asked with it.
        QVERIFY2(exchangesWith(*session, target.workers.at(0)) > 0, describe(report).constData());
        const bool replayedToB = std::any_of(
            session->evidence.cbegin(), session->evidence.cend(), [&](const AffinityExchange &e) {
                return e.endpoint == target.workers.at(1).label &&
                       e.request.contains(QStringLiteral("connect.sid"));
            });
        QVERIFY2(replayedToB, describe(report).constData());
        QVERIFY2(answersContaining(*session, target.workers.at(1), QStringLiteral("new value")) > 0,
                 describe(report).constData());
    }

    // session-file-store in one directory both workers use: every session is known to both.
    void sharedFileStoreIsShared() {
        QTemporaryDir store;
        QVERIFY(store.isValid());
        NodeAffinityApp app;
        QString error;
        QVERIFY2(app.start(2,
                           {QStringLiteral("--sessions"), QStringLiteral("file:") + store.path(),
                            QStringLiteral("--socketio"), QStringLiteral("off")},
                           &error),
                 qPrintable(error));
        const AffinityTarget target = targetFor(app, BalancingPolicy::RoundRobin);
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::Shared, describe(report).constData());
        QVERIFY(!verdictNeedsFix(report.verdict));
        const AffinityFinding *session = findingOf(report, QStringLiteral("http-session"));
        QVERIFY2(session, describe(report).constData());
        QCOMPARE(session->cookie, QStringLiteral("connect.sid"));
        QCOMPARE(session->verdict, AffinityVerdict::Shared);
        QVERIFY2(!fixesMention(report, QStringLiteral("sticky-cookie")),
                 describe(report).constData());
        // The app really kept it in the shared directory (the check did not just guess).
        QVERIFY(!QDir(store.path()).entryList({QStringLiteral("*.json")}).isEmpty());
        QVERIFY2(answersContaining(*session, target.workers.at(1), QStringLiteral("kept")) > 0,
                 describe(report).constData());
    }

    // socket.io's long-polling sessions live in the worker that opened them: round-robin
    // sends the next poll elsewhere, which answers "Session ID unknown".
    void socketIoPollingUnderRoundRobinNeedsStickiness() {
        BalancedApp site;
        QString error;
        QVERIFY2(site.start({QStringLiteral("--sessions"), QStringLiteral("none"),
                             QStringLiteral("--socketio"), QStringLiteral("polling")},
                            BalancingPolicy::RoundRobin, &error),
                 qPrintable(error));
        const AffinityTarget &target = site.target;
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::StickyRequired, describe(report).constData());
        QVERIFY(verdictNeedsFix(report.verdict));
        const AffinityFinding *socketIo = findingOf(report, QStringLiteral("socket.io"));
        QVERIFY2(socketIo, describe(report).constData());
        QCOMPARE(socketIo->verdict, AffinityVerdict::StickyRequired);
        QVERIFY2(socketIo->path.contains(QStringLiteral("/socket.io/")),
                 describe(report).constData());
        QVERIFY2(fixesMention(report, QStringLiteral("--policy sticky-cookie")),
                 describe(report).constData());
        // B's own answer to A's sid is the evidence.
        QVERIFY2(answersContaining(*socketIo, target.workers.at(1),
                                   QStringLiteral("Session ID unknown")) > 0,
                 describe(report).constData());
    }

    // The same app under sticky-cookie: the balancer keeps every poll of a session on the
    // worker that opened it, which the check verifies by polling through it.
    void socketIoPollingUnderStickyCookieIsVerified() {
        BalancedApp site;
        QString error;
        QVERIFY2(site.start({QStringLiteral("--sessions"), QStringLiteral("none"),
                             QStringLiteral("--socketio"), QStringLiteral("polling")},
                            BalancingPolicy::StickyCookie, &error),
                 qPrintable(error));
        const AffinityTarget &target = site.target;
        ProxyEngine &balancer = site.balancer;
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::StickyVerified, describe(report).constData());
        QVERIFY(!verdictNeedsFix(report.verdict));
        const AffinityFinding *socketIo = findingOf(report, QStringLiteral("socket.io"));
        QVERIFY2(socketIo, describe(report).constData());
        QCOMPARE(socketIo->verdict, AffinityVerdict::StickyVerified);
        QVERIFY2(!fixesMention(report, QStringLiteral("--policy sticky-cookie")),
                 describe(report).constData());
        // Polls went through the balancer, and its own counters agree they stayed on one
        // worker: at least 20 requests reached the same backend.
        QVERIFY2(exchangesWith(*socketIo, *target.balancer) >= 20, describe(report).constData());
        const ProxyStats stats = balancer.snapshot();
        QCOMPARE(stats.backends.size(), 2);
        const uint64_t most =
            std::max(stats.backends.at(0).requests, stats.backends.at(1).requests);
        QVERIFY2(most >= 20, qPrintable(QStringLiteral("%1 and %2 requests through the balancer")
                                            .arg(stats.backends.at(0).requests)
                                            .arg(stats.backends.at(1).requests)));
    }

    // The sockjs package (Meteor's transport) keeps its xhr sessions in the worker that
    // opened them: a message for one posted to the other worker is answered 404, so
    // round-robin loses the session. socket.io is off so the finding that decides is SockJS's.
    void sockJsUnderRoundRobinNeedsStickiness() {
        BalancedApp site;
        QString error;
        QVERIFY2(site.start({QStringLiteral("--sessions"), QStringLiteral("none"),
                             QStringLiteral("--socketio"), QStringLiteral("off"),
                             QStringLiteral("--sockjs"), QStringLiteral("on")},
                            BalancingPolicy::RoundRobin, &error),
                 qPrintable(error));
        const AffinityTarget &target = site.target;
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::StickyRequired, describe(report).constData());
        QVERIFY(verdictNeedsFix(report.verdict));
        QVERIFY2(!findingOf(report, QStringLiteral("socket.io")), describe(report).constData());
        const AffinityFinding *sockJs = findingOf(report, QStringLiteral("sockjs"));
        QVERIFY2(sockJs, describe(report).constData());
        QCOMPARE(sockJs->verdict, AffinityVerdict::StickyRequired);
        QCOMPARE(sockJs->path, QStringLiteral("/sockjs"));
        QVERIFY2(report.summary.contains(QStringLiteral("SockJS")), describe(report).constData());
        QVERIFY2(fixesMention(report, QStringLiteral("--policy sticky-cookie")),
                 describe(report).constData());
        // The evidence: A opened the session ("o"), B answered a message to it with 404.
        const bool openedOnA = std::any_of(
            sockJs->evidence.cbegin(), sockJs->evidence.cend(), [&](const AffinityExchange &e) {
                return e.endpoint == target.workers.at(0).label && e.status == 200 &&
                       e.request.endsWith(QStringLiteral("/xhr")) &&
                       e.answer.startsWith(QLatin1Char('o'));
            });
        QVERIFY2(openedOnA, describe(report).constData());
        const bool unknownToB = std::any_of(
            sockJs->evidence.cbegin(), sockJs->evidence.cend(), [&](const AffinityExchange &e) {
                return e.endpoint == target.workers.at(1).label && e.status == 404 &&
                       e.request.contains(QStringLiteral("/xhr_send"));
            });
        QVERIFY2(unknownToB, describe(report).constData());
    }

    // The same app under sticky-cookie: every message of one SockJS session through the
    // balancer reaches the worker that opened it (204), which the check verifies.
    void sockJsUnderStickyCookieIsVerified() {
        BalancedApp site;
        QString error;
        QVERIFY2(site.start({QStringLiteral("--sessions"), QStringLiteral("none"),
                             QStringLiteral("--socketio"), QStringLiteral("off"),
                             QStringLiteral("--sockjs"), QStringLiteral("on")},
                            BalancingPolicy::StickyCookie, &error),
                 qPrintable(error));
        const AffinityTarget &target = site.target;
        ProxyEngine &balancer = site.balancer;
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::StickyVerified, describe(report).constData());
        QVERIFY(!verdictNeedsFix(report.verdict));
        const AffinityFinding *sockJs = findingOf(report, QStringLiteral("sockjs"));
        QVERIFY2(sockJs, describe(report).constData());
        QCOMPARE(sockJs->verdict, AffinityVerdict::StickyVerified);
        QVERIFY2(!fixesMention(report, QStringLiteral("--policy sticky-cookie")),
                 describe(report).constData());
        // The direct probe still found the session per worker (B: 404) ...
        const bool unknownToB = std::any_of(
            sockJs->evidence.cbegin(), sockJs->evidence.cend(), [&](const AffinityExchange &e) {
                return e.endpoint == target.workers.at(1).label && e.status == 404;
            });
        QVERIFY2(unknownToB, describe(report).constData());
        // ... and through the balancer all 20 messages were taken (204), which its own
        // counters agree reached one worker.
        const qsizetype delivered = std::count_if(
            sockJs->evidence.cbegin(), sockJs->evidence.cend(), [&](const AffinityExchange &e) {
                return e.endpoint == target.balancer->label && e.status == 204 &&
                       e.request.contains(QStringLiteral("/xhr_send"));
            });
        QVERIFY2(delivered >= 20, describe(report).constData());
        const ProxyStats stats = balancer.snapshot();
        QCOMPARE(stats.backends.size(), 2);
        const uint64_t most =
            std::max(stats.backends.at(0).requests, stats.backends.at(1).requests);
        QVERIFY2(most >= 21, qPrintable(QStringLiteral("%1 and %2 requests through the balancer")
                                            .arg(stats.backends.at(0).requests)
                                            .arg(stats.backends.at(1).requests)));
    }

    // socket.io with transports ['websocket']: no polling session to lose, the upgrade
    // works through the balancer, so no stickiness is needed.
    void websocketOnlyNeedsNoStickiness() {
        BalancedApp site;
        QString error;
        QVERIFY2(site.start({QStringLiteral("--sessions"), QStringLiteral("none"),
                             QStringLiteral("--socketio"), QStringLiteral("websocket")},
                            BalancingPolicy::RoundRobin, &error),
                 qPrintable(error));
        const AffinityTarget &target = site.target;
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), describe(report).constData());
        QVERIFY2(report.verdict == AffinityVerdict::WebSocketOnly, describe(report).constData());
        QVERIFY(!verdictNeedsFix(report.verdict));
        const AffinityFinding *socketIo = findingOf(report, QStringLiteral("socket.io"));
        QVERIFY2(socketIo, describe(report).constData());
        QCOMPARE(socketIo->verdict, AffinityVerdict::WebSocketOnly);
        QVERIFY2(!fixesMention(report, QStringLiteral("sticky-cookie")),
                 describe(report).constData());
        // The evidence: polling refused by the app itself, the upgrade answered 101.
        const bool pollingRefused = std::any_of(
            socketIo->evidence.cbegin(), socketIo->evidence.cend(), [](const AffinityExchange &e) {
                return e.answer.contains(QStringLiteral("Transport unknown"));
            });
        QVERIFY2(pollingRefused, describe(report).constData());
        const bool upgraded =
            std::any_of(socketIo->evidence.cbegin(), socketIo->evidence.cend(),
                        [](const AffinityExchange &e) { return e.status == 101; });
        QVERIFY2(upgraded, describe(report).constData());
    }
};

QTEST_GUILESS_MAIN(TestAffinityNode)
#include "tst_affinity_node.moc"
