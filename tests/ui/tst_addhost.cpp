#include "AddHostDialog.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "SshServer.h"
#include "inventory/Inventory.h"

#include <QApplication>
#include <QComboBox>
#include <QFile>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QTreeView>

#include <unistd.h>

using namespace corral;

class TestAddHost : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;

    void fill(AddHostDialog &dialog, const SshServer &server) {
        dialog.findChild<QLineEdit *>(QStringLiteral("hostName"))->setText(QStringLiteral("web1"));
        dialog.findChild<QLineEdit *>(QStringLiteral("hostAddress"))->setText(server.address());
        dialog.findChild<QSpinBox *>(QStringLiteral("hostPort"))->setValue(server.port());
        dialog.findChild<QLineEdit *>(QStringLiteral("hostUser"))->setText(QStringLiteral("root"));
        auto *auth = dialog.findChild<QComboBox *>(QStringLiteral("hostAuth"));
        auth->setCurrentIndex(auth->findData(int(Host::Auth::KeyFile)));
        dialog.findChild<QLineEdit *>(QStringLiteral("hostKeyPath"))->setText(server.clientKey());
    }

    // Answers the next message box with `button`, recording its text.
    void answerNextMessageBox(QMessageBox::StandardButton button, QString *text) {
        auto *timer = new QTimer(this);
        timer->setInterval(20);
        connect(timer, &QTimer::timeout, this, [timer, button, text] {
            auto *box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget());
            if (!box) return;
            *text = box->text();
            box->button(button)->click();
            timer->deleteLater();
        });
        timer->start();
    }

