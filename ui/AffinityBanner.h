#pragma once

#include "affinity/AffinityCheck.h"

#include <QFrame>
#include <QPointer>

#include <optional>

class QDialog;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace corral {

/// The result of a session affinity check of one site (issue 22), above its workers: the
/// verdict and what was seen, the fix when users are hurt today ("Switch to sticky-cookie"),
/// the evidence on demand (each request made and what the worker answered) and a close button.
/// It never states more than the check saw: a result obtained under another policy than the
/// site's current one says so and offers a new check instead of its fix.
/// Text from the check (summaries, answers) comes from the site's workers: shown literally.
class AffinityBanner : public QFrame {
    Q_OBJECT
public:
    explicit AffinityBanner(QWidget *parent = nullptr);

    /// A check of `site` runs: says so, with nothing of an earlier result.
    void showChecking(const QString &site);
    /// The result of a check of report.site.
    void showReport(const AffinityReport &report);
    /// The site's policy now: a result obtained under another one is marked stale ("checked
    /// under round-robin; the policy is now sticky-cookie") and its fix is withdrawn. `where`
    /// qualifies the new policy when it may not be live yet (a production site's inventory).
    void setCurrentPolicy(const QString &policy, const QString &where = QString());
    /// A new policy saved but not live yet (a production site before its balancer config is
    /// applied): `note` says so in place of the stale line, and neither the fix nor a new
    /// check is offered (it would go through the balancer's old config). Empty: live again.
    void setAwaitingApply(const QString &note);
    /// Hidden, showing nothing.
    void clear();

    QString site() const { return m_site; }
    bool isChecking() const { return m_checking; }
    bool isStale() const { return m_stale; }
    bool isAwaitingApply() const { return !m_awaitingApply.isEmpty(); }
    QLabel *staleLabel() const { return m_staleNote; }
    const std::optional<AffinityReport> &report() const { return m_report; }

    QLabel *verdictLabel() const { return m_verdict; }
    QLabel *summaryLabel() const { return m_summary; }
    QPushButton *fixButton() const { return m_fix; }
    QPushButton *detailsButton() const { return m_details; }
    QPushButton *recheckButton() const { return m_recheck; }
    /// The Details window while it is open (its text: evidenceText()).
    QDialog *detailsDialog() const { return m_detailsDialog; }

    /// Every finding with its requests and answers, as the Details window shows it.
    static QString evidenceText(const AffinityReport &report);
    /// "per-process: sessions are kept in one process" and the like: the verdict in words.
    static QString verdictText(AffinityVerdict verdict);

Q_SIGNALS:
    /// "Switch to sticky-cookie" clicked for `site`.
    void fixRequested(const QString &site);
    /// "Check again" clicked for `site`.
    void recheckRequested(const QString &site);
    /// Closed by the user: the site's result is put away.
    void dismissed(const QString &site);

private:
    void showDetails();
    /// Buttons, colours and the stale line from the state.
    void refresh();

    QString m_site;
    bool m_checking = false;
    bool m_stale = false;
    QString m_staleText;     ///< the stale line (setCurrentPolicy())
    QString m_awaitingApply; ///< the note while a saved policy is not applied yet
    std::optional<AffinityReport> m_report;
    QLabel *m_verdict = nullptr;
    QLabel *m_summary = nullptr;
    QLabel *m_fixes = nullptr;
    QLabel *m_staleNote = nullptr;
    QProgressBar *m_busy = nullptr;
    QPushButton *m_fix = nullptr;
    QPushButton *m_details = nullptr;
    QPushButton *m_recheck = nullptr;
    QPushButton *m_close = nullptr;
    QPointer<QDialog> m_detailsDialog;
    QPlainTextEdit *m_detailsText = nullptr;
};

} // namespace corral
