#pragma once

#include "model/Site.h"

#include <QDialog>
#include <QPointer>

#include <memory>

class QDialogButtonBox;
class QLabel;
class QListWidget;
class QPlainTextEdit;
class QPushButton;

namespace corral {

class HostConnections;
struct RemoteSiteOptions;
struct ApplyReport;

/// "Apply balancer config": renders the site for its production balancer, shows the unified
/// diff against the host's file (a dry run, nothing changed yet), and only on "Apply" installs
/// it transactionally (ConfigApplier: upload, install, validate, reload, verify, rollback),
/// listing each step as it finishes. If the host's file changed between the preview and the
/// click, nothing is applied and the new diff is shown instead: what gets applied is always
/// what was reviewed. All SSH work runs on the host's thread.
class ApplyConfigDialog : public QDialog {
    Q_OBJECT
public:
    /// `host` is the SSH host named by site.balancer (not owned). The preview starts at once.
    /// Operations run through `connections` as `options` say (the console's).
    ApplyConfigDialog(const Site &site, HostConnections *connections, RemoteSiteOptions options,
                      QWidget *parent = nullptr);
    ~ApplyConfigDialog() override;

    enum class Phase { Previewing, Reviewing, UpToDate, Applying, Applied, Failed };
    Phase phase() const { return m_phase; }
    QString diff() const;
    /// "ok    NAME: detail" / "FAIL  NAME: detail", one per finished step of the apply.
    QStringList steps() const;
    QString message() const;
    QPushButton *applyButton() const { return m_apply; }

    /// Closing is refused while an apply runs: its outcome (applied, or rolled back) must be
    /// seen.
    void reject() override;

Q_SIGNALS:
    /// The preview is shown (or failed): phase() is Reviewing, UpToDate or Failed.
    void previewed();
    /// The apply finished: `applied` true when the new config is in place and serving.
    void applyFinished(bool applied, const QString &error);

private:
    void preview();
    void apply();
    /// The diff pane when the preview failed before comparing anything.
    void showNoDiff();
    void showDiff(const QString &diff);
    void addStep(const QString &name, bool ok, const QString &detail);
    void setPhase(Phase phase, const QString &message);

    Site m_site;
    QPointer<HostConnections> m_connections;
    std::unique_ptr<RemoteSiteOptions> m_options;
    QString m_reviewedDiff;
    Phase m_phase = Phase::Previewing;
    QLabel *m_target = nullptr;
    QPlainTextEdit *m_diff = nullptr;
    QListWidget *m_steps = nullptr;
    QLabel *m_message = nullptr;
    QDialogButtonBox *m_buttons = nullptr;
    QPushButton *m_apply = nullptr;
};

} // namespace corral
