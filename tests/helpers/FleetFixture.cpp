#include "FleetFixture.h"

#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "upstreams/ConfigApplier.h"
#include "upstreams/Renderers.h"
#include "util/ListeningSockets.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QHostAddress>
#include <QRegularExpression>
#include <QSet>
#include <QTcpServer>
#include <QTcpSocket>
#include <QThread>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>

#include <csignal>

namespace corral::test {

namespace {

/// Runs `job(i)` for i in [0, count) on up to `threads` threads at once; returns when all
/// have run. For blocking work (ssh-keygen, an SSH login and command) that needs no event
/// loop.
void parallelFor(int count, int threads, const std::function<void(int)> &job) {
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < std::min(count, threads); ++t)
        pool.emplace_back([&] {
            for (int i = next++; i < count; i = next++)
                job(i);
        });
    for (std::thread &thread : pool)
        thread.join();
}

/// True when `address`:`port` accepts a connection now (one attempt of at most 200 ms).
bool accepts(const QString &address, quint16 port) {
    QTcpSocket probe;
    probe.connectToHost(QHostAddress(address), port);
    return probe.waitForConnected(200);
}

} // namespace

FleetFixture::FleetFixture(FleetOptions options)
    : m_options(std::move(options)) {
    if (m_options.sites <= 0) m_options.sites = std::min(m_options.hosts, 20);
    m_options.sites = std::min(m_options.sites, m_options.hosts);
}

FleetFixture::~FleetFixture() {
    stopWorkers();
    m_balancers.clear(); // each stops its process by PID
    m_servers.clear();   // each stops its sshd by PID
}

QString FleetFixture::hostName(int index) {
    return QStringLiteral("fleet-h%1").arg(index + 1, 2, 10, QLatin1Char('0'));
}

QString FleetFixture::siteName(int index) {
    return QStringLiteral("fleet-s%1").arg(index + 1, 2, 10, QLatin1Char('0'));
}

QString FleetFixture::hostAddress(int index) {
    return QStringLiteral("127.0.1.%1").arg(index + 1);
}

QString FleetFixture::inventoryPath() const {
    return m_dir.filePath(QStringLiteral("inventory.json"));
}

QString FleetFixture::configHome() const {
    return m_dir.filePath(QStringLiteral("home/config"));
}

QString FleetFixture::knownHostsFile() const {
    return configHome() + QStringLiteral("/corral/known_hosts");
}

QString FleetFixture::home() const {
    return m_dir.filePath(QStringLiteral("home"));
}

SshConfig FleetFixture::sshConfig(const Host &host) const {
    SshConfig config = SshConfig::fromHost(host);
    config.knownHostsFile = knownHostsFile();
    config.userKnownHostsFile = home() + QStringLiteral("/.ssh/known_hosts");
    config.connectTimeoutMs = 10000;
    return config;
}

quint16 FleetFixture::balancerPort(int site) const {
    return m_balancers.at(std::size_t(site))->httpPort();
}

HttpReply FleetFixture::get(int site, const QByteArray &path) const {
    QTcpSocket socket;
    socket.connectToHost(QHostAddress(balancerAddress(site)), balancerPort(site));
    if (!socket.waitForConnected(5000)) return {};
    socket.write("GET " + path + " HTTP/1.1\r\nHost: " + siteName(site).toUtf8() +
                 ".fleet.test\r\nConnection: close\r\n\r\n");
    QByteArray response;
    const QDeadlineTimer deadline(10000);
    while (socket.state() == QAbstractSocket::ConnectedState && !deadline.hasExpired()) {
        socket.waitForReadyRead(int(std::max<qint64>(1, deadline.remainingTime())));
        response += socket.readAll();
    }
    response += socket.readAll();
    const qsizetype bodyStart = response.indexOf("\r\n\r\n");
    if (!response.startsWith("HTTP/1.") || bodyStart < 0) return {};
    HttpReply reply;
    reply.status = response.mid(9, 3).toInt();
    reply.body = response.mid(bodyStart + 4);
    return reply;
}

void FleetFixture::phase(const char *what, qint64 ms) const {
    if (m_options.verbose) std::fprintf(stderr, "fleet: %-34s %6lld ms\n", what, qint64(ms));
}

bool FleetFixture::start(QString *error) {
    QElapsedTimer total;
    total.start();
    if (!m_dir.isValid()) {
        *error = QStringLiteral("no temporary directory");
        return false;
    }
    if (m_options.hosts < 1 || m_options.hosts > 254 || m_options.workersPerHost < 1) {
        *error = QStringLiteral("a fleet needs 1 to 254 hosts and at least one worker each");
        return false;
    }
    QDir().mkpath(home() + QStringLiteral("/.ssh"));
    QDir().mkpath(configHome() + QStringLiteral("/corral"));
    if (!startHosts(error) || !startWorkers(error) || !startBalancers(error) ||
        !waitForWorkers(error) || !writeInventory(error))
        return false;
    m_startupMs = total.elapsed();
    phase("started in total", m_startupMs);
    return true;
}

