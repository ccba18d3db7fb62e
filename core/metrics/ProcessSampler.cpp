#include "metrics/ProcessSampler.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace corral {

namespace {

// Splits off the next space-separated token of `text`.
std::string_view nextToken(std::string_view &text) {
    const auto begin = text.find_first_not_of(" \t\n");
    if (begin == std::string_view::npos) {
        text = {};
        return {};
    }
    text.remove_prefix(begin);
    const auto end = std::min(text.find_first_of(" \t\n"), text.size());
    const std::string_view token = text.substr(0, end);
    text.remove_prefix(end);
    return token;
}

template <typename T> bool toNumber(std::string_view token, T &out) {
    if (token.empty()) return false;
    const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
    return ec == std::errc() && ptr == token.data() + token.size();
}

// The value of a "Key:   123 kB" line of /proc/meminfo, in bytes.
std::optional<qint64> meminfoValue(std::string_view text, std::string_view key) {
    for (std::size_t pos = 0; pos < text.size();) {
        const auto eol = std::min(text.find('\n', pos), text.size());
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.size() <= key.size() || line.substr(0, key.size()) != key ||
            line[key.size()] != ':')
            continue;
        line.remove_prefix(key.size() + 1);
        qint64 value = 0;
        if (!toNumber(nextToken(line), value)) return std::nullopt;
        return nextToken(line) == "kB" ? value * 1024 : value;
    }
    return std::nullopt;
}

bool isPid(const char *name) {
    if (*name == '\0') return false;
    for (; *name; ++name)
        if (*name < '0' || *name > '9') return false;
    return true;
}

} // namespace

std::optional<ProcStat> parseProcStat(std::string_view text) {
    const auto open = text.find('(');
    const auto close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        return std::nullopt;
    ProcStat stat;
    std::string_view head = text.substr(0, open);
    if (!toNumber(nextToken(head), stat.pid)) return std::nullopt;
    stat.comm = text.substr(open + 1, close - open - 1);

    // Fields 3.. follow the comm; signed parsing because some (tty_nr, nice) can be negative.
    std::string_view rest = text.substr(close + 1);
    const std::string_view state = nextToken(rest);
    if (state.size() != 1) return std::nullopt;
    stat.state = state.front();
    long long fields[25] = {};
    for (int field = 4; field <= 24; ++field)
        if (!toNumber(nextToken(rest), fields[field])) return std::nullopt;
    for (int field : {14, 15, 16, 17, 22, 24})
        if (fields[field] < 0) return std::nullopt;
    stat.ppid = fields[4];
    stat.utime = quint64(fields[14]);
    stat.stime = quint64(fields[15]);
    stat.cutime = quint64(fields[16]);
    stat.cstime = quint64(fields[17]);
    stat.startTime = quint64(fields[22]);
    stat.rssPages = fields[24];
    return stat;
}

std::optional<qint64> parseStatmResidentPages(std::string_view text) {
    qint64 size = 0, resident = 0;
    if (!toNumber(nextToken(text), size) || !toNumber(nextToken(text), resident))
        return std::nullopt;
    return resident;
}

std::optional<CpuTimes> parseCpuTimes(std::string_view procStat) {
    if (nextToken(procStat) != "cpu") return std::nullopt;
    // user nice system idle iowait irq softirq steal; guest time is already part of user.
    quint64 values[8] = {};
    int count = 0;
    for (; count < 8; ++count)
        if (!toNumber(nextToken(procStat), values[count])) break;
    if (count < 4) return std::nullopt;
    CpuTimes times;
    for (int i = 0; i < count; ++i)
        times.total += values[i];
    times.busy = times.total - values[3] - values[4];
    return times;
}

int countCpus(std::string_view procStat) {
    int cpus = 0;
    for (std::size_t pos = 0; pos < procStat.size();) {
        const auto eol = std::min(procStat.find('\n', pos), procStat.size());
        const std::string_view line = procStat.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.size() > 3 && line.substr(0, 3) == "cpu" && line[3] >= '0' && line[3] <= '9')
            ++cpus;
        else if (cpus > 0)
            break; // the cpuN lines are contiguous
    }
    return cpus;
}

