#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QString>

namespace corral {

/// A TCP listener on a host, from `ss -ltnp`.
struct ListeningPort {
    QString address; ///< "127.0.0.1", "::", "*"
    quint16 port = 0;
    QString process; ///< empty when ss could not see it (not root, another user's process)
    qint64 pid = 0;
};

/// What Corral learns about a host in one round trip.
struct HostFacts {
    QString os;     ///< PRETTY_NAME of /etc/os-release
    QString kernel; ///< uname -srm
    int cores = 0;
    qint64 memoryTotalBytes = 0;
    qint64 memoryAvailableBytes = 0;
    double load1 = 0, load5 = 0, load15 = 0;
    QList<ListeningPort> listening;
    bool systemdRunning = false; ///< /run/systemd/system exists: systemctl will work
    bool systemctl = false, nginx = false, haproxy = false, apache2 = false, node = false;

    /// A few lines for `corralctl host test`.
    QString summary() const;
};

/// The discovery command and the parsing of its output, kept apart from the transport so
/// they can be tested on captured text.
class HostDiscovery {
public:
    /// One shell command gathering everything; sections are separated by "@@name" lines.
    static QString command();
    static Result<HostFacts> parse(const QByteArray &output);
    /// Parses `ss -ltn[p]` output (with or without the header line).
    static QList<ListeningPort> parseListening(const QByteArray &ssOutput);
};

} // namespace corral