bool FleetFixture::startHosts(QString *error) {
    QElapsedTimer clock;
    clock.start();
    for (int h = 0; h < m_options.hosts; ++h) {
        m_servers.push_back(std::make_unique<SshServer>(hostAddress(h)));
        const QString hostHome = m_dir.filePath(QStringLiteral("hosts/%1").arg(hostName(h)));
        QDir().mkpath(hostHome);
        // Each "host" has a HOME of its own (pid files and logs of its workers) and binds its
        // workers to its own address (fleet-worker reads CORRAL_FLEET_BIND).
        m_servers.back()->setSessionEnvironment(
            {QStringLiteral("HOME=") + hostHome,
             QStringLiteral("CORRAL_FLEET_BIND=") + hostAddress(h)});
    }
    // Three ssh-keygen runs per host: in parallel (no QObject of a server is touched).
    std::mutex mutex;
    QStringList failures;
    parallelFor(m_options.hosts, 8, [&](int h) {
        QString why;
        if (!m_servers[std::size_t(h)]->prepare(&why)) {
            const std::lock_guard lock(mutex);
            failures.append(hostName(h) + QStringLiteral(": ") + why);
        }
    });
    if (!failures.isEmpty()) {
        *error = failures.join(QStringLiteral("; "));
        return false;
    }
    phase("host keys generated", clock.restart());
    for (auto &server : m_servers)
        if (!server->launch(error)) return false;
    QByteArray knownHosts;
    for (int h = 0; h < m_options.hosts; ++h) {
        SshServer &server = *m_servers[std::size_t(h)];
        if (!server.waitUntilListening(error)) {
            *error = hostName(h) + QStringLiteral(": ") + *error;
            return false;
        }
        // "[ADDRESS]:PORT TYPE KEY": what the console records after "Add host".
        const QList<QByteArray> key =
            readFile(server.directory() + QStringLiteral("/host_ed25519.pub")).split(' ');
        knownHosts += QStringLiteral("[%1]:%2 ").arg(server.address()).arg(server.port()).toUtf8() +
                      key.value(0) + ' ' + key.value(1).trimmed() + '\n';
        Host host = server.inventoryHost(hostName(h));
        m_hosts.append(host);
    }
    if (!writeFile(knownHostsFile(), knownHosts)) {
        *error = QStringLiteral("cannot write ") + knownHostsFile();
        return false;
    }
    phase("sshd started on every host", clock.elapsed());
    return true;
}

