#include "WorkerTableModel.h"
#include "PlainText.h"

#include <algorithm>

#include <QBrush>
#include <QColor>
#include <QDateTime>

namespace corral {

WorkerTableModel::WorkerTableModel(QObject *parent)
    : QAbstractTableModel(parent) {}

int WorkerTableModel::rowCount(const QModelIndex &parent) const {
    return parent.isValid() ? 0 : int(m_rows.size()) + (m_balancer ? 1 : 0);
}

int WorkerTableModel::columnCount(const QModelIndex &parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QString WorkerTableModel::formatBytes(qint64 bytes) {
    if (bytes <= 0) return QStringLiteral("–");
    if (bytes < 1024 * 1024) return QStringLiteral("%1 KiB").arg(bytes / 1024.0, 0, 'f', 0);
    if (bytes < 1024LL * 1024 * 1024)
        return QStringLiteral("%1 MiB").arg(bytes / (1024.0 * 1024), 0, 'f', 1);
    return QStringLiteral("%1 GiB").arg(bytes / (1024.0 * 1024 * 1024), 0, 'f', 2);
}

QString WorkerTableModel::formatDuration(qint64 ms) {
    if (ms <= 0) return QStringLiteral("–");
    const qint64 seconds = ms / 1000;
    if (seconds < 60) return QStringLiteral("%1 s").arg(seconds);
    if (seconds < 3600) return QStringLiteral("%1 m %2 s").arg(seconds / 60).arg(seconds % 60);
    return QStringLiteral("%1 h %2 m").arg(seconds / 3600).arg(seconds / 60 % 60);
}

static QColor stateColour(WorkerState state) {
    switch (state) {
    case WorkerState::Running:
        return QColor(0x2e, 0x9d, 0x4f);
    case WorkerState::Starting:
    case WorkerState::Draining:
    case WorkerState::Stopping:
    case WorkerState::Backoff:
        return QColor(0xd0, 0x8a, 0x1a);
    case WorkerState::Unhealthy:
    case WorkerState::Crashed:
    case WorkerState::Failed:
        return QColor(0xd2, 0x3c, 0x3c);
    case WorkerState::Stopped:
        break;
    }
    return QColor(0x80, 0x80, 0x80);
}

// "unknown (last seen 14:03:12)": a row of a host that cannot be reached.
static QString unknownState(const WorkerRow &row) {
    return row.lastSeenMs > 0 ? QObject::tr("unknown (last seen %1)")
                                    .arg(QDateTime::fromMSecsSinceEpoch(row.lastSeenMs)
                                             .toString(QStringLiteral("hh:mm:ss")))
                              : QObject::tr("unknown (never seen)");
}

QVariant WorkerTableModel::displayValue(const WorkerRow &row, int column) const {
    if (!row.reachable) {
        // Nothing live: no last value may pass for a current one.
        switch (column) {
        case Host:
        case Port:
        case Crashes:
            break;
        case State:
            return unknownState(row);
        default:
            return QStringLiteral("–");
        }
    }
    switch (column) {
    case Host:
        return row.hostName.isEmpty() ? row.host : row.hostName;
    case Port:
        return QString::number(row.port);
    case Pid:
        return row.pid > 0 ? QString::number(row.pid) : QStringLiteral("–");
    case State:
        return row.inProxy && row.backendState != QLatin1String("up") &&
                       row.state == WorkerState::Running
                   ? workerStateName(row.state) + QStringLiteral(" (") + row.backendState +
                         QLatin1Char(')')
                   : workerStateName(row.state);
    case Uptime:
        return formatDuration(row.uptimeMs);
    case Crashes:
        return QString::number(row.crashes);
    case Cpu:
        return row.cpuValid ? QString::number(row.cpuPercent, 'f', 1) : QStringLiteral("–");
    case Rss:
        return formatBytes(row.rssBytes);
    case RequestsPerSecond:
        return row.inProxy ? QString::number(row.requestsPerSecond, 'f', 0) : QStringLiteral("–");
    case InFlight:
        return row.inProxy ? QString::number(row.inFlight) : QStringLiteral("–");
    case ErrorsPerSecond:
        return row.inProxy ? QString::number(row.errorsPerSecond, 'f', 1) : QStringLiteral("–");
    case P99:
        return row.inProxy && row.p99Ms > 0 ? QStringLiteral("%1 ms").arg(row.p99Ms, 0, 'f', 1)
                                            : QStringLiteral("–");
    }
    return {};
}

QVariant WorkerTableModel::sortValue(const WorkerRow &row, int column) const {
    switch (column) {
    case Host:
        return row.host;
    case Port:
        return row.port;
    case Pid:
        return row.pid;
    case State:
        return row.reachable ? workerStateName(row.state) : QStringLiteral("unknown");
    case Uptime:
        return row.uptimeMs;
    case Crashes:
        return row.crashes;
    case Cpu:
        return row.cpuPercent;
    case Rss:
        return row.rssBytes;
    case RequestsPerSecond:
        return row.requestsPerSecond;
    case InFlight:
        return row.inFlight;
    case ErrorsPerSecond:
        return row.errorsPerSecond;
    case P99:
        return row.p99Ms;
    }
    return {};
}

static QString crashText(const WorkerRow &row) {
    QString text = QObject::tr("%n crash(es), ", nullptr, row.crashes) +
                   QObject::tr("%n restart(s) (manual ones included)", nullptr, row.restarts);
    if (row.lastCrashMs > 0)
        text += QObject::tr("\nLast crash: %1, %2")
                    .arg(QDateTime::fromMSecsSinceEpoch(row.lastCrashMs)
                             .toString(QStringLiteral("yyyy-MM-dd hh:mm:ss")),
                         row.lastCrashCause);
    return text;
}

QVariant WorkerTableModel::balancerData(const BalancerRow &row, int column, int role) const {
    static const QColor red(0xd2, 0x3c, 0x3c);
    switch (role) {
    case Qt::DisplayRole:
        switch (column) {
        case Host:
            return tr("balancer");
        case Port:
            return row.listen.section(QLatin1Char(':'), -1);
        case State:
            return row.errorsPerSecond > 0 ? tr("no backend") : tr("answering");
        case RequestsPerSecond:
            return QString::number(row.errorsPerSecond, 'f', 0);
        case ErrorsPerSecond:
            return QString::number(row.errorsPerSecond, 'f', 1);
        default:
            return QStringLiteral("–");
        }
    case SortRole:
        return column == ErrorsPerSecond || column == RequestsPerSecond
                   ? QVariant(row.errorsPerSecond)
               : column == Host ? QVariant(tr("balancer"))
                                : QVariant();
    case PortRole:
        return 0; // not a worker: worker actions stay disabled on this row
    case Qt::TextAlignmentRole:
        return column >= Port && column != State ? QVariant(Qt::AlignRight | Qt::AlignVCenter)
                                                 : QVariant();
    case Qt::ForegroundRole:
        if (row.errorsPerSecond > 0 && (column == State || column == ErrorsPerSecond))
            return QBrush(red);
        break;
    case Qt::ToolTipRole:
        return tr("Requests the balancer on %1 answered itself with 502/503/504 because no "
                  "backend was usable: %2 since it started")
            .arg(row.listen)
            .arg(row.errorsTotal);
    default:
        break;
    }
    return {};
}

QVariant WorkerTableModel::data(const QModelIndex &index, int role) const {
    const QVariant value = roleData(index, role);
    return role == Qt::ToolTipRole && value.isValid() ? QVariant(plainToolTip(value.toString()))
                                                      : value;
}

QVariant WorkerTableModel::roleData(const QModelIndex &index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
    if (index.row() == m_rows.size() && m_balancer)
        return balancerData(*m_balancer, index.column(), role);
    const WorkerRow &row = m_rows.at(index.row());
    switch (role) {
    case Qt::DisplayRole:
        return displayValue(row, index.column());
    case SortRole:
        return sortValue(row, index.column());
    case PortRole:
        return row.port;
    case HostRole:
        return row.host;
    case Qt::TextAlignmentRole:
        return index.column() >= Port && index.column() != State
                   ? QVariant(Qt::AlignRight | Qt::AlignVCenter)
                   : QVariant();
    case Qt::ForegroundRole:
        if (!row.reachable) return QBrush(QColor(0x80, 0x80, 0x80)); // greyed: not live
        if (index.column() == State) return QBrush(stateColour(row.state));
        break;
    case Qt::ToolTipRole:
        if (index.column() == Host && !row.hostName.isEmpty())
            return QStringLiteral("%1 (%2)").arg(row.hostName, row.host);
        if (index.column() == State)
            return QString(
                (row.cause.isEmpty() ? workerStateName(row.state) : row.cause) +
                (row.lastCrashMs > 0 ? QString(QLatin1Char('\n') + crashText(row)) : QString()));
        if (index.column() == Crashes) return crashText(row);
        break;
    default:
        break;
    }
    return {};
}

QVariant WorkerTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal) return {};
    static const char *const titles[ColumnCount] = {"Host",   "Port",      "PID",      "State",
                                                    "Uptime", "Crashes",   "CPU %",    "RSS",
                                                    "Req/s",  "In flight", "Errors/s", "p99"};
    static const char *const tips[ColumnCount] = {
        "Machine the worker runs on",
        "Port the worker listens on",
        "Process id of the worker",
        "Supervisor state (and the balancer's view when it differs)",
        "Time since the worker became ready",
        "Crashes since the worker was launched; the tooltip has restarts and the last crash",
        "CPU of the worker's whole process tree; 100 = one core",
        "Resident memory of the worker's process tree",
        "Requests per second through the balancer",
        "Requests being served now",
        "5xx answers and failed attempts per second",
        "99th percentile latency through the balancer"};
    if (section < 0 || section >= ColumnCount) return {};
    if (role == Qt::DisplayRole) return tr(titles[section]);
    if (role == Qt::ToolTipRole) return tr(tips[section]);
    return {};
}

