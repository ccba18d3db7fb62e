#pragma once

#include <QJsonArray>
#include <QJsonObject>
#include <QStringList>

#include <optional>

namespace corral {

/// Reads one JSON object field by field, checking types and ranges, and remembers the first
/// problem as a message that names the JSON path ("sites[2].basePort: ..."). Fields the caller
/// never asked for are reported by finish(), so typos in hand-edited files do not pass silently.
class JsonReader {
public:
    JsonReader(const QJsonObject &object, QString path);

    QString string(const QString &key, const QString &fallback = {}, bool required = false);
    int integer(const QString &key, int fallback, int min, int max, bool required = false);
    bool boolean(const QString &key, bool fallback);
    QStringList stringList(const QString &key);
    QJsonObject object(const QString &key);
    QJsonArray array(const QString &key);
    /// Marks a key as known without reading it (read elsewhere).
    void accept(const QString &key) { m_known.append(key); }

    QString fieldPath(const QString &key) const;
    /// Records a validation error for a field unless one is already recorded.
    void fail(const QString &key, const QString &message);
    /// Reports unknown fields; returns the first error seen, if any.
    std::optional<QString> finish();
    bool failed() const { return m_error.has_value(); }

private:
    const QJsonValue *lookup(const QString &key, bool required);
    static QString typeName(const QJsonValue &value);

    QJsonObject m_object;
    QString m_path;
    QStringList m_known;
    std::optional<QString> m_error;
    QJsonValue m_current;
};

QString indexPath(const QString &parent, const QString &key, qsizetype index);

} // namespace corral
