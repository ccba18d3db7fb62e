#include "helpers/CorralctlRunner.h"
#include "helpers/ProxyTestUtil.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>

using namespace corral;
using namespace corral::test;

namespace {

/// CPU time (user + system) in clock ticks of the threads of process `pid`, except
/// `skipTid` (the test's own thread when measuring this process). The stat files are opened
/// up front, so the reading still works when the process has no descriptor left.
class ThreadCpu {
public:
    explicit ThreadCpu(pid_t pid, pid_t skipTid = 0) {
        const QString taskDir = QStringLiteral("/proc/%1/task").arg(pid);
        for (const QString &tid : QDir(taskDir).entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
            if (tid.toInt() == skipTid) continue;
            const QByteArray path = QFile::encodeName(taskDir + QLatin1Char('/') + tid) + "/stat";
            const int fd = ::open(path.constData(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) m_fds.push_back(fd);
        }
    }
    ~ThreadCpu() {
        for (int fd : m_fds)
            ::close(fd);
    }
    ThreadCpu(const ThreadCpu &) = delete;
    ThreadCpu &operator=(const ThreadCpu &) = delete;

    long long ticks() const {
        long long total = 0;
        for (int fd : m_fds) {
            char buffer[1024];
            const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
            if (n <= 0) continue;
            const QByteArray text(buffer, n);
            // "tid (comm) state ..."; utime and stime are fields 14 and 15.
            const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
            if (fields.size() > 12) total += fields[11].toLongLong() + fields[12].toLongLong();
        }
        return total;
    }

private:
    std::vector<int> m_fds;
};

/// A raw client socket made before connecting, so it can be created while descriptors are
/// still available and connected after the limit is lowered.
struct RawClient {
    int fd = -1;
    std::string received;
    bool closed = false;
    RawClient() { fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }
    ~RawClient() {
        if (fd >= 0) ::close(fd);
    }
    RawClient(const RawClient &) = delete;
    RawClient &operator=(const RawClient &) = delete;
    bool connectAndSend(uint16_t port, const std::string &request) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) return false;
        return ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size());
    }
    /// Answered: a status line arrived, or the server closed the connection.
    bool answered() const { return closed || received.find("\r\n") != std::string::npos; }
    int status() const { return received.size() >= 12 ? std::atoi(received.c_str() + 9) : 0; }
};

/// Reads whatever arrives on `clients` until each is answered or `timeoutMs` passes;
/// returns how many are answered.
int collectAnswers(std::vector<std::unique_ptr<RawClient>> &clients, int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
        std::vector<pollfd> fds;
        std::vector<RawClient *> owners;
        int answered = 0;
        for (auto &c : clients) {
            if (c->answered()) {
                ++answered;
                continue;
            }
            fds.push_back({c->fd, POLLIN, 0});
            owners.push_back(c.get());
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (fds.empty() || left <= 0) return answered;
        if (::poll(fds.data(), fds.size(), int(left)) <= 0) continue;
        for (size_t i = 0; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            char buf[4096];
            const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0)
                owners[i]->received.append(buf, size_t(n));
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                owners[i]->closed = true;
        }
    }
}

int openDescriptors() {
    return int(QDir(QStringLiteral("/proc/self/fd")).entryList(QDir::Files | QDir::System).size());
}

QString corralctl() {
    return QStringLiteral(CORRALCTL_PATH);
}

/// Starts `corralctl proxy` with RLIMIT_NOFILE set to `soft`/`hard` before it runs, and waits
/// for its "listening" line.
bool startLimitedProxy(QProcess &process, quint16 port, const TestBackend &backend, rlim_t soft,
                       rlim_t hard, int threads = 2) {
    process.setChildProcessModifier([soft, hard] {
        const rlimit limit{soft, hard};
        ::setrlimit(RLIMIT_NOFILE, &limit);
    });
    process.start(corralctl(),
                  {QStringLiteral("proxy"), QStringLiteral("--listen"),
                   QStringLiteral("127.0.0.1:%1").arg(port), QStringLiteral("--backends"),
                   keyOf(backend), QStringLiteral("--threads"), QString::number(threads)});
    if (!process.waitForStarted()) return false;
    QByteArray output;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!output.contains("listening on")) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        process.waitForReadyRead(100);
        output += process.readAllStandardOutput();
    }
    return true;
}

uint16_t freePort() {
    TestBackend probe;
    probe.start();
    const uint16_t port = probe.port();
    probe.stop();
    return port;
}

} // namespace

// The proxy's listening address (one owner) and its descriptor limits.
class TestProxyLimits : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() {
        // These tests open hundreds of sockets themselves.
        rlimit limit{};
        getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    // ------------------------------------------------------------ one address, one owner

