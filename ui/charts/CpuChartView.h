#pragma once

#include "cluster/ClusterSnapshot.h"

#include <QChartView>
#include <QList>
#include <QPen>
#include <QPointF>

#include <map>

class QChart;
class QDateTimeAxis;
class QLineSeries;
class QValueAxis;

namespace corral {

/// CPU % of each worker process tree over the last five minutes: one line per worker, named
/// "port N". Fed one ClusterSnapshot per tick; a worker's line appears with its first row in a
/// snapshot and is removed from the chart with the first snapshot that lacks it.
/// Workers are told apart by port (unique among a site's workers on one host).
class CpuChartView : public QChartView {
    Q_OBJECT
public:
    static constexpr qint64 windowMs = 5 * 60 * 1000;
    /// Points kept per line at most, whatever the tick rate (five minutes at 2 Hz), so
    /// memory and paint time stay flat.
    static constexpr qsizetype maxPointsPerSeries = 600;
    /// Above this many lines the legend is hidden (it would not fit); tooltips name the port.
    static constexpr int maxLegendEntries = 16;
    /// The legend wraps onto this many rows at most (else it is hidden, like above
    /// maxLegendEntries): entries are never cut short.
    static constexpr int maxLegendRows = 4;

    explicit CpuChartView(QWidget *parent = nullptr);
    ~CpuChartView() override;

    /// Appends each worker's CPU reading (rows with cpuValid only), adds lines for new workers,
    /// removes lines of workers that are gone, slides the time axis to end at the snapshot's
    /// timestamp. A snapshot of another site, or a clock that stepped back, starts afresh.
    void updateSnapshot(const ClusterSnapshot &snapshot);
    /// Removes every line and point.
    void clear();
    /// Prefills a worker's line from MetricsCollector history (x = ms since the epoch, oldest
    /// first), e.g. when a site is selected; points newer than the line's live points are
    /// ignored. Creates the line if needed; the next snapshot removes it if the worker is gone.
    void setHistory(quint16 port, const QList<QPointF> &points);

    int seriesCount() const { return int(m_tracks.size()); }
    /// Ports with a line, ascending.
    QList<quint16> ports() const;
    /// nullptr when there is no line for `port`.
    QLineSeries *series(quint16 port) const;
    QDateTimeAxis *timeAxis() const { return m_axisX; }
    QValueAxis *valueAxis() const { return m_axisY; }

protected:
    void changeEvent(QEvent *event) override;
    void resizeEvent(QResizeEvent *event) override;

private:
    struct Track {
        QLineSeries *series = nullptr;
        QList<QPointF> points; ///< what the series shows, oldest first
        int colorIndex = 0;    ///< the port: a worker keeps its colour while it exists
        quint64 seenTick = 0;
    };

    Track &ensureTrack(quint16 port);
    void updateAxes(qint64 nowMs);
    void applyStyle();
    /// Places the (detached) legend under the plot, wrapped onto as many rows as it needs,
    /// and leaves the chart's bottom margin to it.
    void layoutLegend();
    QPen penFor(const Track &track) const;

    QChart *m_chart = nullptr;
    QDateTimeAxis *m_axisX = nullptr;
    QValueAxis *m_axisY = nullptr;
    std::map<quint16, Track> m_tracks; ///< by port
    QString m_site;
    qint64 m_lastTimestampMs = 0;
    quint64 m_tick = 0;
    int m_legendCount = -1; ///< entries the legend was laid out for
    bool m_dark = false;
};

} // namespace corral
