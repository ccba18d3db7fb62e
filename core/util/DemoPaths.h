#pragma once

#include <QCoreApplication>
#include <QDir>
#include <QString>

namespace corral {

/// The demo worker's public directory (index.html, demo.css): what `corral --demo` and
/// `corralctl up --demo` serve from the embedded proxy. share/corral/demo-public beside the
/// executables' bin/: /usr/share/corral/demo-public installed, build/share/corral/demo-public
/// in the build tree (CMake copies it there).
inline QString demoPublicDirectory() {
    return QDir::cleanPath(QCoreApplication::applicationDirPath() +
                           QStringLiteral("/../share/corral/demo-public"));
}

} // namespace corral
