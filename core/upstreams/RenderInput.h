#pragma once

#include "model/FieldText.h"
#include "model/Site.h"
#include "upstreams/RenderOptions.h"
#include "util/Result.h"

#include <QList>
#include <QString>
#include <QStringList>

namespace corral {

/// A site and its render options after every field that reaches a config file has been
/// checked against a strict character set. The renderers only ever print what is in here,
/// so nothing from the inventory reaches a config unchecked.
struct RenderInput {
    QString name;       ///< site name (letters, digits, '.', '_', '-')
    QString identifier; ///< name as [A-Za-z0-9_], for nginx variables and log formats
    QStringList serverNames;
    QString staticRoot;
    QString healthPath;
    BalancingPolicy policy = BalancingPolicy::RoundRobin;
    QList<Backend> backends; ///< the site's, or its local worker ports when it lists none
    RenderOptions options;   ///< with defaults filled in
    qint64 clientMaxBodyBytes = 0;

    bool tls() const { return options.tls(); }
    /// "ADDR:PORT" or "PORT" for a listen directive; IPv6 addresses in brackets.
    QString listenOn(quint16 port) const;
};

/// Checks `site` and `options` for rendering; `defaultLogDirectory` fills an empty one.
Result<RenderInput> prepareRender(const Site &site, const RenderOptions &options,
                                  const QString &defaultLogDirectory);

} // namespace corral
