#include "remote/RemoteWorkers.h"

#include "remote/HostDiscovery.h"
#include "ssh/ShellQuote.h"
#include "ssh/SshSession.h"
#include "util/PortRule.h"

#include <QDeadlineTimer>
#include <QRegularExpression>
#include <QThread>

namespace corral {

namespace {

// Root runs the commands itself; anyone else needs passwordless sudo for system units.
const char sudoPrefix[] = "if [ \"$(id -u)\" = 0 ]; then s=; else s='sudo -n'; fi\n";

// Shell helpers shared by the fallback scripts. A pid file holds the pid and its start time
// (field 22 of /proc/PID/stat), so a pid reused by another process is never signalled, and
// "supervisor" on a third line when that pid is supervisorScript's loop (not an adopted
// process): readpid sets p, t and k.
const char aliveFunction[] =
    "alive() { s=$(sed 's/.*) //' \"/proc/$1/stat\" 2>/dev/null) && [ -n \"$s\" ] || return 1\n"
    "  case $s in Z*|X*) return 1;; esac\n"
    "  [ -z \"$2\" ] || [ \"$(echo \"$s\" | cut -d' ' -f20)\" = \"$2\" ]; }\n"
    "readpid() { p=; t=; k=; [ -f \"$1\" ] || return 1; { read -r p; read -r t; read -r k; } "
    "<\"$1\"\n"
    "  case $p in ''|*[!0-9]*) return 1;; esac; }\n";

// Whether process $1 is the worker $2 (a pid from its pid file) or runs under it: the same
// process, a member of its process group, or a descendant. Fields after "PID (comm) ":
// 1 state, 2 ppid, 3 pgrp. A worker may listen from a child (npm -> node) or after
// daemonizing (same process group).
const char oursFunction[] =
    "ours() { c=$1; i=0\n"
    "  [ \"$(sed 's/.*) //' \"/proc/$c/stat\" 2>/dev/null | cut -d' ' -f3)\" = \"$2\" ] && "
    "return 0\n"
    "  while [ -n \"$c\" ] && [ \"$c\" -gt 1 ] && [ $i -lt 32 ]; do\n"
    "    [ \"$c\" = \"$2\" ] && return 0\n"
    "    c=$(sed 's/.*) //' \"/proc/$c/stat\" 2>/dev/null | cut -d' ' -f2); i=$((i+1))\n"
    "  done; return 1; }\n";

// The fallback's supervisor, started detached (setsid) as `sh -c SCRIPT corral-supervisor
// LOGFILE COMMAND ARGS...`: it leads the worker's process group and is the pid the pid file
// names; the worker is its child in that group. It restarts the worker whenever it exits
// (like the unit's Restart=always), from the host, whether or not Corral is connected: after
// 150 ms, doubling up to 10 s, back to 150 ms once a run lasted 10 s; each restart is a line
// in the log. Like a local worker, one that exited 10 times within 60 s is given up on (the
// loop exits, so the worker shows as stopped). On SIGTERM (stopCommand sends it to this pid alone)
// it passes one SIGTERM to its process group (the worker and whatever the worker started there, as
// stop used to), waits for the worker and exits. The worker gets SIGTERM as well when the loop
// itself dies (setpriv --pdeathsig, where util-linux has it), so a SIGKILLed loop leaves no orphan
// holding the port. Nothing in the script is the site's: the log path and the argv are its
// arguments, never parsed as shell text.
const char supervisorScript[] =
    "lf=$1; shift\n"
    "leader=; [ \"$(sed 's/.*) //' /proc/$$/stat 2>/dev/null | cut -d' ' -f3)\" = \"$$\" ] && "
    "leader=1\n"
    "pd=; setpriv --pdeathsig TERM -- true >/dev/null 2>&1 && pd=1\n"
    "child=\n"
    "finish() { trap '' TERM INT\n"
    // The group when this loop leads one (setsid), else only the worker.
    "  if [ -n \"$leader\" ]; then kill -s TERM 0 2>/dev/null; "
    "elif [ -n \"$child\" ]; then kill -TERM \"$child\" 2>/dev/null; fi\n"
    "  [ -z \"$child\" ] || wait \"$child\" 2>/dev/null; exit 0; }\n"
    "trap finish TERM INT\n"
    "delay=150; exits=\n"
    "while :; do\n"
    "  began=$(date +%s)\n"
    "  if [ -n \"$pd\" ]; then setpriv --pdeathsig TERM -- \"$@\" </dev/null >>\"$lf\" 2>&1 &\n"
    "  else \"$@\" </dev/null >>\"$lf\" 2>&1 & fi\n"
    "  child=$!; wait \"$child\"; status=$?; child=\n"
    "  now=$(date +%s); [ $((now - began)) -lt 10 ] || delay=150\n"
    // Like local workers: one that keeps failing (10 exits within 60 s) is given up on.
    "  recent=; n=0; for e in $exits $now; do "
    "[ \"$e\" -lt $((now - 60)) ] || { recent=\"$recent $e\"; n=$((n + 1)); }; done; "
    "exits=$recent\n"
    "  if [ \"$n\" -ge 10 ]; then echo \"corral: worker exited with status $status, $n times "
    "within 60 s: not restarting it\" >>\"$lf\"; exit 1; fi\n"
    "  secs=$((delay / 1000)).$(printf %03d $((delay % 1000)))\n"
    "  echo \"corral: worker exited with status $status, restarting in ${secs}s\" >>\"$lf\"\n"
    // In the background so that SIGTERM interrupts the wait, not a 10 s sleep.
    "  sleep \"$secs\" & child=$!; wait \"$child\"; child=\n"
    "  delay=$((delay * 2)); [ \"$delay\" -le 10000 ] || delay=10000\n"
    "done\n";

QString workerDirectory(const QString &site) {
    // The site name is validated (isValidName) and quoted anyway; $HOME is left to the shell.
    return QStringLiteral("\"$HOME\"/.local/state/corral/workers/") + shellQuote(site);
}

QString sh(const QString &script) {
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script});
}

