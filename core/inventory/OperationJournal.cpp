#include "inventory/OperationJournal.h"

#include "model/Host.h"
#include "util/AtomicFile.h"
#include "util/JsonReader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>

#include <limits>

namespace corral {

namespace {

const QStringList knownSteps{QStringLiteral("start"), QStringLiteral("health"),
                             QStringLiteral("apply"), QStringLiteral("save")};

} // namespace

QString PendingOperation::describe() const {
    QString text = QStringLiteral("%1 of %2 on host %3").arg(operation, backend().key(), host);
    if (pid > 0) text += QStringLiteral(" (worker pid %1)").arg(pid);
    if (started.isValid())
        text += QStringLiteral(", started %1 UTC")
                    .arg(started.toUTC().toString(QStringLiteral("yyyy-MM-dd HH:mm:ss")));
    if (!command.isEmpty()) text += QStringLiteral(" by %1").arg(command);
    if (corralctlPid > 0) text += QStringLiteral(" (pid %1)").arg(corralctlPid);
    if (!step.isEmpty()) text += QStringLiteral(", last step: ") + step;
    return text;
}

QString OperationJournal::pathFor(const QString &inventoryPath, const QString &site) {
    return QFileInfo(inventoryPath)
        .absoluteDir()
        .filePath(QStringLiteral("journal/") + site + QStringLiteral(".json"));
}

Result<std::optional<PendingOperation>> OperationJournal::pending() const {
    QFile file(m_path);
    if (!file.exists()) return std::optional<PendingOperation>();
    if (!file.open(QIODevice::ReadOnly))
        return fail(QStringLiteral("%1: cannot read the operation journal: %2")
                        .arg(m_path, file.errorString()));
    const QByteArray text = file.readAll();
    if (file.error() != QFileDevice::NoError)
        return fail(QStringLiteral("%1: cannot read the operation journal: %2")
                        .arg(m_path, file.errorString()));
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(text, &parseError);
    if (parseError.error != QJsonParseError::NoError || !document.isObject())
        return fail(QStringLiteral("%1: not an operation journal (a JSON object): %2")
                        .arg(m_path, parseError.error != QJsonParseError::NoError
                                         ? parseError.errorString()
                                         : QStringLiteral("not an object")));
    JsonReader reader(document.object(), QString());
    PendingOperation operation;
    constexpr int intMax = std::numeric_limits<int>::max();
    operation.operation = reader.string(QStringLiteral("operation"), {}, true);
    operation.site = reader.string(QStringLiteral("site"), {}, true);
    operation.host = reader.string(QStringLiteral("host"), {}, true);
    operation.address = reader.string(QStringLiteral("address"), {}, true);
    operation.port = quint16(reader.integer(QStringLiteral("port"), 0, 1, 65535, true));
    operation.pid = reader.integer(QStringLiteral("pid"), 0, 0, intMax);
    operation.step = reader.string(QStringLiteral("step"));
    const QString started = reader.string(QStringLiteral("started"));
    operation.corralctlPid = reader.integer(QStringLiteral("corralctlPid"), 0, 0, intMax);
    operation.command = reader.string(QStringLiteral("command"));
    // The fields go into remote commands and messages: the same rules as the inventory's.
    if (!reader.failed() && operation.operation != QLatin1String("add-backend"))
        reader.fail(QStringLiteral("operation"),
                    QStringLiteral("\"%1\" is not an operation Corral journals (add-backend)")
                        .arg(operation.operation));
    if (!reader.failed() && !isValidName(operation.site))
        reader.fail(QStringLiteral("site"), QStringLiteral("not a valid site name"));
    if (!reader.failed() && !isValidName(operation.host))
        reader.fail(QStringLiteral("host"), QStringLiteral("not a valid host name"));
    if (!reader.failed() && !hostProblem(operation.address).isEmpty())
        reader.fail(QStringLiteral("address"), hostProblem(operation.address));
    if (!reader.failed() && !operation.step.isEmpty() && !knownSteps.contains(operation.step))
        reader.fail(
            QStringLiteral("step"),
            QStringLiteral("expected one of %1").arg(knownSteps.join(QStringLiteral(", "))));
    if (!started.isEmpty()) {
        operation.started = QDateTime::fromString(started, Qt::ISODate);
        if (!operation.started.isValid())
            reader.fail(QStringLiteral("started"), QStringLiteral("not an ISO 8601 time"));
    }
    if (auto problem = reader.finish()) return fail(QStringLiteral("%1: %2").arg(m_path, *problem));
    return std::optional<PendingOperation>(operation);
}

Result<void> OperationJournal::record(const PendingOperation &operation) const {
    if (!QDir().mkpath(QFileInfo(m_path).absolutePath()))
        return fail(QStringLiteral("%1: cannot create the journal directory")
                        .arg(QFileInfo(m_path).absolutePath()));
    QJsonObject object{{QStringLiteral("operation"), operation.operation},
                       {QStringLiteral("site"), operation.site},
                       {QStringLiteral("host"), operation.host},
                       {QStringLiteral("address"), operation.address},
                       {QStringLiteral("port"), int(operation.port)},
                       {QStringLiteral("pid"), operation.pid},
                       {QStringLiteral("step"), operation.step},
                       {QStringLiteral("started"), operation.started.toUTC().toString(Qt::ISODate)},
                       {QStringLiteral("corralctlPid"), operation.corralctlPid},
                       {QStringLiteral("command"), operation.command}};
    AtomicWriteOptions options;
    options.mode = 0600;
    return writeFileAtomically(m_path, QJsonDocument(object).toJson(QJsonDocument::Indented),
                               options);
}

Result<void> OperationJournal::clear() const {
    QFile file(m_path);
    if (!file.exists() || file.remove()) return {};
    return fail(QStringLiteral("%1: cannot remove the operation journal: %2")
                    .arg(m_path, file.errorString()));
}

} // namespace corral
