#pragma once

#include "cluster/ClusterSnapshot.h"

#include <QChartView>
#include <QList>
#include <QStringList>

class QBarCategoryAxis;
class QBarSeries;
class QBarSet;
class QChart;
class QValueAxis;

namespace corral {

/// How the balancer spreads load: one bar per backend the balancer knows (WorkerRow::inProxy:
/// the embedded proxy, or a production nginx/HAProxy), its height the backend's requests/s
/// over the last tick, its category label "PORT\nNN %" ("HOST:PORT\nNN %" for backends on
/// other machines) with the backend's share.
///
/// The share is of the total requests/s over the last tick while there is traffic. When the
/// cluster is idle (total requests/s is 0) it falls back to the share of requests served since
/// the proxy started (requestsTotal), so an idle chart still shows how the load was spread
/// instead of a row of 0 %; with no request at all every share is 0. The value axis title says
/// which basis is shown.
class DistributionChartView : public QChartView {
    Q_OBJECT
public:
    /// Above this many bars the value labels on the bars are hidden: they would overlap.
    static constexpr int maxValueLabels = 16;
    /// Above this many bars the category labels are hidden; tooltips still name each bar.
    static constexpr int maxCategoryLabels = 32;

    enum class ShareBasis { None, RequestsPerSecond, RequestsTotal };

    explicit DistributionChartView(QWidget *parent = nullptr);
    ~DistributionChartView() override;

    /// Replaces the bars with the snapshot's backends, ordered by port.
    void updateSnapshot(const ClusterSnapshot &snapshot);
    /// Removes every bar.
    void clear();

    int barCount() const { return int(m_ports.size()); }
    /// Requests/s of the `index`-th backend.
    double barValue(int index) const;
    /// "PORT\nNN %" (shown under the bar while there are at most maxCategoryLabels bars).
    QString categoryLabel(int index) const;
    /// The `index`-th backend's share in % (0..100); shares sum to 100 unless basis() is None.
    double share(int index) const;
    quint16 port(int index) const { return m_ports.value(index); }
    /// The port, or "HOST:PORT" for a backend on another machine (production balancers; HOST
    /// is the inventory host's name when known, e.g. "web1:3001").
    QString backendName(int index) const { return m_names.value(index); }
    /// Requests the `index`-th backend served since the balancer was first watched.
    double requestsTotal(int index) const { return m_totals.value(index); }
    ShareBasis basis() const { return m_basis; }

protected:
    void changeEvent(QEvent *event) override;

private:
    void applyStyle();
    void showToolTip(bool status, int index);

    QChart *m_chart = nullptr;
    QBarSeries *m_series = nullptr;
    QBarSet *m_set = nullptr;
    QBarCategoryAxis *m_axisX = nullptr;
    QValueAxis *m_axisY = nullptr;
    QList<quint16> m_ports;
    QStringList m_names;
    QList<double> m_totals;
    QList<double> m_values;
    QList<double> m_shares;
    QStringList m_labels; ///< "PORT\nNN %" per bar
    QStringList
        m_categories; ///< what the axis shows: m_labels as rich text, or ports alone when hidden
    ShareBasis m_basis = ShareBasis::None;
};

} // namespace corral
