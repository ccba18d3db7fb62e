#include "upstreams/SiteLock.h"

#include "model/FieldText.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "upstreams/ConfigApplier.h"

#include <QCoreApplication>
#include <QCryptographicHash>
#include <QDateTime>
#include <QDeadlineTimer>
#include <QDir>
#include <QSysInfo>
#include <QThread>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace corral {

namespace {

// $1 the state directory, $2 this holder's description, $3 "nowait" or empty. Prints
// "busy HOLDER" when someone else holds the lock (then exits 1 with nowait, else waits),
// "locked" once it is ours, then holds it (fd 9, inherited by cat) until stdin ends: when
// the operation releases it or its connection drops.
const char holdScript[] =
    "command -v flock >/dev/null 2>&1 || { echo 'error the host has no flock(1) (util-linux)'; "
    "exit 2; }; "
    "exec 9>>\"$1/lock\" || { echo \"error cannot open $1/lock\"; exit 2; }; "
    "if ! flock -n 9; then "
    "  printf 'busy %s\\n' \"$(cat -- \"$1/lock.holder\" 2>/dev/null || echo unknown)\"; "
    "  [ \"$3\" = nowait ] && exit 1; "
    "  flock 9 || exit 2; "
    "fi; "
    "printf '%s\\n' \"$2\" > \"$1/lock.holder\"; "
    "echo locked; "
    "exec cat >/dev/null";

QString localLockPath(const RemoteBalancer &target, const SshSession &session) {
    const QByteArray identity = session.config().address.toUtf8() + ':' +
                                QByteArray::number(session.config().port) + ':' +
                                target.configPath.toUtf8();
    const QString id = QString::fromLatin1(
        QCryptographicHash::hash(identity, QCryptographicHash::Sha256).toHex().left(12));
    // $XDG_RUNTIME_DIR is the user's own (0700); without one, the state directory in HOME
    // (never a shared /tmp path another user could create first).
    const QString runtime = qEnvironmentVariable("XDG_RUNTIME_DIR");
    const QString base =
        !runtime.isEmpty() && QDir(runtime).exists()
            ? runtime + QStringLiteral("/corral")
            : qEnvironmentVariable("XDG_STATE_HOME",
                                   QDir::homePath() + QStringLiteral("/.local/state")) +
                  QStringLiteral("/corral");
    return base + QStringLiteral("/locks/") + target.site + QLatin1Char('-') + id +
           QStringLiteral(".lock");
}

QString readHolder(int fd) {
    char buffer[1024];
    const ssize_t read = ::pread(fd, buffer, sizeof buffer - 1, 0);
    // Written by whoever could open the file: shown escaped, never as terminal controls.
    const QString text =
        read > 0 ? escapeControls(QString::fromUtf8(buffer, int(read)).trimmed()) : QString();
    return text.isEmpty() ? QStringLiteral("an operation that has not said who it is") : text;
}

} // namespace

QString SiteLock::describeSelf(const QString &command) {
    return QStringLiteral("%1 pid %2 (%3) since %4")
        .arg(QSysInfo::machineHostName())
        .arg(QCoreApplication::applicationPid())
        .arg(command.isEmpty() ? QStringLiteral("corral") : command,
             QDateTime::currentDateTimeUtc().toString(Qt::ISODate));
}

