#include "helpers/ProxyTestUtil.h"
#include "http/GzipEncoder.h"
#include "proxy/Compression.h"

#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <chrono>
#include <ctime>
#include <zlib.h>

using namespace corral;
using namespace corral::test;

namespace {

constexpr const char *AcceptGzip = "Accept-Encoding: gzip, deflate, br\r\n";

struct Inflated {
    std::string text;
    bool complete = false; ///< the gzip trailer was there and its CRC and length matched
};

/// Decodes a gzip stream with zlib's inflate: the reference decoder, not the proxy's code.
Inflated gunzip(const std::string &data) {
    Inflated result;
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return result;
    z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
    z.avail_in = uInt(data.size());
    char buffer[65536];
    int rc;
    do {
        z.next_out = reinterpret_cast<Bytef *>(buffer);
        z.avail_out = sizeof buffer;
        rc = inflate(&z, Z_SYNC_FLUSH);
        result.text.append(buffer, sizeof buffer - z.avail_out);
    } while (rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
    result.complete = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    return result;
}

ProxyConfig configWithGzip(const TestBackend &backend) {
    ProxyConfig config = configFor({&backend});
    config.compression = CompressionConfig{}; // the defaults: on, level 1, 1024 bytes
    return config;
}

/// A GET through `client` with Accept-Encoding: gzip.
HttpResponse getGzip(HttpClient &client, const std::string &path, const std::string &extra = {}) {
    return client.get(path, AcceptGzip + extra);
}

double cpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

} // namespace

// gzip in the embedded proxy (issue 19), over real sockets: what nginx's `gzip on;
// gzip_proxied any; gzip_vary on; gzip_types ...` does, decoded by zlib's inflate and curl.
class TestProxyCompression : public QObject {
    Q_OBJECT

