#include "metrics/MetricsCollector.h"
#include "metrics/ProcessSampler.h"
#include "metrics/RingBuffer.h"

#include <QDir>
#include <QFile>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <memory>

#include <csignal>
#include <sys/prctl.h>
#include <unistd.h>

using namespace corral;

namespace {

// A /proc/PID/stat line with every field the kernel writes (52); the ones not under test
// carry plausible values, some negative (tty_nr, tpgid, priority) as on a real system.
QByteArray statLine(qint64 pid, const QByteArray &comm, qint64 ppid, quint64 utime, quint64 stime,
                    quint64 cutime, quint64 cstime, quint64 startTime, qint64 rssPages) {
    return QByteArray::number(pid) + " (" + comm + ") S " + QByteArray::number(ppid) +
           " 1234 1234 0 -1 4194304 500 0 0 0 " + QByteArray::number(utime) + ' ' +
           QByteArray::number(stime) + ' ' + QByteArray::number(cutime) + ' ' +
           QByteArray::number(cstime) + " -2 0 1 0 " + QByteArray::number(startTime) + " 1000000 " +
           QByteArray::number(rssPages) +
           " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
}

// A fake proc root: a directory of the files ProcessSampler reads.
class FakeProc {
public:
    FakeProc() {
        setMachine("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n"
                   "cpu1 50 0 50 400 0 0 0 0 0 0\nintr 12345 0 0\nctxt 99\n");
        write("meminfo", "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
                         "MemAvailable:    4000000 kB\nBuffers:          100 kB\n");
        write("loadavg", "0.50 1.25 2.00 1/123 4567\n");
    }
    QString root() const { return m_dir.path(); }
    void setMachine(const QByteArray &stat) { write("stat", stat); }
    void setProcess(qint64 pid, const QByteArray &line) {
        QDir(m_dir.path()).mkpath(QString::number(pid));
        write(QString::number(pid) + QStringLiteral("/stat"), line);
    }
    void setStatm(qint64 pid, const QByteArray &text) {
        write(QString::number(pid) + QStringLiteral("/statm"), text);
    }
    void removeProcess(qint64 pid) {
        QVERIFY(QDir(m_dir.filePath(QString::number(pid))).removeRecursively());
    }

private:
    void write(const QString &name, const QByteArray &data) {
        QFile file(m_dir.filePath(name));
        QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
        QCOMPARE(file.write(data), data.size());
    }
    QTemporaryDir m_dir;
};

// A child in its own process group, killed with that group (so its children too) when the
// guard goes out of scope, also when a test fails half-way.
class Child {
public:
    explicit Child(const QString &script) {
        m_process.setProgram(QStringLiteral("/bin/sh"));
        m_process.setArguments({QStringLiteral("-c"), script});
        m_process.setChildProcessModifier([] {
            ::setpgid(0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL); // the test runner died: do not linger
        });
        m_process.start();
    }
    ~Child() { kill(); }
    bool started() { return m_process.waitForStarted(5000); }
    qint64 pid() const { return m_process.processId(); }
    void kill() {
        // pid 0 would make kill(-0) hit our own process group.
        if (m_process.state() == QProcess::NotRunning || m_process.processId() <= 0) return;
        ::kill(-pid_t(m_process.processId()), SIGKILL);
        m_process.waitForFinished(5000);
    }

private:
    QProcess m_process;
};

const ProcessSample *find(const MetricsSnapshot &snapshot, const QString &key) {
    for (const ProcessSample &sample : snapshot.processes)
        if (sample.key == key) return &sample;
    return nullptr;
}

} // namespace

class TestMetrics : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parsesStatWithAwkwardComm() {
        const QByteArray line =
            statLine(1234, "my (weird) app", 77, 1500, 250, 30, 4, 987654, 2048);
        const auto stat = parseProcStat(std::string_view(line.constData(), line.size()));
        QVERIFY(stat);
        QCOMPARE(stat->pid, 1234);
        QCOMPARE(QByteArray(stat->comm.data(), qsizetype(stat->comm.size())),
                 QByteArray("my (weird) app"));
        QCOMPARE(stat->state, 'S');
        QCOMPARE(stat->ppid, 77);
        QCOMPARE(stat->utime, 1500u);
        QCOMPARE(stat->stime, 250u);
        QCOMPARE(stat->cutime, 30u);
        QCOMPARE(stat->cstime, 4u);
        QCOMPARE(stat->startTime, 987654u);
        QCOMPARE(stat->rssPages, 2048);

