#pragma once

#include "model/Host.h"

#include <QDialog>

#include <memory>

class QComboBox;
class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace corral {

class SshHost;

/// Adds a remote host: address, user, authentication; "Test connection" connects off the UI
/// thread, shows an unknown host key's SHA256 fingerprint for confirmation (a changed key is
/// refused with both fingerprints) and prints what the host runs. A password or passphrase
/// goes to the OS keychain, never to the inventory.
class AddHostDialog : public QDialog {
    Q_OBJECT
public:
    explicit AddHostDialog(QWidget *parent = nullptr);
    ~AddHostDialog() override;

    /// The host described by the fields; fails naming the field that is wrong.
    Result<Host> host() const;
    /// Password or passphrase typed in (empty for agent auth); stored by the caller.
    QString secret() const;
    /// The fingerprint the user confirmed in "Test connection" (empty if none was asked).
    QString confirmedFingerprint() const { return m_confirmedFingerprint; }
    QString testOutput() const;

    /// Starts "Test connection" (what the button does).
    void testConnection();

Q_SIGNALS:
    /// A test connection finished; `ok` false with the reason in testOutput().
    void testFinished(bool ok);

private:
    void validate();
    void runTest(const QString &acceptFingerprint);

    QLineEdit *m_name = nullptr;
    QLineEdit *m_address = nullptr;
    QSpinBox *m_port = nullptr;
    QLineEdit *m_user = nullptr;
    QComboBox *m_auth = nullptr;
    QLineEdit *m_keyPath = nullptr;
    QLineEdit *m_secret = nullptr;
    QPushButton *m_test = nullptr;
    QLabel *m_output = nullptr;
    QLabel *m_error = nullptr;
    QDialogButtonBox *m_buttons = nullptr;
    std::unique_ptr<SshHost> m_probe;
    QString m_confirmedFingerprint;
};

} // namespace corral
