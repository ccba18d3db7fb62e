// Measures the metrics sampler's own cost: starts idle child processes, samples them with
// MetricsCollector at a fixed interval, and prints the CPU it used and the time per tick.
//
//   bench_sampler [--processes N] [--seconds N] [--interval MS]

#include "metrics/MetricsCollector.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QTimer>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

qint64 threadCpuNs() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return qint64(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

qint64 processCpuNs() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto ns = [](const timeval &tv) {
        return qint64(tv.tv_sec) * 1'000'000'000 + qint64(tv.tv_usec) * 1000;
    };
    return ns(usage.ru_utime) + ns(usage.ru_stime);
}

// Children die with us even if the benchmark crashes (PR_SET_PDEATHSIG).
pid_t spawnSleeper(pid_t parent) {
    const pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    execlp("sleep", "sleep", "600", static_cast<char *>(nullptr));
    _exit(127);
}

void killAll(const std::vector<pid_t> &children) {
    for (const pid_t pid : children)
        kill(pid, SIGKILL);
    for (const pid_t pid : children)
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
}

bool readInt(int argc, char **argv, int &i, int &out) {
    if (i + 1 >= argc) return false;
    char *end = nullptr;
    const long value = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || value <= 0 || value > 100000) return false;
    out = int(value);
    return true;
}

} // namespace

int main(int argc, char **argv) {
    int processes = 200;
    int seconds = 30;
    int intervalMs = 1000;
    for (int i = 1; i < argc; ++i) {
        const bool ok =
            (!std::strcmp(argv[i], "--processes") && readInt(argc, argv, i, processes)) ||
            (!std::strcmp(argv[i], "--seconds") && readInt(argc, argv, i, seconds)) ||
            (!std::strcmp(argv[i], "--interval") && readInt(argc, argv, i, intervalMs));
        if (!ok) {
            std::fprintf(stderr, "usage: %s [--processes N] [--seconds N] [--interval MS]\n",
                         argv[0]);
            return 2;
        }
    }

    // Fork before Qt starts any thread.
    std::vector<pid_t> children;
    children.reserve(std::size_t(processes));
    const pid_t self = getpid();
    for (int i = 0; i < processes; ++i) {
        const pid_t pid = spawnSleeper(self);
        if (pid < 0) {
            std::perror("fork");
            killAll(children);
            return 1;
        }
        children.push_back(pid);
    }

    int exitCode = 0;
    {
        QCoreApplication app(argc, argv);
        corral::MetricsCollector collector;
        collector.setInterval(intervalMs);
        for (std::size_t i = 0; i < children.size(); ++i)
            collector.watch(children[i], QStringLiteral("p%1").arg(i));

        int ticks = 0;
        qint64 tickWallNs = 0, tickCpuNs = 0, maxTickNs = 0;
        int alive = 0, totalProcesses = 0;
        QElapsedTimer tickClock;
        const auto tick = [&] {
            tickClock.start();
            const qint64 cpu0 = threadCpuNs();
            collector.sampleNow();
            const qint64 wall = tickClock.nsecsElapsed();
            tickCpuNs += threadCpuNs() - cpu0;
            tickWallNs += wall;
            maxTickNs = std::max(maxTickNs, wall);
            ++ticks;
            alive = int(std::count_if(collector.snapshot().processes.cbegin(),
                                      collector.snapshot().processes.cend(),
                                      [](const corral::ProcessSample &s) { return s.alive; }));
        };

        // Count everything on the machine: the sampler reads every /proc/PID/stat.
        totalProcesses = int(
            QDir(QStringLiteral("/proc")).entryList({QStringLiteral("[0-9]*")}, QDir::Dirs).size());

        QTimer timer;
        timer.setTimerType(Qt::PreciseTimer);
        timer.setInterval(intervalMs);
        QObject::connect(&timer, &QTimer::timeout, tick);
        QElapsedTimer wall;
        const qint64 processCpu0 = processCpuNs();
        wall.start();
        tick();
        timer.start();
        QTimer::singleShot(qint64(seconds) * 1000 - intervalMs / 2, &app, &QCoreApplication::quit);
        app.exec();
        timer.stop();
        const double wallNs = double(wall.nsecsElapsed());
        const double processCpu = double(processCpuNs() - processCpu0);

        const double tickCpuPercent = double(tickCpuNs) * 100.0 / wallNs;
        const double processCpuPercent = processCpu * 100.0 / wallNs;
        std::printf("bench_sampler: %d watched processes (%d alive at the end, %d processes on "
                    "the machine), %d ticks at %d ms over %.1f s\n",
                    processes, alive, totalProcesses, ticks, intervalMs, wallNs / 1e9);
        std::printf("per tick: mean %.3f ms wall, %.3f ms CPU, max %.3f ms wall\n",
                    double(tickWallNs) / ticks / 1e6, double(tickCpuNs) / ticks / 1e6,
                    double(maxTickNs) / 1e6);
        std::printf("sampler CPU: %.3f %% of one core (sampling thread); whole benchmark "
                    "process (getrusage RUSAGE_SELF, incl. event loop): %.3f %%\n",
                    tickCpuPercent, processCpuPercent);
        std::printf("target < 1 %% of one core (whole process): %s\n",
                    processCpuPercent < 1.0 ? "met" : "NOT met");
        if (alive != processes) {
            std::fprintf(stderr, "bench_sampler: expected %d live children, saw %d\n", processes,
                         alive);
            exitCode = 1;
        }
    }
    killAll(children);
    return exitCode;
}
