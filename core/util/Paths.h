#pragma once

#include <QDir>
#include <QString>

namespace corral {

/// $XDG_STATE_HOME/corral (default ~/.local/state/corral): logs and runtime state.
/// (QStandardPaths gained a state location only in Qt 6.7.)
inline QString corralStateDirectory() {
    QString base = qEnvironmentVariable("XDG_STATE_HOME");
    if (base.isEmpty()) base = QDir::homePath() + QStringLiteral("/.local/state");
    return base + QStringLiteral("/corral");
}

} // namespace corral
