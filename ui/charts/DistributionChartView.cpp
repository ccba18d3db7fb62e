#include "charts/DistributionChartView.h"

#include "charts/ChartStyle.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QCursor>
#include <QEvent>
#include <QLegend>
#include <QToolTip>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace corral {

DistributionChartView::DistributionChartView(QWidget *parent)
    // The chart goes to the constructor: setChart() would release (and leak) the default one.
    : QChartView(new QChart, parent)
    , m_chart(chart()) {
    setObjectName(QStringLiteral("distributionChart"));
    m_chart->setTitle(tr("Request distribution (req/s per backend)"));
    m_chart->legend()->setVisible(false); // one set: the title says what the bars are
    m_chart->setMargins(QMargins(4, 4, 4, 4));

    m_set = new QBarSet(tr("req/s"));
    m_series = new QBarSeries;
    m_series->append(m_set);
    m_series->setBarWidth(0.7);
    m_series->setLabelsPosition(QAbstractBarSeries::LabelsOutsideEnd);
    m_series->setLabelsFormat(QStringLiteral("@value"));
    m_chart->addSeries(m_series);

    m_axisX = new QBarCategoryAxis;
    m_axisY = new QValueAxis;
    m_axisY->setLabelFormat(QStringLiteral("%g"));
    m_axisY->setTickCount(5);
    m_axisY->setRange(0, 1);
    m_chart->addAxis(m_axisX, Qt::AlignBottom);
    m_chart->addAxis(m_axisY, Qt::AlignLeft);
    m_series->attachAxis(m_axisX);
    m_series->attachAxis(m_axisY);
    ChartStyle::configureView(this);

    connect(m_set, &QBarSet::hovered, this, &DistributionChartView::showToolTip);
    applyStyle();
}

DistributionChartView::~DistributionChartView() = default;

void DistributionChartView::updateSnapshot(const ClusterSnapshot &snapshot) {
    QList<quint16> ports;
    QStringList names; // the port, or HOST:PORT for backends on other machines
    QList<double> values;
    QList<double> totals;
    double sumRate = 0;
    double sumTotal = 0;
    for (const WorkerRow &row : snapshot.workers) {
        if (!row.inProxy) continue;
        ports.append(row.port);
        // Remote backends by the inventory host's name ("web1:3001") when known: an address
        // is longer and says less (and "127.0.0.1" is every host's loopback).
        names.append(row.host == QLatin1String("local") ? QString::number(row.port)
                     : row.hostName.isEmpty()
                         ? Endpoint{row.host, row.port}.toString()
                         : row.hostName + QLatin1Char(':') + QString::number(row.port));
        values.append(std::max(0.0, row.requestsPerSecond));
        totals.append(double(row.requestsTotal));
        sumRate += values.last();
        sumTotal += totals.last();
    }

    // Under the bars, HOST:PORT only when the backends are on several machines: one host's
    // backends are told apart by port, and a long address would not fit under a bar.
    QStringList shortNames = names;
    const bool oneHost =
        std::all_of(snapshot.workers.cbegin(), snapshot.workers.cend(), [&](const WorkerRow &row) {
            return !row.inProxy || (row.host == snapshot.workers.first().host &&
                                    row.hostName == snapshot.workers.first().hostName);
        });
    if (oneHost) {
        for (qsizetype i = 0; i < ports.size(); ++i)
            shortNames[i] = QString::number(ports[i]);
    }

    m_basis = sumRate > 0    ? ShareBasis::RequestsPerSecond
              : sumTotal > 0 ? ShareBasis::RequestsTotal
                             : ShareBasis::None;
    const QList<double> &basisValues = m_basis == ShareBasis::RequestsTotal ? totals : values;
    const double basisSum = m_basis == ShareBasis::RequestsTotal ? sumTotal : sumRate;
    QList<double> shares(ports.size(), 0.0);
    QStringList labels;
    labels.reserve(ports.size());
    for (qsizetype i = 0; i < ports.size(); ++i) {
        if (m_basis != ShareBasis::None) shares[i] = 100.0 * basisValues[i] / basisSum;
        labels.append(QStringLiteral("%1\n%2 %").arg(shortNames[i]).arg(shares[i], 0, 'f', 0));
    }

    // Touch the bar set only where it changed: every call repaints the bars.
    if (m_set->count() != values.size()) {
        m_set->remove(0, m_set->count());
        m_set->append(values);
    } else {
        for (qsizetype i = 0; i < values.size(); ++i) {
            if (m_values[i] != values[i]) m_set->replace(int(i), values[i]);
        }
    }
    // Above maxCategoryLabels the labels are hidden; the axis then gets port-only categories,
    // which do not change with the shares, so it is not laid out again every tick.
    const bool showLabels = ports.size() <= maxCategoryLabels;
    QStringList categories;
    if (showLabels) {
        // Axis labels are rendered as rich text, where "\n" would collapse to a space.
        categories.reserve(labels.size());
        for (const QString &label : std::as_const(labels))
            categories.append(QString(label).replace(QLatin1Char('\n'), QStringLiteral("<br>")));
    } else {
        categories = shortNames;
    }
    if (categories != m_categories) {
        // setCategories re-lays out the whole axis; for the same backends only texts change.
        // (Same backends only: categories start with the name, so a replace never collides.)
        if (names == m_names && categories.size() == m_categories.size()) {
            for (qsizetype i = 0; i < categories.size(); ++i) {
                if (categories[i] != m_categories[i])
                    m_axisX->replace(m_categories[i], categories[i]);
            }
        } else if (categories.isEmpty()) {
            m_axisX->clear();
        } else {
            m_axisX->setCategories(categories);
        }
    }

    const double maxValue =
        values.isEmpty() ? 0 : *std::max_element(values.cbegin(), values.cend());
    // Headroom above the tallest bar for its value label.
    m_axisY->setRange(0, ChartStyle::niceCeiling(maxValue * 1.15));
    // Labels are printed with %g and this many significant digits: as many as the integer
    // part of the rounded-up maximum has, so no bar's value rounds up into an exponent
    // (99.7 with two digits would show "1e+02"); one more when the rates are small.
    const double ceiling = std::ceil(maxValue);
    const int digits = ceiling >= 1 ? int(std::floor(std::log10(ceiling))) + 1 : 1;
    m_series->setLabelsPrecision(maxValue < 10 ? digits + 1 : digits);
    m_series->setLabelsVisible(ports.size() <= maxValueLabels);
    m_axisX->setLabelsVisible(showLabels);
    // Short axis title (charts are narrow); the basis of the shares goes to the tooltip.
    m_axisY->setTitleText(tr("req/s"));
    setToolTip(m_basis == ShareBasis::RequestsTotal
                   ? tr("Idle: shares of all requests so far")
                   : tr("Shares of the requests of the last second"));

    m_ports = std::move(ports);
    m_names = std::move(names);
    m_totals = std::move(totals);
    m_values = std::move(values);
    m_shares = std::move(shares);
    m_labels = std::move(labels);
    m_categories = std::move(categories);
}

