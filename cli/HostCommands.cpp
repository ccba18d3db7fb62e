#include "cli/Context.h"
#include "model/FieldText.h"
#include "remote/HostDiscovery.h"
#include "ssh/CredentialStore.h"
#include "ssh/SshSession.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QUrl>

#include <iostream>
#include <string>

#include <termios.h>
#include <unistd.h>

namespace corral::cli {

static const char hostUsage[] =
    "Usage:\n"
    "  corralctl host add NAME ssh://USER@ADDRESS[:PORT] [--key PATH] [--password]\n"
    "                          [--accept-new] [--no-connect]\n"
    "  corralctl host test NAME [--accept-new] [--json]\n"
    "  corralctl host list [--json]\n"
    "  corralctl host remove NAME\n"
    "\n"
    "add connects once (unless --no-connect) to record the host key and check the login,\n"
    "then stores the host in the inventory. No secret is ever stored there.\n"
    "\n"
    "Options:\n"
    "  --key PATH      log in with this private key (its passphrase, if any, is asked for\n"
    "                  once and kept in the OS keychain)\n"
    "  --password      log in with a password, asked for once and kept in the OS keychain;\n"
    "                  read from standard input when it is not a terminal\n"
    "  --accept-new    trust the host key of a host never seen before without asking\n"
    "                  (for scripts; a CHANGED key is always refused)\n"
    "  --no-connect    add without connecting (the key is checked on first use)\n"
    "\n"
    "Without --key or --password, ssh-agent and the default keys in ~/.ssh are used.\n"
    "Host keys: ~/.ssh/known_hosts is read; accepted keys go to\n"
    "$XDG_CONFIG_HOME/corral/known_hosts. On an unknown key, a terminal is asked to confirm\n"
    "the SHA256 fingerprint; without a terminal the command fails unless --accept-new.\n";

static QString usage() {
    return QString::fromLatin1(hostUsage);
}

bool interactive() {
    return ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO);
}

