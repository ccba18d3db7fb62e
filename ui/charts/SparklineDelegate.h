#pragma once

#include <QStyledItemDelegate>

namespace corral {

/// Paints a cell as a small line of its recent values (a sparkline) instead of text: the
/// values come from the index's `valuesRole` as a QList<double>, oldest first, scaled from 0
/// to their maximum; a NaN (value unknown then) leaves a gap. Painting only, no QChart: a
/// fleet table repaints 70 of them every tick.
class SparklineDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    SparklineDelegate(int valuesRole, int capacity, QObject *parent = nullptr);

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override;
    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override;

private:
    int m_role;
    int m_capacity; ///< values a full line holds: a short history is drawn right-aligned
};

} // namespace corral
