#include "upstreams/RemoteLogs.h"

#include "remote/RemoteWorkers.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QHash>

#include <memory>
#include <vector>

namespace corral {

namespace {

/// `reader` (shell text that execs the program printing the log) as the command to run: as it
/// is when not following; when following, in the background (exec: its pid is $!) while the
/// command waits for EOF on its stdin, then killed. Closing the channel (or losing the connection)
/// closes that stdin, so no reader is left running on the host (tail -F and journalctl -f alone
/// would wait for their next line to notice that nobody reads any more).
QString readerCommand(const QString &reader, bool follow) {
    const QString script =
        follow ? QString(reader + QStringLiteral(" & r=$!\ncat >/dev/null\n"
                                                 "kill \"$r\" 2>/dev/null\n"
                                                 "wait \"$r\" 2>/dev/null\nexit 0\n"))
               : QString(reader + QLatin1Char('\n'));
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script});
}

QString tailWords(int lines, bool follow) {
    return QStringLiteral("tail -n %1%2")
        .arg(lines)
        .arg(follow ? QStringLiteral(" -F") : QString());
}

} // namespace

QString RemoteLogs::workerLogCommand(const QString &site, quint16 port, int lines, bool follow) {
    // The site name is validated (isValidName) by the inventory and quoted anyway.
    const QString log = QStringLiteral("\"$HOME\"/.local/state/corral/workers/") +
                        shellQuote(site) + QStringLiteral("/%1.log").arg(port);
    const QString journal =
        shellCommand({QStringLiteral("journalctl"), QStringLiteral("-u"),
                      RemoteWorkers::instanceName(site, port), QStringLiteral("-n"),
                      QString::number(lines), QStringLiteral("--no-pager")}) +
        (follow ? QStringLiteral(" -f") : QString());
    // One reader, chosen on the host by the same rule restart() uses.
    const QString reader =
        QStringLiteral("{ if %1 && command -v journalctl >/dev/null 2>&1; then exec %2; "
                       "else exec %3 -- %4; fi; }")
            .arg(RemoteWorkers::systemdInstanceCondition(site, port), journal,
                 tailWords(lines, follow), log);
    return readerCommand(reader, follow);
}

QString RemoteLogs::fileLogCommand(const QString &path, int lines, bool follow) {
    return readerCommand(QStringLiteral("exec ") + tailWords(lines, follow) +
                             QStringLiteral(" -- ") + shellQuote(path),
                         follow);
}

Result<QList<RemoteLogSource>> RemoteLogs::sources(const Site &site, const QList<Host> &hosts,
                                                   const QString &only, int lines, bool follow) {
    if (!site.balancer)
        return fail(
            QStringLiteral("site %1 has no balancer: it is not a production site").arg(site.name));
    if (!isValidName(site.name))
        return fail(QStringLiteral("\"%1\" is not a valid site name").arg(site.name));
    QList<RemoteLogSource> all;
    QStringList names;
    for (const Backend &backend : site.backends) {
        names.append(backend.key());
        if (!only.isEmpty() && backend.key() != only) continue;
        auto host = workerHostFor(backend, site.balancer->host, hosts);
        if (!host) return fail(host.error());
        all.append({backend.key(), host.value(),
                    workerLogCommand(site.name, backend.port, lines, follow)});
    }
    names.append(BalancerName);
    if (only.isEmpty() || only == BalancerName) {
        if (!site.balancer->errorLog.isEmpty())
            all.append({BalancerName, site.balancer->host,
                        fileLogCommand(site.balancer->errorLog, lines, follow)});
        else if (only == BalancerName)
            return fail(QStringLiteral("site %1: its balancer has no errorLog (HAProxy logs to "
                                       "syslog; set the balancer's errorLog to read one)")
                            .arg(site.name));
    }
    if (!only.isEmpty() && all.isEmpty())
        return fail(QStringLiteral("site %1 has no backend %2 (logs: %3)")
                        .arg(site.name, only, names.join(QStringLiteral(", "))));
    return all;
}

Result<QList<QByteArray>> RemoteLogs::lastLines(SshSession &session, const RemoteLogSource &source,
                                                int timeoutMs) {
    auto result = session.exec(source.command, timeoutMs);
    if (!result) return fail(QStringLiteral("%1: %2").arg(source.name, result.error()));
    if (result->exitStatus != 0)
        return fail(QStringLiteral("%1 on %2: exit status %3: %4")
                        .arg(source.name, source.host)
                        .arg(result->exitStatus)
                        .arg(QString::fromUtf8(result->stdErr).trimmed()));
    QList<QByteArray> lines = result->stdOut.split('\n');
    if (!lines.isEmpty() && lines.last().isEmpty()) lines.removeLast();
    return lines;
}

Result<void>
RemoteLogs::follow(const QList<RemoteLogSource> &sources, const SessionResolver &sessions,
                   const std::function<void(const QString &, const QByteArray &)> &onLine,
                   const std::atomic<bool> &cancel) {
    struct Reader {
        const RemoteLogSource *source;
        std::unique_ptr<SshChannel> channel;
        QByteArray partial; ///< the start of a line whose newline has not come yet
    };
    std::vector<Reader> readers;
    for (const RemoteLogSource &source : sources) {
        auto session = sessions(source.host);
        if (!session) return fail(QStringLiteral("%1: %2").arg(source.name, session.error()));
        auto started = session.value()->start(source.command);
        if (!started) return fail(QStringLiteral("%1: %2").arg(source.name, started.error()));
        readers.push_back({&source, std::move(started).value(), {}});
    }
    if (readers.empty()) return {};
    // Reading one channel waits on its connection; the others are then read without waiting
    // much, so every source is looked at within about 100 ms.
    const int waitMs = std::max(10, 100 / int(readers.size()));
    while (!cancel.load()) {
        for (Reader &reader : readers) {
            auto chunk = reader.channel->read(waitMs);
            if (!chunk)
                return fail(QStringLiteral("%1 on %2: %3")
                                .arg(reader.source->name, reader.source->host, chunk.error()));
            reader.partial += chunk.value();
            qsizetype newline;
            while ((newline = reader.partial.indexOf('\n')) >= 0) {
                onLine(reader.source->name, reader.partial.left(newline));
                reader.partial.remove(0, newline + 1);
            }
            if (cancel.load()) break;
        }
    }
    for (Reader &reader : readers)
        reader.channel->release();
    return {};
}

} // namespace corral
