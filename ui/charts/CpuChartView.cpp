#include "charts/CpuChartView.h"
#include "../PlainText.h"

#include "charts/ChartStyle.h"
#include "charts/CpuHeatMap.h"

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

    // Over the chart's viewport, covering it: an opaque child spares the scene's painting.
    m_heatMap = new CpuHeatMap(viewport());
    m_heatMap->hide();

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
        for (auto &[key, track] : m_tracks) {
            track.samples.clear();
            if (track.line) track.line->clear();
        }
    }
    m_lastTimestampMs = now;

    // Decided before the rows are read: 500 new workers must not get a line each first.
    if (snapshot.workers.size() > maxLines) setHeatMap(true);

    ++m_tick;
    constexpr double noReading = std::numeric_limits<double>::quiet_NaN();
    for (const WorkerRow &row : snapshot.workers) {
        Track &track = ensureTrack(row);
        track.seenTick = m_tick;
        if (!row.reachable) {
            // Nothing measured: a gap, not a line across.
            track.samples.append(QPointF(double(now), noReading));
            if (track.line) track.line->breakLine();
        } else if (row.cpuValid) {
            track.samples.append(QPointF(double(now), row.cpuPercent));
            if (track.line) track.line->append(QPointF(double(now), row.cpuPercent));
        }
    }
    for (auto it = m_tracks.begin(); it != m_tracks.end();) {
        if (it->second.seenTick != m_tick) {
            it = m_tracks.erase(it); // its GappedLine removes its series
            m_heatRowsStale = true;
        } else {
            ++it;
        }
    }

    const double cutoff = double(now - windowMs);
    for (auto &[key, track] : m_tracks) {
        ChartStyle::trim(track.samples, cutoff, maxPointsPerSeries);
        if (track.line) track.line->trim(cutoff, maxPointsPerSeries);
    }
    if (int(m_tracks.size()) <= maxLines) setHeatMap(false);

    if (!m_heat) {
        // Each line's geometry (path plus a stroked hover shape) is rebuilt both when its
        // points are replaced and when the axes' range changes, and that is most of a tick's
        // cost with 64 lines. When the time axis is about to move anyway, replace the points
        // silently: the range change rebuilds every non-empty line from the series' current
        // points (XYChart::handleDomainUpdated reads them), so each line is laid out once per
        // tick.
        const bool axisMoves = m_axisX->max().toMSecsSinceEpoch() != now;
        for (auto &[key, track] : m_tracks)
            track.line->publish(axisMoves && !track.line->isEmpty());
    }
    updateAxes(now);
}

void CpuChartView::clear() {
    m_tracks.clear();
    m_heatRowsStale = true;
    m_heatOrder.clear();
    m_heatMap->clear();
    setHeatMap(false);
    m_site.clear();
    m_lastTimestampMs = 0;
    layoutLegend();
}

void CpuChartView::setHistory(quint16 port, const QList<QPointF> &points) {
    Track &track = ensureTrack(QStringLiteral("local"), port, tr("port %1").arg(port));
    track.seenTick = m_tick;
    const double firstLive =
        track.samples.isEmpty() ? std::numeric_limits<double>::infinity() : track.samples[0].x();
    QList<QPointF> merged;
    merged.reserve(points.size() + track.samples.size());
    for (const QPointF &p : points) {
        if (p.x() < firstLive) merged.append(p);
    }
    merged.append(track.samples);
    if (merged.isEmpty()) return;
    const qint64 now = std::max(m_lastTimestampMs, qint64(merged.last().x()));
    ChartStyle::trim(merged, double(now - windowMs), maxPointsPerSeries);
    track.samples = std::move(merged);
    if (track.line) {
        track.line.reset();
        createLine(track);
    }
    updateAxes(now);
}

QList<QPointF> CpuChartView::samples(const QString &name) const {
    for (const auto &[key, track] : m_tracks)
        if (track.name == name) return track.samples;
    return {};
}

QList<quint16> CpuChartView::ports() const {
    QList<quint16> result;
    result.reserve(qsizetype(m_tracks.size()));
    for (const auto &[key, track] : m_tracks)
        result.append(key.second);
    std::sort(result.begin(), result.end());
    return result;
}

QLineSeries *CpuChartView::series(quint16 port) const {
    for (const auto &[key, track] : m_tracks)
        if (key.second == port) return track.line ? track.line->first() : nullptr;
    return nullptr;
}

QStringList CpuChartView::names() const {
    QStringList result;
    for (const auto &[key, track] : m_tracks)
        result.append(track.name);
    return result;
}

QList<QLineSeries *> CpuChartView::segments(const QString &name) const {
    for (const auto &[key, track] : m_tracks)
        if (track.name == name) return track.line ? track.line->series() : QList<QLineSeries *>{};
    return {};
}

void CpuChartView::changeEvent(QEvent *event) {
    QChartView::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::FontChange ||
        event->type() == QEvent::StyleChange)
        applyStyle();
}

CpuChartView::Track &CpuChartView::ensureTrack(const WorkerRow &row) {
    // Remote workers by where they run, "web1:3001" (the inventory's name when known):
    // two hosts' workers may share a port.
    const QString where = row.hostName.isEmpty() ? row.host : row.hostName;
    return ensureTrack(row.host, row.port,
                       row.host == QLatin1String("local")
                           ? tr("port %1").arg(row.port)
                           : where + QLatin1Char(':') + QString::number(row.port));
}

