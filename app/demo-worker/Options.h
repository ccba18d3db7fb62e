#pragma once

#include <optional>
#include <string>
#include <vector>

namespace corral::demo {

/// Command line of corral-demo-worker; see usageText() for what each field steers.
struct Options {
    int port = -1; // --port, else PORT; 0 lets the kernel pick
    std::string bindAddress = "127.0.0.1";
    bool failHealth = false;
    long long readyDelayMs = 0;
    bool neverListen = false;
    long long exitAfterMs = -1; // negative: never
    bool spawnChild = false;
    bool ignoreSigterm = false;
    long long logRateBytesPerSecond = 0;
    std::vector<std::string> printEnvironment;
    bool memorySessions = false; // --sessions memory: a demo.sid cookie known to this process only
    bool help = false;
};

/// Parses argv[1..]; portEnvironment is getenv("PORT") (may be null). On failure returns
/// nullopt and sets error to a one-line message.
std::optional<Options> parseOptions(const std::vector<std::string> &arguments,
                                    const char *portEnvironment, std::string &error);

std::string usageText();

} // namespace corral::demo
