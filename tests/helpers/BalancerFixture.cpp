#include "BalancerFixture.h"

#include "HttpClient.h"
#include "TestProcess.h"
#include "inventory/Inventory.h"
#include "upstreams/Renderers.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>
#include <QTcpSocket>

namespace corral::test {

namespace {

QString findTool(const QString &name) {
    QString path = QStandardPaths::findExecutable(name);
    if (path.isEmpty())
        path = QStandardPaths::findExecutable(
            name, {QStringLiteral("/usr/sbin"), QStringLiteral("/usr/local/sbin")});
    return path;
}

} // namespace

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

bool waitForListener(quint16 port, QProcess &process, int timeoutMs) {
    const QDeadlineTimer deadline(timeoutMs);
    while (!deadline.hasExpired()) {
        if (process.state() != QProcess::Running) return false;
        QTcpSocket socket;
        socket.connectToHost(QHostAddress::LocalHost, port);
        if (socket.waitForConnected(200)) return true;
        process.waitForFinished(50);
    }
    return false;
}

void stopProcess(QProcess &process) {
    if (process.state() == QProcess::NotRunning) return;
    process.terminate(); // SIGTERM by PID
    if (!process.waitForFinished(10000)) process.kill();
    process.waitForFinished(5000);
}

Result<void> writeInventory(const QString &path, const Host &host, const Site &site) {
    Inventory inventory;
    if (auto added = inventory.addHost(host); !added) return fail(added.error());
    if (auto added = inventory.addSite(site); !added) return fail(added.error());
    return inventory.save(path);
}

// Demo workers ------------------------------------------------------------------------------

DemoWorkers::DemoWorkers(int count)
    : m_ports(std::size_t(count), 0) {
    for (int i = 0; i < count; ++i)
        m_processes.push_back(std::make_unique<QProcess>());
}

DemoWorkers::~DemoWorkers() {
    stop();
}

bool DemoWorkers::startOne(int index, QString *error) {
    QProcess &worker = process(index);
    worker.start(m_program, {QStringLiteral("--port"), QString::number(port(index))});
    if (worker.waitForStarted(5000)) return true;
    if (error)
        *error = QStringLiteral("demo worker %1 (%2) did not start: %3")
                     .arg(index)
                     .arg(m_program, worker.errorString());
    return false;
}

bool DemoWorkers::waitUntilListening(int index, QString *error) {
    if (waitForListener(port(index), process(index))) return true;
    if (error)
        *error = QStringLiteral("demo worker %1 never listened on port %2: %3")
                     .arg(index)
                     .arg(port(index))
                     .arg(QString::fromUtf8(process(index).readAll()));
    return false;
}

bool DemoWorkers::start(const QString &program, QString *error) {
    m_program = program;
    for (int i = 0; i < count(); ++i) {
        m_ports[std::size_t(i)] = freePort();
        if (!startOne(i, error)) return false;
    }
    for (int i = 0; i < count(); ++i)
        if (!waitUntilListening(i, error)) return false;
    return true;
}

bool DemoWorkers::restart(int index, QString *error) {
    return startOne(index, error) && waitUntilListening(index, error);
}

void DemoWorkers::stop(int index) {
    stopProcess(process(index));
}

void DemoWorkers::stop() {
    for (int i = 0; i < count(); ++i)
        stop(i);
}

// nginx -------------------------------------------------------------------------------------

NginxInstance::NginxInstance(const QString &siteName)
    : m_site(siteName)
    , m_httpPort(freePort()) {
    m_process.setProcessChannelMode(QProcess::MergedChannels);
}

NginxInstance::~NginxInstance() {
    stop();
}

bool NginxInstance::available() {
    return !findTool(QStringLiteral("nginx")).isEmpty();
}

QString NginxInstance::mainConfig() const {
    return prefixPath(QStringLiteral("conf/nginx.conf"));
}
QString NginxInstance::siteFile() const {
    return prefixPath(QStringLiteral("conf.d/%1.conf").arg(m_site));
}
QString NginxInstance::errorLog() const {
    return prefixPath(QStringLiteral("logs/error.log"));
}
QString NginxInstance::logDirectory() const {
    return prefixPath(QStringLiteral("logs"));
}
QString NginxInstance::accessLog() const {
    return prefixPath(QStringLiteral("logs/%1.access.log").arg(m_site));
}
QString NginxInstance::pidFile() const {
    return prefixPath(QStringLiteral("nginx.pid"));
}

QStringList NginxInstance::baseArgs() const {
    return {QStringLiteral("-p"), m_dir.path(),         QStringLiteral("-c"),
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

SiteBalancer NginxInstance::balancer(const QString &hostName) const {
    SiteBalancer balancer;
    balancer.host = hostName;
    balancer.format = QStringLiteral("nginx");
    balancer.configPath = siteFile();
    balancer.validate = validateCommand();
    balancer.reload = reloadCommand();
    balancer.probeUrl = QStringLiteral("http://127.0.0.1:%1/").arg(m_httpPort);
    balancer.errorLog = errorLog();
    balancer.listenAddress = QStringLiteral("127.0.0.1");
    balancer.httpPort = m_httpPort;
    balancer.logDirectory = logDirectory();
    balancer.stateDirectory = prefixPath(QStringLiteral("corral-state"));
    return balancer;
}

QByteArray NginxInstance::output() {
    return m_process.readAll();
}

bool NginxInstance::start(QString *error) {
    const auto failed = [&](const QString &why) {
        if (error) *error = why;
        return false;
    };
    if (!m_dir.isValid()) return failed(QStringLiteral("no temporary directory"));
    if (m_httpPort == 0) return failed(QStringLiteral("no free port"));
    const QString nginx = findTool(QStringLiteral("nginx"));
    if (nginx.isEmpty()) return failed(QStringLiteral("nginx is not installed"));
    for (const char *sub : {"conf", "conf.d", "logs"})
        if (!QDir().mkpath(prefixPath(QLatin1String(sub))))
            return failed(QStringLiteral("cannot create %1").arg(prefixPath(QLatin1String(sub))));
    const QString p = m_dir.path();
    if (!writeFile(mainConfig(),
                   QStringLiteral("user root;\nworker_processes 1;\npid %1/nginx.pid;\n"
                                  "error_log %1/logs/error.log;\n"
                                  "events { worker_connections 256; }\n"
                                  "http {\n  access_log %1/logs/access.log;\n"
                                  "  client_body_temp_path %1/body;\n  proxy_temp_path %1/proxy;\n"
                                  "  fastcgi_temp_path %1/fastcgi;\n  uwsgi_temp_path %1/uwsgi;\n"
                                  "  scgi_temp_path %1/scgi;\n  include %1/conf.d/*.conf;\n}\n")
                       .arg(p)
                       .toUtf8()))
        return failed(QStringLiteral("cannot write %1").arg(mainConfig()));
    m_process.start(nginx,
                    baseArgs() + QStringList{QStringLiteral("-g"), QStringLiteral("daemon off;")});
    if (!m_process.waitForStarted(5000))
        return failed(QStringLiteral("nginx did not start: ") + m_process.errorString());
    const QDeadlineTimer deadline(10000);
    while (!QFile::exists(pidFile()) && !deadline.hasExpired() &&
           m_process.state() == QProcess::Running)
        m_process.waitForFinished(50);
    if (m_process.state() != QProcess::Running || !QFile::exists(pidFile()))
        return failed(QStringLiteral("nginx did not come up: ") +
                      QString::fromUtf8(m_process.readAll()));
    return true;
}

void NginxInstance::stop() {
    stopProcess(m_process);
}

// HAProxy -----------------------------------------------------------------------------------

HaproxyInstance::HaproxyInstance(const QString &siteName)
    : m_site(siteName)
    , m_httpPort(freePort()) {
    m_process.setProcessChannelMode(QProcess::MergedChannels);
}

HaproxyInstance::~HaproxyInstance() {
    stop();
}

bool HaproxyInstance::available() {
    return !findTool(QStringLiteral("haproxy")).isEmpty() &&
           !findTool(QStringLiteral("socat")).isEmpty();
}

QString HaproxyInstance::siteFile() const {
    return prefixPath(QStringLiteral("%1.cfg").arg(m_site));
}
QString HaproxyInstance::pidFile() const {
    return prefixPath(QStringLiteral("haproxy.pid"));
}
QString HaproxyInstance::runtimeDirectory() const {
    return prefixPath(QStringLiteral("run"));
}
QString HaproxyInstance::backendName() const {
    return QStringLiteral("corral-") + m_site;
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
    options.listenAddress = QStringLiteral("127.0.0.1");
    options.httpPort = m_httpPort;
    options.runtimeDirectory = runtimeDirectory();
    return options;
}

SiteBalancer HaproxyInstance::balancer(const QString &hostName) const {
    SiteBalancer balancer;
    balancer.host = hostName;
    balancer.format = QStringLiteral("haproxy");
    balancer.configPath = siteFile();
    balancer.validate = validateCommand();
    balancer.reload = reloadCommand();
    balancer.probeUrl = QStringLiteral("http://127.0.0.1:%1/").arg(m_httpPort);
    balancer.listenAddress = QStringLiteral("127.0.0.1");
    balancer.httpPort = m_httpPort;
    balancer.runtimeDirectory = runtimeDirectory();
    balancer.stateDirectory = prefixPath(QStringLiteral("corral-state"));
    return balancer;
}

QByteArray HaproxyInstance::output() {
    return m_process.readAll();
}

bool HaproxyInstance::start(const Site &site, QString *error) {
    const auto failed = [&](const QString &why) {
        if (error) *error = why;
        return false;
    };
    if (!m_dir.isValid()) return failed(QStringLiteral("no temporary directory"));
    if (m_httpPort == 0) return failed(QStringLiteral("no free port"));
    const QString haproxy = findTool(QStringLiteral("haproxy"));
    if (haproxy.isEmpty()) return failed(QStringLiteral("haproxy is not installed"));
    if (!QDir().mkpath(runtimeDirectory()))
        return failed(QStringLiteral("cannot create %1").arg(runtimeDirectory()));
    auto config = renderHaproxy(site, renderOptions());
    if (!config) return failed(QStringLiteral("render: ") + config.error());
    if (!writeFile(siteFile(), config->toUtf8()))
        return failed(QStringLiteral("cannot write %1").arg(siteFile()));
    m_process.start(haproxy, {QStringLiteral("-W"), QStringLiteral("-db"), QStringLiteral("-f"),
                              siteFile(), QStringLiteral("-p"), pidFile()});
    if (!m_process.waitForStarted(5000))
        return failed(QStringLiteral("haproxy did not start: ") + m_process.errorString());
    if (!waitForListener(m_httpPort, m_process))
        return failed(QStringLiteral("haproxy did not come up: ") +
                      QString::fromUtf8(m_process.readAll()));
    const QDeadlineTimer deadline(10000);
    while ((!QFile::exists(pidFile()) || !QFile::exists(statsSocket())) && !deadline.hasExpired() &&
           m_process.state() == QProcess::Running)
        m_process.waitForFinished(50);
    if (!QFile::exists(pidFile()) || !QFile::exists(statsSocket()))
        return failed(QStringLiteral("haproxy wrote no pid file or stats socket: ") +
                      QString::fromUtf8(m_process.readAll()));
    return true;
}

void HaproxyInstance::stop() {
    stopProcess(m_process);
}

// Apache ------------------------------------------------------------------------------------

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
    : m_site(siteName)
    , m_httpPort(freePort()) {
    m_process.setProcessChannelMode(QProcess::MergedChannels);
}

ApacheInstance::~ApacheInstance() {
    stop();
}

bool ApacheInstance::available() {
    return !findTool(QStringLiteral("apache2")).isEmpty() &&
           QFile::exists(apacheModuleDirectory + QStringLiteral("/mod_proxy_balancer.so"));
}

QString ApacheInstance::mainConfig() const {
    return prefixPath(QStringLiteral("apache2.conf"));
}
QString ApacheInstance::siteFile() const {
    return prefixPath(QStringLiteral("conf.d/%1.conf").arg(m_site));
}
QString ApacheInstance::errorLog() const {
    return prefixPath(QStringLiteral("logs/error.log"));
}
QString ApacheInstance::logDirectory() const {
    return prefixPath(QStringLiteral("logs"));
}
QString ApacheInstance::accessLog() const {
    return prefixPath(QStringLiteral("logs/%1.access.log").arg(m_site));
}

QStringList ApacheInstance::baseArgs() const {
    return {findTool(QStringLiteral("apache2")), QStringLiteral("-d"), m_dir.path(),
            QStringLiteral("-f"), mainConfig()};
}

QStringList ApacheInstance::validateCommand() const {
    return baseArgs() + QStringList{QStringLiteral("-t")};
}

QStringList ApacheInstance::reloadCommand() const {
    return baseArgs() + QStringList{QStringLiteral("-k"), QStringLiteral("graceful")};
}

SiteBalancer ApacheInstance::balancer(const QString &hostName) const {
    SiteBalancer balancer;
    balancer.host = hostName;
    balancer.format = QStringLiteral("apache");
    balancer.configPath = siteFile();
    balancer.validate = validateCommand();
    balancer.reload = reloadCommand();
    balancer.probeUrl = QStringLiteral("http://127.0.0.1:%1/").arg(m_httpPort);
    balancer.errorLog = errorLog();
    balancer.listenAddress = QStringLiteral("127.0.0.1");
    balancer.httpPort = m_httpPort;
    balancer.logDirectory = logDirectory();
    balancer.stateDirectory = prefixPath(QStringLiteral("corral-state"));
    return balancer;
}

QByteArray ApacheInstance::output() {
    return m_process.readAll();
}

bool ApacheInstance::start(QString *error) {
    const auto failed = [&](const QString &why) {
        if (error) *error = why;
        return false;
    };
    if (!m_dir.isValid()) return failed(QStringLiteral("no temporary directory"));
    if (m_httpPort == 0) return failed(QStringLiteral("no free port"));
    if (!available()) return failed(QStringLiteral("apache2 is not installed"));
    for (const char *sub : {"conf.d", "logs", "run"})
        if (!QDir().mkpath(prefixPath(QLatin1String(sub))))
            return failed(QStringLiteral("cannot create %1").arg(prefixPath(QLatin1String(sub))));
    // Apache refuses to run its children as root; www-data is the Debian package's user.
    QString main = QStringLiteral("ServerRoot %1\nPidFile %1/apache2.pid\n"
                                  "DefaultRuntimeDir %1/run\nServerName localhost\n"
                                  "ErrorLog %1/logs/error.log\nUser www-data\nGroup www-data\n"
                                  "Listen 127.0.0.1:%2\n")
                       .arg(m_dir.path())
                       .arg(m_httpPort);
    main += apacheLoadModuleLines();
    main += QStringLiteral("IncludeOptional %1/conf.d/*.conf\n").arg(m_dir.path());
    if (!writeFile(mainConfig(), main.toUtf8()))
        return failed(QStringLiteral("cannot write %1").arg(mainConfig()));
    const QStringList args = baseArgs();
    m_process.start(args.first(),
                    args.mid(1) + QStringList{QStringLiteral("-D"), QStringLiteral("FOREGROUND")});
    if (!m_process.waitForStarted(5000))
        return failed(QStringLiteral("apache2 did not start: ") + m_process.errorString());
    if (!waitForListener(m_httpPort, m_process))
        return failed(QStringLiteral("apache2 did not come up: ") +
                      QString::fromUtf8(m_process.readAll()) +
                      QString::fromUtf8(readFile(errorLog())));
    return true;
}

void ApacheInstance::stop() {
    stopProcess(m_process);
}

} // namespace corral::test
