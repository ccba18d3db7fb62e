#pragma once

#include "agent/AgentProtocol.h"

#include <QJsonObject>
#include <QObject>
#include <QString>

#include <functional>
#include <memory>

class QLocalSocket;

namespace corral::agent {

/// Where the user's agent listens: $XDG_RUNTIME_DIR/corral/agent.sock, or
/// /tmp/corral-$UID/agent.sock without XDG_RUNTIME_DIR; the directory is created 0700 and
/// refused when it is not a private directory of this user.
Result<QString> agentSocketPath();
/// $XDG_STATE_HOME/corral/agent-state.json: the sites the agent runs, restored at its start.
QString agentStateFilePath();
/// The agent's own log (its stdout and stderr when started on demand).
QString agentLogFilePath();
/// The corral-agent program: $CORRAL_AGENT_PROGRAM, else corral-agent beside the running
/// executable, else the one on PATH.
QString agentProgramPath();

/// A connection to the user's agent, used by corralctl (blocking calls) and the console
/// (asynchronous calls and pushed events). One connection per object.
class AgentClient : public QObject {
    Q_OBJECT
public:
    explicit AgentClient(QObject *parent = nullptr);
    ~AgentClient() override;

    /// Connects to the running agent; when none answers and `autostart` is set, starts one
    /// (agentProgramPath(), detached, its output in agentLogFilePath()) and waits for its
    /// socket up to `timeoutMs`. The error names the socket path (and the agent's log).
    Result<void> connectToAgent(bool autostart = true, int timeoutMs = 10000);
    bool isConnected() const;
    QString socketPath() const { return m_socketPath; }
    /// The agent's pid (from hello), 0 before connecting.
    qint64 agentPid() const { return m_agentPid; }

    /// Sends a request and waits for its reply without running the event loop (events that
    /// arrive meanwhile are emitted from inside). For corralctl.
    Result<QJsonObject> call(const QString &op, QJsonObject arguments = {}, int timeoutMs = 30000);
    /// Sends a request; `done` runs from the event loop with the reply's result or error.
    /// For the console. `done` is dropped unrun if the client is destroyed first; on
    /// disconnection it runs with an error.
    void send(const QString &op, QJsonObject arguments,
              std::function<void(Result<QJsonObject>)> done = {});

    /// Typed helpers over call().
    Result<QList<SiteStatus>> status(const QString &site = QString(), int timeoutMs = 10000);

    /// Asks the agent to push events to this connection (snapshots once per tick, worker
    /// state changes, rolling restart progress, the site list).
    void subscribe();

Q_SIGNALS:
    void snapshot(const corral::ClusterSnapshot &snapshot);
    void workerStateChanged(const QString &site, quint16 port, qint64 pid,
                            corral::WorkerState state, const QString &cause);
    void rollingRestartProgress(const QString &site, int replaced, int total);
    void sitesChanged(const QList<corral::agent::SiteStatus> &sites);
    /// The agent went away (it stopped or was killed).
    void disconnected();

private:
    void readAvailable();
    void dispatch(const QJsonObject &message);
    void failPending(const QString &message);

    std::unique_ptr<QLocalSocket> m_socket;
    LineReader m_reader;
    QString m_socketPath;
    qint64 m_agentPid = 0;
    qint64 m_nextId = 1;
    QHash<qint64, std::function<void(Result<QJsonObject>)>> m_pending;
    // call(): the reply it waits for, stored by dispatch().
    qint64 m_waitingFor = 0;
    std::optional<Result<QJsonObject>> m_waitedReply;
};

} // namespace corral::agent

Q_DECLARE_METATYPE(corral::agent::SiteStatus)