// systemd's unit-file quoting: a double-quoted word with C escapes; '%' starts a specifier
// and '$' a variable reference in ExecStart=, so both are doubled.
QString systemdWord(const QString &word, bool dollars) {
    QString quoted = QStringLiteral("\"");
    for (QChar c : word) {
        if (c == QLatin1Char('\\') || c == QLatin1Char('"'))
            quoted += QLatin1Char('\\') + QString(c);
        else if (c == QLatin1Char('\n'))
            quoted += QLatin1String("\\n");
        else if (c == QLatin1Char('%'))
            quoted += QLatin1String("%%");
        else if (c == QLatin1Char('$') && dollars)
            quoted += QLatin1String("$$");
        else
            quoted += c;
    }
    return quoted + QLatin1Char('"');
}

bool isVariableName(const QString &name) {
    static const QRegularExpression pattern(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
    return pattern.match(name).hasMatch();
}

} // namespace

static Result<ExecResult> run(SshSession &session, const QString &command, const QString &what,
                              int timeoutMs = 30000) {
    auto result = session.exec(command, timeoutMs);
    if (!result) return fail(what + QStringLiteral(": ") + result.error());
    if (result->exitStatus != 0)
        return fail(QStringLiteral("%1: %2: exit status %3: %4")
                        .arg(what, session.config().displayName())
                        .arg(result->exitStatus)
                        .arg(QString::fromUtf8(result->stdErr).trimmed()));
    return result;
}

QString RemoteWorkers::unitName(const QString &site) {
    return QStringLiteral("corral-%1@.service").arg(site);
}

QString RemoteWorkers::instanceName(const QString &site, quint16 port) {
    return QStringLiteral("corral-%1@%2").arg(site).arg(port);
}

Result<QString> RemoteWorkers::systemdUnit(const Site &site, const QString &user) {
    if (!isValidName(site.name))
        return fail(QStringLiteral("\"%1\" is not a valid site name").arg(site.name));
    if (!site.command.startsWith(QLatin1Char('/')))
        return fail(QStringLiteral("site %1: systemd needs an absolute command path, not \"%2\"")
                        .arg(site.name, site.command));
    QStringList exec{systemdWord(site.command, true)};
    for (const QString &arg : site.args)
        exec.append(systemdWord(arg, true).replace(Site::PortPlaceholder, QStringLiteral("%i")));
    QString unit;
    unit += QStringLiteral("# Generated by Corral; one instance per port: %1\n")
                .arg(instanceName(site.name, 3000));
    unit += QStringLiteral("[Unit]\nDescription=Corral worker of site %1 on port %i\n"
                           "After=network.target\n\n[Service]\nType=simple\n")
                .arg(site.name);
    unit += QStringLiteral("Environment=PORT=%i\n");
    for (auto it = site.environment.cbegin(); it != site.environment.cend(); ++it) {
        if (!isVariableName(it.key()) || it.key() == QLatin1String("PORT"))
            return fail(QStringLiteral("site %1: \"%2\" is not a usable environment variable name")
                            .arg(site.name, it.key()));
        unit += QStringLiteral("Environment=") +
                systemdWord(it.key() + QLatin1Char('=') + it.value(), false) + QLatin1Char('\n');
    }
    if (!site.workingDirectory.isEmpty()) {
        if (site.workingDirectory.contains(QLatin1Char('\n')))
            return fail(
                QStringLiteral("site %1: the working directory contains a newline").arg(site.name));
        unit += QStringLiteral("WorkingDirectory=") +
                QString(site.workingDirectory).replace(QLatin1Char('%'), QStringLiteral("%%")) +
                QLatin1Char('\n');
    }
    if (!user.isEmpty()) {
        if (!isValidName(user))
            return fail(QStringLiteral("\"%1\" is not a valid user name").arg(user));
        unit += QStringLiteral("User=%1\n").arg(user);
    }
    unit += QStringLiteral("ExecStart=") + exec.join(QLatin1Char(' ')) + QLatin1Char('\n');
    unit += QStringLiteral("Restart=always\nRestartSec=1\nKillMode=control-group\n"
                           "TimeoutStopSec=5\n\n[Install]\nWantedBy=multi-user.target\n");
    return unit;
}

