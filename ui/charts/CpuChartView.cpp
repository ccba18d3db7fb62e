#include "charts/CpuChartView.h"

#include "charts/ChartStyle.h"

#include <QChart>
#include <QCursor>
#include <QDateTime>
#include <QDateTimeAxis>
#include <QEvent>
#include <QFontMetricsF>
#include <QLegend>
#include <QLineSeries>
#include <QSignalBlocker>
#include <QToolTip>
#include <QValueAxis>

#include <algorithm>
#include <cmath>
#include <limits>

namespace corral {

CpuChartView::CpuChartView(QWidget *parent)
    // The chart goes to the constructor: setChart() would release (and leak) the default one.
    : QChartView(new QChart, parent)
    , m_chart(chart()) {
    setObjectName(QStringLiteral("cpuChart"));
    m_chart->setTitle(tr("CPU per worker (%)"));
    // A chart-attached legend puts every entry on one row and elides them ("po...") from five
    // workers on; detached, it wraps onto rows within the geometry layoutLegend() gives it.
    m_chart->legend()->setAlignment(Qt::AlignBottom);
    m_chart->legend()->detachFromChart();
    m_chart->legend()->setBackgroundVisible(false);
    m_chart->setMargins(QMargins(4, 4, 4, 4));

    m_axisX = new QDateTimeAxis;
    m_axisX->setFormat(QStringLiteral("hh:mm:ss"));
    m_axisX->setTickCount(4); // wider labels stay readable in a narrow chart
    m_axisY = new QValueAxis;
    m_axisY->setLabelFormat(QStringLiteral("%d"));
    m_axisY->setTickCount(5);
    m_chart->addAxis(m_axisX, Qt::AlignBottom);
    m_chart->addAxis(m_axisY, Qt::AlignLeft);
    ChartStyle::configureView(this);

    applyStyle();
    updateAxes(QDateTime::currentMSecsSinceEpoch());
}

CpuChartView::~CpuChartView() = default;

void CpuChartView::updateSnapshot(const ClusterSnapshot &snapshot) {
    if (!m_site.isEmpty() && snapshot.site != m_site) clear();
    m_site = snapshot.site;
    const qint64 now = snapshot.timestampMs;
    if (now < m_lastTimestampMs) {
        // The wall clock stepped back: old points would sit right of "now".
        for (auto &[port, track] : m_tracks)
            track.points.clear();
    }
    m_lastTimestampMs = now;

    ++m_tick;
    for (const WorkerRow &row : snapshot.workers) {
        Track &track = ensureTrack(row.port);
        track.seenTick = m_tick;
        if (row.cpuValid) track.points.append(QPointF(double(now), row.cpuPercent));
    }
    for (auto it = m_tracks.begin(); it != m_tracks.end();) {
        if (it->second.seenTick != m_tick) {
            m_chart->removeSeries(it->second.series);
            delete it->second.series;
            it = m_tracks.erase(it);
        } else {
            ++it;
        }
    }

    const double cutoff = double(now - windowMs);
    for (auto &[port, track] : m_tracks)
        ChartStyle::trim(track.points, cutoff, maxPointsPerSeries);

    // Each line's geometry (path plus a stroked hover shape) is rebuilt both when its points
    // are replaced and when the axes' range changes, and that is most of a tick's cost with
    // 64 lines. When the time axis is about to move anyway, replace the points silently: the
    // range change rebuilds every non-empty line from the series' current points
    // (XYChart::handleDomainUpdated reads them), so each line is laid out once per tick.
    const bool axisMoves = m_axisX->max().toMSecsSinceEpoch() != now;
    for (auto &[port, track] : m_tracks) {
        if (axisMoves && !track.points.isEmpty()) {
            const QSignalBlocker blocker(track.series);
            track.series->replace(track.points);
        } else {
            track.series->replace(track.points);
        }
    }
    updateAxes(now);
}

void CpuChartView::clear() {
    for (auto &[port, track] : m_tracks) {
        m_chart->removeSeries(track.series);
        delete track.series;
    }
    m_tracks.clear();
    m_site.clear();
    m_lastTimestampMs = 0;
    layoutLegend();
}

void CpuChartView::setHistory(quint16 port, const QList<QPointF> &points) {
    Track &track = ensureTrack(port);
    track.seenTick = m_tick;
    const double firstLive =
        track.points.isEmpty() ? std::numeric_limits<double>::infinity() : track.points.first().x();
    QList<QPointF> merged;
    merged.reserve(points.size() + track.points.size());
    for (const QPointF &p : points) {
        if (p.x() < firstLive) merged.append(p);
    }
    merged.append(track.points);
    if (merged.isEmpty()) return;
    const qint64 now = std::max(m_lastTimestampMs, qint64(merged.last().x()));
    ChartStyle::trim(merged, double(now - windowMs), maxPointsPerSeries);
    track.points = std::move(merged);
    track.series->replace(track.points);
    updateAxes(now);
}

QList<quint16> CpuChartView::ports() const {
    QList<quint16> result;
    result.reserve(qsizetype(m_tracks.size()));
    for (const auto &[port, track] : m_tracks)
        result.append(port);
    return result;
}

QLineSeries *CpuChartView::series(quint16 port) const {
    const auto it = m_tracks.find(port);
    return it == m_tracks.end() ? nullptr : it->second.series;
}

void CpuChartView::changeEvent(QEvent *event) {
    QChartView::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::FontChange ||
        event->type() == QEvent::StyleChange)
        applyStyle();
}

