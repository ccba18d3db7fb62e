#pragma once

#include "util/Result.h"

#include <QHash>
#include <QStringList>

namespace corral::cli {

/// The options a command accepts: names without dashes; `valued` ones take an argument,
/// written "--name=value" or "--name value". Repeated valued options accumulate.
struct OptionSpec {
    QStringList flags;
    QStringList valued;
};

struct ParsedOptions {
    QHash<QString, QStringList> values;
    QStringList flags;
    QStringList positional;
    /// Everything after a literal "--", untouched.
    QStringList rest;

    bool has(const QString &name) const { return flags.contains(name) || values.contains(name); }
    QString value(const QString &name) const { return values.value(name).value(0); }
    /// All values of a repeatable option, comma-separated ones split.
    QStringList list(const QString &name) const;
};

Result<ParsedOptions> parseOptions(const QStringList &args, const OptionSpec &spec);

} // namespace corral::cli