QString RemoteWorkers::stagedUnitPath(const QString &site) {
    return QStringLiteral(".local/state/corral/units/") + unitName(site);
}

QString RemoteWorkers::verifyUnitCommand(const QString &site) {
    return sh(QStringLiteral("command -v systemd-analyze >/dev/null 2>&1 || { echo @@skipped; "
                             "exit 0; }\nexec systemd-analyze verify -- \"$HOME\"/") +
              shellQuote(stagedUnitPath(site)));
}

QString RemoteWorkers::installUnitCommand(const QString &site) {
    return sh(QString::fromLatin1(sudoPrefix) +
              QStringLiteral("$s install -m 0644 -- \"$HOME\"/%1 %2 && $s systemctl daemon-reload")
                  .arg(shellQuote(stagedUnitPath(site)),
                       shellQuote(QStringLiteral("/etc/systemd/system/") + unitName(site))));
}

QString RemoteWorkers::systemctlCommand(const QString &action, const QString &site, quint16 port) {
    return sh(QString::fromLatin1(sudoPrefix) +
              QStringLiteral("exec $s systemctl %1 -- %2")
                  .arg(shellQuote(action), shellQuote(instanceName(site, port))));
}

QString RemoteWorkers::logPath(const QString &site, quint16 port) {
    return QStringLiteral(".local/state/corral/workers/%1/%2.log").arg(site).arg(port);
}

QString RemoteWorkers::workerFile(const QString &home, const QString &site, quint16 port,
                                  const QString &suffix) {
    return home +
           QStringLiteral("/.local/state/corral/workers/%1/%2%3").arg(site).arg(port).arg(suffix);
}

Result<QString> RemoteWorkers::homeDirectory(SshSession &session) {
    auto printed = session.exec(QStringLiteral("printf '%s' \"$HOME\""), 15000);
    if (!printed) return fail(printed.error());
    const QString home = QString::fromUtf8(printed->stdOut);
    if (printed->exitStatus != 0 || !home.startsWith(QLatin1Char('/')))
        return fail(QStringLiteral("%1: $HOME of the SSH user is not an absolute path (\"%2\")")
                        .arg(session.config().displayName(), home));
    return home;
}

QString RemoteWorkers::inspectCommand(const QString &site, quint16 port) {
    QString script = QString::fromLatin1(aliveFunction) + QString::fromLatin1(oursFunction);
    script += QStringLiteral("PATH=\"$PATH:/usr/sbin:/sbin\"\nprintf 'home %s\\n' \"$HOME\"\n");
    script += QStringLiteral("pf=%1/\"$1\".pid\n").arg(workerDirectory(site));
    script += QStringLiteral(
        "if [ -e \"$pf\" ]; then echo 'pidfile present'; else echo 'pidfile absent'; fi\n"
        "w=; if readpid \"$pf\" && alive \"$p\" \"$t\"; then w=$p; echo \"pidworker $p\"; fi\n");
    script += QStringLiteral("if [ -d /run/systemd/system ] && [ -f %1 ] && "
                             "command -v systemctl >/dev/null 2>&1; then echo systemd; fi\n")
                  .arg(shellQuote(QStringLiteral("/etc/systemd/system/") + unitName(site)));
    // stat fields after "PID (comm) ": 2 ppid, 20 start time. cmdline, cwd and the cgroup's
    // unit go base64-encoded: any byte may be in them.
    script += QStringLiteral(
        "if ! command -v ss >/dev/null 2>&1 || ! out=$(ss -ltnpH \"sport = :$1\" 2>/dev/null); "
        "then echo 'listeners unknown'; exit 0; fi\n"
        "if [ -z \"$out\" ]; then echo 'listeners none'; exit 0; fi\n"
        "echo 'listeners some'\n"
        "for q in $(printf '%s\\n' \"$out\" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do\n"
        "  st=$(sed 's/.*) //' \"/proc/$q/stat\" 2>/dev/null) || continue\n"
        "  o=other; if [ -n \"$w\" ] && ours \"$q\" \"$w\"; then o=ours; fi\n"
        "  echo \"holder $q $(echo \"$st\" | cut -d' ' -f2) $(echo \"$st\" | cut -d' ' -f20) $o\"\n"
        "  echo \"argv $q $(base64 -w0 <\"/proc/$q/cmdline\" 2>/dev/null)\"\n"
        "  echo \"cwd $q $(readlink \"/proc/$q/cwd\" 2>/dev/null | tr -d '\\n' | base64 -w0)\"\n"
        "  echo \"unit $q $(grep -o '[^/]*\\.service' \"/proc/$q/cgroup\" 2>/dev/null | "
        "grep -v '^user@' | tail -n 1 | tr -d '\\n' | base64 -w0)\"\n"
        "done\n");
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh"),
                         QString::number(port)});
}

