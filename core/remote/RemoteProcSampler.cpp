#include "remote/RemoteProcSampler.h"

#include "metrics/ProcessSampler.h"
#include "ssh/ShellQuote.h"

#include <algorithm>
#include <string_view>

namespace corral {

void RemoteProcSampler::watch(const QString &key, qint64 pid) {
    unwatch(key);
    Watch watch;
    watch.key = key;
    watch.pid = pid;
    watch.alive = pid > 0;
    m_watches.push_back(std::move(watch));
}

void RemoteProcSampler::unwatch(const QString &key) {
    std::erase_if(m_watches, [&](const Watch &watch) { return watch.key == key; });
}

QStringList RemoteProcSampler::keys() const {
    QStringList keys;
    for (const Watch &watch : m_watches)
        keys.append(watch.key);
    return keys;
}

QString RemoteProcSampler::command() const {
    QString script = QStringLiteral("cd /proc || exit 1\n");
    if (m_ticksPerSecond <= 0)
        script += QStringLiteral("echo @@sysconf; getconf CLK_TCK; getconf PAGESIZE\n");
    script += QStringLiteral("echo @@uptime; cat uptime; echo @@stat; cat stat; echo @@meminfo; "
                             "cat meminfo; echo @@loadavg; cat loadavg\n");
    // Breadth-first walk of each watched tree; the depth bound guards against a pid reused
    // into a cycle while the walk runs.
    for (std::size_t i = 0; i < m_watches.size(); ++i) {
        const Watch &watch = m_watches[i];
        if (!watch.alive) continue;
        script += QStringLiteral("echo '@@root %1'; q=%2; n=0\n").arg(i).arg(watch.pid);
        script += QStringLiteral(
            "while [ -n \"$q\" ] && [ $n -lt 32 ]; do c=\n"
            "  for p in $q; do echo \"@@proc $p\"; cat $p/stat $p/statm 2>/dev/null\n"
            "    c=\"$c $(cat $p/task/*/children 2>/dev/null)\"; done\n"
            "  case $c in *[0-9]*) q=$c;; *) q=;; esac; n=$((n+1))\ndone\n");
    }
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script});
}

namespace {

std::string_view view(const QByteArray &bytes) {
    return std::string_view(bytes.constData(), std::size_t(bytes.size()));
}

struct ProcReading {
    qint64 pid = 0;
    bool haveStat = false;
    quint64 startTime = 0, self = 0, reaped = 0;
    qint64 rssPages = 0;
};

} // namespace

