#include "upstreams/HaproxyRuntime.h"
#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QThread>

#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <algorithm>

namespace corral {

QString haproxyRuntimeCommand(const QString &socketPath, const QString &command) {
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                         QStringLiteral("printf '%s\\n' \"$1\" | socat stdio \"UNIX-CONNECT:$2\""),
                         QStringLiteral("sh"), command, socketPath});
}

QString haproxySetServerState(const QString &proxy, const QString &server, const QString &state) {
    return QStringLiteral("set server %1/%2 state %3").arg(proxy, server, state);
}

Result<void> runHaproxyCommand(SshSession &session, const QString &socketPath,
                               const QString &command, int timeoutMs) {
    auto result = session.exec(haproxyRuntimeCommand(socketPath, command), timeoutMs);
    if (!result) return fail(result.error());
    const QString answer = QString::fromUtf8(result->stdOut + result->stdErr).trimmed();
    if (result->exitStatus == 127)
        return fail(
            QStringLiteral("socat is not installed on %1").arg(session.config().displayName()));
    if (result->exitStatus != 0 || !answer.isEmpty())
        return fail(QStringLiteral("\"%1\" on %2: %3")
                        .arg(command, socketPath,
                             answer.isEmpty()
                                 ? QStringLiteral("exit status %1").arg(result->exitStatus)
                                 : answer));
    return {};
}

Result<QByteArray> readHaproxyStat(SshSession &session, const QString &socketPath, int timeoutMs) {
    auto stat =
        session.exec(haproxyRuntimeCommand(socketPath, QStringLiteral("show stat")), timeoutMs);
    if (!stat) return fail(stat.error());
    if (stat->exitStatus != 0)
        return fail(QStringLiteral("show stat on %1: %2")
                        .arg(socketPath, QString::fromUtf8(stat->stdErr).trimmed()));
    return stat->stdOut;
}

Result<HaproxyStat> HaproxyStat::parse(const QByteArray &csv) {
    const QList<QByteArray> lines = csv.split('\n');
    if (lines.isEmpty() || !lines.first().startsWith("# "))
        return fail(QStringLiteral("show stat: no CSV header"));
    HaproxyStat stat;
    stat.m_columns = lines.first().mid(2).split(',');
    for (qsizetype i = 1; i < lines.size(); ++i)
        if (!lines.at(i).isEmpty()) stat.m_rows.append(lines.at(i).split(','));
    return stat;
}

Result<QString> HaproxyStat::field(const QString &proxy, const QString &server,
                                   const QString &columnName) const {
    const qsizetype pxname = column("pxname");
    const qsizetype svname = column("svname");
    const qsizetype wanted = m_columns.indexOf(columnName.toUtf8());
    if (pxname < 0 || svname < 0 || wanted < 0)
        return fail(QStringLiteral("show stat: no pxname, svname or %1 column").arg(columnName));
    for (const QList<QByteArray> &fields : m_rows) {
        if (fields.size() <= std::max({pxname, svname, wanted})) continue;
        if (QString::fromUtf8(fields.at(pxname)) == proxy &&
            QString::fromUtf8(fields.at(svname)) == server)
            return QString::fromUtf8(fields.at(wanted));
    }
    return fail(QStringLiteral("show stat: no server %1/%2").arg(proxy, server));
}

Result<int> HaproxyStat::currentSessions(const QString &proxy, const QString &server) const {
    auto scur = field(proxy, server, QStringLiteral("scur"));
    if (!scur) return fail(scur.error());
    return scur->toInt();
}

Result<RequestCounts> HaproxyStat::sessionTotalsByAddress(const QString &proxy) const {
    return totalsByAddress(proxy, QStringLiteral("stot"));
}

Result<RequestCounts> HaproxyStat::totalsByAddress(const QString &proxy,
                                                   const QString &columnName) const {
    const qsizetype pxname = column("pxname");
    const qsizetype svname = column("svname");
    const qsizetype addr = column("addr");
    const qsizetype stot = m_columns.indexOf(columnName.toUtf8());
    if (pxname < 0 || svname < 0 || addr < 0 || stot < 0)
        return fail(
            QStringLiteral("show stat: missing pxname, svname, addr or %1 column").arg(columnName));
    RequestCounts totals;
    for (const QList<QByteArray> &fields : m_rows) {
        if (fields.size() <= std::max({pxname, svname, addr, stot})) continue;
        const QByteArray &server = fields.at(svname);
        if (server == "FRONTEND" || server == "BACKEND") continue;
        if (!proxy.isEmpty() && QString::fromUtf8(fields.at(pxname)) != proxy) continue;
        const QString key = QString::fromUtf8(fields.at(addr));
        if (key.isEmpty()) continue;
        totals[key] += fields.at(stot).toULongLong();
    }
    return totals;
}

