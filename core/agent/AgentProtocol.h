#pragma once

#include "cluster/ClusterSnapshot.h"
#include "util/Result.h"

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QString>

namespace corral::agent {

/// The agent's protocol: JSON lines over the user's Unix socket (see README "The agent").
///
/// Request:   {"v":1,"id":7,"op":"start", ...arguments}
/// Reply:     {"v":1,"id":7,"ok":true,"result":{...}}
///            {"v":1,"id":7,"ok":false,"error":"site shop: worker 3001 ..."}
/// Event:     {"v":1,"event":"snapshot","snapshot":{...}}   (to subscribers, once per tick)
///            {"v":1,"event":"worker","site":S,"port":P,"pid":N,"state":"running","cause":C}
///            {"v":1,"event":"rolling","site":S,"replaced":N,"total":M}
///            {"v":1,"event":"sites","sites":[SiteStatus...]}  (whenever the set or a state
///            changes)
/// Replies come in request order per connection only for requests that finish at once; a
/// long operation (start, stop, restart, scale) replies when it has finished, and other
/// requests on the same connection are answered meanwhile.
inline constexpr int ProtocolVersion = 1;
/// A line longer than this is refused and the connection closed (a history reply of 10 sites
/// × 600 ticks × 8 workers stays well under it).
inline constexpr qsizetype MaxLineBytes = 64 * 1024 * 1024;

// Operations (the "op" field).
namespace op {
inline constexpr char Hello[] = "hello";   ///< -> {version, pid, socket, startedMs}
inline constexpr char Status[] = "status"; ///< [site] -> {sites:[SiteStatus]}
/// site:{Site}, ephemeral:bool, [startTimeoutMs], [killTimeoutMs]
inline constexpr char Start[] = "start";
inline constexpr char Stop[] = "stop";       ///< site:NAME
inline constexpr char Restart[] = "restart"; ///< site:NAME, [port]: rolling, or one worker
/// site:NAME, workers:N; with port:P instead, that worker is drained and removed
inline constexpr char Scale[] = "scale";
inline constexpr char Policy[] = "policy";       ///< site:NAME, policy:NAME
inline constexpr char Enable[] = "enable";       ///< site:NAME, port, enabled:bool
inline constexpr char Forget[] = "forget";       ///< site:NAME (a stopped site leaves the list)
inline constexpr char History[] = "history";     ///< site:NAME -> {snapshots:[...]}, oldest first
inline constexpr char Subscribe[] = "subscribe"; ///< pushes events to this connection
inline constexpr char Shutdown[] = "shutdown";   ///< stops every site, then the agent exits 0
} // namespace op

/// A site's state in the agent.
enum class SiteState { Starting, Running, Stopping, Stopped, Failed };
QString siteStateName(SiteState state);
SiteState siteStateFromName(const QString &name);

/// One worker as `status` lists it (the live numbers are in the snapshot).
struct WorkerStatus {
    quint16 port = 0;
    qint64 pid = 0;
    WorkerState state = WorkerState::Stopped;
    QString logPath; ///< rotated copies are PATH.1, PATH.2 ...
};

/// One site as the agent knows it.
struct SiteStatus {
    Site site; ///< its settings, `ports` the ones its workers hold
    SiteState state = SiteState::Stopped;
    QString error;          ///< why it failed (Failed), e.g. the holder of its address
    bool ephemeral = false; ///< stops when the client that started it disconnects
    bool rollingOut = false;
    bool hasProxy = false;
    qint64 startedMs = 0;
    QList<WorkerStatus> workers;
    ClusterSnapshot snapshot; ///< the latest tick (empty before the first)
};

/// The site's workers (port, state) as of its latest tick, or as the site list gave them
/// before the first tick.
QList<std::pair<quint16, WorkerState>> workerStates(const SiteStatus &site);

QJsonObject workerRowToJson(const WorkerRow &row);
WorkerRow workerRowFromJson(const QJsonObject &object);
QJsonObject snapshotToJson(const ClusterSnapshot &snapshot);
ClusterSnapshot snapshotFromJson(const QJsonObject &object);
QJsonObject siteStatusToJson(const SiteStatus &status);
Result<SiteStatus> siteStatusFromJson(const QJsonObject &object);

/// One message as one line (compact JSON and '\n'), with "v" set.
QByteArray encodeLine(QJsonObject message);

/// Splits a byte stream into JSON-object lines. feed() appends what was read; next() yields
/// each complete line's object, an Error for a line that is not a JSON object or longer than
/// MaxLineBytes (the connection should then be closed), and nullopt when more is needed.
class LineReader {
public:
    void feed(const QByteArray &bytes) { m_buffer.append(bytes); }
    std::optional<Result<QJsonObject>> next();

private:
    QByteArray m_buffer;
    qsizetype m_scanned = 0;
};

} // namespace corral::agent
