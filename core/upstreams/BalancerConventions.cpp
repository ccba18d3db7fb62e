#include "upstreams/BalancerConventions.h"

namespace corral {

namespace {
const QLatin1String BlockPrefix("corral-");
}

QString balancerBlockName(const QString &site) {
    return BlockPrefix + site;
}

QString siteNameOfBlock(const QString &blockName) {
    if (blockName.startsWith(BlockPrefix) && blockName.size() > BlockPrefix.size())
        return blockName.mid(BlockPrefix.size());
    return blockName;
}

QString haproxyServerName(const Backend &backend) {
    QString name = backend.key();
    name.remove(QLatin1Char('[')).remove(QLatin1Char(']'));
    return name;
}

QString defaultLogDirectory(RenderFormat format) {
    switch (format) {
    case RenderFormat::Nginx:
        return QStringLiteral("/var/log/nginx");
    case RenderFormat::Haproxy:
        return QStringLiteral("/var/log/haproxy");
    case RenderFormat::Apache:
        return QStringLiteral("/var/log/apache2");
    }
    return QStringLiteral("/var/log/nginx");
}

QString logDirectoryFor(RenderFormat format, const RenderOptions &options) {
    return options.logDirectory.isEmpty() ? defaultLogDirectory(format) : options.logDirectory;
}

QString accessLogPath(const QString &logDirectory, const QString &site) {
    return logDirectory + QLatin1Char('/') + site + QStringLiteral(".access.log");
}

QString errorLogPath(const QString &logDirectory, const QString &site) {
    return logDirectory + QLatin1Char('/') + site + QStringLiteral(".error.log");
}

QString defaultHaproxyRuntimeDirectory() {
    return QStringLiteral("/run/haproxy");
}

QString haproxyStatsSocket(const QString &runtimeDirectory, const QString &site) {
    const QString directory =
        runtimeDirectory.isEmpty() ? defaultHaproxyRuntimeDirectory() : runtimeDirectory;
    return directory + QLatin1Char('/') + balancerBlockName(site) + QStringLiteral(".sock");
}

} // namespace corral
