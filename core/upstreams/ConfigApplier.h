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
struct ExecResult;

/// Where a rendered balancer config goes on a host and how it is validated, reloaded and
/// verified there (the runtime form of Site::balancer).
struct RemoteBalancer {
    RenderFormat format = RenderFormat::Nginx;
    QString configPath;          ///< the site file on the host
    QStringList validateCommand; ///< argv, e.g. {"nginx", "-t"}
    QStringList reloadCommand;   ///< argv, e.g. {"nginx", "-s", "reload"}
    QString probeUrl;            ///< fetched with curl on the host after the reload; empty: none
    /// The virtual host verify asks probeUrl for (the Host header, and the TLS SNI name for an
    /// https URL): the site's server name (probeHostFor()); empty: the URL's own host. Without
    /// it a balancer's default server (a stock nginx's "Welcome" page) answers the probe.
    QString probeHost;
    QString errorLogPath;        ///< checked for "[emerg]" lines added since the reload
    RenderOptions renderOptions; ///< ports and log locations on that host
    QString site;                ///< the site's name (names the default state directory)
    /// Backups, the verified marker and the site lock on the host; empty: the default
    /// (defaultStateDirectory()).
    QString stateDirectory;
    /// Seconds a validate or reload command may run; the host then ends it (timeout(1)).
    int stepTimeoutSeconds = SiteBalancer::DefaultStepTimeout;

    static Result<RemoteBalancer> fromSite(const SiteBalancer &balancer);
    /// fromSite(*site.balancer) with the site's name.
    static Result<RemoteBalancer> forSite(const Site &site);
    /// The name verify sends for `site`: its first server name that is not a wildcard, else
    /// the first one with "*" replaced by "www"; empty when it has none.
    static QString probeHostFor(const Site &site);
    /// /var/lib/corral/NAME, NAME the site (or the config file's name when there is none).
    QString defaultStateDirectory() const;
};

/// Where Corral keeps its own files for a balancer on the host: outside the config's
/// directory, so no include glob of the balancer ever reads them.
struct BalancerStateDirectory {
    QString path;
    QString note; ///< why the default was not used (the fallback was taken); empty otherwise
};

/// Resolves (and with `create`, makes with mkdir -p) the state directory of `target` on the
/// host: the configured one, else /var/lib/corral/SITE, else (not writable by the SSH user)
/// ${XDG_STATE_HOME:-~/.local/state}/corral/balancer/SITE. Without `create` nothing is written:
/// the first of those that exists, else the default.
Result<BalancerStateDirectory> prepareStateDirectory(SshSession &session,
                                                     const RemoteBalancer &target, bool create);

/// One step of an apply, as reported to the caller while it runs.
struct ApplyStep {
    QString name; ///< render, read, diff, converge, upload, backup, install, validate, reload,
                  ///< verify, marker, rollback
    bool ok = true;
    QString detail; ///< what was done, or why it failed
};

/// How an apply ended, i.e. what is known to be true on the host afterwards.
enum class ApplyOutcome {
    DryRun,           ///< nothing was written
    Unchanged,        ///< the installed file is this content and was verified live before
    Applied,          ///< this content is installed, was validated, reloaded and verified
    Failed,           ///< a step failed before anything was installed: nothing changed
    NotLive,          ///< the installed file (already this content) failed validate, reload
                      ///< or verify; there is no older verified file to go back to
    RolledBack,       ///< a step after install failed; the previous file was restored (or
                      ///< the new one removed) and the balancer reloaded
    RollbackFailed,   ///< a step after install failed and so did the rollback
    HostStateUnknown, ///< the connection was lost after install began: the installed file and
                      ///< the running config cannot be known from here
};

/// "dry-run", "unchanged", "applied", "failed", "not-live", "rolled-back", "rollback-failed",
/// "host-state-unknown" (corralctl apply --json).
QString applyOutcomeName(ApplyOutcome outcome);

/// What an apply did. `error` is empty on success, else "STEP: reason" (plus the rollback's).
struct ApplyReport {
    ApplyOutcome outcome = ApplyOutcome::Failed;
    QString diff;              ///< unified diff, current file -> new file; empty when identical
    bool changed = false;      ///< the rendered file differs from the host's
    bool verifiedLive = false; ///< before this apply, the installed file was verified live
    bool converged = false;    ///< the installed file was already this content but had never
                               ///< been verified live: validated, reloaded and verified now
    bool applied = false;      ///< the new file is in place and serving (outcome Applied)
    bool rolledBack = false;   ///< outcome RolledBack
    QString configPath;        ///< the file on the host
    QString stateDirectory;    ///< where backups and the marker live on the host
    QString backupPath;        ///< this apply's backup of the previous file; empty: none
    QString failedStep;        ///< the step that failed; empty on success
    QList<ApplyStep> steps;
    QString error;

