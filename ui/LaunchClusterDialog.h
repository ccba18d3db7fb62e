#pragma once

#include "model/Site.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace corral {

/// The dev cluster launcher: what to run, how many workers, where the balancer listens.
class LaunchClusterDialog : public QDialog {
    Q_OBJECT
public:
    /// `demoWorkerPath` is what "Demo worker" runs.
    LaunchClusterDialog(QString demoWorkerPath, QWidget *parent = nullptr);

    /// Prefills the fields from a site (e.g. an inventory site to launch again).
    void setSite(const Site &site);
    /// Names and listen addresses of the sites known (saved or running): the proposed name
    /// ("dev", "dev-2", ...) and listen address (127.0.0.1:8080 upwards, also free on this
    /// machine) avoid them.
    void setTaken(const QStringList &names, const QStringList &listenAddresses);
    /// Edit site: the fields hold `site`'s settings, its name cannot change, and the button
    /// saves. A `running` site holds its own listen address: that one is not refused.
    void setEditing(const Site &site, bool running);
    bool isEditing() const { return m_editing; }
    /// The first of 127.0.0.1:8080, :8081 ... that nothing listens on and is not in `avoid`.
    static QString proposeListenAddress(const QStringList &avoid);
    /// `base`, or `base-2`, `base-3` ... the first not in `taken`.
    static QString proposeName(const QString &base, const QStringList &taken);
    /// The site described by the fields; fails naming the field that is wrong.
    Result<Site> site() const;
    static int defaultWorkers();

private:
    void validate();
    /// The rows of the embedded proxy's settings, in a group box.
    QWidget *createProxySettings();
    /// Who holds the listen address now ("" when it is free or not an address yet).
    QString listenAddressHolder() const;

    QString m_demoWorkerPath;
    bool m_editing = false;
    QString m_ownListen; ///< the edited running site's address: held by it, not refused
    QLineEdit *m_name = nullptr;
    QCheckBox *m_demo = nullptr;
    QLineEdit *m_command = nullptr;
    QLineEdit *m_workingDirectory = nullptr;
    QSpinBox *m_workers = nullptr;
    QSpinBox *m_basePort = nullptr;
    QLineEdit *m_listen = nullptr;
    QLabel *m_listenStatus = nullptr; ///< under the listen field: who holds that address
    QLineEdit *m_health = nullptr;
    QComboBox *m_policy = nullptr;
    // The embedded proxy's settings (issue 19), the Site fields of the same names.
    QLineEdit *m_serverNames = nullptr;
    QLineEdit *m_staticRoot = nullptr;
    QCheckBox *m_staticFollowSymlinks = nullptr;
    QLineEdit *m_cacheControl = nullptr;
    QCheckBox *m_gzip = nullptr;
    QLineEdit *m_accessLog = nullptr;
    QCheckBox *m_tls = nullptr;
    QLineEdit *m_tlsCert = nullptr;
    QLineEdit *m_tlsKey = nullptr;
    QLineEdit *m_redirectHttp = nullptr;
    /// The fields the dialog does not show, kept from setSite() so saving an edit keeps them.
    Site m_base;
    QLabel *m_error = nullptr;
    QDialogButtonBox *m_buttons = nullptr;
};

} // namespace corral
