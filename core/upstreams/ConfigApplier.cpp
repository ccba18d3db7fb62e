#include "upstreams/ConfigApplier.h"

#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <QThread>
#include <QUrl>

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

// A name unique to one apply, sortable by time: 20261202T101500123Z-k3x9q.
QString newOperationId() {
    return QDateTime::currentDateTimeUtc().toString(QStringLiteral("yyyyMMdd'T'HHmmsszzz'Z-'")) +
           QString::number(QRandomGenerator::global()->bounded(36 * 36 * 36 * 36), 36);
}

// How many backups of one file the state directory keeps (newest first).
constexpr int BackupsKept = 5;

QString fileNameOf(const QString &path) {
    return path.mid(path.lastIndexOf(QLatin1Char('/')) + 1);
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

QString RemoteBalancer::probeHostFor(const Site &site) {
    for (const QString &name : site.serverNames)
        if (!name.startsWith(QLatin1String("*."))) return name;
    return site.serverNames.isEmpty() ? QString()
                                      : QStringLiteral("www") + site.serverNames.first().mid(1);
}

Result<RemoteBalancer> RemoteBalancer::forSite(const Site &site) {
    if (!site.balancer) return fail(QStringLiteral("site %1 has no balancer").arg(site.name));
    auto target = fromSite(*site.balancer);
    if (!target) return target;
    target->site = site.name;
    target->probeHost = probeHostFor(site);
    target->stateDirectory = site.balancer->stateDirectory;
    return target;
}

QString RemoteBalancer::defaultStateDirectory() const {
    return QStringLiteral("/var/lib/corral/") + (site.isEmpty() ? fileNameOf(configPath) : site);
}

Result<BalancerStateDirectory> prepareStateDirectory(SshSession &session,
                                                     const RemoteBalancer &target, bool create) {
    const QString name = target.site.isEmpty() ? fileNameOf(target.configPath) : target.site;
    const QString wanted =
        target.stateDirectory.isEmpty() ? target.defaultStateDirectory() : target.stateDirectory;
    // $1 wanted, $2 the fallback's last component, $3 "configured" (no fallback), $4 "create".
    // Prints the directory; exit 3 when it is the fallback.
    static const char script[] =
        "fallback=\"${XDG_STATE_HOME:-$HOME/.local/state}/corral/balancer/$2\"; "
        "if [ \"$4\" != create ]; then "
        "  if [ -d \"$1\" ] || [ -n \"$3\" ] || [ ! -d \"$fallback\" ]; then printf '%s\\n' "
        "\"$1\"; "
        "  else printf '%s\\n' \"$fallback\"; exit 3; fi; exit 0; fi; "
        "if mkdir -p -- \"$1\" 2>/dev/null && [ -w \"$1\" ]; then printf '%s\\n' \"$1\"; exit 0; "
        "fi; "
        "if [ -n \"$3\" ]; then echo \"cannot create or write $1\" >&2; exit 1; fi; "
        "mkdir -p -- \"$fallback\" || exit 1; printf '%s\\n' \"$fallback\"; exit 3";
    auto result = session.exec(
        shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), QLatin1String(script),
                      QStringLiteral("sh"), wanted, name,
                      target.stateDirectory.isEmpty() ? QString() : QStringLiteral("configured"),
                      create ? QStringLiteral("create") : QString()}),
        30000);
    if (!result) return fail(result.error());
    if (result->exitStatus != 0 && result->exitStatus != 3)
        return fail(QStringLiteral("state directory %1: %2").arg(wanted, explain(result.value())));
    BalancerStateDirectory directory;
    directory.path = QString::fromUtf8(result->stdOut).trimmed();
    if (!directory.path.startsWith(QLatin1Char('/')))
        return fail(QStringLiteral("state directory: the host answered %1")
                        .arg(QString::fromUtf8(result->stdOut.left(200))));
    if (result->exitStatus == 3)
        directory.note = QStringLiteral("%1 is not writable by %2: using %3")
                             .arg(wanted,
                                  session.config().user.isEmpty() ? QStringLiteral("the SSH user")
                                                                  : session.config().user,
                                  directory.path);
    return directory;
}

