#include "FleetOverviewModel.h"
#include "PlainText.h"

#include "WorkerTableModel.h"

#include <QBrush>
#include <QColor>
#include <QDateTime>
#include <QLocale>

#include <cmath>
#include <limits>

namespace corral {

namespace {

const QString HostPrefix = QStringLiteral("h:");
const QString SitePrefix = QStringLiteral("s:");

constexpr double Unknown = std::numeric_limits<double>::quiet_NaN();

QColor degradedColour() {
    return QColor(0xd2, 0x3c, 0x3c);
}
QColor okColour() {
    return QColor(0x2e, 0x9d, 0x4f);
}
QColor pendingColour() {
    return QColor(0x80, 0x80, 0x80);
}

QString rate(double value) {
    return QString::number(value, 'f', value < 10 ? 1 : 0);
}

// "12 s ago", "3 m ago": how long since a host last answered, relative to the snapshot (not
// the wall clock, so one snapshot always reads the same).
QString ago(qint64 nowMs, qint64 thenMs) {
    const qint64 ms = std::max<qint64>(0, nowMs - thenMs);
    return QObject::tr("%1 ago").arg(WorkerTableModel::formatDuration(std::max<qint64>(ms, 1000)));
}

QString hostState(const FleetHostRow &host, qint64 nowMs) {
    if (!host.polled) return QObject::tr("connecting…");
    if (!host.reachable) {
        QString text = QObject::tr("unreachable: %1").arg(host.error);
        if (host.retryInMs > 0)
            text += QObject::tr(", retry in %1 s").arg((host.retryInMs + 999) / 1000);
        text += host.lastSeenMs > 0
                    ? QObject::tr(" (last seen %1)").arg(ago(nowMs, host.lastSeenMs))
                    : QObject::tr(" (never seen)");
        return text;
    }
    if (host.workersRunning < host.workersTotal)
        return QObject::tr("%n worker(s) down", nullptr, host.workersTotal - host.workersRunning);
    return QObject::tr("up");
}

QString siteState(const FleetSiteRow &site) {
    QStringList parts;
    if (!site.unreachableHosts.isEmpty())
        parts
            << QObject::tr("unreachable: %1").arg(site.unreachableHosts.join(QStringLiteral(", ")));
    if (!site.error.isEmpty()) parts << QObject::tr("balancer: %1").arg(site.error);
    if (site.workersRunning < site.workersTotal)
        parts << QObject::tr("%n worker(s) down", nullptr, site.workersTotal - site.workersRunning);
    if (!parts.isEmpty()) return parts.join(QStringLiteral("; "));
    return site.countsKnown ? QObject::tr("up") : QObject::tr("up (counting…)");
}

QStringList siteHosts(const FleetSiteRow &site) {
    QStringList hosts;
    if (!site.balancerHost.isEmpty()) hosts << site.balancerHost;
    for (const QString &host : site.backendHost)
        if (!host.isEmpty() && !hosts.contains(host)) hosts << host;
    return hosts;
}

double memoryFraction(const FleetHostRow &host) {
    return host.memoryTotalBytes > 0 ? double(host.memoryUsedBytes) / double(host.memoryTotalBytes)
                                     : 0;
}

} // namespace

FleetOverviewModel::FleetOverviewModel(QObject *parent)
    : QAbstractTableModel(parent) {}

void FleetOverviewModel::setSnapshot(const FleetSnapshot &snapshot) {
    QStringList keys;
    keys.reserve(snapshot.hosts.size() + snapshot.sites.size());
    for (const FleetHostRow &host : snapshot.hosts)
        keys << HostPrefix + host.name;
    for (const FleetSiteRow &site : snapshot.sites)
        keys << SitePrefix + site.name;

    // The sparklines: one value per snapshot and row; rows gone take their history with them
    // (memory stays bounded by the rows shown times TrendLength).
    QHash<QString, QList<double>> trends;
    trends.reserve(keys.size());
    auto push = [&](const QString &key, double value) {
        QList<double> history = m_trends.value(key);
        history.append(value);
        if (history.size() > TrendLength) history.remove(0, history.size() - TrendLength);
        trends.insert(key, history);
    };
    for (const FleetHostRow &host : snapshot.hosts)
        push(HostPrefix + host.name, host.reachable ? host.requestsPerSecond : Unknown);
    for (const FleetSiteRow &site : snapshot.sites)
        push(SitePrefix + site.name, site.countsKnown ? site.requestsPerSecond : Unknown);

    if (keys == m_keys) {
        m_snapshot = snapshot;
        m_trends = std::move(trends);
        if (!keys.isEmpty())
            Q_EMIT dataChanged(index(0, 0), index(int(keys.size()) - 1, ColumnCount - 1));
        return;
    }
    // Hosts or sites added, removed or reordered (an inventory change): rare, so a reset.
    beginResetModel();
    m_snapshot = snapshot;
    m_keys = std::move(keys);
    m_trends = std::move(trends);
    endResetModel();
}

FleetOverviewModel::Totals FleetOverviewModel::totals() const {
    Totals totals;
    for (const FleetSiteRow &site : m_snapshot.sites) {
        totals.workersRunning += site.workersRunning;
        totals.workersTotal += site.workersTotal;
        totals.requestsPerSecond += site.requestsPerSecond;
        totals.errorsPerSecond += site.errorsPerSecond;
    }
    for (const FleetHostRow &host : m_snapshot.hosts) {
        ++totals.hostsTotal;
        if (host.reachable) ++totals.hostsReachable;
    }
    return totals;
}

int FleetOverviewModel::hostRow(const QString &name) const {
    for (int i = 0; i < m_snapshot.hosts.size(); ++i)
        if (m_snapshot.hosts[i].name == name) return i;
    return -1;
}

int FleetOverviewModel::siteRow(const QString &name) const {
    for (int i = 0; i < m_snapshot.sites.size(); ++i)
        if (m_snapshot.sites[i].name == name) return hostRowCount() + i;
    return -1;
}

QList<double> FleetOverviewModel::hostTrend(const QString &name) const {
    return m_trends.value(HostPrefix + name);
}

QList<double> FleetOverviewModel::siteTrend(const QString &name) const {
    return m_trends.value(SitePrefix + name);
}

int FleetOverviewModel::rowCount(const QModelIndex &parent) const {
    return parent.isValid() ? 0 : int(m_keys.size());
}

int FleetOverviewModel::columnCount(const QModelIndex &parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant FleetOverviewModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Name:
            return tr("Name");
        case Kind:
            return tr("Kind");
        case State:
            return tr("State");
        case Load:
            return tr("Load");
        case Memory:
            return tr("Memory");
        case Workers:
            return tr("Workers");
        case RequestsPerSecond:
            return tr("Req/s");
        case ErrorsPerSecond:
            return tr("Err/s");
        case Trend:
            return tr("Trend (req/s)");
        default:
            return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case Load:
            return tr("1-minute load average, and CPU busy across the host's cores");
        case Memory:
            return tr("Memory in use (MemTotal − MemAvailable) of the host's total");
        case Workers:
            return tr("Production workers running of those configured");
        case Trend:
            return tr("Requests per second over the last %1 ticks").arg(TrendLength);
        default:
            return {};
        }
    }
    return {};
}

