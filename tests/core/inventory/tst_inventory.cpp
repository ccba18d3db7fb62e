#include "inventory/Inventory.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace corral;

static QByteArray sha256(const QString &path) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) return {};
    return QCryptographicHash::hash(file.readAll(), QCryptographicHash::Sha256);
}

static void writeFile(const QString &path, const QByteArray &bytes) {
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    QCOMPARE(file.write(bytes), bytes.size());
}

static Inventory sampleInventory() {
    Inventory inventory;
    Host web;
    web.name = QStringLiteral("web1");
    web.kind = Host::Kind::Ssh;
    web.address = QStringLiteral("127.0.0.2");
    web.user = QStringLiteral("deploy");
    [&] { QVERIFY(inventory.addHost(web).ok()); }();
    Site site;
    site.name = QStringLiteral("mysite");
    site.backends = {Backend{QStringLiteral("127.0.0.1"), 3000, 1, false, false}};
    site.hosts = {QStringLiteral("web1")};
    [&] { QVERIFY(inventory.addSite(site).ok()); }();
    Site local;
    local.name = QStringLiteral("dev");
    [&] { QVERIFY(inventory.addSite(local).ok()); }();
    return inventory;
}

class TestInventory : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void missingFileIsEmpty() {
        QTemporaryDir dir;
        const auto inventory = Inventory::load(dir.filePath(QStringLiteral("none.json")));
        QVERIFY2(inventory.ok(), qPrintable(inventory.error()));
        QVERIFY(inventory->sites().isEmpty());
        QCOMPARE(inventory->hostsWithLocal().size(), 1);
        QCOMPARE(inventory->hostsWithLocal().first().name, Host::LocalName);
    }

    void roundTripsAndKeepsBackup() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sub/inventory.json"));
        Inventory inventory = sampleInventory();
        QVERIFY(inventory.save(path).ok());
        QVERIFY(!QFile::exists(path + QStringLiteral(".bak")));
        const QByteArray first = sha256(path);

        auto loaded = Inventory::load(path);
        QVERIFY2(loaded.ok(), qPrintable(loaded.error()));
        QCOMPARE(loaded->hosts(), inventory.hosts());
        QCOMPARE(loaded->sites(), inventory.sites());
        QCOMPARE(loaded->toJson(), inventory.toJson());

        QVERIFY(loaded->removeSite(QStringLiteral("dev")).ok());
        QVERIFY(loaded->save(path).ok());
        QCOMPARE(sha256(path + QStringLiteral(".bak")), first);
        QCOMPARE(Inventory::load(path)->sites().size(), 1);
        // Nothing but the file and its backup: QSaveFile leaves no temporaries behind.
        QCOMPARE(QDir(dir.filePath(QStringLiteral("sub"))).entryList(QDir::Files).size(), 2);
    }

    void treeOrderPutsLocalFirst() {
        const Inventory inventory = sampleInventory();
        const QList<Host> hosts = inventory.hostsWithLocal();
        QCOMPARE(hosts.size(), 2);
        QCOMPARE(hosts.at(0).name, Host::LocalName);
        QCOMPARE(inventory.sitesOnHost(QStringLiteral("local")).first().name,
                 QStringLiteral("dev"));
        QCOMPARE(inventory.sitesOnHost(QStringLiteral("web1")).first().name,
                 QStringLiteral("mysite"));

        // A production site without hosts shows under its balancer's host, not this machine.
        Inventory withBalancer = sampleInventory();
        Site shop;
        shop.name = QStringLiteral("shop");
        shop.backends = {Backend{QStringLiteral("10.0.0.5"), 3000}};
        SiteBalancer balancer;
        balancer.host = QStringLiteral("web1");
        balancer.format = QStringLiteral("nginx");
        balancer.configPath = QStringLiteral("/etc/nginx/sites-enabled/shop");
        balancer.validate = {QStringLiteral("nginx"), QStringLiteral("-t")};
        balancer.reload = {QStringLiteral("nginx"), QStringLiteral("-s"), QStringLiteral("reload")};
        shop.balancer = balancer;
        QVERIFY(withBalancer.addSite(shop).ok());
        QStringList onWeb1;
        for (const Site &site : withBalancer.sitesOnHost(QStringLiteral("web1")))
            onWeb1.append(site.name);
        QCOMPARE(onWeb1, (QStringList{QStringLiteral("mysite"), QStringLiteral("shop")}));
        for (const Site &site : withBalancer.sitesOnHost(Host::LocalName))
            QVERIFY(site.name != QLatin1String("shop"));
    }

    void resolvesPathFromFlagThenEnvironment() {
        qputenv("CORRAL_INVENTORY", "/tmp/from-env.json");
        QCOMPARE(Inventory::resolvePath(QStringLiteral("/tmp/flag.json")),
                 QStringLiteral("/tmp/flag.json"));
        QCOMPARE(Inventory::resolvePath(), QStringLiteral("/tmp/from-env.json"));
        qputenv("CORRAL_INVENTORY", "");
        qputenv("XDG_CONFIG_HOME", "/tmp/xdg-config");
        QCOMPARE(Inventory::resolvePath(), QStringLiteral("/tmp/xdg-config/corral/inventory.json"));
    }

    void badInputLeavesFileUntouched_data() {
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QString>("expected");
        const QByteArray good = sampleInventory().toJson();
        QTest::newRow("truncated") << good.left(good.size() / 2) << ": syntax error: unterminated";
        QTest::newRow("empty") << QByteArray() << "the file is empty";
        QTest::newRow("invalid json at line 3")
            << QByteArray("{\n  \"version\": 1,\n  \"sites\": [,]\n}\n")
            << "inventory.json:3:13: syntax error:";
        QTest::newRow("not an object")
            << QByteArray("[1,2]") << "expected a JSON object at the top level";
        QTest::newRow("no version") << QByteArray("{\"sites\": []}") << "version: is required";
        QTest::newRow("newer version") << QByteArray("{\"version\": 2, \"sites\": []}")
                                       << "version: 2 is newer than this Corral understands";
        QTest::newRow("wrong type")
            << QByteArray("{\"version\":1,\"sites\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":"
                          "\"c\",\"basePort\":\"x\"}]}")
            << "sites[2].basePort: expected an integer, got a string";
        QTest::newRow("port out of range")
            << QByteArray("{\"version\":1,\"sites\":[{\"name\":\"a\",\"basePort\":0}]}")
            << "sites[0].basePort: 0 is out of range";
        QTest::newRow("duplicate site")
            << QByteArray("{\"version\":1,\"sites\":[{\"name\":\"a\"},{\"name\":\"a\"}]}")
            << "sites[1].name: duplicate site name \"a\" (also sites[0])";
        QTest::newRow("duplicate host")
            << QByteArray("{\"version\":1,\"hosts\":[{\"name\":\"h\",\"address\":\"x\"},{\"name\":"
                          "\"h\",\"address\":\"y\"}]}")
            << "hosts[1].name: duplicate host name \"h\"";
        QTest::newRow("unknown top-level field")
            << QByteArray("{\"version\":1,\"site\":[]}") << "site: unknown field";
        QTest::newRow("unknown site field")
            << QByteArray("{\"version\":1,\"sites\":[{\"name\":\"a\",\"colour\":\"red\"}]}")
            << "sites[0].colour: unknown field";
        QTest::newRow("site on unknown host")
            << QByteArray("{\"version\":1,\"sites\":[{\"name\":\"a\",\"hosts\":[\"nope\"]}]}")
            << "sites[0].hosts[0]: no host named \"nope\"";
        QTest::newRow("sites not an array")
            << QByteArray("{\"version\":1,\"sites\":{}}") << "sites: expected an array";
    }
    void badInputLeavesFileUntouched() {
        QFETCH(QByteArray, content);
        QFETCH(QString, expected);
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        writeFile(path, content);
        const QByteArray before = sha256(path);
        const auto loaded = Inventory::load(path);
        QVERIFY(!loaded.ok());
        QVERIFY2(loaded.error().startsWith(path), qPrintable(loaded.error()));
        QVERIFY2(loaded.error().contains(expected), qPrintable(loaded.error()));
        QCOMPARE(sha256(path), before);
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files),
                 QStringList{QStringLiteral("inventory.json")});
    }

    void refusesToSaveInvalidState() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        Inventory inventory = sampleInventory();
        Site bad;
        bad.name = QStringLiteral("bad");
        bad.hosts = {QStringLiteral("missing-host")};
        QVERIFY(!inventory.addSite(bad).ok());
        QCOMPARE(inventory.sites().size(), 2);
        QVERIFY(!inventory.removeHost(QStringLiteral("web1")).ok()); // still used by mysite
        QVERIFY(!inventory.addSite(inventory.sites().first()).ok()); // duplicate
        QVERIFY(inventory.save(path).ok());
    }

    void unwritableDirectoryIsAnError() {
        QTemporaryDir dir;
        const QString blocker = dir.filePath(QStringLiteral("file"));
        writeFile(blocker, "x");
        const auto saved = sampleInventory().save(blocker + QStringLiteral("/inventory.json"));
        QVERIFY(!saved.ok());
        QVERIFY2(saved.error().contains(blocker), qPrintable(saved.error()));
    }
};

QTEST_GUILESS_MAIN(TestInventory)
#include "tst_inventory.moc"
