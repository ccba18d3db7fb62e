#pragma once

#include <QImage>
#include <QList>
#include <QPointF>
#include <QString>
#include <QWidget>

namespace corral {

/// CPU % of many workers over time as a heat map: one row per worker (in the order given),
/// time left to right, the colour the CPU % on a scale shown beside it. Painted with QPainter
/// from one image rebuilt per update: the cost grows with samples, not with QtCharts items,
/// where a line series per worker made 500 workers unusable. When there are more workers than
/// pixel rows, a pixel row shows the busiest of the workers it stands for.
/// Hovering shows the worker, the time and its CPU %.
class CpuHeatMap : public QWidget {
    Q_OBJECT
public:
    struct Row {
        QString name;
        /// (ms since the epoch, CPU %) oldest first; a NaN CPU is a tick without a reading
        /// (the host could not be reached). Owned by the caller, read until the next
        /// setRows() or clear().
        const QList<QPointF> *samples = nullptr;
    };
    /// A sample stands for the time since the previous one, up to this long; a first sample
    /// or one after a longer pause for nominalTickMs.
    static constexpr qint64 maxTickMs = 5000;
    static constexpr qint64 nominalTickMs = 1000;

    explicit CpuHeatMap(QWidget *parent = nullptr);

    /// Shows `rows` over [startMs, endMs], colours scaled 0..topPercent. Repaints.
    void setRows(const QList<Row> &rows, qint64 startMs, qint64 endMs, double topPercent);
    void clear();
    void setTitle(const QString &title);
    QString title() const { return m_title; }

    int rowCount() const { return int(m_rows.size()); }
    double topPercent() const { return m_top; }
    /// Where the cells are drawn, in widget coordinates.
    QRect plotRect() const;
    /// Centre of the cell showing row `row` at time `ms` (for tests and screenshots).
    QPoint cellCenter(int row, qint64 ms) const;
    /// What hovering at `pos` shows ("NAME\nhh:mm:ss: NN.N % CPU"); empty outside the cells.
    QString toolTipAt(const QPoint &pos) const;
    /// The colour of `percent` on the scale (0..topPercent()).
    QColor colorFor(double percent) const;

protected:
    void paintEvent(QPaintEvent *event) override;
    void mouseMoveEvent(QMouseEvent *event) override;
    void leaveEvent(QEvent *event) override;
    void resizeEvent(QResizeEvent *event) override;
    void changeEvent(QEvent *event) override;

private:
    struct Layout {
        QRect title;
        QRect plot;
        QRect scale; ///< the colour strip
        bool names = false;
    };
    Layout layout() const;
    /// Rows of the image: one per worker, at most one per pixel row of the plot.
    int imageRows(const QRect &plot) const;
    /// The busiest reading of row `row` in [t0, t1): its CPU % (NaN: none) and time.
    double valueIn(int row, double t0, double t1, qint64 *sampleMs) const;
    void render(const Layout &layout);

    QList<Row> m_rows;
    qint64 m_startMs = 0;
    qint64 m_endMs = 0;
    double m_top = 100;
    QString m_title;
    QImage m_image;    ///< the cells, m_imageRows x plot width; null when stale
    QList<QRgb> m_lut; ///< 256 colours, 0..m_top
};

} // namespace corral
