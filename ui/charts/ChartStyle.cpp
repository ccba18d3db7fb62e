#include "charts/ChartStyle.h"

#include <QAbstractAxis>
#include <QChart>
#include <QChartView>
#include <QLegend>
#include <QPalette>
#include <QWidget>

#include <algorithm>
#include <cmath>

namespace corral {

bool ChartStyle::isDark(const QPalette &palette) {
    return palette.color(QPalette::Window).lightnessF() < 0.5;
}

void ChartStyle::apply(QChart *chart, const QWidget *widget) {
    const QPalette palette = widget->palette();
    const QColor text = palette.color(QPalette::WindowText);
    const QColor window = palette.color(QPalette::Window);
    // Opaque mixes rather than translucent colours: translucent lines take the raster
    // engine's blending path (threaded span fills), several times slower per grid line.
    const auto mix = [&](double t) {
        return QColor::fromRgbF(float(window.redF() + (text.redF() - window.redF()) * t),
                                float(window.greenF() + (text.greenF() - window.greenF()) * t),
                                float(window.blueF() + (text.blueF() - window.blueF()) * t));
    };
    const QColor grid = mix(0.15);
    const QColor axisLine = mix(0.4);

    chart->setTheme(isDark(palette) ? QChart::ChartThemeDark : QChart::ChartThemeLight);
    chart->setAnimationOptions(QChart::NoAnimation);
    chart->setBackgroundBrush(palette.color(QPalette::Window));
    chart->setBackgroundPen(Qt::NoPen);
    chart->setBackgroundRoundness(0);
    chart->setTitleBrush(text);

    QFont font = widget->font();
    QFont title = font;
    title.setBold(true);
    if (title.pointSizeF() > 0) title.setPointSizeF(title.pointSizeF() + 1);
    chart->setTitleFont(title);
    chart->legend()->setFont(font);
    chart->legend()->setLabelColor(text);
    const auto axes = chart->axes();
    for (QAbstractAxis *axis : axes) {
        axis->setLabelsFont(font);
        axis->setLabelsColor(text);
        axis->setTitleFont(font);
        axis->setTitleBrush(text);
        axis->setLinePenColor(axisLine);
        axis->setGridLineColor(grid);
    }
}

void ChartStyle::configureView(QChartView *view) {
    view->setRenderHint(QPainter::Antialiasing);
    view->setRubberBand(QChartView::NoRubberBand);
    view->setViewportUpdateMode(QGraphicsView::FullViewportUpdate);
    view->setOptimizationFlags(QGraphicsView::DontSavePainterState);
    view->setFrameShape(QFrame::NoFrame);
    view->setMinimumSize(320, 200);
}

QColor ChartStyle::seriesColor(int index, bool dark) {
    constexpr double goldenRatio = 0.618033988749895;
    const double hue = std::fmod(0.58 + index * goldenRatio, 1.0);
    // Lighter on dark backgrounds, deeper on light ones, so lines keep their contrast.
    return QColor::fromHsvF(float(hue), dark ? 0.55f : 0.8f, dark ? 1.0f : 0.75f);
}

qint64 ChartStyle::timeSpanMs(qint64 oldestMs, qint64 nowMs, qint64 maxMs) {
    constexpr qint64 minute = 60 * 1000;
    const qint64 held = std::max<qint64>(0, nowMs - oldestMs);
    const qint64 minutes = (held + minute - 1) / minute;
    return std::clamp(minutes * minute, minute, std::max(minute, maxMs));
}

double ChartStyle::niceCeiling(double value) {
    if (!(value > 0) || !std::isfinite(value)) return 1;
    const double magnitude = std::pow(10.0, std::floor(std::log10(value)));
    const double fraction = value / magnitude;
    // The epsilon keeps 100 at 100 when log10 rounds down a hair.
    constexpr double eps = 1e-9;
    const double nice = fraction <= 1 + eps   ? 1
                        : fraction <= 2 + eps ? 2
                        : fraction <= 5 + eps ? 5
                                              : 10;
    return nice * magnitude;
}

void ChartStyle::trim(QList<QPointF> &points, double cutoffX, qsizetype maxPoints) {
    const auto firstKept = std::find_if(points.cbegin(), points.cend(),
                                        [cutoffX](const QPointF &p) { return p.x() > cutoffX; });
    qsizetype drop = firstKept - points.cbegin();
    drop = std::max(drop, points.size() - maxPoints);
    // QList (Qt 6) erases at the front by moving its begin pointer: no copy of the rest.
    if (drop > 0) points.remove(0, drop);
}

bool ChartStyle::naturalLess(const QString &a, const QString &b) {
    qsizetype i = 0;
    qsizetype j = 0;
    while (i < a.size() && j < b.size()) {
        if (a[i].isDigit() && b[j].isDigit()) {
            // Compare the digit runs as numbers: without leading zeros, longer is larger.
            qsizetype endA = i;
            qsizetype endB = j;
            while (endA < a.size() && a[endA].isDigit())
                ++endA;
            while (endB < b.size() && b[endB].isDigit())
                ++endB;
            qsizetype startA = i;
            qsizetype startB = j;
            while (startA + 1 < endA && a[startA] == QLatin1Char('0'))
                ++startA;
            while (startB + 1 < endB && b[startB] == QLatin1Char('0'))
                ++startB;
            if (endA - startA != endB - startB) return endA - startA < endB - startB;
            const int order = QStringView(a)
                                  .sliced(startA, endA - startA)
                                  .compare(QStringView(b).sliced(startB, endB - startB));
            if (order != 0) return order < 0;
            i = endA;
            j = endB;
            continue;
        }
        if (a[i] != b[j]) return a[i] < b[j];
        ++i;
        ++j;
    }
    if (i < a.size() || j < b.size()) return j < b.size(); // the shorter rest first
    return a < b;
}

} // namespace corral
