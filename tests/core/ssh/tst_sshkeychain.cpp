#include "SshServer.h"
#include "ssh/CredentialStore.h"
#include "ssh/SshHost.h"

#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <optional>

#include <unistd.h>

using namespace corral;

/// Secrets through the OS keychain. CTest runs this under `dbus-run-session` with an unlocked
/// gnome-keyring and a temporary HOME (see tests/CMakeLists.txt); run by hand without that,
/// it skips.
class TestSshKeychain : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.2")};
    QString m_user = QStringLiteral("corral-pw-%1").arg(::getpid());
    QString m_password = QStringLiteral("pa ss'w\"o$(r)d-%1").arg(::getpid());
    CredentialStore m_store;

    QTemporaryDir m_config;

    std::pair<int, QString> ctl(const QStringList &args, const QByteArray &input) {
        QProcess process;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("XDG_CONFIG_HOME"), m_config.path());
        env.insert(QStringLiteral("CORRAL_INVENTORY"), QString());
        process.setProcessEnvironment(env);
        process.start(QStringLiteral(CORRALCTL_PATH), args);
        process.write(input);
        process.closeWriteChannel();
        process.waitForFinished(60000);
        return std::make_pair(process.exitCode(),
                              QString::fromUtf8(process.readAllStandardError()));
    }

    CredentialStore::Reply readAsync(const QString &key) {
        std::optional<CredentialStore::Reply> reply;
        m_store.read(key, this, [&](CredentialStore::Reply r) { reply = std::move(r); });
        [&] { QTRY_VERIFY_WITH_TIMEOUT(reply.has_value(), 10000); }();
        return reply.value_or(CredentialStore::Reply{});
    }

