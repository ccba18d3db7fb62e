#pragma once

#include "cli/Options.h"
#include "model/Site.h"

#include <QStringList>

namespace corral::cli {

/// The embedded proxy's settings on the command line (issue 19), one parser for `corralctl
/// proxy`, `up`, `start` and `site add/update`, onto the Site fields of the same meaning:
///   --static DIR (staticRoot)  --static-follow-symlinks  --cache-control VALUE
///   --gzip | --no-gzip  --access-log FILE|-|off  --tls  --cert FILE --key FILE
///   --redirect-http ADDR:PORT
/// (--host, the names of the dev certificate, is the sites' serverNames: each command reads
/// it where it already did.)
OptionSpec proxySettingOptionSpec();

/// The help lines of those options, indented by two.
QString proxySettingOptionsHelp();

/// What the paths must be: Local for a proxy started here (`proxy`, `up`, `start`): the
/// static directory must exist and be a directory, the certificate and key readable files.
/// Anywhere for a site saved in the inventory, whose paths may be a production host's.
/// Both make relative paths absolute (from the current directory).
enum class ProxyPathCheck { Local, Anywhere };

/// Applies the options given onto `site`, leaving the others alone: --cert or --key imply
/// --tls; --no-tls (site update) turns it off with the certificate and the redirect.
/// Returns every problem, each naming its option; the combination (cert and key together,
/// the redirect needing TLS) is checked on the result.
QStringList applyProxySettingOptions(const ParsedOptions &options, Site &site,
                                     ProxyPathCheck check);

/// The settings for `corralctl site show` and `up`: "static /srv/public (symlinks refused),
/// gzip on, access log /…/access.log, https (dev CA certificate)".
QStringList proxySettingLines(const Site &site);

} // namespace corral::cli
