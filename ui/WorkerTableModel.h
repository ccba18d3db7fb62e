#pragma once

#include "cluster/ClusterSnapshot.h"

#include <QAbstractTableModel>

#include <optional>

namespace corral {

/// The selected site's workers, one row each. Fed one ClusterSnapshot per tick: rows are
/// inserted and removed individually and changed cells reported with dataChanged, never a
/// model reset, so selection, sorting and scrolling survive every tick.
class WorkerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        Host,
        Port,
        Pid,
        State,
        Uptime,
        Crashes,
        Cpu,
        Rss,
        RequestsPerSecond,
        InFlight,
        ErrorsPerSecond,
        P99,
        ColumnCount
    };
    /// The raw value behind a cell (numbers for numeric columns): what sorting uses.
    static constexpr int SortRole = Qt::UserRole + 1;
    static constexpr int PortRole = Qt::UserRole + 2;
    static constexpr int HostRole = Qt::UserRole + 3;

    explicit WorkerTableModel(QObject *parent = nullptr);

    /// Also shows a last "balancer" row once the embedded balancer answered requests itself
    /// (502/503/504 with no usable backend): an outage is visible in the table, not only as
    /// workers' zeros.
    void updateSnapshot(const ClusterSnapshot &snapshot);
    void clear();
    const WorkerRow *rowForPort(quint16 port) const;
    /// The workers' rows (the balancer row is not one of them).
    const QList<WorkerRow> &rows() const { return m_rows; }
    bool hasBalancerRow() const { return m_balancer.has_value(); }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    // Tool tips come back as plain text shown literally (they quote what hosts and workers said).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

    static QString formatBytes(qint64 bytes);
    static QString formatDuration(qint64 ms);

private:
    QVariant roleData(const QModelIndex &index, int role) const;
    /// What the embedded balancer answered itself, shown as the table's last row.
    struct BalancerRow {
        QString listen;
        double errorsPerSecond = 0;
        quint64 errorsTotal = 0;
    };

    QVariant displayValue(const WorkerRow &row, int column) const;
    QVariant sortValue(const WorkerRow &row, int column) const;
    QVariant balancerData(const BalancerRow &row, int column, int role) const;
    void updateBalancerRow(const ClusterSnapshot &snapshot);

    QList<WorkerRow> m_rows; // ordered by (host, port): remote backends may share a port
    std::optional<BalancerRow> m_balancer; // after m_rows
};

} // namespace corral
