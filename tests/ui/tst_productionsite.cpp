#include "CorralctlRunner.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "ProductionSiteDialog.h"
#include "inventory/Inventory.h"

#include <QAction>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>
#include <QToolBar>
#include <QTreeView>

using namespace corral;
using namespace corral::test;

/// The console's Add/Edit production site dialog: the same site as `corralctl site add` with
/// the same values (one set of rules: stock Debian defaults, command splitting, listen
/// parsing, field checks), errors naming the dialog's fields, and the main window saving it
/// to the inventory. Controls greyed for a production site say why.
class TestProductionSite : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;

    QString inventoryPath() const { return m_dir.filePath(QStringLiteral("inventory.json")); }

    /// Two SSH hosts that no sshd answers (the console's connection attempts fail at once).
    static QList<Host> sshHosts() {
        QList<Host> hosts;
        for (const char *name : {"lb", "web1"}) {
            Host host;
            host.name = QLatin1String(name);
            host.kind = Host::Kind::Ssh;
            host.address = QStringLiteral("127.0.0.1");
            host.port = 1; // nothing listens there
            hosts.append(host);
        }
        return hosts;
    }
    void writeHostsOnly() {
        Inventory inventory;
        for (const Host &host : sshHosts())
            QVERIFY(inventory.addHost(host).ok());
        QVERIFY(inventory.save(inventoryPath()).ok());
    }
    Corralctl corralctl() const {
        return Corralctl{QStringLiteral(CORRALCTL_PATH), m_dir.path(), inventoryPath(), 30000};
    }
    template <typename T> static T *field(QWidget *dialog, const char *name) {
        T *widget = dialog->findChild<T *>(QLatin1String(name));
        if (!widget) qFatal("no field %s", name);
        return widget;
    }
    static void setText(QWidget *dialog, const char *name, const QString &text) {
        field<QLineEdit>(dialog, name)->setText(text);
    }
    static void checkWorkerHost(QWidget *dialog, const QString &host) {
        auto *list = field<QListWidget>(dialog, "workerHosts");
        for (int row = 0; row < list->count(); ++row)
            if (list->item(row)->text() == host) list->item(row)->setCheckState(Qt::Checked);
    }
    static QPushButton *saveButton(QWidget *dialog) {
        return dialog->findChild<QDialogButtonBox *>()->button(QDialogButtonBox::Ok);
    }
    /// The dialog's fields for what the corralctl run below is given.
    static void fill(QWidget *dialog, const QString &kind) {
        setText(dialog, "siteName", QStringLiteral("shop"));
        setText(dialog, "serverNames", QStringLiteral("shop.example.com www.shop.example.com"));
        setText(dialog, "command",
                QStringLiteral("/usr/bin/node '/srv/shop app/server.js' --port {port}"));
        setText(dialog, "healthPath", QStringLiteral("/health"));
        setText(dialog, "backends", QStringLiteral("10.0.0.5:3001, 10.0.0.5:3002;weight=2"));
        checkWorkerHost(dialog, QStringLiteral("web1"));
        auto *policy = field<QComboBox>(dialog, "policy");
        policy->setCurrentIndex(policy->findText(QStringLiteral("least-conn")));
        field<QComboBox>(dialog, "balancerKind")->setCurrentText(kind);
        field<QComboBox>(dialog, "balancerHost")->setCurrentText(QStringLiteral("lb"));
        setText(dialog, "balancerListen", QStringLiteral("*:8080"));
        setText(dialog, "probeUrl", QStringLiteral("http://127.0.0.1:8080/health"));
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_dir.isValid()); }

    // The dialog and corralctl give the same site, field for field, for each balancer.
    void dialogMakesWhatCorralctlMakes_data() {
        QTest::addColumn<QString>("kind");
        for (const QString &kind : SiteBalancer::formatNames())
            QTest::newRow(qPrintable(kind)) << kind;
    }
    void dialogMakesWhatCorralctlMakes() {
        QFETCH(QString, kind);
        writeHostsOnly();
        const CtlRun added =
            corralctl().run({QStringLiteral("site"),
                             QStringLiteral("add"),
                             QStringLiteral("shop"),
                             QStringLiteral("--host"),
                             QStringLiteral("shop.example.com,www.shop.example.com"),
                             QStringLiteral("--command"),
                             QStringLiteral("/usr/bin/node"),
                             QStringLiteral("--arg"),
                             QStringLiteral("/srv/shop app/server.js"),
                             QStringLiteral("--arg=--port"),
                             QStringLiteral("--arg"),
                             QStringLiteral("{port}"),
                             QStringLiteral("--health"),
                             QStringLiteral("/health"),
                             QStringLiteral("--backends"),
                             QStringLiteral("10.0.0.5:3001,10.0.0.5:3002;weight=2"),
                             QStringLiteral("--worker-host"),
                             QStringLiteral("web1"),
                             QStringLiteral("--policy"),
                             QStringLiteral("least-conn"),
                             QStringLiteral("--balancer"),
                             kind,
                             QStringLiteral("--balancer-host"),
                             QStringLiteral("lb"),
                             QStringLiteral("--balancer-listen"),
                             QStringLiteral("*:8080"),
                             QStringLiteral("--probe-url"),
                             QStringLiteral("http://127.0.0.1:8080/health")});
        QVERIFY2(added.exitCode == 0, qPrintable(added.err));
        const auto inventory = Inventory::load(inventoryPath());
        QVERIFY(inventory.ok());
        const Site *byCli = inventory->site(QStringLiteral("shop"));
        QVERIFY(byCli);

        ProductionSiteDialog dialog(sshHosts(), {});
        fill(&dialog, kind);
        const Result<Site> byDialog = dialog.site();
        QVERIFY2(byDialog.ok(), qPrintable(byDialog.error()));
        QCOMPARE(QJsonDocument(byDialog->toJson()).toJson(),
                 QJsonDocument(byCli->toJson()).toJson());
        QVERIFY(saveButton(&dialog)->isEnabled());
        // The stock Debian defaults of that kind were filled in.
        QCOMPARE(field<QLineEdit>(&dialog, "configPath")->text(),
                 SiteBalancer::stockDebian(kind, QStringLiteral("shop")).configPath);
    }

    // Changing the kind replaces the defaults of the previous kind, not what the user typed.
    void kindChangeRefillsOnlyDefaults() {
        ProductionSiteDialog dialog(sshHosts(), {});
        fill(&dialog, QStringLiteral("nginx"));
        QCOMPARE(field<QLineEdit>(&dialog, "configPath")->text(),
                 QStringLiteral("/etc/nginx/sites-enabled/shop"));
        setText(&dialog, "reload", QStringLiteral("/usr/sbin/nginx -s reload"));
        field<QComboBox>(&dialog, "balancerKind")->setCurrentText(QStringLiteral("haproxy"));
        QCOMPARE(field<QLineEdit>(&dialog, "configPath")->text(),
                 QStringLiteral("/etc/haproxy/haproxy.cfg"));
        QCOMPARE(field<QLineEdit>(&dialog, "validate")->text(),
                 QStringLiteral("haproxy -c -f /etc/haproxy/haproxy.cfg"));
        QCOMPARE(field<QLineEdit>(&dialog, "reload")->text(),
                 QStringLiteral("/usr/sbin/nginx -s reload"));
        QCOMPARE(field<QLineEdit>(&dialog, "runtimeDirectory")->text(),
                 QStringLiteral("/run/haproxy"));
        QCOMPARE(dialog.site()->balancer->reload,
                 (QStringList{QStringLiteral("/usr/sbin/nginx"), QStringLiteral("-s"),
                              QStringLiteral("reload")}));
    }

    // No error before anything is typed; then every wrong field is named with its label,
    // and Save stays off until the site is valid.
    void errorsNameTheDialogsFields() {
        ProductionSiteDialog dialog(sshHosts(), {QStringLiteral("taken")});
        auto *error = field<QLabel>(&dialog, "error");
        QVERIFY(error->text().isEmpty());
        QVERIFY(!saveButton(&dialog)->isEnabled());

        fill(&dialog, QStringLiteral("nginx"));
        QVERIFY(saveButton(&dialog)->isEnabled());
        setText(&dialog, "balancerListen", QStringLiteral("127.0.0.1:99999"));
        QVERIFY2(error->text().startsWith(QStringLiteral("Listen on: ")),
                 qPrintable(error->text()));
        QVERIFY(!saveButton(&dialog)->isEnabled());
        setText(&dialog, "balancerListen", QStringLiteral("127.0.0.1:8080"));
        setText(&dialog, "reload", QStringLiteral("nginx -t && systemctl reload nginx"));
        QVERIFY2(error->text().startsWith(QStringLiteral("Reload command: ")),
                 qPrintable(error->text()));
        setText(&dialog, "reload", QStringLiteral("systemctl reload nginx"));
        setText(&dialog, "configPath", QStringLiteral("relative/shop.conf"));
        QVERIFY2(error->text().startsWith(QStringLiteral("Config path")),
                 qPrintable(error->text()));
        setText(&dialog, "configPath", QStringLiteral("/etc/nginx/sites-enabled/shop"));
        setText(&dialog, "siteName", QStringLiteral("taken"));
        QVERIFY2(error->text().contains(QStringLiteral("already has a site named taken")),
                 qPrintable(error->text()));
        setText(&dialog, "siteName", QStringLiteral("shop"));
        QVERIFY2(error->text().isEmpty(), qPrintable(error->text()));
        QVERIFY(saveButton(&dialog)->isEnabled());
    }

    // Through the console: File → Add production site… saves the site into the inventory and
    // selects it; Edit production site… changes it; the toolbar shows the site's own backend
    // count and policy; every greyed control says why.
    void consoleAddsAndEditsAProductionSite() {
        writeHostsOnly();
        MainWindow window(inventoryPath());
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QAction *edit = window.action(QStringLiteral("editSite"));
        QVERIFY(!edit->isEnabled());
        QVERIFY2(edit->toolTip().contains(QStringLiteral("Unavailable: select a production site")),
                 qPrintable(edit->toolTip()));

        window.action(QStringLiteral("addProductionSite"))->trigger();
        auto *dialog =
            window.findChild<ProductionSiteDialog *>(QStringLiteral("productionSiteDialog"));
        QVERIFY(dialog);
        QVERIFY(field<QLabel>(dialog, "error")->text().isEmpty());
        fill(dialog, QStringLiteral("nginx"));
        QVERIFY(saveButton(dialog)->isEnabled());
        const QPointer<ProductionSiteDialog> added = dialog;
        saveButton(dialog)->click();
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QTRY_VERIFY(!added); // closed and gone
        auto inventory = Inventory::load(inventoryPath());
        QVERIFY(inventory.ok());
        const Site *saved = inventory->site(QStringLiteral("shop"));
        QVERIFY(saved && saved->balancer);
        QCOMPARE(saved->balancer->format, QStringLiteral("nginx"));
        QCOMPARE(saved->backends.size(), 2);
        QCOMPARE(saved->policy, BalancingPolicy::LeastConn);

        const QModelIndex shop = static_cast<InventoryTreeFilter *>(window.hostTree()->model())
                                     ->siteIndex(QStringLiteral("shop"));
        QVERIFY(shop.isValid());
        window.hostTree()->setCurrentIndex(shop);
        QTRY_VERIFY(edit->isEnabled());
        // The toolbar shows this site's values, not the spin box's and combo's defaults.
        auto *toolbar = window.findChild<QToolBar *>(QStringLiteral("clusterToolbar"));
        QVERIFY(toolbar);
        auto *scale = toolbar->findChild<QSpinBox *>(QStringLiteral("scale"));
        auto *policy = toolbar->findChild<QComboBox *>(QStringLiteral("policy"));
        QVERIFY(scale && policy);
        QCOMPARE(scale->value(), 2);
        QCOMPARE(policy->currentText(), QStringLiteral("least-conn"));
        // The Workers box and Stop site act on the production site (RemoteSite::scaleTo, stop)
        // like corralctl scale and stop; the per-worker actions wait for a selected worker.
        QVERIFY(scale->isEnabled());
        QVERIFY(window.action(QStringLiteral("stopSite"))->isEnabled());
        for (const char *name :
             {"removeBackend", "restartWorker", "toggleBackend", "generateLoad"}) {
            QAction *action = window.action(QLatin1String(name));
            QVERIFY2(!action->isEnabled(), name);
            QVERIFY2(action->toolTip().contains(QStringLiteral("\nUnavailable: ")),
                     qPrintable(action->toolTip()));
            QVERIFY2(!action->toolTip().contains(QStringLiteral("yet\n")), name);
        }

        edit->trigger();
        dialog = window.findChild<ProductionSiteDialog *>(QStringLiteral("productionSiteDialog"));
        QVERIFY(dialog);
        QVERIFY(field<QLineEdit>(dialog, "siteName")->isReadOnly());
        QCOMPARE(field<QLineEdit>(dialog, "backends")->text(),
                 QStringLiteral("10.0.0.5:3001, 10.0.0.5:3002;weight=2"));
        setText(dialog, "backends", QStringLiteral("10.0.0.5:3001, 10.0.0.5:3002, 10.0.0.6:3001"));
        auto *dialogPolicy = field<QComboBox>(dialog, "policy");
        dialogPolicy->setCurrentIndex(dialogPolicy->findText(QStringLiteral("round-robin")));
        saveButton(dialog)->click();
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        inventory = Inventory::load(inventoryPath());
        QVERIFY(inventory.ok());
        QCOMPARE(inventory->site(QStringLiteral("shop"))->backends.size(), 3);
        QCOMPARE(inventory->site(QStringLiteral("shop"))->policy, BalancingPolicy::RoundRobin);
        QTRY_COMPARE(scale->value(), 3);
        QCOMPARE(policy->currentText(), QStringLiteral("round-robin"));
    }
};

QTEST_MAIN(TestProductionSite)
#include "tst_productionsite.moc"
