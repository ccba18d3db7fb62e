#include "InventoryTreeModel.h"

#include <QApplication>
#include <QIcon>
#include <QStyle>

namespace corral {

// Internal ids: 0 marks a host row; a site row stores its host's row + 1.
static constexpr quintptr HostId = 0;

InventoryTreeModel::InventoryTreeModel(QObject *parent)
    : QAbstractItemModel(parent) {}

void InventoryTreeModel::setInventory(const Inventory &inventory) {
    beginResetModel();
    m_hosts.clear();
    for (const Host &host : inventory.hostsWithLocal())
        m_hosts.append(HostNode{host, inventory.sitesOnHost(host.name)});
    endResetModel();
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
    if (!index.isValid()) return {};
    const bool isHost = index.internalId() == HostId;
    const HostNode &hostNode = m_hosts.at(isHost ? index.row() : int(index.internalId() - 1));
    if (isHost) {
        const Host &host = hostNode.host;
        switch (role) {
        case Qt::DisplayRole:
            if (index.column() == 0)
                return host.name == Host::LocalName ? QStringLiteral("This machine") : host.name;
            return host.kind == Host::Kind::Local
                       ? QStringLiteral("local")
                       : (host.user.isEmpty() ? QString() : host.user + QLatin1Char('@')) +
                             host.address;
        case Qt::DecorationRole:
            if (index.column() == 0)
                return QApplication::style()->standardIcon(QStyle::SP_ComputerIcon);
            break;
        case Qt::ToolTipRole:
            return host.kind == Host::Kind::Local ? QStringLiteral("The local machine")
                                                  : QStringLiteral("ssh://%1@%2:%3")
                                                        .arg(host.user, host.address)
                                                        .arg(host.port);
        case KindRole:
            return int(NodeKind::Host);
        case NameRole:
            return host.name;
        default:
            break;
        }
        return {};
    }
    const Site &site = hostNode.sites.at(index.row());
    switch (role) {
    case Qt::DisplayRole:
        if (index.column() == 0) return site.name;
        return QStringLiteral("%1 · %2 backends · %3 workers")
            .arg(policyName(site.policy))
            .arg(site.backends.size())
            .arg(site.workers);
    case Qt::DecorationRole:
        if (index.column() == 0) return QApplication::style()->standardIcon(QStyle::SP_DirIcon);
        break;
    case Qt::ToolTipRole:
        return site.serverNames.isEmpty() ? site.name : site.serverNames.join(QStringLiteral(", "));
    case KindRole:
        return int(NodeKind::Site);
    case NameRole:
        return site.name;
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
