// The console's session affinity check (issue 22), against a real corral-agent and the real
// demo workers `corral --demo` runs (sessions in each worker's memory): Check session affinity
// shows the per-process banner naming demo.sid, its evidence names the workers asked, its fix
// switches the site to sticky-cookie in the agent and the check that follows by itself says
// sticky-verified; a policy changed elsewhere marks the result stale; each site shows its own.
// A production site the same way through a real sshd and nginx: the fix saves the policy in the
// inventory and opens the Apply dialog; once applied, the check runs again by itself.

#include "AffinityBanner.h"
#include "AgentFixture.h"
#include "ApplyConfigDialog.h"
#include "BalancerFixture.h"
#include "InventoryTreeFilter.h"
#include "MainWindow.h"
#include "ResultVerify.h"
#include "ScriptedConfirmer.h"
#include "SshServer.h"
#include "TestProcess.h"
#include "WorkerTableModel.h"
#include "agent/AgentClient.h"
#include "inventory/Inventory.h"
#include "ssh/HostConnections.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QAction>
#include <QDialog>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QScopeGuard>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <csignal>

using namespace corral;
using namespace corral::test;

namespace {

int runningRows(const MainWindow &window) {
    int count = 0;
    for (const WorkerRow &row : window.workerModel()->rows())
        count += row.state == WorkerState::Running ? 1 : 0;
    return count;
}

std::optional<AffinityVerdict> shownVerdict(const AffinityBanner *banner) {
    if (banner->isChecking() || !banner->report()) return std::nullopt;
    return banner->report()->verdict;
}

/// The worker ports ("127.0.0.1:PORT") named in `text`.
QSet<quint16> portsNamed(const QString &text, const QList<WorkerRow> &workers) {
    QSet<quint16> ports;
    for (const WorkerRow &row : workers)
        if (text.contains(QStringLiteral("127.0.0.1:%1").arg(row.port))) ports.insert(row.port);
    return ports;
}

} // namespace

class TestConsoleAffinity : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;
    std::unique_ptr<AgentFixture> m_agent;

    MainWindow::Options options() const {
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        return options;
    }
    /// The site as the agent lists it, asked by another client.
    agent::SiteStatus agentStatus(const QString &site) {
        agent::AgentClient client;
        if (!client.connectToAgent(false)) return {};
        auto sites = client.status(site);
        return sites && !sites->isEmpty() ? sites->first() : agent::SiteStatus{};
    }