QString applyOutcomeName(ApplyOutcome outcome) {
    switch (outcome) {
    case ApplyOutcome::DryRun:
        return QStringLiteral("dry-run");
    case ApplyOutcome::Unchanged:
        return QStringLiteral("unchanged");
    case ApplyOutcome::Applied:
        return QStringLiteral("applied");
    case ApplyOutcome::Failed:
        return QStringLiteral("failed");
    case ApplyOutcome::NotLive:
        return QStringLiteral("not-live");
    case ApplyOutcome::RolledBack:
        return QStringLiteral("rolled-back");
    case ApplyOutcome::RollbackFailed:
        return QStringLiteral("rollback-failed");
    case ApplyOutcome::HostStateUnknown:
        return QStringLiteral("host-state-unknown");
    }
    return QStringLiteral("failed");
}

QString describeApply(const ApplyReport &report, const QString &site, const QString &host) {
    const QString file =
        report.configPath.isEmpty() ? QStringLiteral("the config file") : report.configPath;
    const QString where = host + QLatin1Char(':') + file;
    const QString findOut =
        QStringLiteral("run `corralctl apply %1 --dry-run` to see the installed file and whether "
                       "it was verified live, then `corralctl apply %1` to converge")
            .arg(site);
    switch (report.outcome) {
    case ApplyOutcome::DryRun:
        if (!report.changed && !report.verifiedLive && !report.configPath.isEmpty())
            return QStringLiteral("dry run: nothing changed on %1; the installed file was never "
                                  "verified live: `corralctl apply %2` validates, reloads and "
                                  "verifies it")
                .arg(where, site);
        return QStringLiteral("dry run: nothing changed on %1").arg(where);
    case ApplyOutcome::Unchanged:
        return QStringLiteral("%1 is up to date (installed and verified live)").arg(where);
    case ApplyOutcome::Applied:
        if (report.converged)
            return QStringLiteral("applied %1 to %2 (the installed file had never been verified "
                                  "live: validated, reloaded and verified it)")
                .arg(site, where);
        return QStringLiteral("applied %1 to %2").arg(site, where);
    case ApplyOutcome::Failed:
        return QStringLiteral("%1 (nothing was installed: %2 is unchanged)")
            .arg(report.error, file);
    case ApplyOutcome::NotLive:
        return QStringLiteral("%1 (%2 holds this content but it is not verified live, and there "
                              "is no older verified file to go back to; fix the cause and run "
                              "`corralctl apply %3` again)")
            .arg(report.error, file, site);
    case ApplyOutcome::RolledBack:
        return QStringLiteral("%1 (rolled back: %2 and reloaded the balancer)")
            .arg(report.error,
                 report.backupPath.isEmpty()
                     ? QStringLiteral("removed the new %1 (there was no previous file)").arg(file)
                     : QStringLiteral("restored %1 from %2").arg(file, report.backupPath));
    case ApplyOutcome::RollbackFailed:
        return QStringLiteral("%1. The state of %2 on %3 is unknown: %4")
            .arg(report.error, site, host, findOut);
    case ApplyOutcome::HostStateUnknown: {
        // What is known depends on where the connection went: an install cut off may or may
        // not have renamed the file; after it, the file is the new one but whether the
        // balancer loaded it is not.
        const bool installed = report.failedStep == QLatin1String("validate") ||
                               report.failedStep == QLatin1String("reload") ||
                               report.failedStep == QLatin1String("verify");
        const QString known =
            installed
                ? QStringLiteral("%1 holds the new config, but whether the balancer runs it is "
                                 "not known")
                      .arg(file)
                : QStringLiteral("%1 may hold the old or the new config, and the balancer may "
                                 "run either")
                      .arg(file);
        return QStringLiteral("%1. The connection to %2 was lost during \"%3\" and no rollback "
                              "ran (the site's lock went with the connection): the state of %4 "
                              "on %2 is unknown. %5, and the step may still be running there; "
                              "%6")
            .arg(report.error, host, report.failedStep, site, known, findOut);
    }
    }
    return report.error;
}

