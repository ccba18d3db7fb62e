#pragma once

#include <QColor>
#include <QList>
#include <QPointF>

class QChart;
class QChartView;
class QPalette;
class QWidget;

namespace corral {

/// What the console's charts share: a look that follows the widget's palette (dark mode
/// included) and the capped time-window buffers behind the line series.
class ChartStyle {
public:
    /// True when the palette's window background is dark (Qt 6.4 has no colour-scheme hint).
    static bool isDark(const QPalette &palette);
    /// Picks ChartThemeDark or ChartThemeLight from `widget`'s palette, then takes background,
    /// text colours and fonts from the widget so the chart blends into the window. Turns
    /// animations off: at one update per second they would only burn the UI thread. Resets
    /// series colours (QChart::setTheme does), so callers re-apply their pens afterwards.
    static void apply(QChart *chart, const QWidget *widget);
    /// View settings shared by the charts: antialiasing, and whole-viewport repaints (every
    /// tick changes most of the chart, so tracking many small dirty regions only costs time).
    static void configureView(QChartView *view);
    /// A distinct colour for the `index`-th line of a chart with many lines (golden-angle hues;
    /// a theme has only five colours and 64 workers would share them).
    static QColor seriesColor(int index, bool dark);
    /// How much time a chart's axis spans: the history it holds rounded up to whole minutes,
    /// at least one minute and at most `maxMs` (an axis grows with its data instead of showing
    /// five empty minutes).
    static qint64 timeSpanMs(qint64 oldestMs, qint64 nowMs, qint64 maxMs);
    /// The smallest 1, 2 or 5 × 10^n that is >= value; 1 for value <= 0.
    static double niceCeiling(double value);
    /// Drops points at or before `cutoffX` and, beyond that, the oldest points over
    /// `maxPoints`. Points are oldest first.
    static void trim(QList<QPointF> &points, double cutoffX, qsizetype maxPoints);
    /// Orders names as people do: runs of digits compared as numbers, so "web2" < "web10"
    /// and "10.0.1.9" < "10.0.1.12" (QCollator's numeric mode needs ICU, which not every Qt
    /// build has); ties by plain comparison, so it is a strict weak order.
    static bool naturalLess(const QString &a, const QString &b);
};

} // namespace corral
