#include "SshServer.h"
#include "remote/RemoteProcSampler.h"
#include "remote/RemoteSampler.h"
#include "ssh/SshHost.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QSignalSpy>
#include <QTest>

#include <thread>

#include <unistd.h>

using namespace corral;

/// Remote CPU/RSS sampling: the batched command's output parsed into the local sampler's
/// structures, and two sshd "hosts" sampled in one tick.
class TestRemoteSampler : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void parsesCapturedOutput() {
        RemoteProcSampler sampler;
        sampler.watch(QStringLiteral("web:3000"), 100);
        sampler.watch(QStringLiteral("web:3001"), 200);
        QVERIFY(sampler.command().contains(QStringLiteral("@@sysconf")));
        const auto tick = [](double uptime, quint64 rootUser, quint64 childUser, bool withChild,
                             quint64 cpuBusy, quint64 cpuIdle) {
            QByteArray out = "@@sysconf\n100\n4096\n";
            out += "@@uptime\n" + QByteArray::number(uptime, 'f', 2) + " 1.00\n";
            out += "@@stat\ncpu  " + QByteArray::number(cpuBusy) + " 0 0 " +
                   QByteArray::number(cpuIdle) + " 0 0 0 0 0 0\ncpu0 1 0 0 1\ncpu1 1 0 0 1\n";
            out += "@@meminfo\nMemTotal: 1000 kB\nMemAvailable: 250 kB\n";
            out += "@@loadavg\n0.50 0.25 0.10 1/100 999\n";
            out += "@@root 0\n@@proc 100\n";
            out += "100 (node app (x)) S 1 100 100 0 -1 0 0 0 0 0 " + QByteArray::number(rootUser) +
                   " 0 0 0 20 0 1 0 5000 1000 10 0\n25 10 0 0 0 0 0\n";
            if (withChild)
                out += "@@proc 101\n101 (sleep) S 100 100 100 0 -1 0 0 0 0 0 " +
                       QByteArray::number(childUser) +
                       " 0 0 0 20 0 1 0 6000 1000 5 0\n5 2 0 0 0 0 0\n";
            // Watch 1 (pid 200) is absent: it has exited.
            return out;
        };
        QList<ProcessSample> processes;
        MachineSample machine;
        auto first = sampler.ingest(tick(100.0, 50, 0, true, 1000, 1000), processes, machine);
        QVERIFY2(first.ok(), qPrintable(first.error()));
        QCOMPARE(processes.size(), 2);
        QVERIFY(processes[0].alive);
        QVERIFY(!processes[0].cpuValid);
        QCOMPARE(processes[0].processCount, 2);
        QCOMPARE(processes[0].rssBytes, (10 + 2) * 4096);
        QVERIFY(!processes[1].alive);
        QCOMPARE(machine.cores, 2);
        QCOMPARE(machine.memoryTotalBytes, 1000 * 1024);
        QCOMPARE(machine.memoryUsedBytes, 750 * 1024);
        QCOMPARE(machine.load1, 0.5);
        QVERIFY(!machine.cpuValid);
        QVERIFY(!sampler.command().contains(QStringLiteral("@@sysconf"))); // asked once

        // 2 s later (host clock): root used 100 ticks = 1 s, the child 50 ticks.
        QByteArray second = tick(102.0, 150, 50, true, 1150, 1050);
        second.replace("@@sysconf\n100\n4096\n", "");
        QVERIFY(sampler.ingest(second, processes, machine).ok());
        QVERIFY(processes[0].cpuValid);
        QCOMPARE(processes[0].cpuPercent, 75.0); // (100 + 50) ticks / 100 Hz / 2 s
        QVERIFY(machine.cpuValid);
        QCOMPARE(machine.cpuBusyPercent, 75.0); // 150 busy of 200
        QVERIFY(!processes[1].alive);

        // A pid now belonging to another process (other start time) is gone for good.
        QByteArray reused = tick(103.0, 1, 0, false, 1200, 1100);
        reused.replace("@@sysconf\n100\n4096\n", "");
        reused.replace(" 5000 1000 10 0", " 9999 1000 10 0");
        QVERIFY(sampler.ingest(reused, processes, machine).ok());
        QVERIFY(!processes[0].alive);

