#include "util/ListeningSockets.h"

#include <QDir>
#include <QFile>
#include <QSet>

#include <cstring>
#include <netinet/in.h>
#include <unistd.h>

namespace corral {

namespace {

std::string_view nextField(std::string_view &line) {
    size_t start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) {
        line = {};
        return {};
    }
    line.remove_prefix(start);
    const size_t end = line.find(' ');
    const std::string_view field = line.substr(0, end);
    line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    return field;
}

bool parseHex32(std::string_view text, quint32 &out) {
    if (text.empty() || text.size() > 8) return false;
    quint32 value = 0;
    for (char ch : text) {
        int digit;
        if (ch >= '0' && ch <= '9')
            digit = ch - '0';
        else if (ch >= 'A' && ch <= 'F')
            digit = ch - 'A' + 10;
        else if (ch >= 'a' && ch <= 'f')
            digit = ch - 'a' + 10;
        else
            return false;
        value = value << 4 | quint32(digit);
    }
    out = value;
    return true;
}

// "0100007F:1F90": the address words are printed in host byte order, so copying each word's
// bytes as they lie in memory gives the address in network order.
bool parseEndpoint(std::string_view text, bool v6, QHostAddress &address, quint16 &port) {
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view hex = text.substr(0, colon);
    quint32 portValue = 0;
    if (!parseHex32(text.substr(colon + 1), portValue) || portValue > 0xffff) return false;
    port = quint16(portValue);
    if (!v6) {
        quint32 word = 0;
        if (hex.size() != 8 || !parseHex32(hex, word)) return false;
        in_addr raw{};
        std::memcpy(&raw, &word, 4);
        // 0.0.0.0 as QHostAddress::Any: a plain 0.0.0.0 is AnyIPv4, which compares unequal
        // to Any, and a wildcard holder would go unnoticed.
        if (raw.s_addr == 0)
            address.setAddress(QHostAddress::Any);
        else
            address.setAddress(ntohl(raw.s_addr));
        return true;
    }
    if (hex.size() != 32) return false;
    Q_IPV6ADDR raw{};
    for (int i = 0; i < 4; ++i) {
        quint32 word = 0;
        if (!parseHex32(hex.substr(size_t(i) * 8, 8), word)) return false;
        std::memcpy(raw.c + i * 4, &word, 4);
    }
    address.setAddress(raw);
    return true;
}

QByteArray readProcFile(const QString &path) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) return {};
    return file.readAll(); // /proc files report size 0: read until EOF
}

} // namespace

QList<TcpListener> parseProcNetTcp(std::string_view text, bool v6) {
    QList<TcpListener> result;
    bool header = true;
    while (!text.empty()) {
        const size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
        if (header) {
            header = false;
            continue;
        }
        nextField(line); // "sl:"
        const std::string_view local = nextField(line);
        nextField(line); // remote address
        const std::string_view state = nextField(line);
        if (state != "0A") continue; // TCP_LISTEN
        for (int i = 0; i < 5; ++i)
            nextField(line); // queues, timer, retransmits, uid, timeout
        const std::string_view inodeText = nextField(line);
        TcpListener listener;
        if (!parseEndpoint(local, v6, listener.address, listener.port)) continue;
        bool ok = false;
        listener.inode = QByteArray(inodeText.data(), qsizetype(inodeText.size())).toULongLong(&ok);
        if (!ok) continue;
        result.append(listener);
    }
    return result;
}

QList<TcpListener> tcpListeners() {
    QList<TcpListener> result;
    const QByteArray v4 = readProcFile(QStringLiteral("/proc/net/tcp"));
    result += parseProcNetTcp(std::string_view(v4.constData(), size_t(v4.size())), false);
    const QByteArray v6 = readProcFile(QStringLiteral("/proc/net/tcp6"));
    result += parseProcNetTcp(std::string_view(v6.constData(), size_t(v6.size())), true);
    return result;
}

QList<TcpListener> listenersCovering(const QHostAddress &address, quint16 port) {
    QList<TcpListener> result;
    // The address as IPv4 when it is one (also ::ffff:a.b.c.d), so families compare.
    bool isV4 = false;
    const quint32 v4 = address.toIPv4Address(&isV4);
    for (const TcpListener &l : tcpListeners()) {
        if (l.port != port) continue;
        bool listenerV4 = false;
        const quint32 lv4 = l.address.toIPv4Address(&listenerV4);
        const bool covers =
            address.isNull() || l.address == QHostAddress(QHostAddress::Any) ||
            l.address == QHostAddress(QHostAddress::AnyIPv6) || (isV4 && listenerV4 && v4 == lv4) ||
            (!isV4 && !listenerV4 && l.address.isEqual(address, QHostAddress::StrictConversion)) ||
            // A wildcard bind of ours conflicts with any specific listener on the port.
            address == QHostAddress(QHostAddress::Any) ||
            address == QHostAddress(QHostAddress::AnyIPv6);
        if (covers) result.append(l);
    }
    return result;
}

