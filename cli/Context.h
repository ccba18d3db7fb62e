#pragma once

#include "cli/Ctl.h"
#include "cli/Options.h"
#include "inventory/Inventory.h"

#include <QTextStream>

#include <functional>
#include <memory>

namespace corral {
class HostSessions;
struct RemoteSiteOptions;
class SiteLock;
class SshSession;
struct RemoteBalancer;
} // namespace corral

namespace corral::cli {

/// What every command gets: the global options and the output streams.
///
/// Exit codes (documented in 'corralctl help'): a command line that cannot be understood
/// (unknown command or option, missing argument or option value, options that exclude each
/// other) is a usage error, exit 2, printed as one line with a pointer to the command's help;
/// a value that was understood but is invalid (a bad port, name, backend...) is exit 1, like
/// any failure, and every such problem is reported in the same run.
struct Context {
    QString inventoryPath; ///< resolved (flag, environment or default)
    bool json = false;
    QTextStream &out;
    QTextStream &err;
    QString command; ///< the command being run ("site"), for usage errors; empty before

    /// Prints "corralctl: MESSAGE" on stderr and returns `code`.
    int error(const QString &message, int code = Failure) const;
    /// Prints every problem as its own "corralctl: PREFIXPROBLEM" line and returns Failure (1).
    int errors(const QStringList &problems, const QString &prefix = QString()) const;
    /// Prints "corralctl: COMMAND: MESSAGE (see 'corralctl help COMMAND')" on one line and
    /// returns UsageError (2). "COMMAND: " is not repeated when MESSAGE starts with it.
    /// `usage` is not printed (kept for callers that still pass their usage text).
    int usageError(const QString &message, const QString &usage = QString()) const;
    Result<Inventory> loadInventory() const { return Inventory::load(inventoryPath); }
};

struct Command {
    QString name;
    QString summary;
    QString usage; ///< full help text
    std::function<int(Context &, const QStringList &)> run;
};

/// Commands live in their own files and register here.
QList<Command> siteCommands();
QList<Command> proxyCommands();
QList<Command> upCommands();
QList<Command> hostCommands();
QList<Command> renderCommands();
QList<Command> applyCommands();
QList<Command> backendCommands();
/// remove-backend: the lifecycle of production sites (ProductionCommands.cpp).
QList<Command> productionCommands();
/// For `command` (restart, stop, start, scale) with `args` naming a site that has a balancer in the
/// inventory: runs the production form (restart only with --worker HOST:PORT) and returns
/// true with its exit code in `code`; false leaves it to the local (agent) command.
bool runProductionCommand(Context &context, const QString &command, const QStringList &args,
                          int &code);
/// The paragraph `corralctl help COMMAND` adds for the production form of restart, stop,
/// start and scale; empty for other commands.
QString productionUsage(const QString &command);
/// start, stop, restart, scale, ps, logs, agent: local sites in the per-user agent.
QList<Command> agentCommands();
/// check: whether a site's sessions survive moving between workers (issue 22).
QList<Command> checkCommands();

/// True when standard input and standard error are terminals: a question can be asked.
bool interactive();
/// Asks QUESTION [y/N] on stderr and reads the answer from stdin: true for y or yes.
bool confirm(Context &context, const QString &question);

/// A connected session to inventory host `hostName`, with the same credential (keychain,
/// prompt) and host-key handling as `corralctl host test` (core/cli/HostCommands.cpp).
/// Errors name the host.
Result<std::unique_ptr<SshSession>> openHostSession(Context &context, const Inventory &inventory,
                                                    const QString &hostName, bool acceptNew);

/// Opens the sessions of an operation (core/ssh/HostSessions.h) like openHostSession().
std::function<Result<std::unique_ptr<SshSession>>(const Host &)>
sessionOpener(Context &context, const Inventory &inventory, bool acceptNew);
/// How corralctl runs an operation on a production site (core/cluster/RemoteSite.h): waiting
/// for the site's lock is said on stderr, progress notes go to stdout (stderr with --json).
RemoteSiteOptions remoteSiteOptions(Context &context, const QString &command, const QString &site,
                                    bool noWait);

/// Takes the site's lock (upstreams/SiteLock.h, local and on the balancer host over
/// `session`) for "corralctl COMMAND SITE": says on stderr that it waits while another
/// operation holds it, or with `noWait` fails at once naming the holder. Held until the
/// returned object is destroyed (before `session`).
Result<std::unique_ptr<SiteLock>> lockSite(Context &context, SshSession &session,
                                           const RemoteBalancer &target, const QString &hostName,
                                           const QString &command, bool noWait);

/// Settles a pending operation of site `site` recorded in its journal (an add-backend whose
/// worker is not in the inventory: core/upstreams/RemoteAddBackend.h reconcileAddBackend)
/// before a new operation on it, printing what it did and saving `inventory` when a backend
/// was adopted. False, with the error printed and `code` set, when it cannot: the operation
/// must not run then. Defined in BackendCommands.cpp.
bool reconcilePending(Context &context, Inventory &inventory, const QString &site, bool acceptNew,
                      int &code);

} // namespace corral::cli
