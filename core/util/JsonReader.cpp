#include "util/JsonReader.h"

#include <cmath>

namespace corral {

QString indexPath(const QString &parent, const QString &key, qsizetype index) {
    const QString field = parent.isEmpty() ? key : parent + QLatin1Char('.') + key;
    return field + QLatin1Char('[') + QString::number(index) + QLatin1Char(']');
}

JsonReader::JsonReader(const QJsonObject &object, QString path)
    : m_object(object)
    , m_path(std::move(path)) {}

QString JsonReader::fieldPath(const QString &key) const {
    return m_path.isEmpty() ? key : m_path + QLatin1Char('.') + key;
}

void JsonReader::fail(const QString &key, const QString &message) {
    if (!m_error) m_error = fieldPath(key) + QStringLiteral(": ") + message;
}

QString JsonReader::typeName(const QJsonValue &value) {
    switch (value.type()) {
    case QJsonValue::Null:
        return QStringLiteral("null");
    case QJsonValue::Bool:
        return QStringLiteral("a boolean");
    case QJsonValue::Double:
        return QStringLiteral("a number");
    case QJsonValue::String:
        return QStringLiteral("a string");
    case QJsonValue::Array:
        return QStringLiteral("an array");
    case QJsonValue::Object:
        return QStringLiteral("an object");
    case QJsonValue::Undefined:
        break;
    }
    return QStringLiteral("nothing");
}

const QJsonValue *JsonReader::lookup(const QString &key, bool required) {
    m_known.append(key);
    const auto it = m_object.constFind(key);
    if (it == m_object.constEnd()) {
        if (required) fail(key, QStringLiteral("is required"));
        return nullptr;
    }
    m_current = it.value();
    return &m_current;
}

QString JsonReader::string(const QString &key, const QString &fallback, bool required) {
    const QJsonValue *value = lookup(key, required);
    if (!value) return fallback;
    if (!value->isString()) {
        fail(key, QStringLiteral("expected a string, got ") + typeName(*value));
        return fallback;
    }
    return value->toString();
}

int JsonReader::integer(const QString &key, int fallback, int min, int max, bool required) {
    const QJsonValue *value = lookup(key, required);
    if (!value) return fallback;
    const double number = value->toDouble(std::nan(""));
    if (!value->isDouble() || std::floor(number) != number) {
        fail(key, QStringLiteral("expected an integer, got ") + typeName(*value));
        return fallback;
    }
    if (number < min || number > max) {
        fail(key, QStringLiteral("%1 is out of range (%2..%3)")
                      .arg(QString::number(number, 'g', 17))
                      .arg(min)
                      .arg(max));
        return fallback;
    }
    return int(number);
}

bool JsonReader::boolean(const QString &key, bool fallback) {
    const QJsonValue *value = lookup(key, false);
    if (!value) return fallback;
    if (!value->isBool()) {
        fail(key, QStringLiteral("expected true or false, got ") + typeName(*value));
        return fallback;
    }
    return value->toBool();
}

QStringList JsonReader::stringList(const QString &key) {
    const QJsonValue *value = lookup(key, false);
    if (!value) return {};
    if (!value->isArray()) {
        fail(key, QStringLiteral("expected an array of strings, got ") + typeName(*value));
        return {};
    }
    QStringList result;
    const QJsonArray array = value->toArray();
    for (qsizetype i = 0; i < array.size(); ++i) {
        if (!array.at(i).isString()) {
            if (!m_error)
                m_error = indexPath(m_path, key, i) + QStringLiteral(": expected a string, got ") +
                          typeName(array.at(i));
            return {};
        }
        result.append(array.at(i).toString());
    }
    return result;
}

QJsonObject JsonReader::object(const QString &key) {
    const QJsonValue *value = lookup(key, false);
    if (!value) return {};
    if (!value->isObject()) {
        fail(key, QStringLiteral("expected an object, got ") + typeName(*value));
        return {};
    }
    return value->toObject();
}

QJsonArray JsonReader::array(const QString &key) {
    const QJsonValue *value = lookup(key, false);
    if (!value) return {};
    if (!value->isArray()) {
        fail(key, QStringLiteral("expected an array, got ") + typeName(*value));
        return {};
    }
    return value->toArray();
}

std::optional<QString> JsonReader::finish() {
    if (!m_error) {
        for (auto it = m_object.constBegin(); it != m_object.constEnd(); ++it) {
            if (!m_known.contains(it.key())) {
                m_error = fieldPath(it.key()) + QStringLiteral(": unknown field");
                break;
            }
        }
    }
    return m_error;
}

} // namespace corral
