#pragma once

#include "model/Host.h"
#include "model/Site.h"
#include "util/Result.h"

#include <QList>
#include <QString>
#include <QStringList>

namespace corral {

/// Hosts and sites, stored in one JSON file. Loading never modifies the file; saving is
/// atomic and durable (writeFileAtomically) and keeps the previous file as PATH.bak, replaced
/// only once the new file is complete: a failed save changes neither file.
class Inventory {
public:
    static constexpr int CurrentVersion = 1;

    /// The path to use: `overridePath` (from --inventory) if given, else $CORRAL_INVENTORY,
    /// else $XDG_CONFIG_HOME/corral/inventory.json.
    static QString resolvePath(const QString &overridePath = QString());

    /// Reads `path`. A missing file is an empty inventory; anything unreadable, malformed or
    /// invalid is an error naming the file and the JSON path (or line:column).
    static Result<Inventory> load(const QString &path);
    static Result<Inventory> parse(const QByteArray &json, const QString &fileName);

    Result<void> save(const QString &path) const;
    QByteArray toJson() const;
    /// Checks every host and site and the references between them.
    Result<void> validate() const;

    /// Hosts in display order: the local machine first, whether or not the file lists it.
    QList<Host> hostsWithLocal() const;
    const QList<Host> &hosts() const { return m_hosts; }
    const QList<Site> &sites() const { return m_sites; }
    const Host *host(const QString &name) const;
    const Site *site(const QString &name) const;
    /// Sites deployed on `hostName`. A site without hosts runs on its balancer's host when it
    /// has a production balancer, else on the local machine.
    QList<Site> sitesOnHost(const QString &hostName) const;

    /// Sites that name `hostName` as a worker host or as their balancer's host.
    QStringList sitesUsingHost(const QString &hostName) const;

    Result<void> addHost(const Host &host);
    /// Replaces the host of the same name (its address, port, user, authentication).
    Result<void> updateHost(const Host &host);
    /// Refused, naming every site in sitesUsingHost(), while a site uses the host.
    Result<void> removeHost(const QString &name);
    Result<void> addSite(const Site &site);
    Result<void> updateSite(const Site &site);
    Result<void> removeSite(const QString &name);

private:
    QList<Host> m_hosts;
    QList<Site> m_sites;
};

} // namespace corral