void DistributionChartView::clear() {
    m_set->remove(0, m_set->count());
    m_axisX->clear();
    m_axisY->setRange(0, 1);
    m_ports.clear();
    m_names.clear();
    m_totals.clear();
    m_values.clear();
    m_shares.clear();
    m_labels.clear();
    m_categories.clear();
    m_basis = ShareBasis::None;
}

double DistributionChartView::barValue(int index) const {
    return index >= 0 && index < m_set->count() ? m_set->at(index) : 0.0;
}

QString DistributionChartView::categoryLabel(int index) const {
    return m_labels.value(index);
}

double DistributionChartView::share(int index) const {
    return m_shares.value(index);
}

void DistributionChartView::changeEvent(QEvent *event) {
    QChartView::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::FontChange ||
        event->type() == QEvent::StyleChange)
        applyStyle();
}

void DistributionChartView::applyStyle() {
    ChartStyle::apply(m_chart, this);
    // The platform's accent colour for the bars, the text colour for the labels above them.
    const QColor bar = palette().color(QPalette::Highlight);
    m_set->setColor(bar);
    m_set->setBorderColor(bar.darker(120));
    m_set->setLabelColor(palette().color(QPalette::WindowText));
    QFont labelFont = font();
    m_set->setLabelFont(labelFont);
}

void DistributionChartView::showToolTip(bool status, int index) {
    if (!status || index < 0 || index >= m_ports.size()) {
        QToolTip::hideText();
        return;
    }
    const QString basis = m_basis == ShareBasis::RequestsTotal
                              ? tr("of all requests (idle)")
                              : tr("of requests in the last second");
    QToolTip::showText(QCursor::pos(),
                       tr("%1\n%2 req/s\n%3 % %4")
                           .arg(m_names[index])
                           .arg(m_values[index], 0, 'f', 1)
                           .arg(m_shares[index], 0, 'f', 1)
                           .arg(basis),
                       this);
}

} // namespace corral