private Q_SLOTS:
    void initTestCase() {
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        // The console's known_hosts and keychain fallback stay in the temporary home; no
        // D-Bus session: key-file hosts need no secret.
        qputenv("HOME", m_home.path().toUtf8());
        qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/corral-test-bus");
        QCoreApplication::setOrganizationName(QStringLiteral("corral-test"));
        m_agent = std::make_unique<AgentFixture>(QStringLiteral(AGENT_PATH));
        QVERIFY2(m_agent->start(), m_agent->log().constData());
    }
    void cleanupTestCase() { QCOMPARE(m_agent->terminate(), 0); }

    // The banner alone: what it offers follows what is true now, and text from the workers
    // is shown literally.
    void bannerOffersTheFixOnlyForWhatIsTrueNow() {
        AffinityBanner banner;
        QVERIFY(banner.isHidden());
        AffinityReport report;
        report.site = QStringLiteral("shop");
        report.policy = QStringLiteral("round-robin");
        report.verdict = AffinityVerdict::PerProcess;
        report.summary = QStringLiteral("<b>connect.sid</b> set by worker A is unknown to B");
        report.fixes = {QStringLiteral("corralctl site update shop --policy sticky-cookie")};
        banner.showReport(report);
        banner.setCurrentPolicy(QStringLiteral("round-robin"));
        QVERIFY(!banner.isHidden());
        QVERIFY(!banner.fixButton()->isHidden());
        QCOMPARE(banner.summaryLabel()->textFormat(), Qt::PlainText);
        QCOMPARE(banner.summaryLabel()->text(), report.summary);
        QVERIFY(banner.verdictLabel()->text().contains(QStringLiteral("per-process")));

        // The policy changed elsewhere: the result says what it was checked under, and no
        // longer offers its fix.
        banner.setCurrentPolicy(QStringLiteral("least-conn"));
        QVERIFY(banner.isStale());
        QVERIFY(banner.fixButton()->isHidden());
        QVERIFY(!banner.recheckButton()->isHidden());
        const auto *stale = banner.findChild<QLabel *>(QStringLiteral("affinityStale"));
        QVERIFY(stale && !stale->isHidden());
        QVERIFY2(stale->text().contains(QStringLiteral("round-robin")) &&
                     stale->text().contains(QStringLiteral("least-conn")),
                 qPrintable(stale->text()));
        banner.setCurrentPolicy(QStringLiteral("round-robin"));
        QVERIFY(!banner.isStale());
        QVERIFY(stale->isHidden());

        // Already sticky: a broken sticky policy needs a look, not the one-click switch.
        report.policy = QStringLiteral("sticky-cookie");
        report.verdict = AffinityVerdict::StickyBroken;
        banner.showReport(report);
        QVERIFY(banner.fixButton()->isHidden());
        report.verdict = AffinityVerdict::Stateless;
        report.policy = QStringLiteral("round-robin");
        banner.showReport(report);
        QVERIFY(banner.fixButton()->isHidden());

        QSignalSpy dismissed(&banner, &AffinityBanner::dismissed);
        QTest::mouseClick(banner.findChild<QPushButton *>(QStringLiteral("affinityClose")),
                          Qt::LeftButton);
        QCOMPARE(dismissed.size(), 1);
        QCOMPARE(dismissed.first().first().toString(), QStringLiteral("shop"));
        QVERIFY(banner.isHidden());
    }

    // corral --demo: the check finds the demo's per-process sessions, the fix switches the
    // site to sticky-cookie and the check that follows says the policy keeps them.
    void demoCheckAndFix() {
        MainWindow window(m_home.filePath(QStringLiteral("inventory.json")), options());
        installConfirmer(window, true);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        const QString listen = QStringLiteral("127.0.0.1:%1").arg(workerBasePort());
        QVERIFY2(window.startDemo(listen).ok(), qPrintable(window.lastError()));
        QTRY_COMPARE_WITH_TIMEOUT(runningRows(window), 3, 20000);
        QVERIFY2(agentStatus(QStringLiteral("demo"))
                     .site.args.join(QLatin1Char(' '))
                     .contains(QStringLiteral("--sessions memory")),
                 "the demo's workers keep no sessions");

        AffinityBanner *banner = window.affinityBanner();
        QCOMPARE(banner->objectName(), QStringLiteral("affinityBanner"));
        QVERIFY(!banner->isVisible()); // nothing checked yet: nothing said
        QAction *check = window.action(QStringLiteral("checkAffinity"));
        QVERIFY(check);
        QTRY_VERIFY_WITH_TIMEOUT(check->isEnabled(), 5000);
        check->trigger();
        // Busy while it runs: said on the banner, and no second check at once.
        QVERIFY(banner->isVisible());
        QVERIFY(banner->isChecking());
        QVERIFY(!check->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(shownVerdict(banner).has_value(), 30000);
        QVERIFY(check->isEnabled());
        const AffinityReport first = *banner->report();
        QVERIFY2(first.verdict == AffinityVerdict::PerProcess,
                 qPrintable(verdictName(first.verdict) + QStringLiteral(": ") + first.summary +
                            first.error));
        QCOMPARE(first.policy, QStringLiteral("round-robin"));
        QVERIFY2(banner->verdictLabel()->text().contains(QStringLiteral("per-process")),
                 qPrintable(banner->verdictLabel()->text()));
        QVERIFY2(banner->summaryLabel()->text().contains(QStringLiteral("demo.sid")),
                 qPrintable(banner->summaryLabel()->text()));
        QVERIFY(banner->fixButton()->isVisible());
        QCOMPARE(banner->fixButton()->objectName(), QStringLiteral("affinityFix"));

        // The evidence on demand: the requests made to two of the workers and their answers.
        QCOMPARE(banner->detailsButton()->objectName(), QStringLiteral("affinityDetails"));
        QTest::mouseClick(banner->detailsButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(banner->detailsDialog() && banner->detailsDialog()->isVisible(),
                                 5000);
        const auto *evidence = banner->detailsDialog()->findChild<QPlainTextEdit *>(
            QStringLiteral("affinityEvidence"));
        QVERIFY(evidence);
        const QString text = evidence->toPlainText();
        QVERIFY2(portsNamed(text, window.workerModel()->rows()).size() >= 2, qPrintable(text));
        QVERIFY2(text.contains(QStringLiteral("demo.sid")), qPrintable(text));
        QVERIFY2(text.contains(QRegularExpression(QStringLiteral("← 200 "))), qPrintable(text));
        banner->detailsDialog()->close();

        // The fix: the site's policy in the agent, then the check again by itself.
        QTest::mouseClick(banner->fixButton(), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(agentStatus(QStringLiteral("demo")).site.policy,
                                  BalancingPolicy::StickyCookie, 10000);
        QTRY_VERIFY_WITH_TIMEOUT(
            shownVerdict(banner) == std::optional(AffinityVerdict::StickyVerified), 30000);
        QCOMPARE(banner->report()->policy, QStringLiteral("sticky-cookie"));
        QVERIFY(!banner->isStale());
        QVERIFY(!banner->fixButton()->isVisible());
        QVERIFY2(banner->verdictLabel()->text().contains(QStringLiteral("sticky-verified")),
                 qPrintable(banner->verdictLabel()->text()));

        // Another site on view shows none of this; back on the demo, its last result.
        window.hostTree()->setCurrentIndex({});
        QTRY_VERIFY(window.currentSiteName().isEmpty());
        QVERIFY(!banner->report());
        auto *tree = static_cast<InventoryTreeFilter *>(window.hostTree()->model());
        window.hostTree()->setCurrentIndex(tree->siteIndex(QStringLiteral("demo")));
        QTRY_COMPARE(window.currentSiteName(), QStringLiteral("demo"));
        QVERIFY(shownVerdict(banner) == std::optional(AffinityVerdict::StickyVerified));

        // The policy changed by another client: the banner no longer claims sticky-verified
        // for the site as it is now.
        agent::AgentClient other;
        QVERIFY_RESULT(other.connectToAgent(false));
        QVERIFY_RESULT(other.call(QLatin1String(agent::op::Policy),
                                  {{QStringLiteral("site"), QStringLiteral("demo")},
                                   {QStringLiteral("policy"), QStringLiteral("round-robin")}},
                                  10000));
        QTRY_VERIFY_WITH_TIMEOUT(banner->isStale(), 5000);
        const auto *stale = banner->findChild<QLabel *>(QStringLiteral("affinityStale"));
        QVERIFY2(stale->isVisible() && stale->text().contains(QStringLiteral("sticky-cookie")) &&
                     stale->text().contains(QStringLiteral("round-robin")),
                 qPrintable(stale->text()));
        // Checked again from the banner: the new policy's result.
        QTest::mouseClick(banner->recheckButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(shownVerdict(banner) == std::optional(AffinityVerdict::PerProcess),
                                 30000);
        QVERIFY(!banner->isStale());
        QVERIFY(banner->fixButton()->isVisible());

        bool stopped = false;
        window.stopAllSites([&] { stopped = true; });
        QTRY_VERIFY_WITH_TIMEOUT(stopped, 20000);
    }

    // A production site: workers with per-process sessions behind a real nginx on an SSH
    // host. The fix saves sticky-cookie in the inventory and opens the Apply dialog; the
    // result meanwhile says it was checked under the old policy; applied, it is checked again.
    void productionCheckAndFix() {
        if (!NginxInstance::available())
            QSKIP("nginx is not installed (installer/install-deps.sh installs it)");
        QString error;
        SshServer server(QStringLiteral("127.0.0.62"));
        QVERIFY2(server.start(&error), qPrintable(error));
        NginxInstance nginx(QStringLiteral("shop"));
        QVERIFY2(nginx.start(&error), qPrintable(error));
        const QStringList memory{QStringLiteral("--sessions"), QStringLiteral("memory")};
        const quint16 base = workerBasePort(2);
        DemoWorker first(QStringLiteral(DEMO_WORKER_PATH));
        DemoWorker second(QStringLiteral(DEMO_WORKER_PATH));
        QVERIFY2(first.start(base, memory, &error), qPrintable(error));
        QVERIFY2(second.start(quint16(base + 1), memory, &error), qPrintable(error));

        const Host host = server.inventoryHost(QStringLiteral("web1"));
        SshConfig trust = SshConfig::fromHost(host);
        trust.acceptNew = true; // as Add host would have, once
        SshSession session(trust);
        QVERIFY_RESULT(session.connect());
        Site site;
        site.name = QStringLiteral("shop");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = QStringList{QStringLiteral("--port"), Site::PortPlaceholder} + memory;
        site.healthPath = QStringLiteral("/health");
        site.workers = 0;
        site.basePort = workerBasePort();
        site.serverNames = {QStringLiteral("shop.example.com")};
        site.backends = {Backend{QStringLiteral("127.0.0.1"), first.port()},
                         Backend{QStringLiteral("127.0.0.1"), second.port()}};
        site.balancer = nginx.balancer(QStringLiteral("web1"));
        auto balancer = RemoteBalancer::fromSite(*site.balancer);
        QVERIFY_RESULT(balancer);
        const ApplyReport applied = ConfigApplier(session).apply(site, balancer.value(), false);
        QVERIFY2(applied.ok(), qPrintable(applied.error));
        const QString inventory = m_home.filePath(QStringLiteral("production.json"));
        QVERIFY_RESULT(writeInventory(inventory, host, site));

        MainWindow window(inventory, options());
        installConfirmer(window, true);
        window.show();
        auto *tree = static_cast<InventoryTreeFilter *>(window.hostTree()->model());
        window.hostTree()->setCurrentIndex(tree->siteIndex(site.name));
        QVERIFY(window.remoteMonitor());
        AffinityBanner *banner = window.affinityBanner();
        QAction *check = window.action(QStringLiteral("checkAffinity"));
        QTRY_VERIFY_WITH_TIMEOUT(check->isEnabled(), 5000);
        auto *connections = window.findChild<HostConnections *>();
        QVERIFY(connections && connections->host(host.name));
        // The check (a login, curl runs) has a thread of its own: the balancer host's thread,
        // which serves the monitor's ticks and the fleet's polls, answers meanwhile. A worker
        // stopped (SIGSTOP) holds the check for a request's timeout, so the order is sure.
        ::kill(pid_t(first.pid()), SIGSTOP);
        auto resume = qScopeGuard([&] { ::kill(pid_t(first.pid()), SIGCONT); });
        check->trigger();
        QVERIFY(banner->isChecking());
        bool answered = false;
        bool answeredWhileChecking = false;
        connections->host(host.name)->call<int>([](SshSession &) -> Result<int> { return 1; },
                                                &window,
                                                [&](Result<int>) {
                                                    answered = true;
                                                    answeredWhileChecking = banner->isChecking();
                                                });
        QTRY_VERIFY_WITH_TIMEOUT(answered, 10000);
        QVERIFY(answeredWhileChecking);
        resume.dismiss();
        ::kill(pid_t(first.pid()), SIGCONT);
        QTRY_VERIFY_WITH_TIMEOUT(!banner->isChecking(), 60000);
        QTRY_VERIFY_WITH_TIMEOUT(check->isEnabled(), 5000);
        check->trigger();
        QVERIFY(banner->isChecking());
        QTRY_VERIFY_WITH_TIMEOUT(shownVerdict(banner).has_value(), 60000);
        QVERIFY2(shownVerdict(banner) == std::optional(AffinityVerdict::PerProcess),
                 qPrintable(verdictName(banner->report()->verdict) + QStringLiteral(": ") +
                            banner->report()->summary + banner->report()->error));
        QVERIFY2(banner->summaryLabel()->text().contains(QStringLiteral("demo.sid")),
                 qPrintable(banner->summaryLabel()->text()));
        QVERIFY(banner->fixButton()->isVisible());

        QTest::mouseClick(banner->fixButton(), Qt::LeftButton);
        // Saved in the inventory, not live yet: the result says what it was checked under.
        auto saved = Inventory::load(inventory);
        QVERIFY_RESULT(saved);
        QCOMPARE(saved->site(site.name)->policy, BalancingPolicy::StickyCookie);
        QVERIFY(banner->isStale());
        QVERIFY(!banner->fixButton()->isVisible());
        // A check now would go through the balancer's old config (sticky-broken, falsely):
        // none is offered until the Apply dialog succeeded.
        QVERIFY(banner->isAwaitingApply());
        QVERIFY(!banner->recheckButton()->isVisible());
        QVERIFY2(banner->staleLabel()->text().contains(QStringLiteral("apply")),
                 qPrintable(banner->staleLabel()->text()));
        auto *dialog = window.findChild<ApplyConfigDialog *>();
        QVERIFY(dialog);
        QTRY_COMPARE_WITH_TIMEOUT(dialog->phase(), ApplyConfigDialog::Phase::Reviewing, 30000);
        QVERIFY2(dialog->diff().contains(QStringLiteral("hash")), qPrintable(dialog->diff()));
        dialog->applyButton()->click();
        QTRY_VERIFY_WITH_TIMEOUT(dialog->phase() != ApplyConfigDialog::Phase::Applying, 60000);
        QVERIFY2(dialog->phase() == ApplyConfigDialog::Phase::Applied,
                 qPrintable(dialog->message()));
        // Checked again by itself, under the policy now live.
        QTRY_VERIFY_WITH_TIMEOUT(
            shownVerdict(banner) == std::optional(AffinityVerdict::StickyVerified), 60000);
        QCOMPARE(banner->report()->policy, QStringLiteral("sticky-cookie"));
        QVERIFY(!banner->isStale());
        QVERIFY(!banner->isAwaitingApply());
        QVERIFY(banner->recheckButton()->isVisible());
        QVERIFY(!banner->fixButton()->isVisible());
        dialog->close();
    }
};

QTEST_MAIN(TestConsoleAffinity)
#include "tst_consoleaffinity.moc"
