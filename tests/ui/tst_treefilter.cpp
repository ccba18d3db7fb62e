// The host tree's search and filters (issue 20): InventoryTreeFilter over InventoryTreeModel
// fed an inventory and live health the way the console feeds it, under
// QAbstractItemModelTester; then the console's search box, state filter and keys offscreen.
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "MainWindow.h"
#include "inventory/Inventory.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QComboBox>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>
#include <QLineEdit>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <memory>

using namespace corral;

namespace {

using StateFilter = InventoryTreeFilter::StateFilter;

Host sshHost(const QString &name, const QString &address) {
    Host host;
    host.name = name;
    host.kind = Host::Kind::Ssh;
    host.address = address;
    host.port = 1; // nothing listens: the console sees it offline at once
    return host;
}

Site siteOn(const QString &name, const QStringList &hosts = {}) {
    Site site;
    site.name = name;
    site.hosts = hosts;
    return site;
}

/// local: blog, api · web1: shop · web2: shop, wiki · db1: cache
Inventory smallFleet() {
    Inventory inventory;
    for (const Host &host : {sshHost(QStringLiteral("web1"), QStringLiteral("127.0.0.2")),
                             sshHost(QStringLiteral("web2"), QStringLiteral("127.0.0.3")),
                             sshHost(QStringLiteral("db1"), QStringLiteral("127.0.0.4"))})
        if (!inventory.addHost(host)) qFatal("addHost");
    for (const Site &site :
         {siteOn(QStringLiteral("blog")), siteOn(QStringLiteral("api")),
          siteOn(QStringLiteral("shop"), {QStringLiteral("web1"), QStringLiteral("web2")}),
          siteOn(QStringLiteral("wiki"), {QStringLiteral("web2")}),
          siteOn(QStringLiteral("cache"), {QStringLiteral("db1")})})
        if (!inventory.addSite(site)) qFatal("addSite");
    return inventory;
}

/// What the tree shows, top to bottom: "host" and "host/site" (names, not display texts).
QStringList shown(const QAbstractItemModel &model) {
    QStringList rows;
    for (int h = 0; h < model.rowCount(); ++h) {
        const QModelIndex host = model.index(h, 0);
        const QString hostName = host.data(InventoryTreeModel::NameRole).toString();
        rows.append(hostName);
        for (int s = 0; s < model.rowCount(host); ++s)
            rows.append(hostName + QLatin1Char('/') +
                        model.index(s, 0, host).data(InventoryTreeModel::NameRole).toString());
    }
    return rows;
}

QStringList everything() {
    return {QStringLiteral("local"),     QStringLiteral("local/blog"), QStringLiteral("local/api"),
            QStringLiteral("web1"),      QStringLiteral("web1/shop"),  QStringLiteral("web2"),
            QStringLiteral("web2/shop"), QStringLiteral("web2/wiki"),  QStringLiteral("db1"),
            QStringLiteral("db1/cache")};
}

/// Counts the rows the proxy filters: what a tick costs.
class CountingFilter : public InventoryTreeFilter {
public:
    mutable int calls = 0;

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override {
        ++calls;
        return InventoryTreeFilter::filterAcceptsRow(sourceRow, sourceParent);
    }
};

} // namespace

class TestTreeFilter : public QObject {
    Q_OBJECT
    // The window connects to the user's agent when one runs: a private runtime directory
    // keeps it away from the user's sites.
    QTemporaryDir m_runtime;

    struct Fixture {
        InventoryTreeModel model;
        InventoryTreeFilter filter;
        std::unique_ptr<QAbstractItemModelTester> sourceTester;
        std::unique_ptr<QAbstractItemModelTester> filterTester;
        Fixture() {
            filter.setSourceModel(&model);
            sourceTester = std::make_unique<QAbstractItemModelTester>(
                &model, QAbstractItemModelTester::FailureReportingMode::QtTest);
            filterTester = std::make_unique<QAbstractItemModelTester>(
                &filter, QAbstractItemModelTester::FailureReportingMode::QtTest);
            model.setInventory(smallFleet());
        }
    };

private Q_SLOTS:
    void initTestCase() { qputenv("XDG_RUNTIME_DIR", QFile::encodeName(m_runtime.path())); }

