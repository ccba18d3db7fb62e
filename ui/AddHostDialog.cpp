#include "AddHostDialog.h"
#include "PlainText.h"

#include "remote/HostDiscovery.h"
#include "ssh/KnownHosts.h"
#include "ssh/SshHost.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace corral {

AddHostDialog::AddHostDialog(QWidget *parent)
    : QDialog(parent) {
    setWindowTitle(tr("Add host"));
    buildFields();
}

AddHostDialog::AddHostDialog(const Host &existing, QWidget *parent)
    : QDialog(parent)
    , m_editing(true) {
    setWindowTitle(tr("Edit host %1").arg(existing.name));
    buildFields();
    {
        // Pre-filling is not an edit by the user: no error may show for it.
        const bool touched = m_touched;
        m_name->setText(existing.name);
        m_address->setText(existing.address);
        m_port->setValue(existing.port);
        m_user->setText(existing.user);
        m_auth->setCurrentIndex(std::max(0, m_auth->findData(int(existing.auth))));
        m_keyPath->setText(existing.keyPath);
        m_touched = touched;
    }
    m_name->setReadOnly(true);
    m_name->setToolTip(tr("Sites refer to the host by this name; remove and add it to rename"));
    m_secret->setPlaceholderText(tr("unchanged (kept in the keychain)"));
    validate();
}

void AddHostDialog::buildFields() {
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
    m_browseKey = new QPushButton(tr("&Browse…"));
    m_browseKey->setObjectName(QStringLiteral("browseKey"));
    m_browseKey->setToolTip(tr("Choose the private key file (starts in ~/.ssh)"));
    auto *keyRow = new QHBoxLayout;
    keyRow->setContentsMargins(0, 0, 0, 0);
    keyRow->addWidget(m_keyPath, 1);
    keyRow->addWidget(m_browseKey);
    m_secret = new QLineEdit;
    m_secret->setObjectName(QStringLiteral("hostSecret"));
    m_secret->setEchoMode(QLineEdit::Password);
    m_secret->setToolTip(
        tr("Stored in the OS keychain (service \"corral\"), never in the inventory"));
    m_test = new QPushButton(tr("&Test connection"));
    m_test->setObjectName(QStringLiteral("testConnection"));
    m_test->setToolTip(tr("Connect, verify the host key and show what the host runs"));
    m_output = plainLabel(new QLabel);
    m_output->setObjectName(QStringLiteral("testOutput"));
    m_output->setWordWrap(true);
    m_output->setTextInteractionFlags(Qt::TextSelectableByMouse);

    // A changed key: the whole explanation, both fingerprints, and the only way to accept it.
    m_keyBox = new QGroupBox(tr("The host key changed"));
    m_keyBox->setObjectName(QStringLiteral("hostKeyBox"));
    m_keyChange = plainLabel(new QLabel);
    m_keyChange->setObjectName(QStringLiteral("hostKeyChange"));
    m_keyChange->setWordWrap(true);
    m_keyChange->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_keyConfirmation = new QLineEdit;
    m_keyConfirmation->setObjectName(QStringLiteral("hostKeyConfirmation"));
    m_acceptKey = new QPushButton(tr("Accept the &new key"));
    m_acceptKey->setObjectName(QStringLiteral("acceptNewHostKey"));
    m_acceptKey->setToolTip(tr("Trust the key presented now; Save replaces the old entry in "
                               "Corral's known_hosts"));
    auto *keyLayout = new QVBoxLayout(m_keyBox);
    keyLayout->addWidget(m_keyChange);
    auto *confirmRow = new QFormLayout;
    confirmRow->addRow(tr("Type the host's address to accept the new key:"), m_keyConfirmation);
    keyLayout->addLayout(confirmRow);
    keyLayout->addWidget(m_acceptKey, 0, Qt::AlignRight);
    m_keyBox->hide();

    m_error = plainLabel(new QLabel);
    m_error->setObjectName(QStringLiteral("hostError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #d23c3c"));

    auto *form = new QFormLayout(this);
    form->addRow(tr("&Name"), m_name);
    form->addRow(tr("&Address"), m_address);
    form->addRow(tr("&Port"), m_port);
    form->addRow(tr("&User"), m_user);
    form->addRow(tr("Au&thentication"), m_auth);
    form->addRow(tr("&Key file"), keyRow);
    form->addRow(tr("Pass&word / passphrase"), m_secret);
    form->addRow(m_test, m_output);
    form->addRow(m_keyBox);
    form->addRow(m_error);
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel);
    form->addRow(m_buttons);

    connect(m_buttons, &QDialogButtonBox::accepted, this, &AddHostDialog::accept);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_test, &QPushButton::clicked, this, &AddHostDialog::testConnection);
    connect(m_browseKey, &QPushButton::clicked, this, &AddHostDialog::browseForKey);
    connect(m_acceptKey, &QPushButton::clicked, this, &AddHostDialog::acceptChangedKey);
    const auto edited = [this] {
        m_touched = true;
        validate();
    };
    for (QLineEdit *edit : {m_name, m_address, m_user, m_keyPath})
        connect(edit, &QLineEdit::textChanged, this, edited);
    connect(m_port, &QSpinBox::valueChanged, this, edited);
    connect(m_auth, &QComboBox::currentIndexChanged, this, edited);
    connect(m_keyConfirmation, &QLineEdit::textChanged, this, &AddHostDialog::validate);
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
    if (auto valid = host.validate(); !valid) return fail(valid.error());
    return host;
}

