#pragma once

// What the tests of production sites share: the real balancers (BalancerProcess.h), demo
// workers behind them (DemoWorker.h), HTTP requests through them and files an apply leaves.

#include "BalancerProcess.h"
#include "DemoWorker.h"
#include "TestProcess.h"
#include "model/Host.h"
#include "model/Site.h"
#include "util/Result.h"

#include <QByteArray>
#include <QMap>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>

#include <memory>
#include <vector>

namespace corral::test {

/// One answer of httpGet(); status 0 when there was no (complete) response.
struct HttpReply {
    int status = 0;
    QByteArray body;
    /// An integer field of a JSON body, e.g. "port" or "pid" of the demo worker; 0 if absent.
    qint64 jsonNumber(const QString &key) const;
};

/// One GET to 127.0.0.1:`port` over a fresh connection (Connection: close), so each call is
/// one request and one access-log line. Plain sockets: safe from any thread.
HttpReply httpGet(quint16 port, const QByteArray &path = "/",
                  const QByteArray &hostHeader = "shop.example.com", int timeoutMs = 10000);

/// The port of the demo worker that answered (its JSON "port"); 0 when nothing answered.
int workerPortOf(const HttpReply &reply);
/// Sends `count` requests to 127.0.0.1:`port` and counts them by the worker port that
/// answered (0: no answer).
QMap<int, int> spreadOverWorkers(quint16 port, int count);

/// Files an apply leaves next to `configPath` (.FILE.corral-new-ID, FILE.corral-*): none
/// after any apply that reached the host.
QStringList corralLeftovers(const QString &configPath);
/// The newest FILE.ID.bak of `configPath` in an apply's state directory; empty: none.
QString latestBackup(const QString &stateDirectory, const QString &configPath);

bool writeFile(const QString &path, const QByteArray &text);
QByteArray readFile(const QString &path);

/// Saves an inventory at `path` holding `host` and `site` (e.g. SshServer::inventoryHost()
/// and a site balanced on that host), replacing what was there.
Result<void> writeInventory(const QString &path, const Host &host, const Site &site);

/// `count` demo workers (`PROGRAM --port P`), each on a free 127.0.0.1 port chosen at
/// start(), children of the test, stopped by PID when destroyed.
class DemoWorkers {
public:
    explicit DemoWorkers(int count = 2)
        : m_count(count) {}

    /// Starts every worker at once, then waits until each one's port accepts. `error` says
    /// which did not.
    bool start(const QString &program, QString *error);
    /// Starts worker `index` again on the same port after stop(index), waiting until it
    /// listens.
    bool restart(int index, QString *error = nullptr) { return worker(index).restart(error); }
    void stop(int index) { worker(index).stop(); }
    void stop(); ///< all of them; also done by the destructor

    int count() const { return m_count; }
    /// Worker `index`'s port; 0 before start().
    quint16 port(int index) const {
        return std::size_t(index) < m_workers.size() ? m_workers[std::size_t(index)]->port() : 0;
    }
    QProcess &process(int index) { return worker(index).process(); }
    DemoWorker &worker(int index) { return *m_workers.at(std::size_t(index)); }

private:
    int m_count;
    std::vector<std::unique_ptr<DemoWorker>> m_workers;
};

} // namespace corral::test
