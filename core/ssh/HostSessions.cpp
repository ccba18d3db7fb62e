#include "ssh/HostSessions.h"

#include "ssh/SshSession.h"

namespace corral {

HostSessions::HostSessions(QList<Host> hosts, Opener open)
    : m_hosts(std::move(hosts))
    , m_open(std::move(open)) {}

// Sessions close in reverse order of opening; lent ones are left to their owner.
HostSessions::~HostSessions() {
    while (!m_owned.empty())
        m_owned.pop_back();
}

void HostSessions::lend(const QString &hostName, SshSession *session) {
    m_sessions.insert(hostName, session);
}

const Host *HostSessions::host(const QString &name) const {
    for (const Host &host : m_hosts)
        if (host.name == name) return &host;
    return nullptr;
}

Result<SshSession *> HostSessions::session(const QString &hostName) {
    if (SshSession *open = m_sessions.value(hostName)) return open;
    const Host *found = host(hostName);
    if (!found) return fail(QStringLiteral("no host named \"%1\" in the inventory").arg(hostName));
    if (found->kind != Host::Kind::Ssh)
        return fail(QStringLiteral("host \"%1\" is not an SSH host").arg(hostName));
    auto opened = m_open(*found);
    if (!opened) return fail(opened.error());
    SshSession *raw = opened.value().get();
    m_owned.push_back(std::move(opened).value());
    m_sessions.insert(hostName, raw);
    return raw;
}

} // namespace corral
