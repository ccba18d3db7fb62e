#pragma once

#include "agent/AgentProtocol.h"
#include "supervisor/WorkerProcess.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QObject>
#include <QTimer>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>

namespace corral {
class LocalCluster;
class MetricsCollector;
} // namespace corral

namespace corral::agent {

/// Every local site the agent owns: a LocalCluster per running site, its state, its last ten
/// minutes of snapshots, and the list of sites persisted to the state file so that the next
/// agent brings back those that were running (on the same ports).
///
/// Long operations (start, stop, restart, scale) finish through their `Done` callback once
/// what they promise holds (every worker running, every worker stopped, ...) or with an error
/// that names the worker and its last lines.
class AgentSites : public QObject {
    Q_OBJECT
public:
    using Done = std::function<void(Result<QJsonObject>)>;
    static constexpr int HistoryTicks = 600; ///< ten minutes at the default tick

    AgentSites(SupervisionPolicy policy, QString stateFile, QObject *parent = nullptr);
    ~AgentSites() override;

    /// Starts the sites the state file lists as running; a site that cannot start is failed
    /// with the reason (e.g. the program holding its listen address).
    void restore();

    /// Timeouts a start request may set for its site (0: the agent's default).
    struct Timeouts {
        int startMs = 0;
        int killMs = 0;
    };
    void start(const Site &site, bool ephemeral, Done done) { start(site, ephemeral, {}, done); }
    void start(const Site &site, bool ephemeral, Timeouts timeouts, Done done);
    void stop(const QString &name, Done done);
    /// Rolling restart through the site's proxy, or one worker (drained first) with `port`.
    void restart(const QString &name, std::optional<quint16> port, Done done);
    void scale(const QString &name, int workers, Done done);
    /// Drains the worker on `port` at the proxy, stops it and removes it from the site.
    void removeWorker(const QString &name, quint16 port, Done done);
    Result<void> setPolicy(const QString &name, BalancingPolicy policy);
    Result<void> setBackendEnabled(const QString &name, quint16 port, bool enabled);
    /// Removes a stopped or failed site from the list.
    Result<void> forget(const QString &name);
    /// Every site (or one); an unknown name gives an empty list.
    QList<SiteStatus> status(const QString &name = QString()) const;
    bool contains(const QString &name) const { return m_sites.contains(name); }
    Result<QJsonArray> history(const QString &name) const;
    /// Stops every running site (the state file keeps them as running, so the next agent
    /// brings them back), then calls `done`.
    void stopAll(std::function<void()> done);

    /// Whether anyone listens to event(): without subscribers nothing is serialised (an idle
    /// agent with many sites does no JSON work per tick).
    void setSubscribed(bool subscribed) { m_subscribed = subscribed; }

    /// Sets the tick interval of every site (tests and benchmarks); default 1000 ms.
    void setTickInterval(int ms);

Q_SIGNALS:
    /// One event line, already encoded, for every subscriber (one serialisation per event).
    void event(const QByteArray &line);

private:
    struct Entry;
    struct Waiter {
        QString site;
        /// Returns the outcome once the operation has finished; nullopt while it has not.
        std::function<std::optional<Result<QJsonObject>>()> check;
        Done done;
    };

    Entry *find(const QString &name);
    const Entry *find(const QString &name) const;
    void launch(Entry &entry, Done done);
    void wait(const QString &site, std::function<std::optional<Result<QJsonObject>>()> check,
              Done done);
    void settleWaiters();
    SiteStatus statusOf(const Entry &entry) const;
    QString failureOf(const Entry &entry, quint16 port, const QString &cause) const;
    void publishSites();
    void persist();

    void tick();

    SupervisionPolicy m_policy;
    QString m_stateFile;
    /// One collector and one tick for every site: one scan of /proc per tick, not one per site.
    std::unique_ptr<MetricsCollector> m_metrics;
    QTimer m_tickTimer;
    std::map<QString, std::unique_ptr<Entry>> m_sites;
    std::list<Waiter> m_waiters;
    bool m_stoppingAll = false;
    bool m_subscribed = false;
    bool m_settling = false;
};

} // namespace corral::agent