HaproxyStatFollower::HaproxyStatFollower(QString socketPath, QString proxy)
    : m_socket(std::move(socketPath))
    , m_proxy(std::move(proxy)) {}

QString HaproxyStatFollower::command() const {
    return haproxyRuntimeCommand(m_socket, QStringLiteral("show stat"));
}

Result<RequestCounts> HaproxyStatFollower::parseTotals(const QByteArray &csv,
                                                       const QString &proxy) {
    auto stat = HaproxyStat::parse(csv);
    if (!stat) return fail(stat.error());
    return stat->sessionTotalsByAddress(proxy);
}

namespace {

// What cumulative counters added since `last`; a counter that went backwards means HAProxy
// restarted: counted from zero.
RequestCounts countersDelta(const RequestCounts &totals, const RequestCounts &last) {
    RequestCounts delta;
    for (auto it = totals.cbegin(); it != totals.cend(); ++it) {
        const quint64 before = last.value(it.key());
        const quint64 added = it.value() >= before ? it.value() - before : it.value();
        if (added > 0) delta.insert(it.key(), added);
    }
    return delta;
}

} // namespace

Result<RequestCounts> HaproxyStatFollower::consume(const QByteArray &csv) {
    auto stat = HaproxyStat::parse(csv);
    if (!stat) return fail(stat.error());
    auto totals = stat->sessionTotalsByAddress(m_proxy);
    if (!totals) return fail(totals.error());
    // Errors are an extra: a CSV without hrsp_5xx (a TCP proxy) still gives requests.
    auto errorTotals = stat->totalsByAddress(m_proxy, QStringLiteral("hrsp_5xx"));
    const RequestCounts delta = m_primed ? countersDelta(totals.value(), m_last) : RequestCounts();
    m_lastErrors = m_primed && errorTotals ? countersDelta(errorTotals.value(), m_lastErrorTotals)
                                           : RequestCounts();
    m_last = totals.value();
    m_lastErrorTotals = errorTotals ? errorTotals.value() : RequestCounts();
    m_primed = true;
    return delta;
}

Result<RequestCounts> HaproxyStatFollower::poll(SshSession &session, int timeoutMs) {
    auto result = session.exec(command(), timeoutMs);
    if (!result) return fail(result.error());
    if (result->exitStatus != 0)
        return fail(QStringLiteral("show stat on %1 failed (exit status %2): %3")
                        .arg(m_socket)
                        .arg(result->exitStatus)
                        .arg(QString::fromUtf8(result->stdErr).trimmed()));
    return consume(result->stdOut);
}

Result<double> waitHaproxyServerUp(SshSession &session, const QString &socketPath,
                                   const QString &proxy, const QString &server, int timeoutMs) {
    QElapsedTimer elapsed;
    elapsed.start();
    const QDeadlineTimer deadline(timeoutMs);
    for (;;) {
        auto csv = readHaproxyStat(session, socketPath);
        if (!csv) return fail(csv.error());
        auto stat = HaproxyStat::parse(csv.value());
        if (!stat) return fail(stat.error());
        auto status = stat->field(proxy, server, QStringLiteral("status"));
        if (!status) return fail(status.error());
        if (status->startsWith(QLatin1String("UP")) || status.value() == QLatin1String("no check"))
            return double(elapsed.elapsed()) / 1000.0;
        if (deadline.hasExpired()) {
            auto check = stat->field(proxy, server, QStringLiteral("check_status"));
            auto description = stat->field(proxy, server, QStringLiteral("check_desc"));
            return fail(QStringLiteral("HAProxy still reports %1/%2 as %3 after %4 s (its last "
                                       "check: %5%6)")
                            .arg(proxy, server, status.value())
                            .arg(timeoutMs / 1000.0)
                            .arg(check ? check.value() : QStringLiteral("unknown"),
                                 description && !description->isEmpty()
                                     ? QStringLiteral(" ") + description.value()
                                     : QString()));
        }
        QThread::msleep(200);
    }
}

} // namespace corral
