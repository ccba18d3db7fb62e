// corralctl logs and ps for production sites (workers on SSH hosts behind a balancer): the
// logs come from the hosts over SSH (core/upstreams/RemoteLogs), the ps rows from the
// workers' pid files there (core/upstreams/ProductionStatus); this file prints them.

#include "cli/ProductionLogs.h"

#include "model/FieldText.h"
#include "ssh/CredentialStore.h"
#include "ssh/SshSession.h"
#include "upstreams/RemoteLogs.h"

#include <QJsonDocument>
#include <QJsonObject>

#include <atomic>
#include <csignal>
#include <map>
#include <memory>

namespace corral::cli {

namespace {

std::atomic<bool> stopFollowing{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void requestStop(int) {
    stopFollowing.store(true);
}

/// SIGINT, SIGTERM and SIGHUP end a follow (through `stopFollowing`) while it is installed;
/// the previous handlers come back afterwards.
class StopSignals {
public:
    StopSignals() {
        stopFollowing.store(false);
        struct sigaction action = {};
        action.sa_handler = requestStop;
        sigemptyset(&action.sa_mask);
        for (std::size_t i = 0; i < std::size(m_signals); ++i)
            ::sigaction(m_signals[i], &action, &m_previous[i]);
    }
    ~StopSignals() {
        for (std::size_t i = 0; i < std::size(m_signals); ++i)
            ::sigaction(m_signals[i], &m_previous[i], nullptr);
    }
    StopSignals(const StopSignals &) = delete;
    StopSignals &operator=(const StopSignals &) = delete;

private:
    const int m_signals[3] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction m_previous[3] = {};
};

} // namespace

int productionLogs(Context &context, const Inventory &inventory, const Site &site,
                   const QString &worker, int lines, bool follow) {
    auto sources = RemoteLogs::sources(site, inventory.hosts(), worker, lines, follow);
    if (!sources) return context.error(QStringLiteral("logs: ") + sources.error());
    qsizetype width = 0;
    for (const RemoteLogSource &source : sources.value())
        width = std::max(width, source.name.size());
    const auto print = [&](const QString &source, const QByteArray &line) {
        const QString text = QString::fromUtf8(line);
        if (context.json)
            context.out << QJsonDocument(QJsonObject{{QStringLiteral("worker"), source},
                                                     {QStringLiteral("line"), text}})
                               .toJson(QJsonDocument::Compact)
                        << '\n';
        else
            context.out << source.rightJustified(width) << " | " << terminalLogLine(text) << '\n';
        context.out.flush();
    };

    // One session per host, opened as the other production commands do (keychain, prompt);
    // a host that could not be reached is not tried again for its other logs.
    std::map<QString, std::unique_ptr<SshSession>> sessions;
    std::map<QString, QString> unreachable;
    const auto sessionFor = [&](const QString &host) -> Result<SshSession *> {
        if (auto found = sessions.find(host); found != sessions.end()) return found->second.get();
        if (auto failed = unreachable.find(host); failed != unreachable.end())
            return fail(failed->second);
        auto opened = openHostSession(context, inventory, host, false);
        if (!opened) {
            unreachable.emplace(host, opened.error());
            return fail(opened.error());
        }
        return sessions.emplace(host, std::move(opened).value()).first->second.get();
    };

    int code = Success;
    QList<RemoteLogSource> readable;
    for (const RemoteLogSource &source : sources.value()) {
        // The other logs are still worth reading: say which one failed, go on.
        if (auto session = sessionFor(source.host); !session)
            code = context.error(QStringLiteral("logs: %1: %2").arg(source.name, session.error()));
        else
            readable.append(source);
    }
    if (follow) {
        if (readable.isEmpty()) return code;
        // tail -n N -F (or journalctl -n N -f) prints the last lines first, then follows.
        // Sessions are open (any prompt answered) before Ctrl-C means "stop following".
        StopSignals signals;
        auto followed = RemoteLogs::follow(readable, sessionFor, print, stopFollowing);
        if (!followed) return context.error(QStringLiteral("logs: ") + followed.error());
        return code;
    }
    for (const RemoteLogSource &source : readable) {
        auto shown = RemoteLogs::lastLines(*sessionFor(source.host).value(), source);
        if (!shown) {
            code = context.error(QStringLiteral("logs: %1: %2").arg(source.name, shown.error()));
            continue;
        }
        for (const QByteArray &line : shown.value())
            print(source.name, line);
    }
    return code;
}

QList<ProductionBackendStatus> productionStatus(const Inventory &inventory, const QString &only) {
    QList<Site> sites;
    for (const Site &site : inventory.sites())
        if (site.balancer && (only.isEmpty() || site.name == only)) sites.append(site);
    if (sites.isEmpty()) return {};
    CredentialStore store;
    // No prompt in ps: a password the keychain does not have (or an encrypted key) is the
    // host's error in its rows.
    const auto configFor = [&](const Host &host) {
        SshConfig config = SshConfig::fromHost(host);
        if (host.auth == Host::Auth::Password) {
            const CredentialStore::Reply reply =
                store.readNow(CredentialStore::passwordKey(host.name));
            if (reply.status == CredentialStore::Status::Ok) config.secret = reply.secret;
        }
        return config;
    };
    return productionBackendStatus(sites, inventory.hosts(), configFor, ProductionPsTimeoutMs);
}

} // namespace corral::cli