std::optional<MemInfo> parseMeminfo(std::string_view text) {
    const auto total = meminfoValue(text, "MemTotal");
    auto available = meminfoValue(text, "MemAvailable");
    if (!available) available = meminfoValue(text, "MemFree");
    if (!total || !available) return std::nullopt;
    return MemInfo{*total, *available};
}

std::optional<LoadAverage> parseLoadavg(std::string_view text) {
    LoadAverage load;
    if (!toNumber(nextToken(text), load.load1) || !toNumber(nextToken(text), load.load5) ||
        !toNumber(nextToken(text), load.load15))
        return std::nullopt;
    return load;
}

// One process seen in this tick's scan.
struct ProcessSampler::Entry {
    qint64 pid = 0;
    qint64 ppid = 0;
    quint64 self = 0;   // utime + stime
    quint64 reaped = 0; // cutime + cstime
    quint64 startTime = 0;
    qint64 rssPages = 0;
};

// A tree member as of the previous tick, to diff CPU times per process.
qint64 treeCpuTicks(const std::vector<TreeMember> &previous, const std::vector<TreeMember> &current,
                    const std::function<bool(const TreeMember &)> &died) {
    const auto find = [](const std::vector<TreeMember> &members, const TreeMember &m) {
        const auto it =
            std::lower_bound(members.begin(), members.end(), m.pid,
                             [](const TreeMember &a, qint64 pid) { return a.pid < pid; });
        return it != members.end() && it->pid == m.pid && it->startTime == m.startTime ? &*it
                                                                                       : nullptr;
    };
    qint64 ticks = 0;
    for (const TreeMember &m : current) {
        if (const TreeMember *before = find(previous, m))
            ticks += qint64(m.self - before->self) + qint64(m.reaped - before->reaped);
        else
            ticks += qint64(m.self + m.reaped); // born since the previous tick
    }
    for (const TreeMember &before : previous)
        if (!find(current, before) && died(before)) ticks -= qint64(before.self + before.reaped);
    return ticks;
}

struct ProcessSampler::Watch {
    QString key;
    qint64 pid = 0;
    quint64 startTime = 0;
    bool alive = false;
    bool havePrevious = false;
    std::vector<TreeMember> previous; // sorted by pid
    std::vector<TreeMember> current;
};

ProcessSampler::ProcessSampler(const QString &procRoot)
    : m_root(procRoot.toLocal8Bit()) {
    while (m_root.size() > 1 && m_root.endsWith('/'))
        m_root.chop(1);
    if (const long ticks = sysconf(_SC_CLK_TCK); ticks > 0) m_ticksPerSecond = ticks;
    if (const long page = sysconf(_SC_PAGESIZE); page > 0) m_pageSize = page;
    m_buffer.resize(4096);
}

ProcessSampler::~ProcessSampler() {
    if (m_rootFd >= 0) ::close(m_rootFd);
}

bool ProcessSampler::watch(const QString &key, qint64 pid) {
    const auto stat = pid > 0 ? readStat(pid) : std::nullopt;
    auto it = std::find_if(m_watches.begin(), m_watches.end(),
                           [&](const Watch &watch) { return watch.key == key; });
    if (it == m_watches.end()) {
        m_watches.emplace_back();
        it = m_watches.end() - 1;
    }
    Watch &watch = *it;
    watch.key = key;
    watch.pid = pid;
    watch.startTime = stat ? stat->startTime : 0;
    watch.alive = stat.has_value();
    watch.havePrevious = false;
    watch.previous.clear();
    return watch.alive;
}

void ProcessSampler::unwatch(const QString &key) {
    std::erase_if(m_watches, [&](const Watch &watch) { return watch.key == key; });
}

bool ProcessSampler::isWatching(const QString &key) const {
    return std::any_of(m_watches.begin(), m_watches.end(),
                       [&](const Watch &watch) { return watch.key == key; });
}

QStringList ProcessSampler::keys() const {
    QStringList keys;
    keys.reserve(qsizetype(m_watches.size()));
    for (const Watch &watch : m_watches)
        keys.append(watch.key);
    return keys;
}