bool FleetFixture::startWorkers(QString *error) {
    QElapsedTimer clock;
    clock.start();
    const int workers = workerCount();
    // The balancers' ports are chosen (below 32768) as they are created: create them first so
    // that the workers' range avoids them.
    const bool haproxy = HaproxyInstance::available();
    for (int s = 0; s < m_options.sites; ++s) {
        std::unique_ptr<BalancerProcess> balancer;
        if (s % 2 == 1 && haproxy)
            balancer = std::make_unique<HaproxyInstance>(siteName(s));
        else
            balancer = std::make_unique<NginxInstance>(siteName(s));
        balancer->setListenAddress(hostAddress(s));
        m_balancers.push_back(std::move(balancer));
    }
    for (int attempt = 0; attempt < 20 && m_basePort == 0; ++attempt) {
        const quint16 base = workerBasePort(workers);
        if (base == 0 || base + workers > 32767) continue;
        bool clash = false;
        for (const auto &balancer : m_balancers)
            clash =
                clash || (balancer->httpPort() >= base && balancer->httpPort() < base + workers);
        // Free where each worker binds too (another fleet, e.g. a test beside this one, may
        // have workers on these addresses).
        for (int w = 0; w < workers && !clash; ++w) {
            QTcpServer probe;
            clash = !probe.listen(QHostAddress(hostAddress(w / m_options.workersPerHost)),
                                  quint16(base + w));
        }
        if (!clash) m_basePort = base;
    }
    if (m_basePort == 0) {
        *error = QStringLiteral("no range of %1 free ports below 32768").arg(workers);
        return false;
    }

    // The worker program as a site runs it: the demo worker on its host's address.
    const QString program = m_dir.filePath(QStringLiteral("fleet-worker"));
    if (!writeFile(program, QStringLiteral("#!/bin/sh\n# A demo worker bound to its host's address "
                                           "(CORRAL_FLEET_BIND, from that host's sshd).\n"
                                           "exec %1 --bind \"${CORRAL_FLEET_BIND:-127.0.0.1}\" "
                                           "--port \"$PORT\"\n")
                                .arg(shellQuote(m_options.demoWorker))
                                .toUtf8()) ||
        !QFile::setPermissions(program, QFileDevice::ReadOwner | QFileDevice::WriteOwner |
                                            QFileDevice::ExeOwner | QFileDevice::ReadOther |
                                            QFileDevice::ExeOther)) {
        *error = QStringLiteral("cannot write ") + program;
        return false;
    }

    // Worker w runs on host w / M with port base + w and belongs to site w % S: every site
    // has workers on several hosts and every host's workers belong to some site.
    m_sites.clear();
    for (int s = 0; s < m_options.sites; ++s) {
        Site site;
        site.name = siteName(s);
        site.command = program;
        site.workers = 0;
        site.basePort = m_basePort;
        site.serverNames = {site.name + QStringLiteral(".fleet.test")};
        m_sites.append(site);
    }
    for (int w = 0; w < workers; ++w) {
        const int h = w / m_options.workersPerHost;
        Site &site = m_sites[w % m_options.sites];
        const quint16 port = quint16(m_basePort + w);
        site.backends.append(Backend{hostAddress(h), port});
        site.ports.append(port);
        site.workers += 1;
        if (!site.hosts.contains(hostName(h))) site.hosts.append(hostName(h));
    }
    for (int s = 0; s < m_options.sites; ++s)
        m_sites[s].balancer = m_balancers[std::size_t(s)]->balancer(hostName(s));

    // One SSH login per host running all its workers' start commands, hosts in parallel: the
    // way the console and corralctl start fallback workers (RemoteWorkers::startCommand).
    std::mutex mutex;
    QStringList failures;
    parallelFor(m_options.hosts, 16, [&](int h) {
        QStringList script;
        for (int j = 0; j < m_options.workersPerHost; ++j) {
            const int w = h * m_options.workersPerHost + j;
            auto command = RemoteWorkers::startCommand(m_sites.at(w % m_options.sites),
                                                       quint16(m_basePort + w));
            if (!command) {
                const std::lock_guard lock(mutex);
                failures.append(command.error());
                return;
            }
            script.append(command.value());
        }
        SshSession session(sshConfig(m_hosts.at(h)));
        QString why;
        QList<qint64> pids;
        if (auto connected = session.connect(); !connected) {
            why = connected.error();
        } else if (auto ran = session.exec(script.join(QLatin1Char('\n')), 60000); !ran) {
            why = ran.error();
        } else {
            static const QRegularExpression pid(QStringLiteral("pid (\\d+)"));
            auto matches = pid.globalMatch(QString::fromUtf8(ran->stdOut));
            while (matches.hasNext())
                pids.append(matches.next().captured(1).toLongLong());
            if (pids.size() != m_options.workersPerHost)
                why = QStringLiteral("started %1 of %2 workers: %3 %4")
                          .arg(pids.size())
                          .arg(m_options.workersPerHost)
                          .arg(QString::fromUtf8(ran->stdOut + ran->stdErr));
        }
        const std::lock_guard lock(mutex);
        m_supervisors += pids;
        if (!why.isEmpty()) failures.append(hostName(h) + QStringLiteral(": ") + why);
    });
    if (!failures.isEmpty()) {
        *error = failures.join(QStringLiteral("; "));
        return false;
    }
    phase("workers started over SSH", clock.elapsed());
    return true;
}

bool FleetFixture::startBalancers(QString *error) {
    QElapsedTimer clock;
    clock.start();
    for (int s = 0; s < m_options.sites; ++s) {
        const Site &site = m_sites.at(s);
        BalancerProcess &process = *m_balancers[std::size_t(s)];
        if (auto *haproxy = dynamic_cast<HaproxyInstance *>(&process)) {
            if (!haproxy->start(site, error)) return false;
            continue;
        }
        auto *nginx = dynamic_cast<NginxInstance *>(&process);
        // The site file as `corralctl apply` renders it, in place before nginx starts.
        auto target = RemoteBalancer::forSite(site);
        if (!target) {
            *error = target.error();
            return false;
        }
        auto config = render(RenderFormat::Nginx, site, target->renderOptions);
        if (!config) {
            *error = site.name + QStringLiteral(": render: ") + config.error();
            return false;
        }
        if (!nginx->prepare(error)) return false;
        if (!writeFile(nginx->siteFile(), config->toUtf8())) {
            *error = QStringLiteral("cannot write ") + nginx->siteFile();
            return false;
        }
        if (!nginx->start(error)) return false;
    }
    // nginx is up once its pid file is there; it listens a moment later.
    const QDeadlineTimer deadline(15000);
    for (int s = 0; s < m_options.sites; ++s) {
        while (!accepts(balancerAddress(s), balancerPort(s))) {
            if (deadline.hasExpired() || !m_balancers[std::size_t(s)]->isRunning()) {
                *error = QStringLiteral("the balancer of %1 never listened on %2:%3: %4")
                             .arg(siteName(s), balancerAddress(s))
                             .arg(balancerPort(s))
                             .arg(QString::fromUtf8(m_balancers[std::size_t(s)]->output()));
                return false;
            }
            QThread::msleep(20); // the poll interval
        }
    }
    phase("balancers started", clock.elapsed());
    return true;
}

