#pragma once

// The Node fixture app of issue 22 (tests/fixtures/affinity-app: Express, express-session,
// socket.io), as installed into the build tree by the CTest setup test affinity_app_npm_ci,
// and N workers of it started as real child processes, each on its own port, stopped by PID.
// The test defines AFFINITY_APP_DIR (the installed app's directory) and requires the fixture
// affinity_app. Workers are DemoWorkers whose program is server.js (run by its `env node`
// line): one launcher, one readiness wait, one stop for every worker process of the tests.

#include "DemoWorker.h"
#include "TestProcess.h"

#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>
#include <QString>
#include <QStringList>

#include <memory>
#include <vector>

namespace corral::test {

/// The installed app's directory (server.js, node_modules).
inline QString affinityAppDir() {
    return QStringLiteral(AFFINITY_APP_DIR);
}

/// Why the app cannot run here ("node is not on PATH", "... not installed: run ctest -R
/// affinity_app_npm_ci"), or an empty string when it can.
inline QString affinityAppProblem() {
    if (QStandardPaths::findExecutable(QStringLiteral("node")).isEmpty())
        return QStringLiteral("node is not on PATH (installer/install-deps.sh installs nodejs)");
    const QDir dir(affinityAppDir());
    if (!QFileInfo(dir.filePath(QStringLiteral("server.js"))).isExecutable() ||
        !QFileInfo::exists(dir.filePath(QStringLiteral("node_modules/.corral-stamp"))))
        return QStringLiteral("the fixture app is not installed in %1 (its setup test: ctest -R "
                              "affinity_app_npm_ci)")
            .arg(affinityAppDir());
    return {};
}

/// N workers of the app: `node server.js --port P OPTIONS...` on consecutive ports below the
/// ephemeral range.
class NodeAffinityApp {
public:
    NodeAffinityApp() = default;
    ~NodeAffinityApp() { stop(); }
    NodeAffinityApp(const NodeAffinityApp &) = delete;
    NodeAffinityApp &operator=(const NodeAffinityApp &) = delete;

    /// Starts `count` workers with `options` ("--sessions", "file:DIR", "--socketio",
    /// "polling") at once and waits until each one's port accepts. False, with `error` saying
    /// which worker and what it printed, otherwise.
    bool start(int count, const QStringList &options, QString *error = nullptr,
               int timeoutMs = DemoWorker::defaultTimeoutMs) {
        stop();
        if (const QString problem = affinityAppProblem(); !problem.isEmpty())
            return failed(error, problem);
        const quint16 base = workerBasePort(count);
        if (base == 0) return failed(error, QStringLiteral("no %1 free ports").arg(count));
        const QString program = QDir(affinityAppDir()).filePath(QStringLiteral("server.js"));
        for (int i = 0; i < count; ++i) {
            m_workers.push_back(std::make_unique<DemoWorker>(program));
            if (!m_workers.back()->startOn(quint16(base + i), options, error)) return false;
        }
        // Each wait takes what is left of one deadline: node starts the workers side by side.
        const QDeadlineTimer deadline(timeoutMs);
        for (const auto &worker : m_workers)
            if (!worker->waitUntilListening(error, int(qMax<qint64>(1, deadline.remainingTime()))))
                return false;
        return true;
    }

    /// SIGTERM to each worker by PID (SIGKILL after a grace period).
    void stop() {
        for (const auto &worker : m_workers)
            worker->stop(5000);
        m_workers.clear();
    }

    int count() const { return int(m_workers.size()); }
    quint16 port(int index) const { return m_workers.at(size_t(index))->port(); }
    qint64 pid(int index) const { return m_workers.at(size_t(index))->pid(); }
    DemoWorker &worker(int index) { return *m_workers.at(size_t(index)); }

private:
    static bool failed(QString *error, const QString &why) {
        if (error) *error = why;
        return false;
    }

    std::vector<std::unique_ptr<DemoWorker>> m_workers;
};

} // namespace corral::test