const WorkerRow *WorkerTableModel::rowForPort(quint16 port) const {
    for (const WorkerRow &row : m_rows)
        if (row.port == port) return &row;
    return nullptr;
}

void WorkerTableModel::clear() {
    if (rowCount() == 0) return;
    beginRemoveRows({}, 0, rowCount() - 1);
    m_rows.clear();
    m_balancer.reset();
    endRemoveRows();
}

void WorkerTableModel::updateBalancerRow(const ClusterSnapshot &snapshot) {
    const bool show = !snapshot.listen.isEmpty() && snapshot.proxyErrorsTotal > 0;
    const int position = int(m_rows.size());
    if (!show) {
        if (!m_balancer) return;
        beginRemoveRows({}, position, position);
        m_balancer.reset();
        endRemoveRows();
        return;
    }
    const BalancerRow incoming{snapshot.listen, snapshot.proxyErrorsPerSecond,
                               snapshot.proxyErrorsTotal};
    if (!m_balancer) {
        beginInsertRows({}, position, position);
        m_balancer = incoming;
        endInsertRows();
        return;
    }
    m_balancer = incoming;
    Q_EMIT dataChanged(index(position, 0), index(position, ColumnCount - 1));
}

// Rows are identified by where the worker listens; locally the host is always "local".
static bool sameWorker(const WorkerRow &a, const WorkerRow &b) {
    return a.port == b.port && a.host == b.host;
}

