#pragma once

#include "metrics/MetricsSnapshot.h"
#include "metrics/ProcessSampler.h"
#include "metrics/RingBuffer.h"

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QPointF>
#include <QTimer>

namespace corral {

/// History of one watched process tree while it was alive. x = wall clock in ms since the
/// epoch (what QDateTimeAxis expects), oldest first.
struct ProcessHistory {
    QList<QPointF> cpuPercent; ///< only ticks with a valid CPU reading
    QList<QPointF> rssBytes;
};

/// History of the machine totals; x as in ProcessHistory.
struct MachineHistory {
    QList<QPointF> cpuBusyPercent;
    QList<QPointF> memoryUsedBytes;
    QList<QPointF> load1;
};

/// Samples watched process trees and the machine on a timer, keeps a fixed-size history
/// per series and emits one snapshot per tick. Lives on the thread that drives its timer.
class MetricsCollector : public QObject {
    Q_OBJECT
public:
    static constexpr int defaultIntervalMs = 1000;
    static constexpr int defaultHistoryMs = 10 * 60 * 1000;

    /// `procRoot` is for tests; production code keeps "/proc".
    explicit MetricsCollector(QObject *parent = nullptr,
                              const QString &procRoot = QStringLiteral("/proc"));
    ~MetricsCollector() override;

    /// Samples the process tree rooted at `pid` under `key` from the next tick on (replacing
    /// an earlier watch of `key` and its history). Returns false when `pid` does not exist;
    /// the key is then reported as gone.
    bool watch(qint64 pid, const QString &key);
    /// Stops sampling `key` and drops its history.
    void unwatch(const QString &key);
    QStringList keys() const { return m_sampler.keys(); }

    /// Tick interval (default 1000 ms, at least 10 ms). History capacity becomes
    /// historyDuration / interval; existing history keeps its newest points.
    void setInterval(int ms);
    int interval() const { return m_intervalMs; }
    /// How far back the history reaches (default 10 minutes).
    void setHistoryDuration(int ms);
    int historyDuration() const { return m_historyMs; }
    /// Points kept per series: historyDuration / interval.
    int historyCapacity() const { return int(m_capacity); }

    /// Starts ticking; the first tick happens at once.
    void start();
    void stop();
    bool isActive() const { return m_timer.isActive(); }

    /// The most recent snapshot (empty before the first tick).
    const MetricsSnapshot &snapshot() const { return m_snapshot; }
    /// Copies of the ring buffers; empty for an unknown key.
    ProcessHistory history(const QString &key) const;
    MachineHistory machineHistory() const;

public Q_SLOTS:
    /// Samples now, outside the timer, and emits sampled().
    void sampleNow();

Q_SIGNALS:
    /// Once per tick, after the history has been updated.
    void sampled(const corral::MetricsSnapshot &snapshot);

private:
    struct ProcessPoint {
        qint64 timestampMs = 0;
        bool cpuValid = false;
        double cpuPercent = 0;
        qint64 rssBytes = 0;
    };
    struct MachinePoint {
        qint64 timestampMs = 0;
        bool cpuValid = false;
        double cpuBusyPercent = 0;
        qint64 memoryUsedBytes = 0;
        double load1 = 0;
    };

    void updateCapacity();

    ProcessSampler m_sampler;
    QTimer m_timer;
    QElapsedTimer m_clock;
    int m_intervalMs = defaultIntervalMs;
    int m_historyMs = defaultHistoryMs;
    std::size_t m_capacity = 0;
    MetricsSnapshot m_snapshot;
    QHash<QString, RingBuffer<ProcessPoint>> m_history;
    RingBuffer<MachinePoint> m_machineHistory;
};

} // namespace corral
