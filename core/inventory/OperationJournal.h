#pragma once

#include "model/Backend.h"
#include "util/Result.h"

#include <QDateTime>
#include <QString>

#include <optional>

namespace corral {

/// A remote operation on a site that has started something on a host the inventory does not
/// record yet: today an add-backend's new worker. Written before the first remote change and
/// kept until the inventory holds the result (or the change was undone and that was
/// checked), so a later command can adopt the worker or clean it up instead of losing it.
struct PendingOperation {
    QString operation = QStringLiteral("add-backend");
    QString site;
    QString host;    ///< the inventory host that runs the new worker
    QString address; ///< the backend address the balancer uses for it
    quint16 port = 0;
    qint64 pid = 0;          ///< the worker's pid once started; 0 before
    QString step;            ///< the last step begun: start, health, apply, save
    QDateTime started;       ///< UTC
    qint64 corralctlPid = 0; ///< the process that ran the operation
    QString command;         ///< what ran it, e.g. "corralctl add-backend shop"

    Backend backend() const { return Backend{address, port}; }
    /// "add-backend of 127.0.0.1:3004 on host web1 (worker pid 4711), started 2026-12-02
    /// 10:31:02 UTC by corralctl add-backend shop (pid 812), last step: health"
    QString describe() const;
};

/// One small JSON file per site, next to the inventory it belongs to
/// (INVENTORY_DIR/journal/SITE.json): present while an operation on that site is pending.
/// Written atomically (writeFileAtomically: complete on disk before it counts).
class OperationJournal {
public:
    explicit OperationJournal(QString path)
        : m_path(std::move(path)) {}

    /// The journal of `site` for the inventory at `inventoryPath`.
    static QString pathFor(const QString &inventoryPath, const QString &site);

    QString path() const { return m_path; }
    /// The pending operation, nullopt when there is none; an unreadable or malformed file is
    /// an error naming the file and the field (never silently ignored: it may hold a worker).
    Result<std::optional<PendingOperation>> pending() const;
    Result<void> record(const PendingOperation &operation) const;
    /// Removes the file (absent is fine); the error names it.
    Result<void> clear() const;

private:
    QString m_path;
};

} // namespace corral
