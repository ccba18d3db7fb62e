#include "BalancerFixture.h"

#include "HttpClient.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>

namespace corral::test {

qint64 HttpReply::jsonNumber(const QString &key) const {
    return qint64(QJsonDocument::fromJson(body).object().value(key).toDouble());
}

HttpReply httpGet(quint16 port, const QByteArray &path, const QByteArray &hostHeader,
                  int timeoutMs) {
    HttpClient client(port, timeoutMs);
    if (!client.connected()) return {};
    const QByteArray request =
        "GET " + path + " HTTP/1.1\r\nHost: " + hostHeader + "\r\nConnection: close\r\n\r\n";
    if (!client.send(request.toStdString())) return {};
    const HttpResponse response = client.read();
    if (response.status == 0) return {};
    return {response.status, QByteArray::fromStdString(response.body)};
}

int workerPortOf(const HttpReply &reply) {
    return int(reply.jsonNumber(QStringLiteral("port")));
}

QMap<int, int> spreadOverWorkers(quint16 port, int count) {
    QMap<int, int> perWorker;
    for (int i = 0; i < count; ++i)
        perWorker[workerPortOf(httpGet(port))] += 1;
    return perWorker;
}

QStringList corralLeftovers(const QString &configPath) {
    const QFileInfo info(configPath);
    return QDir(info.path())
        .entryList({QLatin1Char('.') + info.fileName() + QStringLiteral(".corral-*"),
                    info.fileName() + QStringLiteral(".corral-*")},
                   QDir::Files | QDir::Hidden | QDir::System);
}

QString latestBackup(const QString &stateDirectory, const QString &configPath) {
    const QStringList backups =
        QDir(stateDirectory)
            .entryList({QFileInfo(configPath).fileName() + QStringLiteral(".*.bak")}, QDir::Files,
                       QDir::Name);
    return backups.isEmpty() ? QString() : stateDirectory + QLatin1Char('/') + backups.last();
}

bool writeFile(const QString &path, const QByteArray &text) {
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) && file.write(text) == text.size();
}

QByteArray readFile(const QString &path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

Result<void> writeInventory(const QString &path, const Host &host, const Site &site) {
    Inventory inventory;
    if (auto added = inventory.addHost(host); !added) return fail(added.error());
    if (auto added = inventory.addSite(site); !added) return fail(added.error());
    return inventory.save(path);
}

// Demo workers ------------------------------------------------------------------------------

bool DemoWorkers::start(const QString &program, QString *error) {
    m_workers.clear();
    for (int i = 0; i < m_count; ++i) {
        m_workers.push_back(std::make_unique<DemoWorker>(program));
        if (!m_workers.back()->startOn(0, {}, error)) return false;
    }
    for (const auto &worker : m_workers)
        if (!worker->waitUntilListening(error)) return false;
    return true;
}

void DemoWorkers::stop() {
    for (const auto &worker : m_workers)
        worker->stop();
}

} // namespace corral::test