Result<WorkerInspection> RemoteWorkers::parseInspection(const QByteArray &output,
                                                        const QString &site, quint16 port) {
    WorkerInspection inspection;
    inspection.port = port;
    bool sawListeners = false;
    const auto holderFor = [&](qint64 pid) -> PortHolder * {
        for (PortHolder &holder : inspection.holders)
            if (holder.pid == pid) return &holder;
        return nullptr;
    };
    const auto decoded = [](const QByteArray &word) { return QByteArray::fromBase64(word); };
    for (const QByteArray &rawLine : output.split('\n')) {
        const QByteArray line = rawLine.trimmed();
        const qsizetype space = line.indexOf(' ');
        const QByteArray key = space < 0 ? line : line.left(space);
        const QByteArray rest = space < 0 ? QByteArray() : line.mid(space + 1);
        const QList<QByteArray> words = rest.split(' ');
        if (key == "home") {
            inspection.home = QString::fromUtf8(rest);
        } else if (key == "pidfile") {
            inspection.pidFilePresent = rest == "present";
        } else if (key == "pidworker") {
            inspection.pidFileWorker = rest.toLongLong();
        } else if (key == "systemd") {
            inspection.systemdUnit = true;
        } else if (key == "listeners") {
            sawListeners = true;
            inspection.listeners = rest == "none"   ? WorkerInspection::Listeners::None
                                   : rest == "some" ? WorkerInspection::Listeners::Some
                                                    : WorkerInspection::Listeners::Unknown;
        } else if (key == "holder" && words.size() == 4) {
            PortHolder holder;
            holder.pid = words.at(0).toLongLong();
            holder.parentPid = words.at(1).toLongLong();
            holder.startTime = QString::fromLatin1(words.at(2));
            holder.underPidFileWorker = words.at(3) == "ours";
            if (holder.pid > 0) inspection.holders.append(holder);
        } else if ((key == "argv" || key == "cwd" || key == "unit") && !words.isEmpty()) {
            PortHolder *holder = holderFor(words.at(0).toLongLong());
            if (!holder) continue;
            const QByteArray value = words.size() > 1 ? decoded(words.at(1)) : QByteArray();
            if (key == "argv") {
                QList<QByteArray> parts = value.split('\0');
                if (!parts.isEmpty() && parts.last().isEmpty()) parts.removeLast();
                for (const QByteArray &part : parts)
                    holder->argv.append(QString::fromUtf8(part));
            } else if (key == "cwd") {
                holder->workingDirectory = QString::fromUtf8(value);
            } else {
                holder->systemdUnit = QString::fromUtf8(value);
            }
        }
    }
    if (!sawListeners || !inspection.home.startsWith(QLatin1Char('/')))
        return fail(QStringLiteral("checking the worker of %1 on port %2: unexpected answer "
                                   "\"%3\"")
                        .arg(site)
                        .arg(port)
                        .arg(QString::fromUtf8(output.left(200)).trimmed()));
    inspection.pidFile = workerFile(inspection.home, site, port, QStringLiteral(".pid"));
    inspection.logFile = workerFile(inspection.home, site, port, QStringLiteral(".log"));
    return inspection;
}

Result<WorkerInspection> RemoteWorkers::inspect(SshSession &session, const QString &site,
                                                quint16 port) {
    if (!isValidName(site))
        return fail(QStringLiteral("\"%1\" is not a valid site name").arg(site));
    auto result = session.exec(inspectCommand(site, port), 30000);
    if (!result)
        return fail(QStringLiteral("checking the worker of %1 on port %2: %3")
                        .arg(site)
                        .arg(port)
                        .arg(result.error()));
    if (result->exitStatus != 0)
        return fail(QStringLiteral("checking the worker of %1 on port %2 on %3: exit status %4: %5")
                        .arg(site)
                        .arg(port)
                        .arg(session.config().displayName())
                        .arg(result->exitStatus)
                        .arg(QString::fromUtf8(result->stdErr).trimmed()));
    return parseInspection(result->stdOut, site, port);
}

