#include "charts/DistributionChartView.h"
#include "../PlainText.h"

#include "charts/ChartStyle.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QCursor>
#include <QEvent>
#include <QLegend>
#include <QToolButton>
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
    m_chart->legend()->setVisible(false);      // one set: the title says what the bars are
    m_chart->setMargins(QMargins(4, 4, 4, 4)); // see placeBackButton()

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
    // Queued: drilling down replaces the bars, and the clicked bar's item is still handling
    // its mouse event.
    connect(
        m_set, &QBarSet::clicked, this,
        [this](int index) {
            const QString host = m_bars.value(index).drillHost;
            if (!host.isEmpty()) drillDown(host);
        },
        Qt::QueuedConnection);

    m_backButton = new QToolButton(this);
    m_backButton->setObjectName(QStringLiteral("distributionBackButton"));
    m_backButton->setText(tr("‹ all hosts"));
    m_backButton->setToolTip(tr("Back to the requests per host"));
    m_backButton->setAutoRaise(true);
    m_backButton->hide();
    connect(m_backButton, &QToolButton::clicked, this, &DistributionChartView::drillUp);
    placeBackButton();
    applyStyle();
}

DistributionChartView::~DistributionChartView() = default;

void DistributionChartView::updateSnapshot(const ClusterSnapshot &snapshot) {
    m_rows.clear();
    for (const WorkerRow &row : snapshot.workers) {
        if (row.inProxy) m_rows.append(row);
    }
    showBars();
}

void DistributionChartView::drillDown(const QString &host) {
    if (host == m_drillHost) return;
    m_drillHost = host;
    showBars();
    Q_EMIT drillHostChanged(m_drillHost);
}

