#include "cluster/RemoteSiteControl.h"

#include "affinity/SiteAffinity.h"
#include "ssh/HostConnections.h"
#include "upstreams/RemoteLogs.h"

#include <QCoreApplication>
#include <QThread>

#include <atomic>
#include <memory>

namespace corral {

RemoteSiteControl::RemoteSiteControl(Site site, HostConnections *connections,
                                     RemoteSiteOptions options, QObject *context)
    : SiteControl(site.name)
    , m_site(std::move(site))
    , m_balancerHost(m_site.balancer ? m_site.balancer->host : QString())
    , m_connections(connections)
    , m_options(std::move(options))
    , m_context(context) {}

std::function<void(const RollingStep &)> RemoteSiteControl::steps(const QString &operation) const {
    const auto forward = progressCallback();
    if (!forward) return {};
    QPointer<QObject> context = m_context;
    return [context, forward, operation](const RollingStep &step) {
        QMetaObject::invokeMethod(
            context.data(),
            [context, forward, operation, step] {
                if (context)
                    forward(SiteEvent{operation, step.backend, step.step, step.ok, step.detail});
            },
            Qt::QueuedConnection);
    };
}

void RemoteSiteControl::run(const QString &operation, std::function<SiteOutcome(RemoteSite &)> job,
                            Done done) {
    const QString name = site();
    const RemoteSiteOptions options = m_options;
    const bool started =
        m_connections && m_context &&
        m_connections->run<SiteOutcome>(
            m_balancerHost,
            [name, options, job = std::move(job)](HostSessions &sessions) {
                RemoteSite remote(name, sessions, options);
                return job(remote);
            },
            m_context.data(),
            [done, operation](SiteOutcome outcome) {
                SiteResult result;
                result.error = outcome.error;
                result.summary = outcome.notes.join(QLatin1Char(' '));
                if (result.summary.isEmpty())
                    result.summary =
                        outcome.backend.isEmpty()
                            ? QStringLiteral("%1 of %2 done").arg(operation, outcome.site.name)
                            : QStringLiteral("%1 %2 done").arg(operation, outcome.backend);
                if (done) done(result);
            });
    if (!started && done)
        done(SiteResult{QStringLiteral("%1 %2: the balancer host %3 is not an SSH host of the "
                                       "inventory")
                            .arg(operation, name, m_balancerHost),
                        {}});
}

void RemoteSiteControl::addBackend(const QString &host, Done done) {
    SiteChangeRequest request = m_request;
    request.onStep = steps(QStringLiteral("add-backend"));
    run(
        QStringLiteral("add-backend"),
        [host, request](RemoteSite &remote) {
            const auto onStep = request.onStep;
            return remote.addBackend(
                host,
                [onStep](const ApplyStep &step) {
                    if (onStep) onStep(RollingStep{QString(), step.name, step.ok, step.detail});
                },
                request.healthTimeoutMs);
        },
        std::move(done));
}

void RemoteSiteControl::removeBackend(const QString &backend, Done done) {
    SiteChangeRequest request = m_request;
    request.onStep = steps(QStringLiteral("remove-backend"));
    run(
        QStringLiteral("remove-backend"),
        [backend, request](RemoteSite &remote) { return remote.removeBackend(backend, request); },
        std::move(done));
}

void RemoteSiteControl::restartWorker(const QString &backend, Done done) {
    SiteChangeRequest request = m_request;
    request.onStep = steps(QStringLiteral("restart"));
    run(
        QStringLiteral("restart"),
        [backend, request](RemoteSite &remote) {
            const RollingRestartOutcome restarted = remote.restartWorker(backend, request);
            SiteOutcome outcome;
            outcome.backend = backend;
            outcome.error = restarted.report.error;
            if (!restarted.report.ok() && !restarted.report.backends.isEmpty())
                outcome.error +=
                    QStringLiteral("; afterwards: ") + restarted.report.describeBackends();
            if (restarted.report.ok())
                outcome.notes.append(
                    QStringLiteral("%1 restarted and back in rotation").arg(backend));
            return outcome;
        },
        std::move(done));
}

void RemoteSiteControl::rollingRestart(Done done) {
    RollingRestartRequest request;
    request.drainTimeoutMs = m_request.drainTimeoutMs;
    request.healthTimeoutMs = m_request.healthTimeoutMs;
    request.onStep = steps(QStringLiteral("rolling-restart"));
    // The report is kept for the view (shared: the operation may outlive this control).
    auto report = std::make_shared<RollingRestartReport>();
    std::shared_ptr<RollingRestartReport> kept = m_lastRolling;
    run(
        QStringLiteral("rolling-restart"),
        [request, report](RemoteSite &remote) {
            *report = remote.rollingRestart(request).report;
            SiteOutcome outcome;
            outcome.error = report->error;
            if (report->ok())
                outcome.notes.append(
                    QStringLiteral("%1 backend(s) restarted").arg(report->restarted.size()));
            return outcome;
        },
        [done, report, kept](const SiteResult &result) {
            *kept = *report;
            if (done) done(result);
        });
}

void RemoteSiteControl::scaleTo(int workers, const QStringList &hosts, Done done) {
    SiteChangeRequest request = m_request;
    request.onStep = steps(QStringLiteral("scale"));
    run(
        QStringLiteral("scale"),
        [workers, hosts, request](RemoteSite &remote) {
            return remote.scaleTo(workers, hosts, request);
        },
        std::move(done));
}

void RemoteSiteControl::stop(Done done) {
    SiteChangeRequest request = m_request;
    request.onStep = steps(QStringLiteral("stop"));
    run(
        QStringLiteral("stop"), [request](RemoteSite &remote) { return remote.stop(request); },
        std::move(done));
}

void RemoteSiteControl::start(Done done) {
    SiteChangeRequest request = m_request;
    request.onStep = steps(QStringLiteral("start"));
    run(
        QStringLiteral("start"), [request](RemoteSite &remote) { return remote.start(request); },
        std::move(done));
}

void RemoteSiteControl::logs(const QString &backend, int lines,
                             std::function<void(const LogTail &)> done) {
    QString host = m_balancerHost; // the balancer's own error log
    if (backend != RemoteLogs::BalancerName) {
        auto runsOn = RemoteSite::workerHostOf(
            m_site, backend, m_connections ? m_connections->hosts() : QList<Host>());
        if (!runsOn) {
            if (done) done(LogTail{{}, {}, runsOn.error()});
            return;
        }
        host = runsOn.value();
    }
    const QString name = site();
    const RemoteSiteOptions options = m_options;
    const bool started =
        m_connections && m_context &&
        m_connections->run<LogTail>(
            host,
            [name, backend, host, lines, options](HostSessions &sessions) {
                LogTail tail;
                tail.title = QStringLiteral("%1 · %2 on %3").arg(name, backend, host);
                LogRequest request;
                request.only = backend;
                request.lines = lines;
                request.onLine = [&tail](const QString &, const QByteArray &line) {
                    tail.lines.append(QString::fromUtf8(line));
                };
                request.onUnreadable = [&tail](const QString &, const QString &error) {
                    tail.error = error;
                };
                if (auto read = RemoteSite(name, sessions, options).logs(request); !read)
                    tail.error = read.error();
                return tail;
            },
            m_context.data(),
            [done](LogTail tail) {
                if (done) done(tail);
            });
    if (!started && done)
        done(LogTail{
            {}, {}, QStringLiteral("host %1 is not an SSH host of the inventory").arg(host)});
}

void RemoteSiteControl::checkAffinity(const QStringList &paths,
                                      std::function<void(const AffinityReport &)> done) {
    const Site site = m_site;
    if (!m_connections || !m_context || !m_connections->host(m_balancerHost)) {
        AffinityReport report;
        report.site = site.name;
        report.policy = policyName(site.policy);
        report.error = QStringLiteral("the balancer host %1 is not an SSH host of the inventory")
                           .arg(m_balancerHost);
        if (done) done(report);
        return;
    }
    // Tens of curl runs, each up to its timeout, and logins to the workers' hosts: not on the
    // balancer host's SshHost thread, whose monitor ticks and fleet polls would wait behind
    // them (the host shown unreachable), but on a thread with sessions of its own, opened
    // as the CLI opens them (the console's secrets and known hosts: opener()).
    auto report = std::make_shared<AffinityReport>();
    // Quitting mid-check: the requests not yet made are not made and a GET under way ends at
    // once (a POST within its deadline); the application waits about one request's timeout
    // for the thread, as for a local site's check.
    auto quitting = std::make_shared<std::atomic<bool>>(false);
    QThread *thread =
        QThread::create([site, paths, report, quitting, hosts = m_connections->hosts(),
                         open = m_connections->opener()] {
            HostSessions sessions(hosts, open);
            *report = checkProductionAffinity(site, sessions, paths, quitting.get());
        });
    thread->setObjectName(QStringLiteral("affinity-check"));
    // The QThread object lives on the calling thread: finished() reaches it there; `done` only
    // while the caller's context is alive.
    QObject::connect(thread, &QThread::finished, thread, &QObject::deleteLater);
    QObject::connect(thread, &QThread::finished, m_context.data(), [report, done] {
        if (done) done(*report);
    });
    if (QCoreApplication *application = QCoreApplication::instance())
        QObject::connect(application, &QCoreApplication::aboutToQuit, thread, [thread, quitting] {
            quitting->store(true);
            thread->wait(QDeadlineTimer(AffinityTarget{}.timeoutMs + 1000));
        });
    thread->start();
}

} // namespace corral
