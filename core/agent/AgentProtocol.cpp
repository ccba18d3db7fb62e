#include "agent/AgentProtocol.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonParseError>

namespace corral::agent {

namespace {

constexpr std::pair<SiteState, const char *> siteStateNames[] = {{SiteState::Starting, "starting"},
                                                                 {SiteState::Running, "running"},
                                                                 {SiteState::Stopping, "stopping"},
                                                                 {SiteState::Stopped, "stopped"},
                                                                 {SiteState::Failed, "failed"}};

QJsonObject machineToJson(const MachineSample &machine) {
    return {{QStringLiteral("cores"), machine.cores},
            {QStringLiteral("cpuValid"), machine.cpuValid},
            {QStringLiteral("cpuBusyPercent"), machine.cpuBusyPercent},
            {QStringLiteral("memoryUsedBytes"), machine.memoryUsedBytes},
            {QStringLiteral("memoryTotalBytes"), machine.memoryTotalBytes},
            {QStringLiteral("load1"), machine.load1},
            {QStringLiteral("load5"), machine.load5},
            {QStringLiteral("load15"), machine.load15}};
}

MachineSample machineFromJson(const QJsonObject &o) {
    MachineSample machine;
    machine.cores = o.value(QStringLiteral("cores")).toInt();
    machine.cpuValid = o.value(QStringLiteral("cpuValid")).toBool();
    machine.cpuBusyPercent = o.value(QStringLiteral("cpuBusyPercent")).toDouble();
    machine.memoryUsedBytes = o.value(QStringLiteral("memoryUsedBytes")).toInteger();
    machine.memoryTotalBytes = o.value(QStringLiteral("memoryTotalBytes")).toInteger();
    machine.load1 = o.value(QStringLiteral("load1")).toDouble();
    machine.load5 = o.value(QStringLiteral("load5")).toDouble();
    machine.load15 = o.value(QStringLiteral("load15")).toDouble();
    return machine;
}

} // namespace

QString siteStateName(SiteState state) {
    for (const auto &[value, name] : siteStateNames)
        if (value == state) return QString::fromLatin1(name);
    return QStringLiteral("stopped");
}

SiteState siteStateFromName(const QString &name) {
    for (const auto &[value, text] : siteStateNames)
        if (name == QLatin1String(text)) return value;
    return SiteState::Stopped;
}

QList<std::pair<quint16, WorkerState>> workerStates(const SiteStatus &site) {
    QList<std::pair<quint16, WorkerState>> states;
    if (site.snapshot.timestampMs > 0 && !site.snapshot.workers.isEmpty()) {
        for (const WorkerRow &row : site.snapshot.workers)
            states.append({row.port, row.state});
    } else {
        for (const WorkerStatus &worker : site.workers)
            states.append({worker.port, worker.state});
    }
    return states;
}

QJsonObject workerRowToJson(const WorkerRow &row) {
    QJsonObject o{{QStringLiteral("site"), row.site},
                  {QStringLiteral("host"), row.host},
                  {QStringLiteral("port"), row.port},
                  {QStringLiteral("pid"), row.pid},
                  {QStringLiteral("state"), workerStateName(row.state)},
                  {QStringLiteral("cause"), row.cause},
                  {QStringLiteral("uptimeMs"), row.uptimeMs},
                  {QStringLiteral("restarts"), row.restarts},
                  {QStringLiteral("crashes"), row.crashes},
                  {QStringLiteral("lastCrashMs"), row.lastCrashMs},
                  {QStringLiteral("lastCrashCause"), row.lastCrashCause},
                  {QStringLiteral("cpuValid"), row.cpuValid},
                  {QStringLiteral("cpuPercent"), row.cpuPercent},
                  {QStringLiteral("rssBytes"), row.rssBytes},
                  {QStringLiteral("inProxy"), row.inProxy},
                  {QStringLiteral("backendState"), row.backendState},
                  {QStringLiteral("requestsTotal"), qint64(row.requestsTotal)},
                  {QStringLiteral("requestsPerSecond"), row.requestsPerSecond},
                  {QStringLiteral("inFlight"), row.inFlight},
                  {QStringLiteral("errorsPerSecond"), row.errorsPerSecond},
                  {QStringLiteral("p99Ms"), row.p99Ms},
                  {QStringLiteral("reachable"), row.reachable},
                  {QStringLiteral("lastSeenMs"), row.lastSeenMs}};
    if (!row.hostName.isEmpty()) o.insert(QStringLiteral("hostName"), row.hostName);
    return o;
}

WorkerRow workerRowFromJson(const QJsonObject &o) {
    WorkerRow row;
    row.site = o.value(QStringLiteral("site")).toString();
    row.host = o.value(QStringLiteral("host")).toString(QStringLiteral("local"));
    row.port = quint16(o.value(QStringLiteral("port")).toInt());
    row.pid = o.value(QStringLiteral("pid")).toInteger();
    row.state = workerStateFromName(o.value(QStringLiteral("state")).toString())
                    .value_or(WorkerState::Stopped);
    row.cause = o.value(QStringLiteral("cause")).toString();
    row.uptimeMs = o.value(QStringLiteral("uptimeMs")).toInteger();
    row.restarts = o.value(QStringLiteral("restarts")).toInt();
    row.crashes = o.value(QStringLiteral("crashes")).toInt();
    row.lastCrashMs = o.value(QStringLiteral("lastCrashMs")).toInteger();
    row.lastCrashCause = o.value(QStringLiteral("lastCrashCause")).toString();
    row.cpuValid = o.value(QStringLiteral("cpuValid")).toBool();
    row.cpuPercent = o.value(QStringLiteral("cpuPercent")).toDouble();
    row.rssBytes = o.value(QStringLiteral("rssBytes")).toInteger();
    row.inProxy = o.value(QStringLiteral("inProxy")).toBool();
    row.backendState = o.value(QStringLiteral("backendState")).toString();
    row.requestsTotal = quint64(o.value(QStringLiteral("requestsTotal")).toInteger());
    row.requestsPerSecond = o.value(QStringLiteral("requestsPerSecond")).toDouble();
    row.inFlight = o.value(QStringLiteral("inFlight")).toInteger();
    row.errorsPerSecond = o.value(QStringLiteral("errorsPerSecond")).toDouble();
    row.p99Ms = o.value(QStringLiteral("p99Ms")).toDouble();
    row.hostName = o.value(QStringLiteral("hostName")).toString();
    row.reachable = o.value(QStringLiteral("reachable")).toBool(true);
    row.lastSeenMs = o.value(QStringLiteral("lastSeenMs")).toInteger();
    return row;
}

QJsonObject snapshotToJson(const ClusterSnapshot &snapshot) {
    QJsonArray workers;
    for (const WorkerRow &row : snapshot.workers)
        workers.append(workerRowToJson(row));
    return {
        {QStringLiteral("timestampMs"), snapshot.timestampMs},
        {QStringLiteral("site"), snapshot.site},
        {QStringLiteral("listen"), snapshot.listen},
        {QStringLiteral("policy"), policyName(snapshot.policy)},
        {QStringLiteral("workers"), workers},
        {QStringLiteral("requestsPerSecond"), snapshot.requestsPerSecond},
        {QStringLiteral("errorsPerSecond"), snapshot.errorsPerSecond},
        {QStringLiteral("proxyErrorsPerSecond"), snapshot.proxyErrorsPerSecond},
        {QStringLiteral("proxyErrorsTotal"), qint64(snapshot.proxyErrorsTotal)},
        {QStringLiteral("running"), snapshot.running},
        {QStringLiteral("machine"), machineToJson(snapshot.machine)},
        {QStringLiteral("unreachableHosts"), QJsonArray::fromStringList(snapshot.unreachableHosts)},
        {QStringLiteral("requestsKnown"), snapshot.requestsKnown}};
}

ClusterSnapshot snapshotFromJson(const QJsonObject &o) {
    ClusterSnapshot snapshot;
    snapshot.timestampMs = o.value(QStringLiteral("timestampMs")).toInteger();
    snapshot.site = o.value(QStringLiteral("site")).toString();
    snapshot.listen = o.value(QStringLiteral("listen")).toString();
    snapshot.policy = policyFromName(o.value(QStringLiteral("policy")).toString())
                          .value_or(BalancingPolicy::RoundRobin);
    for (const QJsonValue &row : o.value(QStringLiteral("workers")).toArray())
        snapshot.workers.append(workerRowFromJson(row.toObject()));
    snapshot.requestsPerSecond = o.value(QStringLiteral("requestsPerSecond")).toDouble();
    snapshot.errorsPerSecond = o.value(QStringLiteral("errorsPerSecond")).toDouble();
    snapshot.proxyErrorsPerSecond = o.value(QStringLiteral("proxyErrorsPerSecond")).toDouble();
    snapshot.proxyErrorsTotal = quint64(o.value(QStringLiteral("proxyErrorsTotal")).toInteger());
    snapshot.running = o.value(QStringLiteral("running")).toInt();
    snapshot.machine = machineFromJson(o.value(QStringLiteral("machine")).toObject());
    for (const QJsonValue &host : o.value(QStringLiteral("unreachableHosts")).toArray())
        snapshot.unreachableHosts.append(host.toString());
    snapshot.requestsKnown = o.value(QStringLiteral("requestsKnown")).toBool(true);
    return snapshot;
}

QJsonObject siteStatusToJson(const SiteStatus &status) {
    QJsonArray workers;
    for (const WorkerStatus &worker : status.workers)
        workers.append(QJsonObject{{QStringLiteral("port"), worker.port},
                                   {QStringLiteral("pid"), worker.pid},
                                   {QStringLiteral("state"), workerStateName(worker.state)},
                                   {QStringLiteral("logPath"), worker.logPath}});
    QJsonObject o{{QStringLiteral("name"), status.site.name},
                  {QStringLiteral("site"), status.site.toJson()},
                  {QStringLiteral("state"), siteStateName(status.state)},
                  {QStringLiteral("ephemeral"), status.ephemeral},
                  {QStringLiteral("rollingOut"), status.rollingOut},
                  {QStringLiteral("hasProxy"), status.hasProxy},
                  {QStringLiteral("startedMs"), status.startedMs},
                  {QStringLiteral("workers"), workers}};
    if (!status.error.isEmpty()) o.insert(QStringLiteral("error"), status.error);
    if (status.snapshot.timestampMs > 0)
        o.insert(QStringLiteral("snapshot"), snapshotToJson(status.snapshot));
    return o;
}

Result<SiteStatus> siteStatusFromJson(const QJsonObject &o) {
    SiteStatus status;
    auto site = Site::fromJson(o.value(QStringLiteral("site")).toObject(), QStringLiteral("site"));
    if (!site) return fail(site.error());
    status.site = site.value();
    status.state = siteStateFromName(o.value(QStringLiteral("state")).toString());
    status.error = o.value(QStringLiteral("error")).toString();
    status.ephemeral = o.value(QStringLiteral("ephemeral")).toBool();
    status.rollingOut = o.value(QStringLiteral("rollingOut")).toBool();
    status.hasProxy = o.value(QStringLiteral("hasProxy")).toBool();
    status.startedMs = o.value(QStringLiteral("startedMs")).toInteger();
    for (const QJsonValue &value : o.value(QStringLiteral("workers")).toArray()) {
        const QJsonObject w = value.toObject();
        WorkerStatus worker;
        worker.port = quint16(w.value(QStringLiteral("port")).toInt());
        worker.pid = w.value(QStringLiteral("pid")).toInteger();
        worker.state = workerStateFromName(w.value(QStringLiteral("state")).toString())
                           .value_or(WorkerState::Stopped);
        worker.logPath = w.value(QStringLiteral("logPath")).toString();
        status.workers.append(worker);
    }
    if (o.contains(QStringLiteral("snapshot")))
        status.snapshot = snapshotFromJson(o.value(QStringLiteral("snapshot")).toObject());
    return status;
}

QByteArray encodeLine(QJsonObject message) {
    message.insert(QStringLiteral("v"), ProtocolVersion);
    QByteArray line = QJsonDocument(message).toJson(QJsonDocument::Compact);
    line.append('\n');
    return line;
}

std::optional<Result<QJsonObject>> LineReader::next() {
    const qsizetype end = m_buffer.indexOf('\n', m_scanned);
    if (end < 0) {
        m_scanned = m_buffer.size();
        if (m_buffer.size() > MaxLineBytes)
            return Result<QJsonObject>(
                fail(QStringLiteral("a message is longer than %1 bytes").arg(MaxLineBytes)));
        return std::nullopt;
    }
    const QByteArray line = m_buffer.left(end);
    m_buffer.remove(0, end + 1);
    m_scanned = 0;
    QJsonParseError error{};
    const QJsonDocument document = QJsonDocument::fromJson(line, &error);
    if (error.error != QJsonParseError::NoError)
        return Result<QJsonObject>(fail(QStringLiteral("a message is not JSON: %1 at offset %2")
                                            .arg(error.errorString())
                                            .arg(error.offset)));
    if (!document.isObject())
        return Result<QJsonObject>(fail(QStringLiteral("a message is not a JSON object")));
    return Result<QJsonObject>(document.object());
}

} // namespace corral::agent
