#include "upstreams/ConfigApplier.h"

#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QThread>

namespace corral {

namespace {

constexpr int AbsentStatus = 100;

// Reads a file, exiting with AbsentStatus when it does not exist (absent is not an error).
const char readScript[] = "if [ -e \"$1\" ]; then exec cat -- \"$1\"; else exit 100; fi";

// The lines a tool printed that explain a failure: its [emerg]/[alert]/ALERT lines when there
// are any, else everything (bounded), on one line.
QString explain(const ExecResult &result) {
    const QString text = QString(QString::fromUtf8(result.stdErr) + QLatin1Char('\n') +
                                 QString::fromUtf8(result.stdOut))
                             .trimmed();
    QStringList picked;
    const QStringList lines = text.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    for (const QString &line : lines)
        if (line.contains(QLatin1String("[emerg]")) || line.contains(QLatin1String("[alert]")) ||
            line.contains(QLatin1String("[ALERT]")))
            picked.append(line.trimmed());
    if (picked.isEmpty()) picked = lines;
    QString joined = picked.join(QStringLiteral("; "));
    if (joined.size() > 2000) joined = joined.left(2000) + QStringLiteral("...");
    if (joined.isEmpty()) joined = QStringLiteral("exit status %1").arg(result.exitStatus);
    return joined;
}

} // namespace

Result<RemoteBalancer> RemoteBalancer::fromSite(const SiteBalancer &balancer) {
    if (auto valid = balancer.validateFields(QStringLiteral("balancer")); !valid)
        return fail(valid.error());
    RemoteBalancer target;
    target.format = renderFormatFromName(balancer.format).value_or(RenderFormat::Nginx);
    target.configPath = balancer.configPath;
    target.validateCommand = balancer.validate;
    target.reloadCommand = balancer.reload;
    target.probeUrl = balancer.probeUrl;
    target.errorLogPath = balancer.errorLog;
    target.renderOptions.listenAddress = balancer.listenAddress;
    if (balancer.httpPort != 0) target.renderOptions.httpPort = balancer.httpPort;
    target.renderOptions.logDirectory = balancer.logDirectory;
    target.renderOptions.runtimeDirectory = balancer.runtimeDirectory;
    target.stepTimeoutSeconds = balancer.stepTimeout;
    return target;
}

ConfigApplier::ConfigApplier(SshSession &session)
    : m_session(session) {}

QString ConfigApplier::temporaryPath(const QString &configPath) {
    const QFileInfo info(configPath);
    return info.path() + QStringLiteral("/.") + info.fileName() + QStringLiteral(".corral-new");
}

QString ConfigApplier::backupPath(const QString &configPath) {
    return configPath + QStringLiteral(".corral-bak");
}

void ConfigApplier::step(ApplyReport &report, const QString &name, bool ok, const QString &detail) {
    report.steps.append(ApplyStep{name, ok, detail});
    if (m_onStep) m_onStep(report.steps.last());
}

Result<QByteArray> ConfigApplier::run(const QString &command, int timeoutMs,
                                      const QByteArray &input) {
    auto result = m_session.exec(command, timeoutMs, input);
    if (!result) return fail(result.error());
    if (result->exitStatus != 0) return fail(explain(result.value()));
    return result->stdOut;
}

Result<void> ConfigApplier::runArgv(const QString &stepName, const QStringList &argv,
                                    int timeoutSeconds) {
    // The host itself ends a command that hangs: closing the channel would leave it running,
    // and sshd may refuse the channel's signal. timeout(1) (coreutils) sends SIGTERM to the
    // command's process group at the limit and SIGKILL KillAfter seconds later (-k is
    // --kill-after, spelled so BusyBox understands it too); the local deadline is a backstop.
    constexpr int KillAfter = 5;
    const QStringList bounded =
        QStringList{QStringLiteral("timeout"), QStringLiteral("-k"), QString::number(KillAfter),
                    QString::number(timeoutSeconds)} +
        argv;
    QElapsedTimer elapsed;
    elapsed.start();
    // "; exit $?": when timeout(1) sends SIGKILL it reaches its whole process group, itself
    // included. A shell that waits for it reports that as status 137; one that exec'd it
    // would report a signal, which reaches us as no exit status at all.
    auto result = m_session.exec(shellCommand(bounded) + QStringLiteral("; exit $?"),
                                 (timeoutSeconds + KillAfter + 10) * 1000);
    if (!result) return fail(stepName + QStringLiteral(": ") + result.error());
    // 124: timed out and ended by SIGTERM; 137 (128 + SIGKILL): it ignored SIGTERM. A command
    // that returns 124 by itself before the limit is an ordinary failure.
    const int status = result->exitStatus;
    if ((status == 124 || status == 137) && elapsed.elapsed() >= qint64(timeoutSeconds) * 1000)
        return fail(QStringLiteral("%1: timed out after %2 s (%3); %4; balancer.stepTimeout sets "
                                   "the limit")
                        .arg(stepName)
                        .arg(timeoutSeconds)
                        .arg(shellCommand(argv),
                             status == 124
                                 ? QStringLiteral("the host stopped it")
                                 : QStringLiteral("the host killed it (it ignored SIGTERM)")));
    if (status == 127 && result->stdErr.contains("timeout: not found"))
        return fail(stepName + QStringLiteral(": timeout(1) from coreutils is not installed on "
                                              "the host (needed to end a command that hangs)"));
    if (status != 0) return fail(stepName + QStringLiteral(": ") + explain(result.value()));
    return {};
}

qint64 ConfigApplier::fileSize(const QString &path) {
    if (path.isEmpty()) return 0;
    // Absent counts as empty: everything written later is new.
    auto result =
        m_session.exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                     QStringLiteral("stat -c %s -- \"$1\" 2>/dev/null || echo 0"),
                                     QStringLiteral("sh"), path}),
                       30000);
    if (!result) return 0;
    return QString::fromUtf8(result->stdOut).trimmed().toLongLong();
}