CpuChartView::Track &CpuChartView::ensureTrack(quint16 port) {
    const auto it = m_tracks.find(port);
    if (it != m_tracks.end()) return it->second;
    Track &track = m_tracks[port];
    track.colorIndex = port; // not the order of appearance: that changes when the view is cleared
    track.series = new QLineSeries;
    track.series->setName(tr("port %1").arg(port));
    m_chart->addSeries(track.series);
    track.series->attachAxis(m_axisX);
    track.series->attachAxis(m_axisY);
    // The pen is built once per line, not per tick: setPen repaints the whole series.
    track.series->setPen(penFor(track));
    connect(
        track.series, &QLineSeries::hovered, this, [this, port](const QPointF &point, bool state) {
            if (!state) {
                QToolTip::hideText();
                return;
            }
            const QString time = QDateTime::fromMSecsSinceEpoch(qint64(point.x()))
                                     .toString(QStringLiteral("hh:mm:ss"));
            QToolTip::showText(
                QCursor::pos(),
                tr("port %1\n%2: %3 % CPU").arg(port).arg(time).arg(point.y(), 0, 'f', 1), this);
        });
    return track;
}

void CpuChartView::updateAxes(qint64 nowMs) {
    double maxY = 0;
    for (const auto &[port, track] : m_tracks) {
        for (const QPointF &p : track.points)
            maxY = std::max(maxY, p.y());
    }
    // 0..100 % is one core; a multi-process tree can go beyond, rounded up to the next 50.
    const double top = std::max(100.0, std::ceil(maxY / 50.0) * 50.0);
    if (m_axisY->max() != top || m_axisY->min() != 0) m_axisY->setRange(0, top);
    qint64 oldest = nowMs;
    for (const auto &[port, track] : m_tracks) {
        if (!track.points.isEmpty()) oldest = std::min(oldest, qint64(track.points.first().x()));
    }
    const qint64 span = ChartStyle::timeSpanMs(oldest, nowMs, windowMs);
    m_axisX->setRange(QDateTime::fromMSecsSinceEpoch(nowMs - span),
                      QDateTime::fromMSecsSinceEpoch(nowMs));
    if (m_legendCount != int(m_tracks.size())) layoutLegend();
}

void CpuChartView::resizeEvent(QResizeEvent *event) {
    QChartView::resizeEvent(event); // resizes the chart to the viewport
    layoutLegend();
}

void CpuChartView::layoutLegend() {
    QLegend *legend = m_chart->legend();
    const int count = int(m_tracks.size());
    m_legendCount = count;
    const QSizeF size = m_chart->size();
    const QFontMetricsF metrics(legend->font());
    // A legend entry: marker square, gaps and the longest name ("port 65535").
    const double entryWidth =
        metrics.horizontalAdvance(tr("port %1").arg(65535)) + metrics.height() + 28;
    const double rowHeight = metrics.height() + 14; // text item document margins included
    const int columns = std::max(1, int((size.width() - 8) / entryWidth));
    const int rows = (count + columns - 1) / columns;
    const bool show = count > 0 && count <= maxLegendEntries && rows <= maxLegendRows;
    legend->setVisible(show);
    const double height = show ? rows * rowHeight + 4 : 0;
    m_chart->setMargins(QMargins(4, 4, 4, 4 + int(std::ceil(height))));
    if (show) legend->setGeometry(QRectF(4, size.height() - height - 2, size.width() - 8, height));
}

void CpuChartView::applyStyle() {
    ChartStyle::apply(m_chart, this);

    m_dark = ChartStyle::isDark(palette());
    for (auto &[port, track] : m_tracks)
        track.series->setPen(penFor(track));
    layoutLegend(); // the font may have changed
}

QPen CpuChartView::penFor(const Track &track) const {
    QPen pen(ChartStyle::seriesColor(track.colorIndex, m_dark));
    pen.setWidthF(1);
    return pen;
}

} // namespace corral
