#pragma once

#include "agent/AgentProtocol.h"

#include <QObject>
#include <QSet>
#include <QString>

#include <memory>

class QLocalServer;
class QLocalSocket;

namespace corral::agent {

class AgentSites;

/// The agent's side of the socket: accepts clients of this user only (SO_PEERCRED; others
/// are refused and logged), reads their JSON-line requests, runs them on AgentSites, and
/// writes every event once per subscriber. Sites started `ephemeral` belong to the
/// connection that started them and stop when it closes.
class AgentServer : public QObject {
    Q_OBJECT
public:
    /// A subscriber that has this much unread output is disconnected rather than buffered
    /// without bound (a stuck console must not grow the agent).
    static constexpr qint64 MaxPendingBytes = 32 * 1024 * 1024;

    AgentServer(AgentSites &sites, QObject *parent = nullptr);
    ~AgentServer() override;

    /// Listens on `path` (mode 0600; its directory is the caller's 0700 one). A socket file
    /// nobody answers on is replaced; a live one means another agent: an error.
    Result<void> listen(const QString &path);
    QString path() const { return m_path; }
    int clientCount() const { return int(m_clients.size()); }

Q_SIGNALS:
    /// A client asked for shutdown.
    void shutdownRequested();

private:
    struct Client;
    void accept();
    void read(Client *client);
    void handle(Client *client, const QJsonObject &request);
    void reply(Client *client, qint64 id, const Result<QJsonObject> &result);
    void broadcast(const QByteArray &line);
    void drop(Client *client);

    AgentSites &m_sites;
    std::unique_ptr<QLocalServer> m_server;
    QString m_path;
    qint64 m_startedMs = 0;
    QList<Client *> m_clients;
};

} // namespace corral::agent