void DistributionChartView::showBars() {
    if (!m_drillHost.isEmpty() &&
        std::none_of(m_rows.cbegin(), m_rows.cend(), [this](const WorkerRow &row) {
            return distributionHostKey(row) == m_drillHost;
        })) {
        // The host left the site (or the site changed): back to every host.
        m_drillHost.clear();
        Q_EMIT drillHostChanged(m_drillHost);
    }
    QList<DistributionBar> bars = distributionBars(m_rows, maxBars, m_drillHost);
    const bool grouped = std::any_of(bars.cbegin(), bars.cend(), [](const DistributionBar &bar) {
        return bar.others || !bar.drillHost.isEmpty();
    });
    Grouping grouping = !grouped ? Grouping::Backends
                        : std::any_of(bars.cbegin(), bars.cend(),
                                      [](const DistributionBar &bar) { return bar.others; })
                            ? Grouping::TopBackends
                            : Grouping::Hosts;
    // Every backend on one host: one host bar would say nothing, show its busiest backends.
    if (grouping == Grouping::Hosts && bars.size() == 1) {
        bars = distributionBars(m_rows, maxBars, bars.first().drillHost);
        grouping = Grouping::TopBackends;
    }

    // The backends the bars stand for: all, or the drilled-into host's.
    int backendCount = 0;
    const WorkerRow *firstShown = nullptr;
    bool oneHost = true;
    for (const WorkerRow &row : std::as_const(m_rows)) {
        if (!m_drillHost.isEmpty() && distributionHostKey(row) != m_drillHost) continue;
        ++backendCount;
        if (!firstShown)
            firstShown = &row;
        else if (row.host != firstShown->host || row.hostName != firstShown->hostName)
            oneHost = false;
    }

    QStringList names; // the port, HOST:PORT for backends on other machines, a host, "others"
    QList<double> rates;
    QList<double> values; // the bars' heights
    QList<double> totals;
    double sumRate = 0;
    double sumTotal = 0;
    for (const DistributionBar &bar : std::as_const(bars)) {
        names.append(bar.label);
        rates.append(std::max(0.0, bar.requestsPerSecond));
        // "others" as the mean of its backends: their sum would dwarf the busiest backends
        // (485 backends beside 15), the mean says whether they get their share. The share
        // under it and the tooltip give the sum.
        values.append(bar.others ? rates.last() / std::max(1, bar.backends) : rates.last());
        totals.append(double(bar.requestsTotal));
        sumRate += rates.last();
        sumTotal += totals.last();
    }

    // Under the bars, HOST:PORT only when the backends are on several machines: one host's
    // backends are told apart by port, and a long address would not fit under a bar.
    QStringList shortNames = names;
    if (oneHost) {
        for (qsizetype i = 0; i < bars.size(); ++i) {
            if (bars[i].port != 0) shortNames[i] = QString::number(bars[i].port);
        }
    }

    // Many bars are narrow: names sharing a prefix (fleet-h01 ... fleet-h10) show what tells
    // them apart (h01 ... h10), which fits under a bar where the whole name was cut to "f...";
    // the tooltip and the drill-down give the full name.
    if (bars.size() > 6) {
        qsizetype common = shortNames.constFirst().size();
        for (const QString &name : std::as_const(shortNames)) {
            qsizetype same = 0;
            while (same < common && same < name.size() && name[same] == shortNames[0][same])
                ++same;
            common = same;
        }
        // Keep at least two characters of every name, and whole words where there are any.
        for (const QString &name : std::as_const(shortNames))
            common = std::min(common, name.size() - 2);
        const qsizetype cut =
            common > 0 ? shortNames.constFirst().lastIndexOf(QLatin1Char('-'), common - 1) : -1;
        if (cut > 0) {
            for (QString &name : shortNames)
                name = name.mid(cut + 1);
        }
    }

    m_basis = sumRate > 0    ? ShareBasis::RequestsPerSecond
              : sumTotal > 0 ? ShareBasis::RequestsTotal
                             : ShareBasis::None;
    const QList<double> &basisValues = m_basis == ShareBasis::RequestsTotal ? totals : rates;
    const double basisSum = m_basis == ShareBasis::RequestsTotal ? sumTotal : sumRate;
    QList<double> shares(bars.size(), 0.0);
    QStringList labels;
    labels.reserve(bars.size());
    for (qsizetype i = 0; i < bars.size(); ++i) {
        if (m_basis != ShareBasis::None) shares[i] = 100.0 * basisValues[i] / basisSum;
        // Under a narrow bar (more than six) the name alone; the share is in the tooltip.
        labels.append(
            bars.size() > 6
                ? shortNames[i]
                : QStringLiteral("%1\n%2 %").arg(shortNames[i]).arg(shares[i], 0, 'f', 0));
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
    // "others" in a muted colour: it is no backend of its own.
    QList<int> othersBars;
    for (qsizetype i = 0; i < bars.size(); ++i) {
        if (bars[i].others) othersBars.append(int(i));
    }
    if (othersBars != m_set->selectedBars()) {
        m_set->deselectAllBars();
        m_set->selectBars(othersBars);
    }
    // Above maxCategoryLabels the labels are hidden; the axis then gets port-only categories,
    // which do not change with the shares, so it is not laid out again every tick.
    const bool showLabels = bars.size() <= maxCategoryLabels;
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
    m_series->setLabelsVisible(bars.size() <= maxValueLabels);
    m_axisX->setLabelsVisible(showLabels);
    // Short axis title (charts are narrow); the basis of the shares goes to the tooltip.
    m_axisY->setTitleText(tr("req/s"));
    setToolTip(m_basis == ShareBasis::RequestsTotal
                   ? tr("Idle: shares of all requests so far")
                   : tr("Shares of the requests of the last second"));

    // The title says what the bars are once they are not one per backend.
    const int shownBackends = int(bars.size()) - int(othersBars.size());
    QString title;
    if (!m_drillHost.isEmpty()) {
        title =
            grouping == Grouping::TopBackends
                ? tr("Request distribution on %1: top %2 of %3 backends + others (mean)")
                      .arg(m_drillHost)
                      .arg(shownBackends)
                      .arg(backendCount)
                : tr("Request distribution on %1: %2 backends").arg(m_drillHost).arg(backendCount);
    } else if (grouping == Grouping::Hosts) {
        title = tr("Request distribution per host: %1 hosts, %2 backends")
                    .arg(bars.size())
                    .arg(backendCount);
    } else if (grouping == Grouping::TopBackends) {
        title = tr("Request distribution: top %1 of %2 backends + others (mean)")
                    .arg(shownBackends)
                    .arg(backendCount);
    } else {
        title = tr("Request distribution (req/s per backend)");
    }
    if (m_chart->title() != title) m_chart->setTitle(title);
    if (m_backButton->isHidden() != m_drillHost.isEmpty()) {
        m_backButton->setVisible(!m_drillHost.isEmpty());
        placeBackButton();
    }

    m_grouping = grouping;
    m_bars = std::move(bars);
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
    m_rows.clear();
    m_bars.clear();
    m_grouping = Grouping::Backends;
    m_chart->setTitle(tr("Request distribution (req/s per backend)"));
    m_backButton->hide();
    placeBackButton();
    if (!m_drillHost.isEmpty()) {
        m_drillHost.clear();
        Q_EMIT drillHostChanged(m_drillHost);
    }
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
    m_set->setSelectedColor(palette().color(QPalette::Mid)); // the "others" bar
    m_set->setLabelColor(palette().color(QPalette::WindowText));
    QFont labelFont = font();
    m_set->setLabelFont(labelFont);
}

QString DistributionChartView::barToolTip(int index) const {
    if (index < 0 || index >= m_bars.size()) return {};
    const DistributionBar &bar = m_bars[index];
    const QString basis = m_basis == ShareBasis::RequestsTotal
                              ? tr("of all requests (idle)")
                              : tr("of requests in the last second");
    QStringList lines;
    lines.append(bar.others                ? tr("others: %1 backends").arg(bar.backends)
                 : bar.drillHost.isEmpty() ? bar.label
                                           : tr("%1 (host)").arg(bar.label));
    lines.append(tr("%1 req/s").arg(std::max(0.0, bar.requestsPerSecond), 0, 'f', 1));
    lines.append(tr("%1 requests in total").arg(bar.requestsTotal));
    if (!bar.drillHost.isEmpty())
        lines.append((bar.backends == 1 ? tr("1 backend") : tr("%1 backends").arg(bar.backends)));
    if (bar.others)
        lines.append(tr("%1 req/s per backend (the bar)").arg(m_values[index], 0, 'f', 1));
    lines.append(tr("%1 % %2").arg(m_shares[index], 0, 'f', 1).arg(basis));
    if (!bar.drillHost.isEmpty()) lines.append(tr("Click to show its backends"));
    return lines.join(QLatin1Char('\n'));
}

void DistributionChartView::showToolTip(bool status, int index) {
    const bool drillable = status && !m_bars.value(index).drillHost.isEmpty();
    if (drillable)
        viewport()->setCursor(Qt::PointingHandCursor);
    else
        viewport()->unsetCursor();
    if (!status || index < 0 || index >= m_bars.size()) {
        QToolTip::hideText();
        return;
    }
    QToolTip::showText(QCursor::pos(), plainToolTip(barToolTip(index)), this);
}

void DistributionChartView::resizeEvent(QResizeEvent *event) {
    QChartView::resizeEvent(event);
    placeBackButton();
}

void DistributionChartView::placeBackButton() {
    m_backButton->adjustSize();
    m_backButton->move(4, 4);
    // The title goes below the button rather than under it.
    const int top = m_backButton->isHidden() ? 4 : m_backButton->height() + 2;
    if (m_chart->margins().top() != top) m_chart->setMargins(QMargins(4, top, 4, 4));
}

} // namespace corral
