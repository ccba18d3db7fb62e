#include "helpers/ProxyTestUtil.h"
#include "helpers/ResultVerify.h"
#include "net/DevCertificateAuthority.h"

#include <QCryptographicHash>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QSslConfiguration>
#include <QSslSocket>
#include <QTemporaryDir>
#include <QTest>

#include <thread>

using namespace corral;
using namespace corral::test;

namespace {

struct Run {
    int exitCode = -1;
    QByteArray out;
    QByteArray err;
};

/// Runs a real client (curl, openssl) to its end, bounded in time; `input` goes to its stdin.
Run run(const QString &program, const QStringList &arguments, const QByteArray &input = {}) {
    QProcess process;
    process.start(program, arguments);
    Run result;
    if (!process.waitForStarted(5000)) return result;
    process.write(input);
    process.closeWriteChannel();
    if (!process.waitForFinished(15000)) {
        process.kill();
        process.waitForFinished(2000);
        return result;
    }
    result.exitCode = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    result.out = process.readAllStandardOutput();
    result.err = process.readAllStandardError();
    return result;
}

QString url(quint16 port, const QString &path, const QString &host = QStringLiteral("localhost")) {
    return QStringLiteral("https://%1:%2%3").arg(host).arg(port).arg(path);
}

/// curl over HTTPS, trusting only `ca`.
Run curl(const QString &ca, const QStringList &arguments) {
    return run(QStringLiteral("curl"),
               QStringList{QStringLiteral("-sS"), QStringLiteral("--max-time"),
                           QStringLiteral("10"), QStringLiteral("--cacert"), ca} +
                   arguments);
}

/// A TLS handshake with openssl s_client and the given options; its output.
Run handshake(quint16 port, const QStringList &options) {
    return run(QStringLiteral("openssl"),
               QStringList{QStringLiteral("s_client"), QStringLiteral("-connect"),
                           QStringLiteral("127.0.0.1:%1").arg(port)} +
                   options,
               "Q\n");
}

QByteArray sha256Of(const QString &path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256).toHex();
}

/// A self-signed certificate and key for localhost, as a user would bring them.
bool makeSelfSigned(const QString &cert, const QString &key) {
    return run(QStringLiteral("openssl"),
               {QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                QStringLiteral("ec"), QStringLiteral("-pkeyopt"),
                QStringLiteral("ec_paramgen_curve:P-256"), QStringLiteral("-nodes"),
                QStringLiteral("-keyout"), key, QStringLiteral("-out"), cert,
                QStringLiteral("-subj"), QStringLiteral("/CN=localhost"), QStringLiteral("-addext"),
                QStringLiteral("subjectAltName=DNS:localhost"), QStringLiteral("-days"),
                QStringLiteral("2")})
               .exitCode == 0;
}

/// A TLS client socket that trusts only `ca`, connected and encrypted to localhost:`port`.
std::unique_ptr<QSslSocket> tlsSocket(quint16 port, const QString &ca) {
    auto socket = std::make_unique<QSslSocket>();
    QSslConfiguration config = QSslConfiguration::defaultConfiguration();
    config.setCaCertificates(QSslCertificate::fromPath(ca));
    socket->setSslConfiguration(config);
    socket->connectToHostEncrypted(QStringLiteral("localhost"), port);
    if (!socket->waitForEncrypted(5000)) return nullptr;
    return socket;
}

/// Reads from `socket` until `done(buffer)` or 5 s.
template <typename Done> QByteArray readUntil(QSslSocket &socket, Done done) {
    QByteArray buffer;
    QElapsedTimer timer;
    timer.start();
    while (!done(buffer) && timer.elapsed() < 5000) {
        if (socket.bytesAvailable() == 0) socket.waitForReadyRead(200);
        buffer += socket.readAll();
    }
    return buffer;
}

} // namespace

// HTTPS termination in the embedded proxy, checked with real TLS clients: curl, openssl
// s_client and QSslSocket, against the certificates of the local dev CA or the user's own.
class TestProxyTls : public QObject {
    Q_OBJECT

    TestBackend m_backend;
    QTemporaryDir m_data; ///< XDG_DATA_HOME: the dev CA lives under it
    QString m_caDir;
    QString m_ca;

