#include "cli/Options.h"

#include "model/FieldText.h"

namespace corral::cli {

QStringList ParsedOptions::list(const QString &name) const {
    QStringList result;
    for (const QString &value : values.value(name))
        for (const QString &part : value.split(QLatin1Char(','), Qt::SkipEmptyParts))
            result.append(part.trimmed());
    return result;
}

Result<ParsedOptions> parseOptions(const QStringList &args, const OptionSpec &spec) {
    ParsedOptions parsed;
    for (qsizetype i = 0; i < args.size(); ++i) {
        const QString &arg = args.at(i);
        if (arg == QLatin1String("--")) {
            parsed.rest = args.mid(i + 1);
            break;
        }
        if (!arg.startsWith(QLatin1String("--")) || arg.size() == 2) {
            if (arg.startsWith(QLatin1Char('-')) && arg.size() > 1)
                return fail(QStringLiteral("unknown option %1").arg(escapeControls(arg)));
            parsed.positional.append(arg);
            continue;
        }
        const qsizetype equals = arg.indexOf(QLatin1Char('='));
        const QString name = arg.mid(2, equals < 0 ? -1 : equals - 2);
        if (spec.flags.contains(name)) {
            if (equals >= 0) return fail(QStringLiteral("option --%1 takes no value").arg(name));
            parsed.flags.append(name);
        } else if (spec.valued.contains(name)) {
            QString value;
            if (equals >= 0) {
                value = arg.mid(equals + 1);
            } else if (i + 1 < args.size()) {
                value = args.at(++i);
            } else {
                return fail(QStringLiteral("option --%1 needs a value").arg(name));
            }
            parsed.values[name].append(value);
        } else {
            return fail(QStringLiteral("unknown option --%1").arg(escapeControls(name)));
        }
    }
    return parsed;
}

} // namespace corral::cli