private Q_SLOTS:
    void initTestCase() {
        qputenv("HOME", m_home.path().toUtf8());
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
    }

    void confirmsTheFingerprintThenRefusesAChangedKey() {
        SshServer server(QStringLiteral("127.0.0.4"));
        QString error;
        QVERIFY2(server.start(&error), qPrintable(error));

        AddHostDialog dialog;
        fill(dialog, server);
        QVERIFY(dialog.host().ok());
        QString question;
        answerNextMessageBox(QMessageBox::Yes, &question);
        QSignalSpy finished(&dialog, &AddHostDialog::testFinished);
        dialog.testConnection();
        QVERIFY(finished.wait(30000));
        QVERIFY2(finished.first().at(0).toBool(), qPrintable(dialog.testOutput()));
        QVERIFY2(question.contains(server.hostFingerprint()), qPrintable(question));
        QCOMPARE(dialog.confirmedFingerprint(), server.hostFingerprint());
        QVERIFY2(dialog.testOutput().startsWith(QStringLiteral("Connected in")),
                 qPrintable(dialog.testOutput()));
        QFile knownHosts(corralKnownHostsPath());
        QVERIFY(knownHosts.open(QIODevice::ReadOnly));
        QVERIFY(knownHosts.readAll().contains(server.address().toUtf8()));

        const QString oldFingerprint = server.hostFingerprint();
        QVERIFY2(server.restartWithNewHostKey(&error), qPrintable(error));
        AddHostDialog again;
        fill(again, server);
        QSignalSpy refused(&again, &AddHostDialog::testFinished);
        again.testConnection();
        QVERIFY(refused.wait(30000));
        QCOMPARE(refused.first().at(0).toBool(), false);
        QVERIFY2(again.testOutput().startsWith(QStringLiteral("REFUSED")),
                 qPrintable(again.testOutput()));
        QVERIFY(again.testOutput().contains(oldFingerprint));
        QVERIFY(again.testOutput().contains(server.hostFingerprint()));
    }

    void declinedKeyIsNotTrusted() {
        SshServer server(QStringLiteral("127.0.0.5"));
        QString error;
        QVERIFY2(server.start(&error), qPrintable(error));
        AddHostDialog dialog;
        fill(dialog, server);
        QString question;
        answerNextMessageBox(QMessageBox::No, &question);
        QSignalSpy finished(&dialog, &AddHostDialog::testFinished);
        dialog.testConnection();
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.first().at(0).toBool(), false);
        QVERIFY(dialog.testOutput().contains(QStringLiteral("not trusted")));
        QFile knownHosts(corralKnownHostsPath());
        QVERIFY(!knownHosts.open(QIODevice::ReadOnly) ||
                !knownHosts.readAll().contains("127.0.0.5"));
    }

    void invalidFieldsDisableSave() {
        AddHostDialog dialog;
        dialog.findChild<QLineEdit *>(QStringLiteral("hostName"))
            ->setText(QStringLiteral("bad name"));
        QVERIFY(!dialog.host().ok());
        QVERIFY(dialog.host().error().contains(QStringLiteral("name")));
        QVERIFY(!dialog.findChild<QPushButton *>(QStringLiteral("testConnection"))->isEnabled());
    }

    // A password host added in the console where no keychain answers (no D-Bus session): the
    // password is kept in memory for this session, so the console connects to the host
    // (online in the tree) instead of failing its login; the inventory holds no secret.
    void passwordHostWithoutKeychainConnects() {
        if (::geteuid() != 0) QSKIP("needs root for a throwaway account with a password");
        qunsetenv("DBUS_SESSION_BUS_ADDRESS");
        SshServer server(QStringLiteral("127.0.0.6"));
        QString error;
        QVERIFY2(server.start(&error, true), qPrintable(error));
        const QString user = QStringLiteral("corraladdpw");
        const QString password = QStringLiteral("pw-%1-secret").arg(::getpid());
        QVERIFY2(server.createUser(user, password, &error), qPrintable(error));
        const QString inventoryPath = m_home.filePath(QStringLiteral("pw-inventory.json"));
        QVERIFY(Inventory().save(inventoryPath).ok());

        MainWindow window(inventoryPath);
        window.action(QStringLiteral("addHost"))->trigger();
        auto *dialog = window.findChild<AddHostDialog *>();
        QVERIFY(dialog);
        dialog->findChild<QLineEdit *>(QStringLiteral("hostName"))->setText(QStringLiteral("pw1"));
        dialog->findChild<QLineEdit *>(QStringLiteral("hostAddress"))->setText(server.address());
        dialog->findChild<QSpinBox *>(QStringLiteral("hostPort"))->setValue(server.port());
        dialog->findChild<QLineEdit *>(QStringLiteral("hostUser"))->setText(user);
        auto *auth = dialog->findChild<QComboBox *>(QStringLiteral("hostAuth"));
        auth->setCurrentIndex(auth->findData(int(Host::Auth::Password)));
        dialog->findChild<QLineEdit *>(QStringLiteral("hostSecret"))->setText(password);
        QString question;
        answerNextMessageBox(QMessageBox::Yes, &question);
        QSignalSpy finished(dialog, &AddHostDialog::testFinished);
        dialog->testConnection();
        QVERIFY(finished.wait(30000));
        QVERIFY2(finished.first().at(0).toBool(), qPrintable(dialog->testOutput()));
        dialog->accept();

        QTRY_VERIFY_WITH_TIMEOUT(window.lastError().contains(QStringLiteral("keeps it in memory")),
                                 20000);
        const auto hostState = [&] {
            QAbstractItemModel *model = window.hostTree()->model();
            for (int row = 0; row < model->rowCount(); ++row)
                if (model->index(row, 0).data().toString() == QLatin1String("pw1"))
                    return model->index(row, 1).data().toString();
            return QString();
        };
        QTRY_VERIFY_WITH_TIMEOUT(hostState().endsWith(QStringLiteral(" · online")), 30000);
        QFile inventory(inventoryPath);
        QVERIFY(inventory.open(QIODevice::ReadOnly));
        const QByteArray saved = inventory.readAll();
        QVERIFY(saved.contains("\"pw1\""));
        QVERIFY(!saved.contains(password.toUtf8()));
    }
};

QTEST_MAIN(TestAddHost)
#include "tst_addhost.moc"
