#pragma once

#include "FleetOverviewModel.h"

#include <QWidget>

class QLabel;
class QTableView;

namespace corral {

/// The console's centre when the tree's root or a host is selected: a totals line over every
/// host and production site (hosts reachable, workers running, req/s, errors/s), and the
/// sortable FleetOverviewModel table with a sparkline per row. Degraded rows stay on top
/// whatever the column sorted. Enter or a double click on a row asks for that site or host.
class FleetOverviewView : public QWidget {
    Q_OBJECT
public:
    explicit FleetOverviewView(QWidget *parent = nullptr);

    void setSnapshot(const FleetSnapshot &snapshot);
    /// Only host `host` and the sites with a balancer or a worker on it; empty: every row.
    void setHostFilter(const QString &host);
    QString hostFilter() const;

    FleetOverviewModel *model() const { return m_model; }
    FleetOverviewSortModel *proxy() const { return m_proxy; }
    QTableView *table() const { return m_table; }
    QLabel *totalsLabel() const { return m_totals; }

Q_SIGNALS:
    void siteActivated(const QString &name);
    void hostActivated(const QString &name);

private:
    void updateTotals();

    FleetOverviewModel *m_model = nullptr;
    FleetOverviewSortModel *m_proxy = nullptr;
    QTableView *m_table = nullptr;
    QLabel *m_title = nullptr;
    QLabel *m_totals = nullptr;
};

} // namespace corral
