#pragma once

// Corral's own known_hosts file: the name a host has there, and the two changes Corral makes
// to it (record a key the user accepted; replace a host's key after the user confirmed a
// change). Every change rewrites the whole file with writeFileAtomically(), so a full disk or
// a crash leaves the old file, never a torn line (libssh's ssh_session_update_known_hosts()
// appends through stdio and ignores fclose(): on a full disk it reports success and may leave
// a torn line that the next entry is glued to). ~/.ssh/known_hosts is never written.

#include "util/Result.h"

#include <QByteArray>
#include <QString>

namespace corral {

/// The name OpenSSH and libssh use in known_hosts: "address", or "[address]:port" when the
/// port is not 22.
QString knownHostsName(const QString &address, quint16 port);

/// True when the host pattern list of a known_hosts line ("a,[b]:2222", or a hashed
/// "|1|salt|hash") names `hostName` (as knownHostsName() spells it).
bool knownHostsPatternsMatch(const QByteArray &patterns, const QString &hostName);

/// Appends `entry` (one known_hosts line, "NAME TYPE BASE64") to the file at `path`, creating
/// it and its directory when missing.
Result<void> addKnownHost(const QString &path, const QByteArray &entry);

/// Drops every line of `path` that names `hostName` (plain or hashed, markers such as
/// @revoked kept) and appends `entry`: what accepting a host's changed key does. Every other
/// line stays byte for byte.
Result<void> replaceKnownHost(const QString &path, const QString &hostName,
                              const QByteArray &entry);

} // namespace corral
