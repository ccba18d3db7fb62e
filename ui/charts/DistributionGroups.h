#pragma once

#include "cluster/ClusterSnapshot.h"

#include <QList>
#include <QString>

namespace corral {

/// One bar of the request distribution: a backend, a host's backends together, or the
/// backends left out of a top N ("others").
struct DistributionBar {
    /// The backend's name as the chart shows it ("3001" for a local backend, "web1:3001" with
    /// the inventory host's name, else "ADDRESS:PORT"), the host's name for a host aggregate,
    /// "others" for the rest.
    QString label;
    /// For a host aggregate, the key to drill into it (pass it back to distributionBars());
    /// empty for a backend and for "others".
    QString drillHost;
    double requestsPerSecond = 0;
    quint64 requestsTotal = 0;
    int backends = 1; ///< how many backends the bar stands for
    bool others = false;
    quint16 port = 0; ///< a backend bar's port; 0 for a host aggregate and for "others"
};

/// The host key distributionBars() groups by: the inventory host's name, else the row's
/// address ("local" for this machine's workers).
QString distributionHostKey(const WorkerRow &row);

/// Groups backends into at most `maxBars` bars. Every row given is a backend (callers pass the
/// balancer's backends: WorkerRow::inProxy). Up to `maxBars` backends: one bar per backend, in
/// the rows' order. More: one bar per host (sorted by name, numbers in names compared as
/// numbers) when there are at most `maxBars` hosts, else the top `maxBars` - 1 backends by
/// requestsTotal (ties: requests/s, then label) and one "others" bar for the rest.
/// With `drillHost` (a host bar's drillHost) only that host's backends are shown, one bar each,
/// again the top N plus "others" beyond `maxBars`.
/// The bars' requestsTotal and requestsPerSecond sum to those of the rows they stand for, and
/// their `backends` to the number of those rows.
QList<DistributionBar> distributionBars(const QList<WorkerRow> &rows, int maxBars = 16,
                                        const QString &drillHost = {});

} // namespace corral
