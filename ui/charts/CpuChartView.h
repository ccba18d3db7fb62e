#pragma once

#include "charts/GappedLine.h"
#include "cluster/ClusterSnapshot.h"

#include <QChartView>
#include <QList>
#include <QPen>
#include <QPointF>

#include <map>
#include <memory>
#include <utility>

class QChart;
class QDateTimeAxis;
class QLineSeries;
class QValueAxis;

namespace corral {

class CpuHeatMap;

/// CPU % of each worker process tree over the last five minutes: one line per worker, named
/// "port N" for local workers and "HOST:N" for remote ones (the inventory host's name, else
/// the address). Fed one ClusterSnapshot per tick; a worker's line appears with its first row
/// in a snapshot and is removed from the chart with the first snapshot that lacks it. While a
/// worker's host cannot be reached (WorkerRow::reachable) its line has a gap: a line may
/// consist of several series (GappedLine), the first named and in the legend.
/// Workers are told apart by host and port.
///
/// Beyond maxLines workers, lines would be an unreadable tangle and a series per worker costs
/// the UI thread too much (issue 20: 500 workers): the view shows a CpuHeatMap instead,
/// workers sorted by name against time, over the chart. Each worker's readings are kept in a
/// bounded buffer either way, so the view switches both ways without losing history.
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
    /// Lines at most: more workers are shown as a heat map.
    static constexpr int maxLines = 16;

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

    /// Workers followed (lines, or heat-map rows).
    int seriesCount() const { return int(m_tracks.size()); }
    /// True while the workers are shown as a heat map (more than maxLines).
    bool isHeatMap() const { return m_heat; }
    CpuHeatMap *heatMap() const { return m_heatMap; }
    /// Readings kept for the worker named `name`, oldest first (a NaN CPU: no reading).
    QList<QPointF> samples(const QString &name) const;
    /// Ports with a line, ascending.
    QList<quint16> ports() const;
    /// nullptr when there is no line for `port` (the first worker with that port), and in
    /// the heat map; the oldest stretch of the line when it has gaps.
    QLineSeries *series(quint16 port) const;
    /// The lines' names ("port 3000", "web1:3000"), in (host, port) order.
    QStringList names() const;
    /// Every stretch of the line named `name`, oldest first; empty when there is none.
    QList<QLineSeries *> segments(const QString &name) const;
    QDateTimeAxis *timeAxis() const { return m_axisX; }
    QValueAxis *valueAxis() const { return m_axisY; }

protected:
    void changeEvent(QEvent *event) override;
    void resizeEvent(QResizeEvent *event) override;

private:
    struct Track {
        std::unique_ptr<GappedLine> line; ///< none while the heat map is shown
        /// (ms, CPU %) oldest first, a NaN CPU where the host could not be reached; within
        /// windowMs and maxPointsPerSeries.
        QList<QPointF> samples;
        QString name;
        int colorIndex = 0; ///< from host and port: a worker keeps its colour while it exists
        quint64 seenTick = 0;
    };
    /// (host, port): WorkerRow::host, "local" for this machine's workers.
    using TrackKey = std::pair<QString, quint16>;

    Track &ensureTrack(const WorkerRow &row);
    Track &ensureTrack(const QString &host, quint16 port, const QString &name);
    /// Gives `track` its line, drawn from its samples.
    void createLine(Track &track);
    /// Lines (false) or the heat map (true).
    void setHeatMap(bool heat);
    /// Hands the tracks, sorted by name, to the heat map.
    void updateHeatMap(qint64 startMs, qint64 nowMs, double top);
    void updateAxes(qint64 nowMs);
    void applyStyle();
    /// Places the (detached) legend under the plot, wrapped onto as many rows as it needs,
    /// and leaves the chart's bottom margin to it.
    void layoutLegend();
    QPen penFor(const Track &track) const;

    QChart *m_chart = nullptr;
    QDateTimeAxis *m_axisX = nullptr;
    QValueAxis *m_axisY = nullptr;
    std::map<TrackKey, Track> m_tracks;
    QString m_site;
    qint64 m_lastTimestampMs = 0;
    quint64 m_tick = 0;
    int m_legendCount = -1; ///< entries the legend was laid out for
    bool m_dark = false;
    CpuHeatMap *m_heatMap = nullptr;
    bool m_heat = false;
    bool m_heatRowsStale = true; ///< tracks were added or removed since the rows were sorted
    QList<const Track *> m_heatOrder;
};

} // namespace corral
