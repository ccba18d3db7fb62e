#pragma once

#include "fleet/FleetSnapshot.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QList>
#include <QSortFilterProxyModel>
#include <QString>
#include <QStringList>

namespace corral {

/// The fleet overview (the console's centre when the tree's root or a host is selected): one
/// row per inventory host, then one per production site, fed one FleetSnapshot per tick.
/// While the rows stay the same hosts and sites, a tick only reports changed cells
/// (dataChanged), so selection, sorting and scrolling survive it. Each row keeps the last
/// TrendLength requests-per-second values (its sparkline), by row name across snapshots; the
/// history of a row that left the inventory is dropped with it.
class FleetOverviewModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        Name,
        Kind,
        State,
        Load,
        Memory,
        Workers,
        RequestsPerSecond,
        ErrorsPerSecond,
        Trend,
        ColumnCount
    };
    /// The raw value behind a cell (numbers for numeric columns): what sorting uses.
    static constexpr int SortRole = Qt::UserRole + 1;
    /// bool: the row's host or site is degraded (FleetHostRow/FleetSiteRow::degraded()).
    static constexpr int DegradedRole = Qt::UserRole + 2;
    /// QString: "host" or "site".
    static constexpr int KindRole = Qt::UserRole + 3;
    /// QString: the host's or site's name (any column).
    static constexpr int NameRole = Qt::UserRole + 4;
    /// QStringList: the inventory hosts the row involves (a host: itself; a site: its
    /// balancer's host and its workers' hosts), for the host filter.
    static constexpr int HostsRole = Qt::UserRole + 5;
    /// QList<double>: the row's requests-per-second history, oldest first; NaN where the
    /// value was not known (host unreachable, balancer counts not read yet).
    static constexpr int TrendRole = Qt::UserRole + 6;
    static constexpr int TrendLength = 60;

    /// The totals line. Workers and rates are sums of the SITE rows (as FleetSnapshot's sum
    /// helpers), so the line always equals the sum of the rows below it; hosts from the host
    /// rows.
    struct Totals {
        int workersRunning = 0;
        int workersTotal = 0;
        double requestsPerSecond = 0;
        double errorsPerSecond = 0;
        int hostsReachable = 0;
        int hostsTotal = 0;
    };

    explicit FleetOverviewModel(QObject *parent = nullptr);

    void setSnapshot(const FleetSnapshot &snapshot);
    const FleetSnapshot &snapshot() const { return m_snapshot; }
    Totals totals() const;

    int hostRowCount() const { return int(m_snapshot.hosts.size()); }
    bool isSiteRow(int row) const { return row >= hostRowCount(); }
    /// The row of host or site `name`; -1 if none.
    int hostRow(const QString &name) const;
    int siteRow(const QString &name) const;
    /// The requests-per-second history of a host or site row (as TrendRole).
    QList<double> hostTrend(const QString &name) const;
    QList<double> siteTrend(const QString &name) const;
    /// How many rows have a history kept (bounded by the rows shown).
    int trendCount() const { return int(m_trends.size()); }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    QVariant hostData(const FleetHostRow &host, int column, int role) const;
    QVariant siteData(const FleetSiteRow &site, int column, int role) const;
    QVariant trendSortValue(const QString &key) const;

    FleetSnapshot m_snapshot;
    QStringList m_keys;                     ///< "h:NAME" per host row, then "s:NAME" per site row
    QHash<QString, QList<double>> m_trends; ///< by row key, at most TrendLength values each
};

/// The overview's sorting and host filter: the degraded rows come first whatever the column
/// and order (the primary key), then the chosen column's SortRole, then the model's order
/// (hosts, then sites: sorting by Kind, the view's default, keeps it). setHostFilter(name) keeps
/// that host and the sites with a balancer or a worker on it (empty: every row).
class FleetOverviewSortModel : public QSortFilterProxyModel {
    Q_OBJECT
public:
    explicit FleetOverviewSortModel(QObject *parent = nullptr);

    void setHostFilter(const QString &host);
    QString hostFilter() const { return m_host; }

protected:
    bool lessThan(const QModelIndex &left, const QModelIndex &right) const override;
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override;

private:
    QString m_host;
};

} // namespace corral
