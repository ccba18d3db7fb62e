#pragma once

// A real, tiny file system for disk-full tests: a tmpfs of a few KiB mounted on a temporary
// directory (needs root, as in CI), filled up on request, unmounted when destroyed.
// Header-only (QtCore only).

#include <QByteArray>
#include <QFile>
#include <QProcess>
#include <QString>
#include <QTemporaryDir>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace corral::test {

class SmallTmpfs {
public:
    SmallTmpfs() = default;
    ~SmallTmpfs() { unmount(); }
    SmallTmpfs(const SmallTmpfs &) = delete;
    SmallTmpfs &operator=(const SmallTmpfs &) = delete;

    /// Mounts a tmpfs of `size` (mount(8) syntax, e.g. "64k"); `error` says why not.
    bool mount(const QString &size, QString *error) {
        if (!m_dir.isValid()) {
            *error = QStringLiteral("cannot create a temporary directory");
            return false;
        }
        QProcess process;
        process.start(QStringLiteral("mount"),
                      {QStringLiteral("-t"), QStringLiteral("tmpfs"), QStringLiteral("-o"),
                       QStringLiteral("size=") + size, QStringLiteral("tmpfs"), m_dir.path()});
        if (!process.waitForFinished(10000) || process.exitStatus() != QProcess::NormalExit ||
            process.exitCode() != 0) {
            *error = QStringLiteral("mount -t tmpfs failed (not root, or no CAP_SYS_ADMIN): ") +
                     QString::fromLocal8Bit(process.readAllStandardError()).trimmed();
            return false;
        }
        m_mounted = true;
        return true;
    }

    QString path() const { return m_dir.path(); }
    QString filePath(const QString &name) const { return m_dir.filePath(name); }

    /// Writes a filler file until the file system reports ENOSPC. Returns false (with `error`)
    /// if it stopped for any other reason.
    bool fill(QString *error) const {
        const QByteArray name = QFile::encodeName(filePath(QStringLiteral("filler")));
        const int fd = ::open(name.constData(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            *error = QStringLiteral("cannot create the filler: ") + QString::number(errno);
            return false;
        }
        const QByteArray block(512, 'x');
        for (;;) {
            const ssize_t n = ::write(fd, block.constData(), size_t(block.size()));
            if (n > 0) continue;
            const int cause = n < 0 ? errno : ENOSPC;
            if (cause == EINTR) continue;
            ::close(fd);
            if (cause == ENOSPC) break;
            *error = QStringLiteral("filling stopped with errno ") + QString::number(cause);
            return false;
        }
        // A byte-sized write must fail too: nothing is left.
        const int probe = ::open(name.constData(), O_WRONLY | O_APPEND | O_CLOEXEC);
        const bool full = probe >= 0 && ::write(probe, "x", 1) < 0 && errno == ENOSPC;
        if (probe >= 0) ::close(probe);
        if (!full) *error = QStringLiteral("the file system still takes writes");
        return full;
    }

    void unmount() {
        if (!m_mounted) return;
        QProcess::execute(QStringLiteral("umount"), {m_dir.path()});
        m_mounted = false;
    }

private:
    QTemporaryDir m_dir;
    bool m_mounted = false;
};

} // namespace corral::test
