#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QHash>
#include <QString>
#include <QStringList>

namespace corral {

/// Several shell commands sent as one SSH exec, their outputs told apart afterwards. Each
/// exec costs round trips and a session on the host (about 100 ms per exec on the test
/// machine's sshd), so a polling tick that needs four answers asks once. The parts run one
/// after the other; each part's output and exit status are framed by lines carrying a
/// random marker, so no output (an access log, say) can forge a frame.
class BatchedCommand {
public:
    struct Part {
        QByteArray output; ///< exactly what the command wrote to stdout
        int status = -1;   ///< its exit status; -1 when the part is missing
    };

    BatchedCommand();

    /// Adds `command` (a complete shell command, built with shellCommand()) as part `name`
    /// (letters only).
    void add(const QString &name, const QString &command);
    bool isEmpty() const { return m_names.isEmpty(); }
    /// The one command to exec. stderr of all parts goes to the exec's stderr.
    QString command() const;
    /// The parts of the exec's stdout; fails when a part's frame is missing or broken (the
    /// output is not this command's, or it was cut short).
    Result<QHash<QString, Part>> split(const QByteArray &output) const;

private:
    QString m_marker;
    QStringList m_names;
    QStringList m_commands;
};

} // namespace corral
