#pragma once

// Real production balancers for tests: an nginx, an HAProxy and an Apache, each in a temporary
// directory of its own, listening on a free 127.0.0.1 port chosen by the fixture, stopped by PID.
// balancer() gives the SiteBalancer that points Corral (ConfigApplier, corralctl apply,
// rolling restart) at the instance, through an SSH host of the caller's choosing (the
// tests/helpers/SshServer fixture runs on this machine, so the paths are the same).

#include "model/Host.h"
#include "model/Site.h"
#include "upstreams/RenderOptions.h"
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
/// True once 127.0.0.1:`port` accepts, false when `process` exits first or at the deadline.
bool waitForListener(quint16 port, QProcess &process, int timeoutMs = 15000);
/// SIGTERM by PID, SIGKILL after 10 s.
void stopProcess(QProcess &process);

/// Saves an inventory at `path` holding `host` and `site` (e.g. SshServer::inventoryHost()
/// and a site balanced on that host), replacing what was there.
Result<void> writeInventory(const QString &path, const Host &host, const Site &site);

/// `count` demo workers (`PROGRAM --port P`), each on a free 127.0.0.1 port chosen at
/// start(), children of the test, stopped by PID when destroyed.
class DemoWorkers {
public:
    explicit DemoWorkers(int count = 2);
    ~DemoWorkers();
    DemoWorkers(const DemoWorkers &) = delete;
    DemoWorkers &operator=(const DemoWorkers &) = delete;

    /// Starts every worker (5 s each to start), then waits until each one's port accepts.
    /// `error` says which did not.
    bool start(const QString &program, QString *error);
    /// Starts worker `index` again on the same port after stop(index), waiting until it
    /// listens.
    bool restart(int index, QString *error = nullptr);
    void stop(int index); ///< stopProcess() on one worker
    void stop();          ///< on all of them; also done by the destructor

    int count() const { return int(m_processes.size()); }
    /// Worker `index`'s port; 0 before start().
    quint16 port(int index) const { return m_ports.at(std::size_t(index)); }
    QProcess &process(int index) { return *m_processes.at(std::size_t(index)); }

private:
    bool startOne(int index, QString *error);
    bool waitUntilListening(int index, QString *error);

    QString m_program;
    std::vector<std::unique_ptr<QProcess>> m_processes;
    std::vector<quint16> m_ports;
};

/// An nginx in a temporary prefix: conf/nginx.conf (user root, pid, error_log, temp paths)
/// includes PREFIX/conf.d/*.conf, which starts empty; the site file is conf.d/SITE.conf,
/// written by Corral's apply. Runs in the foreground (daemon off) as a child of the test.
class NginxInstance {
public:
    explicit NginxInstance(const QString &siteName = QStringLiteral("shop"));
    ~NginxInstance();
    NginxInstance(const NginxInstance &) = delete;
    NginxInstance &operator=(const NginxInstance &) = delete;

    static bool available(); ///< nginx is installed
    /// Writes the main config and starts nginx on httpPort(); waits for its pid file.
    bool start(QString *error);
    void stop(); ///< by PID; also done by the destructor
    bool isRunning() const { return m_process.state() == QProcess::Running; }
    qint64 pid() const { return m_process.processId(); }

    QString siteName() const { return m_site; }
    quint16 httpPort() const { return m_httpPort; }
    QString directory() const { return m_dir.path(); }
    QString prefixPath(const QString &relative) const { return m_dir.filePath(relative); }
    QString mainConfig() const;
    QString siteFile() const;            ///< conf.d/SITE.conf
    QString errorLog() const;            ///< logs/error.log
    QString logDirectory() const;        ///< logs (the renderer writes SITE.access.log there)
    QString accessLog() const;           ///< logs/SITE.access.log
    QString pidFile() const;             ///< nginx.pid
    QStringList validateCommand() const; ///< nginx -p ... -c ... -e ... -t
    QStringList reloadCommand() const;   ///< nginx -p ... -c ... -e ... -s reload
    /// format nginx, configPath siteFile(), validate/reload above, probeUrl
    /// http://127.0.0.1:PORT/, errorLog, listenAddress 127.0.0.1, httpPort, logDirectory,
    /// stateDirectory PREFIX/corral-state (backups, marker, lock: nothing in /var/lib).
    SiteBalancer balancer(const QString &hostName) const;
    /// What the process printed (startup errors).
    QByteArray output();

private:
    QStringList baseArgs() const;

    QString m_site;
    QTemporaryDir m_dir;
    quint16 m_httpPort = 0;
    QProcess m_process;
};

