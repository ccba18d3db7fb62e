#pragma once

#include "cli/Ctl.h"
#include "cli/Options.h"
#include "inventory/Inventory.h"

#include <QTextStream>

#include <functional>
#include <memory>

namespace corral {
class SshSession;
}

namespace corral::cli {

/// What every command gets: the global options and the output streams.
struct Context {
    QString inventoryPath; ///< resolved (flag, environment or default)
    bool json = false;
    QTextStream &out;
    QTextStream &err;

    /// Prints "corralctl: MESSAGE" on stderr and returns `code`.
    int error(const QString &message, int code = Failure) const;
    int usageError(const QString &message, const QString &usage) const;
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

/// A connected session to inventory host `hostName`, with the same credential (keychain,
/// prompt) and host-key handling as `corralctl host test` (core/cli/HostCommands.cpp).
/// Errors name the host.
Result<std::unique_ptr<SshSession>> openHostSession(Context &context, const Inventory &inventory,
                                                    const QString &hostName, bool acceptNew);

} // namespace corral::cli
