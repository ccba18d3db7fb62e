#pragma once

// A real corral-agent for one test: private runtime and state directories (so the test never
// meets the user's own agent), started and stopped by PID.

#include "TestProcess.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QLocalSocket>
#include <QProcess>
#include <QTemporaryDir>
#include <QThread>

#include <csignal>
#include <sys/stat.h>

namespace corral::test {

class AgentFixture {
public:
    /// Points this process (and every child it starts: corralctl, a console) at private
    /// directories and at `program` for autostart.
    explicit AgentFixture(const QString &program)
        : m_program(program) {
        ::chmod(QFile::encodeName(m_runtime.path()).constData(), 0700);
        qputenv("XDG_RUNTIME_DIR", QFile::encodeName(m_runtime.path()));
        qputenv("XDG_STATE_HOME", QFile::encodeName(m_state.path()));
        qputenv("CORRAL_AGENT_PROGRAM", QFile::encodeName(program));
    }
    ~AgentFixture() { kill(); }

    QString runtimeDirectory() const { return m_runtime.path(); }
    QString socketPath() const { return m_runtime.path() + QStringLiteral("/corral/agent.sock"); }
    QString stateDirectory() const { return m_state.path() + QStringLiteral("/corral"); }
    QString logPath() const { return m_state.path() + QStringLiteral("/agent.log"); }

    /// Starts an agent as this test's child and waits (with a deadline) for its socket.
    bool start(const QStringList &extraEnvironment = {}) {
        m_process = std::make_unique<QProcess>();
        m_process->setProgram(m_program);
        m_process->setStandardOutputFile(logPath(), QIODevice::Append);
        m_process->setStandardErrorFile(logPath(), QIODevice::Append);
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        for (const QString &pair : extraEnvironment)
            environment.insert(pair.section(QLatin1Char('='), 0, 0),
                               pair.section(QLatin1Char('='), 1));
        m_process->setProcessEnvironment(environment);
        m_process->start();
        if (!m_process->waitForStarted(5000)) return false;
        // The socket file may be left over from a killed agent: wait until one answers.
        const QDeadlineTimer deadline(10000);
        while (!deadline.hasExpired()) {
            if (m_process->state() == QProcess::NotRunning) return false;
            QLocalSocket probe;
            probe.connectToServer(socketPath());
            if (probe.waitForConnected(100)) return true;
            QThread::msleep(10);
        }
        return false;
    }

    qint64 pid() const { return m_process ? m_process->processId() : 0; }
    QProcess *process() const { return m_process.get(); }

    /// SIGKILL, as a crash would: no draining, no state saved.
    void kill() {
        if (!m_process || m_process->state() == QProcess::NotRunning) return;
        ::kill(pid_t(m_process->processId()), SIGKILL);
        m_process->waitForFinished(5000);
    }

    /// SIGTERM and wait for the exit; returns the exit code (-1 if it did not exit in time).
    int terminate(int timeoutMs = 20000) {
        if (!m_process || m_process->state() == QProcess::NotRunning) return -1;
        ::kill(pid_t(m_process->processId()), SIGTERM);
        if (!m_process->waitForFinished(timeoutMs)) return -1;
        return m_process->exitStatus() == QProcess::NormalExit ? m_process->exitCode() : -1;
    }

    QByteArray log() const {
        QFile file(logPath());
        return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
    }

private:
    QString m_program;
    QTemporaryDir m_runtime;
    QTemporaryDir m_state;
    std::unique_ptr<QProcess> m_process;
};

/// Polls until every pid is gone or the deadline passes; true when all are gone.
inline bool waitUntilGone(const QList<qint64> &pids, int timeoutMs) {
    const QDeadlineTimer deadline(timeoutMs);
    for (;;) {
        bool anyAlive = false;
        for (qint64 pid : pids)
            anyAlive = anyAlive || isAlive(pid);
        if (!anyAlive) return true;
        if (deadline.hasExpired()) return false;
        QThread::msleep(20);
    }
}

} // namespace corral::test
