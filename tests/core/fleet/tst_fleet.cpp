#include "FleetFixture.h"
#include "FleetOverviewModel.h"
#include "charts/DistributionGroups.h"
#include "fleet/FleetMonitor.h"
#include "ssh/SshHost.h"

#include <QElapsedTimer>
#include <QMap>
#include <QTest>

#include <memory>
#include <numeric>

#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

constexpr int Hosts = 8;
constexpr int WorkersPerHost = 3;
// Two sites of 12 backends each over the 8 hosts (some hosts run two of a site's workers,
// some one): enough backends for the distribution's per-host bars.
constexpr int Sites = 2;

quint64 sum(const QHash<QString, quint64> &counts) {
    quint64 total = 0;
    for (quint64 count : counts)
        total += count;
    return total;
}

/// The site row's backends as the distribution chart gets them: one row per backend of the
/// balancer, with its inventory host.
QList<WorkerRow> backendRows(const Site &site, const FleetSiteRow &row) {
    QList<WorkerRow> rows;
    for (const Backend &backend : site.backends) {
        WorkerRow worker;
        worker.site = site.name;
        worker.host = backend.address;
        worker.port = backend.port;
        worker.hostName = row.backendHost.value(backend.key());
        worker.inProxy = true;
        worker.requestsTotal = row.backendRequestsTotal.value(backend.key());
        worker.requestsPerSecond = row.backendRequestsPerSecond.value(backend.key());
        rows.append(worker);
    }
    return rows;
}

} // namespace

/// The fleet overview's poll (issue 20) on a fleet of real parts: 8 sshd "hosts" on
/// 127.0.1.1 ... 127.0.1.8 with 3 fallback demo workers each, 2 sites behind a real nginx and
/// a real HAProxy (tests/helpers/FleetFixture), polled by FleetMonitor over SshHosts of an
/// SshPool as the console does. Every host reachable with its workers counted; requests sent
/// through the balancers counted per backend, the overview's totals the sum of the site rows
/// and the distribution's per-host bars the sum of their backends; one host's sshd killed:
/// its row unreachable within the poll timeout while every other host updates on every tick.
class TestFleet : public QObject {
    Q_OBJECT

    std::unique_ptr<FleetFixture> m_fleet;
    std::unique_ptr<SshPool> m_pool;
    std::unique_ptr<FleetMonitor> m_monitor;
    PollOptions m_options;

    const FleetSnapshot &snapshot() const { return m_monitor->snapshot(); }

    /// Requests sent through site `site`'s balancer, counted by the backend that answered
    /// ("127.0.1.H:PORT", from the demo worker's port).
    QMap<QString, quint64> sendRequests(int site, int count) {
        QMap<QString, quint64> perBackend;
        QHash<quint16, QString> keyOfPort;
        for (const Backend &backend : m_fleet->sites().at(site).backends)
            keyOfPort.insert(backend.port, backend.key());
        for (int i = 0; i < count; ++i) {
            const HttpReply reply = m_fleet->get(site);
            if (reply.status != 200) return {};
            perBackend[keyOfPort.value(quint16(workerPortOf(reply)))] += 1;
        }
        return perBackend;
    }

private Q_SLOTS:
    void initTestCase() {
        if (::geteuid() != 0) QSKIP("needs root: the sshd fixtures log in as root");
        if (!NginxInstance::available()) QSKIP("nginx is not installed");
        FleetOptions options;
        options.hosts = Hosts;
        options.workersPerHost = WorkersPerHost;
        options.sites = Sites;
        options.demoWorker = QStringLiteral(DEMO_WORKER_PATH);
        m_fleet = std::make_unique<FleetFixture>(options);
        QString error;
        QVERIFY2(m_fleet->start(&error), qPrintable(error));
        qInfo("fleet of %d hosts, %d workers, %d sites up in %lld ms", m_fleet->hostCount(),
              m_fleet->workerCount(), m_fleet->siteCount(), qint64(m_fleet->startupMs()));

        m_pool = std::make_unique<SshPool>();
        m_monitor = std::make_unique<FleetMonitor>();
        m_options.intervalMs = 1000;
        m_options.timeoutMs = 2000;
        m_options.maxConcurrent = 4; // below the host count: the queue is used every round
        m_options.firstRetryMs = 1000;
        m_monitor->setOptions(m_options);
        FleetFixture *fleet = m_fleet.get();
        SshPool *pool = m_pool.get();
        m_monitor->setInventory(m_fleet->hosts(), m_fleet->sites(),
                                [fleet, pool](const Host &host) {
                                    return pool->host(host.name, fleet->sshConfig(host));
                                });
        m_monitor->start();
    }

