#pragma once

#include "model/Host.h"
#include "model/Site.h"

#include <QDialog>

class QComboBox;
class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QListWidget;

namespace corral {

/// Add or edit a production site: its workers (command, hosts, backends) and the nginx,
/// HAProxy or Apache in front of them on an SSH host. The same fields as `corralctl site
/// add|update` with the balancer flags, built from the same core pieces (the stock Debian
/// defaults of SiteBalancer::stockDebian(), splitShellWords() for the validate and reload
/// commands, SiteBalancer::setListen(), Site::problems()), so both give the same site.
class ProductionSiteDialog : public QDialog {
    Q_OBJECT
public:
    /// `sshHosts`: the inventory's SSH hosts, to choose the balancer's and the workers' from.
    /// `takenNames`: sites already in the inventory (a new site may not reuse one).
    ProductionSiteDialog(QList<Host> sshHosts, QStringList takenNames, QWidget *parent = nullptr);

    /// Edit mode: prefills every field from `site` and keeps what the dialog does not show
    /// (ports, environment, TLS...). The name cannot change.
    void setSite(const Site &site);
    /// The site described by the fields; fails naming every field that is wrong.
    Result<Site> site() const;

private:
    void validate();
    /// Fills the fields that depend on the balancer's kind (and the site's name) with the
    /// stock Debian values, where they still hold the previous defaults (edits survive).
    void refreshDefaults();

    QList<Host> m_hosts;
    QStringList m_takenNames;
    Site m_base; ///< what the fields start from: the edited site, or a new one
    bool m_editing = false;
    SiteBalancer m_defaults; ///< the stock values the kind-dependent fields hold until edited

    QLineEdit *m_name = nullptr;
    QLineEdit *m_serverNames = nullptr;
    QLineEdit *m_command = nullptr;
    QLineEdit *m_health = nullptr;
    QLineEdit *m_backends = nullptr;
    QListWidget *m_workerHosts = nullptr;
    QComboBox *m_policy = nullptr;
    QComboBox *m_kind = nullptr;
    QComboBox *m_balancerHost = nullptr;
    QLineEdit *m_listen = nullptr;
    QLineEdit *m_configPath = nullptr;
    QLineEdit *m_validate = nullptr;
    QLineEdit *m_reload = nullptr;
    QLineEdit *m_probeUrl = nullptr;
    QLineEdit *m_errorLog = nullptr;
    QLineEdit *m_logDirectory = nullptr;
    QLineEdit *m_runtimeDirectory = nullptr;
    QLabel *m_error = nullptr;
    QDialogButtonBox *m_buttons = nullptr;
};

} // namespace corral
