#include "charts/GappedLine.h"

#include <QChart>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QSignalBlocker>

#include <algorithm>
#include <limits>

namespace corral {

GappedLine::GappedLine(QChart *chart, const QList<QAbstractAxis *> &axes, const QString &name,
                       std::function<void(QLineSeries *)> onSeriesAdded)
    : m_chart(chart)
    , m_axes(axes)
    , m_name(name)
    , m_onSeriesAdded(std::move(onSeriesAdded)) {
    addSeries(true);
}

GappedLine::~GappedLine() {
    for (QLineSeries *series : std::as_const(m_series)) {
        m_chart->removeSeries(series);
        delete series;
    }
}

QLineSeries *GappedLine::addSeries(bool legend) {
    auto *series = new QLineSeries;
    series->setName(m_name);
    m_chart->addSeries(series);
    for (QAbstractAxis *axis : std::as_const(m_axes))
        series->attachAxis(axis);
    if (m_havePen) series->setPen(m_pen);
    if (!legend)
        for (QLegendMarker *marker : m_chart->legend()->markers(series))
            marker->setVisible(false);
    m_series.append(series);
    if (m_onSeriesAdded) m_onSeriesAdded(series);
    return series;
}

void GappedLine::append(const QPointF &point) {
    if (m_broken && !m_stretches.last().isEmpty()) m_stretches.append(QList<QPointF>{});
    m_broken = false;
    m_stretches.last().append(point);
}

void GappedLine::breakLine() {
    m_broken = true;
}

void GappedLine::clear() {
    m_stretches = {QList<QPointF>{}};
    m_broken = false;
}

void GappedLine::setPoints(const QList<QPointF> &points) {
    m_stretches = {points};
}

void GappedLine::trim(double cutoffX, qsizetype maxPoints) {
    qsizetype excess = pointCount() - maxPoints;
    QList<QList<QPointF>> kept;
    for (qsizetype i = 0; i < m_stretches.size(); ++i) {
        QList<QPointF> &stretch = m_stretches[i];
        const auto firstKept =
            std::find_if(stretch.cbegin(), stretch.cend(),
                         [cutoffX](const QPointF &p) { return p.x() > cutoffX; });
        const qsizetype drop =
            std::min(stretch.size(), std::max<qsizetype>(firstKept - stretch.cbegin(), excess));
        // QList (Qt 6) erases at the front by moving its begin pointer: no copy of the rest.
        if (drop > 0) stretch.remove(0, drop);
        excess -= drop;
        // Stretches emptied by the trim go; the newest stays (it may be waiting for points).
        if (!stretch.isEmpty() || i == m_stretches.size() - 1) kept.append(std::move(stretch));
    }
    m_stretches = std::move(kept);
}

void GappedLine::publish(bool quiet) {
    // An empty newest stretch (a break not yet followed by a point) needs no series.
    qsizetype shown = m_stretches.size();
    if (shown > 1 && m_stretches.last().isEmpty()) --shown;
    while (m_series.size() > shown) {
        QLineSeries *series = m_series.takeLast();
        m_chart->removeSeries(series);
        delete series;
    }
    for (qsizetype i = 0; i < shown; ++i) {
        const bool added = i >= m_series.size();
        QLineSeries *series = added ? addSeries(false) : m_series.at(i);
        if (quiet && !added) {
            const QSignalBlocker blocker(series);
            series->replace(m_stretches.at(i));
        } else {
            series->replace(m_stretches.at(i));
        }
    }
}

void GappedLine::setPen(const QPen &pen) {
    m_pen = pen;
    m_havePen = true;
    for (QLineSeries *series : std::as_const(m_series))
        series->setPen(pen);
}

qsizetype GappedLine::pointCount() const {
    qsizetype count = 0;
    for (const QList<QPointF> &stretch : m_stretches)
        count += stretch.size();
    return count;
}

double GappedLine::firstX() const {
    for (const QList<QPointF> &stretch : m_stretches)
        if (!stretch.isEmpty()) return stretch.first().x();
    return std::numeric_limits<double>::infinity();
}

double GappedLine::maxY() const {
    double top = 0;
    for (const QList<QPointF> &stretch : m_stretches)
        for (const QPointF &p : stretch)
            top = std::max(top, p.y());
    return top;
}

} // namespace corral