        QVERIFY(!sampler.ingest("garbage", processes, machine).ok());
    }

    void twoHostsInOneTick() {
        SshServer first(QStringLiteral("127.0.0.2"));
        SshServer second(QStringLiteral("127.0.0.3"));
        QString error;
        QVERIFY2(first.start(&error), qPrintable(error));
        QVERIFY2(second.start(&error), qPrintable(error));

        // "Remote" workers are local processes (loopback hosts are this machine): a busy one
        // with a child, and an idle one.
        QProcess busy, idle;
        busy.start(QStringLiteral("/bin/sh"),
                   {QStringLiteral("-c"), QStringLiteral("sleep 60 & while :; do :; done")});
        idle.start(QStringLiteral("/bin/sleep"), {QStringLiteral("60")});
        QVERIFY(busy.waitForStarted() && idle.waitForStarted());

        // As root, log in as a throwaway account with /bin/sh: root's ~/.bashrc on the dev
        // machine (pyenv init, ~0.3 s, sourced by bash for every ssh command) would otherwise
        // dominate the timing. Reading another user's /proc/PID/stat needs no privilege.
        QString user = qEnvironmentVariable("USER", QStringLiteral("root"));
        if (::geteuid() == 0) {
            user = QStringLiteral("corral-rs-%1").arg(::getpid());
            QVERIFY2(first.createUser(user, QStringLiteral("unused-%1").arg(::getpid()), &error),
                     qPrintable(error));
        }
        SshPool pool;
        for (SshServer *server : {&first, &second}) {
            SshConfig config = server->trustedConfig(user);
            pool.host(server->address(), config);
        }
        RemoteSampler sampler;
        for (SshHost *host : pool.hosts())
            sampler.addHost(host);
        sampler.watch(first.address(), QStringLiteral("busy"), busy.processId());
        sampler.watch(second.address(), QStringLiteral("idle"), idle.processId());

        QHash<QString, MetricsSnapshot> latest;
        QStringList failures;
        connect(&sampler, &RemoteSampler::sampled, this,
                [&](const QString &host, const MetricsSnapshot &s) { latest[host] = s; });
        connect(&sampler, &RemoteSampler::sampleFailed, this,
                [&](const QString &host, const QString &e) {
                    failures.append(host + QStringLiteral(": ") + e);
                });
        QSignalSpy ticks(&sampler, &RemoteSampler::tickFinished);
        sampler.tick(); // connects both hosts, learns start times
        QVERIFY(ticks.wait(15000));
        QVERIFY2(failures.isEmpty(), qPrintable(failures.join(QLatin1Char('\n'))));
        QTest::qWait(1000);
        QList<qint64> durations;
        for (int i = 0; i < 3; ++i) {
            sampler.tick();
            QVERIFY(ticks.wait(10000));
            durations.append(ticks.last().at(0).toLongLong());
            QTest::qWait(300);
        }
        QVERIFY2(failures.isEmpty(), qPrintable(failures.join(QLatin1Char('\n'))));
        std::sort(durations.begin(), durations.end());
        qInfo("one polling tick over two hosts (connected): %lld ms median (min %lld, max %lld)",
              durations.at(1), durations.first(), durations.last());

        // For scale: the bare round trip of an empty command on one connected host here.
        SshHost *one = pool.find(first.address());
        QElapsedTimer bare;
        bare.start();
        bool answered = false;
        one->exec(QStringLiteral("true"), 10000, this,
                  [&](Result<ExecResult>) { answered = true; });
        QTRY_VERIFY_WITH_TIMEOUT(answered, 10000);
        qInfo("one empty command on one host: %lld ms", bare.elapsed());

        const MetricsSnapshot a = latest.value(first.address());
        const MetricsSnapshot b = latest.value(second.address());
        QCOMPARE(a.processes.size(), 1);
        QCOMPARE(b.processes.size(), 1);
        const ProcessSample &hot = a.processes.first();
        QVERIFY(hot.alive && hot.cpuValid);
        QCOMPARE(hot.processCount, 2); // the shell and its sleep child
        QVERIFY2(hot.cpuPercent > 20, qPrintable(QString::number(hot.cpuPercent)));
        QVERIFY(hot.rssBytes > 0);
        const ProcessSample &cold = b.processes.first();
        QVERIFY(cold.alive && cold.cpuValid);
        QVERIFY2(cold.cpuPercent < 5, qPrintable(QString::number(cold.cpuPercent)));
        QCOMPARE(a.machine.cores, int(std::thread::hardware_concurrency()));
        QVERIFY(a.machine.cpuValid && a.machine.memoryTotalBytes > 0);

        // A worker that exits is reported gone, like the local sampler does.
        idle.kill();
        idle.waitForFinished();
        sampler.tick();
        QVERIFY(ticks.wait(10000));
        QVERIFY(!latest.value(second.address()).processes.first().alive);

        // A host that went down fails its part of the tick without stalling the other.
        second.killHard();
        failures.clear();
        sampler.tick();
        QVERIFY(ticks.wait(15000));
        QCOMPARE(failures.size(), 1);
        QVERIFY2(failures.first().startsWith(second.address()), qPrintable(failures.first()));

        busy.kill();
        busy.waitForFinished();
    }
};

QTEST_MAIN(TestRemoteSampler)
#include "tst_remotesampler.moc"
