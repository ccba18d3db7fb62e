#pragma once

#include <QHash>
#include <QList>
#include <QString>
#include <QStringList>

namespace corral {

/// One inventory host as the fleet poll last saw it (FleetMonitor): reachability, load,
/// memory, and the production workers and requests that run on it.
struct FleetHostRow {
    QString name;
    QString address;
    bool local = false; ///< the machine the console runs on (no SSH)
    /// False until the host answered once, and whenever its last poll failed or timed out.
    bool reachable = false;
    bool polled = false;   ///< a poll of it has finished at least once (answered or failed)
    QString error;         ///< why it is unreachable ("no answer within 3 s", ssh's error)
    qint64 lastSeenMs = 0; ///< when it last answered, ms since the epoch; 0: never
    qint64 pollMs = 0;     ///< round trip of its last answered poll
    qint64 retryInMs = 0;  ///< back-off: the next poll of an unreachable host is this far off
    int cores = 0;
    double load1 = 0;           ///< /proc/loadavg
    double cpuBusyPercent = 0;  ///< all cores, 0..100, since its previous poll
    qint64 memoryUsedBytes = 0; ///< MemTotal - MemAvailable
    qint64 memoryTotalBytes = 0;
    int workersRunning = 0;       ///< production workers on this host that run
    int workersTotal = 0;         ///< production backends whose worker is on this host
    double requestsPerSecond = 0; ///< requests its workers served (from the balancers' counts)
    double errorsPerSecond = 0;   ///< 5xx answers of its workers
    /// Unreachable, or not every worker on it runs: sorted first by the overview.
    bool degraded() const { return (polled && !reachable) || workersRunning < workersTotal; }
};

/// One production site (a site with a balancer) across the fleet.
struct FleetSiteRow {
    QString name;
    QString balancerHost;   ///< inventory host of its balancer
    QString balancerFormat; ///< "nginx", "haproxy", "apache"
    int backends = 0;
    /// Backends whose worker runs on a polled inventory host (workerHostFor(); loopback ones
    /// on the balancer's host) and whose pid file there names a live process; a backend at an
    /// address no host has counts in `backends` only. The host rows sum to these.
    int workersRunning = 0;
    int workersTotal = 0;
    /// False until two readings of its balancer's counters exist (rates need two), and
    /// while its balancer's host is unreachable.
    bool countsKnown = false;
    double requestsPerSecond = 0;
    double errorsPerSecond = 0;
    /// Per backend ("ADDRESS:PORT", Backend::key()): requests per second and since the
    /// monitor started, as the balancer counted them; the distribution view aggregates these.
    QHash<QString, double> backendRequestsPerSecond;
    QHash<QString, quint64> backendRequestsTotal;
    /// The inventory host each backend's worker runs on (workerHostFor()); "" when none.
    QHash<QString, QString> backendHost;
    QStringList unreachableHosts; ///< hosts of this site (balancer or workers) not answering
    QString error;                ///< the balancer's counters could not be read: why
    bool degraded() const {
        return !unreachableHosts.isEmpty() || workersRunning < workersTotal || !error.isEmpty();
    }
};

/// The whole fleet at one tick: every host and every production site. The totals are sums
/// of the site rows (requests and workers) so the overview's total line is their sum.
struct FleetSnapshot {
    qint64 timestampMs = 0;
    QList<FleetHostRow> hosts; ///< inventory order
    QList<FleetSiteRow> sites; ///< inventory order
    /// Wall time of the last complete round (every host answered, failed or timed out).
    qint64 lastRoundMs = 0;
    int sessionsInFlight = 0; ///< polls running right now (never above the cap)

    int workersRunning() const {
        int sum = 0;
        for (const FleetSiteRow &site : sites)
            sum += site.workersRunning;
        return sum;
    }
    int workersTotal() const {
        int sum = 0;
        for (const FleetSiteRow &site : sites)
            sum += site.workersTotal;
        return sum;
    }
    double requestsPerSecond() const {
        double sum = 0;
        for (const FleetSiteRow &site : sites)
            sum += site.requestsPerSecond;
        return sum;
    }
    double errorsPerSecond() const {
        double sum = 0;
        for (const FleetSiteRow &site : sites)
            sum += site.errorsPerSecond;
        return sum;
    }
    const FleetHostRow *host(const QString &name) const {
        for (const FleetHostRow &row : hosts)
            if (row.name == name) return &row;
        return nullptr;
    }
    const FleetSiteRow *site(const QString &name) const {
        for (const FleetSiteRow &row : sites)
            if (row.name == name) return &row;
        return nullptr;
    }
};

} // namespace corral