/// An HAProxy whose site file IS its complete config, as Corral's renderer writes it
/// (renderHaproxy with runtimeDirectory = runtimeDirectory()). It runs in master-worker mode
/// in the foreground (`haproxy -W -db -f FILE -p PIDFILE`); reload is SIGUSR2 to the master
/// (graceful: old workers finish their connections), validate is `haproxy -c -f FILE`.
/// HAProxy cannot start without a config, so start() first renders `site` into siteFile();
/// later applies replace that file and reload.
class HaproxyInstance {
public:
    explicit HaproxyInstance(const QString &siteName = QStringLiteral("shop"));
    ~HaproxyInstance();
    HaproxyInstance(const HaproxyInstance &) = delete;
    HaproxyInstance &operator=(const HaproxyInstance &) = delete;

    static bool available(); ///< haproxy and socat are installed
    /// Renders `site` (its name should be siteName()) with renderOptions() into siteFile(),
    /// starts HAProxy and waits until httpPort() accepts.
    bool start(const Site &site, QString *error);
    void stop(); ///< by PID (the master; its workers follow); also done by the destructor
    bool isRunning() const { return m_process.state() == QProcess::Running; }
    qint64 masterPid() const { return m_process.processId(); }

    QString siteName() const { return m_site; }
    quint16 httpPort() const { return m_httpPort; }
    QString directory() const { return m_dir.path(); }
    QString prefixPath(const QString &relative) const { return m_dir.filePath(relative); }
    QString siteFile() const;            ///< SITE.cfg
    QString pidFile() const;             ///< haproxy.pid (the master's)
    QString runtimeDirectory() const;    ///< run/
    QString statsSocket() const;         ///< run/corral-SITE.sock (level admin)
    QString backendName() const;         ///< corral-SITE
    QStringList validateCommand() const; ///< haproxy -c -f FILE
    QStringList reloadCommand() const;   ///< sh -c 'kill -USR2 "$(cat "$1")"' sh PIDFILE
    /// listenAddress 127.0.0.1, httpPort, runtimeDirectory.
    RenderOptions renderOptions() const;
    /// format haproxy, configPath siteFile(), validate/reload above, probeUrl
    /// http://127.0.0.1:PORT/, listenAddress, httpPort, runtimeDirectory (no errorLog:
    /// HAProxy logs to syslog).
    SiteBalancer balancer(const QString &hostName) const;
    QByteArray output();

private:
    QString m_site;
    QTemporaryDir m_dir;
    quint16 m_httpPort = 0;
    QProcess m_process;
};

/// "LoadModule NAME PATH" lines for every module Corral's Apache configs use (those this
/// apache2 build has as files), for a throwaway apache2.conf.
QString apacheLoadModuleLines();

/// An Apache httpd in a temporary ServerRoot: apache2.conf (modules for mod_proxy_balancer,
/// Listen on httpPort(), pid file, runtime directory, error log; children run as www-data)
/// includes conf.d/*.conf, which starts empty; the site file is conf.d/SITE.conf, written by
/// Corral's apply. The parent runs in the foreground (-D FOREGROUND) as a child of the test;
/// reload is `apache2 -k graceful` (old children finish their requests), validate
/// `apache2 -t`, both against this ServerRoot only (nothing in /etc/apache2 is read).
class ApacheInstance {
public:
    explicit ApacheInstance(const QString &siteName = QStringLiteral("shop"));
    ~ApacheInstance();
    ApacheInstance(const ApacheInstance &) = delete;
    ApacheInstance &operator=(const ApacheInstance &) = delete;

    static bool available(); ///< apache2 and its proxy modules are installed
    /// Writes the main config and starts Apache on httpPort(); waits until it accepts.
    bool start(QString *error);
    void stop(); ///< by PID (the parent; its children follow); also done by the destructor
    bool isRunning() const { return m_process.state() == QProcess::Running; }
    qint64 pid() const { return m_process.processId(); }

    QString siteName() const { return m_site; }
    quint16 httpPort() const { return m_httpPort; }
    QString directory() const { return m_dir.path(); }
    QString prefixPath(const QString &relative) const { return m_dir.filePath(relative); }
    QString mainConfig() const;          ///< apache2.conf
    QString siteFile() const;            ///< conf.d/SITE.conf
    QString errorLog() const;            ///< logs/error.log (the server's)
    QString logDirectory() const;        ///< logs (the renderer writes SITE.access.log there)
    QString accessLog() const;           ///< logs/SITE.access.log
    QStringList validateCommand() const; ///< apache2 -d ROOT -f CONF -t
    QStringList reloadCommand() const;   ///< apache2 -d ROOT -f CONF -k graceful
    /// format apache, configPath siteFile(), validate/reload above, probeUrl
    /// http://127.0.0.1:PORT/, errorLog, listenAddress 127.0.0.1, httpPort, logDirectory,
    /// stateDirectory PREFIX/corral-state (backups, marker, lock: nothing in /var/lib).
    SiteBalancer balancer(const QString &hostName) const;
    QByteArray output();

private:
    QStringList baseArgs() const;

    QString m_site;
    QTemporaryDir m_dir;
    quint16 m_httpPort = 0;
    QProcess m_process;
};

} // namespace corral::test