    void searchesSitesAndHosts() {
        Fixture f;
        QCOMPARE(shown(f.filter), everything());

        // A site: under every host it is on.
        f.filter.setSearchText(QStringLiteral("SHO"));
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("web1"), QStringLiteral("web1/shop"),
                              QStringLiteral("web2"), QStringLiteral("web2/shop")}));
        // A host: with all its sites.
        f.filter.setSearchText(QStringLiteral("eb2"));
        QCOMPARE(shown(f.filter), QStringList({QStringLiteral("web2"), QStringLiteral("web2/shop"),
                                               QStringLiteral("web2/wiki")}));
        // Both: hosts named "web…" with all their sites.
        f.filter.setSearchText(QStringLiteral("web"));
        QCOMPARE(shown(f.filter), QStringList({QStringLiteral("web1"), QStringLiteral("web1/shop"),
                                               QStringLiteral("web2"), QStringLiteral("web2/shop"),
                                               QStringLiteral("web2/wiki")}));
        // What the row says matches too: the local host is "This machine".
        f.filter.setSearchText(QStringLiteral("this mach"));
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("local"), QStringLiteral("local/blog"),
                              QStringLiteral("local/api")}));
        f.filter.setSearchText(QStringLiteral("nothing like it"));
        QCOMPARE(f.filter.rowCount(), 0);
        QVERIFY(!f.filter.firstMatch().isValid());
        // The host filter, with and without a search.
        f.filter.setSearchText(QString());
        f.filter.setHostFilter(QStringLiteral("web2"));
        QCOMPARE(shown(f.filter), QStringList({QStringLiteral("web2"), QStringLiteral("web2/shop"),
                                               QStringLiteral("web2/wiki")}));
        f.filter.setSearchText(QStringLiteral("wik"));
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("web2"), QStringLiteral("web2/wiki")}));
        QCOMPARE(f.filter.firstMatch(), f.filter.siteIndex(QStringLiteral("wiki")));
        QVERIFY(!f.filter.siteIndex(QStringLiteral("blog")).isValid());
        f.filter.setHostFilter(QString());
        f.filter.setSearchText(QString());
        QVERIFY(!f.filter.isFiltering());
        QCOMPARE(shown(f.filter), everything());
        // A reload keeps the search.
        f.filter.setSearchText(QStringLiteral("cache"));
        f.model.setInventory(smallFleet());
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("db1"), QStringLiteral("db1/cache")}));
    }

    void filtersByStateAsItChanges() {
        Fixture f;
        const Inventory inventory = smallFleet();
        f.model.setRunningSites(
            {*inventory.site(QStringLiteral("blog")), *inventory.site(QStringLiteral("api"))});
        f.model.setSiteHealth(QStringLiteral("blog"), 2, 2);
        f.model.setSiteHealth(QStringLiteral("api"), 1, 2);
        f.model.setRemoteSiteHealth(QStringLiteral("wiki"), 3, 3, {});
        f.model.setHostOnline(QStringLiteral("web1"), true);
        f.model.setHostOnline(QStringLiteral("web2"), true);
        f.model.setHostOnline(QStringLiteral("db1"), false, QStringLiteral("refused"));
        const auto stateOf = [&](const QString &site) {
            return InventoryTreeModel::RowState(
                f.model.siteIndex(site).data(InventoryTreeModel::StateRole).toInt());
        };
        QCOMPARE(stateOf(QStringLiteral("blog")), InventoryTreeModel::RowState::Running);
        QCOMPARE(stateOf(QStringLiteral("api")), InventoryTreeModel::RowState::Degraded);
        QCOMPARE(stateOf(QStringLiteral("cache")), InventoryTreeModel::RowState::Unreachable);
        QCOMPARE(InventoryTreeModel::RowState(
                     f.model.index(0, 0).data(InventoryTreeModel::StateRole).toInt()),
                 InventoryTreeModel::RowState::Degraded); // the worst of the local sites

        f.filter.setStateFilter(StateFilter::Running);
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("local"), QStringLiteral("local/blog"),
                              QStringLiteral("web2"), QStringLiteral("web2/wiki")}));
        f.filter.setStateFilter(StateFilter::Stopped);
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("web1"), QStringLiteral("web1/shop"),
                              QStringLiteral("web2"), QStringLiteral("web2/shop")}));
        f.filter.setStateFilter(StateFilter::Unreachable);
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("db1"), QStringLiteral("db1/cache")}));

        // Degraded, as the health changes tick after tick.
        f.filter.setStateFilter(StateFilter::Degraded);
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("local"), QStringLiteral("local/api")}));
        f.model.setSiteHealth(QStringLiteral("api"), 2, 2); // back: nothing degraded is left
        QCOMPARE(shown(f.filter), QStringList());
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        f.model.setSiteHealth(QStringLiteral("blog"), 2, 2, now - 1000, QStringLiteral("killed"),
                              now); // every worker up, but a crash a second ago
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("local"), QStringLiteral("local/blog")}));
        f.model.setRemoteSiteHealth(QStringLiteral("wiki"), 2, 3, {QStringLiteral("web2")});
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("local"), QStringLiteral("local/blog"),
                              QStringLiteral("web2"), QStringLiteral("web2/wiki")}));
        f.model.setSiteHealth(QStringLiteral("blog"), 2, 2, now - 1000, QStringLiteral("killed"),
                              now + InventoryTreeModel::recentCrashMs); // the crash is old now
        f.model.clearRemoteSiteHealth(QStringLiteral("wiki"));
        QCOMPARE(shown(f.filter), QStringList());

        // Hosts going offline and back, with the search narrowing it further.
        f.filter.setStateFilter(StateFilter::Unreachable);
        f.model.setHostOnline(QStringLiteral("db1"), true);
        QCOMPARE(shown(f.filter), QStringList());
        f.model.setHostOnline(QStringLiteral("web2"), false, QStringLiteral("timeout"));
        QCOMPARE(shown(f.filter), QStringList({QStringLiteral("web2"), QStringLiteral("web2/shop"),
                                               QStringLiteral("web2/wiki")}));
        f.filter.setSearchText(QStringLiteral("wiki"));
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("web2"), QStringLiteral("web2/wiki")}));
        f.filter.setStateFilter(StateFilter::Stopped);
        QCOMPARE(shown(f.filter), QStringList());
        f.model.setHostOnline(QStringLiteral("web2"), true);
        QCOMPARE(shown(f.filter),
                 QStringList({QStringLiteral("web2"), QStringLiteral("web2/wiki")}));

        // Clearing every filter shows everything again.
        f.filter.setSearchText(QString());
        f.filter.setStateFilter(StateFilter::All);
        QCOMPARE(shown(f.filter), everything());
    }

    // 50 hosts × 20 sites, every site's health changing in one tick under a state filter: each
    // change re-filters its own row and its host's, not the tree (which would be 1000 × 1050).
    void aTickRefiltersOnlyTheChangedRows() {
        Inventory inventory;
        QList<Site> sites;
        for (int h = 0; h < 50; ++h) {
            const QString host = QStringLiteral("host%1").arg(h, 2, 10, QLatin1Char('0'));
            QVERIFY(inventory.addHost(sshHost(host, QStringLiteral("127.0.1.%1").arg(h + 1))));
            for (int s = 0; s < 20; ++s) {
                sites.append(siteOn(QStringLiteral("site%1-%2").arg(h).arg(s), {host}));
                QVERIFY(inventory.addSite(sites.last()));
            }
        }
        InventoryTreeModel model;
        CountingFilter filter;
        filter.setSourceModel(&model);
        model.setInventory(inventory);
        model.setRunningSites(sites);
        QCOMPARE(filter.rowCount(), 51);
        filter.setStateFilter(StateFilter::Degraded);
        QCOMPARE(filter.rowCount(), 50); // running, nothing known yet: degraded (0/0)
        for (const Site &site : std::as_const(sites))
            model.setSiteHealth(site.name, 2, 2);
        QCOMPARE(filter.rowCount(), 0);

        filter.calls = 0;
        QElapsedTimer timer;
        timer.start();
        for (int i = 0; i < sites.size(); ++i) // one in ten degraded
            model.setSiteHealth(sites.at(i).name, i % 10 == 0 ? 1 : 2, 2);
        const qint64 tickUs = timer.nsecsElapsed() / 1000;
        QCOMPARE(filter.rowCount(), 50);
        QCOMPARE(filter.rowCount(filter.index(0, 0)), 2);
        qInfo("one tick over 1000 sites under a state filter: %lld µs, %d rows filtered", tickUs,
              filter.calls);
        QVERIFY2(filter.calls <= 4 * int(sites.size()), QByteArray::number(filter.calls));

        // A keystroke in the search filters the whole tree once.
        filter.setStateFilter(StateFilter::All);
        filter.calls = 0;
        timer.restart();
        filter.setSearchText(QStringLiteral("site17-1"));
        const qint64 searchUs = timer.nsecsElapsed() / 1000;
        QCOMPARE(shown(filter).size(), 1 + 11); // host17: site17-1, site17-10 … site17-19
        filter.setSearchText(QString());
        QCOMPARE(filter.rowCount(), 51);
        qInfo("a search over 50 hosts × 20 sites: %lld µs, %d rows filtered", searchUs,
              filter.calls);

        // A host's change re-filters its sites alone.
        filter.setStateFilter(StateFilter::Unreachable);
        model.setRunningSites({});      // stopped: offline, their sites are unreachable
        QCOMPARE(filter.rowCount(), 0); // as a view does after a reset: the proxy maps it again
        filter.calls = 0;
        model.setHostOnline(QStringLiteral("host07"), false, QStringLiteral("refused"));
        QCOMPARE(shown(filter).size(), 21);
        QVERIFY2(filter.calls <= 2 * 21, QByteArray::number(filter.calls));
        // Unchanged: nothing to re-filter.
        filter.calls = 0;
        model.setHostOnline(QStringLiteral("host07"), false, QStringLiteral("refused"));
        QCOMPARE(filter.calls, 0);
    }

    void consoleSearchAndKeys() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        QVERIFY(smallFleet().save(path));
        MainWindow window(path);
        window.show();
        QApplication::setActiveWindow(&window);
        QVERIFY(QTest::qWaitForWindowActive(&window));
        QVERIFY2(window.lastError().isEmpty(), qPrintable(window.lastError()));
        QTreeView *tree = window.hostTree();
        QAbstractItemModelTester tester(tree->model(),
                                        QAbstractItemModelTester::FailureReportingMode::QtTest);
        QLineEdit *search = window.treeSearch();
        QComboBox *states = window.treeStateFilter();
        QCOMPARE(search->placeholderText(), QStringLiteral("Search hosts and sites (Ctrl+F)"));
        QVERIFY(search->isClearButtonEnabled());
        QCOMPARE(shown(*tree->model()), everything());

        // Ctrl+F from the tree focuses the search; typing filters, matches expanded.
        tree->setFocus();
        QTRY_VERIFY(tree->hasFocus());
        QTest::keyClick(tree, Qt::Key_F, Qt::ControlModifier);
        QTRY_VERIFY(search->hasFocus());
        QTest::keyClicks(search, QStringLiteral("wik"));
        QCOMPARE(shown(*tree->model()),
                 QStringList({QStringLiteral("web2"), QStringLiteral("web2/wiki")}));
        QVERIFY(tree->isExpanded(tree->model()->index(0, 0)));
        // Enter goes to the first match and shows that site.
        QTest::keyClick(search, Qt::Key_Return);
        QVERIFY(tree->hasFocus());
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("wiki"));
        QCOMPARE(window.currentSiteName(), QStringLiteral("wiki"));

        // Esc clears the search and returns to the tree, on the same row.
        QTest::keyClick(tree, Qt::Key_F, Qt::ControlModifier);
        QTRY_VERIFY(search->hasFocus());
        QVERIFY(search->selectedText() == search->text());
        QTest::keyClick(search, Qt::Key_Escape);
        QVERIFY(search->text().isEmpty());
        QVERIFY(tree->hasFocus());
        QCOMPARE(shown(*tree->model()), everything());
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("wiki"));

        // Keyboard navigation in the tree: Up/Down move and show the site; Left collapses and
        // Right expands a host; Home/End; Enter shows the current site.
        QTest::keyClick(tree, Qt::Key_Up); // web2/shop
        QCOMPARE(window.currentSiteName(), QStringLiteral("shop"));
        QTest::keyClick(tree, Qt::Key_Down); // web2/wiki
        QCOMPARE(window.currentSiteName(), QStringLiteral("wiki"));
        QTest::keyClick(tree, Qt::Key_Home);
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("local"));
        QTest::keyClick(tree, Qt::Key_Left);
        QVERIFY(!tree->isExpanded(tree->currentIndex()));
        QTest::keyClick(tree, Qt::Key_Down); // web1: local's sites are hidden
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("web1"));
        QTest::keyClick(tree, Qt::Key_Up);
        QTest::keyClick(tree, Qt::Key_Right);
        QVERIFY(tree->isExpanded(tree->currentIndex()));
        QTest::keyClick(tree, Qt::Key_Down); // local/blog
        QCOMPARE(window.currentSiteName(), QStringLiteral("blog"));
        QTest::keyClick(tree, Qt::Key_End);
        QCOMPARE(window.currentSiteName(), QStringLiteral("cache"));

        // Typing hides the site on view: it stays on view (the current row moving off a
        // hidden row is not a choice), and is current again once the search shows it.
        search->setFocus();
        QTest::keyClicks(search, QStringLiteral("blo"));
        QCOMPARE(shown(*tree->model()),
                 QStringList({QStringLiteral("local"), QStringLiteral("local/blog")}));
        QCOMPARE(window.currentSiteName(), QStringLiteral("cache"));
        QVERIFY2(!tree->currentIndex().isValid(),
                 qPrintable(tree->currentIndex().data(InventoryTreeModel::NameRole).toString()));
        QTest::keyClick(search, Qt::Key_Down); // the first match, shown
        QCOMPARE(window.currentSiteName(), QStringLiteral("blog"));
        search->setFocus();
        QTest::keyClick(search, Qt::Key_Escape);
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("blog"));
        QTest::keyClick(tree, Qt::Key_Down); // local/api
        QCOMPARE(window.currentSiteName(), QStringLiteral("api"));
        search->setFocus();
        QTest::keyClicks(search, QStringLiteral("blog"));
        QCOMPARE(window.currentSiteName(), QStringLiteral("api"));
        search->clear();
        QCOMPARE(tree->currentIndex().data(InventoryTreeModel::NameRole).toString(),
                 QStringLiteral("api"));

        // Enter on the current row shows it, when the search left it there unchosen.
        {
            const QSignalBlocker quiet(tree->selectionModel());
            tree->setCurrentIndex(static_cast<InventoryTreeFilter *>(tree->model())
                                      ->siteIndex(QStringLiteral("shop")));
        }
        QCOMPARE(window.currentSiteName(), QStringLiteral("api"));
        tree->setFocus();
        QTest::keyClick(tree, Qt::Key_Return);
        QCOMPARE(window.currentSiteName(), QStringLiteral("shop"));

        // The state filter: the SSH hosts (nothing listens on their port) show unreachable.
        states->setCurrentIndex(states->findData(int(StateFilter::Unreachable)));
        QCOMPARE(states->currentText(), QStringLiteral("Unreachable host"));
        QTRY_COMPARE_WITH_TIMEOUT(shown(*tree->model()),
                                  QStringList({QStringLiteral("web1"), QStringLiteral("web1/shop"),
                                               QStringLiteral("web2"), QStringLiteral("web2/shop"),
                                               QStringLiteral("web2/wiki"), QStringLiteral("db1"),
                                               QStringLiteral("db1/cache")}),
                                  15000);
        states->setCurrentIndex(states->findData(int(StateFilter::Running)));
        QCOMPARE(tree->model()->rowCount(), 0);
        states->setCurrentIndex(states->findData(int(StateFilter::All)));
        QCOMPARE(shown(*tree->model()), everything());
    }
};

QTEST_MAIN(TestTreeFilter)
#include "tst_treefilter.moc"
