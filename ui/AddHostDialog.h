#pragma once

#include "model/Host.h"

#include <QDialog>

#include <memory>
#include <optional>

class QComboBox;
class QDialogButtonBox;
class QGroupBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace corral {

class SshHost;

/// Adds a remote host, or edits one (the same fields pre-filled, its name fixed because sites
/// refer to it by name): address, user, authentication; "Test connection" connects off the UI
/// thread, shows an unknown host key's SHA256 fingerprint for confirmation and prints what
/// the host runs. A changed key is refused (Save too) with both fingerprints in full; the user
/// may accept the new key only by typing the host's address, as OpenSSH makes one edit
/// known_hosts. An accepted key is written to Corral's known_hosts by Save, never before:
/// Cancel leaves the file as it was. A password or passphrase goes to the OS keychain (the
/// caller stores it), never to the inventory.
class AddHostDialog : public QDialog {
    Q_OBJECT
public:
    explicit AddHostDialog(QWidget *parent = nullptr);
    /// Edit mode: the fields of `existing`.
    explicit AddHostDialog(const Host &existing, QWidget *parent = nullptr);
    ~AddHostDialog() override;

    bool isEditing() const { return m_editing; }
    /// The host described by the fields; fails naming the field that is wrong.
    Result<Host> host() const;
    /// Password or passphrase typed in (empty for agent auth); stored by the caller.
    QString secret() const;
    /// The fingerprint the user confirmed in "Test connection" (empty if none was asked).
    QString confirmedFingerprint() const { return m_confirmedFingerprint; }
    QString testOutput() const;

    /// Starts "Test connection" (what the button does).
    void testConnection();
    /// Save: records the host key accepted in this dialog (if any) in Corral's known_hosts,
    /// then closes. Refused while the test found a changed key that was not accepted; a key
    /// that cannot be written keeps the dialog open with the reason.
    void accept() override;

Q_SIGNALS:
    /// A test connection finished; `ok` false with the reason in testOutput().
    void testFinished(bool ok);

private:
    /// A host key the user accepted in this dialog, written by Save.
    struct AcceptedKey {
        QString hostName;      ///< as known_hosts names the host: knownHostsName()
        QString fingerprint;   ///< "SHA256:..."
        QByteArray entry;      ///< the known_hosts line
        bool replaces = false; ///< a changed key: the host's old entries go
    };
    /// The key presented when a test was refused for a changed key.
    struct ChangedKey {
        QString hostName;
        QString knownFingerprint;
        QString offeredFingerprint;
        QByteArray entry;
    };

    void buildFields();
    void validate();
    void runTest(const QString &trustFingerprint);
    void showChangedKey(const ChangedKey &changed, const QString &explanation);
    void acceptChangedKey();
    void browseForKey();
    /// knownHostsName() of the address and port in the fields.
    QString keyHostName() const;
    bool changedKeyRefused() const;

    bool m_editing = false;
    bool m_touched = false; ///< a field was edited, or Test/Save pressed: errors may show
    bool m_testing = false;
    QLineEdit *m_name = nullptr;
    QLineEdit *m_address = nullptr;
    QSpinBox *m_port = nullptr;
    QLineEdit *m_user = nullptr;
    QComboBox *m_auth = nullptr;
    QLineEdit *m_keyPath = nullptr;
    QPushButton *m_browseKey = nullptr;
    QLineEdit *m_secret = nullptr;
    QPushButton *m_test = nullptr;
    QLabel *m_output = nullptr;
    QGroupBox *m_keyBox = nullptr;
    QLabel *m_keyChange = nullptr;
    QLineEdit *m_keyConfirmation = nullptr;
    QPushButton *m_acceptKey = nullptr;
    QLabel *m_error = nullptr;
    QDialogButtonBox *m_buttons = nullptr;
    std::unique_ptr<SshHost> m_probe;
    QString m_confirmedFingerprint;
    std::optional<ChangedKey> m_changedKey;
    std::optional<AcceptedKey> m_acceptedKey;
};

} // namespace corral