private Q_SLOTS:
    void initTestCase() {
        const auto probe = m_store.readNow(QStringLiteral("corral-test/probe"));
        if (probe.status == CredentialStore::Status::Unavailable)
            QSKIP(qPrintable(QStringLiteral("no keychain (run through ctest, which starts a D-Bus "
                                            "session with gnome-keyring): ") +
                             probe.error));
    }

    void credentialRoundTrip() {
        const QString key = CredentialStore::passwordKey(QStringLiteral("roundtrip"));
        std::optional<CredentialStore::Reply> written;
        m_store.write(key, QStringLiteral("s3cret ✓"), this,
                      [&](CredentialStore::Reply r) { written = std::move(r); });
        QTRY_VERIFY_WITH_TIMEOUT(written.has_value(), 10000);
        QCOMPARE(written->status, CredentialStore::Status::Ok);
        const auto read = readAsync(key);
        QCOMPARE(read.status, CredentialStore::Status::Ok);
        QCOMPARE(read.secret, QStringLiteral("s3cret ✓"));
        QCOMPARE(m_store.removeNow(key).status, CredentialStore::Status::Ok);
        QCOMPARE(readAsync(key).status, CredentialStore::Status::NotFound);
    }

    void passwordAuthFromKeychain() {
        if (::geteuid() != 0)
            QSKIP("needs root: password auth needs a real account, created with useradd/chpasswd");
        QString error;
        QVERIFY2(m_server.start(&error, true), qPrintable(error));
        QVERIFY2(m_server.createUser(m_user, m_password, &error), qPrintable(error));
        const QString key = CredentialStore::passwordKey(QStringLiteral("pwhost"));
        QCOMPARE(m_store.writeNow(key, m_password).status, CredentialStore::Status::Ok);

        SshConfig config = m_server.config(m_user);
        config.auth = Host::Auth::Password;
        config.keyPath.clear();
        config.acceptNew = true;
        SshHost host(QStringLiteral("pwhost"), config);
        const auto secret = readAsync(key); // what the console does before connecting
        QCOMPARE(secret.status, CredentialStore::Status::Ok);
        host.setSecret(secret.secret);
        std::optional<Result<ExecResult>> who;
        host.exec(QStringLiteral("id -un"), 10000, this,
                  [&](Result<ExecResult> r) { who = std::move(r); });
        QTRY_VERIFY_WITH_TIMEOUT(who.has_value(), 15000);
        QVERIFY2(who->ok(), qPrintable(who->error()));
        QCOMPARE(QString::fromUtf8(who->value().stdOut).trimmed(), m_user);

        config.secret = QStringLiteral("wrong");
        SshSession wrong(config);
        QVERIFY(!wrong.connect());
        QCOMPARE(wrong.lastFailure(), SshFailure::AuthFailed);
        m_store.removeNow(key);
    }

    void corralctlKeepsPasswordInKeychainOnly() {
        if (::geteuid() != 0) QSKIP("needs root (see passwordAuthFromKeychain)");
        const QString url =
            QStringLiteral("ssh://%1@%2:%3").arg(m_user, m_server.address()).arg(m_server.port());
        // Not a terminal: the password is read from stdin, never from the command line.
        auto [added, addErr] =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("pw"), url,
                 QStringLiteral("--password"), QStringLiteral("--accept-new")},
                m_password.toUtf8() + '\n');
        QVERIFY2(added == 0, qPrintable(addErr));
        QFile inventory(m_config.filePath(QStringLiteral("corral/inventory.json")));
        QVERIFY(inventory.open(QIODevice::ReadOnly));
        const QByteArray stored = inventory.readAll();
        QVERIFY(stored.contains("\"password\"")); // the auth method
        QVERIFY(!stored.contains(m_password.toUtf8()));
        QCOMPARE(m_store.readNow(CredentialStore::passwordKey(QStringLiteral("pw"))).secret,
                 m_password);

        // host test finds the password in the keychain: nothing on stdin.
        auto [tested, testErr] =
            ctl({QStringLiteral("host"), QStringLiteral("test"), QStringLiteral("pw")}, {});
        QVERIFY2(tested == 0, qPrintable(testErr));

        auto [removed, removeErr] =
            ctl({QStringLiteral("host"), QStringLiteral("remove"), QStringLiteral("pw")}, {});
        QVERIFY2(removed == 0, qPrintable(removeErr));
        QCOMPARE(m_store.readNow(CredentialStore::passwordKey(QStringLiteral("pw"))).status,
                 CredentialStore::Status::NotFound);
    }

    void keyPassphraseFromKeychain() {
        if (::geteuid() != 0) QSKIP("needs root (see passwordAuthFromKeychain)");
        // An encrypted key, authorised for root on the test server.
        const QString key = m_config.filePath(QStringLiteral("encrypted_ed25519"));
        const QString passphrase = QStringLiteral("correct horse $(battery) 'staple'");
        QProcess keygen;
        keygen.start(QStringLiteral("ssh-keygen"),
                     {QStringLiteral("-q"), QStringLiteral("-t"), QStringLiteral("ed25519"),
                      QStringLiteral("-N"), passphrase, QStringLiteral("-f"), key});
        QVERIFY(keygen.waitForFinished(10000) && keygen.exitCode() == 0);
        QFile authorized(m_server.directory() + QStringLiteral("/authorized_keys"));
        QFile publicKey(key + QStringLiteral(".pub"));
        QVERIFY(authorized.open(QIODevice::Append) && publicKey.open(QIODevice::ReadOnly));
        authorized.write(publicKey.readAll());
        authorized.close();

        const QString url =
            QStringLiteral("ssh://root@%1:%2").arg(m_server.address()).arg(m_server.port());
        // Wrong passphrase: refused, nothing stored.
        auto [wrong, wrongErr] =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("enc"), url,
                 QStringLiteral("--key"), key, QStringLiteral("--accept-new")},
                "wrong\n");
        QCOMPARE(wrong, 1);
        QVERIFY2(wrongErr.contains(QStringLiteral("passphrase")), qPrintable(wrongErr));
        QCOMPARE(m_store.readNow(CredentialStore::passphraseKey(QStringLiteral("enc"))).status,
                 CredentialStore::Status::NotFound);
        // Right passphrase: asked once (stdin), then kept in the keychain.
        auto [added, addErr] =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("enc"), url,
                 QStringLiteral("--key"), key, QStringLiteral("--accept-new")},
                passphrase.toUtf8() + '\n');
        QVERIFY2(added == 0, qPrintable(addErr));
        QCOMPARE(m_store.readNow(CredentialStore::passphraseKey(QStringLiteral("enc"))).secret,
                 passphrase);
        auto [tested, testErr] =
            ctl({QStringLiteral("host"), QStringLiteral("test"), QStringLiteral("enc")}, {});
        QVERIFY2(tested == 0, qPrintable(testErr));
        QCOMPARE(ctl({QStringLiteral("host"), QStringLiteral("remove"), QStringLiteral("enc")}, {})
                     .first,
                 0);
        QCOMPARE(m_store.readNow(CredentialStore::passphraseKey(QStringLiteral("enc"))).status,
                 CredentialStore::Status::NotFound);
    }

    void cleanupTestCase() { m_server.removeUser(); }
};

QTEST_MAIN(TestSshKeychain)
#include "tst_sshkeychain.moc"