    void cleanupTestCase() {
        if (m_monitor) m_monitor->stop();
        m_monitor.reset();
        m_pool.reset(); // the sessions close before their servers stop
        m_fleet.reset();
    }

    // Every host answers, with its 3 workers running; every site counts its 12.
    void everyHostReachable() {
        const auto allUp = [&] {
            int hosts = 0;
            for (const FleetHostRow &host : snapshot().hosts) {
                if (host.local) continue;
                if (!host.reachable || host.workersRunning != WorkersPerHost) return false;
                ++hosts;
            }
            return hosts == Hosts;
        };
        QTRY_VERIFY_WITH_TIMEOUT(allUp(), 20000);
        for (const FleetHostRow &host : snapshot().hosts) {
            if (host.local) continue;
            QCOMPARE(host.workersTotal, WorkersPerHost);
            QVERIFY2(host.error.isEmpty(), qPrintable(host.error));
            QVERIFY(host.lastSeenMs > 0);
            QVERIFY(host.cores > 0);
            QVERIFY(host.memoryTotalBytes > 0);
        }
        QCOMPARE(snapshot().sites.size(), Sites);
        for (int s = 0; s < Sites; ++s) {
            const FleetSiteRow &site = snapshot().sites.at(s);
            QCOMPARE(site.name, FleetFixture::siteName(s));
            QCOMPARE(site.balancerHost, FleetFixture::hostName(s));
            QCOMPARE(site.backends, Hosts * WorkersPerHost / Sites);
            QCOMPARE(site.workersTotal, site.backends);
            QCOMPARE(site.workersRunning, site.backends);
            QVERIFY2(!site.degraded(), qPrintable(site.error));
            for (const Backend &backend : m_fleet->sites().at(s).backends)
                QCOMPARE(site.backendHost.value(backend.key()),
                         FleetFixture::hostName(int(backend.address.section(u'.', 3).toInt()) - 1));
        }
        QCOMPARE(snapshot().workersRunning(), Hosts * WorkersPerHost);
        QVERIFY(m_monitor->maxSessionsInFlight() <= m_options.maxConcurrent);
        QVERIFY(m_monitor->maxSessionsInFlight() >= 1);
    }

    // Real requests through nginx (site 1) and HAProxy (site 2): each site row counts them
    // per backend as they were answered; the overview's totals are the sums of the site rows;
    // the distribution's per-host bars add up their backends.
    void requestsCountedPerBackend() {
        QTRY_VERIFY_WITH_TIMEOUT(
            snapshot().sites.value(0).countsKnown && snapshot().sites.value(1).countsKnown, 15000);
        constexpr int Requests = 36;
        for (int s = 0; s < Sites; ++s) {
            const QHash<QString, quint64> before = snapshot().sites.at(s).backendRequestsTotal;
            const QMap<QString, quint64> sent = sendRequests(s, Requests);
            QCOMPARE(std::accumulate(sent.cbegin(), sent.cend(), quint64(0)), quint64(Requests));
            QTRY_COMPARE_WITH_TIMEOUT(sum(snapshot().sites.at(s).backendRequestsTotal) -
                                          sum(before),
                                      quint64(Requests), 10000);
            const FleetSiteRow site = snapshot().sites.at(s);
            for (const Backend &backend : m_fleet->sites().at(s).backends)
                QCOMPARE(site.backendRequestsTotal.value(backend.key()) -
                             before.value(backend.key()),
                         sent.value(backend.key()));

            // Per host, as the distribution chart groups more backends than bars.
            QList<WorkerRow> rows = backendRows(m_fleet->sites().at(s), site);
            for (WorkerRow &row : rows) // only this test's requests
                row.requestsTotal -= before.value(Backend{row.host, row.port}.key());
            const QList<DistributionBar> bars = distributionBars(rows, Hosts);
            QMap<QString, quint64> perHost;
            QMap<QString, int> backendsPerHost;
            for (const WorkerRow &row : std::as_const(rows)) {
                perHost[row.hostName] += sent.value(Backend{row.host, row.port}.key());
                backendsPerHost[row.hostName] += 1;
            }
            QCOMPARE(bars.size(), perHost.size());
            for (const DistributionBar &bar : bars) {
                QVERIFY2(!bar.others, qPrintable(bar.label));
                QCOMPARE(bar.drillHost, bar.label);
                QCOMPARE(bar.requestsTotal, perHost.value(bar.label));
                QCOMPARE(bar.backends, backendsPerHost.value(bar.label));
            }
        }

        FleetOverviewModel model;
        model.setSnapshot(snapshot());
        const FleetOverviewModel::Totals totals = model.totals();
        int running = 0, total = 0;
        double requests = 0, errors = 0;
        for (const FleetSiteRow &site : snapshot().sites) {
            running += site.workersRunning;
            total += site.workersTotal;
            requests += site.requestsPerSecond;
            errors += site.errorsPerSecond;
        }
        QCOMPARE(totals.workersRunning, running);
        QCOMPARE(totals.workersTotal, total);
        QCOMPARE(totals.requestsPerSecond, requests);
        QCOMPARE(totals.errorsPerSecond, errors);
        QCOMPARE(totals.hostsTotal, int(snapshot().hosts.size()));
    }