Result<void> requireBackends(const Site &site) {
    if (!site.backends.isEmpty()) return {};
    return fail(QStringLiteral("site %1 has no backends: add one with 'corralctl add-backend %1' "
                               "or 'corralctl site update %1 --backends HOST:PORT,...'")
                    .arg(site.name));
}

QString describeDiffChanges(const QString &diff) {
    if (diff.isEmpty()) return QStringLiteral("no change");
    // Lines count only inside a hunk, by its header's line counts: a removed "-- x" reads
    // "--- x" there, which is a change and not a file header.
    static const QRegularExpression hunk(
        QStringLiteral("^@@ -[0-9]+(?:,([0-9]+))? \\+[0-9]+(?:,([0-9]+))? @@"));
    qsizetype added = 0;
    qsizetype removed = 0;
    qsizetype oldLeft = 0;
    qsizetype newLeft = 0;
    for (const QString &line : diff.split(QLatin1Char('\n'))) {
        if (oldLeft > 0 || newLeft > 0) {
            if (line.startsWith(QLatin1Char('+'))) {
                ++added;
                --newLeft;
            } else if (line.startsWith(QLatin1Char('-'))) {
                ++removed;
                --oldLeft;
            } else if (!line.startsWith(QLatin1Char('\\'))) { // "\ No newline at end of file"
                --oldLeft;
                --newLeft;
            }
            continue;
        }
        if (const auto match = hunk.match(line); match.hasMatch()) {
            oldLeft = match.hasCaptured(1) ? match.captured(1).toLongLong() : 1;
            newLeft = match.hasCaptured(2) ? match.captured(2).toLongLong() : 1;
        }
    }
    return QStringLiteral("%1 line%2 added, %3 removed")
        .arg(QString::number(added), added == 1 ? QString() : QStringLiteral("s"),
             QString::number(removed));
}

QStringList probeCommand(const QString &probeUrl, const QString &probeHost) {
    QStringList argv{QStringLiteral("curl"),       QStringLiteral("-sS"),
                     QStringLiteral("-o"),         QStringLiteral("/dev/null"),
                     QStringLiteral("-w"),         QStringLiteral("%{http_code}"),
                     QStringLiteral("--max-time"), QStringLiteral("5")};
    QString url = probeUrl;
    const QUrl parsed(probeUrl);
    if (!probeHost.isEmpty() && parsed.scheme() == QLatin1String("https") &&
        !parsed.host().isEmpty()) {
        // TLS picks the certificate (and nginx the server) by SNI, which curl takes from the
        // URL: name the site in the URL and connect to the URL's address.
        const QString port = QString::number(parsed.port(443));
        const QString address = parsed.host().contains(QLatin1Char(':'))
                                    ? QLatin1Char('[') + parsed.host() + QLatin1Char(']')
                                    : parsed.host();
        argv << QStringLiteral("--connect-to")
             << QStringLiteral("%1:%2:%3:%2").arg(probeHost, port, address);
        QUrl named = parsed;
        named.setHost(probeHost);
        url = named.toString(QUrl::FullyEncoded);
    } else if (!probeHost.isEmpty()) {
        argv << QStringLiteral("-H") << QStringLiteral("Host: ") + probeHost;
    }
    return argv << QStringLiteral("--") << url;
}

ConfigApplier::ConfigApplier(SshSession &session)
    : m_session(session) {}

QString ConfigApplier::temporaryPath(const QString &configPath, const QString &operation) {
    const qsizetype slash = configPath.lastIndexOf(QLatin1Char('/'));
    return configPath.left(slash + 1) + QLatin1Char('.') + configPath.mid(slash + 1) +
           QStringLiteral(".corral-new-") + operation;
}

