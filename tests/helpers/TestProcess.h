#pragma once

// Small helpers shared by tests that start real processes and listeners.

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QHostAddress>
#include <QList>
#include <QProcess>
#include <QRandomGenerator>
#include <QTcpServer>
#include <QTcpSocket>

#include <csignal>

namespace corral::test {

/// A port nobody listens on right now: bind port 0, read what the kernel chose, release it.
inline quint16 freePort() {
    QTcpServer probe;
    if (!probe.listen(QHostAddress::LocalHost, 0)) return 0;
    const quint16 port = probe.serverPort();
    probe.close();
    return port;
}

/// A free base port for workers below Linux's ephemeral range (32768 and up), so the many
/// short connections of a test (and of the tests running beside it) never hold a port a
/// worker is about to be given; with `count`, the `count` ports from it are all free.
inline quint16 workerBasePort(int count = 1) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        const quint16 base = quint16(20000 + QRandomGenerator::global()->bounded(12000 - count));
        bool free = true;
        for (int i = 0; i < count && free; ++i) {
            QTcpServer probe;
            free = probe.listen(QHostAddress::LocalHost, quint16(base + i));
        }
        if (free) return base;
    }
    return 0;
}

/// True once `address`:`port` accepts, false when `process` exits first or at the deadline.
inline bool waitForListener(quint16 port, QProcess &process, int timeoutMs = 15000,
                            const QHostAddress &address = QHostAddress(QHostAddress::LocalHost)) {
    const QDeadlineTimer deadline(timeoutMs);
    while (!deadline.hasExpired()) {
        if (process.state() != QProcess::Running) return false;
        QTcpSocket probe;
        probe.connectToHost(address, port);
        if (probe.waitForConnected(200)) return true;
        process.waitForFinished(20); // the poll interval; notices an exit meanwhile
    }
    return false;
}

/// SIGTERM by PID, SIGKILL when it has not exited after `graceMs`.
inline void stopProcess(QProcess &process, int graceMs = 10000) {
    if (process.state() == QProcess::NotRunning) return;
    process.terminate();
    if (!process.waitForFinished(graceMs)) process.kill();
    process.waitForFinished(5000);
}

/// Calls `visit(pid, fields)` for every process on this machine, with the fields of its
/// /proc/PID/stat after the command name: state (0), ppid (1), pgrp (2), ...
template <typename Visit> void forEachProcessStat(Visit &&visit) {
    for (const QString &entry : QDir(QStringLiteral("/proc")).entryList(QDir::Dirs)) {
        bool numeric = false;
        const qint64 pid = entry.toLongLong(&numeric);
        if (!numeric) continue;
        QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
        if (!stat.open(QIODevice::ReadOnly)) continue;
        const QByteArray text = stat.readAll();
        visit(pid, text.mid(text.lastIndexOf(')') + 2).split(' '));
    }
}

/// The pids of this machine's processes whose parent is `parent` (from /proc).
inline QList<qint64> childProcesses(qint64 parent) {
    QList<qint64> children;
    forEachProcessStat([&](qint64 pid, const QList<QByteArray> &fields) {
        if (fields.size() > 1 && fields.at(1).toLongLong() == parent) children.append(pid);
    });
    return children;
}

/// True while `pid` runs and is not a zombie (a reparented zombie counts as gone).
inline bool isAlive(qint64 pid) {
    if (pid <= 0 || ::kill(pid_t(pid), 0) != 0) return false;
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly)) return false;
    const QByteArray text = stat.readAll();
    const qsizetype close = text.lastIndexOf(')');
    return close > 0 && text.mid(close + 2, 1) != "Z";
}

} // namespace corral::test
