#pragma once

#include "model/Site.h"
#include "upstreams/RenderOptions.h"
#include "upstreams/Renderers.h"
#include "util/Result.h"

#include <QList>
#include <QString>
#include <QStringList>

#include <functional>

namespace corral {

class SshSession;

/// Where a rendered balancer config goes on a host and how it is validated, reloaded and
/// verified there (the runtime form of Site::balancer).
struct RemoteBalancer {
    RenderFormat format = RenderFormat::Nginx;
    QString configPath;          ///< the site file on the host
    QStringList validateCommand; ///< argv, e.g. {"nginx", "-t"}
    QStringList reloadCommand;   ///< argv, e.g. {"nginx", "-s", "reload"}
    QString probeUrl;            ///< fetched with curl on the host after the reload; empty: none
    QString errorLogPath;        ///< checked for "[emerg]" lines added since the reload
    RenderOptions renderOptions; ///< ports and log locations on that host
    /// Seconds a validate or reload command may run; the host then ends it (timeout(1)).
    int stepTimeoutSeconds = SiteBalancer::DefaultStepTimeout;

    static Result<RemoteBalancer> fromSite(const SiteBalancer &balancer);
};

/// One step of an apply, as reported to the caller while it runs.
struct ApplyStep {
    QString name; ///< render, read, diff, upload, backup, install, validate, reload, verify,
                  ///< rollback
    bool ok = true;
    QString detail; ///< what was done, or why it failed
};

/// What an apply did. `error` is empty on success, else "STEP: reason".
struct ApplyReport {
    QString diff;         ///< unified diff, current file -> new file; empty when identical
    bool changed = false; ///< the rendered file differs from the host's
    bool applied = false; ///< the new file is in place and serving
    bool rolledBack = false;
    QList<ApplyStep> steps;
    QString error;

    bool ok() const { return error.isEmpty(); }
};

/// Applies a balancer config to a host transactionally over an SshSession: render, diff
/// against the host's file, upload to a temporary name next to it, back up the current file
/// (TARGET.corral-bak), move the new one into place, validate, reload, verify. A failing step
/// restores the backup (or removes the new file when there was none) and reloads again, so
/// the previous config keeps serving. Synchronous and blocking: run it on an SshHost thread
/// (SshHost::call) or in a command-line tool. Every remote command is built with
/// shellCommand()/shellQuote().
class ConfigApplier {
public:
    explicit ConfigApplier(SshSession &session);

    /// Called as each step finishes (the CLI prints them as they happen).
    void setStepCallback(std::function<void(const ApplyStep &)> callback) {
        m_onStep = std::move(callback);
    }
    /// Called with the unified diff once it is known, before anything changes on the host.
    void setDiffCallback(std::function<void(const QString &)> callback) {
        m_onDiff = std::move(callback);
    }
    /// How long verify keeps probing before it gives up (nginx reloads asynchronously).
    void setVerifyTimeoutMs(int ms) { m_verifyTimeoutMs = ms; }

    /// Renders `site` for `target` and applies it; with `dryRun` stops after the diff and
    /// changes nothing on the host.
    ApplyReport apply(const Site &site, const RemoteBalancer &target, bool dryRun);
    /// Applies given file content (already rendered, or hand-made in tests).
    ApplyReport applyContent(const QByteArray &content, const RemoteBalancer &target, bool dryRun);

    /// The temporary and backup names used next to `configPath`.
    static QString temporaryPath(const QString &configPath);
    static QString backupPath(const QString &configPath);

private:
    void step(ApplyReport &report, const QString &name, bool ok, const QString &detail);
    Result<QByteArray> run(const QString &command, int timeoutMs = 60000,
                           const QByteArray &input = {});
    Result<void> runArgv(const QString &stepName, const QStringList &argv, int timeoutSeconds);
    Result<void> verify(const RemoteBalancer &target, qint64 errorLogOffset);
    qint64 fileSize(const QString &path);
    void rollBack(ApplyReport &report, const RemoteBalancer &target, bool hadPrevious);

    SshSession &m_session;
    std::function<void(const ApplyStep &)> m_onStep;
    std::function<void(const QString &)> m_onDiff;
    int m_verifyTimeoutMs = 10000;
};

} // namespace corral
