#include "cli/SiteOptions.h"

#include "cli/ProxySettingOptions.h"
#include "model/FieldText.h"
#include "proxy/ProxyEngine.h"
#include "util/DemoPaths.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QThread>

namespace corral::cli {

OptionSpec siteOptionSpec() {
    OptionSpec spec{{QStringLiteral("demo")},
                    {QStringLiteral("workers"), QStringLiteral("base-port"),
                     QStringLiteral("listen"), QStringLiteral("health"), QStringLiteral("policy"),
                     QStringLiteral("cwd"), QStringLiteral("env"), QStringLiteral("start-timeout"),
                     QStringLiteral("kill-timeout"), QStringLiteral("host")}};
    spec.flags += proxySettingOptionSpec().flags;
    spec.valued += proxySettingOptionSpec().valued;
    return spec;
}

QString siteOptionsHelp() {
    return QStringLiteral(
               "  --demo             run build/bin/corral-demo-worker (health path /health); the\n"
               "                     proxy serves its public directory (share/corral/demo-public)\n"
               "  --workers N|auto   worker count; auto = cores - 1, at least 2 (default)\n"
               "  --base-port P      first port to try (default 3000); busy ports are skipped\n"
               "  --health PATH      a worker is ready when GET PATH answers 2xx (default: TCP "
               "connect)\n"
               "  --listen ADDR:PORT address for the embedded balancer in front of the workers\n"
               "  --policy P         balancing policy: round-robin, least-conn, weighted, "
               "sticky-cookie, "
               "ip-hash\n"
               "  --cwd DIR          the workers' working directory\n"
               "  --env KEY=VALUE    an environment variable for the workers (repeatable)\n"
               "  --start-timeout S  a worker not ready after S seconds is failed (default 30)\n"
               "  --kill-timeout S   SIGKILL the worker's process group S seconds after SIGTERM "
               "(default "
               "5)\n"
               "  --host NAME        the site's server name (the development certificate covers "
               "it);\n"
               "                     repeat or comma-separate\n") +
           proxySettingOptionsHelp();
}

int autoWorkerCount() {
    return qMax(2, QThread::idealThreadCount() - 1);
}

bool givesCommand(const ParsedOptions &options) {
    return options.flags.contains(QStringLiteral("demo")) || !options.rest.isEmpty();
}

QStringList applySiteOptions(const ParsedOptions &options, Site &site, SupervisionPolicy &policy) {
    if (options.flags.contains(QStringLiteral("demo"))) {
        site.command =
            QCoreApplication::applicationDirPath() + QStringLiteral("/corral-demo-worker");
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        if (site.healthPath.isEmpty()) site.healthPath = QStringLiteral("/health");
        // Its page and stylesheet come from the proxy, as nginx would serve them.
        if (site.staticRoot.isEmpty() && QFileInfo(demoPublicDirectory()).isDir())
            site.staticRoot = demoPublicDirectory();
    } else if (!options.rest.isEmpty()) {
        site.command = options.rest.first();
        site.args = options.rest.mid(1);
    }

    // Every bad value at once, then the site's own checks.
    QStringList problems;
    if (options.has(QStringLiteral("workers"))) {
        const QString value = options.value(QStringLiteral("workers"));
        bool numeric = value != QLatin1String("auto");
        const int workers = numeric ? value.toInt(&numeric) : autoWorkerCount();
        if (value == QLatin1String("auto") ||
            (numeric && workers >= 1 && workers <= Site::MaxWorkers))
            site.workers = workers;
        else
            problems.append(QStringLiteral("--workers: %1 is not auto or 1..%2")
                                .arg(shown(value))
                                .arg(Site::MaxWorkers));
    }
    if (options.has(QStringLiteral("base-port"))) {
        bool numeric = false;
        const uint port = options.value(QStringLiteral("base-port")).toUInt(&numeric);
        if (numeric && port >= 1 && port <= 65535)
            site.basePort = quint16(port);
        else
            problems.append(QStringLiteral("--base-port: %1 is not a port in 1..65535")
                                .arg(shown(options.value(QStringLiteral("base-port")))));
    }
    if (options.has(QStringLiteral("health")))
        site.healthPath = options.value(QStringLiteral("health"));
    if (options.has(QStringLiteral("cwd")))
        site.workingDirectory = options.value(QStringLiteral("cwd"));
    for (const QString &pair : options.values.value(QStringLiteral("env"))) {
        const qsizetype equals = pair.indexOf(QLatin1Char('='));
        if (equals <= 0)
            problems.append(QStringLiteral("--env: %1 is not KEY=VALUE").arg(shown(pair)));
        else
            site.environment.insert(pair.left(equals), pair.mid(equals + 1));
    }
    if (options.has(QStringLiteral("policy"))) {
        const QString name = options.value(QStringLiteral("policy"));
        if (const auto balancing = policyFromName(name))
            site.policy = *balancing;
        else
            problems.append(
                QStringLiteral("--policy: %1 is not one of %2").arg(shown(name), policyNames()));
    }
    if (options.has(QStringLiteral("listen"))) {
        if (auto endpoint = Endpoint::parse(options.value(QStringLiteral("listen"))))
            site.listen = options.value(QStringLiteral("listen"));
        else
            problems.append(QStringLiteral("--listen: ") + endpoint.error());
    }
    for (const auto &[name, target] :
         {std::pair{QStringLiteral("start-timeout"), &policy.startTimeoutMs},
          std::pair{QStringLiteral("kill-timeout"), &policy.killTimeoutMs}}) {
        if (!options.has(name)) continue;
        bool numeric = false;
        const double seconds = options.value(name).toDouble(&numeric);
        if (numeric && seconds > 0 && seconds <= 3600)
            *target = int(seconds * 1000);
        else
            problems.append(QStringLiteral("--%1: %2 is not a number of seconds in (0, 3600]")
                                .arg(name, shown(options.value(name))));
    }
    if (options.has(QStringLiteral("host")))
        site.serverNames = options.list(QStringLiteral("host"));
    problems += applyProxySettingOptions(options, site, ProxyPathCheck::Local);
    problems += site.problems();
    return problems;
}

} // namespace corral::cli