    ProxyConfig tlsConfig() {
        ProxyConfig config = configFor({&m_backend});
        config.tls.enabled = true;
        return config;
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(m_backend.start());
        QVERIFY(m_data.isValid());
        qputenv("XDG_DATA_HOME", m_data.path().toUtf8());
        m_caDir = m_data.path() + QStringLiteral("/corral/ca");
        m_ca = m_caDir + QStringLiteral("/ca.pem");
        QCOMPARE(net::DevCertificateAuthority().caFile(), m_ca);
    }

    // The first start creates the CA; curl trusting it alone gets the backend's answer, and
    // the backend learns the request came over HTTPS.
    void curlTrustsTheDevCa() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        QVERIFY(QFile::exists(m_ca));
        const Run r = curl(m_ca, {url(engine.port(), QStringLiteral("/headers"))});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.out.contains("X-Forwarded-Proto: https\r\n"), r.out.constData());
        QVERIFY(!r.out.contains("X-Forwarded-Proto: http\r\n"));
        // The certificate covers the loopback addresses too.
        for (const QString &host : {QStringLiteral("127.0.0.1"), QStringLiteral("[::1]")}) {
            if (host.startsWith(u'[') && !QFile::exists(QStringLiteral("/proc/net/if_inet6")))
                continue;
            const Run ip =
                curl(m_ca, {QStringLiteral("--resolve"),
                            QStringLiteral("%1:%2:127.0.0.1").arg(host).arg(engine.port()),
                            url(engine.port(), QStringLiteral("/"), host)});
            if (host == QStringLiteral("127.0.0.1")) QVERIFY2(ip.exitCode == 0, ip.err.constData());
        }
    }

    void caFilesArePrivate() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        QCOMPARE(QFileInfo(m_caDir).permissions(), QFile::ReadOwner | QFile::WriteOwner |
                                                       QFile::ExeOwner | QFile::ReadUser |
                                                       QFile::WriteUser | QFile::ExeUser);
        const auto privateFile =
            QFile::ReadOwner | QFile::WriteOwner | QFile::ReadUser | QFile::WriteUser;
        QCOMPARE(QFileInfo(m_caDir + QStringLiteral("/ca-key.pem")).permissions(), privateFile);
        const QStringList keys = QDir(m_caDir).entryList({QStringLiteral("cert-*-key.pem")});
        QVERIFY(!keys.isEmpty());
        for (const QString &key : keys)
            QCOMPARE(QFileInfo(m_caDir + u'/' + key).permissions(), privateFile);
    }

    // A second start keeps the CA (same fingerprint: the user trusted it once) and issues a
    // certificate for names it did not cover.
    void secondStartReusesTheCa() {
        {
            ProxyEngine first;
            QVERIFY_RESULT(first.start(tlsConfig()));
        }
        const QByteArray fingerprint = sha256Of(m_ca);
        QVERIFY(!fingerprint.isEmpty());
        ProxyConfig config = tlsConfig();
        config.tls.hostNames = {QStringLiteral("myapp.test")};
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(config));
        QCOMPARE(sha256Of(m_ca), fingerprint);
        const Run r =
            curl(m_ca, {QStringLiteral("--resolve"),
                        QStringLiteral("myapp.test:%1:127.0.0.1").arg(engine.port()),
                        url(engine.port(), QStringLiteral("/"), QStringLiteral("myapp.test"))});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.out, QByteArray("ok " + QByteArray::number(m_backend.port()) + "\n"));
        // Same names again: the cached certificate, not a new one.
        net::DevCertificateAuthority ca;
        auto again = ca.certificateFor({QStringLiteral("myapp.test")});
        QVERIFY_RESULT(again);
        QVERIFY(!again->issued && !again->caCreated);
        QCOMPARE(again->caFingerprint.size(), 64);
        // A name that is not one is refused before it reaches the certificate.
        auto bad = ca.certificateFor({QStringLiteral("evil,DNS:bank.example")});
        QVERIFY(!bad);
        QVERIFY2(bad.error().contains(QStringLiteral("evil,DNS:bank.example")),
                 qPrintable(bad.error()));
    }

    // A cached certificate within 30 days of its end is issued anew; one still good is kept.
    void renewsNearExpiry() {
        QTemporaryDir dir;
        net::DevCertificateAuthority ca(dir.path() + QStringLiteral("/ca"));
        auto first = ca.certificateFor({QStringLiteral("soon.test")});
        QVERIFY_RESULT(first);
        // Replace it with one of the same key and CA that ends in 10 days.
        const QString csr = dir.filePath(QStringLiteral("csr.pem"));
        QCOMPARE(run(QStringLiteral("openssl"),
                     {QStringLiteral("req"), QStringLiteral("-new"), QStringLiteral("-key"),
                      first->keyFile, QStringLiteral("-subj"), QStringLiteral("/CN=soon.test"),
                      QStringLiteral("-out"), csr})
                     .exitCode,
                 0);
        QCOMPARE(run(QStringLiteral("openssl"),
                     {QStringLiteral("x509"), QStringLiteral("-req"), QStringLiteral("-in"), csr,
                      QStringLiteral("-CA"), first->caFile, QStringLiteral("-CAkey"),
                      ca.directory() + QStringLiteral("/ca-key.pem"), QStringLiteral("-days"),
                      QStringLiteral("10"), QStringLiteral("-out"), first->certFile})
                     .exitCode,
                 0);
        auto renewed = ca.certificateFor({QStringLiteral("soon.test")});
        QVERIFY_RESULT(renewed);
        QVERIFY(renewed->issued);
        QCOMPARE(renewed->caFingerprint, first->caFingerprint);
        const Run dates = run(QStringLiteral("openssl"),
                              {QStringLiteral("x509"), QStringLiteral("-in"), renewed->certFile,
                               QStringLiteral("-noout"), QStringLiteral("-checkend"),
                               QString::number(800 * 86400)});
        QVERIFY2(dates.exitCode == 0, dates.out.constData()); // good for 800 days and more
        auto kept = ca.certificateFor({QStringLiteral("soon.test")});
        QVERIFY_RESULT(kept);
        QVERIFY(!kept->issued);
    }

    // Two processes issuing at once (here: threads on a fresh directory) agree on one CA and
    // leave whole files.
    void concurrentIssuersAgree() {
        QTemporaryDir dir;
        const QString caDir = dir.path() + QStringLiteral("/ca");
        Result<net::DevCertificate> results[2] = {fail(QString()), fail(QString())};
        std::thread a([&] {
            results[0] =
                net::DevCertificateAuthority(caDir).certificateFor({QStringLiteral("a.test")});
        });
        std::thread b([&] {
            results[1] =
                net::DevCertificateAuthority(caDir).certificateFor({QStringLiteral("b.test")});
        });
        a.join();
        b.join();
        QVERIFY_RESULT(results[0]);
        QVERIFY_RESULT(results[1]);
        QCOMPARE(results[0]->caFingerprint, results[1]->caFingerprint);
        QVERIFY(results[0]->caCreated != results[1]->caCreated);
        QVERIFY(QDir(caDir).entryList({QStringLiteral("*.tmp-*")}).isEmpty());
        const Run verify =
            run(QStringLiteral("openssl"),
                {QStringLiteral("verify"), QStringLiteral("-CAfile"),
                 caDir + QStringLiteral("/ca.pem"), results[0]->certFile, results[1]->certFile});
        QVERIFY2(verify.exitCode == 0, QByteArray(verify.out + verify.err).constData());
    }

    void onlyTls12AndLater() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        // The client side allows the old versions (SECLEVEL=0), so a failure is the server's.
        for (const char *old : {"-tls1", "-tls1_1"}) {
            const Run r =
                handshake(engine.port(), {QString::fromLatin1(old), QStringLiteral("-cipher"),
                                          QStringLiteral("DEFAULT@SECLEVEL=0")});
            QVERIFY2(r.exitCode != 0, r.out.constData());
            QVERIFY2(r.err.contains("alert protocol version") ||
                         r.err.contains("unsupported protocol"),
                     r.err.constData());
        }
        for (const char *modern : {"-tls1_2", "-tls1_3"}) {
            const Run r = handshake(
                engine.port(), {QString::fromLatin1(modern), QStringLiteral("-alpn"),
                                QStringLiteral("h2,http/1.1"), QStringLiteral("-CAfile"), m_ca});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            QVERIFY2(r.out.contains("ALPN protocol: http/1.1"), r.out.constData());
            QVERIFY2(r.out.contains("Verify return code: 0 (ok)"), r.out.constData());
            QVERIFY2(r.out.contains(modern[6] == '2' ? "TLSv1.2" : "TLSv1.3"), r.out.constData());
        }
    }

    // A returning client resumes its session (TLS 1.2 and 1.3 tickets): no full handshake.
    void sessionsResume() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        QTemporaryDir dir;
        const QByteArray request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        for (const char *version : {"-tls1_2", "-tls1_3"}) {
            const QString session = dir.filePath(QString::fromLatin1(version));
            // A whole request, read to the server's close: a TLS 1.3 ticket comes after the
            // handshake, and s_client quitting at once could leave before it.
            const auto connect = [&](const QString &sessionOption) {
                return run(QStringLiteral("openssl"),
                           {QStringLiteral("s_client"), QStringLiteral("-ign_eof"),
                            QStringLiteral("-connect"),
                            QStringLiteral("127.0.0.1:%1").arg(engine.port()),
                            QString::fromLatin1(version), sessionOption, session},
                           request);
            };
            const Run first = connect(QStringLiteral("-sess_out"));
            QVERIFY2(first.exitCode == 0 && first.out.contains("New, TLSv1."),
                     first.out.constData());
            const Run again = connect(QStringLiteral("-sess_in"));
            QVERIFY2(again.exitCode == 0 && again.out.contains("Reused, TLSv1."),
                     QByteArray(again.out + again.err).constData());
        }
    }

    // The user's own certificate and key; a key of another certificate is refused at start
    // with the files named.
    void givenCertificateAndKey() {
        QTemporaryDir dir;
        const QString cert = dir.filePath(QStringLiteral("site.pem"));
        const QString key = dir.filePath(QStringLiteral("site-key.pem"));
        const QString otherCert = dir.filePath(QStringLiteral("other.pem"));
        const QString otherKey = dir.filePath(QStringLiteral("other-key.pem"));
        QVERIFY(makeSelfSigned(cert, key));
        QVERIFY(makeSelfSigned(otherCert, otherKey));
        ProxyConfig config = tlsConfig();
        config.tls.certFile = cert;
        config.tls.keyFile = key;
        {
            ProxyEngine engine;
            QVERIFY_RESULT(engine.start(config));
            const Run r = curl(cert, {url(engine.port(), QStringLiteral("/"))});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            QVERIFY(r.out.startsWith("ok "));
            // The dev CA's certificate is not what it serves.
            QVERIFY(curl(m_ca, {url(engine.port(), QStringLiteral("/"))}).exitCode != 0);
        }
        config.tls.keyFile = otherKey;
        ProxyEngine wrongKey;
        auto started = wrongKey.start(config);
        QVERIFY(!started);
        QVERIFY2(started.error().contains(otherKey) && started.error().contains(cert),
                 qPrintable(started.error()));
        QVERIFY(!wrongKey.isRunning());
        config.tls.keyFile = dir.filePath(QStringLiteral("missing.pem"));
        started = wrongKey.start(config);
        QVERIFY(!started);
        QVERIFY2(started.error().contains(config.tls.keyFile), qPrintable(started.error()));
        config.tls.keyFile = cert; // a certificate where the key should be
        started = wrongKey.start(config);
        QVERIFY(!started);
        QVERIFY2(started.error().contains(cert), qPrintable(started.error()));
    }

    void plainHttpOnTheTlsPortIsClosed() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        HttpClient plain(engine.port());
        QVERIFY(plain.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        QVERIFY(plain.waitClosed());
        QVERIFY(plain.buffer().find("ok ") == std::string::npos);
        const Run r = curl(m_ca, {url(engine.port(), QStringLiteral("/"))});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(waitFor([&] { return engine.snapshot().connectionsOpen == 0; }));
    }

    // A client that stops in the middle of its handshake (or never starts it) is cut at the
    // header timeout, like a slowloris request head.
    void stalledHandshakeIsCut() {
        ProxyConfig config = tlsConfig();
        config.limits.headerTimeoutMs = 300;
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(config));
        QElapsedTimer timer;
        timer.start();
        HttpClient partial(engine.port());
        QVERIFY(partial.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
        HttpClient silent(engine.port());
        QVERIFY(silent.send(std::string("\x16", 1)));
        QVERIFY(partial.waitClosed());
        QVERIFY(silent.waitClosed());
        QVERIFY2(timer.elapsed() >= 250 && timer.elapsed() < 3000,
                 qPrintable(QString::number(timer.elapsed())));
        QVERIFY(waitFor([&] { return engine.snapshot().connectionsOpen == 0; }));
    }

    void webSocketOverTls() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        auto socket = tlsSocket(engine.port(), m_ca);
        QVERIFY(socket);
        socket->write("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: x\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n");
        const QByteArray head =
            readUntil(*socket, [](const QByteArray &b) { return b.contains("\r\n\r\n"); });
        QVERIFY2(head.startsWith("HTTP/1.1 101 "), head.constData());
        for (int i = 0; i < 20; ++i) {
            const QByteArray frame = "frame-" + QByteArray::number(i) + QByteArray(i * 500, 'w');
            socket->write(frame);
            const QByteArray echoed =
                readUntil(*socket, [&](const QByteArray &b) { return b.size() >= frame.size(); });
            QCOMPARE(echoed, frame);
        }
        QCOMPARE(engine.snapshot().backends[0].inFlight, int64_t(1));
        socket->disconnectFromHost(); // close_notify, then the FIN
        if (socket->state() != QAbstractSocket::UnconnectedState)
            QVERIFY(socket->waitForDisconnected(5000));
        QVERIFY(waitFor([&] { return engine.snapshot().backends[0].inFlight == 0; }));
    }

    // 100 requests on one TLS connection (curl reuses it for every URL of one invocation),
    // then a 1 MiB body byte for byte.
    void keepAliveAndLargeBodies() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        QStringList arguments = {QStringLiteral("-w"),
                                 QStringLiteral("%{http_code} %{num_connects}\\n")};
        for (int i = 0; i < 100; ++i)
            arguments << QStringLiteral("-o") << QStringLiteral("/dev/null")
                      << url(engine.port(), QStringLiteral("/"));
        const Run r = curl(m_ca, arguments);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QList<QByteArray> lines = r.out.trimmed().split('\n');
        QCOMPARE(lines.size(), 100);
        QCOMPARE(lines[0], QByteArray("200 1"));
        for (int i = 1; i < 100; ++i)
            QCOMPARE(lines[i], QByteArray("200 0"));
        QCOMPARE(engine.snapshot().connectionsAccepted, uint64_t(1));

        QTemporaryDir dir;
        const QString file = dir.filePath(QStringLiteral("body"));
        const Run big = curl(m_ca, {QStringLiteral("-o"), file,
                                    url(engine.port(), QStringLiteral("/pattern/1024"))});
        QVERIFY2(big.exitCode == 0, big.err.constData());
        QFile body(file);
        QVERIFY(body.open(QIODevice::ReadOnly));
        const QByteArray bytes = body.readAll();
        QCOMPARE(bytes.size(), 1024 * 1024);
        for (qsizetype i = 0; i < bytes.size(); ++i)
            if (bytes[i] != patternByte(size_t(i))) QFAIL(qPrintable(QString::number(i)));
    }

    // A 1 MiB request body through TLS to the backend and back (back-pressure both ways while
    // OpenSSL may hold decrypted bytes no poller event announces).
    void largeUploadEchoed() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        QTemporaryDir dir;
        QByteArray content(1024 * 1024, Qt::Uninitialized);
        for (qsizetype i = 0; i < content.size(); ++i)
            content[i] = patternByte(size_t(i) * 3);
        const QString upload = dir.filePath(QStringLiteral("up"));
        QFile file(upload);
        QVERIFY(file.open(QIODevice::WriteOnly) && file.write(content) == content.size());
        file.close();
        const Run r =
            curl(m_ca, {QStringLiteral("--data-binary"), u'@' + upload, QStringLiteral("-H"),
                        QStringLiteral("Expect:"), url(engine.port(), QStringLiteral("/echo"))});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.out.size(), content.size());
        QVERIFY(r.out == content);
    }

    // Static files go out by the copy path (pread into the buffer, then SSL_write), never by
    // sendfile(2), which would put plaintext on the TLS connection.
    void staticFilesOverTls() {
        QTemporaryDir root;
        QByteArray content(300 * 1024, Qt::Uninitialized);
        for (qsizetype i = 0; i < content.size(); ++i)
            content[i] = patternByte(size_t(i));
        QFile file(root.filePath(QStringLiteral("app.bin")));
        QVERIFY(file.open(QIODevice::WriteOnly) && file.write(content) == content.size());
        file.close();
        ProxyConfig config = tlsConfig();
        config.staticFiles.root = root.path();
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(config));
        QTemporaryDir out;
        const QString saved = out.filePath(QStringLiteral("got"));
        const Run r =
            curl(m_ca, {QStringLiteral("-o"), saved, url(engine.port(), QStringLiteral("/app.bin")),
                        url(engine.port(), QStringLiteral("/"))});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QFile got(saved);
        QVERIFY(got.open(QIODevice::ReadOnly));
        QVERIFY(got.readAll() == content);
        QCOMPARE(r.out, QByteArray("ok " + QByteArray::number(m_backend.port()) + "\n"));
    }

    // A client that asked to close gets close_notify after its response: over TLS that is
    // what tells a complete response from a cut one.
    void closeNotifyEndsAResponse() {
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(tlsConfig()));
        const Run r =
            run(QStringLiteral("openssl"),
                {QStringLiteral("s_client"), QStringLiteral("-quiet"), QStringLiteral("-ign_eof"),
                 QStringLiteral("-connect"), QStringLiteral("127.0.0.1:%1").arg(engine.port())},
                "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        QVERIFY2(r.out.endsWith(QByteArray("ok " + QByteArray::number(m_backend.port()) + "\n")),
                 r.out.constData());
        QVERIFY2(!r.err.contains("unexpected eof"), r.err.constData());
    }

    // --redirect-http: a 301 to the same path on https://, the Host's name kept when it is a
    // name, the listen address when it is hostile.
    void redirectHttpToHttps() {
        ProxyConfig config = tlsConfig();
        config.tls.redirectHttpListen = QStringLiteral("127.0.0.1:0");
        ProxyEngine engine;
        QVERIFY_RESULT(engine.start(config));
        QVERIFY(engine.redirectPort() != 0);
        const QString https = QString::number(engine.port());
        const auto redirectOf = [&](const std::string &host, const std::string &target) {
            HttpClient client(engine.redirectPort());
            client.send("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
            return client.read();
        };
        HttpResponse r = redirectOf("example.test:8080", "/a/b?c=d");
        QCOMPARE(r.status, 301);
        QCOMPARE(QString::fromStdString(r.header("location")),
                 QStringLiteral("https://example.test:%1/a/b?c=d").arg(https));
        QCOMPARE(r.header("connection"), std::string("close"));
        {
            HttpClient client(engine.redirectPort());
            QVERIFY(client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
            QVERIFY(client.waitClosed());
            QVERIFY(client.buffer().starts_with("HTTP/1.1 301 "));
        }
        r = redirectOf("[::1]:80", "/");
        QCOMPARE(QString::fromStdString(r.header("location")),
                 QStringLiteral("https://[::1]:%1/").arg(https));
        for (const char *hostile : {"evil.test/x", "a<b>", "example.test:80@evil", "%0d%0a"}) {
            r = redirectOf(hostile, "/p");
            QCOMPARE(r.status, 301);
            QCOMPARE(QString::fromStdString(r.header("location")),
                     QStringLiteral("https://127.0.0.1:%1/p").arg(https));
        }
        // curl follows it to the HTTPS side.
        const Run followed =
            curl(m_ca, {QStringLiteral("-L"),
                        QStringLiteral("http://localhost:%1/headers").arg(engine.redirectPort())});
        QVERIFY2(followed.exitCode == 0, followed.err.constData());
        QVERIFY(followed.out.contains("X-Forwarded-Proto: https\r\n"));
        // Without TLS there is nothing to redirect to.
        ProxyConfig plain = configFor({&m_backend});
        plain.tls.redirectHttpListen = QStringLiteral("127.0.0.1:0");
        ProxyEngine refused;
        QVERIFY(!refused.start(plain));
    }
};

QTEST_GUILESS_MAIN(TestProxyTls)
#include "tst_proxytls.moc"