QString ConfigApplier::backupPath(const QString &stateDirectory, const QString &configPath,
                                  const QString &operation) {
    return stateDirectory + QLatin1Char('/') + fileNameOf(configPath) + QLatin1Char('.') +
           operation + QStringLiteral(".bak");
}

QString ConfigApplier::markerPath(const QString &stateDirectory, const QString &configPath) {
    return stateDirectory + QLatin1Char('/') + fileNameOf(configPath) + QStringLiteral(".verified");
}

QByteArray ConfigApplier::markerText(const QByteArray &content, const QString &configPath) {
    return QCryptographicHash::hash(content, QCryptographicHash::Sha256).toHex() + "  " +
           configPath.toUtf8() + '\n';
}

void ConfigApplier::step(ApplyReport &report, const QString &name, bool ok, const QString &detail) {
    report.steps.append(ApplyStep{name, ok, detail});
    if (m_onStep) m_onStep(report.steps.last());
}

Result<ExecResult> ConfigApplier::exec(const QString &command, int timeoutMs,
                                       const QByteArray &input) {
    if (m_lost) return fail(QStringLiteral("the connection was lost earlier in this apply"));
    auto result = m_session.exec(command, timeoutMs, input);
    if (!result) {
        m_lost = true;
        return result;
    }
    if (m_session.connectionNumber() != m_connection) {
        // It ran, but over a new connection: whatever held the site for us went with the old.
        m_lost = true;
        return fail(QStringLiteral("the connection was lost and re-opened during the apply"));
    }
    return result;
}

Result<QByteArray> ConfigApplier::run(const QString &command, int timeoutMs,
                                      const QByteArray &input) {
    auto result = exec(command, timeoutMs, input);
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
    auto result = exec(shellCommand(bounded) + QStringLiteral("; exit $?"),
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
    auto result = exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                     QStringLiteral("stat -c %s -- \"$1\" 2>/dev/null || echo 0"),
                                     QStringLiteral("sh"), path}),
                       30000);
    if (!result) return 0;
    return QString::fromUtf8(result->stdOut).trimmed().toLongLong();
}

