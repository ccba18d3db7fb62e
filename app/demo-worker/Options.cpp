#include "Options.h"

#include <charconv>

namespace corral::demo {
namespace {

std::optional<long long> parseInteger(const std::string &text, long long min, long long max) {
    long long value = 0;
    const char *end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || value < min || value > max)
        return std::nullopt;
    return value;
}

} // namespace

std::string usageText() {
    return R"(Usage: corral-demo-worker [--port N] [OPTIONS]

A steerable single-process HTTP/1.1 backend (keep-alive, pipelining) for Corral's
supervisor and proxy tests and the demo cluster.

Options:
  --port N             port to listen on (0 = any free port); default: $PORT
  --bind ADDR          address to bind (default 127.0.0.1)
  --fail-health        /health answers 503 from the start
  --ready-delay-ms N   open the port only N ms after start
  --never-listen       never open the port
  --exit-after-ms N    exit with status 7 after N ms
  --spawn-child        fork 'sleep 1000' in this process group at start, print "child pid N"
  --ignore-sigterm     ignore SIGTERM (only SIGKILL stops the worker)
  --log-rate BYTES     write about BYTES bytes per second of log lines to stdout
  --print-env NAME     print NAME=value at start (repeatable)
  --sessions KIND      memory: a GET without a demo.sid cookie this process issued gets
                       "Set-Cookie: demo.sid=<16 hex>" (remembered here only, like
                       express-session's memory store); none: no cookie (the default)
  -h, --help           show this help

Routes:
  GET  /               {"pid":P,"port":N,"requests":COUNT}, with --sessions memory
                       also "session":"new" or "known"
  GET  /health         200 "ok", or 503 when failing
  POST /health/fail    make /health answer 503;  POST /health/ok restores 200
  GET  /work?ms=N      burn N ms of CPU, then answer
  GET  /sleep?ms=N     answer after N ms without blocking other connections
  GET  /bytes?n=N      N bytes of 'x'
  GET  /crash          exit with status 3 at once
  ANY  /echo           echo the request body
  GET  /ws             WebSocket upgrade (101), then echo raw bytes

On start prints "corral-demo-worker pid P listening on ADDR:PORT".
Exit status: 0 on SIGTERM/SIGINT, 1 when the port cannot be opened, 2 on bad arguments,
3 on /crash, 7 after --exit-after-ms.
)";
}

std::optional<Options> parseOptions(const std::vector<std::string> &arguments,
                                    const char *portEnvironment, std::string &error) {
    Options options;
    constexpr long long kMaxMs = 365LL * 24 * 3600 * 1000;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        std::string name = arguments[i];
        std::optional<std::string> inlineValue;
        if (const std::size_t eq = name.find('=');
            name.starts_with("--") && eq != std::string::npos) {
            inlineValue = name.substr(eq + 1);
            name.resize(eq);
        }
        // Returns the option's value (inline or next argument), or sets error.
        const auto value = [&]() -> std::optional<std::string> {
            if (inlineValue) return inlineValue;
            if (i + 1 < arguments.size()) return arguments[++i];
            error = name + " needs a value";
            return std::nullopt;
        };
        const auto integer = [&](long long min, long long max) -> std::optional<long long> {
            const auto text = value();
            if (!text) return std::nullopt;
            const auto number = parseInteger(*text, min, max);
            if (!number)
                error = name + ": '" + *text + "' is not a number in " + std::to_string(min) +
                        ".." + std::to_string(max);
            return number;
        };
        const auto flag = [&]() {
            if (inlineValue) error = name + " takes no value";
            return !inlineValue;
        };

        if (name == "-h" || name == "--help") {
            options.help = true;
        } else if (name == "--port") {
            const auto port = integer(0, 65535);
            if (!port) return std::nullopt;
            options.port = static_cast<int>(*port);
        } else if (name == "--bind") {
            const auto address = value();
            if (!address) return std::nullopt;
            if (address->empty()) {
                error = "--bind needs an address";
                return std::nullopt;
            }
            options.bindAddress = *address;
        } else if (name == "--fail-health") {
            if (!flag()) return std::nullopt;
            options.failHealth = true;
        } else if (name == "--ready-delay-ms") {
            const auto ms = integer(0, kMaxMs);
            if (!ms) return std::nullopt;
            options.readyDelayMs = *ms;
        } else if (name == "--never-listen") {
            if (!flag()) return std::nullopt;
            options.neverListen = true;
        } else if (name == "--exit-after-ms") {
            const auto ms = integer(0, kMaxMs);
            if (!ms) return std::nullopt;
            options.exitAfterMs = *ms;
        } else if (name == "--spawn-child") {
            if (!flag()) return std::nullopt;
            options.spawnChild = true;
        } else if (name == "--ignore-sigterm") {
            if (!flag()) return std::nullopt;
            options.ignoreSigterm = true;
        } else if (name == "--log-rate") {
            const auto rate = integer(0, 1LL << 30);
            if (!rate) return std::nullopt;
            options.logRateBytesPerSecond = *rate;
        } else if (name == "--sessions") {
            const auto kind = value();
            if (!kind) return std::nullopt;
            if (*kind != "memory" && *kind != "none") {
                error = "--sessions: '" + *kind + "' is not memory or none";
                return std::nullopt;
            }
            options.memorySessions = *kind == "memory";
        } else if (name == "--print-env") {
            const auto variable = value();
            if (!variable) return std::nullopt;
            options.printEnvironment.push_back(*variable);
        } else {
            error = "unknown argument '" + arguments[i] + "'";
            return std::nullopt;
        }
    }
    if (options.help) return options;
    if (options.port < 0) {
        if (portEnvironment == nullptr || *portEnvironment == '\0') {
            error = "no port: pass --port N or set PORT";
            return std::nullopt;
        }
        const auto port = parseInteger(portEnvironment, 0, 65535);
        if (!port) {
            error = std::string("PORT='") + portEnvironment + "' is not a port (0..65535)";
            return std::nullopt;
        }
        options.port = static_cast<int>(*port);
    }
    return options;
}

} // namespace corral::demo
