// corralctl check (issue 22): whether a site's sessions survive its requests moving between
// workers, for a local site (through the agent's AgentSiteControl: its workers and embedded
// balancer asked from here) and a production one (curl on the workers' hosts and the
// balancer's host over SSH, as the console's RemoteSiteControl does). The check itself is
// core/affinity; this parses, runs it and prints the report.

#include "affinity/SiteAffinity.h"
#include "agent/AgentClient.h"
#include "agent/AgentSiteControl.h"
#include "cli/Context.h"
#include "model/FieldText.h"
#include "ssh/HostSessions.h"

#include <QEventLoop>
#include <QJsonDocument>

namespace corral::cli {

namespace {

/// corralctl check's exit codes (its help says the same).
enum CheckExit {
    NoFixNeeded = 0,
    FixNeeded = 1,
    BadUsage = 2,
    CouldNotCheck = 3,
    // Ran, but could not tell: not 0, so `corralctl check SITE && deploy` does not read an
    // unanswered question as a clean bill.
    Inconclusive = 4
};

/// A --path longer than this is refused: the check sends it in a request line, and no site
/// keeps its session page behind a 2 KiB URL.
constexpr qsizetype MaxPathBytes = 2048;

const char checkUsage[] =
    "Usage: corralctl check SITE [--path P]... [--json] [--evidence] [--accept-new]\n"
    "\n"
    "Checks whether SITE's sessions survive its requests moving between workers: an app that\n"
    "keeps sessions in one process (express-session's memory store, Sails' default) logs\n"
    "users out when the balancer sends their next request to another worker, and long-polling\n"
    "transports (socket.io, SockJS) answer \"Session ID unknown\" on any worker but the one\n"
    "that opened the session. Two workers (A and B) are asked directly: what A hands out (a\n"
    "session cookie, a socket.io or SockJS session) is replayed to B, and the balancer is asked\n"
    "whether its policy keeps a session on one worker. Nothing is changed on the site.\n"
    "\n"
    "A local site must be running in the Corral agent: its workers are asked on 127.0.0.1 and\n"
    "its embedded balancer on its --listen address, from this machine. A production site (one\n"
    "with a balancer on an SSH host) is asked with curl on each worker's host and on the\n"
    "balancer's host, over SSH (curl must be installed there).\n"
    "\n"
    "Options:\n"
    "  --path P       a path whose cookies are checked, starting with '/' (at most 2 KiB, no\n"
    "                 spaces or control characters); repeat for each (default: /). Give the\n"
    "                 page that starts a session, e.g. --path /login\n"
    "  --json         one object: site, policy, verdict, summary, fixes, error (when the\n"
    "                 check could not run) and findings (kind, path, cookie, verdict, summary,\n"
    "                 evidence: endpoint, request, status, answer), evidence always included\n"
    "  --evidence     also print, under each finding, the requests made and what each\n"
    "                 worker or the balancer answered\n"
    "  --accept-new   (production) trust the host key of a host never seen before\n"
    "\n"
    "Output: the verdict and the site's policy, a one-sentence summary, each finding with its\n"
    "verdict, then the fixes, most direct first. Verdicts: stateless (no session kept that\n"
    "Corral can see), shared (every worker knows every session), per-process (an HTTP\n"
    "session cookie is known only to the worker that set it), sticky-required (long-polling\n"
    "sessions are per worker and the policy is not sticky), sticky-verified (they are, and the\n"
    "sticky policy keeps each on its worker), sticky-broken (sticky policy, yet polls of one\n"
    "session reached another worker), websocket-only (polling refused, WebSocket works),\n"
    "inconclusive (errors or timeouts: the evidence says why).\n"
    "The usual fix: 'corralctl site update SITE --policy sticky-cookie' (a local site running\n"
    "in the agent follows at once), then 'corralctl apply SITE' for a production site; or keep\n"
    "sessions in a store every worker shares.\n"
    "\n"
    "Exit codes: 0 no fix is needed (stateless, shared, sticky-verified, websocket-only);\n"
    "1 a fix is needed (per-process, sticky-required, sticky-broken); 2 the command line is\n"
    "malformed, a --path is invalid or SITE is unknown; 3 the check could not run (the site\n"
    "is not running, fewer than two workers answer, a host cannot be reached...: the reason\n"
    "on stderr); 4 inconclusive: it ran but could not tell (the findings say what).\n";

/// Why `path` cannot be checked, naming the flag; empty when it can.
QString pathProblem(const QString &path) {
    if (!path.startsWith(QLatin1Char('/')))
        return QStringLiteral("--path %1: must start with '/'").arg(shown(path));
    for (const QChar c : path)
        if (c.unicode() < 0x20 || c.unicode() == 0x7f || c.isSpace() ||
            (c.unicode() >= 0x80 && c.unicode() < 0xa0))
            return QStringLiteral("--path %1: spaces and control characters are not allowed")
                .arg(shown(path));
    if (path.toUtf8().size() > MaxPathBytes)
        return QStringLiteral("--path: %1 bytes, more than %2")
            .arg(path.toUtf8().size())
            .arg(MaxPathBytes);
    return {};
}

int exitCodeOf(const AffinityReport &report) {
    if (!report.ok()) return CouldNotCheck;
    if (verdictNeedsFix(report.verdict)) return FixNeeded;
    return report.verdict == AffinityVerdict::Inconclusive ? Inconclusive : NoFixNeeded;
}

/// The report for a terminal: whatever came from a worker (cookie names, answers) with its
/// control characters written out.
void printReport(Context &context, const AffinityReport &report, bool evidence) {
    QTextStream &out = context.out;
    out << escapeControls(report.site) << ": " << verdictName(report.verdict) << " (policy "
        << escapeControls(report.policy) << ")\n";
    if (!report.summary.isEmpty()) out << escapeControls(report.summary) << '\n';
    if (!report.findings.isEmpty()) out << "\nFindings:\n";
    for (const AffinityFinding &finding : report.findings) {
        QString what = finding.kind + QLatin1Char(' ') + finding.path;
        if (!finding.cookie.isEmpty()) what += QStringLiteral(" (cookie %1)").arg(finding.cookie);
        out << "  " << verdictName(finding.verdict).leftJustified(16) << escapeControls(what)
            << '\n';
        // One finding: its sentence is the report's, said once.
        if (!finding.summary.isEmpty() && finding.summary != report.summary)
            out << "  " << QString(16, QLatin1Char(' ')) << escapeControls(finding.summary) << '\n';
        if (!evidence) continue;
        for (const AffinityExchange &exchange : finding.evidence) {
            out << "      " << escapeControls(exchange.endpoint) << ": "
                << escapeControls(exchange.request) << '\n'
                << "        -> "
                << (exchange.status ? QString::number(exchange.status)
                                    : QStringLiteral("no answer"));
            if (!exchange.answer.isEmpty()) out << ' ' << escapeControls(exchange.answer);
            out << '\n';
        }
    }
    if (!report.fixes.isEmpty()) {
        out << "\nFix:\n";
        for (const QString &fix : report.fixes)
            out << "  " << escapeControls(fix) << '\n';
    }
    if (!evidence && !report.findings.isEmpty())
        out << "\n'corralctl check " << escapeControls(report.site)
            << " --evidence' shows the requests made and the answers.\n";
    out.flush();
}

int finish(Context &context, const AffinityReport &report, bool evidence) {
    if (context.json)
        context.out << QJsonDocument(report.toJson()).toJson(QJsonDocument::Compact) << Qt::endl;
    else if (report.ok())
        printReport(context, report, evidence);
    if (!report.ok()) context.error(QStringLiteral("check: ") + escapeControls(report.error));
    return exitCodeOf(report);
}

/// A report that could not be made, for --json as for the terminal.
AffinityReport failed(const QString &site, const QString &policy, const QString &error) {
    AffinityReport report;
    report.site = site;
    report.policy = policy;
    report.error = error;
    return report;
}

/// The local site as the agent runs it, checked through its AgentSiteControl.
AffinityReport checkLocal(const QString &name, const Site *saved, const QStringList &paths,
                          bool &unknown) {
    const QString policy = saved ? policyName(saved->policy) : QString();
    // Not started for this: a site that does not run has no workers to ask.
    agent::AgentClient client;
    if (auto connected = client.connectToAgent(false); !connected) {
        unknown = !saved;
        return failed(name, policy,
                      QStringLiteral("site %1 is not running: no Corral agent answers (%2); "
                                     "'corralctl start %1' starts it")
                          .arg(name, connected.error()));
    }
    auto status = client.status(name);
    if (!status) return failed(name, policy, QStringLiteral("the Corral agent: ") + status.error());
    if (status->isEmpty() || status->first().workers.isEmpty()) {
        unknown = !saved && status->isEmpty();
        return failed(name, policy,
                      QStringLiteral("site %1 is not running in the Corral agent; 'corralctl "
                                     "start %1' starts it")
                          .arg(name));
    }
    const agent::SiteStatus running = status->first();
    agent::AgentSiteControl control(
        running.site, [&client] { return &client; }, [running] { return running.workers; });
    std::optional<AffinityReport> report;
    QEventLoop loop;
    control.checkAffinity(paths, [&](const AffinityReport &made) {
        report = made;
        loop.quit();
    });
    if (!report) loop.exec();
    return report.value_or(failed(name, policy, QStringLiteral("the check did not finish")));
}

int checkCommand(Context &context, const QStringList &args) {
    auto options =
        parseOptions(args, OptionSpec{{QStringLiteral("evidence"), QStringLiteral("accept-new")},
                                      {QStringLiteral("path")}});
    if (!options) return context.usageError(options.error());
    if (options->positional.size() != 1 || !options->rest.isEmpty())
        return context.usageError(QStringLiteral("expected one SITE"));
    const QString name = options->positional.first();
    // Each --path as given (not split at commas: a query may hold one).
    const QStringList paths = options->values.value(QStringLiteral("path"));
    for (const QString &path : paths)
        if (const QString problem = pathProblem(path); !problem.isEmpty())
            return context.usageError(problem);
    const bool evidence = options->flags.contains(QStringLiteral("evidence"));

    auto inventory = context.loadInventory();
    if (!inventory)
        return context.error(QStringLiteral("check: ") + inventory.error(), CouldNotCheck);
    const Site *saved = inventory->site(name);
    if (saved && (saved->balancer || !saved->hosts.isEmpty())) {
        // One session per host, opened as the other production commands do (keychain,
        // prompt, --accept-new).
        HostSessions sessions(inventory->hosts(),
                              sessionOpener(context, inventory.value(),
                                            options->flags.contains(QStringLiteral("accept-new"))));
        return finish(context, checkProductionAffinity(*saved, sessions, paths), evidence);
    }
    bool unknown = false;
    const AffinityReport report = checkLocal(name, saved, paths, unknown);
    if (unknown)
        return context.usageError(
            QStringLiteral("no site %1 (not in %2, and the Corral agent does not run it)")
                .arg(shown(name), context.inventoryPath));
    return finish(context, report, evidence);
}

} // namespace

QList<Command> checkCommands() {
    return {Command{QStringLiteral("check"),
                    QStringLiteral("Check whether a site's sessions survive moving between "
                                   "workers"),
                    QString::fromLatin1(checkUsage), checkCommand}};
}

} // namespace corral::cli
