#include "charts/CpuHeatMap.h"
#include "../PlainText.h"

#include <QDateTime>
#include <QEvent>
#include <QFontMetrics>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace corral {

namespace {

/// Where a sample's reading starts: it stands for the time since the previous sample.
double coverageStart(const QList<QPointF> &samples, qsizetype i) {
    const double t = samples[i].x();
    const double previous = i > 0 ? samples[i - 1].x() : -1e300;
    const double gap = t - previous;
    return t - (gap > 0 && gap <= double(CpuHeatMap::maxTickMs)
                    ? gap
                    : double(CpuHeatMap::nominalTickMs));
}

QString timeText(qint64 ms) {
    return QDateTime::fromMSecsSinceEpoch(ms).toString(QStringLiteral("hh:mm:ss"));
}

} // namespace

CpuHeatMap::CpuHeatMap(QWidget *parent)
    : QWidget(parent) {
    setObjectName(QStringLiteral("cpuHeatMap"));
    setMouseTracking(true);
    setAttribute(Qt::WA_OpaquePaintEvent); // every pixel is painted
    // A sequential scale readable in light and dark mode, colour-blind safe (viridis' stops).
    static constexpr int stops[][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    constexpr int segments = int(std::size(stops)) - 1;
    m_lut.reserve(256);
    for (int i = 0; i < 256; ++i) {
        const double position = i / 255.0 * segments;
        const int low = std::min(segments - 1, int(position));
        const double f = position - low;
        const auto mix = [&](int c) {
            return int(std::lround(stops[low][c] + (stops[low + 1][c] - stops[low][c]) * f));
        };
        m_lut.append(qRgb(mix(0), mix(1), mix(2)));
    }
}

void CpuHeatMap::setRows(const QList<Row> &rows, qint64 startMs, qint64 endMs, double topPercent) {
    m_rows = rows;
    m_startMs = startMs;
    m_endMs = std::max(endMs, startMs + 1);
    m_top = topPercent > 0 ? topPercent : 100;
    m_image = QImage();
    update();
}

void CpuHeatMap::clear() {
    setRows({}, m_startMs, m_endMs, m_top);
}

void CpuHeatMap::setTitle(const QString &title) {
    if (title == m_title) return;
    m_title = title;
    update();
}

CpuHeatMap::Layout CpuHeatMap::layout() const {
    Layout result;
    const QFontMetrics metrics(font());
    const int line = metrics.height();
    const QRect area = rect().adjusted(4, 4, -4, -4);
    result.title = QRect(area.left(), area.top(), area.width(), line + 4);
    const int scaleLabels = metrics.horizontalAdvance(QStringLiteral("%1 %").arg(m_top, 0, 'f', 0));
    const int right = 12 + 4 + scaleLabels + 4; // strip, gap, labels
    const int top = result.title.bottom() + 4;
    const int bottom = area.bottom() - line - 4; // time labels under the plot
    const int height = std::max(1, bottom - top);
    // Names beside the rows when each row is at least a line high.
    result.names = !m_rows.isEmpty() && height / int(m_rows.size()) >= line;
    int left = area.left();
    if (result.names) {
        int longest = 0;
        for (const Row &row : m_rows)
            longest = std::max(longest, metrics.horizontalAdvance(row.name));
        left += std::min(longest, area.width() / 3) + 6;
    }
    result.plot = QRect(left, top, std::max(1, area.right() - right - left), height);
    result.scale = QRect(result.plot.right() + 5, top, 12, height);
    return result;
}

QRect CpuHeatMap::plotRect() const {
    return layout().plot;
}

int CpuHeatMap::imageRows(const QRect &plot) const {
    return std::max(1, std::min(int(m_rows.size()), plot.height()));
}

QColor CpuHeatMap::colorFor(double percent) const {
    const double f = std::clamp(percent / m_top, 0.0, 1.0);
    return QColor::fromRgb(m_lut[int(std::lround(f * 255))]);
}

void CpuHeatMap::render(const Layout &layout) {
    const int width = layout.plot.width();
    const int height = imageRows(layout.plot);
    const qsizetype count = m_rows.size();
    const double span = double(m_endMs - m_startMs);
    const double columnMs = span / width;
    // The busiest reading per cell (a pixel row may stand for several workers); NaN: none.
    std::vector<float> cells(size_t(width) * size_t(height),
                             std::numeric_limits<float>::quiet_NaN());
    for (qsizetype i = 0; i < count; ++i) {
        const QList<QPointF> &samples = *m_rows[i].samples;
        float *const row = cells.data() + size_t(i * height / count) * size_t(width);
        for (qsizetype s = 0; s < samples.size(); ++s) {
            const double value = samples[s].y();
            if (std::isnan(value)) continue;
            // The columns whose time overlaps (start, t]: the same test valueIn() makes.
            const double end = (samples[s].x() - double(m_startMs)) / columnMs;
            if (end <= 0) continue;
            const double begin = (coverageStart(samples, s) - double(m_startMs)) / columnMs;
            const int first = std::max(0, int(std::floor(begin)));
            const int last = std::min(width - 1, int(std::ceil(end)) - 1);
            for (int c = first; c <= last; ++c) {
                if (!(row[c] >= float(value))) row[c] = float(value); // NaN or lower
            }
        }
    }
    m_image = QImage(width, height, QImage::Format_ARGB32);
    const QRgb empty = palette().color(QPalette::AlternateBase).rgb();
    for (int y = 0; y < height; ++y) {
        auto *line = reinterpret_cast<QRgb *>(m_image.scanLine(y));
        const float *row = cells.data() + size_t(y) * size_t(width);
        for (int x = 0; x < width; ++x) {
            line[x] = std::isnan(row[x])
                          ? empty
                          : m_lut[int(std::lround(std::clamp(row[x] / m_top, 0.0, 1.0) * 255))];
        }
    }
}

void CpuHeatMap::paintEvent(QPaintEvent *) {
    QPainter painter(this);
    const QPalette pal = palette();
    painter.fillRect(rect(), pal.color(QPalette::Window));
    const Layout lay = layout();
    const QFontMetrics metrics(font());

    QFont titleFont = font();
    titleFont.setBold(true);
    painter.setFont(titleFont);
    painter.setPen(pal.color(QPalette::WindowText));
    painter.drawText(lay.title, Qt::AlignCenter, m_title);
    painter.setFont(font());

    if (m_image.isNull() || m_image.width() != lay.plot.width() ||
        m_image.height() != imageRows(lay.plot))
        render(lay);
    painter.drawImage(lay.plot, m_image); // nearest pixel: rows stay crisp bands

    if (lay.names) {
        const double rowHeight = double(lay.plot.height()) / double(m_rows.size());
        for (qsizetype i = 0; i < m_rows.size(); ++i) {
            const QRect cell(4, lay.plot.top() + int(i * rowHeight), lay.plot.left() - 10,
                             int(rowHeight));
            painter.drawText(cell, Qt::AlignRight | Qt::AlignVCenter,
                             metrics.elidedText(m_rows[i].name, Qt::ElideLeft, cell.width()));
        }
    }

    // Time under the plot: its start, middle and end.
    const QRect times(lay.plot.left(), lay.plot.bottom() + 3, lay.plot.width(), metrics.height());
    painter.drawText(times, Qt::AlignLeft | Qt::AlignTop, timeText(m_startMs));
    painter.drawText(times, Qt::AlignHCenter | Qt::AlignTop,
                     timeText(m_startMs + (m_endMs - m_startMs) / 2));
    painter.drawText(times, Qt::AlignRight | Qt::AlignTop, timeText(m_endMs));

    // The colour scale: the top of the range at the top.
    for (int y = 0; y < lay.scale.height(); ++y) {
        const double f = 1.0 - double(y) / std::max(1, lay.scale.height() - 1);
        painter.setPen(QColor::fromRgb(m_lut[int(std::lround(f * 255))]));
        painter.drawLine(lay.scale.left(), lay.scale.top() + y, lay.scale.right(),
                         lay.scale.top() + y);
    }
    painter.setPen(pal.color(QPalette::WindowText));
    const int labelLeft = lay.scale.right() + 4;
    const int labelWidth = width() - labelLeft;
    painter.drawText(QRect(labelLeft, lay.scale.top(), labelWidth, metrics.height()),
                     Qt::AlignLeft | Qt::AlignTop, QStringLiteral("%1 %").arg(m_top, 0, 'f', 0));
    painter.drawText(QRect(labelLeft, lay.scale.center().y() - metrics.height() / 2, labelWidth,
                           metrics.height()),
                     Qt::AlignLeft | Qt::AlignVCenter, QString::number(m_top / 2, 'f', 0));
    painter.drawText(
        QRect(labelLeft, lay.scale.bottom() - metrics.height() + 1, labelWidth, metrics.height()),
        Qt::AlignLeft | Qt::AlignBottom, QStringLiteral("0"));
}

double CpuHeatMap::valueIn(int row, double t0, double t1, qint64 *sampleMs) const {
    const QList<QPointF> &samples = *m_rows[row].samples;
    // The first sample ending after t0; samples after it overlap while they start before t1.
    auto it = std::upper_bound(samples.cbegin(), samples.cend(), t0,
                               [](double t, const QPointF &p) { return t < p.x(); });
    double best = std::numeric_limits<double>::quiet_NaN();
    for (; it != samples.cend(); ++it) {
        const qsizetype i = it - samples.cbegin();
        if (coverageStart(samples, i) >= t1) break;
        if (std::isnan(it->y())) continue;
        if (std::isnan(best) || it->y() > best) {
            best = it->y();
            *sampleMs = qint64(it->x());
        }
    }
    return best;
}

QPoint CpuHeatMap::cellCenter(int row, qint64 ms) const {
    const QRect plot = plotRect();
    const double rowHeight = double(plot.height()) / std::max<qsizetype>(1, m_rows.size());
    const double x = double(ms - m_startMs) / double(m_endMs - m_startMs) * plot.width();
    return QPoint(plot.left() + int(x), plot.top() + int((row + 0.5) * rowHeight));
}

QString CpuHeatMap::toolTipAt(const QPoint &pos) const {
    const QRect plot = plotRect();
    if (m_rows.isEmpty() || !plot.contains(pos)) return {};
    const int height = imageRows(plot);
    const qsizetype count = m_rows.size();
    const int imageRow = std::min(height - 1, (pos.y() - plot.top()) * height / plot.height());
    const int column = pos.x() - plot.left();
    const double columnMs = double(m_endMs - m_startMs) / plot.width();
    const double t0 = double(m_startMs) + column * columnMs;
    const double t1 = t0 + columnMs;
    // The workers this pixel row stands for; the busiest one is named, as the cell shows it.
    int best = -1;
    int workers = 0;
    double bestValue = std::numeric_limits<double>::quiet_NaN();
    qint64 bestMs = 0;
    for (qsizetype i = 0; i < count; ++i) {
        if (i * height / count != imageRow) continue;
        ++workers;
        if (best < 0) best = int(i);
        qint64 ms = 0;
        const double value = valueIn(int(i), t0, t1, &ms);
        if (!std::isnan(value) && (std::isnan(bestValue) || value > bestValue)) {
            best = int(i);
            bestValue = value;
            bestMs = ms;
        }
    }
    if (best < 0) return {};
    QString text = std::isnan(bestValue)
                       ? tr("%1\n%2: no reading").arg(m_rows[best].name, timeText(qint64(t0)))
                       : tr("%1\n%2: %3 % CPU")
                             .arg(m_rows[best].name, timeText(bestMs))
                             .arg(bestValue, 0, 'f', 1);
    if (workers > 1)
        text += QLatin1Char('\n') + tr("(busiest of %1 workers in this row)").arg(workers);
    return text;
}

void CpuHeatMap::mouseMoveEvent(QMouseEvent *event) {
    const QString text = toolTipAt(event->position().toPoint());
    if (text.isEmpty())
        QToolTip::hideText();
    else
        QToolTip::showText(event->globalPosition().toPoint(), plainToolTip(text), this);
}

void CpuHeatMap::leaveEvent(QEvent *event) {
    QToolTip::hideText();
    QWidget::leaveEvent(event);
}

void CpuHeatMap::resizeEvent(QResizeEvent *event) {
    QWidget::resizeEvent(event);
    m_image = QImage(); // cells follow the widget's size
}

void CpuHeatMap::changeEvent(QEvent *event) {
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::FontChange) {
        m_image = QImage();
        update();
    }
}

} // namespace corral