QString RemoteWorkers::adoptCommand(const QString &site, quint16 port, qint64 pid,
                                    const QString &startTime) {
    QString script = QString::fromLatin1(aliveFunction);
    script += QStringLiteral("d=%1; mkdir -p \"$d\" || exit 1; pf=\"$d/$1.pid\"\n")
                  .arg(workerDirectory(site));
    script += QStringLiteral(
        "if readpid \"$pf\" && alive \"$p\" \"$t\"; then echo \"$pf already names the live "
        "pid $p\" >&2; exit 1; fi\n"
        "alive \"$2\" \"$3\" || { echo \"pid $2 has exited (or is another process now)\" >&2; "
        "exit 1; }\n"
        "printf '%s\\n%s\\n' \"$2\" \"$3\" >\"$pf.adopt\" && mv -f \"$pf.adopt\" \"$pf\" || exit "
        "1\n"
        "echo \"adopted pid $2\"\n");
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh"),
                         QString::number(port), QString::number(pid), startTime});
}

Result<void> RemoteWorkers::adopt(SshSession &session, const QString &site, quint16 port,
                                  qint64 pid, const QString &startTime) {
    if (!isValidName(site))
        return fail(QStringLiteral("\"%1\" is not a valid site name").arg(site));
    static const QRegularExpression number(QStringLiteral("^[0-9]+$"));
    if (pid <= 0 || !number.match(startTime).hasMatch())
        return fail(QStringLiteral("adopting pid %1 on port %2: no start time").arg(pid).arg(port));
    auto adopted = run(session, adoptCommand(site, port, pid, startTime),
                       QStringLiteral("adopting pid %1 as the worker of %2 on port %3")
                           .arg(pid)
                           .arg(site)
                           .arg(port));
    if (!adopted) return fail(adopted.error());
    return {};
}

QStringList RemoteWorkers::templateArguments(const QStringList &argv, quint16 port,
                                             bool *containsPort) {
    const QRegularExpression number(QStringLiteral("(?<![0-9])%1(?![0-9])").arg(port));
    QStringList result = argv;
    bool found = false;
    for (qsizetype i = 1; i < result.size(); ++i) {
        if (!number.match(result.at(i)).hasMatch()) continue;
        result[i].replace(number, Site::PortPlaceholder);
        found = true;
    }
    if (containsPort) *containsPort = found;
    return result;
}

Result<QString> RemoteWorkers::startCommand(const Site &site, quint16 port) {
    if (!isValidName(site.name))
        return fail(QStringLiteral("\"%1\" is not a valid site name").arg(site.name));
    if (site.command.isEmpty())
        return fail(QStringLiteral("site %1 has no command to run").arg(site.name));
    QString script = QString::fromLatin1(aliveFunction);
    script += QStringLiteral("d=%1; mkdir -p \"$d\" || exit 1\n").arg(workerDirectory(site.name));
    script += QStringLiteral("pf=\"$d/%1.pid\"; lf=\"$d/%1.log\"\n").arg(port);
    script += QStringLiteral("if readpid \"$pf\" && alive \"$p\" \"$t\"; then echo \"already "
                             "running pid $p\"; exit 0; fi\n");
    if (!site.workingDirectory.isEmpty())
        script += QStringLiteral("cd -- %1 || exit 1\n").arg(shellQuote(site.workingDirectory));
    for (auto it = site.environment.cbegin(); it != site.environment.cend(); ++it) {
        if (!isVariableName(it.key()))
            return fail(QStringLiteral("site %1: \"%2\" is not a usable environment variable name")
                            .arg(site.name, it.key()));
        script += QStringLiteral("export %1=%2\n").arg(it.key(), shellQuote(it.value()));
    }
    script += QStringLiteral("export PORT=%1\n").arg(port);
    // setsid: the supervisor leads its own process group with the worker in it, so stop can
    // reach the whole tree.
    script += QStringLiteral("s=; command -v setsid >/dev/null 2>&1 && s=setsid\n");
    QStringList supervised{QStringLiteral("sh"), QStringLiteral("-c"),
                           QString::fromLatin1(supervisorScript),
                           QStringLiteral("corral-supervisor")};
    // The log path stays a shell expansion ("$lf", under "$HOME"); the rest is quoted words.
    script += QStringLiteral("$s nohup %1 \"$lf\" %2 </dev/null >>\"$lf\" 2>&1 &\n")
                  .arg(shellCommand(supervised),
                       shellCommand(QStringList{site.command} + site.argsForPort(port)));
    script += QStringLiteral(
        "p=$!; t=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20)\n"
        "printf '%s\\n%s\\nsupervisor\\n' \"$p\" \"$t\" >\"$pf\"; echo \"pid $p\"\n");
    return sh(script);
}