    // A host whose sshd dies shows unreachable within the poll timeout (and one interval),
    // while every other host is seen anew on every tick.
    void deadHostUnreachableOthersKeepUpdating() {
        const int dead = Hosts - 1; // runs workers of both sites, no balancer
        const QString deadName = FleetFixture::hostName(dead);
        // Every snapshot updated() carries, in order.
        QList<FleetSnapshot> ticks;
        const QMetaObject::Connection collect =
            connect(m_monitor.get(), &FleetMonitor::updated, this,
                    [&ticks](const FleetSnapshot &latest) { ticks.append(latest); });
        QElapsedTimer clock;
        clock.start();
        m_fleet->killHost(dead);
        const int bound = m_options.timeoutMs + m_options.intervalMs;
        const auto deadShown = [&] {
            for (const FleetSnapshot &tick : std::as_const(ticks))
                if (const FleetHostRow *row = tick.host(deadName); row && !row->reachable)
                    return true;
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(deadShown(), bound + 3000);
        const qint64 unreachableAfterMs = clock.elapsed();
        QVERIFY2(unreachableAfterMs <= bound,
                 qPrintable(QStringLiteral("%1 shown unreachable after %2 ms (bound %3 ms)")
                                .arg(deadName)
                                .arg(unreachableAfterMs)
                                .arg(bound)));
        qInfo("dead host shown unreachable after %lld ms", unreachableAfterMs);

        // Five ticks more: the others' lastSeenMs advances on each; the dead one stays down
        // and both sites name it. An update that follows the previous one within half an
        // interval (the round the failure finished, then the interval's own) is checked with
        // the next one.
        QHash<QString, qint64> lastSeen;
        for (const FleetHostRow &host : ticks.last().hosts)
            lastSeen.insert(host.name, host.lastSeenMs);
        qint64 previousTick = ticks.last().timestampMs;
        ticks.clear();
        QTRY_VERIFY_WITH_TIMEOUT(ticks.size() >= 6, m_options.intervalMs * 6 + 3000);
        disconnect(collect);
        int checked = 0;
        for (int tick = 0; tick < ticks.size(); ++tick) {
            const FleetSnapshot &latest = ticks.at(tick);
            if (latest.timestampMs - previousTick < m_options.intervalMs / 2) {
                qInfo("update %d came %lld ms after the previous one", tick,
                      latest.timestampMs - previousTick);
                continue;
            }
            previousTick = latest.timestampMs;
            ++checked;
            for (const FleetHostRow &host : latest.hosts) {
                if (host.local) continue;
                if (host.name == deadName) {
                    QVERIFY(!host.reachable);
                    QVERIFY(!host.error.isEmpty());
                    continue;
                }
                QVERIFY2(host.reachable, qPrintable(host.name + u' ' + host.error));
                QVERIFY2(host.lastSeenMs > lastSeen.value(host.name),
                         qPrintable(QStringLiteral("tick %1: %2 last seen %3, before %4")
                                        .arg(tick)
                                        .arg(host.name)
                                        .arg(host.lastSeenMs)
                                        .arg(lastSeen.value(host.name))));
                lastSeen.insert(host.name, host.lastSeenMs);
            }
            for (const FleetSiteRow &site : latest.sites) {
                QVERIFY2(site.unreachableHosts.contains(deadName), qPrintable(site.name));
                QVERIFY(site.degraded());
            }
        }
        QVERIFY2(checked >= 5, qPrintable(QString::number(checked)));
        QVERIFY(m_monitor->maxSessionsInFlight() <= m_options.maxConcurrent);
    }
};

QTEST_MAIN(TestFleet)
#include "tst_fleet.moc"
