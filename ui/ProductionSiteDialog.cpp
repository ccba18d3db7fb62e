#include "ProductionSiteDialog.h"
#include "PlainText.h"

#include "FieldWidgets.h"
#include "ssh/ShellQuote.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QRegularExpression>
#include <QVBoxLayout>

namespace corral {

namespace {

/// The dialog's label for a field Site::problems() names (its inventory JSON path), so an
/// error points at what the user sees; the JSON name stays for fields the dialog lacks.
QString fieldLabel(const QString &path) {
    static const QHash<QString, QString> labels{
        {QStringLiteral("name"), QObject::tr("Name")},
        {QStringLiteral("serverNames"), QObject::tr("Server names")},
        {QStringLiteral("command"), QObject::tr("Worker command")},
        {QStringLiteral("args"), QObject::tr("Worker command")},
        {QStringLiteral("healthPath"), QObject::tr("Health path")},
        {QStringLiteral("backends"), QObject::tr("Backends")},
        {QStringLiteral("hosts"), QObject::tr("Worker hosts")},
        {QStringLiteral("balancer.host"), QObject::tr("Balancer host")},
        {QStringLiteral("balancer.format"), QObject::tr("Balancer")},
        {QStringLiteral("balancer.listenAddress"), QObject::tr("Listen on")},
        {QStringLiteral("balancer.httpPort"), QObject::tr("Listen on")},
        {QStringLiteral("balancer.configPath"), QObject::tr("Config path")},
        {QStringLiteral("balancer.validate"), QObject::tr("Validate command")},
        {QStringLiteral("balancer.reload"), QObject::tr("Reload command")},
        {QStringLiteral("balancer.probeUrl"), QObject::tr("Probe URL")},
        {QStringLiteral("balancer.errorLog"), QObject::tr("Error log")},
        {QStringLiteral("balancer.logDirectory"), QObject::tr("Log directory")},
        {QStringLiteral("balancer.runtimeDirectory"), QObject::tr("Runtime directory")}};
    // "backends[1].port" is named by its list: "Backends (backends[1].port)".
    const QString list = path.section(QLatin1Char('['), 0, 0);
    const QString label = labels.value(path, labels.value(list));
    if (label.isEmpty()) return path;
    return label == path || list == path ? label : label + QStringLiteral(" (") + path + u')';
}

QString labelledProblem(const QString &problem) {
    const qsizetype colon = problem.indexOf(QStringLiteral(": "));
    if (colon < 0) return problem;
    return fieldLabel(problem.left(colon)) + problem.mid(colon);
}

QStringList wordsOf(const QString &text) {
    static const QRegularExpression separators(QStringLiteral("[\\s,]+"));
    return text.split(separators, Qt::SkipEmptyParts);
}

} // namespace

ProductionSiteDialog::ProductionSiteDialog(QList<Host> sshHosts, QStringList takenNames,
                                           QWidget *parent)
    : QDialog(parent)
    , m_hosts(std::move(sshHosts))
    , m_takenNames(std::move(takenNames)) {
    setWindowTitle(tr("Add production site"));
    m_name = namedLineEdit("siteName", tr("Letters, digits, '.', '_' and '-'; names the rendered "
                                          "upstream and the config file"));
    m_serverNames =
        namedLineEdit("serverNames", tr("Host names the site answers to (nginx server_name, "
                                        "Apache ServerName); separated by spaces"));
    m_command =
        namedLineEdit("command", tr("Program and arguments that start one worker on a host, as in "
                                    "a shell; {port} is replaced by the worker's port"));
    m_command->setPlaceholderText(tr("/usr/bin/node /srv/shop/app.js --port {port}"));
    m_health =
        namedLineEdit("healthPath", tr("A worker is ready when GET on this path answers 2xx; "
                                       "empty: the port answering at all"));
    m_backends =
        namedLineEdit("backends", tr("The workers the balancer spreads requests over, "
                                     "HOST:PORT[;weight=N][;backup][;down], separated by commas"));
    m_backends->setPlaceholderText(tr("10.0.0.5:3001, 10.0.0.5:3002"));
    m_workerHosts = new QListWidget;
    m_workerHosts->setObjectName(QStringLiteral("workerHosts"));
    m_workerHosts->setToolTip(tr("Hosts that run the workers (Add backend starts them there); "
                                 "none checked: the balancer's host"));
    m_workerHosts->setMaximumHeight(90);
    for (const Host &host : std::as_const(m_hosts)) {
        auto *item = new QListWidgetItem(host.name, m_workerHosts);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(Qt::Unchecked);
    }
    m_policy = new QComboBox;
    m_policy->setObjectName(QStringLiteral("policy"));
    for (BalancingPolicy policy : allPolicies())
        m_policy->addItem(policyName(policy), int(policy));

    m_kind = new QComboBox;
    m_kind->setObjectName(QStringLiteral("balancerKind"));
    m_kind->addItems(SiteBalancer::formatNames());
    m_kind->setToolTip(tr("Changing it fills the fields below with a stock Debian install's "
                          "paths and commands for that balancer (fields you edited stay)"));
    m_balancerHost = new QComboBox;
    m_balancerHost->setObjectName(QStringLiteral("balancerHost"));
    for (const Host &host : std::as_const(m_hosts))
        m_balancerHost->addItem(host.name);
    m_listen =
        namedLineEdit("balancerListen", tr("ADDR:PORT the rendered site listens on; *:PORT for "
                                           "every address"));
    m_listen->setText(QStringLiteral("*:80"));
    m_configPath =
        namedLineEdit("configPath", tr("Absolute path of the site's config file on the host"));
    m_validate =
        namedLineEdit("validate", tr("Checks the config before a reload; run without a shell, "
                                     "words split as a shell would"));
    m_reload = namedLineEdit("reload", tr("Reloads the balancer gracefully; run without a shell"));
    m_probeUrl =
        namedLineEdit("probeUrl", tr("http(s) URL fetched through the balancer after a reload, "
                                     "with the first server name as Host; empty: none"));
    m_errorLog =
        namedLineEdit("errorLog", tr("Checked for new [emerg] lines after a reload; empty: none"));
    m_logDirectory =
        namedLineEdit("logDirectory", tr("Where the site's access and error logs go; empty: the "
                                         "balancer's default"));
    m_runtimeDirectory = namedLineEdit(
        "runtimeDirectory", tr("HAProxy: directory of the stats socket the rolling restart "
                               "drains servers through"));

    m_error = plainLabel(new QLabel);
    m_error->setObjectName(QStringLiteral("error"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #d23c3c"));

    auto *site = new QFormLayout;
    site->addRow(tr("&Name"), m_name);
    site->addRow(tr("&Server names"), m_serverNames);
    site->addRow(tr("Worker &command"), m_command);
    site->addRow(tr("&Health path"), m_health);
    site->addRow(tr("&Backends"), m_backends);
    site->addRow(tr("&Worker hosts"), m_workerHosts);
    site->addRow(tr("&Policy"), m_policy);
    auto *siteBox = new QGroupBox(tr("Site and workers"));
    siteBox->setLayout(site);

    auto *balancer = new QFormLayout;
    balancer->addRow(tr("B&alancer"), m_kind);
    balancer->addRow(tr("Balancer h&ost"), m_balancerHost);
    balancer->addRow(tr("&Listen on"), m_listen);
    balancer->addRow(tr("Con&fig path"), m_configPath);
    balancer->addRow(tr("&Validate command"), m_validate);
    balancer->addRow(tr("&Reload command"), m_reload);
    balancer->addRow(tr("Probe &URL"), m_probeUrl);
    balancer->addRow(tr("&Error log"), m_errorLog);
    balancer->addRow(tr("Log director&y"), m_logDirectory);
    balancer->addRow(tr("Run&time directory"), m_runtimeDirectory);
    auto *balancerBox = new QGroupBox(tr("Balancer"));
    balancerBox->setLayout(balancer);

    m_buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    m_buttons->button(QDialogButtonBox::Ok)->setText(tr("Save"));
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(siteBox);
    layout->addWidget(balancerBox);
    layout->addWidget(m_error);
    layout->addWidget(m_buttons);

    connect(m_buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    m_defaults = SiteBalancer{}; // the empty fields hold "the defaults": all get filled
    refreshDefaults();
    connect(m_kind, &QComboBox::currentTextChanged, this, [this] {
        refreshDefaults();
        validate();
    });
    connect(m_name, &QLineEdit::textChanged, this, [this] {
        refreshDefaults();
        validate();
    });
    for (QLineEdit *line :
         {m_serverNames, m_command, m_health, m_backends, m_listen, m_configPath, m_validate,
          m_reload, m_probeUrl, m_errorLog, m_logDirectory, m_runtimeDirectory})
        connect(line, &QLineEdit::textChanged, this, &ProductionSiteDialog::validate);
    connect(m_workerHosts, &QListWidget::itemChanged, this, &ProductionSiteDialog::validate);
    connect(m_balancerHost, &QComboBox::currentTextChanged, this, &ProductionSiteDialog::validate);
    validate();
    // Nothing typed yet is no error: the message appears with the first edit.
    m_error->clear();
}

void ProductionSiteDialog::refreshDefaults() {
    const SiteBalancer next =
        SiteBalancer::stockDebian(m_kind->currentText(), m_name->text().trimmed());
    const auto refill = [](QLineEdit *line, const QString &previous, const QString &now) {
        if (line->text() == previous) line->setText(now);
    };
    const auto refillCommand = [](QLineEdit *line, const QStringList &previous,
                                  const QStringList &now) {
        if (line->text() == shellCommand(previous)) line->setText(shellCommand(now));
    };
    refill(m_configPath, m_defaults.configPath, next.configPath);
    refillCommand(m_validate, m_defaults.validate, next.validate);
    refillCommand(m_reload, m_defaults.reload, next.reload);
    refill(m_errorLog, m_defaults.errorLog, next.errorLog);
    refill(m_logDirectory, m_defaults.logDirectory, next.logDirectory);
    refill(m_runtimeDirectory, m_defaults.runtimeDirectory, next.runtimeDirectory);
    m_runtimeDirectory->setEnabled(m_kind->currentText() == QLatin1String("haproxy"));
    m_defaults = next;
}

void ProductionSiteDialog::setSite(const Site &site) {
    m_base = site;
    m_editing = true;
    setWindowTitle(tr("Edit production site %1").arg(site.name));
    m_name->setText(site.name);
    m_name->setReadOnly(true);
    m_serverNames->setText(site.serverNames.join(QLatin1Char(' ')));
    m_command->setText(
        site.command.isEmpty() ? QString() : shellCommand(QStringList{site.command} + site.args));
    m_health->setText(site.healthPath);
    QStringList backends;
    for (const Backend &backend : site.backends)
        backends.append(backend.toSpec());
    m_backends->setText(backends.join(QStringLiteral(", ")));
    for (int row = 0; row < m_workerHosts->count(); ++row) {
        QListWidgetItem *item = m_workerHosts->item(row);
        item->setCheckState(site.hosts.contains(item->text()) ? Qt::Checked : Qt::Unchecked);
    }
    m_policy->setCurrentIndex(m_policy->findData(int(site.policy)));
    if (site.balancer) {
        const SiteBalancer &balancer = *site.balancer;
        m_kind->setCurrentText(balancer.format);
        if (m_balancerHost->findText(balancer.host) < 0) m_balancerHost->addItem(balancer.host);
        m_balancerHost->setCurrentText(balancer.host);
        m_listen->setText(balancer.listenText());
        m_configPath->setText(balancer.configPath);
        m_validate->setText(shellCommand(balancer.validate));
        m_reload->setText(shellCommand(balancer.reload));
        m_probeUrl->setText(balancer.probeUrl);
        m_errorLog->setText(balancer.errorLog);
        m_logDirectory->setText(balancer.logDirectory);
        m_runtimeDirectory->setText(balancer.runtimeDirectory);
    }
    validate();
}

Result<Site> ProductionSiteDialog::site() const {
    Site site = m_base;
    QStringList problems;
    site.name = m_editing ? m_base.name : m_name->text().trimmed();
    if (!m_editing && m_takenNames.contains(site.name))
        problems.append(tr("Name: the inventory already has a site named %1").arg(site.name));
    site.serverNames = wordsOf(m_serverNames->text());
    if (auto words = splitShellWords(m_command->text()); !words) {
        problems.append(tr("Worker command: %1").arg(words.error()));
    } else {
        site.command = words->value(0);
        site.args = words->mid(1);
    }
    site.healthPath = m_health->text().trimmed();
    if (auto backends = Backend::parseList(wordsOf(m_backends->text()).join(u',')); !backends)
        problems.append(tr("Backends: %1").arg(backends.error()));
    else
        site.backends = backends.value();
    site.hosts.clear();
    for (int row = 0; row < m_workerHosts->count(); ++row)
        if (m_workerHosts->item(row)->checkState() == Qt::Checked)
            site.hosts.append(m_workerHosts->item(row)->text());
    site.policy = BalancingPolicy(m_policy->currentData().toInt());

    // What the dialog does not show (step timeout, state directory) stays as it was.
    SiteBalancer balancer = m_base.balancer.value_or(SiteBalancer{});
    balancer.format = m_kind->currentText();
    balancer.host = m_balancerHost->currentText();
    if (balancer.host.isEmpty())
        problems.append(tr("Balancer host: add the SSH host the balancer runs on first "
                           "(File → Add host…)"));
    if (auto listen = balancer.setListen(m_listen->text().trimmed()); !listen)
        problems.append(tr("Listen on: %1").arg(listen.error()));
    balancer.configPath = m_configPath->text().trimmed();
    const std::pair<QLineEdit *, QStringList *> commands[] = {{m_validate, &balancer.validate},
                                                              {m_reload, &balancer.reload}};
    for (const auto &[line, command] : commands) {
        if (auto words = splitShellWords(line->text()); !words)
            problems.append(
                (line == m_validate ? tr("Validate command: %1") : tr("Reload command: %1"))
                    .arg(words.error()));
        else
            *command = words.value();
    }
    balancer.probeUrl = m_probeUrl->text().trimmed();
    balancer.errorLog = m_errorLog->text().trimmed();
    balancer.logDirectory = m_logDirectory->text().trimmed();
    balancer.runtimeDirectory = balancer.format == QLatin1String("haproxy")
                                    ? m_runtimeDirectory->text().trimmed()
                                    : QString();
    site.balancer = balancer;
    if (problems.isEmpty())
        for (const QString &problem : site.problems())
            problems.append(labelledProblem(problem));
    if (!problems.isEmpty()) return fail(problems.join(u'\n'));
    return site;
}

void ProductionSiteDialog::validate() {
    const auto result = site();
    m_error->setText(result.ok() ? QString() : result.error());
    m_buttons->button(QDialogButtonBox::Ok)->setEnabled(result.ok());
}

} // namespace corral
