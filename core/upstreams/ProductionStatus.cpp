#include "upstreams/ProductionStatus.h"

#include "remote/RemoteWorkers.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QDeadlineTimer>
#include <QHash>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <vector>

namespace corral {

namespace {

/// What one host is asked: the ports of each site whose workers it runs.
struct HostQuery {
    SshConfig config;
    std::map<QString, QList<quint16>> portsBySite;
    // Answers, written by the host's thread only.
    QString error;
    QHash<QString, QList<RemoteWorkerStatus>> statusBySite;
};

void ask(HostQuery &query, int timeoutMs) {
    const QDeadlineTimer deadline(timeoutMs);
    query.config.connectTimeoutMs = timeoutMs;
    SshSession session(query.config);
    if (auto connected = session.connect(); !connected) {
        query.error = connected.error();
        return;
    }
    for (const auto &[site, ports] : query.portsBySite) {
        auto result = session.exec(RemoteWorkers::statusCommand(site, ports),
                                   int(std::max<qint64>(deadline.remainingTime(), 1)));
        if (!result) {
            query.error = result.error();
            return;
        }
        if (result->exitStatus != 0) {
            query.error = QStringLiteral("checking workers of %1: exit status %2: %3")
                              .arg(site)
                              .arg(result->exitStatus)
                              .arg(QString::fromUtf8(result->stdErr).trimmed());
            return;
        }
        query.statusBySite.insert(site, RemoteWorkers::parseStatus(result->stdOut));
    }
}

} // namespace

void runBounded(int count, int maxConcurrent, const std::function<void(int)> &work) {
    std::atomic<int> next{0};
    const auto worker = [&] {
        for (int index = next++; index < count; index = next++)
            work(index);
    };
    std::vector<std::thread> threads;
    for (int i = 0, n = std::min(count, std::max(maxConcurrent, 1)); i < n; ++i)
        threads.emplace_back(worker);
    for (std::thread &thread : threads)
        thread.join();
}

QList<ProductionBackendStatus>
productionBackendStatus(const QList<Site> &sites, const QList<Host> &hosts,
                        const std::function<SshConfig(const Host &)> &configFor, int timeoutMs,
                        int maxConcurrent) {
    QList<ProductionBackendStatus> rows;
    std::map<QString, HostQuery> queries;
    for (const Site &site : sites) {
        if (!site.balancer) continue;
        for (const Backend &backend : site.backends) {
            ProductionBackendStatus row;
            row.site = site.name;
            row.backend = backend.key();
            row.port = backend.port;
            auto hostName = workerHostFor(backend, site.balancer->host, hosts);
            const Host *host = nullptr;
            if (hostName) {
                row.host = hostName.value();
                for (const Host &candidate : hosts)
                    if (candidate.name == row.host) host = &candidate;
            }
            if (!host || host->kind != Host::Kind::Ssh) {
                row.error = hostName ? QStringLiteral("host %1 is not an SSH host in the "
                                                      "inventory")
                                           .arg(row.host)
                                     : hostName.error();
            } else {
                HostQuery &query = queries[row.host];
                if (query.portsBySite.empty()) query.config = configFor(*host);
                query.portsBySite[site.name].append(backend.port);
            }
            rows.append(row);
        }
    }
    // ask() starts each host's deadline when its connect starts, so a host waiting in the
    // queue is not charged for the hosts before it.
    std::vector<HostQuery *> queue;
    for (auto &[name, query] : queries)
        queue.push_back(&query);
    runBounded(int(queue.size()), maxConcurrent,
               [&queue, timeoutMs](int index) { ask(*queue[std::size_t(index)], timeoutMs); });
    for (ProductionBackendStatus &row : rows) {
        const auto found = queries.find(row.host);
        if (found == queries.end()) continue;
        const HostQuery &query = found->second;
        if (!query.error.isEmpty()) {
            row.error = QStringLiteral("host %1: %2").arg(row.host, query.error);
            continue;
        }
        row.reachable = true;
        for (const RemoteWorkerStatus &status : query.statusBySite.value(row.site))
            if (status.port == row.port) {
                row.running = status.running;
                row.pid = status.pid;
            }
    }
    return rows;
}

} // namespace corral
