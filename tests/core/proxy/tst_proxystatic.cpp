#include "helpers/ProxyTestUtil.h"
#include "http/MimeTypes.h"
#include "proxy/StaticFiles.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

bool writeFile(const QString &path, const std::string &bytes) {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    return f.write(bytes.data(), qint64(bytes.size())) == qint64(bytes.size());
}

std::string patternBytes(size_t size) {
    std::string s(size, '\0');
    for (size_t i = 0; i < size; ++i)
        s[i] = patternByte(i);
    return s;
}

// Descriptors this process holds open on files under `dir` (the proxy's open static files:
// the in-process backend's sockets come and go meanwhile).
int openFilesUnder(const QString &dir) {
    int n = 0;
    const QDir fds(QStringLiteral("/proc/self/fd"));
    for (const QString &fd : fds.entryList(QDir::AllEntries | QDir::System | QDir::NoDotAndDotDot))
        if (QFile::symLinkTarget(fds.filePath(fd)).startsWith(dir + u'/')) ++n;
    return n;
}

std::string readAll(const QString &path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    const QByteArray b = f.readAll();
    return std::string(b.constData(), size_t(b.size()));
}

// A 64 MiB sparse file: zeros, with a marker every MiB (its index, at its start).
constexpr qint64 BigSize = 64ll * 1024 * 1024;
std::string bigMarker(int mib) {
    return "MiB-" + std::to_string(mib) + "-marker";
}

} // namespace

// The proxy's static files over real sockets: what is served and how (types, conditionals,
// ranges, gzip_static, large files), what goes to the backends, and what is refused.
class TestProxyStatic : public QObject {
    Q_OBJECT

    TestBackend m_backend;
    QTemporaryDir m_tmp;
    QString m_root;
    const std::string m_pattern = patternBytes(100 * 1024);

