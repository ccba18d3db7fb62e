#include "SparklineDelegate.h"

#include "ChartStyle.h"

#include <QApplication>
#include <QPainter>
#include <QVarLengthArray>

#include <algorithm>
#include <cmath>

namespace corral {

SparklineDelegate::SparklineDelegate(int valuesRole, int capacity, QObject *parent)
    : QStyledItemDelegate(parent)
    , m_role(valuesRole)
    , m_capacity(std::max(2, capacity)) {}

void SparklineDelegate::paint(QPainter *painter, const QStyleOptionViewItem &option,
                              const QModelIndex &index) const {
    // The cell's background and selection as any other cell, without its text.
    QStyleOptionViewItem cell = option;
    initStyleOption(&cell, index);
    cell.text.clear();
    const QWidget *widget = option.widget;
    QStyle *style = widget ? widget->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &cell, painter, widget);

    const QList<double> values = index.data(m_role).value<QList<double>>();
    const QRectF area = QRectF(option.rect).adjusted(3, 3, -3, -3);
    if (values.isEmpty() || area.width() < 4 || area.height() < 4) return;
    double top = 0;
    for (double value : values)
        if (!std::isnan(value)) top = std::max(top, value);
    top = ChartStyle::niceCeiling(top);

    const double step = area.width() / (m_capacity - 1);
    const qsizetype first = std::max<qsizetype>(0, values.size() - m_capacity);
    const double x0 = area.right() - double(values.size() - first - 1) * step;
    const bool selected = option.state & QStyle::State_Selected;
    const QColor colour = selected ? option.palette.color(QPalette::HighlightedText)
                                   : ChartStyle::seriesColor(0, ChartStyle::isDark(option.palette));
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    painter->setPen(QPen(colour, 1.3, Qt::SolidLine, Qt::RoundCap));
    // One polyline per run of known values: an unknown one (NaN) leaves a gap.
    QVarLengthArray<QPointF, 64> run;
    const auto flush = [&] {
        if (run.size() == 1)
            painter->drawPoint(run.front()); // a lone value: still seen
        else if (run.size() > 1)
            painter->drawPolyline(run.data(), int(run.size()));
        run.clear();
    };
    for (qsizetype i = first; i < values.size(); ++i) {
        const double value = values[i];
        if (std::isnan(value)) {
            flush();
            continue;
        }
        run.append(QPointF(x0 + double(i - first) * step,
                           area.bottom() - std::clamp(value / top, 0.0, 1.0) * area.height()));
    }
    flush();
    painter->restore();
}

QSize SparklineDelegate::sizeHint(const QStyleOptionViewItem &option,
                                  const QModelIndex &index) const {
    QSize size = QStyledItemDelegate::sizeHint(option, index);
    size.setWidth(std::max(size.width(), 2 * m_capacity));
    return size;
}

} // namespace corral