QString AddHostDialog::secret() const {
    return m_secret->text();
}
QString AddHostDialog::testOutput() const {
    return m_output->text();
}

QString AddHostDialog::keyHostName() const {
    return knownHostsName(m_address->text().trimmed(), quint16(m_port->value()));
}

bool AddHostDialog::changedKeyRefused() const {
    return m_changedKey && m_changedKey->hostName == keyHostName();
}

void AddHostDialog::validate() {
    const auto auth = Host::Auth(m_auth->currentData().toInt());
    m_keyPath->setEnabled(auth == Host::Auth::KeyFile);
    m_browseKey->setEnabled(auth == Host::Auth::KeyFile);
    m_secret->setEnabled(auth != Host::Auth::Agent);
    const auto result = host();
    const bool refused = changedKeyRefused();
    m_keyBox->setVisible(refused);
    QString error;
    if (m_touched && !result)
        error = result.error();
    else if (refused)
        error = tr("Not saved while the host key is refused: accept the new key above, or Cancel.");
    m_error->setText(error);
    m_buttons->button(QDialogButtonBox::Save)->setEnabled(result.ok() && !refused);
    m_test->setEnabled(result.ok() && !m_testing);
    m_acceptKey->setEnabled(refused && !m_testing &&
                            m_keyConfirmation->text().trimmed() == m_address->text().trimmed());
}

