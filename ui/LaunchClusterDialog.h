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
    /// The site described by the fields; fails naming the field that is wrong.
    Result<Site> site() const;
    static int defaultWorkers();

private:
    void validate();
    /// Who holds the listen address now ("" when it is free or not an address yet).
    QString listenAddressHolder() const;

    QString m_demoWorkerPath;
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
    QLabel *m_error = nullptr;
    QDialogButtonBox *m_buttons = nullptr;
};

} // namespace corral
