// corral-demo-worker: a steerable single-threaded HTTP backend (see Options.cpp usageText()).
#include "Options.h"
#include "Server.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <fcntl.h>
#include <unistd.h>

namespace {

// Starts `sleep 1000` in our process group (the default for fork), so tests can check that
// stopping a worker takes its whole group down. Returns the child's pid, or -1.
pid_t spawnSleepingChild() {
    std::fflush(stdout); // the child must not inherit buffered output
    const pid_t child = fork();
    if (child != 0) return child;
    // The sleeper should die from SIGTERM like any child, whatever the parent does later.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::signal(SIGTERM, SIG_DFL);
    // Off our stdout/stderr pipes, so a missed child cannot keep a supervisor's log open.
    const int devNull = open("/dev/null", O_RDWR);
    if (devNull >= 0) {
        dup2(devNull, STDIN_FILENO);
        dup2(devNull, STDOUT_FILENO);
        dup2(devNull, STDERR_FILENO);
    }
    execlp("sleep", "sleep", "1000", static_cast<char *>(nullptr));
    _exit(127);
}

} // namespace

int main(int argc, char *argv[]) {
    // Line-buffered even into a pipe, so a supervisor sees each line when it is printed.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);

    const std::vector<std::string> arguments(argv + 1, argv + argc);
    std::string error;
    const auto options = corral::demo::parseOptions(arguments, std::getenv("PORT"), error);
    if (!options) {
        std::fprintf(stderr, "corral-demo-worker: %s (see --help)\n", error.c_str());
        return 2;
    }
    if (options->help) {
        std::fputs(corral::demo::usageText().c_str(), stdout);
        return 0;
    }
    const auto address =
        corral::demo::resolveListenAddress(options->bindAddress, options->port, error);
    if (!address) {
        std::fprintf(stderr, "corral-demo-worker: %s\n", error.c_str());
        return 2;
    }

    for (const std::string &name : options->printEnvironment) {
        if (const char *value = std::getenv(name.c_str()))
            std::printf("%s=%s\n", name.c_str(), value);
        else
            std::printf("%s is unset\n", name.c_str());
    }
    if (options->spawnChild) {
        const pid_t child = spawnSleepingChild();
        if (child < 0) {
            std::perror("corral-demo-worker: fork");
            return 1;
        }
        std::signal(SIGCHLD, SIG_IGN); // reap the sleeper automatically if it dies first
        std::printf("child pid %d\n", child);
    }

    corral::demo::Server server(*options, *address);
    const int status = server.run();
    std::fflush(stdout);
    return status;
}
