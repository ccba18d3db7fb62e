#include "ssh/SshTrace.h"

#include <QByteArray>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace corral {

namespace {

thread_local QString currentOperation;

/// The trace file's descriptor, opened once per process; -1 when tracing is off.
int traceDescriptor() {
    static const int fd = [] {
        const QByteArray path = qgetenv("CORRAL_SSH_TRACE");
        if (path.isEmpty()) return -1;
        return ::open(path.constData(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    }();
    return fd;
}

QString escaped(QString text) {
    text.replace(QLatin1Char('\\'), QLatin1String("\\\\"));
    text.replace(QLatin1Char('\n'), QLatin1String("\\n"));
    text.replace(QLatin1Char('\t'), QLatin1String("\\t"));
    return text;
}

} // namespace

SshTrace::Operation::Operation(const QString &label)
    : m_previous(currentOperation) {
    currentOperation = label;
}

SshTrace::Operation::~Operation() {
    currentOperation = m_previous;
}

void SshTrace::record(const QString &host, const char *kind, const QString &what) {
    const int fd = traceDescriptor();
    if (fd < 0) return;
    const QString operation = currentOperation.isEmpty() ? QStringLiteral("-") : currentOperation;
    const QByteArray line =
        (escaped(operation) + QLatin1Char('\t') + escaped(host) + QLatin1Char('\t') +
         QLatin1String(kind) + QLatin1Char('\t') + escaped(what) + QLatin1Char('\n'))
            .toUtf8();
    // One write of the whole line: with O_APPEND, lines of concurrent writers do not mix.
    ssize_t written;
    do {
        written = ::write(fd, line.constData(), size_t(line.size()));
    } while (written < 0 && errno == EINTR);
}

} // namespace corral