    TestBackend m_backend;
    ProxyEngine m_engine;

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_backend.start());
        QVERIFY(m_engine.start(configWithGzip(m_backend)).ok());
    }

    void acceptEncodingIsParsed_data() {
        QTest::addColumn<QString>("value");
        QTest::addColumn<bool>("accepts");
        QTest::newRow("gzip") << "gzip" << true;
        QTest::newRow("browser") << "gzip, deflate, br, zstd" << true;
        QTest::newRow("case") << "GZip" << true;
        QTest::newRow("x-gzip") << "x-gzip" << true;
        QTest::newRow("q=0.5") << "br;q=1.0, gzip;q=0.5" << true;
        QTest::newRow("q=0") << "gzip;q=0" << false;
        QTest::newRow("q=0.000 spaced") << "gzip ; q=0.000, br" << false;
        QTest::newRow("q=0.001") << "gzip;q=0.001" << true;
        QTest::newRow("Q=1") << "gzip;Q=1" << true;
        QTest::newRow("malformed q") << "gzip;q=2" << false;
        QTest::newRow("star") << "*" << true;
        QTest::newRow("star q=0") << "*;q=0" << false;
        QTest::newRow("gzip beats star") << "gzip;q=0, *" << false;
        QTest::newRow("identity only") << "identity" << false;
        QTest::newRow("empty") << "" << false;
        QTest::newRow("gzipx is another coding") << "gzipx" << false;
        // One Accept-Encoding header a line: together they are one list (RFC 9110 5.3).
        QTest::newRow("repeated, gzip last") << "identity\ngzip" << true;
        QTest::newRow("repeated, gzip first") << "gzip\nidentity" << true;
        QTest::newRow("repeated, refused then named") << "gzip;q=0\nGZIP" << true;
        QTest::newRow("repeated, refused") << "gzip;q=0\n*" << false;
        QTest::newRow("repeated, star") << "br\n\n*" << true;
    }
    void acceptEncodingIsParsed() {
        QFETCH(QString, value);
        QFETCH(bool, accepts);
        std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
        for (const QString &line : value.split(QLatin1Char('\n')))
            head += "Accept-Encoding: " + line.toStdString() + "\r\n";
        head += "\r\n";
        http::RequestHead request;
        QCOMPARE(http::parseRequest(head.data(), head.size(), http::HeadLimits{}, request), 0);
        QCOMPARE(proxy::requestAcceptsGzip(request), accepts);
    }

    void compressibleTypes_data() {
        QTest::addColumn<QString>("type");
        QTest::addColumn<bool>("compressible");
        QTest::newRow("html") << "text/html" << true;
        QTest::newRow("html charset") << "text/html; charset=utf-8" << true;
        QTest::newRow("upper") << "TEXT/HTML" << true;
        QTest::newRow("json") << "application/json;charset=UTF-8" << true;
        QTest::newRow("svg") << "image/svg+xml" << true;
        QTest::newRow("png") << "image/png" << false;
        QTest::newRow("csv") << "text/csv" << false;
        QTest::newRow("prefix only") << "text/htmlx" << false;
        QTest::newRow("none") << "" << false;
    }
    void compressibleTypes() {
        QFETCH(QString, type);
        QFETCH(bool, compressible);
        const proxy::CompressionPolicy policy{CompressionConfig{}};
        QCOMPARE(policy.compressibleType(type.toStdString()), compressible);
    }

    // Encoders are reused, not reallocated, up to the recent peak; a burst's extra ones go.
    void encoderPoolKeepsTheRecentPeak() {
        proxy::GzipEncoderPool pool(1);
        std::vector<http::GzipEncoder *> lent;
        for (int i = 0; i < 100; ++i)
            lent.push_back(pool.lend());
        QCOMPARE(pool.inUse(), 100);
        for (http::GzipEncoder *&e : lent)
            pool.giveBack(e);
        QCOMPARE(pool.idle(), size_t(100));
        QCOMPARE(pool.inUse(), 0);
        // One at a time for two trim periods: the first still saw the burst, the second not.
        for (int i = 0; i < 2 * proxy::GzipEncoderPool::TrimEvery; ++i) {
            http::GzipEncoder *e = pool.lend();
            QVERIFY(e && !e->finished());
            pool.giveBack(e);
            QVERIFY(!e);
        }
        QCOMPARE(pool.idle(), size_t(proxy::GzipEncoderPool::MinIdle));
        // Never more than MaxInUse at once: the next response goes out uncompressed.
        lent.clear();
        for (int i = 0; i < proxy::GzipEncoderPool::MaxInUse; ++i)
            lent.push_back(pool.lend());
        QVERIFY(!pool.lend());
        for (http::GzipEncoder *&e : lent)
            pool.giveBack(e);
    }

    // The tentpole: every framing a backend uses, small and large bodies, some sent slowly in
    // pieces, come out gzip-encoded and decode to the original, byte for byte.
    void compressesEachBackendFraming_data() {
        QTest::addColumn<QString>("frame");
        QTest::addColumn<int>("bytes");
        QTest::addColumn<int>("pieces");
        for (const char *frame : {"length", "chunked", "close"}) {
            QTest::addRow("%s 2 KiB", frame) << frame << 2048 << 1;
            QTest::addRow("%s 1 MiB", frame) << frame << (1 << 20) << 1;
            QTest::addRow("%s 100 KiB in 5 slow pieces", frame) << frame << 100 * 1024 << 5;
        }
    }
    void compressesEachBackendFraming() {
        QFETCH(QString, frame);
        QFETCH(int, bytes);
        QFETCH(int, pieces);
        HttpClient client(m_engine.port());
        const HttpResponse r =
            getGzip(client, "/text/" + std::to_string(bytes) + "?frame=" + frame.toStdString() +
                                "&pieces=" + std::to_string(pieces));
        QCOMPARE(r.status, 200);
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QCOMPARE(r.header("transfer-encoding"), std::string("chunked"));
        QVERIFY2(r.header("content-length").empty(), r.head.c_str());
        QCOMPARE(r.header("vary"), std::string("Accept-Encoding"));
        QVERIFY2(r.body.size() < size_t(bytes) / 2, "text compresses to less than half");
        const Inflated plain = gunzip(r.body);
        QVERIFY(plain.complete);
        QVERIFY(plain.text == textBody(size_t(bytes)));
        // Chunked to the client, the response left its connection usable (a close-delimited
        // backend response closes it, compressed or not).
        if (frame != QLatin1String("close")) QCOMPARE(getGzip(client, "/text/2048").status, 200);
    }

    // curl, a real client, decodes what the proxy sends.
    void curlDecodesIt() {
        QProcess curl;
        curl.start(
            QStringLiteral("curl"),
            {QStringLiteral("-sS"), QStringLiteral("--compressed"), QStringLiteral("-D"),
             QStringLiteral("/dev/stderr"),
             QStringLiteral("http://127.0.0.1:%1/text/300000?frame=chunked").arg(m_engine.port())});
        QVERIFY(curl.waitForFinished(10000));
        QCOMPARE(curl.exitCode(), 0);
        QVERIFY(curl.readAllStandardError().toLower().contains("content-encoding: gzip"));
        QVERIFY(curl.readAllStandardOutput().toStdString() == textBody(300000));
    }

    // Over TLS (the client's bytes through SSL_write), proxied and static, curl decodes it.
    void overTls() {
        QTemporaryDir data; // XDG_DATA_HOME: the dev CA is created under it
        QVERIFY(data.isValid());
        const QByteArray oldData = qgetenv("XDG_DATA_HOME");
        qputenv("XDG_DATA_HOME", data.path().toUtf8());
        QFile page(data.filePath(QStringLiteral("page.html")));
        QVERIFY(page.open(QIODevice::WriteOnly));
        page.write(QByteArray::fromStdString(textBody(200000)));
        page.close();
        ProxyConfig config = configWithGzip(m_backend);
        config.tls.enabled = true;
        config.staticFiles.root = data.path();
        ProxyEngine engine;
        const Result<void> started = engine.start(config);
        qputenv("XDG_DATA_HOME", oldData);
        QVERIFY2(started.ok(), qPrintable(started.error()));
        for (const auto &[path, bytes] :
             {std::pair{"/text/300000?frame=chunked", 300000}, {"/page.html", 200000}}) {
            QProcess curl;
            curl.start(QStringLiteral("curl"),
                       {QStringLiteral("-sS"), QStringLiteral("--compressed"),
                        QStringLiteral("--cacert"),
                        data.filePath(QStringLiteral("corral/ca/ca.pem")), QStringLiteral("-D"),
                        QStringLiteral("/dev/stderr"),
                        QStringLiteral("https://127.0.0.1:%1%2")
                            .arg(engine.port())
                            .arg(QLatin1String(path))});
            QVERIFY(curl.waitForFinished(10000));
            const QByteArray err = curl.readAllStandardError();
            QVERIFY2(curl.exitCode() == 0, err.constData());
            QVERIFY2(err.toLower().contains("content-encoding: gzip"), err.constData());
            QVERIFY(curl.readAllStandardOutput().toStdString() == textBody(size_t(bytes)));
        }
    }

    // A backend that sends part of a page and pauses: that part reaches the client (and
    // decodes) during the pause, not when the page is complete.
    void streamedPartsAreNotHeldBack() {
        HttpClient client(m_engine.port());
        QVERIFY(client.send("GET /text/8000?frame=chunked&pieces=2&gap=3000 HTTP/1.1\r\n"
                            "Host: test\r\n" +
                            std::string(AcceptGzip) + "\r\n"));
        const auto start = std::chrono::steady_clock::now();
        std::string half;
        // Raw chunks as they come; the first half must decode before the gap ends.
        while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500)) {
            if (!client.fill()) break;
            const std::string &raw = client.buffer();
            const size_t headEnd = raw.find("\r\n\r\n");
            if (headEnd == std::string::npos) continue;
            std::string gz;
            for (size_t at = headEnd + 4;;) {
                const size_t eol = raw.find("\r\n", at);
                if (eol == std::string::npos) break;
                const size_t size = std::stoul(raw.substr(at, eol - at), nullptr, 16);
                if (size == 0 || raw.size() < eol + 2 + size + 2) break;
                gz += raw.substr(eol + 2, size);
                at = eol + 2 + size + 2;
            }
            half = gunzip(gz).text;
            if (half.size() >= 4000) break;
        }
        QCOMPARE(half.size(), size_t(4000));
        QVERIFY(half == textBody(8000).substr(0, 4000));
        QVERIFY(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));
    }

    // Responses that must go out exactly as the backend sent them.
    void untouched_data() {
        QTest::addColumn<QString>("path");
        QTest::addColumn<QString>("acceptEncoding");
        QTest::addColumn<bool>("vary"); ///< a Vary: Accept-Encoding is still due
        QTest::newRow("already br") << "/text/4096?enc=br"
                                    << "gzip" << false;
        QTest::newRow("already gzip") << "/text/4096?enc=gzip&frame=chunked"
                                      << "gzip" << false;
        QTest::newRow("image/png") << "/text/4096?type=image/png"
                                   << "gzip" << false;
        QTest::newRow("1023 bytes") << "/text/1023"
                                    << "gzip" << false;
        QTest::newRow("no-transform") << "/text/4096?cc=public,+no-transform"
                                      << "gzip" << false;
        QTest::newRow("206") << "/text/4096?status=206"
                             << "gzip" << false;
        QTest::newRow("gzip;q=0") << "/text/4096"
                                  << "gzip;q=0, br" << true;
        QTest::newRow("no Accept-Encoding") << "/text/4096"
                                            << "" << true;
        QTest::newRow("no Accept-Encoding chunked") << "/text/4096?frame=chunked"
                                                    << "" << true;
    }
    void untouched() {
        QFETCH(QString, path);
        QFETCH(QString, acceptEncoding);
        QFETCH(bool, vary);
        HttpClient client(m_engine.port());
        const std::string extra = acceptEncoding.isEmpty()
                                      ? std::string()
                                      : "Accept-Encoding: " + acceptEncoding.toStdString() + "\r\n";
        const HttpResponse r = client.get(path.toStdString(), extra);
        QVERIFY2(r.status == 200 || r.status == 206, r.head.c_str());
        const std::string enc = path.contains(QStringLiteral("enc="))
                                    ? path.section(u'=', 1).section(u'&', 0, 0).toStdString()
                                    : "";
        QCOMPARE(r.header("content-encoding"), enc);
        const size_t bytes = std::stoul(path.mid(6).section(u'?', 0, 0).toStdString());
        QVERIFY(r.body == textBody(bytes)); // byte for byte
        if (!path.contains(QStringLiteral("chunked")))
            QCOMPARE(r.header("content-length"), std::to_string(bytes));
        QCOMPARE(r.header("vary"), std::string(vary ? "Accept-Encoding" : ""));
    }

    void minLengthIsInclusive() {
        HttpClient client(m_engine.port());
        const HttpResponse r = getGzip(client, "/text/1024");
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QVERIFY(gunzip(r.body).text == textBody(1024));
    }

    void headerRewrites() {
        HttpClient client(m_engine.port());
        HttpResponse r = getGzip(client, "/text/4096?etag=\"v1\"&vary=Cookie");
        QCOMPARE(r.header("etag"), std::string("W/\"v1\"")); // nginx weakens it the same way
        QCOMPARE(r.header("vary"), std::string("Cookie, Accept-Encoding"));
        QCOMPARE(r.head.find("Vary:", r.head.find("Vary:") + 1), std::string::npos);
        r = getGzip(client, "/text/4096?etag=W/\"v2\"&vary=accept-encoding");
        QCOMPARE(r.header("etag"), std::string("W/\"v2\""));
        QCOMPARE(r.header("vary"), std::string("accept-encoding")); // not twice
        r = getGzip(client, "/text/4096?type=application/json;+charset=utf-8&enc=identity");
        QCOMPARE(r.header("content-encoding"), std::string("gzip")); // identity replaced
        QCOMPARE(r.head.find("identity"), std::string::npos);
        QVERIFY(gunzip(r.body).text == textBody(4096));
    }

    // HEAD gets the head its GET would get (RFC 9110 9.3.2), and no body.
    void headGetsTheHeadOfGet() {
        HttpClient client(m_engine.port());
        QVERIFY(client.send("HEAD /text/4096 HTTP/1.1\r\nHost: test\r\n" + std::string(AcceptGzip) +
                            "\r\n"));
        const HttpResponse head = client.read(true);
        QCOMPARE(head.status, 200);
        QCOMPARE(head.header("content-encoding"), std::string("gzip"));
        QCOMPARE(head.header("transfer-encoding"), std::string("chunked"));
        QCOMPARE(head.header("vary"), std::string("Accept-Encoding"));
        QVERIFY(head.header("content-length").empty());
        QVERIFY(client.buffer().empty());
        // Nothing followed that head on the connection: the next answer is the next request's.
        const HttpResponse r = getGzip(client, "/text/2048");
        QCOMPARE(r.status, 200);
        QVERIFY(gunzip(r.body).text == textBody(2048));
    }

    void noBodyStatusesUntouched_data() {
        QTest::addColumn<int>("status");
        QTest::newRow("204") << 204;
        QTest::newRow("304") << 304;
    }
    void noBodyStatusesUntouched() {
        QFETCH(int, status);
        HttpClient client(m_engine.port());
        const HttpResponse r = getGzip(client, "/text/4096?status=" + std::to_string(status));
        QCOMPARE(r.status, status);
        QVERIFY2(r.header("content-encoding").empty(), r.head.c_str());
        QVERIFY(r.header("transfer-encoding").empty());
        QVERIFY(r.header("vary").empty());
        QVERIFY(client.buffer().empty());
        QCOMPARE(getGzip(client, "/text/2048").status, 200);
    }

    // Two compressed responses, then a plain one, on one client connection; the backend's
    // connection is reused for each.
    void keepAlive() {
        HttpClient client(m_engine.port());
        const int connections = m_backend.connections();
        for (int size : {5000, 70000}) {
            const HttpResponse r = getGzip(client, "/text/" + std::to_string(size));
            QCOMPARE(r.header("content-encoding"), std::string("gzip"));
            QVERIFY(gunzip(r.body).text == textBody(size_t(size)));
        }
        const HttpResponse plain = getGzip(client, "/text/3000?type=image/png");
        QVERIFY(plain.header("content-encoding").empty());
        QVERIFY(plain.body == textBody(3000));
        QVERIFY(!plain.closed);
        QVERIFY(m_backend.connections() - connections <= 1);
    }

    // An HTTP/1.0 client knows no chunks: the compressed body ends with the connection.
    void http10ClientGetsItCloseDelimited() {
        HttpClient client(m_engine.port());
        QVERIFY(client.send("GET /text/50000?frame=chunked HTTP/1.0\r\nHost: test\r\n" +
                            std::string(AcceptGzip) + "\r\n"));
        const HttpResponse r = client.read();
        QCOMPARE(r.status, 200);
        QVERIFY2(r.head.rfind("HTTP/1.0 200", 0) == 0, r.head.c_str());
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QVERIFY(r.header("transfer-encoding").empty());
        QVERIFY(r.header("content-length").empty());
        QCOMPARE(r.header("connection"), std::string("close"));
        QVERIFY(r.closed);
        const Inflated plain = gunzip(r.body);
        QVERIFY(plain.complete);
        QVERIFY(plain.text == textBody(50000));
    }

    void offInConfigUntouched() {
        ProxyConfig config = configWithGzip(m_backend);
        config.compression.gzip = false;
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        const HttpResponse r = getGzip(client, "/text/4096");
        QVERIFY(r.header("content-encoding").empty());
        QVERIFY(r.header("vary").empty());
        QCOMPARE(r.header("content-length"), std::string("4096"));
        QVERIFY(r.body == textBody(4096));
    }

    // A backend dying in the middle of the body: the client is cut off, never handed a
    // well-formed end (no last chunk, no gzip trailer) it would take for the whole page.
    void backendDyingMidBodyCutsTheClient_data() {
        QTest::addColumn<QString>("frame");
        QTest::newRow("length") << "length";
        QTest::newRow("chunked") << "chunked";
    }
    void backendDyingMidBodyCutsTheClient() {
        QFETCH(QString, frame);
        HttpClient client(m_engine.port());
        QVERIFY(client.send("GET /text/200000?cut=1&frame=" + frame.toStdString() +
                            " HTTP/1.1\r\nHost: test\r\n" + std::string(AcceptGzip) + "\r\n"));
        QVERIFY(client.waitClosed());
        const std::string &raw = client.buffer();
        QVERIFY2(raw.find("Content-Encoding: gzip") != std::string::npos,
                 raw.substr(0, 300).c_str());
        QVERIFY(raw.size() > 1000);
        QVERIFY(raw.find("\r\n0\r\n\r\n") == std::string::npos);
        const std::string body = raw.substr(raw.find("\r\n\r\n") + 4);
        QVERIFY(body.size() < 200000);
    }

    // Static files (StaticFiles, the proxy's own answers) under the same rules: compressible
    // types compressed from the file (small, large, and offloaded to the reader pool), the
    // rest and gzip_static's FILE.gz sent as they are.
    void staticFiles() {
        QTemporaryDir root;
        QVERIFY(root.isValid());
        const auto write = [&](const char *name, const std::string &bytes) {
            QFile file(root.filePath(QString::fromLatin1(name)));
            QVERIFY(file.open(QIODevice::WriteOnly));
            QCOMPARE(file.write(bytes.data(), qint64(bytes.size())), qint64(bytes.size()));
        };
        write("page.html", textBody(50000));
        write("app.js", textBody(3000));
        write("huge.txt", textBody(3 << 20)); // read ahead on the pool: over offloadMinBytes
        write("tiny.html", textBody(500));
        write("logo.png", textBody(5000));
        write("pre.css", textBody(4000));
        write("pre.css.gz", "not really gzip, sent as it is");
        ProxyConfig config = configWithGzip(m_backend);
        config.staticFiles.root = root.path();
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());

        for (const auto &[path, bytes] :
             {std::pair{"/page.html", 50000}, {"/app.js", 3000}, {"/huge.txt", 3 << 20}}) {
            const HttpResponse r = getGzip(client, path);
            QCOMPARE(r.status, 200);
            QCOMPARE(r.header("content-encoding"), std::string("gzip"));
            QCOMPARE(r.header("transfer-encoding"), std::string("chunked"));
            QCOMPARE(r.header("vary"), std::string("Accept-Encoding"));
            QVERIFY(r.header("content-length").empty());
            QVERIFY(r.header("accept-ranges").empty()); // ranges of the gzip bytes: none
            QVERIFY2(r.header("etag").rfind("W/\"", 0) == 0, r.head.c_str());
            const Inflated plain = gunzip(r.body);
            QVERIFY(plain.complete);
            QVERIFY2(plain.text == textBody(size_t(bytes)), path);
        }
        // Not accepted: the file as it is, with Vary.
        HttpResponse r = client.get("/page.html");
        QCOMPARE(r.header("content-length"), std::string("50000"));
        QCOMPARE(r.header("vary"), std::string("Accept-Encoding"));
        QVERIFY(r.body == textBody(50000));
        // HEAD: the GET's head.
        QVERIFY(client.send("HEAD /page.html HTTP/1.1\r\nHost: t\r\n" + std::string(AcceptGzip) +
                            "\r\n"));
        r = client.read(true);
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QCOMPARE(r.header("transfer-encoding"), std::string("chunked"));
        QVERIFY(r.header("content-length").empty());
        // A range is of the file's bytes: 206 as it is.
        r = getGzip(client, "/page.html", "Range: bytes=10-19\r\n");
        QCOMPARE(r.status, 206);
        QVERIFY(r.header("content-encoding").empty());
        QVERIFY(r.body == textBody(50000).substr(10, 10));
        for (const auto &[path, bytes] : {std::pair{"/tiny.html", 500}, {"/logo.png", 5000}}) {
            r = getGzip(client, path);
            QVERIFY(r.header("content-encoding").empty());
            QCOMPARE(r.header("content-length"), std::to_string(bytes));
            QVERIFY(r.body == textBody(size_t(bytes)));
        }
        r = getGzip(client, "/pre.css");
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QVERIFY(r.body == "not really gzip, sent as it is");
        // HTTP/1.0: the compressed file ends with the connection.
        HttpClient old(engine.port());
        QVERIFY(old.send("GET /page.html HTTP/1.0\r\n" + std::string(AcceptGzip) + "\r\n"));
        r = old.read();
        QCOMPARE(r.header("content-encoding"), std::string("gzip"));
        QVERIFY(r.closed);
        QVERIFY(gunzip(r.body).text == textBody(50000));
    }

    // The access log's $body_bytes_sent counts what went to the client: the compressed bytes.
    void accessLogCountsCompressedBytes() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QFile file(dir.filePath(QStringLiteral("page.html")));
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(QByteArray::fromStdString(textBody(40000)));
        file.close();
        ProxyConfig config = configWithGzip(m_backend);
        config.staticFiles.root = dir.path();
        config.accessLog.path = dir.filePath(QStringLiteral("access.log"));
        ProxyEngine engine;
        QVERIFY(engine.start(config).ok());
        HttpClient client(engine.port());
        const HttpResponse proxied = getGzip(client, "/text/40000?frame=chunked");
        const HttpResponse served = getGzip(client, "/page.html");
        QCOMPARE(served.header("content-encoding"), std::string("gzip"));
        QStringList lines;
        QVERIFY(waitFor([&] {
            QFile log(config.accessLog.path);
            if (!log.open(QIODevice::ReadOnly)) return false;
            lines = QString::fromUtf8(log.readAll()).split(u'\n', Qt::SkipEmptyParts);
            return lines.size() >= 2;
        }));
        // `"GET /path HTTP/1.1" 200 BYTES "`: the bytes sent, framing included, far below 40000.
        for (int i = 0; i < 2; ++i) {
            const QString line = lines[i];
            const qsizetype at = line.indexOf(QLatin1String("\" 200 "));
            QVERIFY2(at > 0, qPrintable(line));
            const qulonglong bytes = line.mid(at + 6).section(u' ', 0, 0).toULongLong();
            const size_t compressed = (i == 0 ? proxied : served).body.size();
            QVERIFY2(bytes > compressed && bytes < compressed + 200, qPrintable(line));
        }
    }

    // Figures for the report: CPU per 16 KiB text response compressed, and the ratio.
    void measureCpuAndRatio() {
        const std::string page = textBody(16384);
        http::GzipEncoder encoder(1);
        std::string out(32768, '\0');
        size_t compressed = 0;
        constexpr int Rounds = 2000;
        const double before = cpuSeconds();
        for (int i = 0; i < Rounds; ++i) {
            encoder.reset();
            const auto step = encoder.encode(page.data(), page.size(), out.data(), out.size(),
                                             http::GzipEncoder::Flush::Finish);
            compressed = step.produced;
        }
        const double encodeUs = (cpuSeconds() - before) / Rounds * 1e6;
        QVERIFY(encoder.finished());
        qInfo("gzip level 1, 16 KiB text: %.1f us CPU per response (encoder alone), %zu -> %zu "
              "bytes (ratio %.2f)",
              encodeUs, page.size(), compressed, double(page.size()) / double(compressed));

        // Through the proxy: the process's CPU (client, proxy, backend) per response, with
        // gzip and without (the image/png response is not compressed).
        const auto perResponseUs = [this](const std::string &path, const std::string &extra) {
            HttpClient client(m_engine.port());
            constexpr int Requests = 500;
            const double start = cpuSeconds();
            for (int i = 0; i < Requests; ++i)
                if (client.get(path, extra).status != 200) return -1.0;
            return (cpuSeconds() - start) / Requests * 1e6;
        };
        const double gzipUs = perResponseUs("/text/16384", AcceptGzip);
        const double plainUs = perResponseUs("/text/16384", "");
        QVERIFY(gzipUs > 0 && plainUs > 0);
        qInfo("through the proxy, 16 KiB text: %.1f us CPU per response gzipped, %.1f us "
              "plain (client, proxy and backend threads of this process)",
              gzipUs, plainUs);
    }
};

QTEST_GUILESS_MAIN(TestProxyCompression)
#include "tst_proxycompression.moc"