Result<void> ConfigApplier::verify(const RemoteBalancer &target, qint64 errorLogOffset) {
    const QString probe =
        target.probeUrl.isEmpty()
            ? QString()
            : shellCommand({QStringLiteral("curl"), QStringLiteral("-sS"), QStringLiteral("-o"),
                            QStringLiteral("/dev/null"), QStringLiteral("-w"),
                            QStringLiteral("%{http_code}"), QStringLiteral("--max-time"),
                            QStringLiteral("5"), QStringLiteral("--"), target.probeUrl});
    const auto emergSince = [&]() -> QString {
        if (target.errorLogPath.isEmpty()) return {};
        // Bytes appended since the reload; a log that shrank was rotated: read it whole.
        const QString script =
            QStringLiteral("size=$(stat -c %s -- \"$1\" 2>/dev/null) || exit 0; "
                           "if [ \"$size\" -lt \"$2\" ]; then start=1; else start=$(($2 + 1)); fi; "
                           "tail -c +\"$start\" -- \"$1\"");
        auto result = m_session.exec(
            shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh"),
                          target.errorLogPath, QString::number(errorLogOffset)}),
            30000);
        if (!result) return {};
        for (const QByteArray &line : result->stdOut.split('\n'))
            // nginx: "[emerg]"; Apache: "[core:emerg]", "[proxy:emerg]"...
            if (line.contains("[emerg]") || line.contains(":emerg]"))
                return QString::fromUtf8(line.trimmed());
        return {};
    };

    // `nginx -s reload` only signals the master, and old workers keep answering until they
    // have noticed: one good answer may still come from the old config. So verify wants
    // several good answers in a row; a lasting bad answer fails at the deadline.
    constexpr int GoodInARow = 3;
    QThread::msleep(300);
    const QDeadlineTimer deadline(m_verifyTimeoutMs);
    QString lastAnswer;
    int good = 0;
    for (;;) {
        if (const QString emerg = emergSince(); !emerg.isEmpty())
            return fail(QStringLiteral("verify: %1 has a new [emerg] line: %2")
                            .arg(target.errorLogPath, emerg));
        if (probe.isEmpty()) return {};
        auto result = m_session.exec(probe, 15000);
        if (!result) return fail(QStringLiteral("verify: ") + result.error());
        const QString code = QString::fromUtf8(result->stdOut).trimmed();
        if (result->exitStatus == 0 && code.size() == 3 &&
            (code.startsWith(QLatin1Char('2')) || code.startsWith(QLatin1Char('3')))) {
            if (++good >= GoodInARow) {
                // One last look: the reload may have failed while the old config answered.
                if (const QString emerg = emergSince(); !emerg.isEmpty())
                    return fail(QStringLiteral("verify: %1 has a new [emerg] line: %2")
                                    .arg(target.errorLogPath, emerg));
                return {};
            }
            QThread::msleep(100);
            continue;
        }
        good = 0;
        if (result->exitStatus == 127)
            return fail(QStringLiteral("verify: curl is not installed on the host"));
        lastAnswer = result->exitStatus == 0 || code.size() == 3
                         ? QStringLiteral("answered ") + code
                         : QStringLiteral("failed: ") + explain(result.value());
        if (deadline.hasExpired())
            return fail(QStringLiteral("verify: GET %1 %2").arg(target.probeUrl, lastAnswer));
        QThread::msleep(250);
    }
}

