#include "util/AtomicFile.h"

#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace corral {

namespace {

QString errnoText(int error) {
    return QString::fromLocal8Bit(std::strerror(error));
}

QString directoryOf(const QString &path) {
    const qsizetype slash = path.lastIndexOf(QLatin1Char('/'));
    if (slash < 0) return QStringLiteral(".");
    return slash == 0 ? QStringLiteral("/") : path.left(slash);
}

// A name next to `path` that no one else uses: hidden, so no glob such as *.json picks it up.
QString temporaryNameFor(const QString &path) {
    const QFileInfo info(path);
    return directoryOf(path) + QStringLiteral("/.") + info.fileName() + QStringLiteral(".tmp-") +
           QString::number(QRandomGenerator::global()->generate64(), 16);
}

// Closes the descriptor and removes the temporary file unless released.
struct TemporaryFile {
    QByteArray path;
    int fd = -1;
    ~TemporaryFile() {
        if (fd >= 0) ::close(fd);
        if (!path.isEmpty()) ::unlink(path.constData());
    }
    void release() { path.clear(); }
};

// O_CREAT|O_EXCL under a fresh random name, retried on the (unlikely) collision.
int createTemporary(const QString &nextTo, int createMode, QByteArray *name) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        *name = QFile::encodeName(temporaryNameFor(nextTo));
        const int fd = ::open(name->constData(),
                              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, createMode);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

// write(2) until everything is written: a short write is continued, and the next write then
// reports why it stopped (ENOSPC, EFBIG, EDQUOT, EIO).
bool writeAll(int fd, const QByteArray &bytes) {
    const char *data = bytes.constData();
    qsizetype left = bytes.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, data, size_t(std::min<qsizetype>(left, 1 << 30)));
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (n == 0) { // not expected from a regular file; never loop on it
            errno = ENOSPC;
            return false;
        }
        data += n;
        left -= n;
    }
    return true;
}

bool syncDirectory(const QString &directory) {
    const int fd =
        ::open(QFile::encodeName(directory).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool synced = ::fsync(fd) == 0 || errno == EINVAL; // EINVAL: not supported there
    const int error = errno;
    ::close(fd);
    errno = error;
    return synced;
}

// Makes `backupPath` the file now at `target` without copying it: a hard link under a temporary
// name, renamed over the backup. Where hard links are not possible, a copy written atomically.
Result<void> keepAsBackup(const QString &target, const QString &backupPath, int mode) {
    const QByteArray linkName = QFile::encodeName(temporaryNameFor(backupPath));
    if (::link(QFile::encodeName(target).constData(), linkName.constData()) == 0) {
        if (::rename(linkName.constData(), QFile::encodeName(backupPath).constData()) == 0)
            return {};
        const int error = errno;
        ::unlink(linkName.constData());
        return fail(QStringLiteral("cannot keep the previous version as %1: %2")
                        .arg(backupPath, errnoText(error)));
    }
    if (errno != EPERM && errno != EXDEV && errno != EOPNOTSUPP && errno != EMLINK)
        return fail(QStringLiteral("cannot keep the previous version as %1: %2")
                        .arg(backupPath, errnoText(errno)));
    QFile previous(target);
    if (!previous.open(QIODevice::ReadOnly))
        return fail(QStringLiteral("cannot read the previous version for %1: %2")
                        .arg(backupPath, previous.errorString()));
    const QByteArray content = previous.readAll();
    if (previous.error() != QFileDevice::NoError)
        return fail(QStringLiteral("cannot read the previous version for %1: %2")
                        .arg(backupPath, previous.errorString()));
    AtomicWriteOptions copyOptions;
    copyOptions.mode = mode;
    if (auto copied = writeFileAtomically(backupPath, content, copyOptions); !copied)
        return fail(QStringLiteral("cannot keep the previous version: ") + copied.error());
    return {};
}

} // namespace

Result<void> writeFileAtomically(const QString &path, const QByteArray &bytes,
                                 const AtomicWriteOptions &options) {
    const auto failed = [&](const QString &cause) {
        return fail(path + QStringLiteral(": cannot save: ") + cause);
    };
    // Replace what a symbolic link points to, not the link.
    QString target = path;
    if (const QFileInfo info(path); info.isSymLink()) {
        const QString resolved = info.canonicalFilePath();
        if (!resolved.isEmpty()) target = resolved;
    }
    const QString directory = directoryOf(target);

    struct stat existing {};
    const bool exists = ::stat(QFile::encodeName(target).constData(), &existing) == 0;
    if (exists && !S_ISREG(existing.st_mode)) return failed(QStringLiteral("not a regular file"));
    std::optional<int> mode = options.mode;
    if (!mode && exists) mode = int(existing.st_mode & 07777);

    // Without a mode to keep, 0666 lets the umask decide, as for any new file. With one, the
    // file is private until fchmod sets it.
    TemporaryFile temporary;
    temporary.fd = createTemporary(target, mode ? 0600 : 0666, &temporary.path);
    if (temporary.fd < 0) {
        const int error = errno;
        temporary.path.clear();
        return failed(QStringLiteral("cannot create a temporary file in %1: %2")
                          .arg(directory, errnoText(error)));
    }
    if (mode && ::fchmod(temporary.fd, mode_t(*mode)) != 0)
        return failed(QStringLiteral("cannot set permissions: ") + errnoText(errno));
    // Root (sudo corralctl ...) keeps a user's file the user's; others cannot give files away.
    if (exists && ::geteuid() == 0 && (existing.st_uid != 0 || existing.st_gid != 0) &&
        ::fchown(temporary.fd, existing.st_uid, existing.st_gid) != 0)
        return failed(QStringLiteral("cannot keep the owner: ") + errnoText(errno));
    if (!writeAll(temporary.fd, bytes)) return failed(errnoText(errno));
    if (::fsync(temporary.fd) != 0) return failed(errnoText(errno));
    const int fd = temporary.fd;
    temporary.fd = -1;
    // Some file systems (NFS) report a failed write-back only here.
    if (::close(fd) != 0 && errno != EINTR) return failed(errnoText(errno));

    // The new content is complete on disk: only now may the backup change.
    if (exists && !options.backupPath.isEmpty())
        if (auto kept = keepAsBackup(target, options.backupPath, int(existing.st_mode & 07777));
            !kept)
            return failed(kept.error());

    if (::rename(temporary.path.constData(), QFile::encodeName(target).constData()) != 0)
        return failed(errnoText(errno));
    temporary.release();
    // Makes the renames themselves durable: without it a crash can bring back the old names.
    const QString backupDirectory = directoryOf(options.backupPath);
    if (exists && !options.backupPath.isEmpty() && backupDirectory != directory)
        (void)syncDirectory(backupDirectory);
    if (!syncDirectory(directory))
        return fail(path + QStringLiteral(": saved, but syncing the directory %1 failed (%2); the "
                                          "change may not survive a crash")
                               .arg(directory, errnoText(errno)));
    return {};
}

} // namespace corral
