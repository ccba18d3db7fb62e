#pragma once

#include "model/Backend.h"
#include "util/Result.h"

#include <QJsonObject>
#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>

#include <optional>

namespace corral {

enum class BalancingPolicy { RoundRobin, LeastConn, Weighted, StickyCookie, IpHash };

QString policyName(BalancingPolicy policy);
std::optional<BalancingPolicy> policyFromName(const QString &name);
/// "round-robin, least-conn, ..." for help texts and errors.
QString policyNames();
/// Every policy, in the order help texts and the console's choosers list them.
QList<BalancingPolicy> allPolicies();

/// Why `value` may not be a site's cacheControl ("contains a control character ..."), or an
/// empty string when it may: it goes out as a response header, so printable ASCII only.
QString cacheControlProblem(const QString &value);

/// The production balancer (nginx, HAProxy or Apache) in front of a site on a remote host:
/// where `corralctl apply` writes the rendered config and how it validates, reloads and
/// verifies it. Commands are argv lists, quoted word by word when sent to the host.
struct SiteBalancer {
    static constexpr int DefaultStepTimeout = 60; // seconds, as stepTimeout
    static constexpr int MaxStepTimeout = 3600;
    QString host;         ///< inventory host name (an SSH host)
    QString format;       ///< "nginx", "haproxy" or "apache"
    QString configPath;   ///< absolute path of the site file on the host
    QStringList validate; ///< e.g. {"nginx", "-t"}
    QStringList reload;   ///< e.g. {"systemctl", "reload", "nginx"}
    /// Seconds a remote validate or reload command may run before it is ended on the host
    /// (timeout(1): SIGTERM, then SIGKILL 5 s later) and the apply fails as timed out.
    int stepTimeout = DefaultStepTimeout;
    QString probeUrl;      ///< http(s) URL fetched through the balancer after a reload; empty: none
    QString errorLog;      ///< absolute path checked for new "[emerg]" lines; empty: none
    QString listenAddress; ///< render option: IP to bind; empty: all
    quint16 httpPort = 0;  ///< render option: 0 means 80
    QString logDirectory;  ///< render option: access/error log directory; empty: the tool's
    /// render option (HAProxy): directory of the stats socket (corral-SITE.sock), also used by
    /// the rolling restart to drain servers; empty: /run/haproxy
    QString runtimeDirectory;
    /// where apply keeps its backups, the marker of the content verified live and the site's
    /// lock on the host, outside the balancer's include directories; empty: /var/lib/corral/SITE
    /// (~/.local/state/corral/balancer/SITE when that cannot be written)
    QString stateDirectory;

    static QStringList formatNames();
    /// A balancer of `format` as a stock Debian package installs it, for site `siteName`:
    /// the defaults of `corralctl site add --balancer KIND` and the console's site dialog.
    static SiteBalancer stockDebian(const QString &format, const QString &siteName);
    /// Sets listenAddress and httpPort from "ADDR:PORT", or "*:PORT" for every address.
    Result<void> setListen(const QString &text);
    /// "ADDR:PORT", or "*:PORT" when the site listens on every address (port 80 if unset).
    QString listenText() const;
    /// Every problem, each naming its field under `path`; empty when valid.
    QStringList problems(const QString &path) const;
    /// The problems joined with "; ".
    Result<void> validateFields(const QString &path) const;
    QJsonObject toJson() const;
    static Result<SiteBalancer> fromJson(const QJsonObject &object, const QString &path);

    bool operator==(const SiteBalancer &) const = default;
};

/// One application deployed as a cluster (the seeds' "site"): how to start its workers,
/// where they listen, and how a balancer in front spreads requests over them.
struct Site {
    static constexpr int MaxWorkers = 1024;
    static inline const QString PortPlaceholder = QStringLiteral("{port}");

    QString name;
    QString command;  ///< program to run; empty for a proxy-only site
    QStringList args; ///< may contain {port}
    QString workingDirectory;
    QMap<QString, QString> environment;
    int workers = 2;
    quint16 basePort = 3000;
    QString healthPath; ///< empty: a TCP connect is enough
    QStringList serverNames;
    /// Files the proxies serve before the backends (the embedded proxy's StaticFilesConfig
    /// root, the rendered nginx `root`); empty: none.
    QString staticRoot;
    bool staticFollowSymlinks = false; ///< symlinks may lead out of staticRoot
    QString cacheControl;              ///< Cache-Control of static files; empty: none sent
    bool gzip = true;                  ///< the embedded proxy compresses text responses
    /// The embedded proxy's access log: "" the default file (access.log in the site's log
    /// directory), "-" standard output, "off" none, else an absolute path.
    QString accessLog;
    static inline const QString AccessLogOff = QStringLiteral("off");
    static inline const QString AccessLogStdout = QStringLiteral("-");
    bool tls = false; ///< HTTPS on `listen`
    /// PEM certificate chain and key (both or neither); neither: issued by the local dev CA.
    QString tlsCert;
    QString tlsKey;
    QString redirectHttp; ///< HOST:PORT answering 301 to https:// (needs tls); empty: none
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    QString listen; ///< HOST:PORT of the local balancer; empty: none
    /// The local balancer's retries: other backends a failed idempotent request may be
    /// retried on once it was sent (ProxyConfig::retries).
    int retries = 1;
    static constexpr int MaxRetries = 10;
    QList<Backend> backends;
    QStringList hosts;    ///< host names; empty means the local machine
    QList<quint16> ports; ///< ports handed to this site's workers, kept across restarts
    std::optional<SiteBalancer> balancer; ///< absent: no production balancer managed

    /// Args with every {port} replaced.
    QStringList argsForPort(quint16 port) const;

    /// Every problem, each naming its field under `path` ("sites[0].backends[1].address: ...");
    /// empty when valid. Every string field is checked (FieldText), those printed into
    /// balancer configs with the stricter sets the renderers need.
    QStringList problems(const QString &path = QString()) const;
    /// The problems joined with "; ".
    Result<void> validate(const QString &path = QString()) const;
    QJsonObject toJson() const;
    static Result<Site> fromJson(const QJsonObject &object, const QString &path);

    bool operator==(const Site &) const = default;
};

} // namespace corral
