// The session affinity check (issue 22) with real demo workers (--sessions memory|none) on
// loopback, Corral's embedded balancer in front where the check goes through one, hostile
// backends scripted over raw sockets, and fetchDirect()'s framing on its own.

#include "affinity/AffinityCheck.h"
#include "helpers/DemoWorker.h"
#include "helpers/TestProcess.h"
#include "model/Site.h"
#include "proxy/ProxyEngine.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

ProbeEndpoint endpointAt(quint16 port, const QString &role = QStringLiteral("worker")) {
    ProbeEndpoint endpoint;
    endpoint.address = QStringLiteral("127.0.0.1");
    endpoint.port = port;
    endpoint.label = QStringLiteral("%1 127.0.0.1:%2").arg(role).arg(port);
    return endpoint;
}

QByteArray describe(const AffinityReport &report) {
    return QJsonDocument(report.toJson()).toJson(QJsonDocument::Indented);
}

bool fixesMention(const AffinityReport &report, const QString &needle) {
    return std::any_of(report.fixes.cbegin(), report.fixes.cend(),
                       [&](const QString &fix) { return fix.contains(needle); });
}

const AffinityFinding *findingOf(const AffinityReport &report, const QString &kind) {
    for (const AffinityFinding &finding : report.findings)
        if (finding.kind == kind) return &finding;
    return nullptr;
}

/// A backend that answers each connection with what `answer` makes of the request head
/// (read up to its blank line); an empty answer keeps the connection open, unanswered, until
/// the server stops. Plain sockets on its own thread: the check blocks the test's thread.
class ScriptedBackend {
public:
    using Answer = std::function<QByteArray(const QByteArray &head)>;

    explicit ScriptedBackend(Answer answer)
        : m_answer(std::move(answer)) {}
    ~ScriptedBackend() { stop(); }

    bool start() {
        m_listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (m_listener < 0 ||
            ::bind(m_listener, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
            ::listen(m_listener, 64) != 0 ||
            ::getsockname(m_listener, reinterpret_cast<sockaddr *>(&address), &length) != 0)
            return false;
        m_port = ntohs(address.sin_port);
        m_thread = std::thread([this] { serve(); });
        return true;
    }
    void stop() {
        m_stop = true;
        if (m_thread.joinable()) m_thread.join();
        for (const int fd : m_held)
            ::close(fd);
        m_held.clear();
        if (m_listener >= 0) ::close(m_listener);
        m_listener = -1;
    }
    quint16 port() const { return m_port; }
    int connections() const { return m_connections.load(); }

private:
    static qsizetype contentLength(const QByteArray &head) {
        for (const QByteArray &line : head.split('\n')) {
            const QByteArray trimmed = line.trimmed();
            if (trimmed.toLower().startsWith("content-length:"))
                return std::min<qsizetype>(trimmed.mid(15).trimmed().toLongLong(), 65536);
        }
        return 0;
    }

    void serve() {
        while (!m_stop) {
            pollfd listening{m_listener, POLLIN, 0};
            if (::poll(&listening, 1, 50) <= 0) continue;
            const int fd = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++m_connections;
            QByteArray head;
            while (!head.contains("\r\n\r\n") && head.size() < 65536 && !m_stop) {
                pollfd readable{fd, POLLIN, 0};
                if (::poll(&readable, 1, 50) <= 0) continue;
                char buffer[4096];
                const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
                if (n <= 0) break;
                head.append(buffer, n);
            }
            // The body too (a POST's), so that closing leaves nothing unread (which would reset
            // the connection under the answer); `head` then holds the body after the blank line.
            const qsizetype end = head.indexOf("\r\n\r\n");
            const qsizetype length = end < 0 ? 0 : contentLength(head.left(end));
            while (end >= 0 && head.size() < end + 4 + length && !m_stop) {
                pollfd readable{fd, POLLIN, 0};
                if (::poll(&readable, 1, 50) <= 0) continue;
                char buffer[4096];
                const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
                if (n <= 0) break;
                head.append(buffer, n);
            }
            const QByteArray answer = m_answer(head);
            if (answer.isEmpty()) {
                m_held.push_back(fd); // never answered; closed at stop()
                continue;
            }
            qsizetype sent = 0;
            while (sent < answer.size()) {
                const ssize_t n = ::send(fd, answer.constData() + sent,
                                         size_t(answer.size() - sent), MSG_NOSIGNAL);
                if (n <= 0) break; // the client gave up on it: fine, it is hostile
                sent += n;
            }
            ::shutdown(fd, SHUT_WR);
            ::close(fd);
        }
    }

    Answer m_answer;
    int m_listener = -1;
    quint16 m_port = 0;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_connections{0};
    std::vector<int> m_held;
    std::thread m_thread;
};

QByteArray targetOf(const QByteArray &head) {
    const QList<QByteArray> words = head.left(head.indexOf("\r\n")).split(' ');
    return words.size() >= 2 ? words.at(1) : QByteArray();
}

QByteArray okAnswer(const QByteArray &extraHead = {}, const QByteArray &body = "{}") {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + QByteArray::number(body.size()) +
           "\r\nConnection: close\r\n" + extraHead + "\r\n" + body;
}

QByteArray statusAnswer(int status, const QByteArray &extraHead = {}, const QByteArray &body = {}) {
    return "HTTP/1.1 " + QByteArray::number(status) +
           " X\r\nContent-Length: " + QByteArray::number(body.size()) +
           "\r\nConnection: close\r\n" + extraHead + "\r\n" + body;
}

QByteArray bodyOf(const QByteArray &request) {
    const qsizetype end = request.indexOf("\r\n\r\n");
    return end < 0 ? QByteArray() : request.mid(end + 4);
}

} // namespace

