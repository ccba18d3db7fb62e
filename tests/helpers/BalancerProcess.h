#pragma once

// Real production balancers for tests: an nginx, an HAProxy and an Apache, each in a temporary
// directory of its own, listening on a free 127.0.0.1 port chosen by the fixture, stopped by PID.
// balancer() gives the SiteBalancer that points Corral (ConfigApplier, corralctl apply,
// rolling restart) at the instance, through an SSH host of the caller's choosing (the
// tests/helpers/SshServer fixture runs on this machine, so the paths are the same).
//
// BalancerProcess holds the lifecycle the three share (prefix, port, start in the foreground as
// a child of the test, wait until up, validate, reload, stop by PID); each subclass holds only
// its syntax: its main config, its command lines and what "up" means for it.

#include "model/Site.h"
#include "upstreams/RenderOptions.h"
#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>

#include <utility>

namespace corral::test {

class BalancerProcess {
public:
    virtual ~BalancerProcess(); ///< stops the process
    BalancerProcess(const BalancerProcess &) = delete;
    BalancerProcess &operator=(const BalancerProcess &) = delete;

    /// Its process by PID: SIGTERM (the master or parent, whose workers follow), SIGKILL
    /// after 10 s.
    void stop();
    bool isRunning() const { return m_process.state() == QProcess::Running; }
    /// The process the test started: nginx's master, HAProxy's master, Apache's parent.
    qint64 pid() const { return m_process.processId(); }
    /// What the process printed (startup errors).
    QByteArray output() { return m_process.readAll(); }

    QString siteName() const { return m_site; }
    quint16 httpPort() const { return m_httpPort; }
    /// The address it listens on (127.0.0.1 unless set before start(): the fleet fixture puts
    /// each balancer on its "host"'s loopback address, 127.0.1.N).
    QString listenAddress() const { return m_listenAddress; }
    void setListenAddress(const QString &address) { m_listenAddress = address; }
    QString directory() const { return m_dir.path(); }
    QString prefixPath(const QString &relative) const { return m_dir.filePath(relative); }

    /// The file Corral's apply writes the site's config to.
    virtual QString siteFile() const = 0;
    /// The validate and reload commands Corral's apply runs (argv; run here by validate()
    /// and reload()).
    virtual QStringList validateCommand() const = 0;
    virtual QStringList reloadCommand() const = 0;

    /// Runs validateCommand() on this machine: its output when the tool accepts the config,
    /// an error with that output when it refuses it.
    Result<QString> validate() const;
    /// Runs reloadCommand() on this machine and waits for it.
    Result<void> reload() const;

    /// format, configPath siteFile(), validate/reload above, probeUrl
    /// http://ADDRESS:PORT/, listenAddress listenAddress(), httpPort, stateDirectory
    /// PREFIX/corral-state (backups, marker, lock: nothing in /var/lib), and what the kind adds
    /// (see addTo()).
    SiteBalancer balancer(const QString &hostName) const;

    /// The tool's path (PATH, then /usr/sbin, /usr/local/sbin); empty when not installed.
    static QString findTool(const QString &name);

protected:
    /// `format` is the SiteBalancer format ("nginx", "haproxy", "apache").
    BalancerProcess(QString format, QString siteName);

    /// How a kind starts: files written into the prefix first, then `program arguments` in
    /// the foreground; it is up once its port accepts (waitForPort) and every file of
    /// `waitForFiles` exists (pid files, sockets), while the process still runs.
    struct Launch {
        QString program;
        QStringList arguments;
        QStringList directories;                     ///< created first (relative to the prefix)
        QList<std::pair<QString, QByteArray>> files; ///< absolute path, contents
        bool waitForPort = true;
        QStringList waitForFiles;
        QString errorLog; ///< appended to a startup failure's message when set
    };
    bool launch(const Launch &launch, QString *error);
    /// Only the first half of launch(): the directories and files, nothing started.
    bool writeFiles(const Launch &launch, QString *error);

    /// The kind's fields of balancer() (errorLog, logDirectory, runtimeDirectory).
    virtual void addTo(SiteBalancer &balancer) const = 0;

private:
    QString m_format;
    QString m_site;
    QTemporaryDir m_dir;
    quint16 m_httpPort = 0;
    QString m_listenAddress = QStringLiteral("127.0.0.1");
    QProcess m_process;
};

/// An nginx in a temporary prefix: conf/nginx.conf (user root, pid, error_log, temp paths)
/// includes PREFIX/conf.d/*.conf, which starts empty; the site file is conf.d/SITE.conf,
/// written by Corral's apply. Runs in the foreground (daemon off) as a child of the test.
class NginxInstance : public BalancerProcess {
public:
    explicit NginxInstance(const QString &siteName = QStringLiteral("shop"));

