#include "CorralctlRunner.h"
#include "SshServer.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

using corral::test::Corralctl;
using corral::test::CtlRun;

/// `corralctl host ...` as a real process against a loopback sshd, the way a new user runs
/// it: fresh HOME and XDG_CONFIG_HOME, no terminal.
class TestCorralctlHost : public QObject {
    Q_OBJECT

    SshServer m_server{QStringLiteral("127.0.0.3")};
    QTemporaryDir m_home;

    QString url() const {
        return QStringLiteral("ssh://root@%1:%2").arg(m_server.address()).arg(m_server.port());
    }
    QString knownHosts() const {
        return m_home.filePath(QStringLiteral("config/corral/known_hosts"));
    }

    // CORRAL_INVENTORY empty: the default inventory, under the temporary XDG_CONFIG_HOME.
    CtlRun ctl(const QStringList &args, const QByteArray &input = {}) {
        const Corralctl corralctl{QStringLiteral(CORRALCTL_PATH), m_home.path(), QString()};
        const CtlRun run = corralctl.run(args, input);
        [&] { QVERIFY2(!run.timedOut, qPrintable(args.join(QLatin1Char(' ')))); }();
        return run;
    }

private Q_SLOTS:
    void initTestCase() {
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
    }

    void unknownKeyWithoutTerminalFailsNamingFingerprint() {
        const CtlRun add =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("web"), url(),
                 QStringLiteral("--key"), m_server.clientKey()});
        QCOMPARE(add.exitCode, 1);
        QVERIFY2(add.err.contains(m_server.hostFingerprint()), qPrintable(add.err));
        QVERIFY2(add.err.contains(QStringLiteral("--accept-new")), qPrintable(add.err));
        QVERIFY2(add.err.contains(QStringLiteral("not added")), qPrintable(add.err));
        QVERIFY(!QFile::exists(knownHosts()));
        const CtlRun list =
            ctl({QStringLiteral("host"), QStringLiteral("list"), QStringLiteral("--json")});
        QCOMPARE(list.exitCode, 0);
        QCOMPARE(QJsonDocument::fromJson(list.out.toUtf8())
                     .object()
                     .value(QStringLiteral("hosts"))
                     .toArray()
                     .size(),
                 0);
    }

    void addTestListRemove() {
        const CtlRun add =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("web"), url(),
                 QStringLiteral("--key"), m_server.clientKey(), QStringLiteral("--accept-new")});
        QVERIFY2(add.exitCode == 0, qPrintable(add.err));
        QVERIFY2(add.out.contains(m_server.hostFingerprint()), qPrintable(add.out));
        QFile known(knownHosts());
        QVERIFY(known.open(QIODevice::ReadOnly));
        QVERIFY(known.readAll().contains(
            QStringLiteral("[%1]:%2 ").arg(m_server.address()).arg(m_server.port()).toUtf8()));

        const CtlRun test =
            ctl({QStringLiteral("host"), QStringLiteral("test"), QStringLiteral("web")});
        QVERIFY2(test.exitCode == 0, qPrintable(test.err));
        qInfo("%s", qPrintable(test.out));
        QVERIFY(test.out.contains(QStringLiteral("cores:")));
        QVERIFY(test.out.contains(QStringLiteral("systemd:")));
        // The discovery sees this sshd listening, with its process name.
        QVERIFY2(test.out.contains(QString::number(m_server.port()) + QStringLiteral("(sshd)")),
                 qPrintable(test.out));

        const CtlRun json = ctl({QStringLiteral("host"), QStringLiteral("test"),
                                 QStringLiteral("web"), QStringLiteral("--json")});
        QCOMPARE(json.exitCode, 0);
        const QJsonObject facts = QJsonDocument::fromJson(json.out.toUtf8()).object();
        QVERIFY(facts.value(QStringLiteral("cores")).toInt() > 0);
        QCOMPARE(facts.value(QStringLiteral("hostKey")).toString(), m_server.hostFingerprint());

        const CtlRun list =
            ctl({QStringLiteral("host"), QStringLiteral("list"), QStringLiteral("--json")});
        QCOMPARE(list.exitCode, 0);
        const QJsonArray hosts = QJsonDocument::fromJson(list.out.toUtf8())
                                     .object()
                                     .value(QStringLiteral("hosts"))
                                     .toArray();
        QCOMPARE(hosts.size(), 1);
        const QJsonObject host = hosts.first().toObject();
        QCOMPARE(host.value(QStringLiteral("address")).toString(), m_server.address());
        QCOMPARE(host.value(QStringLiteral("port")).toInt(), int(m_server.port()));
        QCOMPARE(host.value(QStringLiteral("user")).toString(), QStringLiteral("root"));
        QCOMPARE(host.value(QStringLiteral("auth")).toString(), QStringLiteral("key"));
        const CtlRun table = ctl({QStringLiteral("host"), QStringLiteral("list")});
        QVERIFY(table.out.contains(QStringLiteral("web")));

        const CtlRun duplicate =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("web"), url(),
                 QStringLiteral("--accept-new")});
        QCOMPARE(duplicate.exitCode, 1);

        const CtlRun removed =
            ctl({QStringLiteral("host"), QStringLiteral("remove"), QStringLiteral("web")});
        QVERIFY2(removed.exitCode == 0, qPrintable(removed.err));
        QCOMPARE(
            ctl({QStringLiteral("host"), QStringLiteral("test"), QStringLiteral("web")}).exitCode,
            1);
    }

    void failuresAreClear() {
        // A key the server does not know.
        const CtlRun stranger =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("x"), url(),
                 QStringLiteral("--key"), m_server.strangerKey(), QStringLiteral("--accept-new")});
        QCOMPARE(stranger.exitCode, 1);
        QVERIFY2(stranger.err.contains(QStringLiteral("authentication failed")),
                 qPrintable(stranger.err));
        // Nothing listening.
        const CtlRun refused =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("y"),
                 QStringLiteral("ssh://root@127.0.0.3:1"), QStringLiteral("--accept-new")});
        QCOMPARE(refused.exitCode, 1);
        QVERIFY2(refused.err.contains(QStringLiteral("cannot connect")), qPrintable(refused.err));
        // Bad values are exit 1 (the command line itself was fine), all reported at once.
        QCOMPARE(ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("z"),
                      QStringLiteral("http://example.com")})
                     .exitCode,
                 1);
        QCOMPARE(ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("z"),
                      QStringLiteral("ssh://u:secret@h")})
                     .exitCode,
                 1);
        const CtlRun both = ctl({QStringLiteral("host"), QStringLiteral("add"),
                                 QStringLiteral("bad name"), QStringLiteral("ssh://u@h\"x")});
        QCOMPARE(both.exitCode, 1);
        QVERIFY2(both.err.contains(QStringLiteral("host add: name: \"bad name\"")),
                 qPrintable(both.err));
        QVERIFY2(both.err.contains(QStringLiteral("ssh://USER@ADDRESS")), qPrintable(both.err));
        // A malformed command line is exit 2, on one line.
        const CtlRun usage =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("z")});
        QCOMPARE(usage.exitCode, 2);
        QCOMPARE(usage.err.count(QLatin1Char('\n')), 1);
        QVERIFY2(usage.err.contains(QStringLiteral("(see 'corralctl help host')")),
                 qPrintable(usage.err));
    }

    void changedKeyRefusedByTest() {
        const CtlRun add =
            ctl({QStringLiteral("host"), QStringLiteral("add"), QStringLiteral("db"), url(),
                 QStringLiteral("--key"), m_server.clientKey(), QStringLiteral("--accept-new")});
        QVERIFY2(add.exitCode == 0, qPrintable(add.err));
        const QString oldFingerprint = m_server.hostFingerprint();
        QString error;
        QVERIFY2(m_server.restartWithNewHostKey(&error), qPrintable(error));
        const CtlRun test = ctl({QStringLiteral("host"), QStringLiteral("test"),
                                 QStringLiteral("db"), QStringLiteral("--accept-new")});
        QCOMPARE(test.exitCode, 1);
        QVERIFY2(test.err.contains(QStringLiteral("CHANGED")), qPrintable(test.err));
        QVERIFY2(test.err.contains(oldFingerprint), qPrintable(test.err));
        QVERIFY2(test.err.contains(m_server.hostFingerprint()), qPrintable(test.err));
    }
};

QTEST_MAIN(TestCorralctlHost)
#include "tst_corralctl_host.moc"
