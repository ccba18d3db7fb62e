#include "LaunchClusterDialog.h"
#include "PlainText.h"

#include "FieldWidgets.h"
#include "util/ListeningSockets.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProcess>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>

namespace corral {

int LaunchClusterDialog::defaultWorkers() {
    return qMax(2, QThread::idealThreadCount() - 1);
}

LaunchClusterDialog::LaunchClusterDialog(QString demoWorkerPath, QWidget *parent)
    : QDialog(parent)
    , m_demoWorkerPath(std::move(demoWorkerPath)) {
    setWindowTitle(tr("Launch local cluster"));
    m_name = new QLineEdit(QStringLiteral("dev"));
    m_name->setObjectName(QStringLiteral("siteName"));
    m_demo = new QCheckBox(tr("Demo worker (corral-demo-worker)"));
    m_demo->setObjectName(QStringLiteral("demoWorker"));
    m_demo->setChecked(true);
    m_command = new QLineEdit;
    m_command->setObjectName(QStringLiteral("command"));
    m_command->setPlaceholderText(tr("node app.js --port {port}"));
    m_command->setToolTip(tr("Program and arguments; {port} is replaced, and $PORT is set too"));
    m_workingDirectory = new QLineEdit;
    m_workers = new QSpinBox;
    m_workers->setObjectName(QStringLiteral("workers"));
    m_workers->setRange(1, Site::MaxWorkers);
    m_workers->setValue(defaultWorkers());
    m_workers->setToolTip(
        tr("Default: cores − 1, at least 2 (one single-threaded process per core)"));
    m_basePort = new QSpinBox;
    m_basePort->setRange(1, 65535);
    m_basePort->setValue(3000);
    m_basePort->setToolTip(tr("First port to try; ports in use are skipped"));
    m_listen = new QLineEdit(QStringLiteral("127.0.0.1:8080"));
    m_listen->setObjectName(QStringLiteral("listen"));
    m_listen->setToolTip(tr("Address of the embedded load balancer in front of the workers"));
    m_listenStatus = plainLabel(new QLabel);
    m_listenStatus->setObjectName(QStringLiteral("listenStatus"));
    m_listenStatus->setWordWrap(true);
    m_listenStatus->setStyleSheet(QStringLiteral("color: #d23c3c"));
    m_listenStatus->setVisible(false);
    m_health = new QLineEdit(QStringLiteral("/health"));
    m_health->setToolTip(
        tr("A worker is ready when GET on this path answers 2xx; empty: a TCP connect"));
    m_policy = new QComboBox;
    m_policy->setObjectName(QStringLiteral("policy"));
    for (BalancingPolicy policy : allPolicies())
        m_policy->addItem(policyName(policy), int(policy));
    m_error = plainLabel(new QLabel);
    m_error->setObjectName(QStringLiteral("error"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #d23c3c"));

    auto *form = new QFormLayout;
    form->addRow(tr("Site &name"), m_name);
    form->addRow(QString(), m_demo);
    form->addRow(tr("&Command"), m_command);
    form->addRow(tr("Working &directory"), m_workingDirectory);
    form->addRow(tr("&Workers"), m_workers);
    form->addRow(tr("&Base port"), m_basePort);
    form->addRow(tr("&Listen on"), m_listen);
    form->addRow(QString(), m_listenStatus);
    form->addRow(tr("&Health path"), m_health);
    form->addRow(tr("&Policy"), m_policy);
    form->addRow(createProxySettings());
    form->addRow(m_error);
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    m_buttons->button(QDialogButtonBox::Ok)->setText(tr("Launch"));
    form->addRow(m_buttons);
    setLayout(form);

    connect(m_buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_demo, &QCheckBox::toggled, this, [this](bool demo) {
        m_command->setEnabled(!demo);
        m_workingDirectory->setEnabled(!demo);
        validate();
    });
    for (QLineEdit *edit : {m_name, m_command, m_listen, m_health, m_serverNames, m_staticRoot,
                            m_cacheControl, m_accessLog, m_tlsCert, m_tlsKey, m_redirectHttp})
        connect(edit, &QLineEdit::textChanged, this, &LaunchClusterDialog::validate);
    for (QCheckBox *box : {m_staticFollowSymlinks, m_gzip})
        connect(box, &QCheckBox::toggled, this, &LaunchClusterDialog::validate);
    m_command->setEnabled(false);
    m_workingDirectory->setEnabled(false);
    validate();
}

QWidget *LaunchClusterDialog::createProxySettings() {
    m_serverNames = namedLineEdit("serverNames", tr("The site's host names, comma-separated: the "
                                                    "development certificate covers them"));
    m_staticRoot =
        namedLineEdit("staticRoot", tr("Files under this directory are served by the "
                                       "proxy itself for GET and HEAD (nginx's try_files "
                                       "$uri @backend); the rest goes to the workers"));
    m_staticRoot->setPlaceholderText(tr("none"));
    auto *browse = new QPushButton(tr("Browse…"));
    browse->setObjectName(QStringLiteral("browseStaticRoot"));
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString directory = QFileDialog::getExistingDirectory(
            this, tr("Static files directory"), m_staticRoot->text());
        if (!directory.isEmpty()) m_staticRoot->setText(directory);
    });
    auto *staticRow = new QHBoxLayout;
    staticRow->setContentsMargins(0, 0, 0, 0);
    staticRow->addWidget(m_staticRoot);
    staticRow->addWidget(browse);
    m_staticFollowSymlinks = new QCheckBox(tr("Follow symlinks out of the directory"));
    m_staticFollowSymlinks->setObjectName(QStringLiteral("staticFollowSymlinks"));
    m_cacheControl = namedLineEdit("cacheControl", tr("Cache-Control header of static files"));
    m_cacheControl->setPlaceholderText(tr("none, e.g. public, max-age=3600"));
    m_gzip = new QCheckBox(tr("Compress text responses (gzip)"));
    m_gzip->setObjectName(QStringLiteral("gzip"));
    m_gzip->setChecked(true);
    m_accessLog =
        namedLineEdit("accessLog", tr("A file; - for the agent's standard output; off for "
                                      "none; empty: access.log in the site's log directory"));
    m_accessLog->setPlaceholderText(tr("default: access.log in the site's log directory"));
    m_tls = new QCheckBox(tr("HTTPS (TLS 1.2+)"));
    m_tls->setObjectName(QStringLiteral("tls"));
    m_tls->setToolTip(tr("Without a certificate and key, Corral's local development CA issues "
                         "one for localhost, 127.0.0.1 and the host names"));
    m_tlsCert =
        namedLineEdit("tlsCert", tr("PEM certificate chain; empty: from the development CA"));
    m_tlsKey = namedLineEdit("tlsKey", tr("PEM private key; given with the certificate"));
    m_redirectHttp =
        namedLineEdit("redirectHttp", tr("ADDR:PORT answering plain HTTP with a 301 to "
                                         "https://; empty: none"));
    const auto updateTls = [this] {
        for (QLineEdit *edit : {m_tlsCert, m_tlsKey, m_redirectHttp})
            edit->setEnabled(m_tls->isChecked());
        validate();
    };
    connect(m_tls, &QCheckBox::toggled, this, updateTls);
    for (QLineEdit *edit : {m_tlsCert, m_tlsKey, m_redirectHttp})
        edit->setEnabled(false);

    auto *group = new QGroupBox(tr("Proxy: static files, compression, access log, HTTPS"));
    auto *form = new QFormLayout(group);
    form->addRow(tr("Host na&mes"), m_serverNames);
    form->addRow(tr("&Static files"), staticRow);
    form->addRow(QString(), m_staticFollowSymlinks);
    form->addRow(tr("Cache-&Control"), m_cacheControl);
    form->addRow(QString(), m_gzip);
    form->addRow(tr("&Access log"), m_accessLog);
    form->addRow(QString(), m_tls);
    form->addRow(tr("Certificate"), m_tlsCert);
    form->addRow(tr("Private &key"), m_tlsKey);
    form->addRow(tr("&Redirect HTTP from"), m_redirectHttp);
    return group;
}

void LaunchClusterDialog::setSite(const Site &site) {
    m_base = site;
    m_name->setText(site.name);
    const bool demo = site.command == m_demoWorkerPath ||
                      site.command.endsWith(QLatin1String("/corral-demo-worker"));
    m_demo->setChecked(demo || site.command.isEmpty());
    if (!demo) m_command->setText((QStringList{site.command} + site.args).join(QLatin1Char(' ')));
    m_workingDirectory->setText(site.workingDirectory);
    m_workers->setValue(qMax(1, site.workers));
    m_basePort->setValue(site.basePort);
    if (!site.listen.isEmpty()) m_listen->setText(site.listen);
    m_health->setText(site.healthPath);
    m_policy->setCurrentIndex(m_policy->findData(int(site.policy)));
    m_serverNames->setText(site.serverNames.join(QStringLiteral(", ")));
    m_staticRoot->setText(site.staticRoot);
    m_staticFollowSymlinks->setChecked(site.staticFollowSymlinks);
    m_cacheControl->setText(site.cacheControl);
    m_gzip->setChecked(site.gzip);
    m_accessLog->setText(site.accessLog);
    m_tls->setChecked(site.tls);
    m_tlsCert->setText(site.tlsCert);
    m_tlsKey->setText(site.tlsKey);
    m_redirectHttp->setText(site.redirectHttp);
}

QString LaunchClusterDialog::proposeName(const QString &base, const QStringList &taken) {
    QString name = base;
    for (int n = 2; taken.contains(name); ++n)
        name = QStringLiteral("%1-%2").arg(base).arg(n);
    return name;
}

QString LaunchClusterDialog::proposeListenAddress(const QStringList &avoid) {
    const QHostAddress loopback(QHostAddress::LocalHost);
    for (quint16 port = 8080; port < 8180; ++port) {
        const QString address = QStringLiteral("127.0.0.1:%1").arg(port);
        if (avoid.contains(address) || avoid.contains(QStringLiteral("localhost:%1").arg(port)))
            continue;
        if (checkListenAddressFree(loopback, port)) return address;
    }
    return QStringLiteral("127.0.0.1:8080"); // all taken: the field says by whom
}

void LaunchClusterDialog::setTaken(const QStringList &names, const QStringList &listenAddresses) {
    m_name->setText(proposeName(QStringLiteral("dev"), names));
    m_listen->setText(proposeListenAddress(listenAddresses));
}

void LaunchClusterDialog::setEditing(const Site &site, bool running) {
    setSite(site);
    m_editing = true;
    m_ownListen = running ? site.listen : QString();
    m_name->setReadOnly(true);
    m_name->setToolTip(tr("A site keeps its name; launch a new one for another name"));
    setWindowTitle(tr("Edit site %1").arg(site.name));
    m_buttons->button(QDialogButtonBox::Ok)->setText(running ? tr("Save and restart") : tr("Save"));
    validate();
}

Result<Site> LaunchClusterDialog::site() const {
    Site site = m_base; // what the dialog does not show stays as it was
    site.name = m_name->text().trimmed();
    if (m_demo->isChecked()) {
        site.command = m_demoWorkerPath;
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
    } else {
        const QStringList parts = QProcess::splitCommand(m_command->text());
        if (parts.isEmpty())
            return fail(tr("Command: give a program to run, or choose the demo worker"));
        site.command = parts.first();
        site.args = parts.mid(1);
        site.workingDirectory = m_workingDirectory->text().trimmed();
    }
    site.workers = m_workers->value();
    site.basePort = quint16(m_basePort->value());
    site.listen = m_listen->text().trimmed();
    site.healthPath = m_health->text().trimmed();
    site.policy = BalancingPolicy(m_policy->currentData().toInt());
    site.serverNames.clear();
    for (const QString &name : m_serverNames->text().split(QLatin1Char(','), Qt::SkipEmptyParts))
        if (!name.trimmed().isEmpty()) site.serverNames.append(name.trimmed());
    site.staticRoot = m_staticRoot->text().trimmed();
    site.staticFollowSymlinks = m_staticFollowSymlinks->isChecked();
    site.cacheControl = m_cacheControl->text().trimmed();
    site.gzip = m_gzip->isChecked();
    site.accessLog = m_accessLog->text().trimmed();
    site.tls = m_tls->isChecked();
    // Unchecked: the certificate, key and redirect are not used, so not kept either.
    site.tlsCert = site.tls ? m_tlsCert->text().trimmed() : QString();
    site.tlsKey = site.tls ? m_tlsKey->text().trimmed() : QString();
    site.redirectHttp = site.tls ? m_redirectHttp->text().trimmed() : QString();
    if (auto valid = site.validate(); !valid) return fail(valid.error());
    if (const QString holder = listenAddressHolder(); !holder.isEmpty())
        return fail(tr("Listen on: %1").arg(holder));
    return site;
}

QString LaunchClusterDialog::listenAddressHolder() const {
    const auto endpoint = Endpoint::parse(m_listen->text().trimmed());
    if (!endpoint) return {};
    // The edited site's own balancer holds it: restarting with it is no conflict.
    if (!m_ownListen.isEmpty() && m_listen->text().trimmed() == m_ownListen) return {};
    // A host name (localhost) is checked against every listener on the port.
    const QHostAddress address(endpoint->host);
    if (auto free = checkListenAddressFree(address, endpoint->port); !free) return free.error();
    return {};
}

void LaunchClusterDialog::validate() {
    // Checked on every edit (a /proc read): the user sees who holds the address before
    // launching, and Launch stays off while it is taken.
    const QString holder = listenAddressHolder();
    m_listenStatus->setText(holder);
    m_listenStatus->setVisible(!holder.isEmpty());
    const auto result = site();
    // The taken address is said once, under its field.
    const bool onlyTaken = !holder.isEmpty() && result.error() == tr("Listen on: %1").arg(holder);
    m_error->setText(result.ok() || onlyTaken ? QString() : result.error());
    m_buttons->button(QDialogButtonBox::Ok)->setEnabled(result.ok());
}

} // namespace corral
