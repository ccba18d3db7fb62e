#pragma once

#include "affinity/AffinityCheck.h"

#include <QString>
#include <QStringList>

#include <functional>

namespace corral {

/// One step of a site operation as it happens, from either kind of site.
struct SiteEvent {
    QString operation; ///< "remove-backend", "scale"...
    QString backend;   ///< "ADDRESS:PORT"; empty for steps of the whole site
    QString step;      ///< drain, wait, stop, apply/reload, health...
    bool ok = true;
    QString detail;
};

/// How a site operation ended: one result, whatever ran it.
struct SiteResult {
    QString error;   ///< empty on success; says what failed and what is true now
    QString summary; ///< one sentence on success ("127.0.0.1:3002 removed from shop")
    bool ok() const { return error.isEmpty(); }
};

/// The last lines of one log of a site, as read once (a view reads again to follow it).
/// logs()'s `backend` for the site's access log (its embedded proxy's), not a worker's.
inline const QString AccessLogBackend = QStringLiteral("access-log");

struct LogTail {
    QString title;     ///< which log, where: "shop · 127.0.0.1:3001 on web1"
    QStringList lines; ///< oldest first
    QString error;     ///< why it could not be read; empty when it was
};

/// The operations every site has, whoever runs its workers: a local site through the per-user
/// agent (agent::AgentSiteControl), a production site through its balancer and hosts over SSH
/// (RemoteSiteControl, over RemoteSite). Front ends call these and never know which kind of
/// site they act on. Asynchronous: each reports its steps through onProgress() as they happen
/// and ends in exactly one call of its `done`, on the thread that called it.
/// The snapshot stream (workers, distribution, health) comes with the same split: the
/// agent's events for local sites, RemoteSiteMonitor for production ones, both as
/// ClusterSnapshot. Applying a balancer config is RemoteSite::apply: only a production site
/// has one (a local site's embedded balancer follows its workers by itself).
class SiteControl {
public:
    using Done = std::function<void(const SiteResult &result)>;

    explicit SiteControl(QString site)
        : m_site(std::move(site)) {}
    virtual ~SiteControl() = default;
    SiteControl(const SiteControl &) = delete;
    SiteControl &operator=(const SiteControl &) = delete;

    const QString &site() const { return m_site; }
    /// Steps of the operations started from now on.
    void setProgressCallback(std::function<void(const SiteEvent &)> callback) {
        m_onProgress = std::move(callback);
    }

    /// One more worker (on inventory host `host` for a production site; empty: the default).
    virtual void addBackend(const QString &host, Done done) = 0;
    /// That worker drained, stopped and taken out of the site.
    virtual void removeBackend(const QString &backend, Done done) = 0;
    /// That worker replaced by a new process while the others serve.
    virtual void restartWorker(const QString &backend, Done done) = 0;
    /// Every worker replaced, one at a time, while the others serve.
    virtual void rollingRestart(Done done) = 0;
    /// Grown or shrunk to `workers` (new ones on `hosts` for a production site).
    virtual void scaleTo(int workers, const QStringList &hosts, Done done) = 0;
    virtual void stop(Done done) = 0;
    virtual void start(Done done) = 0;
    /// The last `lines` lines of the log of `backend` ("ADDRESS:PORT"; a production site's
    /// "balancer": its balancer's error log), read where it is kept: the local worker's log
    /// file, or journalctl / the fallback log on the worker's host.
    virtual void logs(const QString &backend, int lines,
                      std::function<void(const LogTail &tail)> done) = 0;
    /// Whether the site's sessions survive requests moving between its workers (issue 22).
    /// Two workers are asked directly (from here for a local site, with curl on their hosts
    /// for a production one) and the balancer for what the policy does; `paths` ("/" when
    /// empty) are the pages whose cookies are looked at. A report that could not be made
    /// says why in its `error`.
    virtual void checkAffinity(const QStringList &paths,
                               std::function<void(const AffinityReport &report)> done) = 0;

protected:
    void progress(const SiteEvent &event) const {
        if (m_onProgress) m_onProgress(event);
    }
    std::function<void(const SiteEvent &)> progressCallback() const { return m_onProgress; }

private:
    QString m_site;
    std::function<void(const SiteEvent &)> m_onProgress;
};

} // namespace corral
