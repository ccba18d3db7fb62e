#include "ssh/KnownHosts.h"

#include "model/Host.h"
#include "util/AtomicFile.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QMessageAuthenticationCode>

namespace corral {

namespace {

// The file's content, "" when it does not exist yet.
Result<QByteArray> readKnownHosts(const QString &path) {
    QFile file(path);
    if (!file.exists()) return QByteArray();
    if (!file.open(QIODevice::ReadOnly))
        return fail(path + QStringLiteral(": cannot read: ") + file.errorString());
    return file.readAll();
}

Result<void> writeKnownHosts(const QString &path, QByteArray content, const QByteArray &entry) {
    const QByteArray line = entry.trimmed();
    if (line.isEmpty() || line.contains('\n'))
        return fail(path + QStringLiteral(": not a known_hosts entry: ") +
                    QString::fromUtf8(entry.left(80)));
    // A torn last line (written by an older Corral or by hand) stays on its own line.
    if (!content.isEmpty() && !content.endsWith('\n')) content += '\n';
    content += line + '\n';
    if (!QDir().mkpath(QFileInfo(path).absolutePath()))
        return fail(path + QStringLiteral(": cannot create its directory"));
    return writeFileAtomically(path, content);
}

} // namespace

QString knownHostsName(const QString &address, quint16 port) {
    return port == Host::DefaultSshPort
               ? address
               : QLatin1Char('[') + address + QStringLiteral("]:") + QString::number(port);
}

bool knownHostsPatternsMatch(const QByteArray &patterns, const QString &hostName) {
    const QByteArray host = hostName.toUtf8();
    if (patterns.startsWith("|1|")) {
        const QList<QByteArray> parts = patterns.split('|');
        if (parts.size() != 4) return false;
        const QByteArray salt = QByteArray::fromBase64(parts.at(2));
        return QMessageAuthenticationCode::hash(host, salt, QCryptographicHash::Sha1) ==
               QByteArray::fromBase64(parts.at(3));
    }
    for (const QByteArray &pattern : patterns.split(','))
        if (pattern == host) return true;
    return false;
}

Result<void> addKnownHost(const QString &path, const QByteArray &entry) {
    auto content = readKnownHosts(path);
    if (!content) return fail(content.error());
    return writeKnownHosts(path, content.value(), entry);
}

Result<void> replaceKnownHost(const QString &path, const QString &hostName,
                              const QByteArray &entry) {
    auto content = readKnownHosts(path);
    if (!content) return fail(content.error());
    QByteArray kept;
    for (const QByteArray &line : content->split('\n')) {
        const QList<QByteArray> fields = line.simplified().split(' ');
        // "@cert-authority" and "@revoked" lines are policy the user wrote: never dropped.
        const bool hostKeyLine =
            fields.size() >= 3 && !fields.at(0).startsWith('#') && !fields.at(0).startsWith('@');
        if (hostKeyLine && knownHostsPatternsMatch(fields.at(0), hostName)) continue;
        kept += line + '\n';
    }
    // split() leaves one empty piece after the final newline: do not grow the file by one.
    if (content->endsWith('\n') || content->isEmpty()) kept.chop(1);
    return writeKnownHosts(path, kept, entry);
}

} // namespace corral