QString RemoteWorkers::stopCommand(const QString &site, quint16 port, int graceMs) {
    QString script = QString::fromLatin1(aliveFunction);
    script += QStringLiteral("pf=%1/%2.pid\n").arg(workerDirectory(site)).arg(port);
    script +=
        QStringLiteral(
            // gone: the pid file's process has exited and, for a supervisor, every process of
            // its group (the worker and whatever it started there) too. Zombies do not count
            // (kill -0 would): whoever reaps orphans on the host may take its time.
            "groupalive() { for f in /proc/[0-9]*/stat; do "
            "read -r l 2>/dev/null <\"$f\" || continue; l=${l##*\") \"}; set -- $l\n"
            "  [ \"$3\" = \"$p\" ] && [ \"$1\" != Z ] && [ \"$1\" != X ] && return 0; done; "
            "return 1; }\n"
            "gone() { ! alive \"$p\" \"$t\" && { [ \"$k\" != supervisor ] || ! groupalive; }; }\n"
            "if readpid \"$pf\" && alive \"$p\" \"$t\"; then\n"
            // The supervisor passes one SIGTERM to its group; a group signal from here too
            // would give the worker two (a second one often means "quit now").
            "  if [ \"$k\" = supervisor ]; then kill -TERM \"$p\" 2>/dev/null; else\n"
            "  kill -s TERM -- \"-$p\" 2>/dev/null || kill -TERM \"$p\" 2>/dev/null; fi\n"
            "  i=0; while ! gone && [ $i -lt %1 ]; do sleep 0.1; i=$((i+1)); done\n"
            "  if ! gone; then kill -s KILL -- \"-$p\" 2>/dev/null || "
            "kill -KILL \"$p\" 2>/dev/null; fi\n"
            // Checked, not assumed: a process in uninterruptible sleep outlives SIGKILL a while.
            "  i=0; while ! gone && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done\n"
            "  if ! gone; then echo \"pid $p (or a process of its group) is still alive after "
            "SIGKILL\" >&2; exit 1; fi\n"
            "  echo \"stopped pid $p\"\n"
            "else echo 'not running'; fi\n"
            "rm -f \"$pf\" && [ ! -e \"$pf\" ] || { echo \"cannot remove $pf\" >&2; exit 1; }\n")
            .arg(std::max(1, graceMs / 100));
    return sh(script);
}

QString RemoteWorkers::statusCommand(const QString &site, const QList<quint16> &ports) {
    QStringList words;
    for (quint16 port : ports)
        words.append(QString::number(port));
    QString script = QString::fromLatin1(aliveFunction);
    script += QStringLiteral("d=%1\nfor port in %2; do\n"
                             "  if readpid \"$d/$port.pid\" && alive \"$p\" \"$t\"; then "
                             "echo \"$port running $p\"; else echo \"$port stopped\"; fi\n"
                             "done\n")
                  .arg(workerDirectory(site), words.join(QLatin1Char(' ')));
    return sh(script);
}

QString RemoteWorkers::portHolderCommand(qint64 pid, quint16 port) {
    const QString script =
        QString::fromLatin1(oursFunction) +
        QStringLiteral(
            "PATH=\"$PATH:/usr/sbin:/sbin\"\n"
            "command -v ss >/dev/null 2>&1 || exit 3\n"
            "out=$(ss -ltnpH \"sport = :$2\" 2>/dev/null) || exit 3\n"
            "[ -n \"$out\" ] || exit 2\n"
            "others=\n"
            "for q in $(printf '%s\\n' \"$out\" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); "
            "do\n"
            "  if ours \"$q\" \"$1\"; then echo worker; exit 0; fi; others=\"$others $q\"\n"
            "done\n"
            "echo \"other$others\"; exit 1\n");
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), script, QStringLiteral("sh"),
                         QString::number(pid), QString::number(port)});
}

QList<RemoteWorkerStatus> RemoteWorkers::parseStatus(const QByteArray &output) {
    QList<RemoteWorkerStatus> result;
    for (const QByteArray &line : output.split('\n')) {
        const QList<QByteArray> words = line.trimmed().split(' ');
        if (words.size() < 2) continue;
        RemoteWorkerStatus status;
        status.port = quint16(words.at(0).toUInt());
        status.running = words.at(1) == "running";
        if (status.running && words.size() > 2) status.pid = words.at(2).toLongLong();
        if (status.port) result.append(status);
    }
    return result;
}

