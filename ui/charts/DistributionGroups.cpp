#include "charts/DistributionGroups.h"

#include "charts/ChartStyle.h"
#include "model/Backend.h"

#include <QCoreApplication>

#include <algorithm>
#include <map>

namespace corral {

namespace {

QString backendLabel(const WorkerRow &row) {
    // Remote backends by the inventory host's name ("web1:3001") when known: an address is
    // longer and says less (and "127.0.0.1" is every host's loopback).
    if (row.host == QLatin1String("local")) return QString::number(row.port);
    if (row.hostName.isEmpty()) return Endpoint{row.host, row.port}.toString();
    return row.hostName + QLatin1Char(':') + QString::number(row.port);
}

DistributionBar backendBar(const WorkerRow &row) {
    DistributionBar bar;
    bar.label = backendLabel(row);
    bar.requestsPerSecond = row.requestsPerSecond;
    bar.requestsTotal = row.requestsTotal;
    bar.port = row.port;
    return bar;
}

/// One bar per backend, or beyond `maxBars` the busiest `maxBars` - 1 (by requests served so
/// far: a ranking by the last second's rate would reshuffle every tick) and "others".
QList<DistributionBar> backendBars(const QList<const WorkerRow *> &rows, int maxBars) {
    QList<DistributionBar> bars;
    bars.reserve(std::min<qsizetype>(rows.size(), maxBars));
    if (rows.size() <= maxBars) {
        for (const WorkerRow *row : rows)
            bars.append(backendBar(*row));
        return bars;
    }
    QList<DistributionBar> all;
    all.reserve(rows.size());
    for (const WorkerRow *row : rows)
        all.append(backendBar(*row));
    std::stable_sort(all.begin(), all.end(),
                     [](const DistributionBar &a, const DistributionBar &b) {
                         if (a.requestsTotal != b.requestsTotal)
                             return a.requestsTotal > b.requestsTotal;
                         if (a.requestsPerSecond != b.requestsPerSecond)
                             return a.requestsPerSecond > b.requestsPerSecond;
                         return a.label < b.label;
                     });
    const qsizetype top = std::max(0, maxBars - 1);
    bars = all.first(top);
    DistributionBar others;
    others.label = QCoreApplication::translate("DistributionGroups", "others");
    others.others = true;
    others.backends = 0;
    for (qsizetype i = top; i < all.size(); ++i) {
        others.requestsPerSecond += all[i].requestsPerSecond;
        others.requestsTotal += all[i].requestsTotal;
        ++others.backends;
    }
    bars.append(others);
    return bars;
}

} // namespace

QString distributionHostKey(const WorkerRow &row) {
    return row.hostName.isEmpty() ? row.host : row.hostName;
}

QList<DistributionBar> distributionBars(const QList<WorkerRow> &rows, int maxBars,
                                        const QString &drillHost) {
    maxBars = std::max(1, maxBars);
    QList<const WorkerRow *> backends;
    backends.reserve(rows.size());
    for (const WorkerRow &row : rows) {
        if (drillHost.isEmpty() || distributionHostKey(row) == drillHost) backends.append(&row);
    }
    if (!drillHost.isEmpty() || backends.size() <= maxBars) return backendBars(backends, maxBars);

    // Hosts by name, "web2" before "web10".
    std::map<QString, DistributionBar, bool (*)(const QString &, const QString &)> hosts(
        &ChartStyle::naturalLess);
    for (const WorkerRow *row : std::as_const(backends)) {
        const QString key = distributionHostKey(*row);
        auto [it, inserted] = hosts.try_emplace(key);
        DistributionBar &bar = it->second;
        if (inserted) {
            bar.label = key;
            bar.drillHost = key;
            bar.backends = 0;
        }
        bar.requestsPerSecond += row->requestsPerSecond;
        bar.requestsTotal += row->requestsTotal;
        ++bar.backends;
    }
    if (qsizetype(hosts.size()) > maxBars) return backendBars(backends, maxBars);
    QList<DistributionBar> bars;
    bars.reserve(qsizetype(hosts.size()));
    for (auto &[key, bar] : hosts)
        bars.append(std::move(bar));
    return bars;
}

} // namespace corral
