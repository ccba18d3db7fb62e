#include "charts/ThroughputChartView.h"

#include "charts/ChartStyle.h"

#include <QChart>
#include <QCursor>
#include <QDateTime>
#include <QDateTimeAxis>
#include <QEvent>
#include <QLegend>
#include <QLineSeries>
#include <QToolTip>
#include <QValueAxis>

#include <algorithm>

namespace corral {

ThroughputChartView::ThroughputChartView(QWidget *parent)
    // The chart goes to the constructor: setChart() would release (and leak) the default one.
    : QChartView(new QChart, parent)
    , m_chart(chart()) {
    setObjectName(QStringLiteral("throughputChart"));
    m_chart->setTitle(tr("Throughput"));
    m_chart->legend()->setAlignment(Qt::AlignBottom);
    m_chart->setMargins(QMargins(4, 4, 4, 4));

    m_axisX = new QDateTimeAxis;
    m_axisX->setFormat(QStringLiteral("hh:mm:ss"));
    m_axisX->setTickCount(4); // wider labels stay readable in a narrow chart
    m_axisY = new QValueAxis;
    m_axisY->setLabelFormat(QStringLiteral("%g"));
    m_axisY->setTickCount(5);
    m_chart->addAxis(m_axisX, Qt::AlignBottom);
    m_chart->addAxis(m_axisY, Qt::AlignLeft);

    const auto withToolTip = [this](QLineSeries *series) {
        connect(series, &QLineSeries::hovered, this,
                [this, series](const QPointF &point, bool state) {
                    if (!state) {
                        QToolTip::hideText();
                        return;
                    }
                    const QString time = QDateTime::fromMSecsSinceEpoch(qint64(point.x()))
                                             .toString(QStringLiteral("hh:mm:ss"));
                    QToolTip::showText(QCursor::pos(),
                                       QStringLiteral("%1: %2 %3")
                                           .arg(time)
                                           .arg(point.y(), 0, 'f', 1)
                                           .arg(series->name()),
                                       this);
                });
    };
    const QList<QAbstractAxis *> axes{m_axisX, m_axisY};
    m_requests = std::make_unique<GappedLine>(m_chart, axes, tr("requests/s"), withToolTip);
    m_errors = std::make_unique<GappedLine>(m_chart, axes, tr("errors/s"), withToolTip);
    ChartStyle::configureView(this);

    applyStyle();
    updateAxes(QDateTime::currentMSecsSinceEpoch());
}

ThroughputChartView::~ThroughputChartView() = default;

void ThroughputChartView::updateSnapshot(const ClusterSnapshot &snapshot) {
    appendTick(snapshot);
    // One replace per series and tick: a single repaint instead of one per append/remove.
    m_requests->publish();
    m_errors->publish();
    updateAxes(snapshot.timestampMs);
}

void ThroughputChartView::setHistory(const QList<ClusterSnapshot> &history) {
    if (history.isEmpty()) return;
    for (const ClusterSnapshot &snapshot : history)
        appendTick(snapshot);
    // One replace and one axis update for the whole history (per tick, 300 ticks took 200 ms).
    m_requests->publish();
    m_errors->publish();
    updateAxes(history.last().timestampMs);
}

void ThroughputChartView::appendTick(const ClusterSnapshot &snapshot) {
    if ((!m_site.isEmpty() && snapshot.site != m_site) ||
        snapshot.timestampMs < m_lastTimestampMs) {
        // Another site, or the wall clock stepped back: old points would mislead.
        m_requests->clear();
        m_errors->clear();
    }
    m_site = snapshot.site;
    const qint64 now = snapshot.timestampMs;
    m_lastTimestampMs = now;

    if (snapshot.requestsKnown) {
        m_requests->append(QPointF(double(now), snapshot.requestsPerSecond));
        m_errors->append(QPointF(double(now), snapshot.errorsPerSecond));
    } else {
        // Not measured (not zero): a gap rather than a line across the outage.
        m_requests->breakLine();
        m_errors->breakLine();
    }
    const double cutoff = double(now - windowMs);
    m_requests->trim(cutoff, maxPointsPerSeries);
    m_errors->trim(cutoff, maxPointsPerSeries);
}

void ThroughputChartView::clear() {
    m_requests->clear();
    m_errors->clear();
    m_requests->publish();
    m_errors->publish();
    m_site.clear();
    m_lastTimestampMs = 0;
    m_axisY->setRange(0, 1);
}

void ThroughputChartView::changeEvent(QEvent *event) {
    QChartView::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::FontChange ||
        event->type() == QEvent::StyleChange)
        applyStyle();
}

void ThroughputChartView::applyStyle() {
    ChartStyle::apply(m_chart, this);
    const bool dark = ChartStyle::isDark(palette());
    // Pens are set here, on palette changes only, not per tick: setPen repaints the series.
    QPen requests(palette().color(QPalette::Highlight));
    requests.setWidthF(2);
    m_requests->setPen(requests);
    QPen errors(dark ? QColor(0xff, 0x6b, 0x6b) : QColor(0xc0, 0x1c, 0x28));
    errors.setWidthF(2);
    m_errors->setPen(errors);
}

void ThroughputChartView::updateAxes(qint64 nowMs) {
    double maxY = 0;
    const double since = double(nowMs - scaleWindowMs);
    for (const GappedLine *line : {m_requests.get(), m_errors.get()}) {
        for (const QList<QPointF> &stretch : line->stretches())
            for (auto it = stretch.crbegin(); it != stretch.crend() && it->x() > since; ++it)
                maxY = std::max(maxY, it->y());
    }
    const double top = ChartStyle::niceCeiling(maxY * 1.05);
    if (m_axisY->max() != top || m_axisY->min() != 0) m_axisY->setRange(0, top);
    const qint64 oldest = m_requests->isEmpty() ? nowMs : qint64(m_requests->firstX());
    const qint64 span = ChartStyle::timeSpanMs(oldest, nowMs, windowMs);
    m_axisX->setRange(QDateTime::fromMSecsSinceEpoch(nowMs - span),
                      QDateTime::fromMSecsSinceEpoch(nowMs));
}

} // namespace corral
