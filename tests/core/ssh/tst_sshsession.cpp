#include "ResultVerify.h"
#include "SmallTmpfs.h"
#include "SshServer.h"
#include "ssh/CredentialStore.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshHost.h"
#include "ssh/SshSession.h"

#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTest>

#include <atomic>
#include <thread>

#include <sys/stat.h>

using namespace corral;

/// Strings that break naive command building.
static QStringList hostileStrings() {
    return {QStringLiteral("two words"),
            QStringLiteral("it's"),
            QStringLiteral("\"double\""),
            QStringLiteral("$(touch /tmp/corral-pwned)"),
            QStringLiteral("`touch /tmp/corral-pwned`"),
            QStringLiteral("line1\nline2"),
            QStringLiteral("-rf"),
            QStringLiteral("--help"),
            QStringLiteral("semi;colon && echo pwned | cat > /tmp/corral-pwned"),
            QStringLiteral("back\\slash\\"),
            QStringLiteral("glob*?[a]"),
            QStringLiteral("$HOME ${PATH} ~"),
            QStringLiteral("'''"),
            QStringLiteral("tab\there"),
            QStringLiteral("ünïcødé ✓"),
            QString()};
}

class TestSshSession : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    SshServer m_second{QStringLiteral("127.0.0.3")};

private Q_SLOTS:
    void initTestCase() {
        QFile::remove(QStringLiteral("/tmp/corral-pwned"));
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        QVERIFY2(m_second.start(&error), qPrintable(error));
    }

    void shellQuoteUnits() {
        QCOMPARE(shellQuote(QStringLiteral("plain-word_1.2/x")),
                 QStringLiteral("plain-word_1.2/x"));
        QCOMPARE(shellQuote(QString()), QStringLiteral("''"));
        QCOMPARE(shellQuote(QStringLiteral("it's")), QStringLiteral("'it'\\''s'"));
        QCOMPARE(shellQuote(QStringLiteral("$(x)")), QStringLiteral("'$(x)'"));
        QCOMPARE(
            shellCommand({QStringLiteral("printf"), QStringLiteral("%s"), QStringLiteral("a b")}),
            QStringLiteral("printf %s 'a b'"));
    }

    // Issue 14 item 1: on a full disk, accepting a new host key used to report success while
    // libssh's buffered append failed, leaving the key unrecorded or a torn line. Now the
    // connect fails naming the file and the cause, and the file is as it was.
    void acceptingAKeyOnAFullDiskKeepsKnownHosts() {
        corral::test::SmallTmpfs disk;
        QString error;
        if (!disk.mount(QStringLiteral("64k"), &error)) QSKIP(qPrintable(error));
        SshConfig config = m_server.config();
        config.knownHostsFile = disk.filePath(QStringLiteral("known_hosts"));
        // Comment lines filling a page but the last 40 bytes: an append in place would fit
        // only partly.
        QByteArray before;
        while (before.size() < 4096 - 40 - 64)
            before += "# a host Corral trusted earlier, kept by the test as padding\n";
        before += QByteArray(4096 - 40 - before.size() - 1, '#') + '\n';
        QCOMPARE(before.size(), 4096 - 40);
        {
            QFile file(config.knownHostsFile);
            QVERIFY(file.open(QIODevice::WriteOnly));
            QCOMPARE(file.write(before), before.size());
        }
        QVERIFY2(disk.fill(&error), qPrintable(error));

        SshSession session(config);
        session.setAcceptNew(true);
        const auto connected = session.connect();
        QVERIFY2(!connected, "connected although the host key could not be recorded");
        const QString expected =
            QStringLiteral(": cannot record the host key: %1: cannot save: No space left on device")
                .arg(config.knownHostsFile);
        QVERIFY2(connected.error().endsWith(expected), qPrintable(connected.error()));
        QFile file(config.knownHostsFile);
        QVERIFY(file.open(QIODevice::ReadOnly));
        QCOMPARE(file.readAll(), before);

        // With room again the key is recorded after the existing lines.
        QVERIFY(QFile::remove(disk.filePath(QStringLiteral("filler"))));
        QVERIFY_RESULT(session.connect());
        file.close();
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray after = file.readAll();
        QVERIFY(after.startsWith(before));
        QVERIFY2(after.mid(before.size())
                     .startsWith(QStringLiteral("[%1]:%2 ssh-ed25519 ")
                                     .arg(m_server.address())
                                     .arg(m_server.port())
                                     .toUtf8()),
                 after.mid(before.size()).constData());
        QVERIFY(after.endsWith('\n'));
    }

    void unknownHostKeyThenAcceptNew() {
        SshConfig config = m_server.config();
        QFile::remove(config.knownHostsFile);
        SshSession session(config);
        auto first = session.connect();
        QVERIFY(!first);
        QCOMPARE(session.lastFailure(), SshFailure::HostKeyUnknown);
        QCOMPARE(session.serverFingerprint(), m_server.hostFingerprint());
        QVERIFY2(first.error().contains(m_server.hostFingerprint()), qPrintable(first.error()));
        QVERIFY2(first.error().contains(QStringLiteral("--accept-new")), qPrintable(first.error()));
        QVERIFY(!QFile::exists(config.knownHostsFile));

        // A confirmation of another fingerprint does not trust this key.
        session.setAcceptFingerprint(QStringLiteral("SHA256:somethingelse"));
        QVERIFY(!session.connect());
        QCOMPARE(session.lastFailure(), SshFailure::HostKeyUnknown);

        session.setAcceptFingerprint(QString());
        session.setAcceptNew(true);
        QVERIFY_RESULT(session.connect());
        QFile known(config.knownHostsFile);
        QVERIFY(known.open(QIODevice::ReadOnly));
        const QByteArray entry = known.readAll();
        QVERIFY2(entry.contains(QStringLiteral("[%1]:%2 ssh-ed25519 ")
                                    .arg(m_server.address())
                                    .arg(m_server.port())
                                    .toUtf8()),
                 entry.constData());

        // Known now: no acceptance needed.
        SshSession again(config);
        QVERIFY_RESULT(again.connect());

        // A key OpenSSH already trusts (~/.ssh/known_hosts) is trusted, and Corral's file is
        // not written.
        QDir().mkpath(QFileInfo(config.userKnownHostsFile).absolutePath());
        QFile::remove(config.userKnownHostsFile);
        QVERIFY(QFile::copy(config.knownHostsFile, config.userKnownHostsFile));
        QFile::remove(config.knownHostsFile);
        SshSession viaUserFile(config);
        QVERIFY_RESULT(viaUserFile.connect());
        QVERIFY(!QFile::exists(config.knownHostsFile));
        QFile::remove(config.userKnownHostsFile);
    }

    void execReturnsOutputAndStatus() {
        SshSession session(m_server.trustedConfig());
        auto result = session.exec(QStringLiteral("echo out; echo err >&2; exit 3"), 10000);
        QVERIFY_RESULT(result);
        QCOMPARE(result->stdOut, QByteArray("out\n"));
        QCOMPARE(result->stdErr, QByteArray("err\n"));
        QCOMPARE(result->exitStatus, 3);
        auto echoed = session.exec(QStringLiteral("cat"), 10000, QByteArray("from stdin"));
        QVERIFY_RESULT(echoed);
        QCOMPARE(echoed->stdOut, QByteArray("from stdin"));
        // Large output on both streams at once must not deadlock on window sizes.
        auto big = session.exec(
            QStringLiteral("head -c 3000000 /dev/zero; head -c 1000000 /dev/zero >&2"), 20000);
        QVERIFY_RESULT(big);
        QCOMPARE(big->stdOut.size(), 3000000);
        QCOMPARE(big->stdErr.size(), 1000000);
        auto killed = session.exec(QStringLiteral("kill -9 $$"), 10000);
        QVERIFY_RESULT(killed);
        QCOMPARE(killed->exitStatus, -1);
    }

    void hostileStringsArriveLiterally() {
        SshSession session(m_server.trustedConfig());
        for (const QString &word : hostileStrings()) {
            auto result = session.exec(
                shellCommand({QStringLiteral("printf"), QStringLiteral("%s"), word}), 10000);
            QVERIFY_RESULT(result);
            QCOMPARE(QString::fromUtf8(result->stdOut), word);
            // Through sh -c as a script argument too (how the batched commands run).
            auto nested =
                session.exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                           QStringLiteral("printf %s ") + shellQuote(word)}),
                             10000);
            QVERIFY_RESULT(nested);
            QCOMPARE(QString::fromUtf8(nested->stdOut), word);
        }
        // Hostile file names through upload (SFTP path + mv over an exec channel).
        const QString dir = m_server.directory() + QStringLiteral("/hostile");
        QDir().mkpath(dir);
        for (const QString &word : hostileStrings()) {
            if (word.isEmpty()) continue;
            const QString name = QString(word).replace(QLatin1Char('/'), QLatin1Char('_'));
            const QString path = dir + QLatin1Char('/') + name;
            QVERIFY_RESULT(session.upload(word.toUtf8(), path));
            QFile file(path);
            QVERIFY2(file.open(QIODevice::ReadOnly), qPrintable(path));
            QCOMPARE(QString::fromUtf8(file.readAll()), word);
        }
        QVERIFY(!QFile::exists(QStringLiteral("/tmp/corral-pwned")));
    }

    void keyNotAuthorised() {
        SshConfig config = m_server.trustedConfig();
        config.keyPath = m_server.strangerKey();
        SshSession session(config);
        auto result = session.connect();
        QVERIFY(!result);
        QCOMPARE(session.lastFailure(), SshFailure::AuthFailed);
        QVERIFY2(result.error().contains(QStringLiteral("authentication failed")),
                 qPrintable(result.error()));
        QVERIFY2(result.error().contains(m_server.address()), qPrintable(result.error()));

        config.keyPath = m_server.directory() + QStringLiteral("/no-such-key");
        SshSession missing(config);
        auto noKey = missing.connect();
        QVERIFY(!noKey);
        QCOMPARE(missing.lastFailure(), SshFailure::KeyUnreadable);
        QVERIFY2(noKey.error().contains(QStringLiteral("does not exist")),
                 qPrintable(noKey.error()));

        // Password auth without a password is refused before asking the server.
        config.auth = Host::Auth::Password;
        SshSession noPassword(config);
        QVERIFY(!noPassword.connect());
        QCOMPARE(noPassword.lastFailure(), SshFailure::AuthFailed);
    }

    void commandTimeoutLeavesSessionUsable() {
        SshSession session(m_server.trustedConfig());
        QVERIFY_RESULT(session.connect());
        QElapsedTimer clock;
        clock.start();
        auto result = session.exec(QStringLiteral("sleep 10"), 500);
        QVERIFY(!result);
        QCOMPARE(session.lastFailure(), SshFailure::Timeout);
        QVERIFY2(clock.elapsed() < 3000, qPrintable(QString::number(clock.elapsed())));
        auto after = session.exec(QStringLiteral("echo ok"), 5000);
        QVERIFY_RESULT(after);
        QCOMPARE(after->stdOut, QByteArray("ok\n"));
    }

    void atomicUpload() {
        SshSession session(m_server.trustedConfig());
        const QString dir = m_server.directory() + QStringLiteral("/upload");
        QDir().mkpath(dir);
        const QString target = dir + QStringLiteral("/config.json");
        const QByteArray first(200000, 'a');
        const QByteArray second(4000000, 'b');
        QVERIFY_RESULT(session.upload(first, target, 0640));
        struct stat before {};
        QCOMPARE(::stat(QFile::encodeName(target).constData(), &before), 0);
        QCOMPARE(before.st_mode & 0777, 0640u);

        // A reader running during the replace must only ever see a whole old or new file.
        std::atomic<bool> done{false};
        std::atomic<int> reads{0}, torn{0};
        std::thread reader([&] {
            while (!done) {
                QFile file(target);
                if (!file.open(QIODevice::ReadOnly)) {
                    ++torn; // the target must never be missing either
                    continue;
                }
                const QByteArray content = file.readAll();
                if (content != first && content != second) ++torn;
                ++reads;
            }
        });
        const auto uploaded = session.upload(second, target, 0640);
        done = true;
        reader.join();
        QVERIFY_RESULT(uploaded);
        QCOMPARE(torn.load(), 0);
        QVERIFY(reads.load() > 0);
        struct stat after {};
        QCOMPARE(::stat(QFile::encodeName(target).constData(), &after), 0);
        QVERIFY(after.st_ino != before.st_ino); // replaced by rename, not rewritten in place
        QFile file(target);
        QVERIFY(file.open(QIODevice::ReadOnly));
        QCOMPARE(file.readAll(), second);
        // No temporary file left behind, and a failed upload leaves none either.
        QCOMPARE(QDir(dir).entryList(QDir::Files | QDir::Hidden).size(), 1);
        auto failed = session.upload(first, dir + QStringLiteral("/missing-dir/file"));
        QVERIFY(!failed);
        QVERIFY2(failed.error().contains(QStringLiteral("missing-dir")),
                 qPrintable(failed.error()));
        QCOMPARE(QDir(dir).entryList(QDir::Files | QDir::Hidden).size(), 1);
    }

    void hostsRunInParallelOffTheCallerThread() {
        SshConfig first = m_server.trustedConfig();
        SshConfig second = m_second.trustedConfig();
        SshPool pool;
        SshHost *a = pool.host(QStringLiteral("a"), first);
        SshHost *b = pool.host(QStringLiteral("b"), second);
        QSignalSpy online(a, &SshHost::online);
        // Connect both first so the timing below is about commands only.
        int connected = 0;
        a->connectToHost(this, [&](Result<void> r) { connected += r.ok(); });
        b->connectToHost(this, [&](Result<void> r) { connected += r.ok(); });
        QTRY_COMPARE_WITH_TIMEOUT(connected, 2, 10000);
        QTRY_COMPARE(online.size(), 1);
        QVERIFY(a->isOnline());

        QElapsedTimer clock;
        clock.start();
        QStringList answers;
        bool onCallerThread = true;
        for (SshHost *host : {a, b})
            host->exec(QStringLiteral("sleep 1; hostname -I >/dev/null 2>&1; echo done"), 10000,
                       this, [&, host](Result<ExecResult> r) {
                           onCallerThread = onCallerThread && QThread::currentThread() == thread();
                           answers.append(host->name() + QLatin1Char(':') +
                                          (r ? QString::fromUtf8(r->stdOut).trimmed() : r.error()));
                       });
        QTRY_COMPARE_WITH_TIMEOUT(answers.size(), 2, 10000);
        const qint64 elapsed = clock.elapsed();
        answers.sort();
        QCOMPARE(answers, QStringList({QStringLiteral("a:done"), QStringLiteral("b:done")}));
        QVERIFY(onCallerThread);
        qInfo("two 1 s commands on two hosts: %lld ms", elapsed);
        // Run one after the other they could not take less than 2000 ms.
        QVERIFY2(elapsed < 2000,
                 qPrintable(QStringLiteral("two 1 s commands took %1 ms").arg(elapsed)));

        // A context destroyed before the answer: the callback is dropped, nothing crashes.
        bool called = false;
        auto *context = new QObject;
        a->exec(QStringLiteral("sleep 0.2"), 5000, context,
                [&](Result<ExecResult>) { called = true; });
        delete context;
        bool later = false;
        a->exec(QStringLiteral("true"), 5000, this, [&](Result<ExecResult>) { later = true; });
        QTRY_VERIFY(later);
        QVERIFY(!called);

        // Removing a host in the middle of a command does not wait for the command.
        a->exec(QStringLiteral("sleep 20"), 30000, this, [](Result<ExecResult>) {});
        QTest::qWait(200);
        clock.restart();
        pool.remove(QStringLiteral("a"));
        QVERIFY2(clock.elapsed() < 3000, qPrintable(QString::number(clock.elapsed())));
    }

    void changedHostKeyRefused() {
        SshSession session(m_server.trustedConfig());
        QVERIFY_RESULT(session.connect());
        const QString oldFingerprint = m_server.hostFingerprint();
        QString error;
        QVERIFY2(m_server.restartWithNewHostKey(&error), qPrintable(error));
        const QString newFingerprint = m_server.hostFingerprint();
        QVERIFY(oldFingerprint != newFingerprint);
        SshSession again(m_server.trustedConfig()); // even with accept-new
        auto result = again.connect();
        QVERIFY(!result);
        QCOMPARE(again.lastFailure(), SshFailure::HostKeyChanged);
        QCOMPARE(again.knownFingerprint(), oldFingerprint);
        QCOMPARE(again.serverFingerprint(), newFingerprint);
        QVERIFY2(result.error().contains(QStringLiteral("CHANGED")), qPrintable(result.error()));
        QVERIFY2(result.error().contains(oldFingerprint), qPrintable(result.error()));
        QVERIFY2(result.error().contains(newFingerprint), qPrintable(result.error()));
        // Nothing silently rewritten: the old key is still what is on file.
        SshSession third(m_server.trustedConfig());
        QVERIFY(!third.connect());
        QCOMPARE(third.lastFailure(), SshFailure::HostKeyChanged);
        QFile::remove(m_server.config().knownHostsFile); // later tests start fresh
    }

    void serverKilledMidCommand() {
        SshSession session(m_server.trustedConfig());
        QVERIFY_RESULT(session.connect());
        std::optional<Result<ExecResult>> outcome;
        QElapsedTimer clock;
        std::thread runner([&] {
            clock.start();
            outcome.emplace(session.exec(QStringLiteral("sleep 30"), 15000));
        });
        QTest::qWait(500);
        m_server.killHard();
        runner.join();
        const qint64 elapsed = clock.elapsed();
        QVERIFY(outcome && !outcome->ok());
        QVERIFY2(elapsed < 5000, qPrintable(QStringLiteral("error after %1 ms").arg(elapsed)));
        qInfo("server killed mid-command: error after %lld ms: %s", elapsed,
              qPrintable(outcome->error()));
        QVERIFY(!session.isConnected());

        // Down: the next call fails fast and clearly.
        auto down = session.exec(QStringLiteral("true"), 5000);
        QVERIFY(!down);
        QCOMPARE(session.lastFailure(), SshFailure::Network);

        // Back up (same host key): the next call reconnects by itself.
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
        auto after = session.exec(QStringLiteral("echo back"), 5000);
        QVERIFY_RESULT(after);
        QCOMPARE(after->stdOut, QByteArray("back\n"));
    }

    void keepaliveNoticesDeadServer() {
        SshConfig config = m_second.trustedConfig();
        config.keepaliveIntervalMs = 1000;
        SshHost host(QStringLiteral("second"), config);
        QSignalSpy online(&host, &SshHost::online);
        QSignalSpy offline(&host, &SshHost::offline);
        host.connectToHost(this, [](Result<void>) {});
        QVERIFY(online.wait(10000));
        QVERIFY(host.isOnline());
        m_second.killHard();
        // Idle: nothing but the keepalive can notice.
        QVERIFY(offline.wait(8000));
        QVERIFY(!host.isOnline());
        qInfo("offline noticed while idle: %s", qPrintable(offline.first().first().toString()));
    }

    // A host kept connected needs nobody's calls: the keepalive notices the loss, the
    // back-off (at once, 1 s, 2 s, ...) reconnects within seconds of the server's return,
    // and the session is never replaced while it lives.
    void keptConnectedHostReconnectsByItself() {
        QString error;
        if (m_second.pid() == 0) QVERIFY2(m_second.start(&error), qPrintable(error));
        SshConfig config = m_second.trustedConfig();
        config.keepaliveIntervalMs = 500;
        SshHost host(QStringLiteral("second"), config);
        QSignalSpy online(&host, &SshHost::online);
        QSignalSpy offline(&host, &SshHost::offline);
        // Connections of earlier tests may still be ending (a loaded CI run saw one): count
        // only those that appear from here on.
        const QList<qint64> earlier = m_second.connectionPids();
        const auto newConnections = [&] {
            QList<qint64> found = m_second.connectionPids();
            found.removeIf([&](qint64 pid) { return earlier.contains(pid); });
            return found;
        };
        host.keepConnected();
        QVERIFY(online.wait(10000));
        const QList<qint64> connection = newConnections();
        QCOMPARE(connection.size(), 1);
        // Several keepalives later: the same connection.
        QVERIFY(!offline.wait(1600));
        QCOMPARE(newConnections(), connection);

        m_second.killHard();
        QVERIFY(offline.wait(5000));
        QVERIFY(!host.isOnline());
        // Let the back-off grow: the loss, then tries at once, after 1 s and after 2 s.
        QTRY_VERIFY_WITH_TIMEOUT(offline.size() >= 4, 10000);
        QVERIFY2(m_second.start(&error), qPrintable(error));
        QElapsedTimer back;
        back.start();
        online.clear();
        QVERIFY(online.wait(10000));
        // The back-off had reached 4 s: back by its next try, not after a fixed check period.
        QVERIFY2(back.elapsed() < 8000, qPrintable(QString::number(back.elapsed())));
        QVERIFY(host.isOnline());
        qInfo("online again %lld ms after sshd restarted", back.elapsed());
    }

    void keychainUnavailableIsReported() {
        // No D-Bus session bus here: QtKeychain cannot reach a Secret Service.
        qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-test-bus");
        qunsetenv("DISPLAY");
        CredentialStore store;
        const auto reply = store.readNow(CredentialStore::passwordKey(QStringLiteral("h")));
        QCOMPARE(reply.status, CredentialStore::Status::Unavailable);
        QVERIFY2(reply.error.contains(QStringLiteral("keychain is not available")),
                 qPrintable(reply.error));
        const auto write = store.writeNow(CredentialStore::passwordKey(QStringLiteral("h")),
                                          QStringLiteral("secret"));
        QCOMPARE(write.status, CredentialStore::Status::Unavailable);
    }
};

QTEST_MAIN(TestSshSession)
#include "tst_sshsession.moc"
