#include "AddHostDialog.h"
#include "Confirmer.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "ResultVerify.h"
#include "SshServer.h"
#include "inventory/Inventory.h"
#include "ssh/KnownHosts.h"
#include "util/ListeningSockets.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPointer>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QTreeView>

#include <unistd.h>

using namespace corral;

namespace {
// Answers every question of the console (Remove host) and records it.
class RecordingConfirmer : public Confirmer {
public:
    explicit RecordingConfirmer(QList<Confirmation> *asked)
        : m_asked(asked) {}
    bool confirm(QWidget *, const Confirmation &question) override {
        m_asked->append(question);
        return true;
    }

private:
    QList<Confirmation> *m_asked;
};
} // namespace

class TestAddHost : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;
    // For the tests of known_hosts, Remove, Edit and Reconnect: an address no other test
    // that may run in parallel uses.
    SshServer m_server{QStringLiteral("127.0.0.20")};
    QList<QPointer<QTimer>> m_answerers;

    static QByteArray knownHosts() {
        QFile file(corralKnownHostsPath());
        return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
    }
    // The server's host public key as known_hosts holds it ("ssh-ed25519 BASE64").
    QByteArray hostPublicKey() const {
        QFile file(m_server.directory() + QStringLiteral("/host_ed25519.pub"));
        if (!file.open(QIODevice::ReadOnly)) return {};
        const QList<QByteArray> fields = file.readAll().simplified().split(' ');
        return fields.size() >= 2 ? fields.at(0) + ' ' + fields.at(1) : QByteArray();
    }
    static QPushButton *saveButton(AddHostDialog &dialog) {
        auto *buttons = dialog.findChild<QDialogButtonBox *>();
        return buttons ? buttons->button(QDialogButtonBox::Save) : nullptr;
    }
    // Runs "Test connection" and waits for its end; true when it connected.
    static bool runTest(AddHostDialog &dialog) {
        QSignalSpy finished(&dialog, &AddHostDialog::testFinished);
        dialog.testConnection();
        if (!finished.wait(30000)) return false;
        return finished.first().at(0).toBool();
    }
    static QModelIndex hostIndex(MainWindow &window, const QString &name) {
        QAbstractItemModel *model = window.hostTree()->model();
        for (int row = 0; row < model->rowCount(); ++row) {
            const QModelIndex index = model->index(row, 0);
            if (index.data(InventoryTreeModel::NameRole).toString() == name &&
                index.data(InventoryTreeModel::KindRole).toInt() ==
                    int(InventoryTreeModel::NodeKind::Host))
                return index;
        }
        return {};
    }
    static QString hostState(MainWindow &window, const QString &name) {
        const QModelIndex index = hostIndex(window, name);
        return index.isValid() ? index.siblingAtColumn(1).data().toString() : QString();
    }
    // The per-connection sshd processes of the server (its listener excluded).
    QList<qint64> serverConnections() const {
        QList<qint64> pids = processTree(m_server.pid());
        pids.removeAll(m_server.pid());
        return pids;
    }
    QString inventoryPath() const {
        return m_home.filePath(QStringLiteral("hosts-inventory.json"));
    }
    // web1: m_server, used by site "shop" as a worker host and by "front" as its balancer's
    // host; web2: m_server too, used by no site.
    void writeHostsInventory() {
        Inventory inventory;
        QVERIFY_RESULT(inventory.addHost(m_server.inventoryHost(QStringLiteral("web1"))));
        QVERIFY_RESULT(inventory.addHost(m_server.inventoryHost(QStringLiteral("web2"))));
        Site shop;
        shop.name = QStringLiteral("shop");
        shop.command = QStringLiteral("/bin/true");
        shop.hosts = {QStringLiteral("web1")};
        QVERIFY_RESULT(inventory.addSite(shop));
        Site front;
        front.name = QStringLiteral("front");
        front.command = QStringLiteral("/bin/true");
        SiteBalancer balancer;
        balancer.host = QStringLiteral("web1");
        balancer.format = QStringLiteral("nginx");
        balancer.configPath = QStringLiteral("/etc/nginx/sites-enabled/front.conf");
        balancer.validate = {QStringLiteral("nginx"), QStringLiteral("-t")};
        balancer.reload = {QStringLiteral("nginx"), QStringLiteral("-s"), QStringLiteral("reload")};
        front.balancer = balancer;
        front.backends = {Backend{QStringLiteral("127.0.0.1"), 3000}};
        QVERIFY_RESULT(inventory.addSite(front));
        QVERIFY_RESULT(inventory.save(inventoryPath()));
    }

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
        m_answerers.append(timer); // a test that fails before the box shows must not leave it

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
    void cleanup() {
        for (const QPointer<QTimer> &timer : std::as_const(m_answerers))
            delete timer.data();
        m_answerers.clear();
    }

    void initTestCase() {
        qputenv("HOME", m_home.path().toUtf8());
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        QString error;
        QVERIFY2(m_server.start(&error), qPrintable(error));
    }

    // Nothing was typed yet: no red error; it shows once a field was edited.
    void noErrorBeforeInput() {
        AddHostDialog dialog;
        auto *error = dialog.findChild<QLabel *>(QStringLiteral("hostError"));
        QVERIFY(error);
        QVERIFY2(error->text().isEmpty(), qPrintable(error->text()));
        QVERIFY(!saveButton(dialog)->isEnabled());
        dialog.findChild<QLineEdit *>(QStringLiteral("hostName"))
            ->setText(QStringLiteral("bad name"));
        QVERIFY(error->text().contains(QStringLiteral("name")));
    }

    // The key field has a Browse button, enabled for key-file authentication, that opens a
    // file chooser in ~/.ssh; the chosen file lands in the field.
    void browseChoosesTheKeyFile() {
        QVERIFY(QDir().mkpath(m_home.filePath(QStringLiteral(".ssh"))));
        const QString key = m_home.filePath(QStringLiteral(".ssh/id_corral"));
        QFile file(key);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.close();
        AddHostDialog dialog;
        auto *browse = dialog.findChild<QPushButton *>(QStringLiteral("browseKey"));
        QVERIFY(browse);
        QVERIFY(!browse->isEnabled()); // agent authentication: no key file
        auto *auth = dialog.findChild<QComboBox *>(QStringLiteral("hostAuth"));
        auth->setCurrentIndex(auth->findData(int(Host::Auth::KeyFile)));
        QVERIFY(browse->isEnabled());
        browse->click();
        auto *chooser = dialog.findChild<QFileDialog *>();
        QVERIFY(chooser);
        QCOMPARE(QFileInfo(chooser->directory().absolutePath()).canonicalFilePath(),
                 QFileInfo(m_home.filePath(QStringLiteral(".ssh"))).canonicalFilePath());
        Q_EMIT chooser->fileSelected(key);
        QCOMPARE(dialog.findChild<QLineEdit *>(QStringLiteral("hostKeyPath"))->text(), key);
    }

    // A key confirmed in "Test connection" is written to known_hosts by Save only; Cancel
    // leaves the file byte for byte as it was.
    void cancelLeavesKnownHostsUnchanged() {
        const QByteArray before = knownHosts();
        QVERIFY(!before.contains(m_server.address().toUtf8()));
        AddHostDialog dialog;
        fill(dialog, m_server);
        QString question;
        answerNextMessageBox(QMessageBox::Yes, &question);
        QVERIFY2(runTest(dialog), qPrintable(dialog.testOutput()));
        QVERIFY2(question.contains(m_server.hostFingerprint()), qPrintable(question));
        QCOMPARE(knownHosts(), before);
        dialog.reject();
        QCOMPARE(knownHosts(), before);
        QCOMPARE(QFile::exists(corralKnownHostsPath()), !before.isEmpty());
    }

    // The test is refused for a changed key: Save is disabled, the explanation shows in full
    // with both fingerprints, and the new key is accepted only after typing the host's address;
    // known_hosts then holds the new key (the old entry replaced) once Save is pressed.
    void changedKeyNeedsTheHostNameAndIsWrittenOnSave() {
        {
            AddHostDialog first;
            fill(first, m_server);
            QString question;
            answerNextMessageBox(QMessageBox::Yes, &question);
            QVERIFY2(runTest(first), qPrintable(first.testOutput()));
            first.accept();
        }
        const QByteArray oldKey = hostPublicKey();
        QVERIFY(knownHosts().contains(oldKey.split(' ').last()));
        const QString oldFingerprint = m_server.hostFingerprint();
        QString error;
        QVERIFY2(m_server.restartWithNewHostKey(&error), qPrintable(error));
        const QString newFingerprint = m_server.hostFingerprint();
        QVERIFY(newFingerprint != oldFingerprint);

        AddHostDialog dialog;
        fill(dialog, m_server);
        QVERIFY(saveButton(dialog)->isEnabled());
        QVERIFY(!runTest(dialog));
        QVERIFY2(!saveButton(dialog)->isEnabled(), "Save allowed after a refused changed key");
        auto *explanation = dialog.findChild<QLabel *>(QStringLiteral("hostKeyChange"));
        QVERIFY(explanation);
        QVERIFY(explanation->wordWrap());
        QVERIFY(!explanation->isHidden());
        QVERIFY2(explanation->text().contains(oldFingerprint), qPrintable(explanation->text()));
        QVERIFY2(explanation->text().contains(newFingerprint), qPrintable(explanation->text()));
        auto *confirmation = dialog.findChild<QLineEdit *>(QStringLiteral("hostKeyConfirmation"));
        auto *accept = dialog.findChild<QPushButton *>(QStringLiteral("acceptNewHostKey"));
        QVERIFY(confirmation && accept);
        QVERIFY(!accept->isEnabled());
        confirmation->setText(QStringLiteral("web1"));
        QVERIFY2(!accept->isEnabled(), "the inventory name is not the host's address");
        confirmation->setText(m_server.address());
        QVERIFY(accept->isEnabled());

        const QByteArray before = knownHosts();
        QSignalSpy finished(&dialog, &AddHostDialog::testFinished);
        accept->click();
        QVERIFY(finished.wait(30000));
        QVERIFY2(finished.first().at(0).toBool(), qPrintable(dialog.testOutput()));
        QVERIFY(saveButton(dialog)->isEnabled());
        QCOMPARE(knownHosts(), before); // not before Save
        dialog.accept();
        const QByteArray after = knownHosts();
        QVERIFY2(after.contains(hostPublicKey().split(' ').last()), after.constData());
        QVERIFY2(!after.contains(oldKey.split(' ').last()), after.constData());
        // A plain session (nothing vouched for) trusts the new key from the file now.
        SshConfig config = m_server.config();
        config.knownHostsFile = corralKnownHostsPath();
        SshSession session(config);
        QVERIFY_RESULT(session.connect());
    }

    // A port where something other than sshd answers (an HTTP server, or a server that closes
    // at once) is named as not an SSH server, not "Socket error: disconnected".
    void nonSshPortIsNamed() {
        for (const bool speaksHttp : {true, false}) {
            QTcpServer server;
            QVERIFY(server.listen(QHostAddress(QStringLiteral("127.0.0.1")), 0));
            connect(&server, &QTcpServer::newConnection, &server, [&server, speaksHttp] {
                while (QTcpSocket *socket = server.nextPendingConnection()) {
                    if (speaksHttp)
                        socket->write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                    socket->disconnectFromHost();
                }
            });
            AddHostDialog dialog;
            fill(dialog, m_server);
            dialog.findChild<QLineEdit *>(QStringLiteral("hostAddress"))
                ->setText(QStringLiteral("127.0.0.1"));
            dialog.findChild<QSpinBox *>(QStringLiteral("hostPort"))->setValue(server.serverPort());
            QVERIFY(!runTest(dialog));
            const QString expected =
                QStringLiteral("127.0.0.1:%1 answered but is not an SSH server")
                    .arg(server.serverPort());
            QVERIFY2(dialog.testOutput().contains(expected), qPrintable(dialog.testOutput()));
        }
    }

    // Remove host: refused, naming every site, while sites use it; else asked and done.
    void removeHostRefusedWhileUsed() {
        writeHostsInventory();
        MainWindow window(inventoryPath());
        QList<Confirmation> asked;
        window.setConfirmer(std::make_unique<RecordingConfirmer>(&asked));
        QAction *remove = window.action(QStringLiteral("removeHost"));
        QVERIFY(remove);
        window.hostTree()->setCurrentIndex(hostIndex(window, QStringLiteral("web1")));
        remove->trigger();
        QVERIFY2(window.lastError().contains(QStringLiteral("\"shop\"")) &&
                     window.lastError().contains(QStringLiteral("\"front\"")),
                 qPrintable(window.lastError()));
        QVERIFY(asked.isEmpty());
        QVERIFY(Inventory::load(inventoryPath())->host(QStringLiteral("web1")));

        window.hostTree()->setCurrentIndex(hostIndex(window, QStringLiteral("web2")));
        remove->trigger();
        QCOMPARE(asked.size(), 1);
        QVERIFY2(asked.first().text.contains(QStringLiteral("web2")),
                 qPrintable(asked.first().text));
        QVERIFY(!Inventory::load(inventoryPath())->host(QStringLiteral("web2")));
        QVERIFY(Inventory::load(inventoryPath())->host(QStringLiteral("web1")));
        QVERIFY(!hostIndex(window, QStringLiteral("web2")).isValid());
    }

    // Edit host: the same dialog, pre-filled; Save changes the host in the inventory.
    void editChangesTheInventory() {
        writeHostsInventory();
        MainWindow window(inventoryPath());
        QAction *edit = window.action(QStringLiteral("editHost"));
        QVERIFY(edit);
        window.hostTree()->setCurrentIndex(hostIndex(window, QStringLiteral("web2")));
        edit->trigger();
        auto *dialog = window.findChild<AddHostDialog *>();
        QVERIFY(dialog);
        auto *name = dialog->findChild<QLineEdit *>(QStringLiteral("hostName"));
        QCOMPARE(name->text(), QStringLiteral("web2"));
        QVERIFY(name->isReadOnly()); // sites refer to it by name
        QCOMPARE(dialog->findChild<QLineEdit *>(QStringLiteral("hostAddress"))->text(),
                 m_server.address());
        QCOMPARE(dialog->findChild<QSpinBox *>(QStringLiteral("hostPort"))->value(),
                 int(m_server.port()));
        QCOMPARE(dialog->findChild<QLineEdit *>(QStringLiteral("hostKeyPath"))->text(),
                 m_server.clientKey());
        auto *error = dialog->findChild<QLabel *>(QStringLiteral("hostError"));
        QVERIFY(error && error->text().isEmpty());
        dialog->findChild<QLineEdit *>(QStringLiteral("hostUser"))
            ->setText(QStringLiteral("deploy"));
        dialog->findChild<QSpinBox *>(QStringLiteral("hostPort"))->setValue(2222);
        dialog->accept();
        const auto inventory = Inventory::load(inventoryPath());
        QVERIFY_RESULT(inventory);
        QVERIFY(inventory->host(QStringLiteral("web2")));
        const Host saved = *inventory->host(QStringLiteral("web2"));
        QCOMPARE(saved.user, QStringLiteral("deploy"));
        QCOMPARE(saved.port, quint16(2222));
        QCOMPARE(saved.address, m_server.address());
        QCOMPARE(inventory->hosts().size(), 2);
    }

    // Reconnect host: its session is dropped and a new one made (a new sshd connection
    // process), and the tree shows it online.
    void reconnectMakesANewConnection() {
        // The server's current key is trusted (whatever the tests before did).
        QVERIFY_RESULT(replaceKnownHost(
            corralKnownHostsPath(), knownHostsName(m_server.address(), m_server.port()),
            knownHostsName(m_server.address(), m_server.port()).toUtf8() + ' ' + hostPublicKey()));
        writeHostsInventory();
        MainWindow window(inventoryPath());
        QTRY_VERIFY_WITH_TIMEOUT(
            hostState(window, QStringLiteral("web2")).endsWith(QStringLiteral(" · online")), 30000);
        const QList<qint64> before = serverConnections();
        QVERIFY(!before.isEmpty());
        QAction *reconnect = window.action(QStringLiteral("reconnectHost"));
        QVERIFY(reconnect);
        window.hostTree()->setCurrentIndex(hostIndex(window, QStringLiteral("web2")));
        reconnect->trigger();
        const auto newConnection = [&] {
            for (qint64 pid : serverConnections())
                if (!before.contains(pid)) return true;
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(newConnection(), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(
            hostState(window, QStringLiteral("web2")).endsWith(QStringLiteral(" · online")), 30000);
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
        // The key is recorded by Save, not by the test.
        QVERIFY(!knownHosts().contains(server.address().toUtf8()));
        dialog.accept();
        QVERIFY(knownHosts().contains(server.address().toUtf8()));

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