QString RemoteWorkers::listeningPortsCommand() {
    // Every TCP socket, not only listeners: a port held as the local end of an outgoing
    // connection (a base port inside the ephemeral range) cannot be bound by a worker either.
    return sh(QStringLiteral("PATH=\"$PATH:/usr/sbin:/sbin\"; ss -tanH 2>/dev/null || ss -tan"));
}

QSet<quint16> RemoteWorkers::parseListeningPorts(const QByteArray &ssOutput) {
    QSet<quint16> ports;
    for (const QByteArray &rawLine : ssOutput.split('\n')) {
        // State Recv-Q Send-Q Local:Port Peer:Port [Process], any state.
        const QList<QByteArray> fields = rawLine.simplified().split(' ');
        if (fields.size() < 5 || fields.at(0) == "State") continue;
        const QByteArray &local = fields.at(3);
        bool numeric = false;
        const uint port = local.mid(local.lastIndexOf(':') + 1).toUInt(&numeric);
        if (numeric && port > 0 && port <= 65535) ports.insert(quint16(port));
    }
    return ports;
}

Result<QList<quint16>> RemoteWorkers::allocatePorts(const QSet<quint16> &listening,
                                                    quint16 basePort, int count,
                                                    const QList<quint16> &remembered,
                                                    const QSet<quint16> &reserved) {
    return pickPorts(
        count, basePort, remembered, reserved,
        [&](quint16 port) { return listening.contains(port); }, QStringLiteral("the host"));
}

Result<QList<quint16>> RemoteWorkers::allocatePorts(SshSession &session, const Site &site,
                                                    int count, const QSet<quint16> &reserved) {
    auto listed = run(session, listeningPortsCommand(), QStringLiteral("listing ports"));
    if (!listed) return fail(listed.error());
    return allocatePorts(parseListeningPorts(listed->stdOut), site.basePort, count, site.ports,
                         reserved);
}

Result<qint64> RemoteWorkers::start(SshSession &session, const Site &site, quint16 port) {
    auto command = startCommand(site, port);
    if (!command) return fail(command.error());
    const QString what = QStringLiteral("starting %1 on port %2").arg(site.name).arg(port);
    auto started = run(session, command.value(), what);
    if (!started) return fail(started.error());
    static const QRegularExpression pid(QStringLiteral("pid (\\d+)"));
    const auto match = pid.match(QString::fromUtf8(started->stdOut));
    if (!match.hasMatch())
        return fail(what + QStringLiteral(": unexpected answer \"%1\"")
                               .arg(QString::fromUtf8(started->stdOut).trimmed()));
    return match.captured(1).toLongLong();
}

Result<void> RemoteWorkers::stop(SshSession &session, const QString &site, quint16 port,
                                 int graceMs) {
    auto stopped =
        run(session, stopCommand(site, port, graceMs),
            QStringLiteral("stopping %1 on port %2").arg(site).arg(port), graceMs + 30000);
    if (!stopped) return fail(stopped.error());
    return {};
}

Result<QList<RemoteWorkerStatus>> RemoteWorkers::status(SshSession &session, const QString &site,
                                                        const QList<quint16> &ports) {
    auto listed = run(session, statusCommand(site, ports),
                      QStringLiteral("checking workers of %1").arg(site));
    if (!listed) return fail(listed.error());
    return parseStatus(listed->stdOut);
}

Result<QList<quint16>> RemoteWorkers::restartStopped(SshSession &session, const Site &site,
                                                     const QList<quint16> &ports) {
    auto current = status(session, site.name, ports);
    if (!current) return fail(current.error());
    QList<quint16> restarted;
    for (const RemoteWorkerStatus &worker : current.value()) {
        if (worker.running) continue;
        if (auto started = start(session, site, worker.port); !started)
            return fail(started.error());
        restarted.append(worker.port);
    }
    return restarted;
}

QString RemoteWorkers::systemdInstanceCondition(const QString &site, quint16 port) {
    return QStringLiteral("[ -d /run/systemd/system ] && [ -f %1 ] && [ ! -f %2/%3.pid ] && "
                          "command -v systemctl >/dev/null 2>&1")
        .arg(shellQuote(QStringLiteral("/etc/systemd/system/") + unitName(site)),
             workerDirectory(site))
        .arg(port);
}

QString RemoteWorkers::restartModeCommand(const QString &site, quint16 port) {
    return sh(QStringLiteral("if %1; then echo systemd; else echo fallback; fi")
                  .arg(systemdInstanceCondition(site, port)));
}

