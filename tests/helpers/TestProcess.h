#pragma once

// Small helpers shared by tests that start real processes and listeners.

#include <QFile>
#include <QHostAddress>
#include <QRandomGenerator>
#include <QTcpServer>

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
/// short connections of a test never hold a port a worker is about to be given.
inline quint16 workerBasePort() {
    for (int attempt = 0; attempt < 100; ++attempt) {
        const quint16 port = quint16(20000 + QRandomGenerator::global()->bounded(12000));
        QTcpServer probe;
        if (probe.listen(QHostAddress::LocalHost, port)) return port;
    }
    return 0;
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
