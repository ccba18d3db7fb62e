#pragma once

// corralctl as a real child process, the way a new user on a fresh machine runs it: a
// throwaway HOME, no SSH agent, no keychain (a D-Bus address that leads nowhere), no display.
// Header-only (QtCore only), so any test can use it.

#include <QByteArray>
#include <QProcess>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

namespace corral::test {

/// One finished (or killed) corralctl run.
struct CtlRun {
    int exitCode = -1; ///< -1 when it crashed or timed out
    QString out;
    QString err;
    bool timedOut = false; ///< killed at the deadline; out and err are then empty
};

/// Where and how corralctl runs.
struct Corralctl {
    QString program;   ///< path of the corralctl binary (CORRALCTL_PATH)
    QString home;      ///< HOME; XDG_CONFIG_HOME is HOME/config
    QString inventory; ///< CORRAL_INVENTORY; empty: the default one (under XDG_CONFIG_HOME)
    int timeoutMs = 60000;

    QProcessEnvironment environment() const {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("HOME"), home);
        env.insert(QStringLiteral("XDG_CONFIG_HOME"), home + QStringLiteral("/config"));
        env.insert(QStringLiteral("CORRAL_INVENTORY"), inventory);
        env.remove(QStringLiteral("SSH_AUTH_SOCK"));
        // No keychain: make that deterministic.
        env.insert(QStringLiteral("DBUS_SESSION_BUS_ADDRESS"),
                   QStringLiteral("unix:path=/nonexistent/corral-test-bus"));
        env.remove(QStringLiteral("DISPLAY"));
        return env;
    }

    /// Runs `program args`, writes `input` to its stdin and closes it; kills it after
    /// timeoutMs.
    CtlRun run(const QStringList &args, const QByteArray &input = {}) const {
        QProcess process;
        process.setProcessEnvironment(environment());
        process.start(program, args);
        if (!input.isEmpty()) process.write(input);
        process.closeWriteChannel();
        if (!process.waitForFinished(timeoutMs)) {
            process.kill();
            process.waitForFinished(5000);
            CtlRun killed;
            killed.timedOut = true;
            return killed;
        }
        return CtlRun{process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
                      QString::fromUtf8(process.readAllStandardOutput()),
                      QString::fromUtf8(process.readAllStandardError()), false};
    }
};

} // namespace corral::test
