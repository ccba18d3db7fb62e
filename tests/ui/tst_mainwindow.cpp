#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "inventory/Inventory.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

using namespace corral;

class TestMainWindow : public QObject {
    Q_OBJECT
    // The window connects to the user's agent when one runs: a private runtime directory
    // keeps it away from the user's sites.
    QTemporaryDir m_runtime;

private Q_SLOTS:
    void initTestCase() { qputenv("XDG_RUNTIME_DIR", QFile::encodeName(m_runtime.path())); }

    void showsHostsAndSites() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        Inventory inventory;
        Host web;
        web.name = QStringLiteral("web1");
        web.kind = Host::Kind::Ssh;
        web.address = QStringLiteral("127.0.0.2");
        QVERIFY(inventory.addHost(web).ok());
        Site local;
        local.name = QStringLiteral("blog");
        QVERIFY(inventory.addSite(local).ok());
        Site remote;
        remote.name = QStringLiteral("chat");
        remote.hosts = {QStringLiteral("web1")};
        QVERIFY(inventory.addSite(remote).ok());
        QVERIFY(inventory.save(path).ok());

        MainWindow window(path);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QAbstractItemModel *model = window.hostTree()->model();
        QAbstractItemModelTester tester(model,
                                        QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(model->rowCount(), 2);
        const QModelIndex localHost = model->index(0, 0);
        QCOMPARE(localHost.data(InventoryTreeModel::NameRole).toString(), QStringLiteral("local"));
        QCOMPARE(model->rowCount(localHost), 1);
        QCOMPARE(model->index(0, 0, localHost).data().toString(), QStringLiteral("blog"));
        const QModelIndex remoteHost = model->index(1, 0);
        QCOMPARE(remoteHost.data().toString(), QStringLiteral("web1"));
        QCOMPARE(model->index(0, 0, remoteHost).data().toString(), QStringLiteral("chat"));
        QVERIFY(window.hostTree()->isExpanded(remoteHost));

        // A reload picks up changes; a broken file keeps what is shown and says why.
        QVERIFY(inventory.removeSite(QStringLiteral("blog")).ok());
        QVERIFY(inventory.save(path).ok());
        window.reloadInventory();
        QCOMPARE(model->rowCount(model->index(0, 0)), 0);
        {
            QFile file(path);
            QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
            file.write("{ broken");
        }
        window.reloadInventory();
        QVERIFY(window.lastError().contains(path));
        QCOMPARE(model->rowCount(), 2);
    }
};

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