QVariant FleetOverviewModel::data(const QModelIndex &index, int role) const {
    if (!index.isValid() || index.row() >= m_keys.size()) return {};
    const int row = index.row();
    const QVariant value =
        row < hostRowCount()
            ? hostData(m_snapshot.hosts[row], index.column(), role)
            : siteData(m_snapshot.sites[row - hostRowCount()], index.column(), role);
    // Tool tips quote hosts' errors: shown literally, never as markup.
    return role == Qt::ToolTipRole && value.isValid() ? QVariant(plainToolTip(value.toString()))
                                                      : value;
}

QVariant FleetOverviewModel::trendSortValue(const QString &key) const {
    // The mean of the known values: a steady busy row sorts above one with a single spike.
    double sum = 0;
    int known = 0;
    for (double value : m_trends.value(key))
        if (!std::isnan(value)) {
            sum += value;
            ++known;
        }
    return known > 0 ? sum / known : -1.0;
}

QVariant FleetOverviewModel::hostData(const FleetHostRow &host, int column, int role) const {
    switch (role) {
    case DegradedRole:
        return host.degraded();
    case KindRole:
        return QStringLiteral("host");
    case NameRole:
        return host.name;
    case HostsRole:
        return QStringList{host.name};
    case TrendRole:
        return QVariant::fromValue(m_trends.value(HostPrefix + host.name));
    case Qt::ForegroundRole:
        if (column == State)
            return QBrush(host.degraded() ? degradedColour()
                          : host.polled   ? okColour()
                                          : pendingColour());
        return {};
    case Qt::TextAlignmentRole:
        if (column >= Load && column <= ErrorsPerSecond)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default:
        break;
    }
    // A host that does not answer shows no figures (no last value may pass for a current
    // one); its last reading stays in the tooltips and the sort values.
    const bool live = host.reachable;
    if (role == SortRole) {
        switch (column) {
        case Name:
            return host.name;
        case Kind:
            return 0;
        case State:
            return host.degraded() ? 0 : host.polled ? 2 : 1;
        case Load:
            return host.load1;
        case Memory:
            return memoryFraction(host);
        case Workers:
            return host.workersRunning;
        case RequestsPerSecond:
            return host.requestsPerSecond;
        case ErrorsPerSecond:
            return host.errorsPerSecond;
        case Trend:
            return trendSortValue(HostPrefix + host.name);
        default:
            return {};
        }
    }
    if (role == Qt::DisplayRole) {
        switch (column) {
        case Name:
            return host.name;
        case Kind:
            return host.local ? tr("local host") : tr("host");
        case State:
            return hostState(host, m_snapshot.timestampMs);
        case Load:
            if (!live || host.cores <= 0) return QStringLiteral("–");
            return QStringLiteral("%1 · %2 %")
                .arg(host.load1, 0, 'f', 2)
                .arg(host.cpuBusyPercent, 0, 'f', 0);
        case Memory:
            if (!live || host.memoryTotalBytes <= 0) return QStringLiteral("–");
            return QStringLiteral("%1 / %2").arg(
                WorkerTableModel::formatBytes(host.memoryUsedBytes),
                WorkerTableModel::formatBytes(host.memoryTotalBytes));
        case Workers:
            return QStringLiteral("%1/%2").arg(host.workersRunning).arg(host.workersTotal);
        case RequestsPerSecond:
            return live ? rate(host.requestsPerSecond) : QStringLiteral("–");
        case ErrorsPerSecond:
            return live ? rate(host.errorsPerSecond) : QStringLiteral("–");
        default:
            return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        const QLocale locale;
        const QString stale =
            live ? QString()
                 : tr("Last reading (%1): ")
                       .arg(host.lastSeenMs > 0 ? ago(m_snapshot.timestampMs, host.lastSeenMs)
                                                : tr("none yet"));
        switch (column) {
        case Name:
            return host.local ? tr("%1: the machine this console runs on").arg(host.name)
                              : tr("%1 (%2), last poll %3 ms")
                                    .arg(host.name, host.address)
                                    .arg(host.pollMs);
        case State: {
            QString text = hostState(host, m_snapshot.timestampMs);
            if (host.lastSeenMs > 0)
                text += tr("\nlast answer %1")
                            .arg(QDateTime::fromMSecsSinceEpoch(host.lastSeenMs)
                                     .toString(QStringLiteral("yyyy-MM-dd hh:mm:ss")));
            return text;
        }
        case Load:
            return QString(stale +
                           tr("load average %1 on %n core(s); CPU %2 % busy", nullptr, host.cores)
                               .arg(host.load1, 0, 'f', 2)
                               .arg(host.cpuBusyPercent, 0, 'f', 1));
        case Memory:
            return QString(stale + tr("%1 of %2 bytes in use (%3 %)")
                                       .arg(locale.toString(host.memoryUsedBytes),
                                            locale.toString(host.memoryTotalBytes))
                                       .arg(memoryFraction(host) * 100, 0, 'f', 1));
        case Workers:
            return tr("%1 of %2 production workers on this host run")
                .arg(host.workersRunning)
                .arg(host.workersTotal);
        case RequestsPerSecond:
            return QString(stale + tr("%1 requests/s served by this host's workers")
                                       .arg(host.requestsPerSecond, 0, 'f', 3));
        case ErrorsPerSecond:
            return QString(stale + tr("%1 5xx answers/s from this host's workers")
                                       .arg(host.errorsPerSecond, 0, 'f', 3));
        default:
            return {};
        }
    }
    return {};
}

QVariant FleetOverviewModel::siteData(const FleetSiteRow &site, int column, int role) const {
    switch (role) {
    case DegradedRole:
        return site.degraded();
    case KindRole:
        return QStringLiteral("site");
    case NameRole:
        return site.name;
    case HostsRole:
        return siteHosts(site);
    case TrendRole:
        return QVariant::fromValue(m_trends.value(SitePrefix + site.name));
    case Qt::ForegroundRole:
        if (column == State)
            return QBrush(site.degraded()    ? degradedColour()
                          : site.countsKnown ? okColour()
                                             : pendingColour());
        return {};
    case Qt::TextAlignmentRole:
        if (column >= Load && column <= ErrorsPerSecond)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default:
        break;
    }
    if (role == SortRole) {
        switch (column) {
        case Name:
            return site.name;
        case Kind:
            return 1;
        case State:
            return site.degraded() ? 0 : site.countsKnown ? 2 : 1;
        case Load:
        case Memory:
            return -1.0; // not a site's: below every host's
        case Workers:
            return site.workersRunning;
        case RequestsPerSecond:
            return site.requestsPerSecond;
        case ErrorsPerSecond:
            return site.errorsPerSecond;
        case Trend:
            return trendSortValue(SitePrefix + site.name);
        default:
            return {};
        }
    }
    if (role == Qt::DisplayRole) {
        switch (column) {
        case Name:
            return site.name;
        case Kind:
            return site.balancerFormat.isEmpty() ? tr("site")
                                                 : tr("site · %1").arg(site.balancerFormat);
        case State:
            return siteState(site);
        case Workers:
            return QStringLiteral("%1/%2").arg(site.workersRunning).arg(site.workersTotal);
        case RequestsPerSecond:
            return site.countsKnown ? rate(site.requestsPerSecond) : QStringLiteral("–");
        case ErrorsPerSecond:
            return site.countsKnown ? rate(site.errorsPerSecond) : QStringLiteral("–");
        default:
            return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (column) {
        case Name:
            return tr("%1: %2 balancer on %3, %n backend(s)", nullptr, site.backends)
                .arg(site.name, site.balancerFormat, site.balancerHost);
        case State:
            return siteState(site);
        case Workers:
            return tr("%1 of %2 workers run, on %3")
                .arg(site.workersRunning)
                .arg(site.workersTotal)
                .arg(siteHosts(site).join(QStringLiteral(", ")));
        case RequestsPerSecond:
            return tr("%1 requests/s counted by the balancer")
                .arg(site.requestsPerSecond, 0, 'f', 3);
        case ErrorsPerSecond:
            return tr("%1 5xx answers/s counted by the balancer")
                .arg(site.errorsPerSecond, 0, 'f', 3);
        default:
            return {};
        }
    }
    return {};
}

FleetOverviewSortModel::FleetOverviewSortModel(QObject *parent)
    : QSortFilterProxyModel(parent) {
    setSortRole(FleetOverviewModel::SortRole);
    // Re-sorts as the rates change each tick; the model reports changes, not resets.
    setDynamicSortFilter(true);
}

void FleetOverviewSortModel::setHostFilter(const QString &host) {
    if (host == m_host) return;
    m_host = host;
    invalidateRowsFilter();
}

bool FleetOverviewSortModel::lessThan(const QModelIndex &left, const QModelIndex &right) const {
    const bool leftDegraded = left.data(FleetOverviewModel::DegradedRole).toBool();
    const bool rightDegraded = right.data(FleetOverviewModel::DegradedRole).toBool();
    if (leftDegraded != rightDegraded) {
        // Descending order asks lessThan(right, left): answer so that degraded rows still
        // come first.
        return sortOrder() == Qt::AscendingOrder ? leftDegraded : rightDegraded;
    }
    const QPartialOrdering order = QVariant::compare(left.data(sortRole()), right.data(sortRole()));
    if (order == QPartialOrdering::Less) return true;
    if (order == QPartialOrdering::Greater) return false;
    // Equal: the model's order (hosts, then sites, each in inventory order) in either direction.
    return sortOrder() == Qt::AscendingOrder ? left.row() < right.row() : left.row() > right.row();
}

bool FleetOverviewSortModel::filterAcceptsRow(int sourceRow,
                                              const QModelIndex &sourceParent) const {
    if (m_host.isEmpty()) return true;
    const QModelIndex index = sourceModel()->index(sourceRow, 0, sourceParent);
    return index.data(FleetOverviewModel::HostsRole).toStringList().contains(m_host);
}

} // namespace corral