Result<std::unique_ptr<SiteLock>> SiteLock::acquire(SshSession &session,
                                                    const RemoteBalancer &target,
                                                    const QString &hostName,
                                                    const Options &options) {
    std::unique_ptr<SiteLock> lock(new SiteLock);
    const QString self = describeSelf(options.command);
    const QDeadlineTimer deadline = options.timeoutMs > 0 ? QDeadlineTimer(options.timeoutMs)
                                                          : QDeadlineTimer(QDeadlineTimer::Forever);
    const QString site = target.site;
    const auto busy = [&](const QString &where, const QString &holder) {
        return QStringLiteral("site %1 is locked %2 by %3; it is free again when that "
                              "operation ends or its connection drops")
            .arg(site, where, holder);
    };
    bool waitingSaid = false;
    const auto sayWaiting = [&](const QString &holder) {
        if (waitingSaid || !options.onWaiting) return;
        waitingSaid = true;
        options.onWaiting(holder);
    };

    // Local first: a second operation from this machine waits without touching the host.
    lock->m_localPath = localLockPath(target, session);
    const QString directory = lock->m_localPath.left(lock->m_localPath.lastIndexOf(u'/'));
    if (!QDir().mkpath(directory))
        return fail(QStringLiteral("cannot create %1 for the site's lock").arg(directory));
    lock->m_localFd = ::open(QFile::encodeName(lock->m_localPath).constData(),
                             O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock->m_localFd < 0)
        return fail(QStringLiteral("cannot open %1: %2")
                        .arg(lock->m_localPath, QString::fromLocal8Bit(std::strerror(errno))));
    while (::flock(lock->m_localFd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK)
            return fail(QStringLiteral("cannot lock %1: %2")
                            .arg(lock->m_localPath, QString::fromLocal8Bit(std::strerror(errno))));
        const QString holder = readHolder(lock->m_localFd);
        const QString where = QStringLiteral("on this machine (%1)").arg(lock->m_localPath);
        if (options.noWait) return fail(busy(where, holder));
        if (deadline.hasExpired())
            return fail(busy(where, holder) +
                        QStringLiteral(" (waited %1 s)").arg(options.timeoutMs / 1000));
        sayWaiting(holder);
        QThread::msleep(100);
    }
    lock->m_localHeld = true;
    const QByteArray selfText = self.toUtf8() + '\n';
    if (::ftruncate(lock->m_localFd, 0) != 0 ||
        ::pwrite(lock->m_localFd, selfText.constData(), size_t(selfText.size()), 0) !=
            selfText.size())
        return fail(QStringLiteral("cannot write %1: %2")
                        .arg(lock->m_localPath, QString::fromLocal8Bit(std::strerror(errno))));

    // Then the host, on a channel of the operation's own session.
    auto state = prepareStateDirectory(session, target, true);
    if (!state) return fail(QStringLiteral("lock on %1: %2").arg(hostName, state.error()));
    lock->m_remotePath = state->path + QStringLiteral("/lock");
    auto started =
        session.start(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                    QLatin1String(holdScript), QStringLiteral("sh"), state->path,
                                    self, options.noWait ? QStringLiteral("nowait") : QString()}));
    if (!started) return fail(QStringLiteral("lock on %1: %2").arg(hostName, started.error()));
    lock->m_remote = std::move(started).value();
    const QString where = QStringLiteral("on %1 (%2)").arg(hostName, lock->m_remotePath);
    QString holder;
    for (;;) {
        const int slice = deadline.isForever()
                              ? 1000
                              : int(std::clamp<qint64>(deadline.remainingTime(), 1, 1000));
        auto line = lock->m_remote->readLine(slice);
        if (!line) {
            if (session.lastFailure() == SshFailure::Timeout && !deadline.hasExpired()) continue;
            if (session.lastFailure() == SshFailure::Timeout)
                return fail(busy(where, holder) +
                            QStringLiteral(" (waited %1 s)").arg(options.timeoutMs / 1000));
            if (!holder.isEmpty() && options.noWait) return fail(busy(where, holder));
            return fail(QStringLiteral("lock %1: %2").arg(where, line.error()));
        }
        const QString text = QString::fromUtf8(line.value());
        if (text == QLatin1String("locked")) return lock;
        if (text.startsWith(QLatin1String("busy "))) {
            holder = escapeControls(text.mid(5)); // the host's file: any bytes
            if (options.noWait) return fail(busy(where, holder));
            sayWaiting(holder);
            continue;
        }
        if (text.startsWith(QLatin1String("error ")))
            return fail(QStringLiteral("lock %1: %2").arg(where, text.mid(6)));
    }
}

SiteLock::~SiteLock() {
    m_remote.reset(); // EOF to the holder on the host: it exits and the flock is gone
    if (m_localFd >= 0) {
        // The holder's text goes, not another's; best effort: a text left behind is
        // overwritten by the next holder and is never read as a lock (the flock is).
        if (m_localHeld) {
            [[maybe_unused]] const int cleared = ::ftruncate(m_localFd, 0);
        }
        ::close(m_localFd); // releases the flock
    }
}

bool SiteLock::isHeld() const {
    return m_remote && m_remote->isOpen();
}

} // namespace corral
