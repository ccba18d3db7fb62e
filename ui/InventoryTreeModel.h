#pragma once

#include "inventory/Inventory.h"

#include <QAbstractItemModel>

namespace corral {

/// Hosts (the local machine first) with the sites deployed on each as children.
class InventoryTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    /// StateRole: a RowState (as int) of the row, what the tree's state filter looks at.
    enum Role { KindRole = Qt::UserRole + 1, NameRole, StateRole };
    enum class NodeKind { Host, Site };
    /// A site: Running (every worker up, no recent crash), Degraded (some workers down, a
    /// recent crash, or hosts of a watched production site unreachable), Stopped (not running
    /// here and not watched), Unreachable (its host is offline and nothing live is known).
    /// A host: Unreachable when offline, else the worst of its sites (Degraded > Running >
    /// Stopped), read when asked: a site's change announces its own row only (a host's
    /// dataChanged would have a recursive filter scan the host's sites on every tick).
    enum class RowState { Stopped, Running, Degraded, Unreachable };

    explicit InventoryTreeModel(QObject *parent = nullptr);

    void setInventory(const Inventory &inventory);
    /// Sites running on this machine; those not in the inventory are shown under it too.
    void setRunningSites(const QList<Site> &sites);
    /// A crash this recent keeps the site's icon amber, even when every worker is back.
    static constexpr qint64 recentCrashMs = 60 * 1000;
    /// Live state of a running site (workers running / total, and its last crash: when, ms since
    /// the epoch, 0 for never, and why), as of `nowMs`; only its row is updated.
    void setSiteHealth(const QString &site, int running, int total, qint64 lastCrashMs = 0,
                       const QString &lastCrash = QString(), qint64 nowMs = 0);
    /// Live state of a production site watched through its balancer (RemoteSiteMonitor):
    /// workers running / total and the hosts that could not be reached this tick (the site
    /// is then shown degraded). Only its row is updated.
    void setRemoteSiteHealth(const QString &site, int running, int total,
                             const QStringList &unreachableHosts);
    /// The site is no longer watched: its row goes back to what the inventory says.
    void clearRemoteSiteHealth(const QString &site);
    QModelIndex siteIndex(const QString &site) const;
    /// Connection state of a remote host, shown next to it; `reason` explains "offline".
    void setHostOnline(const QString &host, bool online, const QString &reason = QString());

    QModelIndex index(int row, int column, const QModelIndex &parent = {}) const override;
    QModelIndex parent(const QModelIndex &child) const override;
    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    // Tool tips come back as plain text shown literally (they quote what hosts and workers said).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    QVariant roleData(const QModelIndex &index, int role) const;
    struct HostNode {
        Host host;
        QList<Site> sites;
    };
    void rebuild();
    QString hostDetails(const Host &host) const;
    bool hostOffline(const Host &host) const;
    RowState siteState(const HostNode &hostNode, const Site &site) const;
    RowState hostState(const HostNode &hostNode) const;
    /// Tells views about the site's rows (one per host it is on): both columns changed.
    void siteChanged(const QString &site);

    QList<HostNode> m_hosts;
    /// Where each site's rows are (host row, site row), filled by rebuild(): a site's health
    /// updates its rows without scanning the tree (50 hosts × 20 sites, every tick).
    QHash<QString, QList<QPair<int, int>>> m_sitePositions;
    Inventory m_inventory;
    QList<Site> m_running;
    struct Health {
        int running = 0;
        int total = 0;
        bool recentCrash = false; ///< a worker crashed within recentCrashMs
        QString lastCrash;        ///< "hh:mm:ss: port N: cause"
        bool operator==(const Health &) const = default;
    };
    QHash<QString, Health> m_health;
    struct RemoteHealth {
        int running = 0;
        int total = 0;
        QStringList unreachable;
        bool operator==(const RemoteHealth &) const = default;
    };
    QHash<QString, RemoteHealth> m_remoteHealth; ///< production sites being watched
    /// The site's row text when nothing live is known: what the inventory says.
    static QString siteDescription(const Site &site);
    struct Reachability {
        bool online = false;
        QString reason;
        bool operator==(const Reachability &) const = default;
    };
    QHash<QString, Reachability> m_reachability; // remote hosts checked so far
};

} // namespace corral
