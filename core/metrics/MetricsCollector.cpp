#include "metrics/MetricsCollector.h"

#include <QDateTime>

#include <algorithm>

namespace corral {

MetricsCollector::MetricsCollector(QObject *parent, const QString &procRoot)
    : QObject(parent)
    , m_sampler(procRoot) {
    m_timer.setTimerType(Qt::PreciseTimer); // evenly spaced points; CPU % uses measured time anyway
    m_timer.setInterval(m_intervalMs);
    connect(&m_timer, &QTimer::timeout, this, &MetricsCollector::sampleNow);
    m_clock.start();
    updateCapacity();
}

MetricsCollector::~MetricsCollector() = default;

bool MetricsCollector::watch(qint64 pid, const QString &key) {
    const bool alive = m_sampler.watch(key, pid);
    RingBuffer<ProcessPoint> &history = m_history[key];
    history = RingBuffer<ProcessPoint>(m_capacity);
    return alive;
}

void MetricsCollector::unwatch(const QString &key) {
    m_sampler.unwatch(key);
    m_history.remove(key);
    m_snapshot.processes.removeIf([&](const ProcessSample &s) { return s.key == key; });
}

void MetricsCollector::setInterval(int ms) {
    m_intervalMs = std::max(ms, 10);
    m_timer.setInterval(m_intervalMs);
    updateCapacity();
}

void MetricsCollector::setHistoryDuration(int ms) {
    m_historyMs = std::max(ms, 0);
    updateCapacity();
}

void MetricsCollector::updateCapacity() {
    m_capacity = std::size_t(std::max(m_historyMs / m_intervalMs, 1));
    for (auto &history : m_history)
        history.setCapacity(m_capacity);
    m_machineHistory.setCapacity(m_capacity);
}

void MetricsCollector::start() {
    if (m_timer.isActive()) return;
    m_timer.start();
    sampleNow();
}

void MetricsCollector::stop() {
    m_timer.stop();
}

void MetricsCollector::sampleNow() {
    m_snapshot.timestampMs = QDateTime::currentMSecsSinceEpoch();
    m_sampler.sample(m_clock.nsecsElapsed(), m_snapshot.processes, m_snapshot.machine);

    const qint64 t = m_snapshot.timestampMs;
    for (const ProcessSample &s : std::as_const(m_snapshot.processes)) {
        if (!s.alive) continue; // a gone process keeps the history it had; its series just ends
        const auto it = m_history.find(s.key);
        if (it != m_history.end()) it->push(ProcessPoint{t, s.cpuValid, s.cpuPercent, s.rssBytes});
    }
    const MachineSample &m = m_snapshot.machine;
    m_machineHistory.push(
        MachinePoint{t, m.cpuValid, m.cpuBusyPercent, m.memoryUsedBytes, m.load1});
    Q_EMIT sampled(m_snapshot);
}

ProcessHistory MetricsCollector::history(const QString &key) const {
    ProcessHistory out;
    const auto it = m_history.constFind(key);
    if (it == m_history.constEnd()) return out;
    out.cpuPercent.reserve(qsizetype(it->size()));
    out.rssBytes.reserve(qsizetype(it->size()));
    it->forEach([&](const ProcessPoint &p) {
        const double x = double(p.timestampMs);
        if (p.cpuValid) out.cpuPercent.append(QPointF(x, p.cpuPercent));
        out.rssBytes.append(QPointF(x, double(p.rssBytes)));
    });
    return out;
}

MachineHistory MetricsCollector::machineHistory() const {
    MachineHistory out;
    const auto n = qsizetype(m_machineHistory.size());
    out.cpuBusyPercent.reserve(n);
    out.memoryUsedBytes.reserve(n);
    out.load1.reserve(n);
    m_machineHistory.forEach([&](const MachinePoint &p) {
        const double x = double(p.timestampMs);
        if (p.cpuValid) out.cpuBusyPercent.append(QPointF(x, p.cpuBusyPercent));
        out.memoryUsedBytes.append(QPointF(x, double(p.memoryUsedBytes)));
        out.load1.append(QPointF(x, p.load1));
    });
    return out;
}

} // namespace corral