Result<qint64> RemoteWorkers::restart(SshSession &session, const Site &site, quint16 port,
                                      int graceMs) {
    const QString what = QStringLiteral("restarting %1 on port %2").arg(site.name).arg(port);
    auto mode = run(session, restartModeCommand(site.name, port), what);
    if (!mode) return fail(mode.error());
    if (mode->stdOut.trimmed() == "systemd") {
        auto restarted = run(session, systemctlCommand(QStringLiteral("restart"), site.name, port),
                             what, 120000);
        if (!restarted) return fail(restarted.error());
        auto shown = session.exec(
            shellCommand({QStringLiteral("systemctl"), QStringLiteral("show"), QStringLiteral("-p"),
                          QStringLiteral("MainPID"), QStringLiteral("--value"),
                          QStringLiteral("--"), instanceName(site.name, port)}),
            30000);
        return shown && shown->exitStatus == 0
                   ? QString::fromUtf8(shown->stdOut).trimmed().toLongLong()
                   : qint64(0);
    }
    if (auto stopped = stop(session, site.name, port, graceMs); !stopped)
        return fail(stopped.error());
    return start(session, site, port);
}

QString RemoteWorkers::healthUrl(const Site &site, quint16 port, const QString &address) {
    return corral::healthUrl(Endpoint{address, port}, site.healthPath);
}

Result<void> RemoteWorkers::waitHealthy(SshSession &session, const Site &site, quint16 port,
                                        int timeoutMs, const QString &address) {
    // Healthy: the health path answers 2xx, or (without one) the port answers at all.
    const QString url = healthUrl(site, port, address);
    const QString probe = shellCommand(
        {QStringLiteral("curl"), QStringLiteral("-sS"), QStringLiteral("-o"),
         QStringLiteral("/dev/null"), QStringLiteral("-w"), QStringLiteral("%{http_code}"),
         QStringLiteral("--max-time"), QStringLiteral("2"), QStringLiteral("--"), url});
    const QDeadlineTimer deadline(timeoutMs);
    QString last;
    for (;;) {
        auto result = session.exec(probe, 10000);
        if (!result) return fail(result.error());
        const QString code = QString::fromUtf8(result->stdOut).trimmed();
        const bool answered =
            result->exitStatus == 0 && code.size() == 3 && code != QLatin1String("000");
        if (answered && (site.healthPath.isEmpty() || code.startsWith(QLatin1Char('2')))) return {};
        if (result->exitStatus == 127)
            return fail(
                QStringLiteral("curl is not installed on %1").arg(session.config().displayName()));
        last = answered ? QStringLiteral("answered ") + code
                        : QString::fromUtf8(result->stdErr).trimmed();
        if (deadline.hasExpired())
            return fail(QStringLiteral("the worker on port %1 did not become healthy within "
                                       "%2 ms (GET %3 %4)")
                            .arg(port)
                            .arg(timeoutMs)
                            .arg(url, last));
        QThread::msleep(200);
    }
}

Result<bool> RemoteWorkers::stageAndVerifyUnit(SshSession &session, const Site &site,
                                               const QString &user) {
    auto unit = systemdUnit(site, user);
    if (!unit) return fail(unit.error());
    const QString staged = stagedUnitPath(site.name);
    auto made = run(session,
                    shellCommand({QStringLiteral("mkdir"), QStringLiteral("-p"),
                                  QStringLiteral("--"), staged.section(QLatin1Char('/'), 0, -2)}),
                    QStringLiteral("staging the unit of %1").arg(site.name));
    if (!made) return fail(made.error());
    if (auto uploaded = session.upload(unit->toUtf8(), staged); !uploaded)
        return fail(uploaded.error());
    auto verified = session.exec(verifyUnitCommand(site.name), 60000);
    if (!verified) return fail(verified.error());
    if (verified->stdOut.contains("@@skipped")) return false;
    if (verified->exitStatus != 0)
        return fail(QStringLiteral("systemd-analyze verify %1 on %2: %3")
                        .arg(unitName(site.name), session.config().displayName(),
                             QString::fromUtf8(verified->stdErr + verified->stdOut).trimmed()));
    return true;
}

Result<void> RemoteWorkers::installUnit(SshSession &session, const Site &site,
                                        const QString &user) {
    if (auto verified = stageAndVerifyUnit(session, site, user); !verified)
        return fail(verified.error());
    auto installed = run(session, installUnitCommand(site.name),
                         QStringLiteral("installing %1").arg(unitName(site.name)));
    if (!installed) return fail(installed.error());
    return {};
}

} // namespace corral
