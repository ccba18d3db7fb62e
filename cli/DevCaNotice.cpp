#include "cli/DevCaNotice.h"

#include "cli/Context.h"
#include "net/DevCertificateAuthority.h"

namespace corral::cli {

void printDevCaNotice(const Context &context, const Site &site) {
    if (!site.tls || !site.tlsCert.isEmpty()) return;
    // The proxy asks the CA for the same names when it starts and gets this certificate
    // from the cache; issued here first only to learn whether the CA is new. A failure is
    // the proxy's to report, with its context.
    auto issued = net::DevCertificateAuthority().certificateFor(site.serverNames);
    if (!issued) return;
    QTextStream &out = context.json ? context.err : context.out; // stdout is JSON then
    if (issued->caCreated)
        out << "corralctl: created a local development CA for HTTPS.\n"
            << net::DevCertificateAuthority::trustInstructions(issued->caFile);
    else
        out << "corralctl: https certificate for " << issued->names.join(QStringLiteral(", "))
            << " from Corral's development CA " << issued->caFile << '\n';
    out.flush();
}

} // namespace corral::cli
