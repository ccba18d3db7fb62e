#pragma once

// Replacing a file so that a full disk, a crash or a power cut leaves either the old content or
// the new one, never a mix or an empty file. One implementation for every file Corral writes
// (the inventory and its backup, the supervisor's state file, the admin token, known_hosts).
// QSaveFile is not enough: with Qt 6.4 a write that fails with ENOSPC can still be committed,
// and it fsyncs neither the file nor its directory.

#include "util/Result.h"

#include <QByteArray>
#include <QString>

#include <optional>

namespace corral {

struct AtomicWriteOptions {
    /// Permission bits of the file written. Unset: those of the file replaced, or 0666 minus
    /// the umask for a new file.
    std::optional<int> mode;
    /// When set and the file exists, its current version is kept under this name (e.g.
    /// PATH.bak), and only once the new content is complete on disk: a failed write leaves
    /// both the file and its previous backup as they were.
    QString backupPath;
};

/// Writes `bytes` to a new, uniquely named file next to `path` (every write checked, short
/// writes continued), fsyncs it, renames it over `path` and fsyncs the directory. A symbolic
/// link at `path` is followed: its target is replaced. On any failure the temporary file is
/// removed, `path` is untouched and the error names the file and the cause, e.g.
/// "/home/me/.config/corral/inventory.json: cannot save: No space left on device".
Result<void> writeFileAtomically(const QString &path, const QByteArray &bytes,
                                 const AtomicWriteOptions &options = {});

} // namespace corral