QList<SocketHolder> socketHolders(const QList<quint64> &inodes) {
    QList<SocketHolder> result;
    if (inodes.isEmpty()) return result;
    QSet<QByteArray> wanted;
    for (quint64 inode : inodes)
        wanted.insert("socket:[" + QByteArray::number(inode) + ']');
    const QStringList pids =
        QDir(QStringLiteral("/proc")).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    char link[64];
    for (const QString &pidText : pids) {
        bool ok = false;
        const qint64 pid = pidText.toLongLong(&ok);
        if (!ok) continue;
        const QByteArray fdDir = "/proc/" + pidText.toLatin1() + "/fd";
        const QStringList fds =
            QDir(QString::fromLatin1(fdDir)).entryList(QDir::Files | QDir::System);
        for (const QString &fd : fds) {
            const QByteArray path = fdDir + '/' + fd.toLatin1();
            const ssize_t n = ::readlink(path.constData(), link, sizeof link);
            if (n <= 0 || !wanted.contains(QByteArray(link, qsizetype(n)))) continue;
            QByteArray cmdline = readProcFile(QStringLiteral("/proc/%1/cmdline").arg(pid));
            while (cmdline.endsWith('\0'))
                cmdline.chop(1);
            cmdline.replace('\0', ' ');
            if (cmdline.isEmpty())
                cmdline = readProcFile(QStringLiteral("/proc/%1/comm").arg(pid)).trimmed();
            result.append(SocketHolder{pid, QString::fromLocal8Bit(cmdline).left(200)});
            break;
        }
    }
    return result;
}

QList<qint64> processTree(qint64 rootPid) {
    // pid 0 is the kernel's, the parent of init and kthreadd: its "tree" is every process,
    // and a caller that kills the tree of a stopped child (pid 0) would kill them all.
    if (rootPid <= 0) return {};
    QList<qint64> tree{rootPid};
    QHash<qint64, QList<qint64>> children;
    const QStringList pids =
        QDir(QStringLiteral("/proc")).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    for (const QString &pidText : pids) {
        bool ok = false;
        const qint64 pid = pidText.toLongLong(&ok);
        if (!ok) continue;
        const QByteArray stat = readProcFile(QStringLiteral("/proc/%1/stat").arg(pid));
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        const qsizetype close = stat.lastIndexOf(')');
        if (close < 0) continue;
        const QList<QByteArray> fields = stat.mid(close + 2).split(' ');
        if (fields.size() < 2) continue;
        children[fields[1].toLongLong()].append(pid);
    }
    for (qsizetype i = 0; i < tree.size(); ++i)
        tree += children.value(tree[i]);
    return tree;
}

bool processTreeListensOn(qint64 rootPid, quint16 port) {
    if (rootPid <= 0) return false;
    QList<quint64> inodes;
    for (const TcpListener &l : tcpListeners())
        if (l.port == port) inodes.append(l.inode);
    if (inodes.isEmpty()) return false;
    const QList<qint64> tree = processTree(rootPid);
    for (const SocketHolder &holder : socketHolders(inodes))
        if (tree.contains(holder.pid)) return true;
    return false;
}

QString describeHolders(const QList<TcpListener> &listeners) {
    QList<quint64> inodes;
    for (const TcpListener &l : listeners)
        inodes.append(l.inode);
    QStringList parts;
    for (const SocketHolder &h : socketHolders(inodes))
        parts.append(QStringLiteral("pid %1 (%2)").arg(h.pid).arg(h.command));
    if (parts.isEmpty()) return QStringLiteral("a process this user cannot see");
    return parts.join(QStringLiteral(", "));
}

Result<void> checkListenAddressFree(const QHostAddress &address, quint16 port) {
    if (port == 0) return {};
    const QList<TcpListener> holders = listenersCovering(address, port);
    if (holders.isEmpty()) return {};
    // A null address (a host name was given) is checked against every listener on the port.
    const QString where = address.isNull() ? QStringLiteral("port %1").arg(port)
                          : address.protocol() == QAbstractSocket::IPv6Protocol
                              ? QStringLiteral("[%1]:%2").arg(address.toString()).arg(port)
                              : QStringLiteral("%1:%2").arg(address.toString()).arg(port);
    return fail(QStringLiteral("%1 is already in use by %2").arg(where, describeHolders(holders)));
}

} // namespace corral
