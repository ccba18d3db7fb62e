#pragma once

#include "upstreams/RequestCounts.h"
#include "util/Result.h"

#include <QByteArray>
#include <QList>
#include <QString>

namespace corral {

class SshSession;

// HAProxy's runtime API on the stats socket Corral's config opens (haproxyStatsSocket() in
// BalancerConventions.h), reached with socat on the balancer's host: the one implementation
// for the rolling restart, the backend steps and the monitor.

/// The shell command that sends `command` (e.g. "show stat", "set server P/S state drain") to
/// the stats socket `socketPath` with socat; both are passed as arguments to `sh -c`, never
/// spliced into the script.
QString haproxyRuntimeCommand(const QString &socketPath, const QString &command);
/// "set server PROXY/SERVER state STATE" (ready, drain, maint).
QString haproxySetServerState(const QString &proxy, const QString &server, const QString &state);

/// Sends a command that answers nothing on success ("set server ...") over `session`. An
/// answer, a failing socat or its absence (exit status 127) is an error naming the command,
/// the socket or the host.
Result<void> runHaproxyCommand(SshSession &session, const QString &socketPath,
                               const QString &command, int timeoutMs = 30000);
/// `show stat` CSV from the stats socket over `session`.
Result<QByteArray> readHaproxyStat(SshSession &session, const QString &socketPath,
                                   int timeoutMs = 30000);

/// Polls `show stat` until HAProxy's own check reports server `server` of proxy `proxy` UP
/// ("UP", "UP 1/3": still in rotation; "no check" without checks); "DOWN 1/2" is on its way up
/// but gets no traffic yet. Returns the seconds it took; at `timeoutMs` fails with the status
/// and HAProxy's last check result.
Result<double> waitHaproxyServerUp(SshSession &session, const QString &socketPath,
                                   const QString &proxy, const QString &server, int timeoutMs);

/// One `show stat` answer: CSV whose first line is the "# pxname,svname,..." header.
class HaproxyStat {
public:
    /// Fails ("show stat: no CSV header") when the first line is not a header.
    static Result<HaproxyStat> parse(const QByteArray &csv);

    /// Column `column` (scur, status, check_status...) of server `server` of proxy `proxy`.
    Result<QString> field(const QString &proxy, const QString &server, const QString &column) const;
    /// The server's current sessions (scur): what a drain waits to reach 0.
    Result<int> currentSessions(const QString &proxy, const QString &server) const;
    /// Sessions since HAProxy started (stot) per server address ("ADDRESS:PORT", the addr
    /// column) of proxy `proxy`, or of every proxy when it is empty; the FRONTEND and BACKEND
    /// summary rows are left out. For an HTTP backend every request is one session (req_tot
    /// counts only on frontends in 2.6).
    Result<RequestCounts> sessionTotalsByAddress(const QString &proxy) const;
    /// Any cumulative server counter (stot, hrsp_5xx...) per server address, as
    /// sessionTotalsByAddress() gives stot; fails when the CSV has no such column.
    Result<RequestCounts> totalsByAddress(const QString &proxy, const QString &column) const;

private:
    qsizetype column(const char *name) const { return m_columns.indexOf(QByteArray(name)); }

    QList<QByteArray> m_columns;
    QList<QList<QByteArray>> m_rows;
};

/// HAProxy's per-server cumulative request counters from `show stat`, turned into per-tick
/// deltas keyed by server address ("ADDRESS:PORT").
class HaproxyStatFollower {
public:
    /// `proxy`: the HAProxy backend name (balancerBlockName(): "corral-SITE"); empty: all.
    HaproxyStatFollower(QString socketPath, QString proxy = {});

    /// haproxyRuntimeCommand(socket, "show stat").
    QString command() const;
    Result<RequestCounts> consume(const QByteArray &csv);
    Result<RequestCounts> poll(SshSession &session, int timeoutMs = 15000);
    /// 5xx answers per server since the previous consume() (the hrsp_5xx column; empty on the
    /// first reading and when HAProxy does not give that column).
    const RequestCounts &lastErrors() const { return m_lastErrors; }

    /// Cumulative totals per server from one `show stat` output.
    static Result<RequestCounts> parseTotals(const QByteArray &csv, const QString &proxy);

private:
    QString m_socket;
    QString m_proxy;
    RequestCounts m_last;
    RequestCounts m_lastErrorTotals;
    RequestCounts m_lastErrors;
    bool m_primed = false;
};

} // namespace corral
