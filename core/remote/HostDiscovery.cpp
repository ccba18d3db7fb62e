#include "remote/HostDiscovery.h"

#include "ssh/SshSession.h"

#include <QElapsedTimer>

#include "metrics/ProcessSampler.h"
#include "ssh/ShellQuote.h"

#include <QHash>
#include <QRegularExpression>

namespace corral {

QString HostDiscovery::command() {
    // Fixed text, no user input; still run through sh -c so the login shell does not matter.
    // Tools may live in sbin directories that a non-root PATH lacks.
    static const char script[] =
        "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; export LC_ALL=C\n"
        "echo @@os; (. /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\")\n"
        "echo @@kernel; uname -srm\n"
        "echo @@stat; cat /proc/stat\n"
        "echo @@meminfo; cat /proc/meminfo\n"
        "echo @@loadavg; cat /proc/loadavg\n"
        "echo @@ss; ss -ltnpH 2>/dev/null || ss -ltn 2>/dev/null\n"
        "echo @@tools\n"
        "for t in systemctl nginx haproxy apache2 node; do\n"
        "  if command -v \"$t\" >/dev/null 2>&1; then echo \"$t yes\"; else echo \"$t no\"; fi\n"
        "done\n"
        "echo @@systemd; if [ -d /run/systemd/system ]; then echo running; else echo absent; fi\n";
    return shellCommand({QStringLiteral("sh"), QStringLiteral("-c"), QString::fromLatin1(script)});
}

static QHash<QString, QByteArray> sections(const QByteArray &output) {
    QHash<QString, QByteArray> result;
    QString current;
    for (const QByteArray &line : output.split('\n')) {
        if (line.startsWith("@@")) {
            current = QString::fromUtf8(line.mid(2).trimmed());
            result.insert(current, {});
            continue;
        }
        if (current.isEmpty()) continue;
        QByteArray &text = result[current];
        text += line;
        text += '\n';
    }
    return result;
}

QList<ListeningPort> HostDiscovery::parseListening(const QByteArray &ssOutput) {
    static const QRegularExpression user(QStringLiteral("\\(\\(\"(.*?)\",pid=(\\d+)"));
    QList<ListeningPort> result;
    for (const QByteArray &rawLine : ssOutput.split('\n')) {
        const QString line = QString::fromUtf8(rawLine).simplified();
        const QStringList fields = line.split(QLatin1Char(' '));
        // State Recv-Q Send-Q Local:Port Peer:Port [Process]
        if (fields.size() < 5 || fields.at(0) != QLatin1String("LISTEN")) continue;
        const QString local = fields.at(3);
        const qsizetype colon = local.lastIndexOf(QLatin1Char(':'));
        bool numeric = false;
        const uint port = local.mid(colon + 1).toUInt(&numeric);
        if (colon <= 0 || !numeric || port == 0 || port > 65535) continue;
        ListeningPort entry;
        entry.address = local.left(colon);
        if (entry.address.startsWith(QLatin1Char('[')) && entry.address.endsWith(QLatin1Char(']')))
            entry.address = entry.address.mid(1, entry.address.size() - 2);
        entry.address = entry.address.section(QLatin1Char('%'), 0, 0); // "127.0.0.53%lo"
        entry.port = quint16(port);
        if (const auto match = user.match(line); match.hasMatch()) {
            entry.process = match.captured(1);
            entry.pid = match.captured(2).toLongLong();
        }
        result.append(entry);
    }
    return result;
}

Result<HostFacts> HostDiscovery::parse(const QByteArray &output) {
    const auto parts = sections(output);
    if (!parts.contains(QStringLiteral("stat")) || !parts.contains(QStringLiteral("tools")))
        return fail(QStringLiteral("discovery output is incomplete (is /bin/sh a POSIX shell?)"));
    HostFacts facts;
    facts.os = QString::fromUtf8(parts.value(QStringLiteral("os"))).trimmed();
    facts.kernel = QString::fromUtf8(parts.value(QStringLiteral("kernel"))).trimmed();
    const QByteArray stat = parts.value(QStringLiteral("stat"));
    facts.cores = countCpus(std::string_view(stat.constData(), size_t(stat.size())));
    const QByteArray meminfo = parts.value(QStringLiteral("meminfo"));
    if (const auto memory =
            parseMeminfo(std::string_view(meminfo.constData(), size_t(meminfo.size())))) {
        facts.memoryTotalBytes = memory->totalBytes;
        facts.memoryAvailableBytes = memory->availableBytes;
    }
    const QByteArray loadavg = parts.value(QStringLiteral("loadavg"));
    if (const auto load =
            parseLoadavg(std::string_view(loadavg.constData(), size_t(loadavg.size())))) {
        facts.load1 = load->load1;
        facts.load5 = load->load5;
        facts.load15 = load->load15;
    }
    facts.listening = parseListening(parts.value(QStringLiteral("ss")));
    for (const QByteArray &line : parts.value(QStringLiteral("tools")).split('\n')) {
        const QList<QByteArray> words = line.split(' ');
        if (words.size() != 2) continue;
        const bool present = words.at(1) == "yes";
        if (words.at(0) == "systemctl") facts.systemctl = present;
        if (words.at(0) == "nginx") facts.nginx = present;
        if (words.at(0) == "haproxy") facts.haproxy = present;
        if (words.at(0) == "apache2") facts.apache2 = present;
        if (words.at(0) == "node") facts.node = present;
    }
    facts.systemdRunning = parts.value(QStringLiteral("systemd")).trimmed() == "running";
    return facts;
}

QString HostFacts::summary() const {
    const auto gib = [](qint64 bytes) {
        return QString::number(double(bytes) / (1 << 30), 'f', 1);
    };
    QStringList tools;
    const auto add = [&](bool present, const char *name) {
        if (present) tools.append(QString::fromLatin1(name));
    };
    add(nginx, "nginx");
    add(haproxy, "haproxy");
    add(apache2, "apache2");
    add(node, "node");
    QStringList ports;
    for (const ListeningPort &p : listening)
        ports.append(
            QString::number(p.port) +
            (p.process.isEmpty() ? QString() : QLatin1Char('(') + p.process + QLatin1Char(')')));
    ports.removeDuplicates();
    QString text;
    text += QStringLiteral("os:        %1\n").arg(os.isEmpty() ? QStringLiteral("?") : os);
    text += QStringLiteral("kernel:    %1\n").arg(kernel);
    text += QStringLiteral("cores:     %1\n").arg(cores);
    text += QStringLiteral("memory:    %1 GiB total, %2 GiB available\n")
                .arg(gib(memoryTotalBytes), gib(memoryAvailableBytes));
    text += QStringLiteral("load:      %1 %2 %3\n")
                .arg(load1, 0, 'f', 2)
                .arg(load5, 0, 'f', 2)
                .arg(load15, 0, 'f', 2);
    text += QStringLiteral("systemd:   %1\n")
                .arg(systemdRunning
                         ? QStringLiteral("running")
                         : (systemctl ? QStringLiteral("installed, not running")
                                      : QStringLiteral("absent (detached-process fallback)")));
    text += QStringLiteral("software:  %1\n")
                .arg(tools.isEmpty() ? QStringLiteral("-") : tools.join(QStringLiteral(", ")));
    text += QStringLiteral("listening: %1\n")
                .arg(ports.isEmpty() ? QStringLiteral("-") : ports.join(QLatin1Char(' ')));
    return text;
}

Result<ConnectionTest> HostDiscovery::testConnection(SshSession &session) {
    ConnectionTest outcome;
    QElapsedTimer timer;
    timer.start();
    const auto connected = session.connect();
    outcome.connectMs = timer.elapsed();
    outcome.fingerprint = session.serverFingerprint();
    outcome.knownFingerprint = session.knownFingerprint();
    outcome.keyEntry = session.serverKeyEntry();
    if (!connected) {
        outcome.hostKeyUnknown = session.lastFailure() == SshFailure::HostKeyUnknown;
        outcome.hostKeyChanged = session.lastFailure() == SshFailure::HostKeyChanged;
        outcome.error = connected.error();
        return outcome;
    }
    outcome.connected = true;
    const auto facts = session.exec(command(), 20000);
    if (!facts) {
        outcome.error = facts.error();
        return outcome;
    }
    auto parsed = parse(facts->stdOut);
    outcome.summary = parsed ? parsed->summary() : parsed.error();
    return outcome;
}

} // namespace corral