void ConfigApplier::rollBack(ApplyReport &report, const RemoteBalancer &target, bool hadPrevious) {
    report.rolledBack = true;
    const QString command =
        hadPrevious
            ? shellCommand({QStringLiteral("mv"), QStringLiteral("-f"), QStringLiteral("--"),
                            backupPath(target.configPath), target.configPath})
            : shellCommand({QStringLiteral("rm"), QStringLiteral("-f"), QStringLiteral("--"),
                            target.configPath});
    if (auto restored = run(command); !restored) {
        step(report, QStringLiteral("rollback"), false,
             QStringLiteral("restoring %1 failed: %2").arg(target.configPath, restored.error()));
        report.error += QStringLiteral(" (rollback failed: %1)").arg(restored.error());
        return;
    }
    step(report, QStringLiteral("rollback"), true,
         hadPrevious
             ? QStringLiteral("restored %1 from %2")
                   .arg(target.configPath, backupPath(target.configPath))
             : QStringLiteral("removed %1 (there was no previous file)").arg(target.configPath));
    if (auto reloaded =
            runArgv(QStringLiteral("reload"), target.reloadCommand, target.stepTimeoutSeconds);
        !reloaded) {
        step(report, QStringLiteral("rollback"), false, reloaded.error());
        report.error += QStringLiteral(" (reload after rollback failed: %1)").arg(reloaded.error());
        return;
    }
    step(report, QStringLiteral("rollback"), true,
         QStringLiteral("reloaded: ") + shellCommand(target.reloadCommand));
}

ApplyReport ConfigApplier::apply(const Site &site, const RemoteBalancer &target, bool dryRun) {
    auto rendered = render(target.format, site, target.renderOptions);
    if (!rendered) {
        ApplyReport report;
        report.error = QStringLiteral("render: ") + rendered.error();
        step(report, QStringLiteral("render"), false, rendered.error());
        return report;
    }
    return applyContent(rendered->toUtf8(), target, dryRun);
}

