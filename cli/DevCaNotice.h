#pragma once

#include "model/Site.h"

namespace corral::cli {

struct Context;

/// For a site served over HTTPS with a certificate from Corral's development CA: makes sure
/// the CA and the site's certificate exist before the proxy starts, and prints how to trust
/// the CA (certutil, update-ca-certificates) the one time the CA is created. Nothing for a
/// site without TLS or with its own certificate. Shared by `corralctl proxy`, `up`, `start`.
void printDevCaNotice(const Context &context, const Site &site);

} // namespace corral::cli
