#include "agent/AgentDaemon.h"

#include "agent/AgentClient.h"
#include "agent/AgentServer.h"
#include "agent/AgentSites.h"
#include "supervisor/ProcessGroupReaper.h"
#include "util/SignalWatcher.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QTextStream>
#include <QTimer>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace corral::agent {

namespace {

const char usage[] =
    "Usage: corral-agent [--help]\n"
    "\n"
    "The per-user Corral agent: owns every local site (workers, embedded proxy, metrics),\n"
    "serves corral and corralctl on $XDG_RUNTIME_DIR/corral/agent.sock (/tmp/corral-$UID\n"
    "without XDG_RUNTIME_DIR) and brings back the sites that were running when it last\n"
    "stopped (state in $XDG_STATE_HOME/corral/agent-state.json). corral and corralctl start\n"
    "it on demand; `systemctl --user enable --now corral-agent` runs it as a user unit.\n"
    "SIGTERM, SIGINT, SIGHUP or `corralctl agent stop` drain and stop every site, exit 0.\n"
    "\n"
    "Environment: CORRAL_LOG_MAX_BYTES  rotate worker logs at this size (default 10 MiB)\n";

QString timestamp() {
    return QDateTime::currentDateTime().toString(Qt::ISODateWithMs);
}

void logLine(const QString &text) {
    QTextStream(stderr) << timestamp() << " corral-agent[" << ::getpid() << "]: " << text
                        << Qt::endl;
}

} // namespace

int runAgent(const QStringList &arguments) {
    if (arguments.contains(QStringLiteral("--help")) || arguments.contains(QStringLiteral("-h"))) {
        QTextStream(stdout) << usage;
        return 0;
    }
    if (!arguments.isEmpty()) {
        QTextStream(stderr) << "corral-agent: unknown argument " << arguments.first() << "\n"
                            << usage;
        return 2;
    }
    // Its own session: a Ctrl-C or hangup in the terminal of the corralctl that started it
    // must not reach the agent (or its workers).
    ::setsid();

    auto socketPath = agentSocketPath();
    if (!socketPath) {
        logLine(socketPath.error());
        return 1;
    }
    // One agent per user: the lock is held for the agent's lifetime, so two agents started
    // at once by two clients cannot both serve (the loser exits; its client finds the winner).
    const QString lockPath =
        QFileInfo(socketPath.value()).absolutePath() + QStringLiteral("/agent.lock");
    const int lockFd =
        ::open(QFile::encodeName(lockPath).constData(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockFd < 0 || ::flock(lockFd, LOCK_EX | LOCK_NB) != 0) {
        logLine(QStringLiteral("another Corral agent runs for this user (lock %1 is held)")
                    .arg(lockPath));
        return 1;
    }

    // Before any worker exists, so the sentinel inherits as few descriptors as possible.
    ProcessGroupReaper::instance();

    SupervisionPolicy policy;
    bool numeric = false;
    const qint64 logMax = qEnvironmentVariable("CORRAL_LOG_MAX_BYTES").toLongLong(&numeric);
    if (numeric && logMax >= 1024) policy.logMaxBytes = logMax;

    AgentSites sites(policy, agentStateFilePath());
    AgentServer server(sites);
    if (auto listening = server.listen(socketPath.value()); !listening) {
        logLine(listening.error());
        return 1;
    }
    logLine(QStringLiteral("listening on %1").arg(server.path()));
    sites.restore();

    bool stopping = false;
    const auto shutdown = [&](const QString &why) {
        if (stopping) return;
        stopping = true;
        logLine(QStringLiteral("%1: stopping every site").arg(why));
        sites.stopAll([] { QCoreApplication::exit(0); });
        // Workers are killed within the kill timeout; past that (and a margin), exit anyway:
        // the workers' destructors and the sentinel end whatever is left.
        QTimer::singleShot(policy.killTimeoutMs + 5000, qApp, [] {
            logLine(QStringLiteral("sites did not stop in time; exiting"));
            QCoreApplication::exit(0);
        });
    };
    SignalWatcher watcher({SIGTERM, SIGINT, SIGHUP});
    QObject::connect(&watcher, &SignalWatcher::received, qApp,
                     [&](int signal) { shutdown(QString::fromLatin1(sigabbrev_np(signal))); });
    QObject::connect(&server, &AgentServer::shutdownRequested, qApp,
                     [&] { shutdown(QStringLiteral("shutdown requested")); });
    const int code = QCoreApplication::exec();
    logLine(QStringLiteral("stopped"));
    ::close(lockFd);
    return code;
}

} // namespace corral::agent