void AddHostDialog::browseForKey() {
    const QString ssh = QDir::homePath() + QStringLiteral("/.ssh");
    auto *chooser = new QFileDialog(this, tr("Private key for %1").arg(m_name->text()),
                                    QDir(ssh).exists() ? ssh : QDir::homePath());
    chooser->setObjectName(QStringLiteral("keyFileChooser"));
    chooser->setAttribute(Qt::WA_DeleteOnClose);
    chooser->setFileMode(QFileDialog::ExistingFile);
    chooser->setFilter(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
    connect(chooser, &QFileDialog::fileSelected, m_keyPath, &QLineEdit::setText);
    chooser->open();
}

void AddHostDialog::testConnection() {
    m_touched = true;
    runTest(QString());
}

void AddHostDialog::accept() {
    m_touched = true;
    validate();
    const auto described = host();
    if (!described || changedKeyRefused()) return; // validate() says why
    if (m_acceptedKey && m_acceptedKey->hostName == keyHostName()) {
        const QString path = SshConfig::fromHost(described.value()).knownHostsFile;
        const auto written =
            m_acceptedKey->replaces
                ? replaceKnownHost(path, m_acceptedKey->hostName, m_acceptedKey->entry)
                : addKnownHost(path, m_acceptedKey->entry);
        if (!written) {
            m_error->setText(tr("The host key was not recorded: %1").arg(written.error()));
            return;
        }
        m_acceptedKey.reset();
    }
    QDialog::accept();
}

void AddHostDialog::showChangedKey(const ChangedKey &changed, const QString &explanation) {
    m_changedKey = changed;
    m_keyChange->setText(
        tr("Known key (on file):  %1\nOffered now:  %2\n\n%3\n\nIf you know why the key changed "
           "(the server was reinstalled or its keys regenerated), check the offered fingerprint "
           "with the server's administrator, then type the host's address (%4) below and accept "
           "it. Save then replaces the old entry in %5.")
            .arg(changed.knownFingerprint.isEmpty() ? tr("(another key)")
                                                    : changed.knownFingerprint,
                 changed.offeredFingerprint, explanation, m_address->text().trimmed(),
                 corralKnownHostsPath()));
    m_keyConfirmation->clear();
    validate();
}

void AddHostDialog::acceptChangedKey() {
    if (!changedKeyRefused() || m_keyConfirmation->text().trimmed() != m_address->text().trimmed())
        return;
    const ChangedKey changed = *m_changedKey;
    m_acceptedKey = AcceptedKey{changed.hostName, changed.offeredFingerprint, changed.entry, true};
    m_confirmedFingerprint = changed.offeredFingerprint;
    m_changedKey.reset();
    // Connect once more trusting exactly that key (nothing recorded yet): the login and what
    // the host runs show before Save.
    runTest(changed.offeredFingerprint);
}

void AddHostDialog::runTest(const QString &trustFingerprint) {
    const auto described = host();
    if (!described) {
        validate();
        return;
    }
    SshConfig config = SshConfig::fromHost(described.value());
    config.secret = m_secret->text();
    config.trustFingerprint = trustFingerprint;
    config.connectTimeoutMs = 10000;
    const QString hostName = keyHostName();
    // A fresh session per test: the fields may have changed since the last one.
    m_probe = std::make_unique<SshHost>(described->name, config);
    m_testing = true;
    validate();
    m_output->setText(tr("Connecting to %1…").arg(config.displayName()));
    m_probe->call<ConnectionTest>(
        &HostDiscovery::testConnection, this,
        [this, trustFingerprint, hostName](Result<ConnectionTest> result) {
            m_testing = false;
            validate();
            if (!result) {
                m_output->setText(result.error());
                Q_EMIT testFinished(false);
                return;
            }
            const ConnectionTest &outcome = result.value();
            if (outcome.hostKeyUnknown && trustFingerprint.isEmpty()) {
                // Trust on first use, but only with the user's say-so and only for this key.
                const auto answer = QMessageBox::question(
                    this, tr("Unknown host key"),
                    tr("The host has never been seen before. Its key fingerprint is\n\n%1\n\n"
                       "Trust this key and connect? It is recorded when you save the host.")
                        .arg(outcome.fingerprint));
                if (answer == QMessageBox::Yes) {
                    m_confirmedFingerprint = outcome.fingerprint;
                    m_acceptedKey =
                        AcceptedKey{hostName, outcome.fingerprint, outcome.keyEntry, false};
                    return runTest(outcome.fingerprint);
                }
                m_output->setText(
                    tr("Not connected: host key %1 not trusted").arg(outcome.fingerprint));
                Q_EMIT testFinished(false);
                return;
            }
            if (outcome.hostKeyChanged) {
                if (m_acceptedKey && m_acceptedKey->hostName == hostName) m_acceptedKey.reset();
                m_output->setText(tr("REFUSED: the host key changed. Known: %1; presented now: %2.")
                                      .arg(outcome.knownFingerprint, outcome.fingerprint));
                showChangedKey(ChangedKey{hostName, outcome.knownFingerprint, outcome.fingerprint,
                                          outcome.keyEntry},
                               outcome.error);
                Q_EMIT testFinished(false);
                return;
            }
            if (!outcome.connected || !outcome.error.isEmpty()) {
                m_output->setText(outcome.error);
                Q_EMIT testFinished(false);
                return;
            }
            m_output->setText(tr("Connected in %1 ms, host key %2%3\n%4")
                                  .arg(outcome.connectMs)
                                  .arg(outcome.fingerprint,
                                       m_acceptedKey && m_acceptedKey->hostName == hostName
                                           ? tr(" (recorded when you save)")
                                           : QString(),
                                       outcome.summary));
            Q_EMIT testFinished(true);
        });
}

} // namespace corral
