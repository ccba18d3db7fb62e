#include "FleetOverviewView.h"
#include "PlainText.h"

#include "charts/SparklineDelegate.h"

#include <QHeaderView>
#include <QLabel>
#include <QTableView>
#include <QVBoxLayout>

namespace corral {

FleetOverviewView::FleetOverviewView(QWidget *parent)
    : QWidget(parent) {
    setObjectName(QStringLiteral("fleetOverview"));
    m_model = new FleetOverviewModel(this);
    m_proxy = new FleetOverviewSortModel(this);
    m_proxy->setSourceModel(m_model);

    m_title = plainLabel(new QLabel);
    m_title->setObjectName(QStringLiteral("fleetTitle"));
    QFont bold = m_title->font();
    bold.setBold(true);
    m_title->setFont(bold);
    m_totals = plainLabel(new QLabel);
    m_totals->setObjectName(QStringLiteral("fleetTotals"));
    m_totals->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_table = new QTableView;
    m_table->setObjectName(QStringLiteral("fleetTable"));
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    // Hosts, then sites, in inventory order, the degraded ones first.
    m_table->sortByColumn(FleetOverviewModel::Kind, Qt::AscendingOrder);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setAlternatingRowColors(true);
    m_table->setWordWrap(false);
    m_table->verticalHeader()->hide();
    // Fixed widths: sizing columns to their contents would measure every row every tick.
    QHeaderView *header = m_table->horizontalHeader();
    header->setDefaultSectionSize(80);
    header->setStretchLastSection(false);
    header->resizeSection(FleetOverviewModel::Name, 140);
    header->resizeSection(FleetOverviewModel::Kind, 90);
    header->resizeSection(FleetOverviewModel::Memory, 130);
    header->resizeSection(FleetOverviewModel::Load, 90);
    header->resizeSection(FleetOverviewModel::Trend, 2 * FleetOverviewModel::TrendLength + 10);
    header->setSectionResizeMode(FleetOverviewModel::State, QHeaderView::Stretch);
    m_table->setItemDelegateForColumn(
        FleetOverviewModel::Trend, new SparklineDelegate(FleetOverviewModel::TrendRole,
                                                         FleetOverviewModel::TrendLength, m_table));
    connect(m_table, &QAbstractItemView::activated, this, [this](const QModelIndex &index) {
        const QString name = index.data(FleetOverviewModel::NameRole).toString();
        if (index.data(FleetOverviewModel::KindRole).toString() == QLatin1String("site"))
            Q_EMIT siteActivated(name);
        else
            Q_EMIT hostActivated(name);
    });

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_title);
    layout->addWidget(m_totals);
    layout->addWidget(m_table, 1);
    updateTotals();
}

void FleetOverviewView::setSnapshot(const FleetSnapshot &snapshot) {
    m_model->setSnapshot(snapshot);
    updateTotals();
}

void FleetOverviewView::setHostFilter(const QString &host) {
    m_proxy->setHostFilter(host);
    updateTotals();
}

QString FleetOverviewView::hostFilter() const {
    return m_proxy->hostFilter();
}

void FleetOverviewView::updateTotals() {
    const FleetSnapshot &snapshot = m_model->snapshot();
    const QString host = m_proxy->hostFilter();
    m_title->setText(host.isEmpty()
                         ? tr("Fleet: %n host(s)", nullptr, int(snapshot.hosts.size())) +
                               tr(", %n production site(s)", nullptr, int(snapshot.sites.size()))
                         : tr("Host %1 and the sites running on it").arg(host));
    // The whole fleet's totals, also under a host filter: they are the sum of every site row.
    const FleetOverviewModel::Totals totals = m_model->totals();
    QString text = tr("hosts %1/%2 reachable · workers %3/%4 running · %5 req/s · %6 errors/s")
                       .arg(totals.hostsReachable)
                       .arg(totals.hostsTotal)
                       .arg(totals.workersRunning)
                       .arg(totals.workersTotal)
                       .arg(totals.requestsPerSecond, 0, 'f', 1)
                       .arg(totals.errorsPerSecond, 0, 'f', 1);
    if (snapshot.lastRoundMs > 0) text += tr(" · last poll round %1 ms").arg(snapshot.lastRoundMs);
    m_totals->setText(text);
}

} // namespace corral