ApplyReport ConfigApplier::applyContent(const QByteArray &content, const RemoteBalancer &target,
                                        bool dryRun) {
    ApplyReport report;
    const auto failed = [&](const QString &name, const QString &why) {
        report.error = name + QStringLiteral(": ") + why;
        step(report, name, false, why);
        return report;
    };
    const QString path = target.configPath;
    if (!path.startsWith(QLatin1Char('/')))
        return failed(QStringLiteral("read"),
                      QStringLiteral("\"%1\" is not an absolute path").arg(path));

    // read
    auto current =
        m_session.exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                     QLatin1String(readScript), QStringLiteral("sh"), path}),
                       60000);
    if (!current) return failed(QStringLiteral("read"), current.error());
    const bool hadPrevious = current->exitStatus != AbsentStatus;
    if (hadPrevious && current->exitStatus != 0)
        return failed(QStringLiteral("read"), explain(current.value()));
    step(report, QStringLiteral("read"), true,
         hadPrevious ? QStringLiteral("%1 (%2 bytes)").arg(path).arg(current->stdOut.size())
                     : QStringLiteral("%1 does not exist yet").arg(path));

    // diff, by the host's diff(1) with the new content on stdin: nothing is written for it.
    auto diff = m_session.exec(
        shellCommand({QStringLiteral("diff"), QStringLiteral("-u"), QStringLiteral("--label"),
                      hadPrevious ? path : QStringLiteral("/dev/null"), QStringLiteral("--label"),
                      path, hadPrevious ? path : QStringLiteral("/dev/null"), QStringLiteral("-")}),
        60000, content);
    if (!diff) return failed(QStringLiteral("diff"), diff.error());
    if (diff->exitStatus != 0 && diff->exitStatus != 1)
        return failed(QStringLiteral("diff"), explain(diff.value()));
    report.diff = QString::fromUtf8(diff->stdOut);
    report.changed = diff->exitStatus == 1;
    if (m_onDiff) m_onDiff(report.diff);
    step(report, QStringLiteral("diff"), true,
         report.changed
             ? QStringLiteral("%1 line(s) changed").arg(report.diff.count(QLatin1Char('\n')))
             : QStringLiteral("no change"));
    if (dryRun || !report.changed) return report;

    // upload next to the target, so the final move is a rename on one file system
    const QString temporary = temporaryPath(path);
    if (auto uploaded = m_session.upload(content, temporary, 0644); !uploaded)
        return failed(QStringLiteral("upload"), uploaded.error());
    step(report, QStringLiteral("upload"), true, temporary);
    const auto dropTemporary = [&] {
        (void)m_session.exec(shellCommand({QStringLiteral("rm"), QStringLiteral("-f"),
                                           QStringLiteral("--"), temporary}),
                             30000);
    };

    if (hadPrevious) {
        if (auto saved = run(shellCommand({QStringLiteral("cp"), QStringLiteral("-p"),
                                           QStringLiteral("--"), path, backupPath(path)}));
            !saved) {
            dropTemporary();
            return failed(QStringLiteral("backup"), saved.error());
        }
        step(report, QStringLiteral("backup"), true, backupPath(path));
    }

    if (auto moved = run(shellCommand(
            {QStringLiteral("mv"), QStringLiteral("-f"), QStringLiteral("--"), temporary, path}));
        !moved) {
        dropTemporary();
        return failed(QStringLiteral("install"), moved.error());
    }
    step(report, QStringLiteral("install"), true, path);

    const auto failAndRollBack = [&](const QString &message) {
        const qsizetype colon = message.indexOf(QLatin1Char(':'));
        report.error = message;
        step(report, message.left(colon), false, message.mid(colon + 2));
        rollBack(report, target, hadPrevious);
        return report;
    };

    if (auto valid =
            runArgv(QStringLiteral("validate"), target.validateCommand, target.stepTimeoutSeconds);
        !valid)
        return failAndRollBack(valid.error());
    step(report, QStringLiteral("validate"), true, shellCommand(target.validateCommand));

    const qint64 errorLogOffset = fileSize(target.errorLogPath);
    if (auto reloaded =
            runArgv(QStringLiteral("reload"), target.reloadCommand, target.stepTimeoutSeconds);
        !reloaded)
        return failAndRollBack(reloaded.error());
    step(report, QStringLiteral("reload"), true, shellCommand(target.reloadCommand));

    if (auto verified = verify(target, errorLogOffset); !verified)
        return failAndRollBack(verified.error());
    step(report, QStringLiteral("verify"), true,
         target.probeUrl.isEmpty() ? QStringLiteral("no probe configured")
                                   : QStringLiteral("GET %1 answered").arg(target.probeUrl));
    report.applied = true;
    return report;
}

} // namespace corral
