#pragma once

#include <QList>
#include <QPen>
#include <QPointF>
#include <QString>

#include <functional>

class QAbstractAxis;
class QChart;
class QLineSeries;

namespace corral {

/// One line of a chart that can have gaps, where nothing was measured (a host that could not
/// be reached). QtCharts joins every two consecutive points of a series with a straight line
/// and draws NaN points wrongly, so each stretch without a gap is a QLineSeries of its own:
/// the first carries the name and the legend entry, the others share its pen with their
/// legend markers hidden. Points are oldest first; the owner pushes them with publish().
class GappedLine {
public:
    /// Adds the first series to `chart`, attached to `axes`. `onSeriesAdded` is called for
    /// every series the line creates (tooltips), the first included.
    GappedLine(QChart *chart, const QList<QAbstractAxis *> &axes, const QString &name,
               std::function<void(QLineSeries *)> onSeriesAdded = {});
    /// Removes and deletes every series of the line.
    ~GappedLine();
    GappedLine(const GappedLine &) = delete;
    GappedLine &operator=(const GappedLine &) = delete;

    void append(const QPointF &point);
    /// Nothing was measured now: the next point starts a new stretch.
    void breakLine();
    void clear();
    /// Replaces every point with `points` (one stretch); what breakLine() said is kept.
    void setPoints(const QList<QPointF> &points);
    /// Drops points at or before `cutoffX`, then the oldest beyond `maxPoints` in all.
    void trim(double cutoffX, qsizetype maxPoints);
    /// Shows the points: one series per stretch (series added or removed as needed), each
    /// replaced in one call. `quiet`: without the series' change signals, for callers whose
    /// axis change relays the chart out anyway (see CpuChartView::updateSnapshot).
    void publish(bool quiet = false);
    void setPen(const QPen &pen);

    /// The named series with the legend entry: the oldest stretch.
    QLineSeries *first() const { return m_series.first(); }
    /// One series per stretch, oldest first (after publish()).
    const QList<QLineSeries *> &series() const { return m_series; }
    /// The stretches' points, oldest first.
    const QList<QList<QPointF>> &stretches() const { return m_stretches; }
    /// Every point, all stretches.
    qsizetype pointCount() const;
    bool isEmpty() const { return pointCount() == 0; }
    double firstX() const;
    double maxY() const;

private:
    QLineSeries *addSeries(bool legend);

    QChart *m_chart;
    QList<QAbstractAxis *> m_axes;
    QString m_name;
    std::function<void(QLineSeries *)> m_onSeriesAdded;
    QPen m_pen;
    bool m_havePen = false; ///< setPen() was called: new series get the same pen
    QList<QLineSeries *> m_series;
    QList<QList<QPointF>> m_stretches{QList<QPointF>{}};
    bool m_broken = false;
};

} // namespace corral