class TestAffinity : public QObject {
    Q_OBJECT

    std::vector<std::unique_ptr<DemoWorker>> m_workers;

    // Two demo workers with `options`; their endpoints.
    QList<ProbeEndpoint> startWorkers(const QStringList &options) {
        m_workers.clear();
        QList<ProbeEndpoint> endpoints;
        const quint16 base = workerBasePort(2);
        for (int i = 0; i < 2; ++i) {
            auto worker = std::make_unique<DemoWorker>(QStringLiteral(DEMO_WORKER_PATH));
            QString error;
            if (!worker->start(quint16(base + i), options, &error)) {
                qWarning("%s", qPrintable(error));
                return {};
            }
            endpoints.append(endpointAt(worker->port()));
            m_workers.push_back(std::move(worker));
        }
        return endpoints;
    }

    static ProbeEndpoint startBalancer(ProxyEngine &engine, const QList<ProbeEndpoint> &workers,
                                       BalancingPolicy policy) {
        ProxyConfig config;
        config.threads = 1;
        config.policy = policy;
        for (const ProbeEndpoint &worker : workers) {
            Backend backend;
            backend.address = worker.address;
            backend.port = worker.port;
            config.backends.append(backend);
        }
        if (!engine.start(config).ok()) return {};
        return endpointAt(engine.port(), QStringLiteral("balancer"));
    }

    static AffinityTarget targetFor(const QList<ProbeEndpoint> &workers,
                                    const QString &policy = QStringLiteral("round-robin")) {
        AffinityTarget target;
        target.site = QStringLiteral("shop");
        target.policy = policy;
        target.workers = workers;
        target.timeoutMs = 3000;
        return target;
    }

private Q_SLOTS:
    void cleanup() { m_workers.clear(); }

    // (a) Two processes with their own memory sessions: the cookie is named, both workers
    // appear in the evidence, the fixes say what to do.
    void memorySessionsArePerProcess() {
        const QList<ProbeEndpoint> workers =
            startWorkers({QStringLiteral("--sessions"), QStringLiteral("memory")});
        QCOMPARE(workers.size(), 2);
        const AffinityReport report = checkAffinity(targetFor(workers), fetchDirect, true);
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY2(report.verdict == AffinityVerdict::PerProcess, describe(report).constData());
        QVERIFY(verdictNeedsFix(report.verdict));
        const AffinityFinding *session = findingOf(report, QStringLiteral("http-session"));
        QVERIFY(session);
        QCOMPARE(session->cookie, QStringLiteral("demo.sid"));
        QCOMPARE(session->path, QStringLiteral("/"));
        QVERIFY2(report.summary.contains(QStringLiteral("demo.sid")) &&
                     report.summary.contains(workers[0].label) &&
                     report.summary.contains(workers[1].label),
                 qPrintable(report.summary));
        // Evidence: A's first answer set it, A kept it when sent back, B issued a new one.
        QCOMPARE(session->evidence.size(), 3);
        QCOMPARE(session->evidence[0].endpoint, workers[0].label);
        QVERIFY(session->evidence[0].answer.contains(QStringLiteral("demo.sid=")));
        QCOMPARE(session->evidence[1].endpoint, workers[0].label);
        QVERIFY2(session->evidence[1].request.contains(QStringLiteral("Cookie: demo.sid=")),
                 qPrintable(session->evidence[1].request));
        QVERIFY2(session->evidence[1].answer.contains(QStringLiteral("kept")),
                 qPrintable(session->evidence[1].answer));
        QCOMPARE(session->evidence[2].endpoint, workers[1].label);
        QCOMPARE(session->evidence[2].status, 200);
        QVERIFY2(session->evidence[2].answer.contains(QStringLiteral("new value")),
                 qPrintable(session->evidence[2].answer));
        QVERIFY(fixesMention(report,
                             QStringLiteral("corralctl site update shop --policy sticky-cookie")));
        QVERIFY(fixesMention(report, QStringLiteral("corralctl apply shop")));
        QVERIFY(fixesMention(report, QStringLiteral("shared store")));
        // The demo worker has no socket.io or SockJS (404): no finding about them.
        QVERIFY(!findingOf(report, QStringLiteral("socket.io")));
        QVERIFY(!findingOf(report, QStringLiteral("sockjs")));

        // Not production: no apply step.
        const AffinityReport local = checkAffinity(targetFor(workers), fetchDirect);
        QVERIFY(!fixesMention(local, QStringLiteral("corralctl apply")));

        // The report survives its JSON.
        const QJsonObject json = report.toJson();
        const std::optional<AffinityReport> back = AffinityReport::fromJson(json);
        QVERIFY(back);
        QCOMPARE(back->toJson(), json);
        QCOMPARE(back->verdict, AffinityVerdict::PerProcess);
        QCOMPARE(back->findings.size(), report.findings.size());
        QCOMPARE(json.value(QStringLiteral("verdict")).toString(), QStringLiteral("per-process"));
        QVERIFY(!AffinityReport::fromJson(
            QJsonObject{{QStringLiteral("verdict"), QStringLiteral("odd")}}));
    }