        // A comm that itself contains ") S 9 " must not shift the fields.
        const QByteArray tricky = statLine(5, "a) S 9 (b", 1, 7, 8, 0, 0, 42, 3);
        const auto trickyStat = parseProcStat(std::string_view(tricky.constData(), tricky.size()));
        QVERIFY(trickyStat);
        QCOMPARE(trickyStat->ppid, 1);
        QCOMPARE(trickyStat->startTime, 42u);
        QCOMPARE(QByteArray(trickyStat->comm.data(), qsizetype(trickyStat->comm.size())),
                 QByteArray("a) S 9 (b"));
    }

    void rejectsBrokenStat_data() {
        QTest::addColumn<QByteArray>("text");
        QTest::newRow("empty") << QByteArray();
        QTest::newRow("no comm") << QByteArray("12 S 1 2 3");
        QTest::newRow("truncated") << QByteArray("12 (x) S 1 2 3 4 5 6 7 8 9 10 11");
        QTest::newRow("bad pid") << QByteArray("x1 (x) S") + statLine(1, "x", 1, 1, 1, 1, 1, 1, 1);
        QTest::newRow("non-numeric field")
            << statLine(1, "x", 1, 1, 1, 1, 1, 1, 1).replace(" 1000000 ", " huge ");
    }
    void rejectsBrokenStat() {
        QFETCH(QByteArray, text);
        QVERIFY(!parseProcStat(std::string_view(text.constData(), text.size())));
    }

    void parsesMachineFiles() {
        const std::string_view procStat = "cpu  10 2 30 400 5 6 7 8 1 0\n"
                                          "cpu0 5 1 15 200 2 3 3 4 0 0\n"
                                          "cpu1 5 1 15 200 3 3 4 4 1 0\n"
                                          "cpu2 0 0 0 0 0 0 0 0 0 0\n"
                                          "intr 1 2 3\n";
        const auto cpu = parseCpuTimes(procStat);
        QVERIFY(cpu);
        QCOMPARE(cpu->total, 10u + 2 + 30 + 400 + 5 + 6 + 7 + 8); // guest is inside user
        QCOMPARE(cpu->busy, cpu->total - 400 - 5);
        QCOMPARE(countCpus(procStat), 3);
        QVERIFY(!parseCpuTimes("cpu0 1 2 3 4\n"));

        const auto mem =
            parseMeminfo("MemTotal:  2000 kB\nMemFree:  500 kB\nMemAvailable: 800 kB\n");
        QVERIFY(mem);
        QCOMPARE(mem->totalBytes, 2000 * 1024);
        QCOMPARE(mem->availableBytes, 800 * 1024);
        const auto oldKernel = parseMeminfo("MemTotal:  2000 kB\nMemFree:  500 kB\n");
        QVERIFY(oldKernel);
        QCOMPARE(oldKernel->availableBytes, 500 * 1024);
        QVERIFY(!parseMeminfo("MemFree: 5 kB\n"));

        const auto load = parseLoadavg("0.25 1.50 3.75 2/345 6789\n");
        QVERIFY(load);
        QCOMPARE(load->load1, 0.25);
        QCOMPARE(load->load5, 1.5);
        QCOMPARE(load->load15, 3.75);
        QVERIFY(!parseLoadavg("nonsense"));

        QCOMPARE(parseStatmResidentPages("765 437 409 5 0 123 0\n").value_or(-1), 437);
        QVERIFY(!parseStatmResidentPages("765"));
    }

    void ringBufferWrapsAtCapacity() {
        RingBuffer<int> ring(4);
        QCOMPARE(ring.capacity(), 4u);
        QVERIFY(ring.isEmpty());
        for (int i = 1; i <= 3; ++i)
            ring.push(i);
        QCOMPARE(ring.toList(), QList<int>({1, 2, 3}));
        for (int i = 4; i <= 10; ++i)
            ring.push(i);
        QCOMPARE(ring.size(), 4u);
        QCOMPARE(ring.capacity(), 4u);
        QVERIFY(ring.isFull());
        QCOMPARE(ring.toList(), QList<int>({7, 8, 9, 10}));
        QCOMPARE(ring.first(), 7);
        QCOMPARE(ring.last(), 10);
        QCOMPARE(ring[1], 8);
        QCOMPARE(ring.toList([](int v) { return v * 10; }), QList<int>({70, 80, 90, 100}));

        ring.setCapacity(2); // keeps the newest
        QCOMPARE(ring.toList(), QList<int>({9, 10}));
        ring.setCapacity(5);
        ring.push(11);
        QCOMPARE(ring.toList(), QList<int>({9, 10, 11}));
        ring.clear();
        QVERIFY(ring.isEmpty());
        QCOMPARE(ring.capacity(), 5u);

        RingBuffer<int> none(0);
        none.push(1);
        QVERIFY(none.isEmpty());
    }

    void samplesFakeTree() {
        FakeProc proc;
        proc.setProcess(1, statLine(1, "init", 0, 1000, 1000, 0, 0, 1, 100));
        proc.setProcess(100, statLine(100, "node (worker)", 1, 100, 50, 0, 0, 5000, 1000));
        proc.setProcess(101, statLine(101, "sh", 100, 10, 10, 0, 0, 5001, 200));
        proc.setProcess(102, statLine(102, "yes", 101, 300, 0, 0, 0, 5002, 30));
        proc.setProcess(200, statLine(200, "other", 1, 9999, 9999, 0, 0, 4000, 7777));
        proc.setStatm(101, "900 250 100 5 0 50 0\n"); // preferred over stat's rss (200)
        if (QTest::currentTestFailed()) return;

        ProcessSampler sampler(proc.root());
        const long hz = sampler.clockTicksPerSecond();
        const qint64 page = sampler.pageSize();
        QVERIFY(sampler.watch(QStringLiteral("w"), 100));
        QVERIFY(!sampler.watch(QStringLiteral("missing"), 4242));
        QCOMPARE(sampler.keys(), QStringList({QStringLiteral("w"), QStringLiteral("missing")}));

        QList<ProcessSample> samples;
        MachineSample machine;
        sampler.sample(0, samples, machine);
        QCOMPARE(samples.size(), 2);
        QCOMPARE(samples[0].key, QStringLiteral("w"));
        QVERIFY(samples[0].alive);
        QVERIFY(!samples[0].cpuValid); // nothing to diff against yet
        QCOMPARE(samples[0].processCount, 3);
        QCOMPARE(samples[0].rssBytes, (1000 + 250 + 30) * page);
        QVERIFY(!samples[1].alive);
        QCOMPARE(machine.cores, 2);
        QVERIFY(!machine.cpuValid);
        QCOMPARE(machine.memoryTotalBytes, 16000000LL * 1024);
        QCOMPARE(machine.memoryUsedBytes, 12000000LL * 1024);
        QCOMPARE(machine.load5, 1.25);

        // One second later: root +15, sh +5, yes +hz/2: the tree used (20 + hz/2) ticks.
        proc.setProcess(100, statLine(100, "node (worker)", 1, 110, 55, 0, 0, 5000, 1000));
        proc.setProcess(101, statLine(101, "sh", 100, 15, 10, 0, 0, 5001, 200));
        proc.setProcess(102, statLine(102, "yes", 101, 300 + quint64(hz / 2), 0, 0, 0, 5002, 30));
        proc.setMachine("cpu  250 0 150 900 0 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n"
                        "cpu1 1 0 1 1 0 0 0 0 0 0\n");
        sampler.sample(1'000'000'000, samples, machine);
        QVERIFY(samples[0].cpuValid);
        QCOMPARE(samples[0].cpuPercent, (20.0 + double(hz / 2)) * 100.0 / double(hz));
        QVERIFY(machine.cpuValid);
        QCOMPARE(machine.cpuBusyPercent, 200.0 * 100.0 / 300.0); // busy 200 of 300 ticks

        // "yes" ran 10 more ticks, then died and was reaped by sh: its whole time moves
        // into sh's cutime. Only the 10 new ticks count, not the total again.
        const quint64 yesTotal = 300 + quint64(hz / 2) + 10;
        proc.removeProcess(102);
        proc.setProcess(101, statLine(101, "sh", 100, 15, 10, yesTotal, 0, 5001, 200));
        // And a child that lived only between two ticks (100 ticks, reaped by the root).
        proc.setProcess(100, statLine(100, "node (worker)", 1, 110, 55, 100, 0, 5000, 1000));
        sampler.sample(2'000'000'000, samples, machine);
        QVERIFY(samples[0].cpuValid);
        QCOMPARE(samples[0].processCount, 2);
        QCOMPARE(samples[0].rssBytes, (1000 + 250) * page);
        QCOMPARE(samples[0].cpuPercent, 110.0 * 100.0 / double(hz));

        // Half a second later, the pid belongs to another process (other start time).
        proc.setProcess(100, statLine(100, "node (worker)", 1, 110, 55, 100, 0, 9999, 1000));
        sampler.sample(2'500'000'000, samples, machine);
        QVERIFY(!samples[0].alive);
        QCOMPARE(samples[0].pid, 100);
        QCOMPARE(samples[0].rssBytes, 0);
        // Gone for good, even if the old identity reappeared.
        proc.setProcess(100, statLine(100, "node (worker)", 1, 110, 55, 100, 0, 5000, 1000));
        sampler.sample(3'000'000'000, samples, machine);
        QVERIFY(!samples[0].alive);

        sampler.unwatch(QStringLiteral("missing"));
        sampler.sample(4'000'000'000, samples, machine);
        QCOMPARE(samples.size(), 1);
        QVERIFY(!sampler.isWatching(QStringLiteral("missing")));
    }

    void busyProcessUsesACore() {
        Child busy(QStringLiteral("while :; do :; done"));
        QVERIFY(busy.started());
        MetricsCollector collector;
        collector.setInterval(250);
        QVERIFY(collector.watch(busy.pid(), QStringLiteral("busy")));
        collector.start();
        double best = 0;
        // Poll with a deadline: the machine is shared, so some ticks may be slow.
        QTRY_VERIFY_WITH_TIMEOUT(
            [&] {
                const ProcessSample *s = find(collector.snapshot(), QStringLiteral("busy"));
                if (s && s->cpuValid) best = std::max(best, s->cpuPercent);
                return best > 50;
            }(),
            20000);
        const ProcessSample *s = find(collector.snapshot(), QStringLiteral("busy"));
        QVERIFY(s && s->alive);
        QVERIFY(s->rssBytes > 0);
        QVERIFY2(best < 130, qPrintable(QString::number(best))); // one thread: about one core
    }

    void processTreeIsSummed() {
        Child tree(QStringLiteral("yes >/dev/null & yes >/dev/null & wait"));
        QVERIFY(tree.started());
        MetricsCollector collector;
        collector.setInterval(250);
        QVERIFY(collector.watch(tree.pid(), QStringLiteral("tree")));
        collector.start();
        // The root shell only waits: the CPU comes from its two children.
        double best = 0;
        QTRY_VERIFY_WITH_TIMEOUT(
            [&] {
                const ProcessSample *s = find(collector.snapshot(), QStringLiteral("tree"));
                if (s && s->cpuValid && s->processCount == 3) best = std::max(best, s->cpuPercent);
                return best > 50;
            }(),
            20000);
        const ProcessSample *s = find(collector.snapshot(), QStringLiteral("tree"));
        QVERIFY(s);
        QCOMPARE(s->processCount, 3);
        QVERIFY(s->rssBytes > 0);
        qInfo("tree CPU %.0f %% on %d cores", best, QThread::idealThreadCount());
    }

    void idleProcessIsNearZero() {
        Child idle(QStringLiteral("exec sleep 30"));
        QVERIFY(idle.started());
        MetricsCollector collector;
        collector.setInterval(200);
        QVERIFY(collector.watch(idle.pid(), QStringLiteral("idle")));
        collector.start();
        QTRY_VERIFY_WITH_TIMEOUT(collector.history(QStringLiteral("idle")).cpuPercent.size() >= 3,
                                 10000);
        for (const QPointF &point : collector.history(QStringLiteral("idle")).cpuPercent)
            QVERIFY2(point.y() < 5, qPrintable(QString::number(point.y())));
        const ProcessSample *s = find(collector.snapshot(), QStringLiteral("idle"));
        QVERIFY(s && s->alive);
        QCOMPARE(s->processCount, 1);
        QVERIFY(s->rssBytes > 0);

        // RSS comes from statm (exact), not from stat's approximate rss field.
        QFile statm(QStringLiteral("/proc/%1/statm").arg(idle.pid()));
        QVERIFY(statm.open(QIODevice::ReadOnly));
        const QByteArray text = statm.readAll();
        const auto pages = parseStatmResidentPages(std::string_view(text.constData(), text.size()));
        QVERIFY(pages);
        QCOMPARE(s->rssBytes, *pages * qint64(sysconf(_SC_PAGESIZE)));
    }

    void deadProcessIsGone() {
        Child doomed(QStringLiteral("exec sleep 30"));
        QVERIFY(doomed.started());
        const qint64 pid = doomed.pid();
        MetricsCollector collector;
        QVERIFY(collector.watch(pid, QStringLiteral("doomed")));
        QSignalSpy spy(&collector, &MetricsCollector::sampled);
        collector.sampleNow();
        QCOMPARE(spy.size(), 1);
        QVERIFY(find(collector.snapshot(), QStringLiteral("doomed"))->alive);

        doomed.kill();
        collector.sampleNow();
        const auto last = spy.last().at(0).value<MetricsSnapshot>();
        const ProcessSample *s = find(last, QStringLiteral("doomed"));
        QVERIFY(s);
        QVERIFY(!s->alive);
        QCOMPARE(s->pid, pid);
        QCOMPARE(collector.history(QStringLiteral("doomed")).rssBytes.size(), 1); // kept

        // A pid that no longer exists is reported gone from the start.
        QVERIFY(!collector.watch(pid, QStringLiteral("late")));
        collector.sampleNow();
        QVERIFY(!find(collector.snapshot(), QStringLiteral("late"))->alive);
        collector.unwatch(QStringLiteral("late"));
        QVERIFY(!find(collector.snapshot(), QStringLiteral("late")));
    }

    void machineTotalsAreSane() {
        MetricsCollector collector;
        collector.sampleNow();
        QTest::qWait(200);
        collector.sampleNow();
        const MachineSample &m = collector.snapshot().machine;
        QCOMPARE(m.cores, int(sysconf(_SC_NPROCESSORS_ONLN)));
        QVERIFY(m.cores >= QThread::idealThreadCount()); // affinity may hide cores, not add
        QVERIFY(m.cpuValid);
        QVERIFY(m.cpuBusyPercent >= 0 && m.cpuBusyPercent <= 100);
        QVERIFY(m.memoryTotalBytes > 0);
        QVERIFY(m.memoryUsedBytes > 0 && m.memoryUsedBytes <= m.memoryTotalBytes);
        QVERIFY(m.load1 >= 0 && m.load5 >= 0 && m.load15 >= 0);
        const MachineHistory history = collector.machineHistory();
        QCOMPARE(history.memoryUsedBytes.size(), 2);
        QCOMPARE(history.cpuBusyPercent.size(), 1);
    }

    void historyIsCapped() {
        Child idle(QStringLiteral("exec sleep 30"));
        QVERIFY(idle.started());
        MetricsCollector collector;
        QCOMPARE(collector.historyCapacity(), 600); // 10 minutes at 1 Hz
        collector.setInterval(100);
        collector.setHistoryDuration(500);
        QCOMPARE(collector.historyCapacity(), 5);
        QVERIFY(collector.watch(idle.pid(), QStringLiteral("idle")));
        for (int i = 0; i < 12; ++i)
            collector.sampleNow();
        const ProcessHistory history = collector.history(QStringLiteral("idle"));
        QCOMPARE(history.rssBytes.size(), 5);
        QCOMPARE(history.cpuPercent.size(), 5);
        for (qsizetype i = 1; i < history.rssBytes.size(); ++i)
            QVERIFY(history.rssBytes[i].x() >= history.rssBytes[i - 1].x());
        QCOMPARE(collector.machineHistory().memoryUsedBytes.size(), 5);

        collector.setInterval(250); // capacity 2, newest points kept
        QCOMPARE(collector.history(QStringLiteral("idle")).rssBytes.size(), 2);
        QCOMPARE(collector.history(QStringLiteral("idle")).rssBytes.last(),
                 history.rssBytes.last());
        QVERIFY(collector.history(QStringLiteral("unknown")).rssBytes.isEmpty());
    }
};

QTEST_GUILESS_MAIN(TestMetrics)
#include "tst_metrics.moc"