Result<QString> ConfigApplier::verify(const RemoteBalancer &target, qint64 errorLogOffset) {
    const QString probe = target.probeUrl.isEmpty()
                              ? QString()
                              : shellCommand(probeCommand(target.probeUrl, target.probeHost));
    // "GET URL (Host: NAME)", as the step's detail and its errors say it.
    const QString request =
        QStringLiteral("GET ") + target.probeUrl +
        (target.probeHost.isEmpty() ? QString()
                                    : QStringLiteral(" (Host: %1)").arg(target.probeHost));
    const auto emergSince = [&]() -> QString {
        if (target.errorLogPath.isEmpty()) return {};
        // Bytes appended since the reload; a log that shrank was rotated: read it whole.
        const QString script =
            QStringLiteral("size=$(stat -c %s -- \"$1\" 2>/dev/null) || exit 0; "
                           "if [ \"$size\" -lt \"$2\" ]; then start=1; else start=$(($2 + 1)); fi; "
                           "tail -c +\"$start\" -- \"$1\"");
        auto result = exec(
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
        if (probe.isEmpty()) return QStringLiteral("no probe configured");
        auto result = exec(probe, 15000);
        if (!result) return fail(QStringLiteral("verify: ") + result.error());
        const QString code = QString::fromUtf8(result->stdOut).trimmed();
        if (result->exitStatus == 0 && code.size() == 3 &&
            (code.startsWith(QLatin1Char('2')) || code.startsWith(QLatin1Char('3')))) {
            if (++good >= GoodInARow) {
                // One last look: the reload may have failed while the old config answered.
                if (const QString emerg = emergSince(); !emerg.isEmpty())
                    return fail(QStringLiteral("verify: %1 has a new [emerg] line: %2")
                                    .arg(target.errorLogPath, emerg));
                return QStringLiteral("%1 answered %2").arg(request, code);
            }
            QThread::msleep(100);
            continue;
        }
        good = 0;
        if (result->exitStatus == 127)
            return fail(QStringLiteral("verify: curl is not installed on the host"));
        if (code.size() == 3 && code.startsWith(QLatin1Char('5')))
            lastAnswer = QStringLiteral("answered %1, a server error: the site does not serve "
                                        "through the balancer (502, 503, 504: no backend "
                                        "answered it)")
                             .arg(code);
        else if (result->exitStatus == 0 || code.size() == 3)
            lastAnswer = QStringLiteral("answered ") + code;
        else
            lastAnswer = QStringLiteral("failed: ") + explain(result.value());
        if (deadline.hasExpired())
            return fail(QStringLiteral("verify: %1 %2").arg(request, lastAnswer));
        QThread::msleep(250);
    }
}

bool ConfigApplier::makeLive(ApplyReport &report, const RemoteBalancer &target,
                             const QByteArray &content) {
    const auto failed = [&](const QString &message) {
        const qsizetype colon = message.indexOf(QLatin1Char(':'));
        report.error = message;
        report.failedStep = message.left(colon);
        step(report, report.failedStep, false, message.mid(colon + 2));
        return false;
    };
    if (auto valid =
            runArgv(QStringLiteral("validate"), target.validateCommand, target.stepTimeoutSeconds);
        !valid)
        return failed(valid.error());
    step(report, QStringLiteral("validate"), true, shellCommand(target.validateCommand));

    const qint64 errorLogOffset = fileSize(target.errorLogPath);
    if (auto reloaded =
            runArgv(QStringLiteral("reload"), target.reloadCommand, target.stepTimeoutSeconds);
        !reloaded)
        return failed(reloaded.error());
    step(report, QStringLiteral("reload"), true, shellCommand(target.reloadCommand));

    auto verified = verify(target, errorLogOffset);
    if (!verified) return failed(verified.error());
    step(report, QStringLiteral("verify"), true, verified.value());

    // Only now is this content known to be live. A marker that cannot be written costs one
    // more validate and reload next time, nothing else.
    const QString marker = markerPath(report.stateDirectory, target.configPath);
    const QString script = QStringLiteral("cat > \"$1.tmp\" && mv -f -- \"$1.tmp\" \"$1\"");
    if (auto written = run(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script,
                                         QStringLiteral("sh"), marker}),
                           30000, markerText(content, target.configPath));
        !written)
        step(report, QStringLiteral("marker"), false,
             QStringLiteral("could not record the verified content in %1 (%2): the next apply "
                            "validates and reloads again")
                 .arg(marker, written.error()));
    else
        step(report, QStringLiteral("marker"), true, marker);
    return true;
}

void ConfigApplier::rollBack(ApplyReport &report, const RemoteBalancer &target, bool hadPrevious) {
    const QString path = target.configPath;
    const auto rollbackFailed = [&](const QString &why) {
        step(report, QStringLiteral("rollback"), false, why);
        report.error += QStringLiteral("; rollback failed: ") + why;
        report.outcome = m_lost ? ApplyOutcome::HostStateUnknown : ApplyOutcome::RollbackFailed;
        if (m_lost) report.failedStep = QStringLiteral("rollback");
    };
    // Restored under a hidden name first, so the file is replaced in one rename.
    const QString restoring = temporaryPath(path, QStringLiteral("restore-") + newOperationId());
    const QString command =
        hadPrevious
            ? shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                            QStringLiteral("cp -p -- \"$1\" \"$2\" && mv -f -- \"$2\" \"$3\""),
                            QStringLiteral("sh"), report.backupPath, restoring, path})
            : shellCommand(
                  {QStringLiteral("rm"), QStringLiteral("-f"), QStringLiteral("--"), path});
    if (auto restored = run(command); !restored)
        return rollbackFailed(QStringLiteral("restoring %1: %2").arg(path, restored.error()));
    step(report, QStringLiteral("rollback"), true,
         hadPrevious ? QStringLiteral("restored %1 from %2").arg(path, report.backupPath)
                     : QStringLiteral("removed %1 (there was no previous file)").arg(path));
    if (auto reloaded =
            runArgv(QStringLiteral("reload"), target.reloadCommand, target.stepTimeoutSeconds);
        !reloaded)
        return rollbackFailed(QStringLiteral("the previous file is back but ") + reloaded.error());
    step(report, QStringLiteral("rollback"), true,
         QStringLiteral("reloaded: ") + shellCommand(target.reloadCommand));
    report.outcome = ApplyOutcome::RolledBack;
    report.rolledBack = true;
}

