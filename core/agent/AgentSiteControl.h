#pragma once

#include "agent/AgentProtocol.h"
#include "cluster/SiteControl.h"
#include "model/Site.h"

#include <QJsonObject>
#include <QList>

#include <functional>

namespace corral::agent {

class AgentClient;

/// SiteControl for a local site: each operation is one request to the per-user agent, which
/// owns the site (its workers, embedded proxy and supervision), exactly what `corralctl
/// start|stop|restart|scale` send. The agent drains before it stops a worker and restarts
/// one at a time; its steps arrive as the agent's events, not as this control's progress.
class AgentSiteControl : public SiteControl {
public:
    /// `site` as saved (start sends it); `agent` gives the connected client (the console
    /// reconnects when the agent restarts); `workers` the site's workers as last known (port,
    /// log file).
    AgentSiteControl(Site site, std::function<AgentClient *()> agent,
                     std::function<QList<WorkerStatus>()> workers);

    void addBackend(const QString &host, Done done) override;
    void removeBackend(const QString &backend, Done done) override;
    void restartWorker(const QString &backend, Done done) override;
    void rollingRestart(Done done) override;
    void scaleTo(int workers, const QStringList &hosts, Done done) override;
    void stop(Done done) override;
    void start(Done done) override;
    void logs(const QString &backend, int lines,
              std::function<void(const LogTail &tail)> done) override;
    /// Asks the workers (127.0.0.1:PORT, running ones first) and the embedded balancer
    /// (`listen`) from this process (localAffinityTarget(), fetchDirect()), on a thread of its
    /// own; `done` comes on the calling thread's event loop.
    void checkAffinity(const QStringList &paths,
                       std::function<void(const AffinityReport &report)> done) override;

private:
    void send(const char *op, QJsonObject arguments, const QString &summary, Done done);
    QList<quint16> ports() const;
    /// The port of a local backend "127.0.0.1:PORT"; 0 when it names none of the site's.
    quint16 portOf(const QString &backend) const;

    Site m_site;
    std::function<AgentClient *()> m_agent;
    std::function<QList<WorkerStatus>()> m_workers;
};

} // namespace corral::agent