qsizetype ProcessSampler::readFile(const char *relative) {
    // The root stays open so each file costs one openat() without re-walking the prefix.
    if (m_rootFd < 0) m_rootFd = ::open(m_root.constData(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (m_rootFd < 0) return -1;
    // Plain openat/read into a reused buffer: QFile costs several allocations per file.
    const int fd = ::openat(m_rootFd, relative, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    std::size_t length = 0;
    for (;;) {
        if (length == m_buffer.size())
            m_buffer.resize(m_buffer.size() * 2); // only /proc/stat on big machines
        const std::size_t room = m_buffer.size() - length;
        const ssize_t n = ::read(fd, m_buffer.data() + length, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::close(fd);
            return -1;
        }
        length += std::size_t(n);
        // proc files come in one read when they fit; a short read is the end, which saves
        // the extra read() that would return 0.
        if (std::size_t(n) < room) break;
    }
    ::close(fd);
    return qsizetype(length);
}

std::optional<ProcStat> ProcessSampler::readStat(qint64 pid) {
    char relative[32];
    std::snprintf(relative, sizeof relative, "%lld/stat", static_cast<long long>(pid));
    const qsizetype length = readFile(relative);
    if (length <= 0) return std::nullopt;
    return parseProcStat(std::string_view(m_buffer.data(), std::size_t(length)));
}

void ProcessSampler::scanProcesses() {
    m_entries.clear();
    DIR *dir = ::opendir(m_root.constData());
    if (!dir) return;
    char relative[300];
    while (const dirent *ent = ::readdir(dir)) {
        if (!isPid(ent->d_name)) continue;
        const int n = std::snprintf(relative, sizeof relative, "%s/stat", ent->d_name);
        if (n <= 0 || std::size_t(n) >= sizeof relative) continue;
        const qsizetype length = readFile(relative);
        if (length <= 0) continue; // exited since readdir, or not readable
        const auto stat = parseProcStat(std::string_view(m_buffer.data(), std::size_t(length)));
        if (!stat) continue;
        m_entries.push_back(Entry{stat->pid, stat->ppid, stat->utime + stat->stime,
                                  stat->cutime + stat->cstime, stat->startTime, stat->rssPages});
    }
    ::closedir(dir);

    const auto byPid = [](const Entry &a, const Entry &b) { return a.pid < b.pid; };
    if (!std::is_sorted(m_entries.begin(), m_entries.end(), byPid)) // /proc is usually in order
        std::sort(m_entries.begin(), m_entries.end(), byPid);
    m_byParent.clear();
    for (std::size_t i = 0; i < m_entries.size(); ++i)
        m_byParent.emplace_back(m_entries[i].ppid, int(i));
    std::sort(m_byParent.begin(), m_byParent.end());
}

const ProcessSampler::Entry *ProcessSampler::findEntry(qint64 pid) const {
    const auto it = std::lower_bound(m_entries.begin(), m_entries.end(), pid,
                                     [](const Entry &e, qint64 p) { return e.pid < p; });
    return it != m_entries.end() && it->pid == pid ? &*it : nullptr;
}

void ProcessSampler::sample(qint64 monotonicNs, QList<ProcessSample> &processes,
                            MachineSample &machine) {
    const double seconds = m_haveLast ? double(monotonicNs - m_lastNs) / 1e9 : 0.0;
    m_lastNs = monotonicNs;
    m_haveLast = true;

    if (!m_watches.empty()) scanProcesses();
    processes.resize(qsizetype(m_watches.size()));
    for (std::size_t i = 0; i < m_watches.size(); ++i)
        sampleTree(m_watches[i], seconds, processes[qsizetype(i)]);
    sampleMachine(seconds, machine);
}

qint64 ProcessSampler::residentPages(const Entry &entry) {
    // statm sums the per-CPU RSS counters exactly; stat's rss field (already at hand) reads
    // them approximately on current kernels, off by up to a few hundred KB. Only tree members
    // pay for this extra read.
    char relative[32];
    std::snprintf(relative, sizeof relative, "%lld/statm", static_cast<long long>(entry.pid));
    const qsizetype length = readFile(relative);
    if (length > 0)
        if (const auto pages =
                parseStatmResidentPages(std::string_view(m_buffer.data(), std::size_t(length))))
            return *pages;
    return entry.rssPages; // exited since the scan, or no statm (fake proc roots)
}

void ProcessSampler::sampleTree(Watch &watch, double seconds, ProcessSample &out) {
    out.key = watch.key;
    out.pid = watch.pid;
    out.alive = false;
    out.cpuValid = false;
    out.cpuPercent = 0;
    out.rssBytes = 0;
    out.processCount = 0;

    const Entry *root = watch.alive ? findEntry(watch.pid) : nullptr;
    if (!root || root->startTime != watch.startTime) {
        // Exited, or the pid now belongs to another process: gone for good.
        watch.alive = false;
        watch.havePrevious = false;
        watch.previous.clear();
        return;
    }

    std::vector<TreeMember> &current = watch.current;
    current.clear();
    qint64 rssPages = 0;
    m_stack.clear();
    m_stack.push_back(int(root - m_entries.data()));
    // The scan is not atomic, so a racing pid reuse could in theory form a cycle: bound the walk.
    while (!m_stack.empty() && current.size() < m_entries.size()) {
        const Entry &e = m_entries[std::size_t(m_stack.back())];
        m_stack.pop_back();
        current.push_back(TreeMember{e.pid, e.startTime, e.self, e.reaped});
        rssPages += residentPages(e);
        auto child = std::lower_bound(m_byParent.begin(), m_byParent.end(),
                                      std::pair<qint64, int>(e.pid, -1));
        for (; child != m_byParent.end() && child->first == e.pid; ++child)
            m_stack.push_back(child->second);
    }
    std::sort(current.begin(), current.end(),
              [](const TreeMember &a, const TreeMember &b) { return a.pid < b.pid; });

    out.alive = true;
    out.rssBytes = rssPages * m_pageSize;
    out.processCount = int(current.size());

    if (watch.havePrevious && seconds > 0) {
        const qint64 ticks =
            treeCpuTicks(watch.previous, current, [this](const TreeMember &before) {
                const Entry *now = findEntry(before.pid);
                return !now || now->startTime != before.startTime; // died, not just reparented away
            });
        out.cpuValid = true;
        out.cpuPercent = std::max<qint64>(ticks, 0) * 100.0 / double(m_ticksPerSecond) / seconds;
    }
    std::swap(watch.previous, watch.current);
    watch.havePrevious = true;
}

void ProcessSampler::sampleMachine(double seconds, MachineSample &out) {
    out.cpuValid = false;
    out.cpuBusyPercent = 0;
    if (const qsizetype length = readFile("stat"); length > 0) {
        const std::string_view text(m_buffer.data(), std::size_t(length));
        out.cores = countCpus(text);
        const auto cpu = parseCpuTimes(text);
        if (cpu && m_lastCpu && seconds > 0 && cpu->total > m_lastCpu->total) {
            // iowait may run backwards on some kernels: clamp rather than trust the sign.
            const double busy = double(qint64(cpu->busy - m_lastCpu->busy));
            out.cpuValid = true;
            out.cpuBusyPercent =
                std::clamp(busy * 100.0 / double(cpu->total - m_lastCpu->total), 0.0, 100.0);
        }
        m_lastCpu = cpu;
    }
    if (const qsizetype length = readFile("meminfo"); length > 0) {
        if (const auto mem = parseMeminfo(std::string_view(m_buffer.data(), std::size_t(length)))) {
            out.memoryTotalBytes = mem->totalBytes;
            out.memoryUsedBytes = mem->totalBytes - mem->availableBytes;
        }
    }
    if (const qsizetype length = readFile("loadavg"); length > 0) {
        if (const auto load =
                parseLoadavg(std::string_view(m_buffer.data(), std::size_t(length)))) {
            out.load1 = load->load1;
            out.load5 = load->load5;
            out.load15 = load->load15;
        }
    }
}

} // namespace corral
