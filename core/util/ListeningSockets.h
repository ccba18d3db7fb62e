#pragma once

// Who listens on a TCP port on this machine, from /proc/net/tcp{,6} and /proc/PID/fd. One
// implementation for every "is this port ours?" question: a worker is ready only when its
// own process tree holds the listening socket, and binding an address someone else holds
// fails naming the holder.

#include "util/Result.h"

#include <QHostAddress>
#include <QList>
#include <QString>

#include <string_view>

namespace corral {

/// One LISTEN socket as /proc/net/tcp{,6} lists it.
struct TcpListener {
    QHostAddress address; ///< Any / AnyIPv6 for a wildcard bind
    quint16 port = 0;
    quint64 inode = 0;
};

/// Parses the text of /proc/net/tcp or /proc/net/tcp6 (`v6` selects the address format) and
/// returns its LISTEN entries.
QList<TcpListener> parseProcNetTcp(std::string_view text, bool v6);

/// Every TCP listener of this network namespace.
QList<TcpListener> tcpListeners();

/// Listeners that would conflict with binding `address`:`port`: the same address, or a
/// wildcard of either family (a dual-stack [::] covers IPv4 too). A null `address` matches
/// every listener on `port`.
QList<TcpListener> listenersCovering(const QHostAddress &address, quint16 port);

/// A process holding a socket, as far as /proc shows it (other users' fds are unreadable).
struct SocketHolder {
    qint64 pid = 0;
    QString command; ///< /proc/PID/cmdline, arguments joined by spaces (comm if empty)
};

/// Processes holding any of the socket `inodes`.
QList<SocketHolder> socketHolders(const QList<quint64> &inodes);

/// `rootPid` and all its descendants (from /proc/PID/stat ppids); empty for a pid <= 0
/// (QProcess::processId() of a process that is not running).
QList<qint64> processTree(qint64 rootPid);

/// True when `rootPid` or one of its descendants holds a socket listening on `port`
/// (on any address). This is what "the worker is ready" must mean: a foreign process on the
/// port answering health checks is not our worker.
bool processTreeListensOn(qint64 rootPid, quint16 port);

/// "pid 4711 (nginx: master process)" for each holder, or "a process of another user"
/// when the socket exists but its holder is not visible.
QString describeHolders(const QList<TcpListener> &listeners);

/// Fails with "127.0.0.1:8080 is already in use by pid 4711 (nginx ...)" when anything listens
/// on `address`:`port` or on a wildcard covering it; succeeds for port 0.
Result<void> checkListenAddressFree(const QHostAddress &address, quint16 port);

} // namespace corral
