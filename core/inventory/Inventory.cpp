#include "inventory/Inventory.h"

#include "model/FieldText.h"
#include "util/AtomicFile.h"
#include "util/JsonReader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSet>
#include <QStandardPaths>

namespace corral {

QString Inventory::resolvePath(const QString &overridePath) {
    if (!overridePath.isEmpty()) return overridePath;
    const QString fromEnv = qEnvironmentVariable("CORRAL_INVENTORY");
    if (!fromEnv.isEmpty()) return fromEnv;
    return QStandardPaths::writableLocation(QStandardPaths::GenericConfigLocation) +
           QStringLiteral("/corral/inventory.json");
}

static QString lineAndColumn(const QByteArray &json, int offset) {
    int line = 1;
    int column = 1;
    for (int i = 0; i < offset && i < json.size(); ++i) {
        if (json.at(i) == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return QString::number(line) + QLatin1Char(':') + QString::number(column);
}

Result<Inventory> Inventory::load(const QString &path) {
    QFile file(path);
    if (!file.exists()) return Inventory();
    if (!file.open(QIODevice::ReadOnly))
        return fail(path + QStringLiteral(": cannot read: ") + file.errorString());
    return parse(file.readAll(), path);
}

Result<Inventory> Inventory::parse(const QByteArray &json, const QString &fileName) {
    const QString prefix = fileName + QStringLiteral(": ");
    if (json.trimmed().isEmpty())
        return fail(prefix +
                    QStringLiteral("the file is empty (truncated?); expected a JSON object"));
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json, &parseError);
    if (parseError.error != QJsonParseError::NoError)
        // Qt reports the offset just past the offending character.
        return fail(fileName + QLatin1Char(':') +
                    lineAndColumn(json, qMax(0, parseError.offset - 1)) +
                    QStringLiteral(": syntax error: ") + parseError.errorString());
    if (!document.isObject())
        return fail(prefix + QStringLiteral("expected a JSON object at the top level"));

    JsonReader reader(document.object(), QString());
    const int version = reader.integer(QStringLiteral("version"), 0, 1, 1 << 30, true);
    if (reader.failed()) return fail(prefix + *reader.finish());
    if (version > CurrentVersion)
        return fail(prefix +
                    QStringLiteral("version: %1 is newer than this Corral understands (%2); "
                                   "upgrade Corral to read this file")
                        .arg(version)
                        .arg(CurrentVersion));

    Inventory inventory;
    const QJsonArray hosts = reader.array(QStringLiteral("hosts"));
    const QJsonArray sites = reader.array(QStringLiteral("sites"));
    if (const auto error = reader.finish()) return fail(prefix + *error);
    for (qsizetype i = 0; i < hosts.size(); ++i) {
        const QString path = indexPath(QString(), QStringLiteral("hosts"), i);
        if (!hosts.at(i).isObject())
            return fail(prefix + path + QStringLiteral(": expected an object"));
        auto host = Host::fromJson(hosts.at(i).toObject(), path);
        if (!host) return fail(prefix + host.error());
        inventory.m_hosts.append(std::move(host).value());
    }
    for (qsizetype i = 0; i < sites.size(); ++i) {
        const QString path = indexPath(QString(), QStringLiteral("sites"), i);
        if (!sites.at(i).isObject())
            return fail(prefix + path + QStringLiteral(": expected an object"));
        auto site = Site::fromJson(sites.at(i).toObject(), path);
        if (!site) return fail(prefix + site.error());
        inventory.m_sites.append(std::move(site).value());
    }
    if (auto valid = inventory.validate(); !valid) return fail(prefix + valid.error());
    return inventory;
}

Result<void> Inventory::validate() const {
    QHash<QString, qsizetype> hostIndex;
    for (qsizetype i = 0; i < m_hosts.size(); ++i) {
        const QString path = indexPath(QString(), QStringLiteral("hosts"), i);
        if (auto valid = m_hosts.at(i).validate(path); !valid) return valid;
        const QString &name = m_hosts.at(i).name;
        if (hostIndex.contains(name))
            return fail(path + QStringLiteral(".name: duplicate host name \"%1\" (also hosts[%2])")
                                   .arg(name)
                                   .arg(hostIndex.value(name)));
        if (name == Host::LocalName && m_hosts.at(i).kind != Host::Kind::Local)
            return fail(path +
                        QStringLiteral(".name: \"local\" is reserved for the local machine"));
        hostIndex.insert(name, i);
    }
    QHash<QString, qsizetype> siteIndex;
    for (qsizetype i = 0; i < m_sites.size(); ++i) {
        const QString path = indexPath(QString(), QStringLiteral("sites"), i);
        const Site &site = m_sites.at(i);
        if (auto valid = site.validate(path); !valid) return valid;
        if (siteIndex.contains(site.name))
            return fail(path + QStringLiteral(".name: duplicate site name \"%1\" (also sites[%2])")
                                   .arg(site.name)
                                   .arg(siteIndex.value(site.name)));
        siteIndex.insert(site.name, i);
        for (qsizetype h = 0; h < site.hosts.size(); ++h)
            if (site.hosts.at(h) != Host::LocalName && !hostIndex.contains(site.hosts.at(h)))
                return fail(indexPath(path, QStringLiteral("hosts"), h) +
                            QStringLiteral(": no host named %1").arg(shown(site.hosts.at(h))));
    }
    return {};
}

QByteArray Inventory::toJson() const {
    QJsonArray hosts;
    for (const Host &host : m_hosts)
        hosts.append(host.toJson());
    QJsonArray sites;
    for (const Site &site : m_sites)
        sites.append(site.toJson());
    const QJsonObject root{{QStringLiteral("version"), CurrentVersion},
                           {QStringLiteral("hosts"), hosts},
                           {QStringLiteral("sites"), sites}};
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

Result<void> Inventory::save(const QString &path) const {
    if (auto valid = validate(); !valid)
        return fail(path + QStringLiteral(": not saved: ") + valid.error());
    const QFileInfo info(path);
    if (!QDir().mkpath(info.absolutePath()))
        return fail(path + QStringLiteral(": cannot create directory ") + info.absolutePath());
    // The previous version becomes PATH.bak only once the new one is complete on disk, so a
    // full disk leaves both files as they were.
    AtomicWriteOptions options;
    options.backupPath = path + QStringLiteral(".bak");
    return writeFileAtomically(path, toJson(), options);
}

QList<Host> Inventory::hostsWithLocal() const {
    QList<Host> result;
    const Host *local = host(Host::LocalName);
    result.append(local ? *local : Host::local());
    for (const Host &h : m_hosts)
        if (h.name != Host::LocalName) result.append(h);
    return result;
}

const Host *Inventory::host(const QString &name) const {
    for (const Host &h : m_hosts)
        if (h.name == name) return &h;
    return nullptr;
}

const Site *Inventory::site(const QString &name) const {
    for (const Site &s : m_sites)
        if (s.name == name) return &s;
    return nullptr;
}

QList<Site> Inventory::sitesOnHost(const QString &hostName) const {
    QList<Site> result;
    for (const Site &s : m_sites) {
        // A site without hosts runs where its production balancer is, else on this machine.
        const QString implied = s.balancer ? s.balancer->host : Host::LocalName;
        const bool onImplied = s.hosts.isEmpty() && hostName == implied;
        if (onImplied || s.hosts.contains(hostName)) result.append(s);
    }
    return result;
}

Result<void> Inventory::addHost(const Host &host) {
    if (auto valid = host.validate(); !valid) return valid;
    if (this->host(host.name) || host.name == Host::LocalName)
        return fail(QStringLiteral("a host named \"%1\" already exists").arg(host.name));
    m_hosts.append(host);
    return {};
}

QStringList Inventory::sitesUsingHost(const QString &hostName) const {
    QStringList names;
    for (const Site &s : m_sites)
        if (s.hosts.contains(hostName) || (s.balancer && s.balancer->host == hostName))
            names.append(s.name);
    return names;
}

Result<void> Inventory::updateHost(const Host &host) {
    if (auto valid = host.validate(); !valid) return valid;
    for (Host &existing : m_hosts)
        if (existing.name == host.name) {
            existing = host;
            return {};
        }
    return fail(QStringLiteral("no host named %1").arg(shown(host.name)));
}

Result<void> Inventory::removeHost(const QString &name) {
    // Every site that would be left naming a host that no longer exists, not only the first.
    if (const QStringList users = sitesUsingHost(name); !users.isEmpty())
        return fail(QStringLiteral("host \"%1\" is still used by site(s) %2 (as a worker host or "
                                   "the balancer's host): remove it from them first")
                        .arg(name, QLatin1Char('"') + users.join(QStringLiteral("\", \"")) +
                                       QLatin1Char('"')));
    const auto removed = m_hosts.removeIf([&](const Host &h) { return h.name == name; });
    if (removed == 0) return fail(QStringLiteral("no host named %1").arg(shown(name)));
    return {};
}

Result<void> Inventory::addSite(const Site &site) {
    if (auto valid = site.validate(); !valid) return valid;
    if (this->site(site.name))
        return fail(QStringLiteral("a site named \"%1\" already exists").arg(site.name));
    m_sites.append(site);
    if (auto valid = validate(); !valid) {
        m_sites.removeLast();
        return valid;
    }
    return {};
}

Result<void> Inventory::updateSite(const Site &site) {
    for (Site &existing : m_sites) {
        if (existing.name != site.name) continue;
        if (auto valid = site.validate(); !valid) return valid;
        const Site previous = existing;
        existing = site;
        if (auto valid = validate(); !valid) {
            existing = previous;
            return valid;
        }
        return {};
    }
    return fail(QStringLiteral("no site named %1").arg(shown(site.name)));
}

Result<void> Inventory::removeSite(const QString &name) {
    if (m_sites.removeIf([&](const Site &s) { return s.name == name; }) == 0)
        return fail(QStringLiteral("no site named %1").arg(shown(name)));
    return {};
}

} // namespace corral
