#include "agent/AgentClient.h"

#include "proxy/AdminClient.h"
#include "util/Paths.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QLocalSocket>
#include <QProcess>
#include <QStandardPaths>
#include <QThread>

namespace corral::agent {

Result<QString> agentSocketPath() {
    // The runtime directory rule (0700, owned by this user) is the admin API's: one rule.
    auto directory = adminRuntimeDirectory();
    if (!directory) return fail(QStringLiteral("agent socket: ") + directory.error());
    return QString(directory.value() + QStringLiteral("/agent.sock"));
}

QString agentStateFilePath() {
    return corralStateDirectory() + QStringLiteral("/agent-state.json");
}

QString agentLogFilePath() {
    return corralStateDirectory() + QStringLiteral("/agent.log");
}

QString agentProgramPath() {
    const QString configured = qEnvironmentVariable("CORRAL_AGENT_PROGRAM");
    if (!configured.isEmpty()) return configured;
    const QString beside = QCoreApplication::applicationDirPath() + QStringLiteral("/corral-agent");
    if (QFileInfo(beside).isExecutable()) return beside;
    const QString onPath = QStandardPaths::findExecutable(QStringLiteral("corral-agent"));
    return onPath.isEmpty() ? beside : onPath;
}

AgentClient::AgentClient(QObject *parent)
    : QObject(parent) {
    qRegisterMetaType<corral::ClusterSnapshot>();
}

AgentClient::~AgentClient() {
    if (m_socket) m_socket->disconnect(this);
}

bool AgentClient::isConnected() const {
    return m_socket && m_socket->state() == QLocalSocket::ConnectedState;
}

Result<void> AgentClient::connectToAgent(bool autostart, int timeoutMs) {
    auto path = agentSocketPath();
    if (!path) return fail(path.error());
    m_socketPath = path.value();
    const QDeadlineTimer deadline(timeoutMs);
    bool started = false;
    QString lastError;
    for (int attempt = 0;; ++attempt) {
        m_socket = std::make_unique<QLocalSocket>();
        m_socket->connectToServer(m_socketPath);
        if (m_socket->waitForConnected(int(qMin<qint64>(1000, deadline.remainingTime())))) break;
        lastError = m_socket->errorString();
        m_socket.reset();
        // Qt calls a missing socket file an "invalid name": say what it is.
        if (!QFile::exists(m_socketPath)) lastError = QStringLiteral("no socket file");
        if (!autostart)
            return fail(
                QStringLiteral("no Corral agent answers on %1 (%2)").arg(m_socketPath, lastError));
        if (!started) {
            QProcess process;
            process.setProgram(agentProgramPath());
            QDir().mkpath(corralStateDirectory());
            process.setStandardOutputFile(agentLogFilePath(), QIODevice::Append);
            process.setStandardErrorFile(agentLogFilePath(), QIODevice::Append);
            process.setStandardInputFile(QProcess::nullDevice());
            qint64 pid = 0;
            if (!process.startDetached(&pid))
                return fail(QStringLiteral("cannot start the Corral agent %1: %2 (socket %3)")
                                .arg(process.program(), process.errorString(), m_socketPath));
            started = true;
        }
        if (deadline.hasExpired())
            return fail(QStringLiteral("the Corral agent did not answer on %1 within %2 s "
                                       "(last error: %3; its log: %4)")
                            .arg(m_socketPath)
                            .arg(timeoutMs / 1000.0)
                            .arg(lastError, agentLogFilePath()));
        QThread::msleep(attempt < 20 ? 10 : 50); // the agent needs a few ms to listen
    }
    connect(m_socket.get(), &QLocalSocket::readyRead, this, &AgentClient::readAvailable);
    connect(m_socket.get(), &QLocalSocket::disconnected, this, [this] {
        failPending(QStringLiteral("the Corral agent closed the connection"));
        Q_EMIT disconnected();
    });
    auto hello =
        call(QString::fromLatin1(op::Hello), {}, int(qMax<qint64>(1000, deadline.remainingTime())));
    if (!hello) return fail(hello.error());
    m_agentPid = hello->value(QStringLiteral("pid")).toInteger();
    return {};
}

Result<QJsonObject> AgentClient::call(const QString &operation, QJsonObject arguments,
                                      int timeoutMs) {
    if (!isConnected())
        return fail(QStringLiteral("not connected to the Corral agent (%1)").arg(m_socketPath));
    const qint64 id = m_nextId++;
    arguments.insert(QStringLiteral("id"), id);
    arguments.insert(QStringLiteral("op"), operation);
    m_socket->write(encodeLine(arguments));
    m_waitingFor = id;
    m_waitedReply.reset();
    const QDeadlineTimer deadline(timeoutMs);
    while (!m_waitedReply) {
        if (!m_socket->flush() && m_socket->bytesToWrite() > 0)
            m_socket->waitForBytesWritten(int(qMin<qint64>(100, deadline.remainingTime())));
        readAvailable();
        if (m_waitedReply) break;
        if (!isConnected()) {
            m_waitingFor = 0;
            return fail(
                QStringLiteral("the Corral agent closed the connection (%1)").arg(m_socketPath));
        }
        if (deadline.hasExpired()) {
            m_waitingFor = 0;
            return fail(QStringLiteral("the Corral agent did not answer '%1' within %2 s")
                            .arg(operation)
                            .arg(timeoutMs / 1000.0));
        }
        m_socket->waitForReadyRead(int(qMin<qint64>(250, deadline.remainingTime())));
    }
    m_waitingFor = 0;
    Result<QJsonObject> reply = std::move(*m_waitedReply);
    m_waitedReply.reset();
    return reply;
}

void AgentClient::send(const QString &operation, QJsonObject arguments,
                       std::function<void(Result<QJsonObject>)> done) {
    if (!isConnected()) {
        if (done)
            QMetaObject::invokeMethod(
                this,
                [done, path = m_socketPath] {
                    done(fail(QStringLiteral("not connected to the Corral agent (%1)").arg(path)));
                },
                Qt::QueuedConnection);
        return;
    }
    const qint64 id = m_nextId++;
    arguments.insert(QStringLiteral("id"), id);
    arguments.insert(QStringLiteral("op"), operation);
    if (done) m_pending.insert(id, std::move(done));
    m_socket->write(encodeLine(arguments));
}

Result<QList<SiteStatus>> AgentClient::status(const QString &site, int timeoutMs) {
    QJsonObject arguments;
    if (!site.isEmpty()) arguments.insert(QStringLiteral("site"), site);
    auto reply = call(QString::fromLatin1(op::Status), arguments, timeoutMs);
    if (!reply) return fail(reply.error());
    QList<SiteStatus> sites;
    for (const QJsonValue &value : reply->value(QStringLiteral("sites")).toArray()) {
        auto status = siteStatusFromJson(value.toObject());
        if (!status) return fail(QStringLiteral("agent status: ") + status.error());
        sites.append(status.value());
    }
    return sites;
}

void AgentClient::subscribe() {
    send(QString::fromLatin1(op::Subscribe), {});
}

void AgentClient::readAvailable() {
    if (!m_socket) return;
    m_reader.feed(m_socket->readAll());
    while (auto message = m_reader.next()) {
        if (!message->ok()) {
            // The agent is ours (same uid); a malformed line means a broken agent or version.
            failPending(QStringLiteral("the Corral agent sent a bad message: ") + message->error());
            m_socket->abort();
            return;
        }
        dispatch(message->value());
        if (!m_socket) return;
    }
}

void AgentClient::dispatch(const QJsonObject &message) {
    const QString event = message.value(QStringLiteral("event")).toString();
    if (event.isEmpty()) {
        const qint64 id = message.value(QStringLiteral("id")).toInteger();
        Result<QJsonObject> result =
            message.value(QStringLiteral("ok")).toBool()
                ? Result<QJsonObject>(message.value(QStringLiteral("result")).toObject())
                : Result<QJsonObject>(fail(message.value(QStringLiteral("error")).toString()));
        if (id == m_waitingFor && id != 0) {
            m_waitedReply = std::move(result);
        } else if (auto done = m_pending.take(id)) {
            done(std::move(result));
        }
        return;
    }
    if (event == QLatin1String("snapshot")) {
        Q_EMIT snapshot(snapshotFromJson(message.value(QStringLiteral("snapshot")).toObject()));
    } else if (event == QLatin1String("worker")) {
        const WorkerState parsed =
            workerStateFromName(message.value(QStringLiteral("state")).toString())
                .value_or(WorkerState::Stopped);
        Q_EMIT workerStateChanged(message.value(QStringLiteral("site")).toString(),
                                  quint16(message.value(QStringLiteral("port")).toInt()),
                                  message.value(QStringLiteral("pid")).toInteger(), parsed,
                                  message.value(QStringLiteral("cause")).toString());
    } else if (event == QLatin1String("rolling")) {
        Q_EMIT rollingRestartProgress(message.value(QStringLiteral("site")).toString(),
                                      message.value(QStringLiteral("replaced")).toInt(),
                                      message.value(QStringLiteral("total")).toInt());
    } else if (event == QLatin1String("sites")) {
        QList<SiteStatus> sites;
        for (const QJsonValue &value : message.value(QStringLiteral("sites")).toArray())
            if (auto status = siteStatusFromJson(value.toObject())) sites.append(status.value());
        Q_EMIT sitesChanged(sites);
    }
}

void AgentClient::failPending(const QString &message) {
    const auto pending = std::exchange(m_pending, {});
    for (const auto &done : pending)
        done(fail(message));
}

} // namespace corral::agent
