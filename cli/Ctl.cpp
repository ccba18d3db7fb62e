#include "cli/Ctl.h"

#include "cli/Context.h"
#include "model/FieldText.h"

namespace corral::cli {

int Context::error(const QString &message, int code) const {
    err << "corralctl: " << message << Qt::endl;
    return code;
}

int Context::errors(const QStringList &problems, const QString &prefix) const {
    for (const QString &problem : problems)
        err << "corralctl: " << prefix << problem << '\n';
    err.flush();
    return Failure;
}

int Context::usageError(const QString &message, const QString &usage) const {
    Q_UNUSED(usage); // one line and a pointer to the help, not the whole usage text
    QString line = message;
    if (!command.isEmpty() && !message.startsWith(command + QLatin1Char(':')) &&
        !message.startsWith(command + QLatin1Char(' ')))
        line = command + QStringLiteral(": ") + message;
    err << "corralctl: " << line << " (see 'corralctl help"
        << (command.isEmpty() ? QString() : QLatin1Char(' ') + command) << "')" << Qt::endl;
    return UsageError;
}

static const char globalUsage[] =
    "Usage: corralctl [--inventory PATH] [--json] COMMAND [ARGS]\n"
    "\n"
    "Global options (accepted before or after the command):\n"
    "  --inventory PATH   inventory file (default: $CORRAL_INVENTORY, else\n"
    "                     $XDG_CONFIG_HOME/corral/inventory.json)\n"
    "  --json             machine-readable output\n"
    "  --version          print the version and exit\n"
    "  -h, --help         show help\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  a value is invalid or the operation failed: every invalid value is reported,\n"
    "     one line each, naming its option or inventory field\n"
    "  2  the command line is malformed (unknown command or option, missing argument or\n"
    "     option value, options that exclude each other): one line and a pointer to\n"
    "     'corralctl help COMMAND'\n";

static QList<Command> allCommands() {
    QList<Command> commands;
    commands.append(Command{QStringLiteral("help"),
                            QStringLiteral("Show help for a command"),
                            QStringLiteral("Usage: corralctl help [COMMAND]\n"),
                            {}});
    commands.append(siteCommands());
    commands.append(proxyCommands());
    commands.append(agentCommands());
    commands.append(upCommands());
    commands.append(hostCommands());
    commands.append(renderCommands());
    commands.append(applyCommands());
    commands.append(backendCommands());
    commands.append(productionCommands());
    commands.append(checkCommands());
    return commands;
}

static QString fullUsage(const QList<Command> &commands) {
    QString text = QString::fromLatin1(globalUsage) + QStringLiteral("\nCommands:\n");
    for (const Command &command : commands)
        text += QStringLiteral("  %1 %2\n").arg(command.name, -15).arg(command.summary);
    text += QStringLiteral("\nRun 'corralctl help COMMAND' for a command's options.\n");
    return text;
}

int run(const QStringList &arguments, QTextStream &out, QTextStream &err) {
    // Global options may appear anywhere before a literal "--".
    QString inventoryOverride;
    bool json = false;
    bool wantVersion = false;
    bool wantHelp = false;
    QStringList rest;
    const QList<Command> commands = allCommands();
    for (qsizetype i = 0; i < arguments.size(); ++i) {
        const QString &arg = arguments.at(i);
        if (arg == QLatin1String("--")) {
            rest += arguments.mid(i);
            break;
        }
        if (arg == QLatin1String("--json")) {
            json = true;
        } else if (arg == QLatin1String("--version")) {
            wantVersion = true;
        } else if (arg == QLatin1String("--help") || arg == QLatin1String("-h")) {
            wantHelp = true;
        } else if (arg == QLatin1String("--inventory")) {
            if (i + 1 >= arguments.size()) {
                err << "corralctl: option --inventory needs a value (see 'corralctl help')"
                    << Qt::endl;
                return UsageError;
            }
            inventoryOverride = arguments.at(++i);
        } else if (arg.startsWith(QLatin1String("--inventory="))) {
            inventoryOverride = arg.mid(12);
        } else {
            rest.append(arg);
        }
    }
    Context context{Inventory::resolvePath(inventoryOverride), json, out, err, QString()};

    if (wantVersion) {
        if (json)
            out << "{\"version\":\"" << CORRAL_VERSION << "\"}" << Qt::endl;
        else
            out << "corralctl " << CORRAL_VERSION << Qt::endl;
        return Success;
    }
    const auto find = [&](const QString &name) -> const Command * {
        for (const Command &command : commands)
            if (command.name == name) return &command;
        return nullptr;
    };
    if (rest.isEmpty() || rest.first() == QLatin1String("--")) {
        if (wantHelp) {
            out << fullUsage(commands) << Qt::flush;
            return Success;
        }
        return context.usageError(QStringLiteral("no command given"));
    }
    const QString name = rest.takeFirst();
    if (name == QLatin1String("help") || wantHelp) {
        const QString topic = name == QLatin1String("help") ? rest.value(0) : name;
        if (topic.isEmpty()) {
            out << fullUsage(commands) << Qt::flush;
            return Success;
        }
        const Command *command = find(topic);
        if (!command)
            return context.usageError(QStringLiteral("unknown command %1").arg(shown(topic)));
        out << command->usage << Qt::flush;
        return Success;
    }
    const Command *command = find(name);
    if (!command) return context.usageError(QStringLiteral("unknown command %1").arg(shown(name)));
    context.command = name;
    return command->run(context, rest);
}

} // namespace corral::cli
