#include "agent/AgentSiteControl.h"

#include "affinity/SiteAffinity.h"
#include "agent/AgentClient.h"
#include "agent/AgentProtocol.h"
#include "cluster/LocalCluster.h"
#include "model/Backend.h"
#include "supervisor/LogReader.h"
#include "supervisor/WorkerProcess.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QFileInfo>
#include <QThread>

#include <atomic>
#include <memory>

namespace corral::agent {

AgentSiteControl::AgentSiteControl(Site site, std::function<AgentClient *()> agent,
                                   std::function<QList<WorkerStatus>()> workers)
    : SiteControl(site.name)
    , m_site(std::move(site))
    , m_agent(std::move(agent))
    , m_workers(std::move(workers)) {}

QList<quint16> AgentSiteControl::ports() const {
    QList<quint16> ports;
    for (const WorkerStatus &worker : m_workers ? m_workers() : QList<WorkerStatus>())
        ports.append(worker.port);
    return ports;
}

void AgentSiteControl::send(const char *op, QJsonObject arguments, const QString &summary,
                            Done done) {
    AgentClient *client = m_agent ? m_agent() : nullptr;
    if (!client) {
        if (done) done(SiteResult{QStringLiteral("the Corral agent cannot be reached"), {}});
        return;
    }
    client->send(QLatin1String(op), std::move(arguments),
                 [done, summary](Result<QJsonObject> reply) {
                     if (done) done(SiteResult{reply ? QString() : reply.error(), summary});
                 });
}

quint16 AgentSiteControl::portOf(const QString &backend) const {
    auto parsed = Backend::parse(backend);
    if (!parsed) return 0;
    return ports().contains(parsed->port) ? parsed->port : 0;
}

void AgentSiteControl::addBackend(const QString &, Done done) {
    const int workers = int(ports().size()) + 1;
    // One more worker: the agent starts it on a free port; it joins once healthy.
    send(op::Scale, {{QStringLiteral("site"), site()}, {QStringLiteral("workers"), workers}},
         QStringLiteral("%1 has %2 worker(s)").arg(site()).arg(workers), std::move(done));
}

void AgentSiteControl::removeBackend(const QString &backend, Done done) {
    const quint16 port = portOf(backend);
    if (!port) {
        if (done)
            done(SiteResult{QStringLiteral("%1 is not a worker of %2").arg(backend, site()), {}});
        return;
    }
    // One worker fewer, that one: drained at the proxy, stopped once its requests finished.
    const int workers = int(ports().size()) - 1;
    send(op::Scale,
         {{QStringLiteral("site"), site()},
          {QStringLiteral("workers"), workers},
          {QStringLiteral("port"), port}},
         QStringLiteral("%1 drained and removed from %2").arg(backend, site()), std::move(done));
}

void AgentSiteControl::restartWorker(const QString &backend, Done done) {
    const quint16 port = portOf(backend);
    if (!port) {
        if (done)
            done(SiteResult{QStringLiteral("%1 is not a worker of %2").arg(backend, site()), {}});
        return;
    }
    send(op::Restart, {{QStringLiteral("site"), site()}, {QStringLiteral("port"), port}},
         QStringLiteral("%1 restarted").arg(backend), std::move(done));
}

void AgentSiteControl::rollingRestart(Done done) {
    send(op::Restart, {{QStringLiteral("site"), site()}},
         QStringLiteral("Rolling restart of %1 done").arg(site()), std::move(done));
}

void AgentSiteControl::scaleTo(int workers, const QStringList &, Done done) {
    send(op::Scale, {{QStringLiteral("site"), site()}, {QStringLiteral("workers"), workers}},
         QStringLiteral("%1 has %2 worker(s)").arg(site()).arg(workers), std::move(done));
}

void AgentSiteControl::stop(Done done) {
    send(op::Stop, {{QStringLiteral("site"), site()}}, QStringLiteral("%1 stopped").arg(site()),
         std::move(done));
}

void AgentSiteControl::start(Done done) {
    send(op::Start,
         {{QStringLiteral("site"), m_site.toJson()}, {QStringLiteral("ephemeral"), false}},
         QStringLiteral("%1 is running").arg(site()), std::move(done));
}

void AgentSiteControl::logs(const QString &backend, int lines,
                            std::function<void(const LogTail &)> done) {
    LogTail tail;
    const QList<WorkerStatus> workers = m_workers ? m_workers() : QList<WorkerStatus>();
    if (backend == AccessLogBackend) {
        // Beside the workers' logs (siteLogDirectory), unless the site names another file.
        const QString directory = workers.isEmpty()
                                      ? siteLogDirectory(QString(), site())
                                      : QFileInfo(workers.first().logPath).absolutePath();
        const QString path = siteAccessLogPath(m_site, directory);
        if (m_site.listen.isEmpty())
            tail.error =
                QStringLiteral("%1 has no proxy (no listen address), so no access log").arg(site());
        else if (path.isEmpty())
            tail.error = m_site.accessLog == Site::AccessLogOff
                             ? QStringLiteral("the access log of %1 is off").arg(site())
                             : QStringLiteral("the access log of %1 goes to the agent's standard "
                                              "output")
                                   .arg(site());
        else {
            tail.title = QStringLiteral("%1 · access log · %2").arg(site(), path);
            const WorkerLogStream log(0, path);
            for (const LogLine &line : log.lastLines(lines))
                tail.lines.append(line.text);
        }
        if (done) done(tail);
        return;
    }
    const quint16 port = portOf(backend);
    QString path;
    for (const WorkerStatus &worker : workers)
        if (worker.port == port) path = worker.logPath;
    if (!port || path.isEmpty()) {
        tail.error = QStringLiteral("%1 is not a worker of %2").arg(backend, site());
    } else {
        // The file the agent's worker writes, read here: the agent and its clients share it.
        tail.title = QStringLiteral("%1 · port %2 · %3").arg(site()).arg(port).arg(path);
        const WorkerLogStream log(port, path);
        for (const LogLine &line : log.lastLines(lines))
            tail.lines.append(line.text);
    }
    if (done) done(tail);
}

void AgentSiteControl::checkAffinity(const QStringList &paths,
                                     std::function<void(const AffinityReport &)> done) {
    QList<quint16> ports;
    QList<quint16> others; // starting, draining...: asked only when fewer than two answer
    for (const WorkerStatus &worker : m_workers ? m_workers() : QList<WorkerStatus>())
        (worker.state == WorkerState::Running ? ports : others).append(worker.port);
    const AffinityTarget target = localAffinityTarget(m_site, ports + others, paths);
    // Blocking requests with timeouts: on a thread of their own, never the caller's (the
    // console's GUI thread). The QThread object lives on the calling thread, so its finished()
    // reaches `done` there.
    auto report = std::make_shared<AffinityReport>();
    // Quitting mid-check: the requests not yet made fail at once, and the one under way ends
    // within its own timeout; the application waits for that much, not for the whole check,
    // so the thread never outlives the statics it uses.
    auto quitting = std::make_shared<std::atomic<bool>>(false);
    const ProbeFetch fetch = [quitting](const ProbeEndpoint &endpoint, const ProbeRequest &request,
                                        int timeoutMs) {
        if (quitting->load()) {
            ProbeResponse stopped;
            stopped.error = QStringLiteral("not asked: the program is quitting");
            return stopped;
        }
        return fetchDirect(endpoint, request, timeoutMs);
    };
    QThread *thread = QThread::create(
        [target, report, fetch] { *report = corral::checkAffinity(target, fetch); });
    thread->setObjectName(QStringLiteral("affinity-check"));
    QObject::connect(thread, &QThread::finished, thread, [thread, report, done] {
        thread->deleteLater();
        if (done) done(*report);
    });
    if (QCoreApplication *application = QCoreApplication::instance())
        QObject::connect(application, &QCoreApplication::aboutToQuit, thread,
                         [thread, quitting, timeout = target.timeoutMs] {
                             quitting->store(true);
                             thread->wait(QDeadlineTimer(timeout + 1000));
                         });
    thread->start();
}

} // namespace corral::agent
