#pragma once

#include "cluster/RemoteSite.h"
#include "cluster/SiteControl.h"

#include <QPointer>

#include <memory>

namespace corral {

class HostConnections;

/// SiteControl for a production site: each operation is the RemoteSite operation of the same
/// name (the one corralctl runs), on the thread of the balancer host's SshHost, over the
/// console's kept session there (other hosts' sessions opened for the operation). Steps and
/// the result come back on the thread of `context`; nothing is delivered once it is gone.
class RemoteSiteControl : public SiteControl {
public:
    RemoteSiteControl(Site site, HostConnections *connections, RemoteSiteOptions options,
                      QObject *context);

    void addBackend(const QString &host, Done done) override;
    void removeBackend(const QString &backend, Done done) override;
    void restartWorker(const QString &backend, Done done) override;
    void rollingRestart(Done done) override;
    void scaleTo(int workers, const QStringList &hosts, Done done) override;
    void stop(Done done) override;
    void start(Done done) override;
    /// Read on the worker's host over that host's kept session (no new login per read).
    void logs(const QString &backend, int lines,
              std::function<void(const LogTail &tail)> done) override;
    /// curl on each worker's host and on the balancer host (checkProductionAffinity()), run
    /// on a thread of its own with sessions of its own (never blocking the hosts' kept
    /// sessions); `done` on the context's thread, not at all once the context is gone. Its
    /// fixes include applying the balancer config.
    void checkAffinity(const QStringList &paths,
                       std::function<void(const AffinityReport &report)> done) override;

    /// Drain and health timeouts, force and the maintenance page of the next operations.
    SiteChangeRequest &changeRequest() { return m_request; }
    /// The per-backend report of the last rolling restart (for a view that lists them).
    const RollingRestartReport &lastRollingReport() const { return *m_lastRolling; }

private:
    /// Runs `operation` on the balancer host's thread and turns its outcome into one result.
    void run(const QString &operation, std::function<SiteOutcome(RemoteSite &)> job, Done done);
    /// The progress callback of a request, queued to the context's thread.
    std::function<void(const RollingStep &)> steps(const QString &operation) const;

    Site m_site;
    QString m_balancerHost;
    QPointer<HostConnections> m_connections;
    RemoteSiteOptions m_options;
    QPointer<QObject> m_context;
    SiteChangeRequest m_request;
    std::shared_ptr<RollingRestartReport> m_lastRolling = std::make_shared<RollingRestartReport>();
};

} // namespace corral
