#pragma once

#include "inventory/OperationJournal.h"
#include "model/Site.h"
#include "upstreams/ConfigApplier.h"
#include "util/Result.h"

#include <functional>

namespace corral {

class SshSession;

/// How a full add-backend runs (what the CLI passes).
struct AddBackendOptions {
    QString workerHost; ///< the inventory name of the worker's host (journal and messages)
    int healthTimeoutMs = 15000;
    /// Sees the worker steps (allocate, start, health) and then the apply's as they finish.
    std::function<void(const ApplyStep &)> onStep;
    /// Written once the port is known and before the worker starts (a failure to write it
    /// stops the run: nothing has changed yet), updated as the steps go on. Cleared again
    /// only when a failure was undone and that was confirmed on a live connection; on success
    /// the caller clears it once the inventory is saved. nullptr: no journal.
    const OperationJournal *journal = nullptr;
    QString command; ///< recorded in the journal, e.g. "corralctl add-backend shop"
};

/// Remote one-click add-backend, end to end: picks a free port on the worker's host, starts a
/// worker there (RemoteWorkers' detached-process fallback), waits until it answers its health
/// path (RemoteWorkers::waitHealthy: curl on that host; but as soon as `ss -ltn` there shows
/// the worker listening only on addresses the balancer cannot use at `backendAddress`, e.g.
/// 127.0.0.1 on another host than the balancer's, it fails at once naming them and the bind
/// option to add to the site's args), adds "backendAddress:PORT" to the
/// site's backends and applies the balancer config (validate, reload, verify, rollback).
/// Returns the site with the new backend (and port) for the caller to save; errors name the
/// step ("allocate: ", "journal: ", "start: ", "health: ", "backend: " or the apply step).
///
/// A failing step is cleaned up on a fresh connection (the one that failed may be dead):
/// the new worker is stopped and the host must confirm it is gone and its pid file removed;
/// after a failed apply the installed balancer config must not list the backend. The error
/// then says "the new worker on port P of HOST (pid N) was stopped and its pid file removed"
/// or, when that cannot be confirmed, that it "could not be stopped" and why (the journal
/// keeps the operation for reconcileAddBackend()).
Result<Site> addRemoteBackend(SshSession &workerSession, SshSession &balancerSession,
                              const Site &site, const RemoteBalancer &target,
                              const QString &backendAddress, const AddBackendOptions &options);

/// The same with an applier bound to the balancer's host (the same session when the worker
/// runs there), without a journal.
Result<Site> addRemoteBackend(SshSession &workerSession, ConfigApplier &applier, const Site &site,
                              const RemoteBalancer &target, const QString &backendAddress,
                              int healthTimeoutMs = 15000);

/// The same with the worker's host and the balancer's host as separate sessions (they may be
/// the same object), without a journal.
Result<Site> addRemoteBackend(SshSession &workerSession, SshSession &balancerSession,
                              const Site &site, const RemoteBalancer &target,
                              const QString &backendAddress, int healthTimeoutMs,
                              const std::function<void(const ApplyStep &)> &onStep);

/// What reconcileAddBackend() did.
struct ReconcileOutcome {
    Site site;            ///< with the backend when adopted; else the site as given
    bool adopted = false; ///< the caller saves `site`, then clears the journal
    QString summary;      ///< "adopted 127.0.0.1:3004 (...)", "stopped the worker on port ..."
};

/// Settles an add-backend that a journal records as pending (interrupted, or its inventory
/// save failed). When its worker is alive on `workerSession`'s host and the balancer's
/// installed config lists the backend, the backend is adopted into `site`. Otherwise the
/// worker is stopped (confirmed gone, pid file removed) and, when the config still lists
/// the backend, the site's config as given is applied again. A site that already has the
/// backend needs nothing. Fails (the journal must stay) when a host cannot be reached or a
/// step cannot be confirmed.
Result<ReconcileOutcome> reconcileAddBackend(SshSession &workerSession, SshSession &balancerSession,
                                             const Site &site, const RemoteBalancer &target,
                                             const PendingOperation &pending);

/// True when the config installed at `target.configPath` names `backend` (as a server, a
/// BalancerMember, ...); false when it does not or the file does not exist.
Result<bool> installedConfigLists(SshSession &balancerSession, const RemoteBalancer &target,
                                  const Backend &backend);
/// The same on a config's text.
bool configTextLists(const QByteArray &config, const Backend &backend);

} // namespace corral