CpuChartView::Track &CpuChartView::ensureTrack(const QString &host, quint16 port,
                                               const QString &name) {
    const TrackKey key{host, port};
    if (const auto it = m_tracks.find(key); it != m_tracks.end()) {
        if (it->second.name == name) return it->second;
        // Renamed (the host got its inventory name): a line of its own. The heat map reads
        // the erased samples until it is given rows again.
        m_heatMap->clear();
        m_heatOrder.clear();
        m_tracks.erase(it);
    }
    Track &track = m_tracks[key];
    track.name = name;
    // Not the order of appearance (that changes when the view is cleared): the port, and for
    // remote workers their host too, so one port on two hosts gets two colours.
    track.colorIndex = host == QLatin1String("local") ? port : port + int(qHash(host) % 1000u);
    m_heatRowsStale = true;
    if (!m_heat) createLine(track);
    return track;
}

void CpuChartView::createLine(Track &track) {
    const QString name = track.name;
    track.line = std::make_unique<GappedLine>(
        m_chart, QList<QAbstractAxis *>{m_axisX, m_axisY}, name, [this, name](QLineSeries *series) {
            connect(series, &QLineSeries::hovered, this,
                    [this, name](const QPointF &point, bool state) {
                        if (!state) {
                            QToolTip::hideText();
                            return;
                        }
                        const QString time = QDateTime::fromMSecsSinceEpoch(qint64(point.x()))
                                                 .toString(QStringLiteral("hh:mm:ss"));
                        QToolTip::showText(
                            QCursor::pos(),
                            plainToolTip(
                                tr("%1\n%2: %3 % CPU").arg(name, time).arg(point.y(), 0, 'f', 1)),
                            this);
                    });
        });
    // The pen is built once per line, not per tick: setPen repaints the whole series.
    track.line->setPen(penFor(track));
    if (track.samples.isEmpty()) return;
    for (const QPointF &p : std::as_const(track.samples)) {
        if (std::isnan(p.y()))
            track.line->breakLine();
        else
            track.line->append(p);
    }
    track.line->publish();
}

void CpuChartView::setHeatMap(bool heat) {
    if (heat == m_heat) return;
    m_heat = heat;
    for (auto &[key, track] : m_tracks) {
        if (heat)
            track.line.reset(); // its series go with it
        else if (!track.line)
            createLine(track);
    }
    if (heat) {
        m_heatMap->setGeometry(viewport()->rect());
        m_heatMap->show();
    } else {
        m_heatMap->hide();
        m_heatMap->clear();
        m_heatOrder.clear();
        m_heatRowsStale = true;
    }
}

void CpuChartView::updateHeatMap(qint64 startMs, qint64 nowMs, double top) {
    if (m_heatRowsStale) {
        // Sorted by name, "web2:3000" before "web10:3000"; re-sorted only when workers come
        // or go (the pointers stay valid as long as the map's nodes).
        m_heatOrder.clear();
        m_heatOrder.reserve(qsizetype(m_tracks.size()));
        for (const auto &[key, track] : m_tracks)
            m_heatOrder.append(&track);
        std::stable_sort(m_heatOrder.begin(), m_heatOrder.end(),
                         [](const Track *a, const Track *b) {
                             return ChartStyle::naturalLess(a->name, b->name);
                         });
        m_heatRowsStale = false;
    }
    QList<CpuHeatMap::Row> rows;
    rows.reserve(m_heatOrder.size());
    for (const Track *track : std::as_const(m_heatOrder))
        rows.append(CpuHeatMap::Row{track->name, &track->samples});
    m_heatMap->setTitle(tr("CPU per worker (%): %1 workers").arg(rows.size()));
    m_heatMap->setRows(rows, startMs, nowMs, top);
}

void CpuChartView::updateAxes(qint64 nowMs) {
    double maxY = 0;
    qint64 oldest = nowMs;
    for (const auto &[key, track] : m_tracks) {
        for (const QPointF &p : track.samples) {
            if (p.y() > maxY) maxY = p.y(); // false for NaN
        }
        if (!track.samples.isEmpty()) oldest = std::min(oldest, qint64(track.samples[0].x()));
    }
    // 0..100 % is one core; a multi-process tree can go beyond, rounded up to the next 50.
    const double top = std::max(100.0, std::ceil(maxY / 50.0) * 50.0);
    if (m_axisY->max() != top || m_axisY->min() != 0) m_axisY->setRange(0, top);
    const qint64 span = ChartStyle::timeSpanMs(oldest, nowMs, windowMs);
    m_axisX->setRange(QDateTime::fromMSecsSinceEpoch(nowMs - span),
                      QDateTime::fromMSecsSinceEpoch(nowMs));
    if (m_legendCount != int(m_tracks.size())) layoutLegend();
    if (m_heat) updateHeatMap(nowMs - span, nowMs, top);
}

void CpuChartView::resizeEvent(QResizeEvent *event) {
    QChartView::resizeEvent(event); // resizes the chart to the viewport
    m_heatMap->setGeometry(viewport()->rect());
    layoutLegend();
}

void CpuChartView::layoutLegend() {
    QLegend *legend = m_chart->legend();
    const int count = int(m_tracks.size());
    m_legendCount = count;
    const QSizeF size = m_chart->size();
    const QFontMetricsF metrics(legend->font());
    // A legend entry: marker square, gaps and the longest name (at least "port 65535"), so
    // no entry is cut short ("web1:3001" and longer names included).
    double longest = metrics.horizontalAdvance(tr("port %1").arg(65535));
    for (const auto &[key, track] : m_tracks)
        longest = std::max(longest, metrics.horizontalAdvance(track.name));
    const double entryWidth = longest + metrics.height() + 28;
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
    for (auto &[key, track] : m_tracks)
        if (track.line) track.line->setPen(penFor(track));
    layoutLegend(); // the font may have changed
}

QPen CpuChartView::penFor(const Track &track) const {
    QPen pen(ChartStyle::seriesColor(track.colorIndex, m_dark));
    pen.setWidthF(1);
    return pen;
}

} // namespace corral
