#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QString>

namespace corral {

class SshSession;

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

/// What testing a connection found (the Add host dialog's Test button).
struct ConnectionTest {
    bool connected = false;
    bool hostKeyUnknown = false; ///< refused: the host's key was never seen before
    bool hostKeyChanged = false; ///< refused: the host's key differs from the one on file
    QString error;
    QString fingerprint;      ///< the server's key, "SHA256:..."
    QString knownFingerprint; ///< the one on file when the key changed
    QByteArray keyEntry;      ///< the known_hosts line of the key offered
    QString summary;          ///< HostFacts::summary() of the host, or why it is missing
    qint64 connectMs = 0;
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
    /// Connects `session` (its config says how: secret, trusted fingerprint) and runs the
    /// discovery command: for SshHost::call() from a dialog, which never sees the session.
    static Result<ConnectionTest> testConnection(SshSession &session);
};

} // namespace corral