ApplyReport ConfigApplier::apply(const Site &site, const RemoteBalancer &target, bool dryRun) {
    const auto renderFailed = [&](const QString &why) {
        ApplyReport report;
        report.configPath = target.configPath;
        report.error = QStringLiteral("render: ") + why;
        report.failedStep = QStringLiteral("render");
        step(report, QStringLiteral("render"), false, why);
        return report;
    };
    if (auto hasBackends = requireBackends(site); !hasBackends)
        return renderFailed(hasBackends.error());
    auto rendered = render(target.format, site, target.renderOptions);
    if (!rendered) return renderFailed(rendered.error());
    RemoteBalancer named = target;
    if (named.site.isEmpty()) named.site = site.name;
    if (named.probeHost.isEmpty()) named.probeHost = RemoteBalancer::probeHostFor(site);
    if (named.stateDirectory.isEmpty() && site.balancer)
        named.stateDirectory = site.balancer->stateDirectory;
    return applyContent(rendered->toUtf8(), named, dryRun);
}

ApplyReport ConfigApplier::applyContent(const QByteArray &content, const RemoteBalancer &target,
                                        bool dryRun) {
    ApplyReport report;
    m_connection = m_session.connectionNumber();
    m_lost = false;
    const QString path = target.configPath;
    report.configPath = path;
    // Before install: nothing changed on the host whatever went wrong.
    const auto failed = [&](const QString &name, const QString &why) {
        report.error = name + QStringLiteral(": ") + why;
        report.failedStep = name;
        report.outcome = ApplyOutcome::Failed;
        step(report, name, false, why);
        return report;
    };
    if (!path.startsWith(QLatin1Char('/')))
        return failed(QStringLiteral("read"),
                      QStringLiteral("\"%1\" is not an absolute path").arg(path));

    // read: the state directory, the file and the marker of what was last verified live
    auto state = prepareStateDirectory(m_session, target, !dryRun);
    if (!state) return failed(QStringLiteral("read"), state.error());
    report.stateDirectory = state->path;
    auto current = exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                      QLatin1String(readScript), QStringLiteral("sh"), path}),
                        60000);
    if (!current) return failed(QStringLiteral("read"), current.error());
    const bool hadPrevious = current->exitStatus != AbsentStatus;
    if (hadPrevious && current->exitStatus != 0)
        return failed(QStringLiteral("read"), explain(current.value()));
    const QString marker = markerPath(report.stateDirectory, path);
    auto verified = exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                       QLatin1String(readScript), QStringLiteral("sh"), marker}),
                         30000);
    if (!verified) return failed(QStringLiteral("read"), verified.error());
    report.verifiedLive = hadPrevious && verified->exitStatus == 0 &&
                          verified->stdOut == markerText(current->stdOut, path);
    step(report, QStringLiteral("read"), true,
         (hadPrevious ? QStringLiteral("%1 (%2 bytes, %3)")
                            .arg(path)
                            .arg(current->stdOut.size())
                            .arg(report.verifiedLive ? QStringLiteral("verified live")
                                                     : QStringLiteral("never verified live"))
                      : QStringLiteral("%1 does not exist yet").arg(path)) +
             QStringLiteral("; state in %1").arg(report.stateDirectory) +
             (state->note.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(state->note)));

    // diff, by the host's diff(1) with the new content on stdin: nothing is written for it.
    auto diff = exec(
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
         report.changed ? describeDiffChanges(report.diff) : QStringLiteral("no change"));
    if (dryRun) {
        report.outcome = ApplyOutcome::DryRun;
        return report;
    }
    if (!report.changed) {
        if (report.verifiedLive) {
            report.outcome = ApplyOutcome::Unchanged;
            return report;
        }
        // Installed by an apply that never saw it verified (its connection died, or an older
        // Corral without markers): make it live now instead of calling it up to date.
        step(report, QStringLiteral("converge"), true,
             QStringLiteral("installed file was never verified live: validating and reloading"));
        if (!makeLive(report, target, content)) {
            report.outcome = m_lost ? ApplyOutcome::HostStateUnknown : ApplyOutcome::NotLive;
            return report;
        }
        report.converged = true;
        report.applied = true;
        report.outcome = ApplyOutcome::Applied;
        return report;
    }

    const QString operation = newOperationId();
    // upload next to the target (hidden, unique), so the final move is a rename on one file
    // system and no include glob ever reads it
    const QString temporary = temporaryPath(path, operation);
    if (auto uploaded = m_session.upload(content, temporary, 0644); !uploaded)
        return failed(QStringLiteral("upload"), uploaded.error());
    if (m_session.connectionNumber() != m_connection) {
        m_lost = true; // uploaded over a new connection: not under this apply's lock
        return failed(QStringLiteral("upload"),
                      QStringLiteral("the connection was lost and re-opened during the apply "
                                     "(%1 may be left behind; no include glob reads it)")
                          .arg(temporary));
    }
    step(report, QStringLiteral("upload"), true, temporary);
    const auto dropTemporary = [&] {
        if (m_lost) return;
        (void)exec(shellCommand({QStringLiteral("rm"), QStringLiteral("-f"), QStringLiteral("--"),
                                 temporary}),
                   30000);
    };

    // The marker goes first: from here on the running config may change, and an apply that
    // is cut off must leave nothing that calls the result verified.
    if (hadPrevious) {
        report.backupPath = backupPath(report.stateDirectory, path, operation);
        if (auto saved = run(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                           QStringLiteral("cp -p -- \"$1\" \"$2\" && "
                                                          "rm -f -- \"$3\""),
                                           QStringLiteral("sh"), path, report.backupPath, marker}));
            !saved) {
            dropTemporary();
            report.backupPath.clear();
            return failed(QStringLiteral("backup"), saved.error());
        }
        step(report, QStringLiteral("backup"), true, report.backupPath);
    }

    if (auto moved = run(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                       QStringLiteral("rm -f -- \"$3\" && mv -f -- \"$1\" \"$2\""),
                                       QStringLiteral("sh"), temporary, path, marker}));
        !moved) {
        if (m_lost) {
            // The mv may or may not have happened.
            report.error = QStringLiteral("install: ") + moved.error();
            report.failedStep = QStringLiteral("install");
            report.outcome = ApplyOutcome::HostStateUnknown;
            step(report, QStringLiteral("install"), false, moved.error());
            return report;
        }
        dropTemporary();
        return failed(QStringLiteral("install"), moved.error());
    }
    step(report, QStringLiteral("install"), true, path);

    if (!makeLive(report, target, content)) {
        // Over a lost connection nothing more runs: the lock is gone and a step may still
        // be running on the host.
        if (m_lost) {
            report.outcome = ApplyOutcome::HostStateUnknown;
            return report;
        }
        rollBack(report, target, hadPrevious);
        return report;
    }
    report.applied = true;
    report.outcome = ApplyOutcome::Applied;

    // Keep the newest few backups of this file; older operations' are dropped.
    if (hadPrevious)
        (void)exec(shellCommand({QStringLiteral("sh"), QStringLiteral("-c"),
                                 QStringLiteral("cd -- \"$1\" && ls -1 -- \"$2\".*.bak 2>/dev/null "
                                                "| sort -r | tail -n +\"$3\" | "
                                                "while IFS= read -r f; do rm -f -- \"$f\"; done"),
                                 QStringLiteral("sh"), report.stateDirectory, fileNameOf(path),
                                 QString::number(BackupsKept + 1)}),
                   30000);
    return report;
}

} // namespace corral
