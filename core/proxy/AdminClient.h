#pragma once

// Where the proxy's admin API listens, and the one client that talks to it. The API changes
// the balancer, so it is never reachable by a web page: by default it is a Unix socket
// (mode 0600 in a 0700 directory, peer checked with SO_PEERCRED); a loopback TCP address
// needs a bearer token that Corral generates and keeps in a 0600 file next to the sockets.

#include "util/Result.h"

#include <QByteArray>
#include <QJsonObject>
#include <QString>

namespace corral {

struct AdminEndpoint {
    QString socketPath; ///< Unix socket; empty for TCP
    QString host;       ///< TCP: a loopback address
    quint16 port = 0;   ///< TCP: 0 before binding picks an ephemeral port
    QString tokenFile;  ///< TCP: the file holding the bearer token (filled in once bound)

    bool isUnix() const { return !socketPath.isEmpty(); }
    /// "unix:/run/user/1000/corral/proxy-42.sock" or "127.0.0.1:9000".
    QString toString() const;
    /// "unix:PATH", "HOST:PORT" (a loopback address) or "" for the default Unix socket
    /// (left empty here; the server picks its path when it starts).
    static Result<AdminEndpoint> parse(const QString &spec);
};

/// Corral's per-user runtime directory for admin sockets and token files:
/// $XDG_RUNTIME_DIR/corral, or /tmp/corral-UID when XDG_RUNTIME_DIR is unset. Created 0700
/// when missing; refused unless it is a real directory owned by this user that nobody else
/// can enter (another user could otherwise pre-create it and read the tokens).
Result<QString> adminRuntimeDirectory();

/// A blocking client of the admin API over either transport: one request per connection,
/// the token read from the endpoint's token file and sent as `Authorization: Bearer`.
class AdminClient {
public:
    explicit AdminClient(AdminEndpoint endpoint, int timeoutMs = 5000);

    struct Response {
        int status = 0;
        QByteArray body;
        QJsonObject json() const;
    };

    /// `method` `path` with `body` (sent as application/json).
    Result<Response> call(const QByteArray &method, const QString &path,
                          const QByteArray &body = {}) const;
    /// Sends `request` as it is and reads the answer: for testing what the server refuses.
    Result<Response> sendRaw(const QByteArray &request) const;
    /// The "Authorization: Bearer ..." header line (CRLF included), empty on a Unix socket.
    Result<QByteArray> authorizationHeader() const;

private:
    AdminEndpoint m_endpoint;
    int m_timeoutMs;
};

} // namespace corral