Result<void> RemoteProcSampler::ingest(const QByteArray &output, QList<ProcessSample> &processes,
                                       MachineSample &machine) {
    // Split into sections; "@@root I" opens a tree, "@@proc PID" a member of it.
    QByteArray uptime, stat, meminfo, loadavg, sysconf;
    std::vector<std::vector<ProcReading>> trees(m_watches.size());
    QByteArray *section = nullptr;
    std::vector<ProcReading> *tree = nullptr;
    ProcReading *proc = nullptr;
    for (const QByteArray &line : output.split('\n')) {
        if (line.startsWith("@@")) {
            proc = nullptr;
            section = nullptr;
            const QList<QByteArray> words = line.mid(2).split(' ');
            const QByteArray &name = words.at(0);
            if (name == "uptime") section = &uptime;
            if (name == "stat") section = &stat;
            if (name == "meminfo") section = &meminfo;
            if (name == "loadavg") section = &loadavg;
            if (name == "sysconf") section = &sysconf;
            if (name == "root") {
                const std::size_t index = words.value(1).toULongLong();
                tree = index < trees.size() ? &trees[index] : nullptr;
            }
            if (name == "proc" && tree) {
                tree->push_back(ProcReading{});
                proc = &tree->back();
                proc->pid = words.value(1).toLongLong();
            }
            continue;
        }
        if (section) {
            *section += line;
            *section += '\n';
        } else if (proc && !line.isEmpty()) {
            if (!proc->haveStat) {
                if (const auto parsed = parseProcStat(view(line));
                    parsed && parsed->pid == proc->pid) {
                    proc->haveStat = true;
                    proc->startTime = parsed->startTime;
                    proc->self = parsed->utime + parsed->stime;
                    proc->reaped = parsed->cutime + parsed->cstime;
                    proc->rssPages = parsed->rssPages;
                }
            } else if (const auto pages = parseStatmResidentPages(view(line))) {
                proc->rssPages = *pages; // exact, where stat's field is approximate
            }
        }
    }
    if (!sysconf.isEmpty()) {
        const QList<QByteArray> values = sysconf.trimmed().split('\n');
        m_ticksPerSecond = values.value(0).trimmed().toLong();
        m_pageSize = values.value(1).trimmed().toLong();
    }
    if (m_ticksPerSecond <= 0 || m_pageSize <= 0 || uptime.isEmpty() || stat.isEmpty())
        return fail(QStringLiteral("unexpected sampler output: %1")
                        .arg(QString::fromUtf8(output.left(200))));

    const double now = uptime.split(' ').value(0).toDouble();
    const double seconds = m_lastUptime > 0 ? now - m_lastUptime : 0.0;
    m_lastUptime = now;

    machine = MachineSample{};
    machine.cores = countCpus(view(stat));
    if (const auto cpu = parseCpuTimes(view(stat))) {
        if (m_haveLastCpu && cpu->total > m_lastTotal) {
            machine.cpuValid = true;
            machine.cpuBusyPercent = std::clamp(double(qint64(cpu->busy - m_lastBusy)) * 100.0 /
                                                    double(cpu->total - m_lastTotal),
                                                0.0, 100.0);
        }
        m_haveLastCpu = true;
        m_lastBusy = cpu->busy;
        m_lastTotal = cpu->total;
    }
    if (const auto memory = parseMeminfo(view(meminfo))) {
        machine.memoryTotalBytes = memory->totalBytes;
        machine.memoryUsedBytes = memory->totalBytes - memory->availableBytes;
    }
    if (const auto load = parseLoadavg(view(loadavg))) {
        machine.load1 = load->load1;
        machine.load5 = load->load5;
        machine.load15 = load->load15;
    }

    processes.resize(qsizetype(m_watches.size()));
    for (std::size_t i = 0; i < m_watches.size(); ++i) {
        Watch &watch = m_watches[i];
        ProcessSample &out = processes[qsizetype(i)];
        out = ProcessSample{};
        out.key = watch.key;
        out.pid = watch.pid;
        const std::vector<ProcReading> &members = trees[i];
        const bool rootSeen =
            !members.empty() && members.front().haveStat && members.front().pid == watch.pid;
        if (!watch.alive || !rootSeen ||
            (watch.startTime != 0 && members.front().startTime != watch.startTime)) {
            // Exited, or the pid now belongs to another process: gone for good, as locally.
            watch.alive = false;
            watch.previous.clear();
            continue;
        }
        watch.startTime = members.front().startTime;
        std::vector<TreeMember> current;
        qint64 rssPages = 0;
        for (const ProcReading &reading : members) {
            if (!reading.haveStat) continue;
            current.push_back(
                TreeMember{reading.pid, reading.startTime, reading.self, reading.reaped});
            rssPages += reading.rssPages;
        }
        std::sort(current.begin(), current.end(),
                  [](const TreeMember &a, const TreeMember &b) { return a.pid < b.pid; });
        current.erase(
            std::unique(current.begin(), current.end(),
                        [](const TreeMember &a, const TreeMember &b) { return a.pid == b.pid; }),
            current.end());
        out.alive = true;
        // /proc/PID/stat's starttime is in clock ticks since boot, /proc/uptime in seconds.
        out.ageMs = std::max<qint64>(
            0, qint64((now - double(watch.startTime) / double(m_ticksPerSecond)) * 1000.0));
        out.rssBytes = rssPages * m_pageSize;
        out.processCount = int(current.size());
        if (watch.havePrevious && seconds > 0) {
            // A member gone from the tree was reaped: the remote side cannot tell a
            // reparented one apart, so every missing member counts as died.
            const qint64 ticks =
                treeCpuTicks(watch.previous, current, [](const TreeMember &) { return true; });
            out.cpuValid = true;
            out.cpuPercent =
                double(std::max<qint64>(ticks, 0)) * 100.0 / double(m_ticksPerSecond) / seconds;
        }
        watch.previous = std::move(current);
        watch.havePrevious = true;
    }
    return {};
}

} // namespace corral
