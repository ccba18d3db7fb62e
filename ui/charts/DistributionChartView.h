#pragma once

#include "charts/DistributionGroups.h"
#include "cluster/ClusterSnapshot.h"

#include <QChartView>
#include <QList>
#include <QStringList>

class QBarCategoryAxis;
class QBarSeries;
class QBarSet;
class QChart;
class QToolButton;
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
///
/// A fleet's site has hundreds of backends: beyond maxBars they are grouped by
/// distributionBars(), one bar per host (a click on a host's bar shows that host's backends,
/// the "‹ all hosts" button goes back), or the busiest backends and one "others" bar, as high
/// as the mean of its backends (their sum would dwarf the rest). The title says which;
/// hovering a bar shows its values.
class DistributionChartView : public QChartView {
    Q_OBJECT
public:
    /// Above this many bars the value labels on the bars are hidden: they would overlap.
    static constexpr int maxValueLabels = 16;
    /// Above this many bars the category labels are hidden; tooltips still name each bar.
    static constexpr int maxCategoryLabels = 32;
    /// Bars at most: more backends are grouped (distributionBars()).
    static constexpr int maxBars = 16;

    enum class ShareBasis { None, RequestsPerSecond, RequestsTotal };
    /// What the bars stand for.
    enum class Grouping {
        Backends,    ///< one bar per backend
        Hosts,       ///< one bar per host, each can be drilled into
        TopBackends, ///< the busiest maxBars - 1 backends and "others"
    };

    explicit DistributionChartView(QWidget *parent = nullptr);
    ~DistributionChartView() override;

    /// Replaces the bars with the snapshot's backends, ordered by port.
    void updateSnapshot(const ClusterSnapshot &snapshot);
    /// Removes every bar (and leaves a drilled-into host).
    void clear();

    Grouping grouping() const { return m_grouping; }
    /// The host whose backends are shown (a host bar's DistributionBar::drillHost); empty for
    /// the whole site.
    QString drillHost() const { return m_drillHost; }
    /// Shows `host`'s backends only, as a click on its bar does; empty: every host again.
    void drillDown(const QString &host);
    /// Back to every host (the "‹ all hosts" button).
    void drillUp() { drillDown({}); }
    /// The button leading back from a host's backends; hidden unless drilled down.
    QToolButton *backButton() const { return m_backButton; }
    /// The `index`-th bar as grouped.
    DistributionBar bar(int index) const { return m_bars.value(index); }
    /// What hovering the `index`-th bar shows: its name, req/s, requests in total, backends.
    QString barToolTip(int index) const;

    int barCount() const { return int(m_bars.size()); }
    /// Requests/s of the `index`-th bar: its backends' sum, the mean per backend for "others".
    double barValue(int index) const;
    /// "PORT\nNN %" (shown under the bar while there are at most maxCategoryLabels bars).
    QString categoryLabel(int index) const;
    /// The `index`-th backend's share in % (0..100); shares sum to 100 unless basis() is None.
    double share(int index) const;
    /// The backend's port; 0 for a host's or the "others" bar.
    quint16 port(int index) const { return m_bars.value(index).port; }
    /// The port, or "HOST:PORT" for a backend on another machine (production balancers; HOST
    /// is the inventory host's name when known, e.g. "web1:3001"); a host bar's host.
    QString backendName(int index) const { return m_names.value(index); }
    /// Requests the `index`-th bar's backends served since the balancer was first watched.
    double requestsTotal(int index) const { return m_totals.value(index); }
    ShareBasis basis() const { return m_basis; }

Q_SIGNALS:
    /// drillHost() changed: a click on a host's bar, the back button, or the host went away.
    void drillHostChanged(const QString &host);

protected:
    void changeEvent(QEvent *event) override;
    void resizeEvent(QResizeEvent *event) override;

private:
    /// Groups m_rows into bars and shows them.
    void showBars();
    void applyStyle();
    void showToolTip(bool status, int index);
    void placeBackButton();

    QChart *m_chart = nullptr;
    QBarSeries *m_series = nullptr;
    QBarSet *m_set = nullptr;
    QBarCategoryAxis *m_axisX = nullptr;
    QValueAxis *m_axisY = nullptr;
    QToolButton *m_backButton = nullptr;
    QList<WorkerRow> m_rows; ///< the last snapshot's backends (WorkerRow::inProxy)
    QList<DistributionBar> m_bars;
    QString m_drillHost;
    Grouping m_grouping = Grouping::Backends;
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