    // (b) No cookie, no polling endpoint.
    void noCookieIsStateless() {
        const QList<ProbeEndpoint> workers = startWorkers({});
        QCOMPARE(workers.size(), 2);
        AffinityTarget target = targetFor(workers);
        target.paths = {QStringLiteral("/"), QStringLiteral("/health")};
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.verdict == AffinityVerdict::Stateless, describe(report).constData());
        QVERIFY2(report.summary.contains(QStringLiteral("stateless as far as Corral can see")),
                 qPrintable(report.summary));
        QVERIFY(report.fixes.isEmpty());
        QCOMPARE(report.findings.size(), 2); // one per path, with its request as evidence
        for (const AffinityFinding &finding : report.findings)
            QCOMPARE(finding.verdict, AffinityVerdict::Stateless);
    }

    // (c) Behind the embedded balancer: sticky-cookie keeps each session on its worker;
    // round-robin does not (and needs no verification to say so); a site that claims
    // sticky-cookie while its balancer round-robins is caught.
    void stickyPolicyIsVerifiedThroughTheBalancer() {
        const QList<ProbeEndpoint> workers =
            startWorkers({QStringLiteral("--sessions"), QStringLiteral("memory")});
        QCOMPARE(workers.size(), 2);
        {
            ProxyEngine engine;
            AffinityTarget target = targetFor(workers, QStringLiteral("sticky-cookie"));
            target.balancer = startBalancer(engine, workers, BalancingPolicy::StickyCookie);
            QVERIFY(target.balancer->port != 0);
            const AffinityReport report = checkAffinity(target, fetchDirect);
            QVERIFY2(report.verdict == AffinityVerdict::StickyVerified,
                     describe(report).constData());
            QVERIFY(report.fixes.isEmpty());
            const AffinityFinding *session = findingOf(report, QStringLiteral("http-session"));
            QVERIFY(session);
            // 3 direct exchanges, then 1 + 20 through the balancer, replaying its CORRALID.
            QCOMPARE(session->evidence.size(), 24);
            QCOMPARE(session->evidence.last().endpoint, target.balancer->label);
            QVERIFY2(session->evidence.last().request.contains(QStringLiteral("CORRALID=")),
                     qPrintable(session->evidence.last().request));
        }
        {
            ProxyEngine engine;
            AffinityTarget target = targetFor(workers, QStringLiteral("round-robin"));
            target.balancer = startBalancer(engine, workers, BalancingPolicy::RoundRobin);
            const AffinityReport report = checkAffinity(target, fetchDirect);
            QVERIFY2(report.verdict == AffinityVerdict::PerProcess, describe(report).constData());
            QVERIFY(fixesMention(report, QStringLiteral("--policy sticky-cookie")));
        }
        {
            ProxyEngine engine;
            AffinityTarget target = targetFor(workers, QStringLiteral("sticky-cookie"));
            target.balancer = startBalancer(engine, workers, BalancingPolicy::RoundRobin);
            const AffinityReport report = checkAffinity(target, fetchDirect);
            QVERIFY2(report.verdict == AffinityVerdict::StickyBroken, describe(report).constData());
            QVERIFY2(report.summary.contains(QStringLiteral("of 20 requests")),
                     qPrintable(report.summary));
            QVERIFY(verdictNeedsFix(report.verdict));
        }
        {
            // Sticky, but nothing to verify it through: said so, no fix offered.
            const AffinityReport report =
                checkAffinity(targetFor(workers, QStringLiteral("sticky-cookie")), fetchDirect);
            QVERIFY2(report.verdict == AffinityVerdict::Inconclusive, describe(report).constData());
            QVERIFY(report.summary.contains(QStringLiteral("not verified")));
            QVERIFY(report.fixes.isEmpty());
        }
    }

    // A and B are the first two workers that answer; a dead one before them is passed over.
    // A cookie that is deleted as it is set is no session; one the other worker refuses to
    // sign in with (401) is per process even when that worker sets no cookie of its own.
    void workersAndCookiesAreChosenByWhatAnswers() {
        const QList<ProbeEndpoint> workers =
            startWorkers({QStringLiteral("--sessions"), QStringLiteral("memory")});
        QCOMPARE(workers.size(), 2);
        quint16 deadPort = 0;
        {
            QTcpServer probe;
            QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
            deadPort = probe.serverPort();
        }
        AffinityTarget target = targetFor({endpointAt(deadPort), workers[0], workers[1]});
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.verdict == AffinityVerdict::PerProcess, describe(report).constData());
        QVERIFY(report.summary.contains(workers[0].label) &&
                report.summary.contains(workers[1].label));

        ScriptedBackend deleting([](const QByteArray &) {
            return okAnswer("Set-Cookie: gone=; Max-Age=0; Path=/\r\n"
                            "Set-Cookie: old=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT\r\n"
                            "Set-Cookie: older=x; expires=Thu, 01-Jan-1970 00:00:01 GMT\r\n"
                            "Set-Cookie: kept=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT\r\n");
        });
        QVERIFY(deleting.start());
        target = targetFor(
            {endpointAt(deleting.port()), endpointAt(deleting.port(), QStringLiteral("worker B"))});
        const AffinityReport deleted = checkAffinity(target, fetchDirect);
        // Only the cookie that lives on is looked at (and both "workers" are one process).
        QVERIFY2(deleted.verdict == AffinityVerdict::Shared, describe(deleted).constData());
        QCOMPARE(deleted.findings.size(), 1);
        QCOMPARE(deleted.findings[0].cookie, QStringLiteral("kept"));

        ScriptedBackend signingIn([](const QByteArray &head) {
            return head.contains("Cookie: sid=1") ? okAnswer() : okAnswer("Set-Cookie: sid=1\r\n");
        });
        ScriptedBackend refusing([](const QByteArray &head) {
            return head.contains("Cookie: sid=1")
                       ? QByteArray("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                       : okAnswer();
        });
        QVERIFY(signingIn.start() && refusing.start());
        target = targetFor({endpointAt(signingIn.port()), endpointAt(refusing.port())});
        const AffinityReport refused = checkAffinity(target, fetchDirect);
        QVERIFY2(refused.verdict == AffinityVerdict::PerProcess, describe(refused).constData());
        QVERIFY2(refused.summary.contains(QStringLiteral("401")), qPrintable(refused.summary));
        QCOMPARE(findingOf(refused, QStringLiteral("http-session"))->cookie, QStringLiteral("sid"));
    }

    // (d) Backends that accept and never answer: bounded by the timeouts, said with evidence.
    void silentBackendsAreBounded() {
        QTcpServer silent; // listens (the kernel completes connections) but never accepts
        QVERIFY(silent.listen(QHostAddress::LocalHost, 0));
        AffinityTarget target =
            targetFor({endpointAt(silent.serverPort()), endpointAt(silent.serverPort())});
        target.timeoutMs = 300;
        QElapsedTimer timer;
        timer.start();
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(timer.elapsed() < 3000, QByteArray::number(timer.elapsed()).constData());
        QVERIFY(!report.ok());
        QCOMPARE(report.verdict, AffinityVerdict::Inconclusive);
        QVERIFY2(report.error.contains(QStringLiteral("no answer within 300 ms")),
                 qPrintable(report.error));

        // Answers "/" but hangs on everything else: the socket.io probe says so.
        ScriptedBackend partial([](const QByteArray &head) {
            return targetOf(head) == "/" ? okAnswer() : QByteArray();
        });
        QVERIFY(partial.start());
        target = targetFor(
            {endpointAt(partial.port()), endpointAt(partial.port(), QStringLiteral("worker B"))});
        target.timeoutMs = 300;
        timer.restart();
        const AffinityReport hung = checkAffinity(target, fetchDirect);
        QVERIFY2(timer.elapsed() < 5000, QByteArray::number(timer.elapsed()).constData());
        QVERIFY2(hung.verdict == AffinityVerdict::Inconclusive, describe(hung).constData());
        const AffinityFinding *probe = findingOf(hung, QStringLiteral("socket.io"));
        QVERIFY(probe);
        QCOMPARE(probe->verdict, AffinityVerdict::Inconclusive);
        QVERIFY(probe->evidence.last().answer.contains(QStringLiteral("no answer within 300 ms")));
        QCOMPARE(probe->evidence.last().status, 0);
    }

    // (d) Backends that answer with junk: a head too large, bytes that are not HTTP, cookies
    // by the thousand, control characters. Bounded, no crash, a report all the same.
    void hostileAnswersAreBounded() {
        const QByteArray bigHead = "HTTP/1.1 200 OK\r\nX-Big: " + QByteArray(100 * 1024, 'a') +
                                   "\r\nContent-Length: 0\r\n\r\n";
        QByteArray manyCookies = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
        for (int i = 0; i < 5000; ++i)
            manyCookies += "Set-Cookie: c" + QByteArray::number(i) + "=v\r\n";
        manyCookies += "\r\n";
        QByteArray binary(4096, '\0');
        for (qsizetype i = 0; i < binary.size(); ++i)
            binary[i] = char(i * 7 + 3);

        for (const QByteArray &junk : {bigHead, manyCookies, binary}) {
            ScriptedBackend backend([&junk](const QByteArray &) { return junk; });
            QVERIFY(backend.start());
            AffinityTarget target =
                targetFor({endpointAt(backend.port()),
                           endpointAt(backend.port(), QStringLiteral("worker B"))});
            target.timeoutMs = 1000;
            const AffinityReport report = checkAffinity(target, fetchDirect);
            QVERIFY(!report.ok());
            QVERIFY2(report.error.contains(QStringLiteral("malformed response")),
                     qPrintable(report.error));
            QVERIFY(report.error.size() < 2000);
        }

        // 300 cookies (a head the reader takes), new values every time, bytes that are not
        // UTF-8 in them and control characters in the body: at most 20 looked at, each one
        // "changes on every request" (so the site counts as stateless), all of it escaped.
        std::atomic<int> serial{0};
        ScriptedBackend churn([&serial](const QByteArray &) {
            QByteArray cookies;
            const int n = ++serial;
            for (int i = 0; i < 300; ++i)
                cookies += "Set-Cookie: k" + QByteArray::number(i) + "=v" + QByteArray::number(n) +
                           "\t\xff\xfe\x80; Path=/\r\n";
            return okAnswer(cookies, QByteArray("body\x07with\x1b[2Jcontrols"));
        });
        QVERIFY(churn.start());
        AffinityTarget target = targetFor(
            {endpointAt(churn.port()), endpointAt(churn.port(), QStringLiteral("worker B"))});
        target.timeoutMs = 1000;
        const AffinityReport report = checkAffinity(target, fetchDirect);
        QVERIFY2(report.ok(), qPrintable(report.error));
        QVERIFY2(report.verdict == AffinityVerdict::Stateless, describe(report).constData());
        QVERIFY2(
            report.summary.contains(QStringLiteral("stateless as far as Corral can see")) &&
                report.summary.contains(QStringLiteral("change on every request ignored: k0, k1")),
            qPrintable(report.summary));
        qsizetype sessions = 0;
        for (const AffinityFinding &finding : report.findings) {
            if (finding.kind != QLatin1String("http-session")) continue;
            ++sessions;
            QVERIFY(finding.summary.contains(QStringLiteral("changes on every request")));
            for (const AffinityExchange &exchange : finding.evidence) {
                QVERIFY(exchange.answer.size() <= 301);
                QVERIFY(exchange.request.size() <= 600);
                for (const QChar c : QString(exchange.answer + exchange.request + finding.summary))
                    QVERIFY2(c.unicode() >= 0x20 && c.unicode() != 0x7f,
                             qPrintable(exchange.answer));
            }
        }
        QCOMPARE(sessions, 20);
    }

    // A's answer to pickWorkers' GET is the HTTP check's first answer: A is asked for the first
    // path twice (that GET, then the replay with its cookies), not three times.
    void firstAnswerOfAIsNotAskedForTwice() {
        std::atomic<int> rootOfA{0};
        ScriptedBackend a([&rootOfA](const QByteArray &head) {
            if (targetOf(head) != "/") return statusAnswer(404);
            ++rootOfA;
            return head.contains("Cookie: sid=1") ? okAnswer() : okAnswer("Set-Cookie: sid=1\r\n");
        });
        ScriptedBackend b([](const QByteArray &head) {
            return targetOf(head) == "/" ? okAnswer() : statusAnswer(404);
        });
        QVERIFY(a.start() && b.start());
        const AffinityReport report =
            checkAffinity(targetFor({endpointAt(a.port()), endpointAt(b.port())}), fetchDirect);
        QVERIFY2(report.verdict == AffinityVerdict::Shared, describe(report).constData());
        QCOMPARE(rootOfA.load(), 2);
        const AffinityFinding *session = findingOf(report, QStringLiteral("http-session"));
        QVERIFY(session);
        QCOMPARE(session->evidence.size(), 3); // the first GET stays in the evidence
        QCOMPARE(session->evidence[0].endpoint, endpointAt(a.port()).label);
        QVERIFY2(session->evidence[0].answer.contains(QStringLiteral("sid=1")),
                 qPrintable(session->evidence[0].answer));
    }

    // B answering the replay otherwise than A: a redirect (to a login page) or a refusal is a
    // session B does not know; an error is no finding either way. Never "shared".
    void differentAnswersOnBAreNotShared() {
        ScriptedBackend a([](const QByteArray &head) {
            if (targetOf(head) != "/") return statusAnswer(404);
            return head.contains("Cookie: sid=1") ? okAnswer() : okAnswer("Set-Cookie: sid=1\r\n");
        });
        ScriptedBackend redirecting([](const QByteArray &head) {
            if (targetOf(head) != "/") return statusAnswer(404);
            return head.contains("Cookie: sid=1") ? statusAnswer(302, "Location: /login\r\n")
                                                  : okAnswer();
        });
        ScriptedBackend failing([](const QByteArray &head) {
            if (targetOf(head) != "/") return statusAnswer(404);
            return head.contains("Cookie: sid=1") ? statusAnswer(500) : okAnswer();
        });
        QVERIFY(a.start() && redirecting.start() && failing.start());
        const AffinityReport redirected = checkAffinity(
            targetFor({endpointAt(a.port()), endpointAt(redirecting.port())}), fetchDirect);
        QVERIFY2(redirected.verdict == AffinityVerdict::PerProcess,
                 describe(redirected).constData());
        QVERIFY2(redirected.summary.contains(QStringLiteral("answered 200")) &&
                     redirected.summary.contains(QStringLiteral("302 to /login")),
                 qPrintable(redirected.summary));
        const AffinityReport failed = checkAffinity(
            targetFor({endpointAt(a.port()), endpointAt(failing.port())}), fetchDirect);
        QVERIFY2(failed.verdict == AffinityVerdict::Inconclusive, describe(failed).constData());
        QVERIFY2(failed.summary.contains(QStringLiteral("500")), qPrintable(failed.summary));
    }

    // A cookie renewed on every request: only its own finding is set aside. The same name as a
    // session on another path still counts, and a renewed id that B refuses is a session.
    void rotatingCookiesAreJudgedPerFinding() {
        std::atomic<int> serial{0};
        const auto rotating = [&serial](const QByteArray &extra) {
            return okAnswer("Set-Cookie: tok=a" + QByteArray::number(++serial) + "\r\n" + extra);
        };
        ScriptedBackend a([&](const QByteArray &head) {
            if (targetOf(head) == "/a") return rotating({});
            if (targetOf(head) != "/b") return statusAnswer(404);
            return head.contains("Cookie: tok=b1") ? okAnswer()
                                                   : okAnswer("Set-Cookie: tok=b1\r\n");
        });
        ScriptedBackend b([&](const QByteArray &head) {
            if (targetOf(head) == "/a") return rotating({});
            if (targetOf(head) != "/b") return statusAnswer(404);
            return okAnswer("Set-Cookie: tok=bB\r\n"); // never knows A's session
        });
        QVERIFY(a.start() && b.start());
        AffinityTarget target = targetFor({endpointAt(a.port()), endpointAt(b.port())});
        target.paths = {QStringLiteral("/a"), QStringLiteral("/b")};
        const AffinityReport paths = checkAffinity(target, fetchDirect);
        QVERIFY2(paths.verdict == AffinityVerdict::PerProcess, describe(paths).constData());
        QVERIFY2(paths.summary.contains(QStringLiteral("tok")), qPrintable(paths.summary));
        QCOMPARE(paths.findings.size(), 2);
        QCOMPARE(paths.findings[0].verdict, AffinityVerdict::Stateless);
        QVERIFY(paths.findings[0].summary.contains(QStringLiteral("changes on every request")));

        ScriptedBackend renewing([&](const QByteArray &head) {
            return targetOf(head) == "/" ? rotating({}) : statusAnswer(404);
        });
        ScriptedBackend refusing([](const QByteArray &head) {
            if (targetOf(head) != "/") return statusAnswer(404);
            return head.contains("Cookie: tok=") ? statusAnswer(403) : okAnswer();
        });
        QVERIFY(renewing.start() && refusing.start());
        const AffinityReport refused = checkAffinity(
            targetFor({endpointAt(renewing.port()), endpointAt(refusing.port())}), fetchDirect);
        QVERIFY2(refused.verdict == AffinityVerdict::PerProcess, describe(refused).constData());
        QVERIFY2(refused.summary.contains(QStringLiteral("403")), qPrintable(refused.summary));
    }

    // engine.io: B is asked with a message posted to A's session, answered at once by any
    // engine.io server. A B that does not answer is no evidence of a shared session.
    void socketIoOnBIsAskedWithAMessage() {
        const QByteArray handshake = R"(0{"sid":"abc","upgrades":[],"pingInterval":25000,)"
                                     R"("pingTimeout":20000,"maxPayload":1000000})";
        ScriptedBackend a([&handshake](const QByteArray &head) {
            const QByteArray target = targetOf(head);
            if (target == "/") return okAnswer();
            if (target == "/socket.io/?EIO=4&transport=polling")
                return okAnswer("Content-Type: text/plain\r\n", handshake);
            return statusAnswer(404);
        });
        // Hangs on anything about the session (a slow or stuck worker).
        ScriptedBackend hung([](const QByteArray &head) {
            if (targetOf(head) == "/") return okAnswer();
            return targetOf(head).contains("sid=") ? QByteArray() : statusAnswer(404);
        });
        // Holds polls open (as a worker with the session and nothing to send would), answers
        // posts: "ok" to the packet engine.io takes silently, 400 to anything else.
        ScriptedBackend knowing([](const QByteArray &head) {
            if (targetOf(head) == "/") return okAnswer();
            if (!targetOf(head).contains("sid=abc")) return statusAnswer(404);
            if (!head.startsWith("POST ")) return QByteArray();
            return bodyOf(head) == "3" ? okAnswer({}, "ok") : statusAnswer(400);
        });
        ScriptedBackend unknowing([](const QByteArray &head) {
            if (targetOf(head) == "/") return okAnswer();
            if (!targetOf(head).contains("sid=")) return statusAnswer(404);
            return statusAnswer(400, "Content-Type: application/json\r\n",
                                R"({"code":1,"message":"Session ID unknown"})");
        });
        QVERIFY(a.start() && hung.start() && knowing.start() && unknowing.start());
        const auto check = [&](const ScriptedBackend &b) {
            AffinityTarget target = targetFor({endpointAt(a.port()), endpointAt(b.port())});
            target.timeoutMs = 500;
            return checkAffinity(target, fetchDirect);
        };
        const AffinityReport slow = check(hung);
        QVERIFY2(slow.verdict == AffinityVerdict::Inconclusive, describe(slow).constData());
        const AffinityFinding *probe = findingOf(slow, QStringLiteral("socket.io"));
        QVERIFY(probe);
        QCOMPARE(probe->verdict, AffinityVerdict::Inconclusive);
        QCOMPARE(probe->evidence.last().status, 0);
        QVERIFY2(probe->evidence.last().request.startsWith(QStringLiteral("POST ")) &&
                     probe->evidence.last().request.contains(QStringLiteral("body: 3")),
                 qPrintable(probe->evidence.last().request));
        QVERIFY2(probe->summary.contains(QStringLiteral("no answer within 500 ms")),
                 qPrintable(probe->summary));

        const AffinityReport shared = check(knowing);
        QVERIFY2(shared.verdict == AffinityVerdict::Shared, describe(shared).constData());
        const AffinityReport perWorker = check(unknowing);
        QVERIFY2(perWorker.verdict == AffinityVerdict::StickyRequired,
                 describe(perWorker).constData());
    }

    // SockJS through a sticky balancer over a slow link: sockjs-node forgets an xhr session
    // 5 s after it was opened when only messages come (xhr_send does not keep it), so messages
    // after that get 404 from the very worker that held it. Not "sticky-broken".
    void sockJsRoundsAreBoundedInTime() {
        const auto worker = [](bool knows) {
            return [knows](const QByteArray &head) {
                const QByteArray target = targetOf(head);
                if (target == "/") return okAnswer();
                if (target == "/sockjs/info") return okAnswer({}, R"({"websocket":true})");
                if (target.startsWith("/sockjs/000/") && target.endsWith("/xhr"))
                    return okAnswer({}, "o\n");
                if (target.endsWith("/xhr_send"))
                    return knows ? statusAnswer(204) : statusAnswer(404);
                return statusAnswer(404);
            };
        };
        ScriptedBackend a(worker(true));
        ScriptedBackend b(worker(false));
        std::atomic<qint64> openedAt{0};
        QElapsedTimer clock;
        clock.start();
        ScriptedBackend balancer([&](const QByteArray &head) {
            const QByteArray target = targetOf(head);
            if (target.endsWith("/xhr")) {
                openedAt = clock.elapsed();
                return okAnswer({}, "o\n");
            }
            if (!target.endsWith("/xhr_send")) return statusAnswer(404);
            // The slow link: each message takes 300 ms to come back (the backend's own
            // pace, not a wait in the test).
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            return clock.elapsed() - openedAt > 5000 ? statusAnswer(404) : statusAnswer(204);
        });
        QVERIFY(a.start() && b.start() && balancer.start());
        AffinityTarget target = targetFor({endpointAt(a.port()), endpointAt(b.port())},
                                          QStringLiteral("sticky-cookie"));
        target.balancer = endpointAt(balancer.port(), QStringLiteral("balancer"));
        QElapsedTimer timer;
        timer.start();
        const AffinityReport report = checkAffinity(target, fetchDirect);
        const AffinityFinding *sockjs = findingOf(report, QStringLiteral("sockjs"));
        QVERIFY2(sockjs, describe(report).constData());
        QVERIFY2(sockjs->verdict == AffinityVerdict::Inconclusive, describe(report).constData());
        QVERIFY2(sockjs->summary.contains(QStringLiteral("may have ended")),
                 qPrintable(sockjs->summary));
        QVERIFY(!verdictNeedsFix(report.verdict));
        QVERIFY2(timer.elapsed() < 6000, QByteArray::number(timer.elapsed()).constData());
    }

    // (e) fetchDirect's framing: de-chunked bodies, the body limit, an upgrade's 101, and
    // errors that say what happened.
    void fetchDirectFramesAnswers() {
        ScriptedBackend chunked([](const QByteArray &head) {
            if (!head.startsWith("POST /in HTTP/1.1\r\n") ||
                !head.contains("Content-Length: 5\r\n") ||
                !head.contains("Connection: close\r\n") || !head.contains("\r\nHost: 127.0.0.1:"))
                return QByteArray("HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n");
            return QByteArray(
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                "Transfer-Encoding: chunked\r\nSet-Cookie: a=1; Path=/\r\n"
                "set-cookie: b=2\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
        });
        QVERIFY(chunked.start());
        ProbeRequest post;
        post.method = "POST";
        post.target = "/in";
        post.body = "12345";
        const ProbeResponse answer = fetchDirect(endpointAt(chunked.port()), post, 2000);
        QVERIFY2(answer.error.isEmpty(), qPrintable(answer.error));
        QCOMPARE(answer.status, 201);
        QCOMPARE(answer.body, QByteArray("hello world"));
        QCOMPARE(answer.setCookies(), (QList<QByteArray>{"a=1; Path=/", "b=2"}));
        QCOMPARE(answer.header("TRANSFER-encoding"), QByteArray("chunked"));
        QVERIFY(!answer.timedOut);

        const QList<ProbeEndpoint> workers = startWorkers({});
        QCOMPARE(workers.size(), 2);
        ProbeRequest big;
        big.target = "/bytes?n=300000";
        const ProbeResponse cut = fetchDirect(workers[0], big, 5000);
        QCOMPARE(cut.status, 200);
        QCOMPARE(cut.body.size(), qsizetype(ProbeBodyLimit));

        ProbeRequest upgrade;
        upgrade.target = "/ws";
        upgrade.upgradeWebSocket = true;
        const ProbeResponse switched = fetchDirect(workers[0], upgrade, 2000);
        QCOMPARE(switched.status, 101);
        QCOMPARE(switched.header("upgrade").toLower(), QByteArray("websocket"));
        QVERIFY(!switched.header("sec-websocket-accept").isEmpty());
        // A 101 nobody asked for is not HTTP any more: refused.
        ScriptedBackend switcher([](const QByteArray &) {
            return QByteArray("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
        });
        QVERIFY(switcher.start());
        const ProbeResponse unasked =
            fetchDirect(endpointAt(switcher.port()), ProbeRequest{}, 2000);
        QCOMPARE(unasked.status, 0);
        QVERIFY2(
            unasked.error.contains(QStringLiteral("malformed response from worker 127.0.0.1:")),
            qPrintable(unasked.error));

        quint16 closedPort = 0;
        {
            QTcpServer probe;
            QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
            closedPort = probe.serverPort();
        }
        const ProbeResponse refused = fetchDirect(endpointAt(closedPort), ProbeRequest{}, 2000);
        QCOMPARE(refused.status, 0);
        QCOMPARE(refused.error, QStringLiteral("connection refused"));

        // TLS (a balancer with HTTPS): the embedded proxy with a dev CA certificate, which is
        // not verified (the check asks about sessions, not identity).
        QTemporaryDir data; // XDG_DATA_HOME: the dev CA lives under it
        QVERIFY(data.isValid());
        qputenv("XDG_DATA_HOME", data.path().toUtf8());
        ProxyEngine engine;
        ProxyConfig config;
        config.threads = 1;
        config.tls.enabled = true;
        Backend backend;
        backend.address = workers[0].address;
        backend.port = workers[0].port;
        config.backends.append(backend);
        const Result<void> started = engine.start(config);
        QVERIFY2(started.ok(), qPrintable(started.error()));
        ProbeEndpoint https = endpointAt(engine.port(), QStringLiteral("balancer"));
        https.tls = true;
        const ProbeResponse secure = fetchDirect(https, ProbeRequest{}, 5000);
        QVERIFY2(secure.error.isEmpty(), qPrintable(secure.error));
        QCOMPARE(secure.status, 200);
        QVERIFY(secure.body.contains("\"pid\""));
        https.tls = false; // plain HTTP to a TLS listener: an error, not a hang
        const ProbeResponse plain = fetchDirect(https, ProbeRequest{}, 2000);
        QCOMPARE(plain.status, 0);
        QVERIFY(!plain.error.isEmpty());

        ProbeEndpoint remote = workers[0];
        remote.host = QStringLiteral("web1");
        QVERIFY(fetchDirect(remote, ProbeRequest{}, 2000).error.contains(QStringLiteral("web1")));
    }
};

QTEST_GUILESS_MAIN(TestAffinity)
#include "tst_affinity.moc"
