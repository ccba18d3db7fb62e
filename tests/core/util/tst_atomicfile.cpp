#include "helpers/ResultVerify.h"
#include "helpers/SmallTmpfs.h"
#include "util/AtomicFile.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace corral;
using namespace corral::test;

namespace {

QByteArray readAll(const QString &path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray("<unreadable>");
}

bool writePlain(const QString &path, const QByteArray &bytes) {
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(bytes) == bytes.size() && file.flush();
}

int modeOf(const QString &path) {
    struct stat info {};
    return ::stat(QFile::encodeName(path).constData(), &info) == 0 ? int(info.st_mode & 07777) : -1;
}

// Every entry, hidden ones included: a leftover temporary file is a failure.
QStringList entries(const QString &directory) {
    return QDir(directory).entryList(QDir::Files | QDir::Hidden | QDir::System, QDir::Name);
}

} // namespace

/// writeFileAtomically: the one way Corral replaces a file, checked on a real full tmpfs and
/// under RLIMIT_FSIZE (a short write followed by EFBIG).
class TestAtomicFile : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void replacesContentAndLeavesNoTemporary() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("state.json"));
        QVERIFY_RESULT(writeFileAtomically(path, "first"));
        QCOMPARE(readAll(path), QByteArray("first"));
        QVERIFY_RESULT(writeFileAtomically(path, "second, longer"));
        QCOMPARE(readAll(path), QByteArray("second, longer"));
        QVERIFY_RESULT(writeFileAtomically(path, QByteArray()));
        QCOMPARE(QFileInfo(path).size(), 0);
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("state.json")});
    }

    void keepsPermissionsAndFollowsSymlinks() {
        QTemporaryDir dir;
        const QString real = dir.filePath(QStringLiteral("real.json"));
        const QString link = dir.filePath(QStringLiteral("link.json"));
        QVERIFY(writePlain(real, "old"));
        QVERIFY(
            QFile::setPermissions(real, QFile::ReadOwner | QFile::WriteOwner | QFile::ReadGroup));
        QVERIFY(QFile::link(real, link));
        QVERIFY_RESULT(writeFileAtomically(link, "new"));
        QVERIFY(QFileInfo(link).isSymLink());
        QCOMPARE(readAll(real), QByteArray("new"));
        QCOMPARE(modeOf(real), 0640);

        // An explicit mode wins over the umask: a token file is never readable by others.
        const QString token = dir.filePath(QStringLiteral("token"));
        const mode_t previousUmask = ::umask(0);
        const auto restore = qScopeGuard([&] { ::umask(previousUmask); });
        AtomicWriteOptions privateFile;
        privateFile.mode = 0600;
        QVERIFY_RESULT(writeFileAtomically(token, "secret", privateFile));
        QCOMPARE(modeOf(token), 0600);
    }

    // Root replacing a user's file (sudo corralctl ...) leaves it the user's.
    void rootKeepsTheOwner() {
        if (::geteuid() != 0) QSKIP("needs root to own a file as another user");
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        QVERIFY(writePlain(path, "old"));
        QCOMPARE(::chown(QFile::encodeName(path).constData(), 65534, 65534), 0);
        QVERIFY_RESULT(writeFileAtomically(path, "new"));
        struct stat info {};
        QCOMPARE(::stat(QFile::encodeName(path).constData(), &info), 0);
        QCOMPARE(int(info.st_uid), 65534);
        QCOMPARE(int(info.st_gid), 65534);
    }

    void backupIsThePreviousVersion() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("inventory.json"));
        const QString backup = path + QStringLiteral(".bak");
        AtomicWriteOptions options;
        options.backupPath = backup;
        QVERIFY_RESULT(writeFileAtomically(path, "v1", options));
        QVERIFY(!QFile::exists(backup)); // nothing to keep yet
        QVERIFY_RESULT(writeFileAtomically(path, "v2", options));
        QCOMPARE(readAll(backup), QByteArray("v1"));
        QVERIFY_RESULT(writeFileAtomically(path, "v3", options));
        QCOMPARE(readAll(path), QByteArray("v3"));
        QCOMPARE(readAll(backup), QByteArray("v2"));
        // The backup is its own file, not a second name of the current one.
        QCOMPARE(QFileInfo(backup).fileName(), QStringLiteral("inventory.json.bak"));
        struct stat a {
        }, b{};
        QCOMPARE(::stat(QFile::encodeName(path).constData(), &a), 0);
        QCOMPARE(::stat(QFile::encodeName(backup).constData(), &b), 0);
        QVERIFY(a.st_ino != b.st_ino);
        QCOMPARE(int(a.st_nlink), 1);
        QCOMPARE(int(b.st_nlink), 1);
        QCOMPARE(entries(dir.path()), (QStringList{QStringLiteral("inventory.json"),
                                                   QStringLiteral("inventory.json.bak")}));
    }

    // A 64 KiB tmpfs filled up: the write fails with ENOSPC, and the file, its backup and the
    // directory are exactly as before.
    void fullDiskLeavesFileAndBackupUntouched() {
        SmallTmpfs disk;
        QString error;
        if (!disk.mount(QStringLiteral("64k"), &error)) QSKIP(qPrintable(error));
        const QString path = disk.filePath(QStringLiteral("inventory.json"));
        const QString backup = path + QStringLiteral(".bak");
        AtomicWriteOptions options;
        options.backupPath = backup;
        QVERIFY_RESULT(writeFileAtomically(path, QByteArray(3000, 'a'), options));
        QVERIFY_RESULT(writeFileAtomically(path, QByteArray(3000, 'b'), options));
        QVERIFY2(disk.fill(&error), qPrintable(error));
        const QStringList before = entries(disk.path());

        const auto written = writeFileAtomically(path, QByteArray(9000, 'c'), options);
        QVERIFY(!written.ok());
        QCOMPARE(written.error(), path + QStringLiteral(": cannot save: No space left on device"));
        QCOMPARE(readAll(path), QByteArray(3000, 'b'));
        QCOMPARE(readAll(backup), QByteArray(3000, 'a'));
        QCOMPARE(entries(disk.path()), before);

        // Room again: the same call succeeds.
        QVERIFY(QFile::remove(disk.filePath(QStringLiteral("filler"))));
        QVERIFY_RESULT(writeFileAtomically(path, QByteArray(9000, 'c'), options));
        QCOMPARE(readAll(path), QByteArray(9000, 'c'));
        QCOMPARE(readAll(backup), QByteArray(3000, 'b'));
    }

    // RLIMIT_FSIZE: write(2) first writes what fits (a short write), then fails with EFBIG.
    // The short write must not pass for success.
    void fileSizeLimitIsAnErrorNotATruncatedFile() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("groups"));
        QVERIFY_RESULT(writeFileAtomically(path, "small"));

        rlimit previous{};
        QCOMPARE(::getrlimit(RLIMIT_FSIZE, &previous), 0);
        // Ignored, SIGXFSZ turns into EFBIG instead of killing the test.
        struct sigaction ignore {
        }, previousAction{};
        ignore.sa_handler = SIG_IGN;
        QCOMPARE(::sigaction(SIGXFSZ, &ignore, &previousAction), 0);
        rlimit limited = previous;
        limited.rlim_cur = 4096;
        QCOMPARE(::setrlimit(RLIMIT_FSIZE, &limited), 0);
        const auto written = writeFileAtomically(path, QByteArray(10000, 'x'));
        ::setrlimit(RLIMIT_FSIZE, &previous);
        ::sigaction(SIGXFSZ, &previousAction, nullptr);

        QVERIFY(!written.ok());
        QCOMPARE(written.error(), path + QStringLiteral(": cannot save: File too large"));
        QCOMPARE(readAll(path), QByteArray("small"));
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("groups")});
    }

    void missingDirectoryIsNamed() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("missing/inventory.json"));
        const auto written = writeFileAtomically(path, "x");
        QVERIFY(!written.ok());
        QCOMPARE(written.error(),
                 path + QStringLiteral(": cannot save: cannot create a temporary file in %1: No "
                                       "such file or directory")
                            .arg(dir.filePath(QStringLiteral("missing"))));
    }
};

QTEST_GUILESS_MAIN(TestAtomicFile)
#include "tst_atomicfile.moc"
