#pragma once

// The demo worker (app/demo-worker) as a child process of a test: started on a port with
// options, ready once that port accepts (polled with a deadline, no sleeps), stopped by PID.
// The one launcher for tests that need a real backend process rather than the in-process
// TestBackend; tests of the worker's own command line use launch() with whole argument lists.

#include "TestProcess.h"

#include <QDeadlineTimer>
#include <QProcess>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

#include <csignal>

#include <sys/types.h>
#include <unistd.h>

namespace corral::test {

class DemoWorker {
public:
    static constexpr int defaultTimeoutMs = 15000;

    /// `program` is the corral-demo-worker binary (the tests' DEMO_WORKER_PATH). With
    /// `ownProcessGroup`, the worker leads a process group of its own and stop()/kill() signal
    /// the whole group (its --spawn-child children too).
    explicit DemoWorker(QString program, bool ownProcessGroup = false)
        : m_program(std::move(program))
        , m_ownProcessGroup(ownProcessGroup) {
        if (ownProcessGroup) m_process.setChildProcessModifier([] { ::setpgid(0, 0); });
    }
    ~DemoWorker() { stop(); }
    DemoWorker(const DemoWorker &) = delete;
    DemoWorker &operator=(const DemoWorker &) = delete;

    /// Starts `PROGRAM --port PORT OPTIONS...` (port 0: a free port, see port()) and waits
    /// until the port accepts. False, with `error` saying why (did not start, exited, never
    /// listened; with what it printed), otherwise.
    bool start(quint16 port = 0, const QStringList &options = {}, QString *error = nullptr,
               int timeoutMs = defaultTimeoutMs) {
        return startOn(port, options, error) && waitUntilListening(error, timeoutMs);
    }
    /// start() in two halves, so that several workers start at once: the process only...
    bool startOn(quint16 port, const QStringList &options = {}, QString *error = nullptr) {
        m_port = port != 0 ? port : freePort();
        if (m_port == 0) return failed(error, QStringLiteral("no free port"));
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.remove(QStringLiteral("PORT")); // --port decides, not the test's environment
        m_options = options;
        return launch(QStringList{QStringLiteral("--port"), QString::number(m_port)} + options,
                      environment, error);
    }
    /// ... then the wait until its port accepts.
    bool waitUntilListening(QString *error = nullptr, int timeoutMs = defaultTimeoutMs) {
        if (waitUntilAccepting(m_port, timeoutMs)) return true;
        return failed(error,
                      QStringLiteral("demo worker (%1) never listened on port %2: %3")
                          .arg(m_program)
                          .arg(m_port)
                          .arg(QString::fromUtf8(output() + m_process.readAllStandardError())));
    }

    /// Starts the same command again (same port and options) after stop(), and waits until
    /// it accepts.
    bool restart(QString *error = nullptr) {
        stop();
        return start(m_port, m_options, error);
    }

    /// Starts `PROGRAM ARGUMENTS` exactly as given, in `environment`, and returns once the
    /// process runs, without waiting for a port.
    bool launch(const QStringList &arguments,
                const QProcessEnvironment &environment = QProcessEnvironment::systemEnvironment(),
                QString *error = nullptr) {
        m_output.clear();
        m_process.setProcessEnvironment(environment);
        m_process.start(m_program, arguments);
        if (m_process.waitForStarted(defaultTimeoutMs)) return true;
        return failed(error, QStringLiteral("demo worker (%1) did not start: %2")
                                 .arg(m_program, m_process.errorString()));
    }

    /// Polls a connect to 127.0.0.1:`port` until it is accepted (true), the worker exits or
    /// the deadline passes (false).
    bool waitUntilAccepting(quint16 port, int timeoutMs = defaultTimeoutMs) {
        return waitForListener(port, m_process, timeoutMs);
    }

    /// Reads its stdout until it contains `needle` (true) or the worker exits or the deadline
    /// passes (false).
    bool waitForOutput(const QByteArray &needle, int timeoutMs = defaultTimeoutMs) {
        const QDeadlineTimer deadline(timeoutMs);
        for (;;) {
            if (output().contains(needle)) return true;
            if (deadline.hasExpired() || !running()) return false;
            m_process.waitForReadyRead(int(qMax<qint64>(1, deadline.remainingTime())));
        }
    }

    /// Everything it printed on stdout so far (stderr stays in process()).
    QByteArray output() {
        m_output += m_process.readAllStandardOutput();
        return m_output;
    }

    /// SIGTERM by PID (to its group with ownProcessGroup), SIGKILL when it has not exited
    /// after `graceMs`.
    void stop(int graceMs = 10000) {
        if (!m_ownProcessGroup) return stopProcess(m_process, graceMs);
        if (m_process.state() == QProcess::NotRunning) return;
        sendSignal(SIGTERM);
        if (!m_process.waitForFinished(graceMs)) kill();
        m_process.waitForFinished(defaultTimeoutMs);
    }
    /// SIGKILL by PID at once (to its group with ownProcessGroup).
    void kill() {
        if (m_process.state() == QProcess::NotRunning) return;
        sendSignal(SIGKILL);
        m_process.waitForFinished(defaultTimeoutMs);
    }

    bool waitForExit(int timeoutMs = defaultTimeoutMs) {
        return m_process.waitForFinished(timeoutMs);
    }
    /// The exit code after a normal exit; -1 after a signal.
    int exitCode() const {
        return m_process.exitStatus() == QProcess::NormalExit ? m_process.exitCode() : -1;
    }

    /// The port given to start() (or the free one it chose); 0 before start().
    quint16 port() const { return m_port; }
    qint64 pid() const { return m_process.processId(); }
    bool running() const { return m_process.state() == QProcess::Running; }
    QProcess &process() { return m_process; }

private:
    static bool failed(QString *error, const QString &why) {
        if (error) *error = why;
        return false;
    }
    void sendSignal(int number) {
        const auto pid = pid_t(m_process.processId());
        if (pid > 0) ::kill(m_ownProcessGroup ? -pid : pid, number);
    }

    QString m_program;
    bool m_ownProcessGroup;
    QProcess m_process;
    QByteArray m_output;
    quint16 m_port = 0;
    QStringList m_options;
};

} // namespace corral::test
