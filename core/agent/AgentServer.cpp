#include "agent/AgentServer.h"

#include "agent/AgentSites.h"

#include <QDateTime>
#include <QFile>
#include <QJsonArray>
#include <QLocalServer>
#include <QLocalSocket>
#include <QPointer>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace corral::agent {

struct AgentServer::Client {
    QLocalSocket *socket = nullptr;
    LineReader reader;
    bool subscribed = false;
    QSet<QString> ephemeralSites; ///< started by this client, stopped when it leaves
};

AgentServer::AgentServer(AgentSites &sites, QObject *parent)
    : QObject(parent)
    , m_sites(sites)
    , m_startedMs(QDateTime::currentMSecsSinceEpoch()) {
    connect(&m_sites, &AgentSites::event, this, &AgentServer::broadcast);
}

AgentServer::~AgentServer() {
    for (Client *client : std::as_const(m_clients)) {
        client->socket->disconnect(this);
        delete client;
    }
    if (m_server) {
        m_server->close();
        QFile::remove(m_path);
    }
}

Result<void> AgentServer::listen(const QString &path) {
    m_path = path;
    struct stat st {};
    if (::lstat(QFile::encodeName(path).constData(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return fail(QStringLiteral("%1 exists and is not a socket").arg(path));
        QLocalSocket probe;
        probe.connectToServer(path);
        if (probe.waitForConnected(500))
            return fail(QStringLiteral("another Corral agent already answers on %1").arg(path));
        QFile::remove(path); // left over from an agent that was killed
    }
    m_server = std::make_unique<QLocalServer>();
    // Created 0600 from the start (no window between bind and chmod); the 0700 directory
    // keeps other users out as well. The agent has no other thread yet.
    const mode_t previousMask = ::umask(0177);
    const bool listening = m_server->listen(path);
    ::umask(previousMask);
    if (!listening)
        return fail(QStringLiteral("cannot listen on %1: %2").arg(path, m_server->errorString()));
    connect(m_server.get(), &QLocalServer::newConnection, this, &AgentServer::accept);
    return {};
}

void AgentServer::accept() {
    while (QLocalSocket *socket = m_server->nextPendingConnection()) {
        ucred peer{};
        socklen_t length = sizeof peer;
        const int fd = int(socket->socketDescriptor());
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 ||
            peer.uid != ::geteuid()) {
            qWarning("corral-agent: refused a client of uid %u (pid %d): the agent serves only "
                     "uid %u",
                     unsigned(peer.uid), int(peer.pid), unsigned(::geteuid()));
            socket->write(
                encodeLine({{QStringLiteral("id"), 0},
                            {QStringLiteral("ok"), false},
                            {QStringLiteral("error"),
                             QStringLiteral("refused: this agent serves only its own user")}}));
            socket->flush();
            socket->disconnectFromServer();
            connect(socket, &QLocalSocket::disconnected, socket, &QObject::deleteLater);
            continue;
        }
        auto *client = new Client;
        client->socket = socket;
        socket->setParent(this);
        m_clients.append(client);
        connect(socket, &QLocalSocket::readyRead, this, [this, client] { read(client); });
        connect(socket, &QLocalSocket::disconnected, this, [this, client] { drop(client); });
    }
}

void AgentServer::read(Client *client) {
    client->reader.feed(client->socket->readAll());
    while (auto message = client->reader.next()) {
        if (!message->ok()) {
            reply(client, 0, fail(QStringLiteral("bad request: ") + message->error()));
            client->socket->disconnectFromServer();
            return;
        }
        handle(client, message->value());
        if (!m_clients.contains(client)) return;
    }
}

void AgentServer::handle(Client *client, const QJsonObject &request) {
    const qint64 id = request.value(QStringLiteral("id")).toInteger();
    const int version = request.value(QStringLiteral("v")).toInt(ProtocolVersion);
    if (version != ProtocolVersion)
        return reply(client, id,
                     fail(QStringLiteral("protocol version %1 is not supported (this agent "
                                         "speaks version %2)")
                              .arg(version)
                              .arg(ProtocolVersion)));
    const QString operation = request.value(QStringLiteral("op")).toString();
    const QString siteName = request.value(QStringLiteral("site")).isString()
                                 ? request.value(QStringLiteral("site")).toString()
                                 : QString();
    // Replies to long operations arrive later; the client may be gone by then.
    QPointer<QLocalSocket> alive(client->socket);
    const auto later = [this, client, alive, id](Result<QJsonObject> result) {
        if (alive && m_clients.contains(client)) reply(client, id, result);
    };
    if (operation == QLatin1String(op::Hello)) {
        return reply(client, id,
                     QJsonObject{{QStringLiteral("version"), ProtocolVersion},
                                 {QStringLiteral("pid"), qint64(::getpid())},
                                 {QStringLiteral("socket"), m_path},
                                 {QStringLiteral("startedMs"), m_startedMs},
                                 {QStringLiteral("sites"), int(m_sites.status().size())}});
    }
    if (operation == QLatin1String(op::Status)) {
        QJsonArray sites;
        for (const SiteStatus &status : m_sites.status(siteName))
            sites.append(siteStatusToJson(status));
        return reply(client, id, QJsonObject{{QStringLiteral("sites"), sites}});
    }
    if (operation == QLatin1String(op::Subscribe)) {
        client->subscribed = true;
        m_sites.setSubscribed(true);
        return reply(client, id, QJsonObject{});
    }
    if (operation == QLatin1String(op::Shutdown)) {
        reply(client, id, QJsonObject{});
        client->socket->flush();
        Q_EMIT shutdownRequested();
        return;
    }
    if (operation == QLatin1String(op::Start)) {
        auto site = Site::fromJson(request.value(QStringLiteral("site")).toObject(),
                                   QStringLiteral("site"));
        if (!site) return reply(client, id, fail(site.error()));
        const bool ephemeral = request.value(QStringLiteral("ephemeral")).toBool();
        AgentSites::Timeouts timeouts;
        // Same bounds as corralctl's --start-timeout/--kill-timeout: (0, 3600] seconds.
        for (const auto &[key, target] :
             {std::pair{QStringLiteral("startTimeoutMs"), &timeouts.startMs},
              std::pair{QStringLiteral("killTimeoutMs"), &timeouts.killMs}}) {
            if (!request.contains(key)) continue;
            const double value = request.value(key).toDouble(-1);
            if (value < 1 || value > 3600 * 1000)
                return reply(client, id,
                             fail(QStringLiteral("start: %1 is not in 1..3600000").arg(key)));
            *target = int(value);
        }
        if (ephemeral) client->ephemeralSites.insert(site->name);
        m_sites.start(site.value(), ephemeral, timeouts, later);
        return;
    }
    static const QStringList siteOperations = {
        QString::fromLatin1(op::Stop),   QString::fromLatin1(op::Restart),
        QString::fromLatin1(op::Scale),  QString::fromLatin1(op::Policy),
        QString::fromLatin1(op::Enable), QString::fromLatin1(op::Forget),
        QString::fromLatin1(op::History)};
    if (!siteOperations.contains(operation))
        return reply(
            client, id,
            fail(QStringLiteral("unknown operation %1")
                     .arg(operation.isEmpty() ? QStringLiteral("(none)")
                                              : QStringLiteral("'%1'").arg(operation.left(64)))));
    if (siteName.isEmpty())
        return reply(client, id,
                     fail(QStringLiteral("%1: the request names no site")
                              .arg(operation.isEmpty() ? QStringLiteral("request") : operation)));
    const auto portArgument = [&]() -> std::optional<quint16> {
        const int port = request.value(QStringLiteral("port")).toInt(0);
        if (port < 1 || port > 65535) return std::nullopt;
        return quint16(port);
    };
    if (operation == QLatin1String(op::Stop)) {
        client->ephemeralSites.remove(siteName);
        return m_sites.stop(siteName, later);
    }
    if (operation == QLatin1String(op::Restart)) {
        if (request.contains(QStringLiteral("port")) && !portArgument())
            return reply(client, id, fail(QStringLiteral("restart: port is not in 1..65535")));
        return m_sites.restart(siteName, portArgument(), later);
    }
    if (operation == QLatin1String(op::Scale) && request.contains(QStringLiteral("port"))) {
        // "One worker fewer, this one": the console's Remove worker.
        const auto port = portArgument();
        if (!port) return reply(client, id, fail(QStringLiteral("scale: port is not in 1..65535")));
        return m_sites.removeWorker(siteName, *port, later);
    }
    if (operation == QLatin1String(op::Scale)) {
        if (!request.value(QStringLiteral("workers")).isDouble())
            return reply(client, id, fail(QStringLiteral("scale: workers must be a number")));
        return m_sites.scale(siteName, request.value(QStringLiteral("workers")).toInt(), later);
    }
    if (operation == QLatin1String(op::Policy)) {
        const auto policy = policyFromName(request.value(QStringLiteral("policy")).toString());
        if (!policy)
            return reply(client, id,
                         fail(QStringLiteral("policy: not one of %1").arg(policyNames())));
        auto changed = m_sites.setPolicy(siteName, *policy);
        return reply(client, id,
                     changed ? Result<QJsonObject>(QJsonObject{})
                             : Result<QJsonObject>(fail(changed.error())));
    }
    if (operation == QLatin1String(op::Enable)) {
        const auto port = portArgument();
        if (!port)
            return reply(client, id, fail(QStringLiteral("enable: port is not in 1..65535")));
        auto changed = m_sites.setBackendEnabled(
            siteName, *port, request.value(QStringLiteral("enabled")).toBool(true));
        return reply(client, id,
                     changed ? Result<QJsonObject>(QJsonObject{})
                             : Result<QJsonObject>(fail(changed.error())));
    }
    if (operation == QLatin1String(op::Forget)) {
        auto forgotten = m_sites.forget(siteName);
        return reply(client, id,
                     forgotten ? Result<QJsonObject>(QJsonObject{})
                               : Result<QJsonObject>(fail(forgotten.error())));
    }
    if (operation == QLatin1String(op::History)) {
        auto history = m_sites.history(siteName);
        return reply(client, id,
                     history ? Result<QJsonObject>(
                                   QJsonObject{{QStringLiteral("snapshots"), history.value()}})
                             : Result<QJsonObject>(fail(history.error())));
    }
}

void AgentServer::reply(Client *client, qint64 id, const Result<QJsonObject> &result) {
    QJsonObject message{{QStringLiteral("id"), id}, {QStringLiteral("ok"), result.ok()}};
    if (result)
        message.insert(QStringLiteral("result"), result.value());
    else
        message.insert(QStringLiteral("error"), result.error());
    client->socket->write(encodeLine(message));
}

void AgentServer::broadcast(const QByteArray &line) {
    const QList<Client *> clients = m_clients;
    for (Client *client : clients) {
        if (!client->subscribed) continue;
        if (client->socket->bytesToWrite() > MaxPendingBytes) {
            qWarning("corral-agent: a subscriber stopped reading; disconnecting it");
            client->socket->abort();
            continue;
        }
        client->socket->write(line);
    }
}

void AgentServer::drop(Client *client) {
    if (!m_clients.removeOne(client)) return;
    m_sites.setSubscribed(std::any_of(m_clients.cbegin(), m_clients.cend(),
                                      [](const Client *c) { return c->subscribed; }));
    // Sites that belong to this client's session (corral --demo) end with it.
    for (const QString &name : std::as_const(client->ephemeralSites)) {
        const auto statuses = m_sites.status(name);
        if (statuses.isEmpty() || !statuses.first().ephemeral) continue;
        m_sites.stop(name, [this, name](const Result<QJsonObject> &) {
            const auto now = m_sites.status(name);
            if (!now.isEmpty() && now.first().ephemeral) (void)m_sites.forget(name);
        });
    }
    client->socket->deleteLater();
    delete client;
}

} // namespace corral::agent
