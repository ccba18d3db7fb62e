#include "supervisor/ProcessGroupReaper.h"

#include "util/AtomicFile.h"
#include "util/Paths.h"

#include <QDir>
#include <QFile>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

namespace corral {

namespace {

constexpr int MaxGroups = 4096;

// Runs in the forked child: only async-signal-safe calls, no allocation.
[[noreturn]] void runSentinel(int readFd) {
    ::setpgid(0, 0); // out of the terminal's foreground group: Ctrl-C is for Corral, not us
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    ::dup2(readFd, 3);
    ::close_range(4, ~0U, 0);
    pid_t groups[MaxGroups];
    int count = 0;
    char buffer[512];
    char line[32];
    int lineLength = 0;
    for (;;) {
        const ssize_t n = ::read(3, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; // Corral is gone
        for (ssize_t i = 0; i < n; ++i) {
            if (buffer[i] != '\n') {
                if (lineLength < int(sizeof line) - 1) line[lineLength++] = buffer[i];
                continue;
            }
            pid_t value = 0;
            for (int j = 1; j < lineLength; ++j)
                value = value * 10 + (line[j] - '0');
            if (lineLength > 1 && value > 1) {
                if (line[0] == '+' && count < MaxGroups) {
                    groups[count++] = value;
                } else if (line[0] == '-') {
                    for (int j = 0; j < count; ++j)
                        if (groups[j] == value) {
                            groups[j] = groups[--count];
                            break;
                        }
                }
            }
            lineLength = 0;
        }
    }
    for (int i = 0; i < count; ++i)
        ::kill(-groups[i], SIGTERM);
    if (count > 0) {
        const timespec grace{0, 500 * 1000 * 1000};
        ::nanosleep(&grace, nullptr);
        for (int i = 0; i < count; ++i)
            ::kill(-groups[i], SIGKILL);
    }
    ::_exit(0);
}

// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. Together with
// the pid it identifies a process; 0 when the process does not exist.
unsigned long long startTime(pid_t pid) {
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly)) return 0;
    const QByteArray text = stat.readAll();
    const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
    return fields.size() > 19 ? fields.at(19).toULongLong() : 0; // fields after comm start at 3
}

} // namespace

int ProcessGroupReaper::reconcileStateFiles(const std::string &directory) {
    int signalled = 0;
    const QDir dir(QString::fromStdString(directory));
    for (const QString &name : dir.entryList({QStringLiteral("*.groups")}, QDir::Files)) {
        QFile file(dir.filePath(name));
        if (!file.open(QIODevice::ReadOnly)) continue;
        const QList<QByteArray> lines = file.readAll().split('\n');
        // First line: the owning Corral's pid and start time.
        const QList<QByteArray> owner = lines.value(0).split(' ');
        const pid_t ownerPid = pid_t(owner.value(0).toInt());
        if (ownerPid <= 0 || startTime(ownerPid) == owner.value(1).toULongLong())
            continue; // still alive (or us): its groups are its own business
        for (qsizetype i = 1; i < lines.size(); ++i) {
            const QList<QByteArray> fields = lines.at(i).split(' ');
            const pid_t group = pid_t(fields.value(0).toInt());
            if (group <= 1) continue;
            const unsigned long long leaderStart = startTime(group);
            // A living leader with another start time means the pid was reused: not ours. A
            // dead leader's pid cannot be reused while its group has members, so those are ours.
            if (leaderStart != 0 && leaderStart != fields.value(1).toULongLong()) continue;
            if (::kill(-group, SIGKILL) == 0) ++signalled;
        }
        file.remove();
    }
    return signalled;
}

void ProcessGroupReaper::record(pid_t processGroup, bool tracked) {
    if (m_stateFile.empty() || processGroup <= 1) return;
    const std::lock_guard lock(m_stateMutex);
    if (tracked)
        m_groups.emplace_back(processGroup, startTime(processGroup));
    else
        std::erase_if(m_groups, [&](const auto &group) { return group.first == processGroup; });
    writeStateFile();
}

void ProcessGroupReaper::writeStateFile() {
    QByteArray text =
        QByteArray::number(::getpid()) + ' ' + QByteArray::number(startTime(::getpid())) + '\n';
    for (const auto &[group, start] : m_groups)
        text += QByteArray::number(group) + ' ' + QByteArray::number(start) + '\n';
    // The sentinel still covers these groups; the file is the fallback if it dies too. Said
    // once per failure streak, not on every worker start.
    const auto written = writeFileAtomically(QString::fromStdString(m_stateFile), text);
    if (!written && !m_stateFileFailing)
        std::fprintf(stderr, "corral: %s (worker process groups are still tracked)\n",
                     qPrintable(written.error()));
    m_stateFileFailing = !written;
}

ProcessGroupReaper &ProcessGroupReaper::instance() {
    static ProcessGroupReaper reaper;
    return reaper;
}

ProcessGroupReaper::ProcessGroupReaper() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        std::perror("corral: cannot create the reaper pipe");
        return;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[1]);
        runSentinel(fds[0]);
    }
    ::close(fds[0]);
    if (pid < 0) {
        std::perror("corral: cannot start the reaper");
        ::close(fds[1]);
        return;
    }
    m_sentinel = pid;
    m_writeFd = fds[1];
    const QString directory = corralStateDirectory() + QStringLiteral("/run");
    if (QDir().mkpath(directory)) {
        const int killed = reconcileStateFiles(directory.toStdString());
        if (killed > 0)
            std::fprintf(stderr,
                         "corral: stopped %d process group(s) left behind by an earlier Corral\n",
                         killed);
        m_stateFile =
            QString(directory + QStringLiteral("/%1.groups").arg(::getpid())).toStdString();
    }
}

ProcessGroupReaper::~ProcessGroupReaper() {
    // Normal exit: workers were stopped already; closing the pipe lets the sentinel exit.
    if (m_writeFd >= 0) ::close(m_writeFd);
    if (!m_stateFile.empty()) ::unlink(m_stateFile.c_str());
    if (m_sentinel > 0) ::waitpid(m_sentinel, nullptr, 0);
}

void ProcessGroupReaper::send(char op, pid_t processGroup) {
    if (m_writeFd < 0 || processGroup <= 1) return;
    char message[24];
    const int length = std::snprintf(message, sizeof message, "%c%d\n", op, int(processGroup));
    // Shorter than PIPE_BUF, so the write is atomic.
    while (::write(m_writeFd, message, size_t(length)) < 0 && errno == EINTR) {
    }
}

void ProcessGroupReaper::track(pid_t processGroup) {
    send('+', processGroup);
    record(processGroup, true);
}
void ProcessGroupReaper::untrack(pid_t processGroup) {
    send('-', processGroup);
    record(processGroup, false);
}

} // namespace corral
