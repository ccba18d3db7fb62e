#include "BalancerProcess.h"

#include "TestProcess.h"
#include "upstreams/Renderers.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>

namespace corral::test {

namespace {

bool writeWhole(const QString &path, const QByteArray &text) {
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) && file.write(text) == text.size();
}

QByteArray readWhole(const QString &path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

struct ToolRun {
    bool finished = false;
    int exitCode = -1;
    QString output; ///< stdout and stderr together
};

ToolRun run(const QStringList &command) {
    QProcess process;
    process.setProcessChannelMode(QProcess::MergedChannels);
    process.start(command.value(0), command.mid(1));
    ToolRun result;
    result.finished = process.waitForFinished(30000);
    if (!result.finished) stopProcess(process, 1000);
    result.exitCode = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    result.output = QString::fromLocal8Bit(process.readAll());
    return result;
}

} // namespace

// The shared lifecycle -----------------------------------------------------------------------

BalancerProcess::BalancerProcess(QString format, QString siteName)
    : m_format(std::move(format))
    , m_site(std::move(siteName))
    // Below the ephemeral range: the port is bound only when a site file is applied, and
    // meanwhile the outgoing connections of the tests beside this one must not take it
    // (seen: nginx's bind() failing with EADDRINUSE under the full parallel suite).
    , m_httpPort(workerBasePort()) {
    m_process.setProcessChannelMode(QProcess::MergedChannels);
}

BalancerProcess::~BalancerProcess() {
    stop();
}

QString BalancerProcess::findTool(const QString &name) {
    QString path = QStandardPaths::findExecutable(name);
    if (path.isEmpty())
        path = QStandardPaths::findExecutable(
            name, {QStringLiteral("/usr/sbin"), QStringLiteral("/usr/local/sbin")});
    return path;
}

void BalancerProcess::stop() {
    stopProcess(m_process);
}

Result<QString> BalancerProcess::validate() const {
    const ToolRun result = run(validateCommand());
    if (result.finished && result.exitCode == 0) return result.output;
    return fail(QStringLiteral("%1 refused the config (exit code %2): %3")
                    .arg(validateCommand().join(u' '))
                    .arg(result.exitCode)
                    .arg(result.output));
}

Result<void> BalancerProcess::reload() const {
    const ToolRun result = run(reloadCommand());
    if (result.finished && result.exitCode == 0) return {};
    return fail(QStringLiteral("%1 failed (exit code %2): %3")
                    .arg(reloadCommand().join(u' '))
                    .arg(result.exitCode)
                    .arg(result.output));
}

SiteBalancer BalancerProcess::balancer(const QString &hostName) const {
    SiteBalancer balancer;
    balancer.host = hostName;
    balancer.format = m_format;
    balancer.configPath = siteFile();
    balancer.validate = validateCommand();
    balancer.reload = reloadCommand();
    balancer.probeUrl = QStringLiteral("http://%1:%2/").arg(m_listenAddress).arg(m_httpPort);
    balancer.listenAddress = m_listenAddress;
    balancer.httpPort = m_httpPort;
    balancer.stateDirectory = prefixPath(QStringLiteral("corral-state"));
    addTo(balancer);
    return balancer;
}

bool BalancerProcess::writeFiles(const Launch &launch, QString *error) {
    const auto failed = [&](const QString &why) {
        if (error) *error = why;
        return false;
    };
    if (!m_dir.isValid()) return failed(QStringLiteral("no temporary directory"));
    if (m_httpPort == 0) return failed(QStringLiteral("no free port"));
    if (launch.program.isEmpty()) return failed(m_format + QStringLiteral(" is not installed"));
    for (const QString &directory : launch.directories)
        if (!QDir().mkpath(prefixPath(directory)))
            return failed(QStringLiteral("cannot create %1").arg(prefixPath(directory)));
    for (const auto &[path, text] : launch.files)
        if (!writeWhole(path, text)) return failed(QStringLiteral("cannot write %1").arg(path));
    return true;
}

bool BalancerProcess::launch(const Launch &launch, QString *error) {
    const QString tool = QFileInfo(launch.program).fileName();
    const auto failed = [&](const QString &why) {
        if (error) *error = why;
        return false;
    };
    if (!writeFiles(launch, error)) return false;
    m_process.start(launch.program, launch.arguments);
    if (!m_process.waitForStarted(5000))
        return failed(tool + QStringLiteral(" did not start: ") + m_process.errorString());
    const auto notUp = [&](const QString &what) {
        QString why = tool + QLatin1Char(' ') + what + QStringLiteral(": ") +
                      QString::fromUtf8(m_process.readAll());
        if (!launch.errorLog.isEmpty()) why += QString::fromUtf8(readWhole(launch.errorLog));
        return failed(why);
    };
    if (launch.waitForPort &&
        !waitForListener(m_httpPort, m_process, 15000, QHostAddress(m_listenAddress)))
        return notUp(QStringLiteral("did not come up"));
    const auto allFilesThere = [&] {
        for (const QString &file : launch.waitForFiles)
            if (!QFile::exists(file)) return false;
        return true;
    };
    const QDeadlineTimer deadline(10000);
    while (!allFilesThere() && !deadline.hasExpired() && isRunning())
        m_process.waitForFinished(20); // the poll interval; notices an exit meanwhile
    if (!isRunning()) return notUp(QStringLiteral("exited"));
    if (!allFilesThere())
        return notUp(QStringLiteral("wrote none of ") +
                     launch.waitForFiles.join(QStringLiteral(", ")));
    return true;
}

// nginx ---------------------------------------------------------------------------------------

NginxInstance::NginxInstance(const QString &siteName)
    : BalancerProcess(QStringLiteral("nginx"), siteName) {}

bool NginxInstance::available() {
    return !findTool(QStringLiteral("nginx")).isEmpty();
}

QString NginxInstance::mainConfig() const {
    return prefixPath(QStringLiteral("conf/nginx.conf"));
}
QString NginxInstance::siteFile() const {
    return prefixPath(QStringLiteral("conf.d/%1.conf").arg(siteName()));
}
QString NginxInstance::errorLog() const {
    return prefixPath(QStringLiteral("logs/error.log"));
}
QString NginxInstance::logDirectory() const {
    return prefixPath(QStringLiteral("logs"));
}
QString NginxInstance::accessLog() const {
    return prefixPath(QStringLiteral("logs/%1.access.log").arg(siteName()));
}
QString NginxInstance::pidFile() const {
    return prefixPath(QStringLiteral("nginx.pid"));
}

QStringList NginxInstance::baseArgs() const {
    return {QStringLiteral("-p"), directory(),          QStringLiteral("-c"),
            mainConfig(),         QStringLiteral("-e"), errorLog()};
}

QStringList NginxInstance::validateCommand() const {
    return QStringList{findTool(QStringLiteral("nginx"))} + baseArgs() +
           QStringList{QStringLiteral("-t")};
}

QStringList NginxInstance::reloadCommand() const {
    return QStringList{findTool(QStringLiteral("nginx"))} + baseArgs() +
           QStringList{QStringLiteral("-s"), QStringLiteral("reload")};
}

void NginxInstance::addTo(SiteBalancer &balancer) const {
    balancer.errorLog = errorLog();
    balancer.logDirectory = logDirectory();
}

BalancerProcess::Launch NginxInstance::launchSpec() const {
    Launch launch;
    launch.program = findTool(QStringLiteral("nginx"));
    launch.arguments =
        baseArgs() + QStringList{QStringLiteral("-g"), QStringLiteral("daemon off;")};
    launch.directories = {QStringLiteral("conf"), QStringLiteral("conf.d"), QStringLiteral("logs")};
    launch.files = {
        {mainConfig(),
         QStringLiteral("user root;\nworker_processes 1;\npid %1/nginx.pid;\n"
                        "error_log %1/logs/error.log;\n"
                        "events { worker_connections 256; }\n"
                        "http {\n  access_log %1/logs/access.log;\n"
                        "  client_body_temp_path %1/body;\n  proxy_temp_path %1/proxy;\n"
                        "  fastcgi_temp_path %1/fastcgi;\n  uwsgi_temp_path %1/uwsgi;\n"
                        "  scgi_temp_path %1/scgi;\n  include %1/conf.d/*.conf;\n}\n")
             .arg(directory())
             .toUtf8()}};
    // Nothing to listen on before a site file is applied: up once it wrote its pid file.
    launch.waitForPort = false;
    launch.waitForFiles = {pidFile()};
    return launch;
}

bool NginxInstance::start(QString *error) {
    return launch(launchSpec(), error);
}

bool NginxInstance::prepare(QString *error) {
    return writeFiles(launchSpec(), error);
}

// HAProxy -------------------------------------------------------------------------------------

HaproxyInstance::HaproxyInstance(const QString &siteName)
    : BalancerProcess(QStringLiteral("haproxy"), siteName) {}

bool HaproxyInstance::available() {
    return !findTool(QStringLiteral("haproxy")).isEmpty() &&
           !findTool(QStringLiteral("socat")).isEmpty();
}

QString HaproxyInstance::siteFile() const {
    return prefixPath(QStringLiteral("%1.cfg").arg(siteName()));
}
QString HaproxyInstance::pidFile() const {
    return prefixPath(QStringLiteral("haproxy.pid"));
}
QString HaproxyInstance::runtimeDirectory() const {
    return prefixPath(QStringLiteral("run"));
}
QString HaproxyInstance::backendName() const {
    return QStringLiteral("corral-") + siteName();
}
QString HaproxyInstance::statsSocket() const {
    return runtimeDirectory() + QLatin1Char('/') + backendName() + QStringLiteral(".sock");
}

QStringList HaproxyInstance::validateCommand() const {
    return {findTool(QStringLiteral("haproxy")), QStringLiteral("-c"), QStringLiteral("-f"),
            siteFile()};
}

QStringList HaproxyInstance::reloadCommand() const {
    return {QStringLiteral("sh"), QStringLiteral("-c"),
            QStringLiteral("kill -USR2 \"$(cat \"$1\")\""), QStringLiteral("sh"), pidFile()};
}

RenderOptions HaproxyInstance::renderOptions() const {
    RenderOptions options;
    options.listenAddress = listenAddress();
    options.httpPort = httpPort();
    options.runtimeDirectory = runtimeDirectory();
    return options;
}

void HaproxyInstance::addTo(SiteBalancer &balancer) const {
    balancer.runtimeDirectory = runtimeDirectory();
}

bool HaproxyInstance::start(const Site &site, QString *error) {
    auto config = renderHaproxy(site, renderOptions());
    if (!config) {
        if (error) *error = QStringLiteral("render: ") + config.error();
        return false;
    }
    Launch launch;
    launch.program = findTool(QStringLiteral("haproxy"));
    launch.arguments = {QStringLiteral("-W"), QStringLiteral("-db"), QStringLiteral("-f"),
                        siteFile(),           QStringLiteral("-p"),  pidFile()};
    launch.directories = {QStringLiteral("run")};
    launch.files = {{siteFile(), config->toUtf8()}};
    launch.waitForFiles = {pidFile(), statsSocket()};
    return this->launch(launch, error);
}

// Apache --------------------------------------------------------------------------------------

namespace {

const QString apacheModuleDirectory = QStringLiteral("/usr/lib/apache2/modules");

} // namespace

QString apacheLoadModuleLines() {
    // What Corral's Apache renderer needs (proxy_hcheck for health paths, ssl for TLS sites).
    static const char *const modules[] = {"mpm_event",
                                          "authz_core",
                                          "proxy",
                                          "proxy_http",
                                          "proxy_wstunnel",
                                          "proxy_balancer",
                                          "proxy_hcheck",
                                          "watchdog",
                                          "lbmethod_byrequests",
                                          "lbmethod_bybusyness",
                                          "slotmem_shm",
                                          "headers",
                                          "rewrite",
                                          "ssl",
                                          "socache_shmcb"};
    QString lines;
    for (const char *module : modules) {
        const QString file =
            apacheModuleDirectory + QStringLiteral("/mod_%1.so").arg(QLatin1String(module));
        if (QFile::exists(file)) // watchdog is built in on some builds
            lines += QStringLiteral("LoadModule %1_module %2\n").arg(QLatin1String(module), file);
    }
    return lines;
}

ApacheInstance::ApacheInstance(const QString &siteName)
    : BalancerProcess(QStringLiteral("apache"), siteName) {}

bool ApacheInstance::available() {
    return !findTool(QStringLiteral("apache2")).isEmpty() &&
           QFile::exists(apacheModuleDirectory + QStringLiteral("/mod_proxy_balancer.so"));
}

QString ApacheInstance::mainConfig() const {
    return prefixPath(QStringLiteral("apache2.conf"));
}
QString ApacheInstance::siteFile() const {
    return prefixPath(QStringLiteral("conf.d/%1.conf").arg(siteName()));
}
QString ApacheInstance::errorLog() const {
    return prefixPath(QStringLiteral("logs/error.log"));
}
QString ApacheInstance::logDirectory() const {
    return prefixPath(QStringLiteral("logs"));
}
QString ApacheInstance::accessLog() const {
    return prefixPath(QStringLiteral("logs/%1.access.log").arg(siteName()));
}

QStringList ApacheInstance::baseArgs() const {
    return {findTool(QStringLiteral("apache2")), QStringLiteral("-d"), directory(),
            QStringLiteral("-f"), mainConfig()};
}

QStringList ApacheInstance::validateCommand() const {
    return baseArgs() + QStringList{QStringLiteral("-t")};
}

QStringList ApacheInstance::reloadCommand() const {
    return baseArgs() + QStringList{QStringLiteral("-k"), QStringLiteral("graceful")};
}

void ApacheInstance::addTo(SiteBalancer &balancer) const {
    balancer.errorLog = errorLog();
    balancer.logDirectory = logDirectory();
}

BalancerProcess::Launch ApacheInstance::launchSpec() const {
    // Apache refuses to run its children as root; www-data is the Debian package's user.
    QString main = QStringLiteral("ServerRoot %1\nPidFile %1/apache2.pid\n"
                                  "DefaultRuntimeDir %1/run\nServerName localhost\n"
                                  "ErrorLog %1/logs/error.log\nUser www-data\nGroup www-data\n"
                                  "Listen %2:%3\n")
                       .arg(directory(), listenAddress())
                       .arg(httpPort());
    main += apacheLoadModuleLines();
    main += QStringLiteral("IncludeOptional %1/conf.d/*.conf\n").arg(directory());
    const QStringList args = baseArgs();
    Launch launch;
    launch.program = args.first();
    launch.arguments =
        args.mid(1) + QStringList{QStringLiteral("-D"), QStringLiteral("FOREGROUND")};
    launch.directories = {QStringLiteral("conf.d"), QStringLiteral("logs"), QStringLiteral("run")};
    launch.files = {{mainConfig(), main.toUtf8()}};
    launch.errorLog = errorLog();
    return launch;
}

bool ApacheInstance::start(QString *error) {
    if (!available()) {
        if (error) *error = QStringLiteral("apache2 is not installed");
        return false;
    }
    return launch(launchSpec(), error);
}

bool ApacheInstance::prepare(QString *error) {
    return writeFiles(launchSpec(), error);
}

} // namespace corral::test