/// Reads one line: from a terminal without echo, else from standard input (scripts pipe
/// secrets in; they never appear on a command line).
static QString readSecret(Context &context, const QString &prompt) {
    std::string line;
    if (interactive()) {
        context.err << prompt << Qt::flush;
        termios saved{};
        const bool haveTerm = ::tcgetattr(STDIN_FILENO, &saved) == 0;
        if (haveTerm) {
            termios quiet = saved;
            quiet.c_lflag &= ~tcflag_t(ECHO);
            ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        std::getline(std::cin, line);
        if (haveTerm) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        context.err << Qt::endl;
    } else {
        std::getline(std::cin, line);
    }
    return QString::fromStdString(line);
}

bool confirm(Context &context, const QString &question) {
    context.err << question << " [y/N] " << Qt::flush;
    std::string line;
    std::getline(std::cin, line);
    const QString answer = QString::fromStdString(line).trimmed().toLower();
    return answer == QLatin1String("y") || answer == QLatin1String("yes");
}

/// Parses ssh://USER@ADDRESS[:PORT] into `host`.
static Result<void> parseTarget(const QString &text, Host &host) {
    const QUrl url(text, QUrl::StrictMode);
    if (!url.isValid() || url.scheme() != QLatin1String("ssh") || url.host().isEmpty() ||
        (!url.path().isEmpty() && url.path() != QLatin1String("/")) || url.hasQuery() ||
        url.hasFragment() || !url.password().isEmpty())
        return fail(QStringLiteral("%1 is not of the form ssh://USER@ADDRESS[:PORT] (and a "
                                   "password never goes in it: use --password)")
                        .arg(shown(text)));
    host.address = url.host();
    host.user = url.userName();
    host.port = quint16(url.port(Host::DefaultSshPort));
    if (url.port() == 0) return fail(QStringLiteral("%1: port 0 is out of range").arg(shown(text)));
    return {};
}

/// Fetches the secret the host's auth method needs: from the keychain, else by asking.
static void loadSecret(Context &context, CredentialStore &store, const Host &host,
                       SshSession &session, bool forKeyPassphrase) {
    const QString key = forKeyPassphrase ? CredentialStore::passphraseKey(host.name)
                                         : CredentialStore::passwordKey(host.name);
    const CredentialStore::Reply reply = store.readNow(key);
    if (reply.status == CredentialStore::Status::Ok) {
        session.setSecret(reply.secret);
        return;
    }
    if (reply.status == CredentialStore::Status::Unavailable)
        context.err << "corralctl: note: " << reply.error << Qt::endl;
    session.setSecret(readSecret(
        context,
        forKeyPassphrase
            ? QStringLiteral("Passphrase for %1: ").arg(host.keyPath)
            : QStringLiteral("Password for %1: ").arg(SshConfig::fromHost(host).displayName())));
}

/// Connects; on an unknown host key asks on a terminal (or relies on --accept-new); on an
/// unreadable encrypted key asks for the passphrase. Returns the connect result.
static Result<void> connectInteractively(Context &context, SshSession &session, bool acceptNew,
                                         const std::function<void()> &onKeyLocked = {}) {
    session.setAcceptNew(acceptNew);
    auto connected = session.connect();
    if (!connected && session.lastFailure() == SshFailure::KeyUnreadable && onKeyLocked) {
        onKeyLocked();
        connected = session.connect();
    }
    if (!connected && session.lastFailure() == SshFailure::HostKeyUnknown) {
        if (!interactive())
            return fail(connected.error() +
                        QStringLiteral(" (not a terminal, so not asking: rerun with --accept-new "
                                       "if %1 is the right key)")
                            .arg(session.serverFingerprint()));
        context.err << "The authenticity of " << session.config().displayName()
                    << " can't be established.\nIts host key fingerprint is "
                    << session.serverFingerprint() << "." << Qt::endl;
        if (!confirm(context, QStringLiteral("Trust this key and continue connecting?")))
            return fail(QStringLiteral("host key not accepted"));
        // Trust exactly the key the user saw, not whatever the reconnect presents.
        session.setAcceptFingerprint(session.serverFingerprint());
        connected = session.connect();
    }
    return connected;
}

static int saveOrFail(const Context &context, const Inventory &inventory) {
    if (auto saved = inventory.save(context.inventoryPath); !saved)
        return context.error(saved.error());
    return Success;
}

static const OptionSpec addSpec{
    {QStringLiteral("password"), QStringLiteral("accept-new"), QStringLiteral("no-connect")},
    {QStringLiteral("key")}};
static const OptionSpec testSpec{{QStringLiteral("accept-new")}, {}};

static int addHost(Context &context, const ParsedOptions &options) {
    if (options.positional.size() != 2)
        return context.usageError(
            QStringLiteral("host add: expected NAME and ssh://USER@ADDRESS[:PORT]"), usage());
    const bool password = options.has(QStringLiteral("password"));
    if (password && options.has(QStringLiteral("key")))
        return context.usageError(
            QStringLiteral("host add: --key and --password exclude each other"), usage());
    // Every bad value at once: the target, the key file, then the host's own checks.
    QStringList problems;
    Host host;
    host.kind = Host::Kind::Ssh;
    host.name = options.positional.at(0);
    if (auto parsed = parseTarget(options.positional.at(1), host); !parsed)
        problems.append(parsed.error());
    if (options.has(QStringLiteral("key"))) {
        host.auth = Host::Auth::KeyFile;
        host.keyPath = QFileInfo(options.value(QStringLiteral("key"))).absoluteFilePath();
        if (!QFileInfo::exists(host.keyPath))
            problems.append(
                QStringLiteral("--key: key file %1 does not exist").arg(shown(host.keyPath)));
    } else if (password) {
        host.auth = Host::Auth::Password;
    }
    for (const QString &problem : host.problems())
        // A target that did not parse left address and user empty: reported once, above.
        if (problems.isEmpty() || !problem.startsWith(QLatin1String("address:")))
            problems.append(problem);
    if (!problems.isEmpty()) return context.errors(problems, QStringLiteral("host add: "));
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    if (inventory->host(host.name) || host.name == Host::LocalName)
        return context.error(QStringLiteral("host add: a host named \"%1\" already exists in %2")
                                 .arg(host.name, context.inventoryPath));

    CredentialStore store;
    SshSession session(SshConfig::fromHost(host));
    QString secretKey; // keychain entry to write once the secret proved right
    if (password) {
        session.setSecret(readSecret(
            context, QStringLiteral("Password for %1: ").arg(session.config().displayName())));
        secretKey = CredentialStore::passwordKey(host.name);
    }
    if (!options.has(QStringLiteral("no-connect"))) {
        auto connected =
            connectInteractively(context, session, options.has(QStringLiteral("accept-new")), [&] {
                session.setSecret(
                    readSecret(context, QStringLiteral("Passphrase for %1: ").arg(host.keyPath)));
                secretKey = CredentialStore::passphraseKey(host.name);
            });
        if (!connected)
            return context.error(
                QStringLiteral("host add %1: %2 (not added)").arg(host.name, connected.error()));
    }
    if (!secretKey.isEmpty()) {
        const auto stored = store.writeNow(secretKey, session.config().secret);
        if (stored.status != CredentialStore::Status::Ok)
            context.err << "corralctl: note: " << stored.error << Qt::endl;
    }
    if (auto added = inventory->addHost(host); !added)
        return context.error(QStringLiteral("host add: ") + added.error());
    if (int code = saveOrFail(context, inventory.value()); code != Success) return code;
    if (context.json) {
        context.out << QJsonDocument(host.toJson()).toJson(QJsonDocument::Indented) << Qt::flush;
    } else {
        context.out << "added host " << host.name << " (" << session.config().displayName()
                    << ", auth " << Host::authName(host.auth) << ")";
        if (!session.serverFingerprint().isEmpty())
            context.out << ", host key " << session.serverFingerprint();
        context.out << Qt::endl;
    }
    return Success;
}

static int testHost(Context &context, const ParsedOptions &options) {
    if (options.positional.size() != 1)
        return context.usageError(QStringLiteral("host test: expected exactly one host NAME"),
                                  usage());
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const QString name = options.positional.first();
    const Host *found = inventory->host(name);
    if (!found)
        return context.error(
            QStringLiteral("no host named %1 in %2").arg(shown(name), context.inventoryPath));
    const Host host = *found;
    if (host.kind != Host::Kind::Ssh)
        return context.error(
            QStringLiteral("host \"%1\" is the local machine; nothing to test").arg(name));

    CredentialStore store;
    SshSession session(SshConfig::fromHost(host));
    if (host.auth == Host::Auth::Password) loadSecret(context, store, host, session, false);
    QElapsedTimer clock;
    clock.start();
    auto connected =
        connectInteractively(context, session, options.has(QStringLiteral("accept-new")),
                             [&] { loadSecret(context, store, host, session, true); });
    if (!connected)
        return context.error(QStringLiteral("host test %1: %2").arg(name, connected.error()));
    const qint64 connectMs = clock.elapsed();
    auto discovered = session.exec(HostDiscovery::command(), 30000);
    if (!discovered)
        return context.error(QStringLiteral("host test %1: %2").arg(name, discovered.error()));
    if (discovered->exitStatus != 0)
        return context.error(QStringLiteral("host test %1: discovery failed (exit status %2): %3")
                                 .arg(name)
                                 .arg(discovered->exitStatus)
                                 .arg(QString::fromUtf8(discovered->stdErr).trimmed()));
    auto facts = HostDiscovery::parse(discovered->stdOut);
    if (!facts) return context.error(QStringLiteral("host test %1: %2").arg(name, facts.error()));

    if (context.json) {
        QJsonArray listening;
        for (const ListeningPort &port : facts->listening)
            listening.append(QJsonObject{{QStringLiteral("address"), port.address},
                                         {QStringLiteral("port"), port.port},
                                         {QStringLiteral("process"), port.process},
                                         {QStringLiteral("pid"), port.pid}});
        const QJsonObject object{
            {QStringLiteral("name"), name},
            {QStringLiteral("target"), session.config().displayName()},
            {QStringLiteral("hostKey"), session.serverFingerprint()},
            {QStringLiteral("connectMs"), connectMs},
            {QStringLiteral("os"), facts->os},
            {QStringLiteral("kernel"), facts->kernel},
            {QStringLiteral("cores"), facts->cores},
            {QStringLiteral("memoryTotalBytes"), facts->memoryTotalBytes},
            {QStringLiteral("memoryAvailableBytes"), facts->memoryAvailableBytes},
            {QStringLiteral("load"), QJsonArray{facts->load1, facts->load5, facts->load15}},
            {QStringLiteral("systemdRunning"), facts->systemdRunning},
            {QStringLiteral("software"),
             QJsonObject{{QStringLiteral("systemctl"), facts->systemctl},
                         {QStringLiteral("nginx"), facts->nginx},
                         {QStringLiteral("haproxy"), facts->haproxy},
                         {QStringLiteral("apache2"), facts->apache2},
                         {QStringLiteral("node"), facts->node}}},
            {QStringLiteral("listening"), listening}};
        context.out << QJsonDocument(object).toJson(QJsonDocument::Indented) << Qt::flush;
        return Success;
    }
    context.out << "host " << name << ": connected to " << session.config().displayName() << " in "
                << connectMs << " ms, host key " << session.serverFingerprint() << '\n'
                << facts->summary() << Qt::flush;
    return Success;
}

static int listHosts(Context &context, const ParsedOptions &options) {
    if (!options.positional.isEmpty())
        return context.usageError(QStringLiteral("host list takes no arguments"), usage());
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    if (context.json) {
        QJsonArray hosts;
        for (const Host &host : inventory->hosts())
            hosts.append(host.toJson());
        context.out << QJsonDocument(QJsonObject{{QStringLiteral("hosts"), hosts}})
                           .toJson(QJsonDocument::Indented)
                    << Qt::flush;
        return Success;
    }
    context.out << QStringLiteral("%1 %2 %3 %4\n")
                       .arg(QStringLiteral("NAME"), -20)
                       .arg(QStringLiteral("KIND"), -6)
                       .arg(QStringLiteral("AUTH"), -9)
                       .arg(QStringLiteral("TARGET"));
    for (const Host &host : inventory->hostsWithLocal())
        context.out << QStringLiteral("%1 %2 %3 %4\n")
                           .arg(host.name, -20)
                           .arg(Host::kindName(host.kind), -6)
                           .arg(host.kind == Host::Kind::Ssh ? Host::authName(host.auth)
                                                             : QStringLiteral("-"),
                                -9)
                           .arg(host.kind == Host::Kind::Ssh
                                    ? SshConfig::fromHost(host).displayName() +
                                          (host.keyPath.isEmpty()
                                               ? QString()
                                               : QStringLiteral(" (key ") + host.keyPath +
                                                     QLatin1Char(')'))
                                    : QStringLiteral("this machine"));
    context.out << Qt::flush;
    return Success;
}

static int removeHost(Context &context, const ParsedOptions &options) {
    if (options.positional.size() != 1)
        return context.usageError(QStringLiteral("host remove: expected exactly one host NAME"),
                                  usage());
    const QString name = options.positional.first();
    auto inventory = context.loadInventory();
    if (!inventory) return context.error(inventory.error());
    const Host *host = inventory->host(name);
    const bool hadSecret = host && host->auth != Host::Auth::Agent;
    if (auto removed = inventory->removeHost(name); !removed)
        return context.error(removed.error() + QStringLiteral(" in ") + context.inventoryPath);
    if (int code = saveOrFail(context, inventory.value()); code != Success) return code;
    if (hadSecret) {
        // Leave no orphaned secrets behind.
        CredentialStore store;
        for (const QString &key :
             {CredentialStore::passwordKey(name), CredentialStore::passphraseKey(name)}) {
            const auto removed = store.removeNow(key);
            if (removed.status == CredentialStore::Status::Unavailable) {
                context.err << "corralctl: note: " << removed.error << Qt::endl;
                break;
            }
        }
    }
    if (!context.json) context.out << "removed host " << name << Qt::endl;
    return Success;
}

static int hostCommand(Context &context, const QStringList &args) {
    if (args.isEmpty())
        return context.usageError(QStringLiteral("host: missing subcommand"), usage());
    const QString sub = args.first();
    const OptionSpec spec = sub == QLatin1String("add")    ? addSpec
                            : sub == QLatin1String("test") ? testSpec
                                                           : OptionSpec{};
    auto options = parseOptions(args.mid(1), spec);
    if (!options)
        return context.usageError(QStringLiteral("host %1: ").arg(sub) + options.error(), usage());
    if (sub == QLatin1String("add")) return addHost(context, options.value());
    if (sub == QLatin1String("test")) return testHost(context, options.value());
    if (sub == QLatin1String("list")) return listHosts(context, options.value());
    if (sub == QLatin1String("remove")) return removeHost(context, options.value());
    return context.usageError(QStringLiteral("host: unknown subcommand %1").arg(shown(sub)));
}

Result<std::unique_ptr<SshSession>> openHostSession(Context &context, const Inventory &inventory,
                                                    const QString &hostName, bool acceptNew) {
    const Host *found = inventory.host(hostName);
    if (!found)
        return fail(
            QStringLiteral("no host named %1 in %2").arg(shown(hostName), context.inventoryPath));
    const Host host = *found;
    if (host.kind != Host::Kind::Ssh)
        return fail(QStringLiteral("host \"%1\" is not an SSH host").arg(hostName));
    CredentialStore store;
    auto session = std::make_unique<SshSession>(SshConfig::fromHost(host));
    if (host.auth == Host::Auth::Password) loadSecret(context, store, host, *session, false);
    auto connected = connectInteractively(
        context, *session, acceptNew, [&] { loadSecret(context, store, host, *session, true); });
    if (!connected) return fail(QStringLiteral("host %1: %2").arg(hostName, connected.error()));
    return session;
}

QList<Command> hostCommands() {
    return {Command{QStringLiteral("host"), QStringLiteral("Add, test, list and remove SSH hosts"),
                    usage(), hostCommand}};
}

} // namespace corral::cli