    static bool available(); ///< nginx is installed
    /// Writes the main config and starts nginx on httpPort(); waits for its pid file (it
    /// listens on nothing until a site file is applied).
    bool start(QString *error);
    /// Writes the main config and the directories as start() does, without starting: for
    /// validating site files (write siteFile(), then validate()).
    bool prepare(QString *error);

    QString mainConfig() const;
    QString siteFile() const override; ///< conf.d/SITE.conf
    QString errorLog() const;          ///< logs/error.log
    QString logDirectory() const;      ///< logs (the renderer writes SITE.access.log there)
    QString accessLog() const;         ///< logs/SITE.access.log
    QString pidFile() const;           ///< nginx.pid
    QStringList validateCommand() const override; ///< nginx -p ... -c ... -e ... -t
    QStringList reloadCommand() const override;   ///< nginx -p ... -c ... -e ... -s reload

private:
    void addTo(SiteBalancer &balancer) const override; ///< errorLog, logDirectory
    QStringList baseArgs() const;
    Launch launchSpec() const;
};

/// An HAProxy whose site file IS its complete config, as Corral's renderer writes it
/// (renderHaproxy with runtimeDirectory = runtimeDirectory()). It runs in master-worker mode
/// in the foreground (`haproxy -W -db -f FILE -p PIDFILE`); reload is SIGUSR2 to the master
/// (graceful: old workers finish their connections), validate is `haproxy -c -f FILE`.
/// HAProxy cannot start without a config, so start() first renders `site` into siteFile();
/// later applies replace that file and reload.
class HaproxyInstance : public BalancerProcess {
public:
    explicit HaproxyInstance(const QString &siteName = QStringLiteral("shop"));

    static bool available(); ///< haproxy and socat are installed
    /// Renders `site` (its name should be siteName()) with renderOptions() into siteFile(),
    /// starts HAProxy and waits until httpPort() accepts and the stats socket exists.
    bool start(const Site &site, QString *error);
    qint64 masterPid() const { return pid(); }

    QString siteFile() const override;            ///< SITE.cfg
    QString pidFile() const;                      ///< haproxy.pid (the master's)
    QString runtimeDirectory() const;             ///< run/
    QString statsSocket() const;                  ///< run/corral-SITE.sock (level admin)
    QString backendName() const;                  ///< corral-SITE
    QStringList validateCommand() const override; ///< haproxy -c -f FILE
    QStringList reloadCommand() const override;   ///< sh -c 'kill -USR2 "$(cat "$1")"' sh PIDFILE
    /// listenAddress listenAddress(), httpPort, runtimeDirectory.
    RenderOptions renderOptions() const;

private:
    /// runtimeDirectory (no errorLog: HAProxy logs to syslog).
    void addTo(SiteBalancer &balancer) const override;
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
class ApacheInstance : public BalancerProcess {
public:
    explicit ApacheInstance(const QString &siteName = QStringLiteral("shop"));

    static bool available(); ///< apache2 and its proxy modules are installed
    /// Writes the main config and starts Apache on httpPort(); waits until it accepts.
    bool start(QString *error);
    /// Writes the main config and the directories as start() does, without starting: for
    /// validating site files (write siteFile(), then validate()).
    bool prepare(QString *error);

    QString mainConfig() const;        ///< apache2.conf
    QString siteFile() const override; ///< conf.d/SITE.conf
    QString errorLog() const;          ///< logs/error.log (the server's)
    QString logDirectory() const;      ///< logs (the renderer writes SITE.access.log there)
    QString accessLog() const;         ///< logs/SITE.access.log
    QStringList validateCommand() const override; ///< apache2 -d ROOT -f CONF -t
    QStringList reloadCommand() const override;   ///< apache2 -d ROOT -f CONF -k graceful

private:
    void addTo(SiteBalancer &balancer) const override; ///< errorLog, logDirectory
    QStringList baseArgs() const;
    Launch launchSpec() const;
};

} // namespace corral::test
