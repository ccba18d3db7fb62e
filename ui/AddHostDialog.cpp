#include "AddHostDialog.h"

#include "remote/HostDiscovery.h"
#include "ssh/SshHost.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QElapsedTimer>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>

namespace corral {

namespace {
// What one "Test connection" learned, computed on the host's SSH thread.
struct ProbeOutcome {
    bool connected = false;
    SshFailure failure = SshFailure::None;
    QString error;
    QString fingerprint;
    QString knownFingerprint;
    QString summary;
    qint64 connectMs = 0;
};
} // namespace

AddHostDialog::AddHostDialog(QWidget *parent) : QDialog(parent) {
    setWindowTitle(tr("Add host"));
    m_name = new QLineEdit;
    m_name->setObjectName(QStringLiteral("hostName"));
    m_name->setPlaceholderText(tr("web1"));
    m_address = new QLineEdit;
    m_address->setObjectName(QStringLiteral("hostAddress"));
    m_address->setPlaceholderText(tr("server.example.com or 10.0.0.5"));
    m_port = new QSpinBox;
    m_port->setObjectName(QStringLiteral("hostPort"));
    m_port->setRange(1, 65535);
    m_port->setValue(Host::DefaultSshPort);
    m_user = new QLineEdit;
    m_user->setObjectName(QStringLiteral("hostUser"));
    m_auth = new QComboBox;
    m_auth->setObjectName(QStringLiteral("hostAuth"));
    m_auth->addItem(tr("SSH agent"), int(Host::Auth::Agent));
    m_auth->addItem(tr("Key file"), int(Host::Auth::KeyFile));
    m_auth->addItem(tr("Password"), int(Host::Auth::Password));
    m_keyPath = new QLineEdit;
    m_keyPath->setObjectName(QStringLiteral("hostKeyPath"));
    m_keyPath->setPlaceholderText(tr("~/.ssh/id_ed25519"));
    m_secret = new QLineEdit;
    m_secret->setObjectName(QStringLiteral("hostSecret"));
    m_secret->setEchoMode(QLineEdit::Password);
    m_secret->setToolTip(tr("Stored in the OS keychain (service \"corral\"), never in the inventory"));
    m_test = new QPushButton(tr("&Test connection"));
    m_test->setObjectName(QStringLiteral("testConnection"));
    m_test->setToolTip(tr("Connect, verify the host key and show what the host runs"));
    m_output = new QLabel;
    m_output->setObjectName(QStringLiteral("testOutput"));
    m_output->setWordWrap(true);
    m_output->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_error = new QLabel;
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #d23c3c"));

    auto *form = new QFormLayout(this);
    form->addRow(tr("&Name"), m_name);
    form->addRow(tr("&Address"), m_address);
    form->addRow(tr("&Port"), m_port);
    form->addRow(tr("&User"), m_user);
    form->addRow(tr("Au&thentication"), m_auth);
    form->addRow(tr("&Key file"), m_keyPath);
    form->addRow(tr("Pass&word / passphrase"), m_secret);
    form->addRow(m_test, m_output);
    form->addRow(m_error);
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel);
    form->addRow(m_buttons);

    connect(m_buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_test, &QPushButton::clicked, this, &AddHostDialog::testConnection);
    for (QLineEdit *edit : {m_name, m_address, m_user, m_keyPath})
        connect(edit, &QLineEdit::textChanged, this, &AddHostDialog::validate);
    connect(m_auth, &QComboBox::currentIndexChanged, this, &AddHostDialog::validate);
    validate();
}

AddHostDialog::~AddHostDialog() = default;

Result<Host> AddHostDialog::host() const {
    Host host;
    host.name = m_name->text().trimmed();
    host.kind = Host::Kind::Ssh;
    host.address = m_address->text().trimmed();
    host.port = quint16(m_port->value());
    host.user = m_user->text().trimmed();
    host.auth = Host::Auth(m_auth->currentData().toInt());
    host.keyPath = host.auth == Host::Auth::KeyFile ? m_keyPath->text().trimmed() : QString();
    if (auto valid = host.validate(); !valid)
        return fail(valid.error());
    return host;
}

