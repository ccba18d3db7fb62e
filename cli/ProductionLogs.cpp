// corralctl logs and ps for production sites (workers on SSH hosts behind a balancer): the
// logs come from the hosts over SSH (core/upstreams/RemoteLogs), the ps rows from the
// workers' pid files there (core/upstreams/ProductionStatus); this file prints them.

#include "cli/ProductionLogs.h"

#include "cluster/RemoteSite.h"
#include "model/FieldText.h"
#include "ssh/CredentialStore.h"
#include "ssh/HostSessions.h"
#include "ssh/SshSession.h"
#include "upstreams/RemoteLogs.h"

#include <QJsonDocument>
#include <QJsonObject>

#include <atomic>
#include <csignal>
#include <map>
#include <memory>
#include <optional>

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
    qsizetype width = 0;
    int code = Success;
    std::optional<StopSignals> signals;
    LogRequest request;
    request.only = worker;
    request.lines = lines;
    request.follow = follow;
    request.cancel = &stopFollowing;
    request.onSources = [&width](const QStringList &names) {
        for (const QString &name : names)
            width = std::max(width, name.size());
    };
    // The other logs are still worth reading: say which one failed, go on.
    request.onUnreadable = [&](const QString &name, const QString &error) {
        code = context.error(QStringLiteral("logs: %1: %2").arg(name, error));
    };
    // tail -n N -F (or journalctl -n N -f) prints the last lines first, then follows. Every
    // session is open (any prompt answered) before Ctrl-C means "stop following".
    request.onFollowing = [&signals] { signals.emplace(); };
    request.onLine = [&](const QString &source, const QByteArray &line) {
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
    // One session per host, opened as the other production commands do (keychain, prompt).
    HostSessions sessions(inventory.hosts(), sessionOpener(context, inventory, false));
    RemoteSite remote(site.name, sessions,
                      remoteSiteOptions(context, QStringLiteral("logs"), site.name, true));
    if (auto read = remote.logs(request); !read)
        return context.error(QStringLiteral("logs: ") + read.error());
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