bool FleetFixture::waitForWorkers(QString *error) {
    QElapsedTimer clock;
    clock.start();
    QList<int> pending;
    for (int w = 0; w < workerCount(); ++w)
        pending.append(w);
    const QDeadlineTimer deadline(60000);
    while (!pending.isEmpty()) {
        QList<int> still;
        for (int w : pending)
            if (!accepts(hostAddress(w / m_options.workersPerHost), quint16(m_basePort + w)))
                still.append(w);
        pending = still;
        if (pending.isEmpty()) break;
        if (deadline.hasExpired()) {
            const int w = pending.first();
            *error = QStringLiteral("%1 workers never listened, e.g. %2:%3 (see %4)")
                         .arg(pending.size())
                         .arg(hostAddress(w / m_options.workersPerHost))
                         .arg(m_basePort + w)
                         .arg(m_dir.filePath(QStringLiteral("hosts")));
            return false;
        }
        QThread::msleep(50); // the poll interval
    }
    phase("every worker listening", clock.elapsed());
    return true;
}

bool FleetFixture::writeInventory(QString *error) {
    Inventory inventory;
    for (const Host &host : m_hosts)
        if (auto added = inventory.addHost(host); !added) {
            *error = added.error();
            return false;
        }
    for (const Site &site : m_sites)
        if (auto added = inventory.addSite(site); !added) {
            *error = added.error();
            return false;
        }
    if (auto saved = inventory.save(inventoryPath()); !saved) {
        *error = saved.error();
        return false;
    }
    return true;
}

QList<qint64> FleetFixture::processes() const {
    QSet<qint64> all;
    for (const auto &server : m_servers)
        for (qint64 pid : processTree(server->pid()))
            all.insert(pid);
    for (const auto &balancer : m_balancers)
        for (qint64 pid : processTree(balancer->pid()))
            all.insert(pid);
    const QSet<qint64> groups(m_supervisors.cbegin(), m_supervisors.cend());
    forEachProcessStat([&](qint64 pid, const QList<QByteArray> &fields) {
        if (fields.size() > 2 && groups.contains(fields.at(2).toLongLong())) all.insert(pid);
    });
    return QList<qint64>(all.cbegin(), all.cend());
}

qint64 FleetFixture::residentBytes() const {
    // Proportional set sizes: a page shared by the 500 demo workers counts once in all, as
    // the machine's memory does (RSS would count it 500 times).
    qint64 kib = 0;
    for (qint64 pid : processes()) {
        const QByteArray rollup = readFile(QStringLiteral("/proc/%1/smaps_rollup").arg(pid));
        const qsizetype at = rollup.indexOf("\nPss:");
        if (at >= 0)
            kib += rollup.mid(at + 5, rollup.indexOf('\n', at + 1) - at - 5)
                       .trimmed()
                       .split(' ')
                       .value(0)
                       .toLongLong();
    }
    return kib * 1024;
}

int FleetFixture::processCount() const {
    return int(processes().size());
}

void FleetFixture::killHost(int index) {
    m_servers.at(std::size_t(index))->killHard();
}

void FleetFixture::stopWorkers() {
    if (m_supervisors.isEmpty()) return;
    // As RemoteWorkers::stopCommand does: SIGTERM to each supervisor loop, which passes it
    // to its group once; then SIGKILL to whatever of those groups is left.
    for (qint64 pid : std::as_const(m_supervisors))
        ::kill(pid_t(pid), SIGTERM);
    const QSet<qint64> groups(m_supervisors.cbegin(), m_supervisors.cend());
    const auto leftovers = [&] {
        QList<qint64> left;
        forEachProcessStat([&](qint64 pid, const QList<QByteArray> &fields) {
            if (fields.size() > 2 && fields.at(0) != "Z" &&
                groups.contains(fields.at(2).toLongLong()))
                left.append(pid);
        });
        return left;
    };
    const QDeadlineTimer deadline(10000);
    QList<qint64> left = leftovers();
    while (!left.isEmpty() && !deadline.hasExpired()) {
        QThread::msleep(50); // the poll interval
        left = leftovers();
    }
    for (qint64 pid : std::as_const(left))
        ::kill(pid_t(pid), SIGKILL);
    m_supervisors.clear();
}

} // namespace corral::test
