#pragma once

#include "cli/Options.h"
#include "model/Site.h"
#include "supervisor/WorkerProcess.h"

#include <QStringList>

namespace corral::cli {

/// The options that describe a local site, shared by `corralctl up` (foreground) and
/// `corralctl start` (in the agent), so both read them by the same rules:
///   --demo --workers N|auto --base-port P --listen ADDR:PORT --health PATH --policy P
///   --cwd DIR --env KEY=VALUE... --start-timeout S --kill-timeout S --host NAME...
///   and the proxy's settings (ProxySettingOptions.h)   (and -- COMMAND ARGS)
OptionSpec siteOptionSpec();

/// The help lines of those options (indented by two, for a command's usage text).
QString siteOptionsHelp();

/// auto workers: cores - 1, at least 2.
int autoWorkerCount();

/// True when the options name what to run (--demo or -- COMMAND).
bool givesCommand(const ParsedOptions &options);

/// Applies the parsed options onto `site` (a saved site, or a fresh one named by the caller)
/// and `policy`: --demo sets the demo worker (health /health unless the site has one), a
/// command after "--" replaces the site's. Returns every problem, each naming its option,
/// followed by the site's own checks; empty when the site is valid. Does not check whether
/// the listen address is free.
QStringList applySiteOptions(const ParsedOptions &options, Site &site, SupervisionPolicy &policy);

} // namespace corral::cli