QString AddHostDialog::secret() const { return m_secret->text(); }
QString AddHostDialog::testOutput() const { return m_output->text(); }

void AddHostDialog::validate() {
    const auto auth = Host::Auth(m_auth->currentData().toInt());
    m_keyPath->setEnabled(auth == Host::Auth::KeyFile);
    m_secret->setEnabled(auth != Host::Auth::Agent);
    const auto result = host();
    m_error->setText(result.ok() ? QString() : result.error());
    m_buttons->button(QDialogButtonBox::Save)->setEnabled(result.ok());
    m_test->setEnabled(result.ok());
}

void AddHostDialog::testConnection() { runTest(QString()); }

void AddHostDialog::runTest(const QString &acceptFingerprint) {
    const auto described = host();
    if (!described)
        return;
    SshConfig config = SshConfig::fromHost(described.value());
    config.secret = m_secret->text();
    config.acceptFingerprint = acceptFingerprint;
    config.connectTimeoutMs = 10000;
    // A fresh session per test: the fields may have changed since the last one.
    m_probe = std::make_unique<SshHost>(described->name, config);
    m_test->setEnabled(false);
    m_output->setText(tr("Connecting to %1…").arg(config.displayName()));
    m_probe->call<ProbeOutcome>(
        [](SshSession &session) -> Result<ProbeOutcome> {
            ProbeOutcome outcome;
            QElapsedTimer timer;
            timer.start();
            const auto connected = session.connect();
            outcome.connectMs = timer.elapsed();
            outcome.fingerprint = session.serverFingerprint();
            outcome.knownFingerprint = session.knownFingerprint();
            if (!connected) {
                outcome.failure = session.lastFailure();
                outcome.error = connected.error();
                return outcome;
            }
            outcome.connected = true;
            const auto facts = session.exec(HostDiscovery::command(), 20000);
            if (!facts) {
                outcome.error = facts.error();
                return outcome;
            }
            auto parsed = HostDiscovery::parse(facts->stdOut);
            outcome.summary = parsed ? parsed->summary() : parsed.error();
            return outcome;
        },
        this,
        [this, acceptFingerprint](Result<ProbeOutcome> result) {
            m_test->setEnabled(true);
            if (!result) {
                m_output->setText(result.error());
                Q_EMIT testFinished(false);
                return;
            }
            const ProbeOutcome &outcome = result.value();
            if (outcome.failure == SshFailure::HostKeyUnknown && acceptFingerprint.isEmpty()) {
                // Trust on first use, but only with the user's say-so and only for this key.
                const auto answer = QMessageBox::question(
                    this, tr("Unknown host key"),
                    tr("The host has never been seen before. Its key fingerprint is\n\n%1\n\n"
                       "Trust this key and connect?")
                        .arg(outcome.fingerprint));
                if (answer == QMessageBox::Yes) {
                    m_confirmedFingerprint = outcome.fingerprint;
                    return runTest(outcome.fingerprint);
                }
                m_output->setText(tr("Not connected: host key %1 not trusted").arg(outcome.fingerprint));
                Q_EMIT testFinished(false);
                return;
            }
            if (outcome.failure == SshFailure::HostKeyChanged) {
                m_output->setText(tr("REFUSED: the host key changed. Known: %1; presented now: %2. "
                                     "If the server was reinstalled, remove its old entry from known_hosts.")
                                      .arg(outcome.knownFingerprint, outcome.fingerprint));
                Q_EMIT testFinished(false);
                return;
            }
            if (!outcome.connected || !outcome.error.isEmpty()) {
                m_output->setText(outcome.error);
                Q_EMIT testFinished(false);
                return;
            }
            m_output->setText(tr("Connected in %1 ms, host key %2\n%3")
                                  .arg(outcome.connectMs)
                                  .arg(outcome.fingerprint, outcome.summary));
            Q_EMIT testFinished(true);
        });
}

} // namespace corral
