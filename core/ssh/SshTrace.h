#pragma once

#include <QString>

namespace corral {

/// An audit trail of every remote step Corral takes: with CORRAL_SSH_TRACE=FILE in the
/// environment, each SshSession::exec, start and upload appends one line to FILE:
///   OPERATION<TAB>USER@HOST<TAB>exec|start|upload<TAB>COMMAND-OR-PATH
/// OPERATION is the site operation running on that thread ("add-backend shop", see
/// SshTrace::Operation), "-" outside one. Lines are written whole (O_APPEND), so several
/// threads and processes may share the file. Secrets never reach a command line, so none
/// reach the trace; commands are written as sent, with newlines escaped as "\n".
/// Used by operators to see what Corral did on a host, and by the tests that check the
/// console and corralctl send the same commands for the same operation.
class SshTrace {
public:
    /// Labels the calls made on this thread while it lives.
    class Operation {
    public:
        explicit Operation(const QString &label);
        ~Operation();
        Operation(const Operation &) = delete;
        Operation &operator=(const Operation &) = delete;

    private:
        QString m_previous;
    };

    /// Records one call when tracing is on (CORRAL_SSH_TRACE set); cheap otherwise.
    static void record(const QString &host, const char *kind, const QString &what);
};

} // namespace corral
