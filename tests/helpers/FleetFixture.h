#pragma once

// A fleet of real parts on this machine, for the fleet overview's tests and bench_fleet
// (issue 20): N "hosts", each a real sshd on a loopback address of its own (127.0.1.1 ...
// 127.0.1.N; key auth, its own host key, an entry in a known_hosts file) running M demo
// workers as Corral's fallback workers (RemoteWorkers::startCommand over SSH, each bound to
// its host's address), S production sites (default min(N, 20)) whose balancers, a real nginx
// or HAProxy in a temporary prefix (alternately), run on hosts 1 ... S with the config Corral
// renders, and the matching inventory file. Everything started is stopped by PID when the
// fixture is destroyed.
//
// Every "host" is this machine and the same user: the hosts differ by address, SSH port,
// keys and $HOME (each sshd sets its sessions' HOME to a directory of its own, so the workers'
// pid files and logs are per host), and every worker of the fleet has a port of its own.

#include "BalancerFixture.h"
#include "BalancerProcess.h"
#include "SshServer.h"
#include "model/Host.h"
#include "model/Site.h"
#include "ssh/SshSession.h"

#include <QList>
#include <QString>
#include <QTemporaryDir>

#include <memory>
#include <vector>

namespace corral::test {

struct FleetOptions {
    int hosts = 8;          ///< N
    int workersPerHost = 3; ///< M
    int sites = 0;          ///< S; 0: min(N, 20)
    QString demoWorker;     ///< the corral-demo-worker binary (DEMO_WORKER_PATH)
    /// Print what each phase of start() took (bench_fleet).
    bool verbose = false;
};

class FleetFixture {
public:
    explicit FleetFixture(FleetOptions options);
    ~FleetFixture(); ///< stops every worker, balancer and sshd by PID
    FleetFixture(const FleetFixture &) = delete;
    FleetFixture &operator=(const FleetFixture &) = delete;

    /// Starts the fleet (hosts in parallel, then workers over SSH and the balancers at once)
    /// and writes the inventory; false with `error` saying what failed.
    bool start(QString *error);
    /// Wall time of start().
    qint64 startupMs() const { return m_startupMs; }

    const FleetOptions &options() const { return m_options; }
    int hostCount() const { return m_options.hosts; }
    int siteCount() const { return int(m_sites.size()); }
    int workerCount() const { return m_options.hosts * m_options.workersPerHost; }

    /// The inventory file ({hosts, sites} as Corral saves it).
    QString inventoryPath() const;
    /// An XDG_CONFIG_HOME whose corral/known_hosts holds every host's key, for corralctl and
    /// the console (SshConfig::fromHost() reads that file).
    QString configHome() const;
    QString knownHostsFile() const;
    /// A throwaway HOME for programs run against the fleet (its ~/.ssh/known_hosts empty).
    QString home() const;

    const QList<Host> &hosts() const { return m_hosts; }
    const QList<Site> &sites() const { return m_sites; }
    /// How to reach an inventory host of the fleet: SshConfig::fromHost() with the fleet's
    /// known_hosts file (and nothing from this user's ~/.ssh).
    SshConfig sshConfig(const Host &host) const;

    static QString hostName(int index);    ///< "fleet-h01" ...
    static QString siteName(int index);    ///< "fleet-s01" ...
    static QString hostAddress(int index); ///< "127.0.1.1" ...
    SshServer &server(int index) { return *m_servers.at(std::size_t(index)); }
    BalancerProcess &balancer(int site) { return *m_balancers.at(std::size_t(site)); }
    /// Where site `site`'s balancer listens: its host's address and its own port.
    QString balancerAddress(int site) const { return hostAddress(site); }
    quint16 balancerPort(int site) const;
    /// One GET through site `site`'s balancer over a fresh connection (Connection: close):
    /// one request, one line in its access log.
    HttpReply get(int site, const QByteArray &path = "/") const;

    /// Kills host `index`'s sshd and its connections (SIGKILL by PID): a dead host. Its
    /// workers and balancer go on running (they are stopped by the destructor).
    void killHost(int index);

    /// What the fleet's processes hold in memory (the sum of their proportional set sizes):
    /// every sshd with its connections, worker, supervisor loop and balancer process.
    qint64 residentBytes() const;
    /// How many processes that is.
    int processCount() const;

    /// Every worker's supervisor loop (its pid file's process), for cleanup and checks.
    QList<qint64> supervisorPids() const { return m_supervisors; }

private:
    bool startHosts(QString *error);
    bool startWorkers(QString *error);
    bool startBalancers(QString *error);
    bool waitForWorkers(QString *error);
    bool writeInventory(QString *error);
    void stopWorkers();
    void phase(const char *what, qint64 ms) const;
    QList<qint64> processes() const;

    FleetOptions m_options;
    QTemporaryDir m_dir;
    std::vector<std::unique_ptr<SshServer>> m_servers;
    std::vector<std::unique_ptr<BalancerProcess>> m_balancers;
    QList<Host> m_hosts;
    QList<Site> m_sites;
    quint16 m_basePort = 0; ///< worker w (host w / M, w % M on it) listens on m_basePort + w
    QList<qint64> m_supervisors;
    qint64 m_startupMs = 0;
};

} // namespace corral::test
