#include "cli/DevCaNotice.h"

#include "cli/Context.h"

namespace corral::cli {

void printDevCaNotice(const Context &context, const Site &site) {
    // Until the development CA is part of core, the proxy reports a missing certificate
    // itself when it starts; there is nothing to print here yet.
    (void)context;
    (void)site;
}

} // namespace corral::cli
