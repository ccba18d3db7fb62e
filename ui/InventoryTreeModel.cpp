#include "InventoryTreeModel.h"
#include "PlainText.h"

#include <QApplication>
#include <QBrush>
#include <QColor>
#include <QDateTime>
#include <QIcon>
#include <QStyle>

namespace corral {

// Internal ids: 0 marks a host row; a site row stores its host's row + 1.
static constexpr quintptr HostId = 0;

// The style's icons, made once: QStyle::standardIcon() loads (and decodes) the image on every
// call, and views ask for every visible row's icon whenever they lay rows out; at 50 hosts of
// 20 sites that made each fleet tick take seconds.
static QIcon styleIcon(QStyle::StandardPixmap pixmap) {
    static QHash<int, QIcon> icons;
    auto it = icons.find(int(pixmap));
    if (it == icons.end())
        it = icons.insert(int(pixmap), QApplication::style()->standardIcon(pixmap));
    return *it;
}

InventoryTreeModel::InventoryTreeModel(QObject *parent)
    : QAbstractItemModel(parent) {}

void InventoryTreeModel::setInventory(const Inventory &inventory) {
    m_inventory = inventory;
    rebuild();
}

void InventoryTreeModel::setRunningSites(const QList<Site> &sites) {
    m_running = sites;
    QHash<QString, Health> kept;
    for (const Site &site : sites)
        kept.insert(site.name, m_health.value(site.name));
    m_health = kept;
    rebuild();
}

void InventoryTreeModel::rebuild() {
    // Only on inventory reloads and cluster starts/stops, never per tick.
    beginResetModel();
    m_hosts.clear();
    m_sitePositions.clear();
    for (const Host &host : m_inventory.hostsWithLocal())
        m_hosts.append(HostNode{host, m_inventory.sitesOnHost(host.name)});
    for (const Site &site : m_running)
        if (!m_inventory.site(site.name)) m_hosts.first().sites.append(site);
    for (int h = 0; h < m_hosts.size(); ++h)
        for (int s = 0; s < m_hosts.at(h).sites.size(); ++s)
            m_sitePositions[m_hosts.at(h).sites.at(s).name].append({h, s});
    endResetModel();
}

QModelIndex InventoryTreeModel::siteIndex(const QString &site) const {
    const auto it = m_sitePositions.constFind(site);
    if (it == m_sitePositions.constEnd() || it->isEmpty()) return {};
    return index(it->first().second, 0, index(it->first().first, 0));
}

void InventoryTreeModel::siteChanged(const QString &site) {
    const auto it = m_sitePositions.constFind(site);
    if (it == m_sitePositions.constEnd()) return;
    for (const auto &[h, s] : *it) {
        const QModelIndex first = index(s, 0, index(h, 0));
        Q_EMIT dataChanged(first, first.siblingAtColumn(1));
    }
}

bool InventoryTreeModel::hostOffline(const Host &host) const {
    if (host.kind != Host::Kind::Ssh) return false;
    const auto state = m_reachability.constFind(host.name);
    return state != m_reachability.constEnd() && !state->online;
}

InventoryTreeModel::RowState InventoryTreeModel::siteState(const HostNode &hostNode,
                                                           const Site &site) const {
    if (const auto health = m_health.constFind(site.name); health != m_health.constEnd())
        return health->total > 0 && health->running == health->total && !health->recentCrash
                   ? RowState::Running
                   : RowState::Degraded;
    if (const auto remote = m_remoteHealth.constFind(site.name);
        remote != m_remoteHealth.constEnd())
        return remote->unreachable.isEmpty() && remote->total > 0 &&
                       remote->running == remote->total
                   ? RowState::Running
                   : RowState::Degraded;
    return hostOffline(hostNode.host) ? RowState::Unreachable : RowState::Stopped;
}

InventoryTreeModel::RowState InventoryTreeModel::hostState(const HostNode &hostNode) const {
    if (hostOffline(hostNode.host)) return RowState::Unreachable;
    RowState worst = RowState::Stopped;
    for (const Site &site : hostNode.sites) {
        const RowState state = siteState(hostNode, site);
        if (state == RowState::Degraded) return state;
        if (state == RowState::Running) worst = state;
    }
    return worst;
}

QString InventoryTreeModel::hostDetails(const Host &host) const {
    if (host.kind == Host::Kind::Local) return QStringLiteral("local");
    const QString where =
        (host.user.isEmpty() ? QString() : host.user + QLatin1Char('@')) + host.address;
    const auto state = m_reachability.constFind(host.name);
    if (state == m_reachability.constEnd()) return where;
    return where + (state->online ? tr(" · online") : tr(" · offline"));
}

void InventoryTreeModel::setHostOnline(const QString &host, bool online, const QString &reason) {
    // Unchanged: no dataChanged (under a state filter each one re-filters the host's sites).
    const Reachability reachability{online, reason};
    if (const auto it = m_reachability.constFind(host);
        it != m_reachability.constEnd() && *it == reachability)
        return;
    m_reachability.insert(host, reachability);
    for (int row = 0; row < m_hosts.size(); ++row) {
        if (m_hosts.at(row).host.name != host) continue;
        const QModelIndex hostIndex = index(row, 0);
        Q_EMIT dataChanged(hostIndex, hostIndex.siblingAtColumn(1));
        // Its sites' states follow (Unreachable while nothing live is known of them): a
        // filtering proxy re-filters just these rows.
        if (const int sites = rowCount(hostIndex); sites > 0)
            Q_EMIT dataChanged(index(0, 0, hostIndex), index(sites - 1, 1, hostIndex), {StateRole});
    }
}

void InventoryTreeModel::setSiteHealth(const QString &site, int running, int total,
                                       qint64 lastCrashMs, const QString &lastCrash, qint64 nowMs) {
    auto it = m_health.find(site);
    if (it == m_health.end()) return;
    const bool recent = lastCrashMs > 0 && nowMs - lastCrashMs < recentCrashMs;
    const Health health{
        running, total, recent,
        lastCrashMs > 0
            ? QDateTime::fromMSecsSinceEpoch(lastCrashMs).toString(QStringLiteral("hh:mm:ss")) +
                  QStringLiteral(": ") + lastCrash
            : QString()};
    if (*it == health) return;
    *it = health;
    siteChanged(site);
}

void InventoryTreeModel::setRemoteSiteHealth(const QString &site, int running, int total,
                                             const QStringList &unreachableHosts) {
    const RemoteHealth health{running, total, unreachableHosts};
    const auto it = m_remoteHealth.constFind(site);
    if (it != m_remoteHealth.constEnd() && *it == health) return;
    m_remoteHealth.insert(site, health);
    siteChanged(site);
}

void InventoryTreeModel::clearRemoteSiteHealth(const QString &site) {
    if (!m_remoteHealth.remove(site)) return;
    siteChanged(site);
}

QString InventoryTreeModel::siteDescription(const Site &site) {
    // A production site's workers are its backends (its local worker count is not used).
    if (site.balancer)
        return tr("%1 on %2 · %n backend(s) · %3", nullptr, int(site.backends.size()))
            .arg(site.balancer->format, site.balancer->host, policyName(site.policy));
    return QStringLiteral("%1 · %2 backends · %3 workers")
        .arg(policyName(site.policy))
        .arg(site.backends.size())
        .arg(site.workers);
}

QModelIndex InventoryTreeModel::index(int row, int column, const QModelIndex &parent) const {
    if (!hasIndex(row, column, parent)) return {};
    if (!parent.isValid()) return createIndex(row, column, HostId);
    return createIndex(row, column, quintptr(parent.row()) + 1);
}

QModelIndex InventoryTreeModel::parent(const QModelIndex &child) const {
    if (!child.isValid() || child.internalId() == HostId) return {};
    return createIndex(int(child.internalId() - 1), 0, HostId);
}

int InventoryTreeModel::rowCount(const QModelIndex &parent) const {
    if (!parent.isValid()) return int(m_hosts.size());
    if (parent.internalId() == HostId && parent.column() == 0)
        return int(m_hosts.at(parent.row()).sites.size());
    return 0;
}

int InventoryTreeModel::columnCount(const QModelIndex &) const {
    return 2;
}

QVariant InventoryTreeModel::data(const QModelIndex &index, int role) const {
    const QVariant value = roleData(index, role);
    return role == Qt::ToolTipRole && value.isValid() ? QVariant(plainToolTip(value.toString()))
                                                      : value;
}

QVariant InventoryTreeModel::roleData(const QModelIndex &index, int role) const {
    if (!index.isValid()) return {};
    const bool isHost = index.internalId() == HostId;
    const HostNode &hostNode = m_hosts.at(isHost ? index.row() : int(index.internalId() - 1));
    if (isHost) {
        const Host &host = hostNode.host;
        switch (role) {
        case Qt::DisplayRole:
            if (index.column() == 0)
                return host.name == Host::LocalName ? QStringLiteral("This machine") : host.name;
            return hostDetails(host);
        case Qt::DecorationRole:
            if (index.column() == 0) {
                const auto state = m_reachability.constFind(host.name);
                if (host.kind == Host::Kind::Ssh && state != m_reachability.constEnd() &&
                    !state->online)
                    return styleIcon(QStyle::SP_MessageBoxWarning);
                return styleIcon(QStyle::SP_ComputerIcon);
            }
            break;
        case Qt::ForegroundRole:
            if (index.column() == 1 && m_reachability.contains(host.name))
                return QBrush(m_reachability.value(host.name).online ? QColor(0x2e, 0x9d, 0x4f)
                                                                     : QColor(0xd2, 0x3c, 0x3c));
            break;
        case Qt::ToolTipRole:
            if (m_reachability.contains(host.name) && !m_reachability.value(host.name).online)
                return tr("Offline: %1").arg(m_reachability.value(host.name).reason);
            return host.kind == Host::Kind::Local ? QStringLiteral("The local machine")
                                                  : QStringLiteral("ssh://%1@%2:%3")
                                                        .arg(host.user, host.address)
                                                        .arg(host.port);
        case KindRole:
            return int(NodeKind::Host);
        case NameRole:
            return host.name;
        case StateRole:
            return int(hostState(hostNode));
        default:
            break;
        }
        return {};
    }
    const Site &site = hostNode.sites.at(index.row());
    const auto health = m_health.constFind(site.name);
    const bool running = health != m_health.constEnd();
    if (const auto remote = m_remoteHealth.constFind(site.name);
        !running && remote != m_remoteHealth.constEnd() && role != KindRole && role != NameRole &&
        role != StateRole) {
        const bool degraded = !remote->unreachable.isEmpty();
        const bool healthy = !degraded && remote->total > 0 && remote->running == remote->total;
        const QString where = site.balancer
                                  ? tr("%1 on %2").arg(site.balancer->format, site.balancer->host)
                                  : QString();
        switch (role) {
        case Qt::DisplayRole:
            if (index.column() == 0) return site.name;
            if (degraded)
                return tr("degraded: %1 unreachable · %2/%3 workers known running")
                    .arg(remote->unreachable.join(QStringLiteral(", ")))
                    .arg(remote->running)
                    .arg(remote->total);
            return tr("%1/%2 workers running · %3")
                .arg(remote->running)
                .arg(remote->total)
                .arg(where);
        case Qt::DecorationRole:
            if (index.column() != 0) break;
            if (healthy) return styleIcon(QStyle::SP_DialogApplyButton);
            return styleIcon(remote->running > 0 || degraded ? QStyle::SP_MessageBoxWarning
                                                             : QStyle::SP_MessageBoxCritical);
        case Qt::ForegroundRole:
            if (index.column() == 1)
                return QBrush(healthy ? QColor(0x2e, 0x9d, 0x4f) : QColor(0xd0, 0x8a, 0x1a));
            break;
        case Qt::ToolTipRole:
            if (degraded)
                return tr("%1 is degraded: %2 cannot be reached, so the state of its workers "
                          "there is unknown (the table shows when each was last seen)")
                    .arg(site.name, remote->unreachable.join(QStringLiteral(", ")));
            return tr("%1: %2 of %3 workers running, as %4 sees them")
                .arg(site.name)
                .arg(remote->running)
                .arg(remote->total)
                .arg(where);
        default:
            break;
        }
        return {};
    }
    switch (role) {
    case Qt::DisplayRole:
        if (index.column() == 0) return site.name;
        if (running)
            return QString(QStringLiteral("%1/%2 workers running · %3")
                               .arg(health->running)
                               .arg(health->total)
                               .arg(policyName(site.policy)) +
                           (health->recentCrash
                                ? tr(" · crashed at %1").arg(health->lastCrash.left(8))
                                : QString()));
        return siteDescription(site);
    case Qt::DecorationRole:
        if (index.column() == 0) {
            if (!running) return styleIcon(QStyle::SP_DirIcon);
            if (health->total > 0 && health->running == health->total && !health->recentCrash)
                return styleIcon(QStyle::SP_DialogApplyButton);
            return styleIcon(health->running > 0 ? QStyle::SP_MessageBoxWarning
                                                 : QStyle::SP_MessageBoxCritical);
        }
        break;
    case Qt::ForegroundRole:
        if (running && index.column() == 1)
            return QBrush(health->running == health->total && health->total > 0 &&
                                  !health->recentCrash
                              ? QColor(0x2e, 0x9d, 0x4f)
                              : QColor(0xd0, 0x8a, 0x1a));
        break;
    case Qt::ToolTipRole:
        if (running)
            return QString(tr("%1: %2 of %3 workers running")
                               .arg(site.name)
                               .arg(health->running)
                               .arg(health->total) +
                           (health->lastCrash.isEmpty()
                                ? QString()
                                : tr("\nLast crash: %1").arg(health->lastCrash)));
        return site.serverNames.isEmpty() ? site.name : site.serverNames.join(QStringLiteral(", "));
    case KindRole:
        return int(NodeKind::Site);
    case NameRole:
        return site.name;
    case StateRole:
        return int(siteState(hostNode, site));
    default:
        break;
    }
    return {};
}

QVariant InventoryTreeModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    return section == 0 ? QStringLiteral("Host / site") : QStringLiteral("Details");
}

} // namespace corral