    bool ok() const { return error.isEmpty(); }
};

/// The one sentence that says how `report` ended and what is now true on `host` for `site`,
/// used by every caller (corralctl apply, add-backend, rolling-restart, the console). For a
/// failure: the error, then whether rollback ran and succeeded, or that the host's state is
/// unknown with the command that finds out (corralctl apply SITE --dry-run).
QString describeApply(const ApplyReport &report, const QString &site, const QString &host);

/// Refuses a production site with no backends, with the commands that add one: rendered,
/// it would balance over 127.0.0.1:basePort... workers that do not run on the balancer host.
Result<void> requireBackends(const Site &site);

/// The curl command line verify runs on the host: the status code of GET `probeUrl`, asking
/// for the virtual host `probeHost` (-H Host for http; for https the URL names the host and
/// --connect-to sends it to the URL's address, so SNI and Host both carry it).
QStringList probeCommand(const QString &probeUrl, const QString &probeHost);

/// What a unified diff changes, for the diff step: "1 line added, 1 removed", or "no change"
/// for an empty diff. Only the lines of hunks count, not the diff's "---"/"+++" headers.
QString describeDiffChanges(const QString &diff);

/// Applies a balancer config to a host transactionally over an SshSession: render, diff
/// against the host's file, upload to a hidden temporary name next to it (unique per
/// operation, matched by no include glob), back the current file up into the state directory
/// (FILE.OPERATION.bak, outside the config's directory), move the new one into place,
/// validate, reload, verify, then record the content's hash as verified live
/// (STATEDIR/FILE.verified). Identical content whose hash was never verified live (an earlier
/// apply lost its connection) is validated, reloaded and verified again rather than called
/// up to date. A step that fails after install restores the backup (or removes the new file
/// when there was none) and reloads again. A lost connection stops the apply: no rollback
/// runs over a new connection (the site lock went with the old one) and the outcome says the
/// host's state is unknown. Synchronous and blocking: run it on an SshHost thread
/// (SshHost::call) or in a command-line tool; serialise with SiteLock. Every remote command
/// is built with shellCommand()/shellQuote().
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

    /// The hidden temporary name next to `configPath` for operation `operation`: starts with
    /// '.' and ends in neither .conf nor .cfg, so nginx's `*`, Apache's `*.conf` and an
    /// HAProxy conf.d never include it.
    static QString temporaryPath(const QString &configPath, const QString &operation);
    /// FILE.OPERATION.bak in `stateDirectory`.
    static QString backupPath(const QString &stateDirectory, const QString &configPath,
                              const QString &operation);
    /// FILE.verified in `stateDirectory`: "SHA256  CONFIGPATH" of the content last verified live.
    static QString markerPath(const QString &stateDirectory, const QString &configPath);
    /// What the marker holds for `content` installed at `configPath`.
    static QByteArray markerText(const QByteArray &content, const QString &configPath);

private:
    void step(ApplyReport &report, const QString &name, bool ok, const QString &detail);
    /// Runs a command; a failed exec, or one that ran over a new connection, marks the
    /// connection as lost for this apply.
    Result<ExecResult> exec(const QString &command, int timeoutMs, const QByteArray &input = {});
    Result<QByteArray> run(const QString &command, int timeoutMs = 60000,
                           const QByteArray &input = {});
    Result<void> runArgv(const QString &stepName, const QStringList &argv, int timeoutSeconds);
    /// Probes until GoodInARow 2xx/3xx answers; a 4xx or 5xx lasting until the deadline
    /// fails. Returns what was checked, for the step's detail.
    Result<QString> verify(const RemoteBalancer &target, qint64 errorLogOffset);
    qint64 fileSize(const QString &path);
    /// Validate, reload, verify, then the marker; on failure sets report.error and
    /// failedStep and returns false (the caller decides about rollback).
    bool makeLive(ApplyReport &report, const RemoteBalancer &target, const QByteArray &content);
    void rollBack(ApplyReport &report, const RemoteBalancer &target, bool hadPrevious);

    SshSession &m_session;
    std::function<void(const ApplyStep &)> m_onStep;
    std::function<void(const QString &)> m_onDiff;
    int m_verifyTimeoutMs = 10000;
    quint64 m_connection = 0; ///< SshSession::connectionNumber() when this apply began
    bool m_lost = false;      ///< the connection died (or was replaced) during this apply
};

} // namespace corral