static bool beforeWorker(const WorkerRow &a, const WorkerRow &b) {
    return a.host != b.host ? a.host < b.host : a.port < b.port;
}

void WorkerTableModel::updateSnapshot(const ClusterSnapshot &snapshot) {
    // Remove rows whose worker is gone.
    for (int i = int(m_rows.size()) - 1; i >= 0; --i) {
        const WorkerRow &current = m_rows.at(i);
        const bool present =
            std::any_of(snapshot.workers.cbegin(), snapshot.workers.cend(),
                        [&current](const WorkerRow &row) { return sameWorker(row, current); });
        if (!present) {
            beginRemoveRows({}, i, i);
            m_rows.removeAt(i);
            endRemoveRows();
        }
    }
    // Update or insert, keeping (host, port) order.
    for (const WorkerRow &incoming : snapshot.workers) {
        int position = 0;
        while (position < m_rows.size() && beforeWorker(m_rows.at(position), incoming))
            ++position;
        if (position < m_rows.size() && sameWorker(m_rows.at(position), incoming)) {
            const WorkerRow &current = m_rows.at(position);
            // Reachability greys or restores the whole row.
            int first = current.reachable != incoming.reachable ? 0 : ColumnCount;
            int last = current.reachable != incoming.reachable ? ColumnCount - 1 : -1;
            for (int column = 0; column < ColumnCount; ++column) {
                if (displayValue(current, column) != displayValue(incoming, column) ||
                    (column == State && current.cause != incoming.cause) ||
                    (column == Crashes && (current.restarts != incoming.restarts ||
                                           current.lastCrashMs != incoming.lastCrashMs))) {
                    first = qMin(first, column);
                    last = qMax(last, column); // not below a whole-row change's last column
                }
            }
            m_rows[position] = incoming;
            if (last >= 0) Q_EMIT dataChanged(index(position, first), index(position, last));
        } else {
            beginInsertRows({}, position, position);
            m_rows.insert(position, incoming);
            endInsertRows();
        }
    }
    updateBalancerRow(snapshot);
}

} // namespace corral