    ProxyConfig config(bool followSymlinks = false) const {
        ProxyConfig c = configFor({&m_backend});
        c.staticFiles.root = m_root;
        c.staticFiles.followSymlinks = followSymlinks;
        c.staticFiles.cacheControl = QStringLiteral("public, max-age=60");
        return c;
    }
    HttpResponse get(ProxyEngine &engine, const std::string &target,
                     const std::string &extra = {}) const {
        HttpClient client(engine.port());
        return client.get(target, extra);
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_backend.start());
        QVERIFY(m_tmp.isValid());
        m_root = m_tmp.filePath(QStringLiteral("public"));
        QDir top(m_tmp.path());
        QVERIFY(top.mkpath(QStringLiteral("public/dir")));
        QVERIFY(top.mkpath(QStringLiteral("public/noindex")));
        QVERIFY(top.mkpath(QStringLiteral("outside")));
        QVERIFY(writeFile(m_tmp.filePath(QStringLiteral("outside/secret.txt")), "TOP SECRET\n"));
        QVERIFY(writeFile(m_root + QStringLiteral("/hello.txt"), "hello static\n"));
        QVERIFY(writeFile(m_root + QStringLiteral("/Style.CSS"), "body{color:red}\n"));
        QVERIFY(writeFile(m_root + QStringLiteral("/dir/index.html"), "<p>index</p>\n"));
        QVERIFY(writeFile(m_root + QStringLiteral("/noindex/other.txt"), "other\n"));
        QVERIFY(writeFile(m_root + QStringLiteral("/app.js"), "console.log('plain');\n"));
        QVERIFY(writeFile(m_root + QStringLiteral("/app.js.gz"), std::string("\x1f\x8b\x08gz", 5)));
        QVERIFY(writeFile(m_root + QStringLiteral("/pattern.bin"), m_pattern));
        QVERIFY(writeFile(m_root + QStringLiteral("/a b.txt"), "spaced\n"));
        const std::string root = m_root.toStdString();
        QCOMPARE(::symlink("/etc/passwd", (root + "/passwd-link").c_str()), 0);
        QCOMPARE(::symlink("../outside", (root + "/outside-dir").c_str()), 0);
        QCOMPARE(::symlink("hello.txt", (root + "/hello-link.txt").c_str()), 0);
        QCOMPARE(::symlink((root + "/hello.txt").c_str(), (root + "/abs-link.txt").c_str()), 0);
        // Sparse: 64 MiB of mostly holes, a marker per MiB.
        const int fd = ::open((root + "/big.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        QVERIFY(fd >= 0);
        QCOMPARE(::ftruncate(fd, BigSize), 0);
        for (int mib = 0; mib < 64; ++mib) {
            const std::string m = bigMarker(mib);
            QCOMPARE(::pwrite(fd, m.data(), m.size(), off_t(mib) * 1024 * 1024), ssize_t(m.size()));
        }
        ::close(fd);
    }

    void pureParts() {
        using namespace corral::proxy;
        DecodedPath p;
        QCOMPARE(decodeStaticPath("/a%20b.txt?x=1", p), 0);
        QCOMPARE(std::string(p.path), std::string("a b.txt"));
        QCOMPARE(decodeStaticPath("//dir/./x/", p), 0);
        QCOMPARE(std::string(p.path), std::string("dir/x"));
        QVERIFY(p.trailingSlash);
        for (const char *bad :
             {"/..", "/../etc/passwd", "/%2e%2e/", "/%2E%2e%2fetc", "/a/..%2f..%2f", "/a/%2e%2E",
              "/\\..\\x", "/%5c..%5cx", "/a\\..", "/x%00.txt", "/%zz"})
            QVERIFY2(decodeStaticPath(bad, p) == PathRefused, bad);
        QCOMPARE(decodeStaticPath("*", p), PathNotStatic);
        QCOMPARE(decodeStaticPath("/..a/b..", p), 0); // names with dots are names

        ByteRange r;
        QCOMPARE(parseRange("bytes=0-9", 100, r), RangeVerdict::Partial);
        QCOMPARE(r.first, uint64_t(0));
        QCOMPARE(r.length, uint64_t(10));
        QCOMPARE(parseRange("bytes=90-200", 100, r), RangeVerdict::Partial);
        QCOMPARE(r.length, uint64_t(10));
        QCOMPARE(parseRange("bytes=-500", 100, r), RangeVerdict::Partial);
        QCOMPARE(r.first, uint64_t(0));
        QCOMPARE(parseRange("bytes=100-", 100, r), RangeVerdict::Unsatisfiable);
        QCOMPARE(parseRange("bytes=-0", 100, r), RangeVerdict::Unsatisfiable);
        QCOMPARE(parseRange("bytes=0-1,5-6", 100, r), RangeVerdict::Whole);
        QCOMPARE(parseRange("bytes=5-1", 100, r), RangeVerdict::Whole);
        QCOMPARE(parseRange("items=0-1", 100, r), RangeVerdict::Whole);
        // Numbers longer than a 64-bit offset holds are not read, so never wrapped into a small
        // one (2^64 would be 0): the Range is ignored, as an unparsable one is.
        for (const char *huge : {"bytes=0-999999999999999999999999", "bytes=0-18446744073709551616",
                                 "bytes=999999999999999999999999-", "bytes=-18446744073709551616"})
            QVERIFY2(parseRange(huge, 100, r) == RangeVerdict::Whole, huge);

        char date[29];
        formatHttpDate(784111777, date);
        QCOMPARE(std::string(date, 29), std::string("Sun, 06 Nov 1994 08:49:37 GMT"));
        QCOMPARE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), int64_t(784111777));
        QCOMPARE(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), int64_t(-1));

        const http::MimeTypes types = http::MimeTypes::parse("# c\ntext/css css\nfoo\n"
                                                             "image/png\tPNG png2\ntext/x css\n");
        QCOMPARE(types.typeOf("a/b.Css"), std::string_view("text/css"));
        QCOMPARE(types.typeOf("x.png"), std::string_view("image/png"));
        QCOMPARE(types.typeOf("noext"), std::string_view("application/octet-stream"));
        QCOMPARE(http::MimeTypes::system().typeOf("x.js"), std::string_view("text/javascript"));
        QCOMPARE(http::MimeTypes::system().typeOf("x.woff2"), std::string_view("font/woff2"));
    }

    void refusesABadRoot() {
        ProxyEngine engine;
        ProxyConfig c = config();
        c.staticFiles.root = m_tmp.filePath(QStringLiteral("missing"));
        const Result<void> r = engine.start(c);
        QVERIFY(!r.ok());
        QVERIFY2(r.error().contains(c.staticFiles.root), qPrintable(r.error()));
    }

    void servesFilesWithTypeLengthAndValidators() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        const int before = m_backend.requests();
        HttpResponse r = get(engine, "/hello.txt");
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, std::string("hello static\n"));
        QCOMPARE(r.header("content-type"), std::string("text/plain"));
        QCOMPARE(r.header("content-length"), std::string("13"));
        QCOMPARE(r.header("accept-ranges"), std::string("bytes"));
        QCOMPARE(r.header("cache-control"), std::string("public, max-age=60"));
        QVERIFY(r.header("etag").size() > 4);
        QVERIFY(r.header("last-modified").ends_with(" GMT"));
        QVERIFY(!r.header("date").empty());
        QCOMPARE(get(engine, "/Style.CSS").header("content-type"), std::string("text/css"));
        QCOMPARE(get(engine, "/a%20b.txt?v=3").body, std::string("spaced\n"));
        QCOMPARE(get(engine, "/pattern.bin").body, m_pattern);
        QCOMPARE(m_backend.requests(), before); // none reached the backend
    }

    void headHasNoBodyAndKeepsTheConnection() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("HEAD /pattern.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
        const HttpResponse head = client.read(true);
        QCOMPARE(head.status, 200);
        QCOMPARE(head.header("content-length"), std::to_string(m_pattern.size()));
        // A body after the head would be read as the next response's start.
        const HttpResponse next = client.get("/hello.txt");
        QCOMPARE(next.status, 200);
        QCOMPARE(next.body, std::string("hello static\n"));
    }

    void directoriesServeOnlyTheirIndex() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        HttpResponse r = get(engine, "/dir/");
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, std::string("<p>index</p>\n"));
        QCOMPARE(r.header("content-type"), std::string("text/html"));
        r = get(engine, "/dir");
        QCOMPARE(r.status, 301);
        QCOMPARE(r.header("location"), std::string("/dir/"));
        const std::string backendAnswer = "ok " + std::to_string(m_backend.port()) + "\n";
        QCOMPARE(get(engine, "/noindex/").body, backendAnswer); // no listing
        QCOMPARE(get(engine, "/").body, backendAnswer);         // the root has no index.html
    }

    void otherRequestsGoToTheBackend() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        const std::string backendAnswer = "ok " + std::to_string(m_backend.port()) + "\n";
        const int before = m_backend.requests();
        QCOMPARE(get(engine, "/missing.txt").body, backendAnswer);
        QCOMPARE(get(engine, "/hello.txt/x").body, backendAnswer); // a file is no directory
        QCOMPARE(get(engine, "/hello.txt/").body, backendAnswer);
        HttpClient client(engine.port());
        QVERIFY(client.send("POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"));
        QCOMPARE(client.read().body, backendAnswer);
        QVERIFY(client.send("DELETE /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
        QCOMPARE(client.read().body, backendAnswer);
        QCOMPARE(m_backend.requests(), before + 5);
    }

    void traversalIsRefused() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        const int before = m_backend.requests();
        for (const char *target :
             {"/../outside/secret.txt", "/../../../../etc/passwd", "/%2e%2e/outside/secret.txt",
              "/%2E%2e%2foutside%2fsecret.txt", "/dir/..%2f..%2foutside/secret.txt",
              "/dir/%2e%2e/%2e%2e/outside/secret.txt", "/..\\outside\\secret.txt",
              "/%5c..%5coutside%5csecret.txt", "/hello.txt%00.png", "/%00",
              "/dir/.%2e/hello.txt"}) {
            const HttpResponse r = get(engine, target);
            QVERIFY2(r.status == 400, target);
            QVERIFY2(r.body.find("SECRET") == std::string::npos, target);
            QVERIFY2(r.body.find("root:") == std::string::npos, target);
        }
        QCOMPARE(m_backend.requests(), before); // refused, not proxied
    }

    void symlinksOutOfTheRootAreRefused() {
        {
            ProxyEngine engine;
            QVERIFY(engine.start(config()).ok());
            HttpResponse r = get(engine, "/passwd-link");
            QCOMPARE(r.status, 403);
            QVERIFY(r.body.find("root:") == std::string::npos);
            r = get(engine, "/outside-dir/secret.txt");
            QCOMPARE(r.status, 403);
            QVERIFY(r.body.find("SECRET") == std::string::npos);
            QCOMPARE(get(engine, "/hello-link.txt").body, std::string("hello static\n"));
            QCOMPARE(get(engine, "/abs-link.txt").body, std::string("hello static\n"));
        }
        ProxyEngine engine;
        QVERIFY(engine.start(config(true)).ok());
        QCOMPARE(get(engine, "/passwd-link").body, readAll(QStringLiteral("/etc/passwd")));
        QCOMPARE(get(engine, "/outside-dir/secret.txt").body, std::string("TOP SECRET\n"));
    }

    // Kernels without openat2 (before 5.6): open, then check where the file really is.
    void symlinksOutOfTheRootAreRefusedWithoutOpenat2() {
        proxy::StaticFiles::setUseOpenat2(false);
        const auto restore = qScopeGuard([] { proxy::StaticFiles::setUseOpenat2(true); });
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        QCOMPARE(get(engine, "/passwd-link").status, 403);
        QCOMPARE(get(engine, "/outside-dir/secret.txt").status, 403);
        QCOMPARE(get(engine, "/hello-link.txt").body, std::string("hello static\n"));
        QCOMPARE(get(engine, "/abs-link.txt").body, std::string("hello static\n"));
        QCOMPARE(get(engine, "/dir/").body, std::string("<p>index</p>\n"));
        QCOMPARE(get(engine, "/../outside/secret.txt").status, 400);
    }

    void conditionalRequestsGet304() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        const HttpResponse full = get(engine, "/hello.txt");
        const std::string etag = full.header("etag");
        const std::string lastModified = full.header("last-modified");
        HttpClient client(engine.port());
        for (const std::string &condition :
             std::vector<std::string>{"If-None-Match: " + etag, "If-None-Match: \"x\", W/" + etag,
                                      "If-None-Match: *", "If-Modified-Since: " + lastModified,
                                      "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"}) {
            const HttpResponse r = client.get("/hello.txt", condition + "\r\n");
            QVERIFY2(r.status == 304, condition.c_str());
            QCOMPARE(r.header("etag"), etag);
            QVERIFY(r.header("content-length").empty());
        }
        // Nothing followed the 304s on the connection: the next answer is whole.
        QCOMPARE(client.get("/hello.txt").body, std::string("hello static\n"));
        QCOMPARE(client.get("/hello.txt", "If-None-Match: \"other\"\r\n").status, 200);
        QCOMPARE(
            client.get("/hello.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n").status,
            200);
        // If-None-Match wins over If-Modified-Since.
        QCOMPARE(client
                     .get("/hello.txt",
                          "If-None-Match: \"other\"\r\nIf-Modified-Since: " + lastModified + "\r\n")
                     .status,
                 200);
    }

    void rangesGet206Or416() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        HttpClient client(engine.port());
        const std::string size = std::to_string(m_pattern.size());
        HttpResponse r = client.get("/pattern.bin", "Range: bytes=1000-1999\r\n");
        QCOMPARE(r.status, 206);
        QCOMPARE(r.body, m_pattern.substr(1000, 1000));
        QCOMPARE(r.header("content-range"), "bytes 1000-1999/" + size);
        r = client.get("/pattern.bin", "Range: bytes=100000-\r\n");
        QCOMPARE(r.status, 206);
        QCOMPARE(r.body, m_pattern.substr(100000));
        r = client.get("/pattern.bin", "Range: bytes=-77\r\n");
        QCOMPARE(r.status, 206);
        QCOMPARE(r.body, m_pattern.substr(m_pattern.size() - 77));
        r = client.get("/pattern.bin", "Range: bytes=" + size + "-\r\n");
        QCOMPARE(r.status, 416);
        QCOMPARE(r.header("content-range"), "bytes */" + size);
        QVERIFY(r.body.empty());
        r = client.get("/pattern.bin", "Range: bytes=0-1,5-6\r\n");
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, m_pattern);
        // A last position of 24 digits: the Range is ignored, the whole file answered (nginx
        // answers 416 to a number its off_t cannot hold; RFC 9110 14.2 lets a server ignore
        // Range), and no overflow makes it a range of a few bytes.
        r = client.get("/pattern.bin", "Range: bytes=0-999999999999999999999999\r\n");
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, m_pattern);
        QVERIFY(r.header("content-range").empty());
        // Range twice: the last one counts.
        r = client.get("/pattern.bin", "Range: bytes=0-9\r\nRange: bytes=10-19\r\n");
        QCOMPARE(r.status, 206);
        QCOMPARE(r.body, m_pattern.substr(10, 10));
        const std::string etag = r.header("etag");
        r = client.get("/pattern.bin", "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n");
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, m_pattern);
        r = client.get("/pattern.bin", "Range: bytes=0-9\r\nIf-Range: " + etag + "\r\n");
        QCOMPARE(r.status, 206);
        QCOMPARE(r.body, m_pattern.substr(0, 10));
        // curl, a real client, agrees on the bytes.
        QProcess curl;
        curl.start(QStringLiteral("curl"),
                   {QStringLiteral("-sf"), QStringLiteral("-r"), QStringLiteral("5000-5099"),
                    QStringLiteral("http://127.0.0.1:%1/pattern.bin").arg(engine.port())});
        QVERIFY(curl.waitForFinished(10000));
        QCOMPARE(curl.exitCode(), 0);
        const QByteArray out = curl.readAllStandardOutput();
        QCOMPARE(std::string(out.constData(), size_t(out.size())), m_pattern.substr(5000, 100));
    }

    void gzipStaticOnlyWhenAccepted() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        const std::string gz = readAll(m_root + QStringLiteral("/app.js.gz"));
        HttpResponse r = get(engine, "/app.js", "Accept-Encoding: br, gzip\r\n");
        QCOMPARE(r.status, 200);
        QCOMPARE(r.body, gz);
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QCOMPARE(r.header("vary"), std::string("Accept-Encoding"));
        QCOMPARE(r.header("content-type"), std::string("text/javascript"));
        // Accept-Encoding repeated: the headers are one list, as for gzip on the fly.
        for (const std::string &extra :
             {std::string("Accept-Encoding: identity\r\nAccept-Encoding: "
                          "gzip\r\n"),
              std::string("Accept-Encoding: gzip\r\nAccept-Encoding: "
                          "identity\r\n")}) {
            r = get(engine, "/app.js", extra);
            QCOMPARE(r.body, gz);
            QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        }
        for (const std::string &extra :
             {std::string(), std::string("Accept-Encoding: gzip;q=0, br\r\n"),
              std::string("Accept-Encoding: gzip;q=0\r\nAccept-Encoding: *\r\n")}) {
            r = get(engine, "/app.js", extra);
            QCOMPARE(r.body, std::string("console.log('plain');\n"));
            QVERIFY(r.header("content-encoding").empty());
        }
    }

    void largeFileWhileOthersAreServed() {
        ProxyConfig c = config();
        c.threads = 1; // one loop: a stalled loop would stall the small requests too
        ProxyEngine engine;
        QVERIFY(engine.start(c).ok());
        HttpClient big(engine.port(), 20000);
        QVERIFY(big.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
        // Read its first bytes only, leaving the rest pending in the proxy, then see others
        // served meanwhile.
        QVERIFY(big.fill());
        for (int i = 0; i < 20; ++i)
            QCOMPARE(get(engine, "/hello.txt").body, std::string("hello static\n"));
        QCOMPARE(get(engine, "/missing").status, 200);
        const HttpResponse r = big.read();
        QCOMPARE(r.status, 200);
        QCOMPARE(qint64(r.body.size()), BigSize);
        for (int mib = 0; mib < 64; ++mib) {
            const std::string m = bigMarker(mib);
            QCOMPARE(r.body.compare(size_t(mib) * 1024 * 1024, m.size(), m), 0);
        }
        QVERIFY(r.body.find_first_not_of('\0', 63ull * 1024 * 1024 + 20) == std::string::npos);
        // Keep-alive after it.
        QCOMPARE(big.get("/hello.txt").body, std::string("hello static\n"));
    }

    // A client leaving mid-file and an engine stopped mid-file (reads ahead in flight or
    // queued) leave no file descriptor open.
    void cutTransfersLeakNoDescriptor() {
        for (const qint64 offloadMinBytes : {qint64(0), qint64(64 * 1024)}) {
            ProxyConfig c = config();
            c.threads = 1;
            c.staticFiles.offloadMinBytes = offloadMinBytes; // 0: sendfile from the loop only
            ProxyEngine engine;
            QVERIFY(engine.start(c).ok());
            for (int i = 0; i < 8; ++i) {
                HttpClient leaver(engine.port());
                QVERIFY(leaver.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
                while (leaver.buffer().size() < size_t(i) * 256 * 1024 + 1)
                    QVERIFY(leaver.fill());
            } // closed with most of the file unsent
            // The engine notices each close and lets go of its file.
            QTRY_COMPARE_WITH_TIMEOUT(openFilesUnder(m_root), 0, 5000);
            HttpClient stays(engine.port());
            QVERIFY(stays.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
            QVERIFY(stays.fill());
            engine.stop(); // with that transfer open
        }
        QCOMPARE(openFilesUnder(m_root), 0);
    }

    void pipelinedStaticAndProxiedAnswersInOrder() {
        ProxyEngine engine;
        QVERIFY(engine.start(config()).ok());
        HttpClient client(engine.port());
        QVERIFY(client.send("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /pattern.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\n\r\n"
                            "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /../x HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /pattern.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                            "GET /dir/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        QCOMPARE(client.read().body, std::string("hello static\n"));
        QCOMPARE(client.read().body, "ok " + std::to_string(m_backend.port()) + "\n");
        QCOMPARE(client.read().body, m_pattern.substr(m_pattern.size() - 3));
        QCOMPARE(client.read(true).header("content-length"), std::string("13"));
        QCOMPARE(client.read().status, 400);
        QCOMPARE(client.read().body, m_pattern);
        const HttpResponse last = client.read();
        QCOMPARE(last.body, std::string("<p>index</p>\n"));
        QCOMPARE(last.header("connection"), std::string("close"));
        QVERIFY(client.waitClosed());
    }
};

QTEST_GUILESS_MAIN(TestProxyStatic)
#include "tst_proxystatic.moc"
