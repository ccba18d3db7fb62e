#include "cluster/RemoteSite.h"

#include "inventory/Inventory.h"
#include "inventory/OperationJournal.h"
#include "model/FieldText.h"
#include "ssh/HostSessions.h"
#include "ssh/SshSession.h"
#include "ssh/SshTrace.h"
#include "upstreams/RemoteAddBackend.h"
#include "upstreams/RemoteLogs.h"
#include "upstreams/RemoteRemoveBackend.h"
#include "upstreams/RemoteSiteStop.h"
#include "upstreams/SiteLock.h"

#include <QFile>

#include <algorithm>
#include <cstdlib>

namespace corral {

struct RemoteSite::Held {
    QString operation;
    Inventory inventory;
    Site site;
    RemoteBalancer target;
    SshSession *balancer = nullptr;
    std::unique_ptr<SiteLock> lock;
};

RemoteSite::RemoteSite(QString siteName, HostSessions &sessions, RemoteSiteOptions options)
    : m_name(std::move(siteName))
    , m_sessions(sessions)
    , m_options(std::move(options)) {}

RemoteSite::~RemoteSite() = default;

void RemoteSite::note(const QString &line) const {
    if (m_options.onNote) m_options.onNote(line);
}

Result<RemoteBalancer> RemoteSite::targetOf(const Site &site, const QString &operation,
                                            const QString &inventoryPath) {
    if (!site.balancer)
        return fail(QStringLiteral("%1 %2: the site has no \"balancer\" in %3 (host, format, "
                                   "configPath, validate, reload)")
                        .arg(operation, site.name, inventoryPath));
    auto made = RemoteBalancer::forSite(site);
    if (!made) return fail(QStringLiteral("%1 %2: %3").arg(operation, site.name, made.error()));
    return made.value();
}

Result<QString> RemoteSite::workerHostOf(const Site &site, const QString &backend,
                                         const QList<Host> &hosts) {
    auto parsed = Backend::parse(backend);
    if (!parsed) return fail(parsed.error());
    if (!site.balancer) return fail(QStringLiteral("site %1 has no balancer").arg(site.name));
    return workerHostFor(parsed.value(), site.balancer->host, hosts);
}

QString RemoteSite::pendingNote() const {
    const QString path = OperationJournal::pathFor(m_options.inventoryPath, m_name);
    if (!QFile::exists(path)) return {};
    return QStringLiteral(" (site %1 also has an interrupted operation pending in %2: run "
                          "'corralctl reconcile %1' once the host is reachable)")
        .arg(m_name, path);
}

Result<std::unique_ptr<RemoteSite::Held>> RemoteSite::begin(const QString &operation) {
    auto held = std::make_unique<Held>();
    held->operation = operation;
    auto inventory = Inventory::load(m_options.inventoryPath);
    if (!inventory) return fail(inventory.error());
    held->inventory = std::move(inventory).value();
    const Site *site = held->inventory.site(m_name);
    if (!site)
        return fail(
            QStringLiteral("no site named %1 in %2").arg(shown(m_name), m_options.inventoryPath));
    held->site = *site;
    auto target = targetOf(held->site, operation, m_options.inventoryPath);
    if (!target) return fail(target.error());
    held->target = target.value();
    return held;
}

/// Opens the balancer's session and takes the site's lock there, then settles what an
/// interrupted add-backend left (under the lock: nothing else runs on the site meanwhile).
Result<void> RemoteSite::lock(Held &held) {
    const RemoteSiteOptions &options = m_options;
    auto balancer = m_sessions.session(held.site.balancer->host);
    if (!balancer) return fail(balancer.error());
    held.balancer = balancer.value();
    SiteLock::Options lockOptions;
    lockOptions.noWait = options.noWait;
    lockOptions.command = QStringLiteral("%1 %2 %3").arg(options.actor, held.operation, m_name);
    lockOptions.onWaiting = options.onWaiting;
    auto lock =
        SiteLock::acquire(*held.balancer, held.target, held.site.balancer->host, lockOptions);
    if (!lock) return fail(lock.error());
    held.lock = std::move(lock).value();
    return {};
}

Result<void> RemoteSite::reconcilePending(Held &held) {
    const OperationJournal journal(OperationJournal::pathFor(m_options.inventoryPath, m_name));
    auto pending = journal.pending();
    const QString settle =
        QStringLiteral("run 'corralctl reconcile %1' once that is fixed (it adopts or stops the "
                       "worker it records); if you settled it by hand, delete %2")
            .arg(m_name, journal.path());
    if (!pending)
        return fail(QStringLiteral("%1. Nothing else runs on site %2 until this journal is "
                                   "settled: %3")
                        .arg(pending.error(), m_name, settle));
    if (!pending->has_value()) return {};
    const PendingOperation operation = *pending.value();
    const auto refuse = [&](const QString &why) {
        return fail(QStringLiteral("site %1 has an interrupted %2 pending in %3 that could not "
                                   "be reconciled: %4. Nothing else runs on %1 until it is: %5")
                        .arg(m_name, operation.describe(), journal.path(), why, settle));
    };
    if (operation.site != m_name)
        return refuse(QStringLiteral("the journal names site %1").arg(shown(operation.site)));
    note(QStringLiteral("reconciling an interrupted ") + operation.describe());
    auto worker = m_sessions.session(operation.host);
    if (!worker) return refuse(worker.error());
    auto outcome =
        reconcileAddBackend(*worker.value(), *held.balancer, held.site, held.target, operation);
    if (!outcome) return refuse(outcome.error());
    if (outcome->adopted) {
        if (auto stored = held.inventory.updateSite(outcome->site); !stored)
            return refuse(stored.error());
        if (auto saved = held.inventory.save(m_options.inventoryPath); !saved)
            return refuse(QStringLiteral("%1 can be adopted, but the inventory was not saved: %2")
                              .arg(operation.backend().key(), saved.error()));
        held.site = outcome->site;
    }
    if (auto cleared = journal.clear(); !cleared) return refuse(cleared.error());
    note(QStringLiteral("reconciled an interrupted %1 of %2: %3")
             .arg(operation.operation, m_name, outcome->summary));
    return {};
}

SiteOutcome RemoteSite::reconcile() {
    const QString operation = QStringLiteral("reconcile");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    SiteOutcome outcome;
    auto held = begin(operation);
    if (!held) {
        outcome.error = held.error();
        return outcome;
    }
    outcome.site = held.value()->site;
    if (!QFile::exists(OperationJournal::pathFor(m_options.inventoryPath, m_name))) {
        outcome.notes.append(QStringLiteral("nothing pending for ") + m_name);
        return outcome;
    }
    if (auto locked = lock(*held.value()); !locked) {
        outcome.error =
            QStringLiteral("reconcile %1: %2%3").arg(m_name, locked.error(), pendingNote());
        return outcome;
    }
    if (auto settled = reconcilePending(*held.value()); !settled) outcome.error = settled.error();
    outcome.site = held.value()->site;
    return outcome;
}

SiteOutcome RemoteSite::addBackend(const QString &requestedHost,
                                   const std::function<void(const ApplyStep &)> &onStep,
                                   int healthTimeoutMs) {
    const QString operation = QStringLiteral("add-backend");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    SiteOutcome outcome;
    auto begun = begin(operation);
    if (!begun) {
        outcome.error = begun.error();
        return outcome;
    }
    Held &held = *begun.value();
    if (held.site.command.isEmpty()) {
        outcome.error = QStringLiteral("add-backend %1: the site has no command to start workers "
                                       "with")
                            .arg(m_name);
        return outcome;
    }
    const QString balancerHost = held.site.balancer->host;
    const QString workerHost = requestedHost.isEmpty() ? balancerHost : requestedHost;
    const Host *worker = held.inventory.host(workerHost);
    if (!worker) {
        outcome.error = QStringLiteral("add-backend %1: no host named %2 in %3")
                            .arg(m_name, shown(workerHost), m_options.inventoryPath);
        return outcome;
    }
    // On the balancer's own host the balancer reaches the worker on loopback; elsewhere at
    // that host's address.
    const bool sameHost = workerHost == balancerHost;
    const QString address = sameHost ? QStringLiteral("127.0.0.1") : worker->address;
    if (auto locked = lock(held); !locked) {
        outcome.error =
            QStringLiteral("add-backend %1: %2%3").arg(m_name, locked.error(), pendingNote());
        return outcome;
    }
    if (auto settled = reconcilePending(held); !settled) {
        outcome.error = settled.error();
        return outcome;
    }
    auto workerSession = m_sessions.session(workerHost);
    if (!workerSession) {
        outcome.error = QStringLiteral("add-backend %1: %2").arg(m_name, workerSession.error());
        return outcome;
    }
    const OperationJournal journal(OperationJournal::pathFor(m_options.inventoryPath, m_name));
    AddBackendOptions run;
    run.workerHost = workerHost;
    run.healthTimeoutMs = healthTimeoutMs;
    run.onStep = onStep;
    run.journal = &journal;
    run.command = QStringLiteral("%1 add-backend %2").arg(m_options.actor, m_name);
    auto added = addRemoteBackend(*workerSession.value(), *held.balancer, held.site, held.target,
                                  address, run);
    if (!added) {
        const QString later =
            QStringLiteral(". Run 'corralctl reconcile %1' once %2 is reachable (the next "
                           "add-backend, rolling-restart or apply of %1 does it first too)")
                .arg(m_name, workerHost);
        outcome.error = QStringLiteral("add-backend %1 on %2: %3%4")
                            .arg(m_name, workerHost, added.error(),
                                 QFile::exists(journal.path()) ? later : QString());
        return outcome;
    }
    const QString backend = added->backends.last().key();
    outcome.backend = backend;
    // The balancer serves it now; the journal keeps it until the inventory does.
    if (auto pending = journal.pending(); pending && pending->has_value()) {
        PendingOperation saving = *pending.value();
        saving.step = QStringLiteral("save");
        (void)journal.record(saving);
    }
    const auto notSaved = [&](const QString &why) {
        return QStringLiteral("add-backend %1: %2 is serving through the balancer but the "
                              "inventory was not saved: %3. The operation journal %4 records "
                              "it: 'corralctl reconcile %1' (or the next add-backend, "
                              "rolling-restart or apply of %1) adopts it into the inventory")
            .arg(m_name, backend, why, journal.path());
    };
    if (auto stored = held.inventory.updateSite(added.value()); !stored) {
        outcome.error = notSaved(stored.error());
        return outcome;
    }
    if (auto saved = held.inventory.save(m_options.inventoryPath); !saved) {
        outcome.error = notSaved(saved.error());
        return outcome;
    }
    outcome.site = added.value();
    if (auto cleared = journal.clear(); !cleared)
        outcome.notes.append(QStringLiteral("add-backend %1: the inventory was saved, but %2 (the "
                                            "next command finds the backend recorded)")
                                 .arg(m_name, cleared.error()));
    return outcome;
}

SiteApplyOutcome RemoteSite::apply(const ApplyRequest &request) {
    const QString operation = QStringLiteral("apply");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    SiteApplyOutcome outcome;
    auto begun = begin(operation);
    if (!begun) {
        outcome.error = begun.error();
        return outcome;
    }
    Held &held = *begun.value();
    // Before any connection: rendered, an empty list would name workers that do not exist.
    if (auto hasBackends = requireBackends(held.site); !hasBackends) {
        outcome.error = QStringLiteral("apply: ") + hasBackends.error();
        return outcome;
    }
    outcome.where = held.site.balancer->host + QLatin1Char(':') + held.target.configPath;
    if (request.dryRun) { // only reads: no lock
        auto session = m_sessions.session(held.site.balancer->host);
        if (!session) {
            outcome.error = QStringLiteral("apply %1: %2").arg(m_name, session.error());
            return outcome;
        }
        held.balancer = session.value();
    } else {
        if (auto locked = lock(held); !locked) {
            outcome.error = QStringLiteral("apply %1: %2").arg(m_name, locked.error());
            return outcome;
        }
        // An interrupted add-backend is settled first: its backend may belong in this config.
        if (auto settled = reconcilePending(held); !settled) {
            outcome.error = settled.error();
            return outcome;
        }
    }
    ConfigApplier applier(*held.balancer);
    if (request.reviewedDiff) {
        const ApplyReport check = applier.apply(held.site, held.target, true);
        if (!check.ok()) {
            outcome.error = check.error;
            return outcome;
        }
        if (check.diff != *request.reviewedDiff) {
            outcome.report = check;
            outcome.stale = true;
            return outcome;
        }
    }
    if (request.onDiff) applier.setDiffCallback(request.onDiff);
    if (request.onStep) applier.setStepCallback(request.onStep);
    outcome.report = applier.apply(held.site, held.target, request.dryRun);
    return outcome;
}

Result<std::unique_ptr<RemoteSite::Held>> RemoteSite::beginLocked(const QString &operation) {
    auto begun = begin(operation);
    if (!begun) return fail(begun.error());
    if (auto locked = lock(*begun.value()); !locked)
        return fail(
            QStringLiteral("%1 %2: %3%4").arg(operation, m_name, locked.error(), pendingNote()));
    if (auto settled = reconcilePending(*begun.value()); !settled) return fail(settled.error());
    return begun;
}

SiteOutcome RemoteSite::removeBackend(const QString &backendKey, const SiteChangeRequest &request) {
    const QString operation = QStringLiteral("remove-backend");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    SiteOutcome outcome;
    auto backend = Backend::parse(backendKey);
    if (!backend) {
        outcome.error = QStringLiteral("remove-backend %1: %2 is not a backend HOST:PORT: %3")
                            .arg(m_name, shown(backendKey), backend.error());
        return outcome;
    }
    auto begun = beginLocked(operation);
    if (!begun) {
        outcome.error = begun.error();
        return outcome;
    }
    Held &held = *begun.value();
    auto workerHost =
        workerHostFor(backend.value(), held.site.balancer->host, held.inventory.hosts());
    if (!workerHost) {
        outcome.error = QStringLiteral("remove-backend %1: %2").arg(m_name, workerHost.error());
        return outcome;
    }
    auto worker = m_sessions.session(workerHost.value());
    if (!worker) {
        outcome.error = QStringLiteral("remove-backend %1: %2").arg(m_name, worker.error());
        return outcome;
    }
    RemoveBackendOptions remove;
    remove.drainTimeoutMs = request.drainTimeoutMs;
    remove.healthTimeoutMs = request.healthTimeoutMs;
    remove.force = request.force;
    SiteLock *siteLock = held.lock.get();
    remove.lockHeld = [siteLock] { return siteLock->isHeld(); };
    const QString key = backend->key();
    if (request.onStep)
        remove.onStep = [&request, key](const ApplyStep &step) {
            request.onStep(RollingStep{key, step.name, step.ok, step.detail});
        };
    auto removed = removeRemoteBackend(*held.balancer, *worker.value(), held.site, held.target,
                                       backend.value(), remove);
    if (!removed) {
        outcome.error = QStringLiteral("remove-backend %1: %2").arg(m_name, removed.error());
        return outcome;
    }
    outcome.backend = key;
    if (auto stored = held.inventory.updateSite(removed.value()); !stored) {
        outcome.error = QStringLiteral("remove-backend %1: %2 is removed from the balancer and its "
                                       "worker stopped, but the inventory was not updated: %3")
                            .arg(m_name, key, stored.error());
        return outcome;
    }
    if (auto saved = held.inventory.save(m_options.inventoryPath); !saved) {
        outcome.error = QStringLiteral("remove-backend %1: %2 is removed from the balancer and its "
                                       "worker stopped, but %3 was not saved: %4 (remove the "
                                       "backend from it by hand)")
                            .arg(m_name, key, m_options.inventoryPath, saved.error());
        return outcome;
    }
    outcome.site = removed.value();
    return outcome;
}

RollingRestartOutcome RemoteSite::restartWorker(const QString &backendKey,
                                                const SiteChangeRequest &request) {
    const QString operation = QStringLiteral("restart");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    RollingRestartOutcome outcome;
    auto begun = beginLocked(operation);
    if (!begun) {
        outcome.report.error = begun.error();
        return outcome;
    }
    Held &held = *begun.value();
    RemoteRollingRestart restart(*held.balancer,
                                 [this](const QString &host) { return m_sessions.session(host); });
    restart.setOnly(backendKey);
    restart.setForce(request.force);
    restart.setDrainTimeoutMs(request.drainTimeoutMs);
    restart.setHealthTimeoutMs(request.healthTimeoutMs);
    SiteLock *siteLock = held.lock.get();
    restart.setLockCheck([siteLock] { return siteLock->isHeld(); });
    if (request.onStep) restart.setStepCallback(request.onStep);
    outcome.report = restart.run(held.site, held.target, held.inventory.hosts());
    return outcome;
}

SiteOutcome RemoteSite::stop(const SiteChangeRequest &request) {
    return stopOrStart(true, request);
}

SiteOutcome RemoteSite::start(const SiteChangeRequest &request) {
    return stopOrStart(false, request);
}

SiteOutcome RemoteSite::stopOrStart(bool stopping, const SiteChangeRequest &request) {
    const QString operation = stopping ? QStringLiteral("stop") : QStringLiteral("start");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    SiteOutcome outcome;
    auto begun = beginLocked(operation);
    if (!begun) {
        outcome.error = begun.error();
        return outcome;
    }
    Held &held = *begun.value();
    SiteStopOptions options;
    options.healthTimeoutMs = request.healthTimeoutMs;
    options.maintenancePage = request.maintenancePage;
    options.onStep = request.onStep;
    const auto sessions = [this](const QString &host) { return m_sessions.session(host); };
    auto done = stopping ? stopRemoteSite(*held.balancer, sessions, held.site, held.target,
                                          held.inventory.hosts(), options)
                         : startRemoteSite(*held.balancer, sessions, held.site, held.target,
                                           held.inventory.hosts(), options);
    if (!done) {
        outcome.error = QStringLiteral("%1 %2: %3").arg(operation, m_name, done.error());
        return outcome;
    }
    outcome.site = held.site;
    outcome.notes.append(done.value());
    return outcome;
}

namespace {

/// The inventory host running each backend of `site` (workerHostFor()), in the order of its
/// backends; empty for a backend no host claims.
QStringList workerHostsOf(const Site &site, const QList<Host> &hosts) {
    QStringList result;
    for (const Backend &backend : site.backends) {
        auto host = workerHostFor(backend, site.balancer->host, hosts);
        result.append(host ? host.value() : QString());
    }
    return result;
}

/// The worker hosts of `site` a new worker may go to: its `hosts` that are SSH hosts of the
/// inventory, then the hosts running its backends; the balancer's host when there is none.
QStringList siteWorkerHosts(const Site &site, const Inventory &inventory) {
    QStringList candidates;
    for (const QString &name : site.hosts) {
        const Host *host = inventory.host(name);
        if (host && host->kind == Host::Kind::Ssh && !candidates.contains(name))
            candidates.append(name);
    }
    for (const QString &name : workerHostsOf(site, inventory.hosts()))
        if (!name.isEmpty() && !candidates.contains(name)) candidates.append(name);
    if (candidates.isEmpty()) candidates.append(site.balancer->host);
    return candidates;
}

/// The candidate with the fewest of the site's workers (`runningOn`: the host of each); ties
/// go to the first listed.
QString hostWithFewest(const QStringList &candidates, const QStringList &runningOn) {
    QString chosen;
    qsizetype fewest = 0;
    for (const QString &candidate : candidates) {
        const qsizetype count = runningOn.count(candidate);
        if (chosen.isEmpty() || count < fewest) {
            chosen = candidate;
            fewest = count;
        }
    }
    return chosen;
}

/// The index of the backend a scale-down removes next: one that serves nothing first (down,
/// then backup), else one on the host with the most of the site's workers (`runningOn`), the
/// most recently added (the last listed) of those.
qsizetype backendToRemove(const Site &site, const QStringList &runningOn) {
    for (qsizetype i = site.backends.size() - 1; i >= 0; --i)
        if (site.backends.at(i).down) return i;
    for (qsizetype i = site.backends.size() - 1; i >= 0; --i)
        if (site.backends.at(i).backup) return i;
    qsizetype most = 0;
    for (const QString &host : runningOn)
        most = std::max(most, runningOn.count(host));
    for (qsizetype i = site.backends.size() - 1; i >= 0; --i)
        if (runningOn.count(runningOn.at(i)) == most) return i;
    return site.backends.size() - 1;
}

} // namespace

SiteOutcome RemoteSite::scaleTo(int workers, const QStringList &requestedHosts,
                                const SiteChangeRequest &request) {
    SiteOutcome outcome;
    const auto refuse = [&](const QString &why) {
        outcome.error = QStringLiteral("scale %1: %2").arg(m_name, why);
        return outcome;
    };
    if (workers < 0 || workers > Site::MaxWorkers)
        return refuse(QStringLiteral("%1 is not a number of workers in 0..%2")
                          .arg(workers)
                          .arg(Site::MaxWorkers));
    auto inventory = Inventory::load(m_options.inventoryPath);
    if (!inventory) return refuse(inventory.error());
    const Site *site = inventory->site(m_name);
    if (!site)
        return refuse(QStringLiteral("no site of that name in %1").arg(m_options.inventoryPath));
    if (auto target = targetOf(*site, QStringLiteral("scale"), m_options.inventoryPath); !target) {
        outcome.error = target.error();
        return outcome;
    }
    // Checked before anything changes: a typo must not stop the scale halfway.
    QStringList hosts;
    for (const QString &name : requestedHosts) {
        const Host *host = inventory->host(name);
        if (!host)
            return refuse(
                QStringLiteral("no host named %1 in %2").arg(shown(name), m_options.inventoryPath));
        if (host->kind != Host::Kind::Ssh)
            return refuse(QStringLiteral("host %1 is not an SSH host (a production site's "
                                         "workers run on SSH hosts)")
                              .arg(name));
        if (!hosts.contains(name)) hosts.append(name);
    }
    const int from = int(site->backends.size());
    outcome.site = *site;
    if (workers == 0 && from > 0 && !request.force)
        return refuse(QStringLiteral("scaling from %1 to 0 workers leaves the site without a "
                                     "backend (its balancer answers every request with its own "
                                     "502/503); that needs force")
                          .arg(from));
    // Each step is a whole operation (its own lock, journal and inventory save), so a failure
    // leaves every step before it done and saved. The site is read again before each: another
    // operation may have changed it in between.
    int expected = from;
    for (bool first = true;; first = false) {
        if (!first) {
            inventory = Inventory::load(m_options.inventoryPath);
            if (!inventory) return refuse(inventory.error());
            site = inventory->site(m_name);
            if (!site || !site->balancer)
                return refuse(QStringLiteral("the site or its balancer is gone from %1")
                                  .arg(m_options.inventoryPath));
            outcome.site = *site;
        }
        const int now = int(site->backends.size());
        if (now == workers) return outcome;
        const auto stopped = [&](const QString &why) {
            const int changes = std::abs(now - from);
            const QString where =
                changes == 0 ? QStringLiteral("stopped before any change")
                             : QStringLiteral(
                                   "stopped at %1 backend%2 (%3 change%4 done and saved before it)")
                                   .arg(now)
                                   .arg(now == 1 ? QString() : QStringLiteral("s"))
                                   .arg(changes)
                                   .arg(changes == 1 ? QString() : QStringLiteral("s"));
            outcome.error = QStringLiteral("scale %1 from %2 to %3 %4: %5")
                                .arg(m_name)
                                .arg(from)
                                .arg(workers)
                                .arg(where, why);
            return outcome;
        };
        // Another operation changed the site between two steps (or a step did not change
        // the count, which would loop for ever): the target may no longer be what was meant.
        if (now != expected)
            return stopped(QStringLiteral("the inventory has %1 backends where %2 were expected "
                                          "(another operation changed the site meanwhile)")
                               .arg(now)
                               .arg(expected));
        const QStringList runningOn = workerHostsOf(*site, inventory->hosts());
        ScaleChange change;
        change.from = now;
        change.adding = now < workers;
        change.to = change.adding ? now + 1 : now - 1;
        SiteOutcome done;
        if (change.adding) {
            change.host = hostWithFewest(
                hosts.isEmpty() ? siteWorkerHosts(*site, inventory.value()) : hosts, runningOn);
            if (request.onScaleChange) request.onScaleChange(change);
            const auto forward = [&request](const ApplyStep &step) {
                if (request.onStep)
                    request.onStep(RollingStep{QString(), step.name, step.ok, step.detail});
            };
            done = addBackend(change.host, forward, request.healthTimeoutMs);
        } else {
            const qsizetype index = backendToRemove(*site, runningOn);
            change.host = runningOn.at(index);
            change.backend = site->backends.at(index).key();
            if (request.onScaleChange) request.onScaleChange(change);
            done = removeBackend(change.backend, request);
        }
        outcome.notes += done.notes;
        change.done = true;
        change.error = done.error;
        if (change.adding) change.backend = done.backend;
        if (request.onScaleChange) request.onScaleChange(change);
        if (!done.ok()) return stopped(done.error);
        expected = change.to;
    }
}

Result<void> RemoteSite::logs(const LogRequest &request) {
    const QString operation = QStringLiteral("logs");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    auto begun = begin(operation);
    if (!begun) return fail(begun.error());
    const Held &held = *begun.value();
    auto sources = RemoteLogs::sources(held.site, held.inventory.hosts(), request.only,
                                       request.lines, request.follow);
    if (!sources) return fail(sources.error());
    if (request.onSources) {
        QStringList names;
        for (const RemoteLogSource &source : sources.value())
            names.append(source.name);
        request.onSources(names);
    }
    const auto unreadable = [&request](const QString &name, const QString &error) {
        if (request.onUnreadable) request.onUnreadable(name, error);
    };
    // Every host once, before anything is read: an unreachable one is named once and not
    // tried again for its other logs, and any prompt comes before the follow starts.
    QHash<QString, QString> unreachable;
    QList<RemoteLogSource> readable;
    for (const RemoteLogSource &source : sources.value()) {
        if (!unreachable.contains(source.host))
            if (auto session = m_sessions.session(source.host); !session)
                unreachable.insert(source.host, session.error());
        if (unreachable.contains(source.host))
            unreadable(source.name, unreachable.value(source.host));
        else
            readable.append(source);
    }
    const auto sessionFor = [this](const QString &host) { return m_sessions.session(host); };
    const auto onLine = [&request](const QString &name, const QByteArray &line) {
        if (request.onLine) request.onLine(name, line);
    };
    if (request.follow) {
        if (readable.isEmpty()) return {};
        if (request.onFollowing) request.onFollowing();
        static const std::atomic<bool> never{false};
        return RemoteLogs::follow(readable, sessionFor, onLine,
                                  request.cancel ? *request.cancel : never);
    }
    for (const RemoteLogSource &source : std::as_const(readable)) {
        auto shown = RemoteLogs::lastLines(*sessionFor(source.host).value(), source);
        if (!shown) {
            unreadable(source.name, shown.error());
            continue;
        }
        for (const QByteArray &line : shown.value())
            onLine(source.name, line);
    }
    return {};
}

/// rolling-restart with adopt: records the running workers of the site that Corral did not
/// start (after `confirm`), saving the inventory when the site's command was set from them.
static Result<QStringList> adoptForeignWorkers(RemoteRollingRestart &restart, Inventory &inventory,
                                               const QString &inventoryPath, Site &site,
                                               const RollingRestartRequest &request,
                                               const std::function<void(const QString &)> &note) {
    auto checks = restart.preflight(site, inventory.hosts());
    if (!checks) return fail(checks.error() + QStringLiteral(" (nothing was changed)"));
    auto plan = RemoteRollingRestart::planAdoption(site, checks.value());
    if (!plan) return fail(plan.error());
    if (plan->workers.isEmpty()) {
        note(QStringLiteral("nothing to adopt: every backend of %1 runs a worker Corral can "
                            "restart")
                 .arg(site.name));
        return QStringList();
    }
    if (!request.confirmAdoption || !request.confirmAdoption(plan.value()))
        return fail(QStringLiteral("not adopted (nothing was changed)"));
    // The inventory first: a pid file without the command to restart it would leave the
    // worker stopped at the next restart.
    if (plan->siteChanged) {
        if (auto stored = inventory.updateSite(plan->site); !stored) return fail(stored.error());
        if (auto saved = inventory.save(inventoryPath); !saved)
            return fail(saved.error() + QStringLiteral(" (nothing was adopted)"));
        site = plan->site;
    }
    if (auto recorded = restart.adopt(plan.value()); !recorded)
        return fail(QStringLiteral("adopting: ") + recorded.error());
    QStringList adopted;
    for (const WorkerAdoption &worker : std::as_const(plan->workers))
        adopted.append(worker.backend);
    note(QStringLiteral("adopted %1 worker(s)").arg(adopted.size()) +
         (plan->siteChanged
              ? QStringLiteral("; the site's command is saved in %1").arg(inventoryPath)
              : QString()));
    return adopted;
}

RollingRestartOutcome RemoteSite::rollingRestart(const RollingRestartRequest &request) {
    const QString operation = QStringLiteral("rolling-restart");
    const SshTrace::Operation traced(operation + QLatin1Char(' ') + m_name);
    RollingRestartOutcome outcome;
    auto begun = begin(operation);
    if (!begun) {
        outcome.report.error = begun.error();
        return outcome;
    }
    Held &held = *begun.value();
    if (auto locked = lock(held); !locked) {
        outcome.report.error = locked.error() + pendingNote();
        return outcome;
    }
    // An interrupted add-backend is settled first: its worker may be one the inventory does
    // not know.
    if (auto settled = reconcilePending(held); !settled) {
        outcome.report.error = settled.error();
        return outcome;
    }
    const QString balancerHost = held.site.balancer->host;
    RemoteRollingRestart restart(*held.balancer,
                                 [this](const QString &host) { return m_sessions.session(host); });
    restart.setDrainTimeoutMs(request.drainTimeoutMs);
    restart.setHealthTimeoutMs(request.healthTimeoutMs);
    SiteLock *siteLock = held.lock.get();
    restart.setLockCheck([siteLock] { return siteLock->isHeld(); });
    if (request.onStep) restart.setStepCallback(request.onStep);
    if (request.adopt) {
        auto adopted =
            adoptForeignWorkers(restart, held.inventory, m_options.inventoryPath, held.site,
                                request, [this](const QString &line) { note(line); });
        if (!adopted) {
            outcome.report.error = adopted.error();
            return outcome;
        }
        outcome.adopted = adopted.value();
    }
    outcome.report = restart.run(held.site, held.target, held.inventory.hosts());
    return outcome;
}

} // namespace corral
