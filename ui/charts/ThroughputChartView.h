#pragma once

#include "charts/GappedLine.h"
#include "cluster/ClusterSnapshot.h"

#include <QChartView>
#include <QList>
#include <QPointF>

#include <memory>

class QChart;
class QDateTimeAxis;
class QLineSeries;
class QValueAxis;

namespace corral {

/// The site's total requests/s and errors/s over the last five minutes, two lines on a
/// sliding time axis. Fed one ClusterSnapshot per tick.
class ThroughputChartView : public QChartView {
    Q_OBJECT
public:
    static constexpr qint64 windowMs = 5 * 60 * 1000;
    /// Points kept per line at most, whatever the tick rate (five minutes at 2 Hz).
    static constexpr qsizetype maxPointsPerSeries = 600;
    /// The value axis fits the highest point of this last stretch (a sliding-window max), so it
    /// comes back down a minute after a spike; older, higher points are drawn clipped.
    static constexpr qint64 scaleWindowMs = 60 * 1000;

    explicit ThroughputChartView(QWidget *parent = nullptr);
    ~ThroughputChartView() override;

    /// Appends the snapshot's totals and slides the time axis to end at its timestamp. A
    /// snapshot of another site, or a clock that stepped back, starts afresh. A snapshot
    /// without request counts (ClusterSnapshot::requestsKnown false: the balancer's host was
    /// unreachable) leaves a gap: the lines then consist of several series each.
    void updateSnapshot(const ClusterSnapshot &snapshot);
    /// The same for each tick of `history` (oldest first, e.g. the agent's history of a site
    /// just selected), with one repaint at the end.
    void setHistory(const QList<ClusterSnapshot> &history);
    /// Removes every point.
    void clear();

    /// The named series of each line (its oldest stretch when it has gaps).
    QLineSeries *requestsSeries() const { return m_requests->first(); }
    QLineSeries *errorsSeries() const { return m_errors->first(); }
    /// Every stretch of the requests line, oldest first.
    const QList<QLineSeries *> &requestsSegments() const { return m_requests->series(); }
    QDateTimeAxis *timeAxis() const { return m_axisX; }
    QValueAxis *valueAxis() const { return m_axisY; }

protected:
    void changeEvent(QEvent *event) override;

private:
    /// Appends one tick's points (gap, trim) without repainting.
    void appendTick(const ClusterSnapshot &snapshot);
    void applyStyle();
    void updateAxes(qint64 nowMs);

    QChart *m_chart = nullptr;
    std::unique_ptr<GappedLine> m_requests;
    std::unique_ptr<GappedLine> m_errors;
    QDateTimeAxis *m_axisX = nullptr;
    QValueAxis *m_axisY = nullptr;
    QString m_site;
    qint64 m_lastTimestampMs = 0;
};

} // namespace corral