    void secondEngineOnTheSameAddressFailsNamingTheHolder() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine first;
        QVERIFY(first.start(configFor({&a}, BalancingPolicy::RoundRobin, 2)).ok());
        ProxyConfig config = configFor({&a});
        config.listenPort = first.port();
        ProxyEngine second;
        const auto started = second.start(config);
        QVERIFY2(!started.ok(), "a second proxy joined an address the first one holds");
        QVERIFY2(started.error().contains(QStringLiteral("pid %1").arg(::getpid())),
                 qPrintable(started.error()));
        QVERIFY(started.error().contains(QStringLiteral("127.0.0.1:%1").arg(first.port())));
        // The first one still serves everything.
        HttpClient client(first.port());
        QCOMPARE(client.get("/").status, 200);
    }

    void wildcardHolderIsNamed() {
        // Something on 0.0.0.0:P takes 127.0.0.1:P too; the message names it.
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_ANY);
        QCOMPARE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
        QCOMPARE(::listen(fd, 4), 0);
        socklen_t length = sizeof addr;
        getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &length);
        TestBackend a;
        QVERIFY(a.start());
        ProxyConfig config = configFor({&a});
        config.listenPort = ntohs(addr.sin_port);
        ProxyEngine engine;
        const auto started = engine.start(config);
        ::close(fd);
        QVERIFY(!started.ok());
        QVERIFY2(started.error().contains(QStringLiteral("pid %1").arg(::getpid())),
                 qPrintable(started.error()));
    }

    void foreignReusePortSocketCannotJoin() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a}, BalancingPolicy::RoundRobin, 2)).ok());
        // What nginx, another Corral of an older version or any program with SO_REUSEPORT
        // would do: the kernel must refuse it, not split the traffic.
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(engine.port());
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool bound = ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
                           ::listen(fd, 16) == 0;
        const int error = errno;
        ::close(fd);
        QVERIFY2(!bound, "another socket joined the proxy's listening address");
        QCOMPARE(error, EADDRINUSE);
    }

    void engineThreadsShareOneAddress() {
        // Every event-loop thread accepts from the one listening socket.
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine engine;
        QVERIFY(engine.start(configFor({&a}, BalancingPolicy::RoundRobin, 2)).ok());
        QCOMPARE(engine.threadCount(), 2);
        LoadGenerator load(engine.port(), 4);
        QVERIFY(waitFor([&] { return load.ok() >= 400; }, 10000));
        load.stop();
        QCOMPARE(load.failed(), 0);
    }

    void twoCorralctlProxiesOnOnePort() {
        TestBackend a;
        QVERIFY(a.start());
        const uint16_t port = freePort();
        QProcess first;
        QVERIFY(startLimitedProxy(first, port, a, 4096, 4096));
        QProcess second;
        second.start(corralctl(), {QStringLiteral("proxy"), QStringLiteral("--listen"),
                                   QStringLiteral("127.0.0.1:%1").arg(port),
                                   QStringLiteral("--backends"), keyOf(a)});
        const bool finished = second.waitForFinished(5000);
        if (!finished) second.kill();
        second.waitForFinished(2000);
        const QByteArray err = second.readAllStandardError();
        const qint64 firstPid = first.processId();
        ::kill(pid_t(firstPid), SIGTERM);
        QVERIFY(first.waitForFinished(10000));
        QVERIFY2(finished, "the second corralctl proxy kept running on a taken port");
        QVERIFY(second.exitCode() != 0);
        QVERIFY2(err.contains(QByteArray("pid " + QByteArray::number(firstPid))), err.constData());
        QVERIFY2(err.contains("corralctl"), err.constData());
    }

    void corralctlUpListenOnATakenAddressNamesTheHolder() {
        TestBackend a;
        QVERIFY(a.start());
        ProxyEngine holder;
        QVERIFY(holder.start(configFor({&a})).ok());
        QTemporaryDir home;
        Corralctl ctl{corralctl(), home.path(), home.filePath(QStringLiteral("inventory.json")),
                      20000};
        const CtlRun run =
            ctl.run({QStringLiteral("up"), QStringLiteral("--demo"), QStringLiteral("--workers"),
                     QStringLiteral("1"), QStringLiteral("--listen"),
                     QStringLiteral("127.0.0.1:%1").arg(holder.port())});
        QVERIFY2(!run.timedOut, "corralctl up ran on a taken address");
        QCOMPARE(run.exitCode, 1);
        QVERIFY2(run.err.contains(QStringLiteral("127.0.0.1:%1 is already in use by pid %2")
                                      .arg(holder.port())
                                      .arg(::getpid())),
                 qPrintable(run.err));
        // Nothing was started: no worker line.
        QVERIFY2(!run.out.contains(QStringLiteral("starting")), qPrintable(run.out));
    }

    // ------------------------------------------------------------ descriptor limits

    void softFileLimitIsRaisedAtStart() {
        TestBackend a;
        QVERIFY(a.start());
        QProcess proxy;
        QVERIFY(startLimitedProxy(proxy, freePort(), a, 256, 4096, 1));
        QFile limits(QStringLiteral("/proc/%1/limits").arg(proxy.processId()));
        QVERIFY(limits.open(QIODevice::ReadOnly));
        const QByteArray text = limits.readAll();
        ::kill(pid_t(proxy.processId()), SIGTERM);
        QVERIFY(proxy.waitForFinished(10000));
        const bool raised = QRegularExpression(QStringLiteral("Max open files +4096 +4096"))
                                .match(QString::fromLatin1(text))
                                .hasMatch();
        QVERIFY2(raised, text.constData());
    }

    void idleClientsPastTheLimitNeitherSpinNorHang() {
        // `ulimit -n 256` and 400 keep-alive clients: every client gets an answer (200, or
        // 503 past what the limit allows) and the event loops stay idle.
        TestBackend a;
        QVERIFY(a.start());
        const uint16_t port = freePort();
        QProcess proxy;
        QVERIFY(startLimitedProxy(proxy, port, a, 256, 256));
        const pid_t pid = pid_t(proxy.processId());
        std::vector<std::unique_ptr<RawClient>> clients;
        for (int i = 0; i < 400; ++i) {
            clients.push_back(std::make_unique<RawClient>());
            QVERIFY(clients.back()->connectAndSend(port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
        }
        const int answered = collectAnswers(clients, 4000);
        int ok = 0, busy = 0;
        for (auto &c : clients) {
            ok += c->status() == 200;
            busy += c->status() == 503;
        }
        qInfo("400 clients at ulimit -n 256: %d answered (%d x 200, %d x 503)", answered, ok, busy);
        const ThreadCpu cpu(pid);
        const long long before = cpu.ticks();
        QTest::qWait(1000);
        const long long spent = cpu.ticks() - before;
        qInfo("proxy CPU over 1 s with every client idle: %lld ticks", spent);
        // A newcomer is answered rather than left hanging.
        RawClient newcomer;
        QVERIFY(newcomer.connectAndSend(port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
        std::vector<std::unique_ptr<RawClient>> one;
        one.push_back(std::make_unique<RawClient>());
        one.back()->fd = newcomer.fd;
        newcomer.fd = -1;
        const int newcomerAnswered = collectAnswers(one, 2000);
        // Once the idle ones leave, newcomers are served.
        clients.clear();
        const bool servedAfter = waitFor(
            [&] {
                HttpClient client(port, 1000);
                return client.get("/").status == 200;
            },
            5000);
        ::kill(pid, SIGTERM);
        proxy.waitForFinished(10000);
        QCOMPARE(answered, 400);
        QVERIFY2(ok > 0, "nobody was served");
        QVERIFY2(spent < sysconf(_SC_CLK_TCK) / 5, "the event loops spin at the fd limit");
        QCOMPARE(newcomerAnswered, 1);
        QVERIFY(servedAfter);
    }

    void acceptAtEmfileAnswers503AndBacksOff() {
        // Something else in the process used up the descriptors (EMFILE in accept): the
        // proxy answers 503 through its reserve descriptor and stops accepting for a moment
        // instead of spinning on a listener that stays readable.
        // No backend thread in this process: its accept loop would compete for descriptors.
        ProxyConfig config;
        config.threads = 1;
        config.backends = {Backend{QStringLiteral("127.0.0.1"), 9}};
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        std::vector<std::unique_ptr<RawClient>> clients;
        for (int i = 0; i < 40; ++i)
            clients.push_back(std::make_unique<RawClient>());
        const ThreadCpu cpu(::getpid(), pid_t(::syscall(SYS_gettid)));
        rlimit original{};
        getrlimit(RLIMIT_NOFILE, &original);
        rlimit lowered = original;
        lowered.rlim_cur = rlim_t(openDescriptors() + 8);
        QCOMPARE(setrlimit(RLIMIT_NOFILE, &lowered), 0);
        std::vector<int> filler;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
            filler.push_back(fd);
        int connected = 0;
        for (auto &c : clients)
            connected += c->connectAndSend(engine.port(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        const int answered = collectAnswers(clients, 3000);
        const long long before = cpu.ticks();
        QTest::qWait(1000);
        const long long spent = cpu.ticks() - before;
        int busy = 0;
        for (auto &c : clients) {
            busy += c->status() == 503;
            if (!c->answered()) qInfo("unanswered: %s", c->received.c_str());
        }
        for (int fd : filler)
            ::close(fd);
        setrlimit(RLIMIT_NOFILE, &original);
        qInfo("40 clients at EMFILE: %d answered, %d x 503; %lld ticks in 1 s", answered, busy,
              spent);
        QCOMPARE(connected, 40);
        QCOMPARE(answered, 40);
        QVERIFY(busy > 0);
        QVERIFY2(spent < sysconf(_SC_CLK_TCK) / 5, "the event loop spins at EMFILE");
        // And it recovers: served again (502: nothing listens on the backend's port).
        QVERIFY(waitFor([&] { return HttpClient(engine.port(), 1000).get("/").status == 502; }));
    }
};

QTEST_GUILESS_MAIN(TestProxyLimits)
#include "tst_proxylimits.moc"
