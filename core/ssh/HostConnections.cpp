#include "ssh/HostConnections.h"

#include "ssh/CredentialStore.h"
#include "ssh/SshSession.h"

namespace corral {

HostConnections::HostConnections(QObject *parent)
    : QObject(parent)
    , m_pool(new SshPool(this))
    , m_credentials(new CredentialStore(this)) {
    connect(m_pool, &SshPool::hostStateChanged, this, &HostConnections::hostStateChanged);
}

HostConnections::~HostConnections() = default;

SshConfig HostConnections::configFor(const Host &host) const {
    SshConfig config = SshConfig::fromHost(host);
    if (host.auth != Host::Auth::Agent) config.secret = m_secrets.value(host.name);
    return config;
}

void HostConnections::setHosts(const QList<Host> &hosts) {
    QList<Host> ssh;
    for (const Host &host : hosts)
        if (host.kind == Host::Kind::Ssh) ssh.append(host);
    if (ssh == m_hosts) return;
    // Only hosts that are gone or whose settings changed get a new session; the others keep
    // theirs, and with it the site on view and any operation running on them.
    for (const Host &host : std::as_const(m_hosts))
        if (!ssh.contains(host)) m_pool->remove(host.name);
    m_hosts = ssh;
    for (const Host &host : std::as_const(m_hosts))
        keepConnected(host);
}

SshHost *HostConnections::host(const QString &name) {
    for (const Host &host : std::as_const(m_hosts))
        if (host.name == name) return m_pool->host(host.name, configFor(host));
    return nullptr;
}

void HostConnections::keepConnected(const Host &host) {
    SshHost *ssh = m_pool->host(host.name, configFor(host));
    if (ssh->isKeptConnected()) return; // one session, kept since: nothing to redo
    const QPointer<SshHost> guard(ssh);
    const auto connectNow = [guard] {
        if (guard) guard->keepConnected();
    };
    const QString key = CredentialStore::keyFor(host);
    if (key.isEmpty()) return connectNow();
    if (m_secrets.contains(host.name)) {
        ssh->setSecret(m_secrets.value(host.name));
        return connectNow();
    }
    const QString name = host.name;
    m_credentials->read(key, this, [this, name, guard, connectNow](CredentialStore::Reply reply) {
        if (reply.status == CredentialStore::Status::Ok) {
            m_secrets.insert(name, reply.secret);
            if (guard) guard->setSecret(reply.secret);
        }
        connectNow();
    });
}

void HostConnections::reconnect(const QString &name) {
    // A new SshHost: its session is a new login; holders of the old one look it up again.
    m_pool->remove(name);
    for (const Host &host : std::as_const(m_hosts))
        if (host.name == name) keepConnected(host);
}

void HostConnections::rememberSecret(const Host &host, const QString &secret, QObject *context,
                                     std::function<void(const QString &)> onKeychainError) {
    const QString key = CredentialStore::keyFor(host);
    if (secret.isEmpty() || key.isEmpty()) return;
    m_secrets.insert(host.name, secret);
    if (SshHost *ssh = m_pool->find(host.name)) ssh->setSecret(secret);
    m_credentials->write(
        key, secret, context,
        [onKeychainError = std::move(onKeychainError)](CredentialStore::Reply reply) {
            if (reply.status != CredentialStore::Status::Ok && onKeychainError)
                onKeychainError(reply.error);
        });
}

void HostConnections::forgetSecrets(const QString &name) {
    m_secrets.remove(name);
    for (const QString &key : CredentialStore::keysOf(name))
        m_credentials->remove(key, this, [](CredentialStore::Reply) {});
}

HostSessions::Opener HostConnections::opener() const {
    QHash<QString, SshConfig> configs;
    for (const Host &host : m_hosts)
        configs.insert(host.name, configFor(host));
    return [configs](const Host &host) -> Result<std::unique_ptr<SshSession>> {
        const auto config = configs.constFind(host.name);
        if (config == configs.cend())
            return fail(QStringLiteral("no SSH host named %1").arg(host.name));
        auto session = std::make_unique<SshSession>(config.value());
        if (auto connected = session->connect(); !connected)
            return fail(QStringLiteral("host %1: %2").arg(host.name, connected.error()));
        return session;
    };
}

} // namespace corral
