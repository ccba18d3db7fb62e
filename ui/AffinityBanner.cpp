#include "AffinityBanner.h"
#include "PlainText.h"

#include <QDialog>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QStyle>
#include <QVBoxLayout>

namespace corral {

namespace {

QLabel *wrappedLabel(const QString &objectName) {
    auto *label = plainLabel(new QLabel);
    label->setObjectName(objectName);
    label->setWordWrap(true);
    label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    return label;
}

const QString StickyCookie = QStringLiteral("sticky-cookie");

} // namespace

AffinityBanner::AffinityBanner(QWidget *parent)
    : QFrame(parent) {
    setObjectName(QStringLiteral("affinityBanner"));
    setFrameShape(QFrame::StyledPanel);
    m_verdict = wrappedLabel(QStringLiteral("affinityVerdict"));
    QFont bold = m_verdict->font();
    bold.setBold(true);
    m_verdict->setFont(bold);
    m_summary = wrappedLabel(QStringLiteral("affinitySummary"));
    m_fixes = wrappedLabel(QStringLiteral("affinityFixes"));
    m_staleNote = wrappedLabel(QStringLiteral("affinityStale"));
    m_busy = new QProgressBar;
    m_busy->setRange(0, 0); // a check has no steps to count: it is running, or it is not
    m_busy->setMaximumHeight(8);
    m_busy->setTextVisible(false);

    m_fix = new QPushButton(tr("Switch to sticky-cookie"));
    m_fix->setObjectName(QStringLiteral("affinityFix"));
    m_fix->setToolTip(tr("Send each client's requests to the worker that set its cookie, then "
                         "check again"));
    m_details = new QPushButton(tr("Details…"));
    m_details->setObjectName(QStringLiteral("affinityDetails"));
    m_details->setToolTip(tr("Every request the check made and what each worker answered"));
    m_recheck = new QPushButton(tr("Check again"));
    m_recheck->setObjectName(QStringLiteral("affinityRecheck"));
    m_close = new QPushButton(style()->standardIcon(QStyle::SP_TitleBarCloseButton), QString());
    m_close->setObjectName(QStringLiteral("affinityClose"));
    m_close->setToolTip(tr("Put this result away"));
    m_close->setFlat(true);
    connect(m_fix, &QPushButton::clicked, this, [this] { Q_EMIT fixRequested(m_site); });
    connect(m_recheck, &QPushButton::clicked, this, [this] { Q_EMIT recheckRequested(m_site); });
    connect(m_details, &QPushButton::clicked, this, &AffinityBanner::showDetails);
    connect(m_close, &QPushButton::clicked, this, [this] {
        const QString site = m_site;
        clear();
        Q_EMIT dismissed(site);
    });

    auto *text = new QVBoxLayout;
    text->setSpacing(2);
    text->addWidget(m_verdict);
    text->addWidget(m_summary);
    text->addWidget(m_fixes);
    text->addWidget(m_staleNote);
    text->addWidget(m_busy);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_fix);
    buttons->addWidget(m_recheck);
    buttons->addWidget(m_details);
    buttons->addWidget(m_close);
    auto *layout = new QHBoxLayout(this);
    layout->setContentsMargins(8, 4, 4, 4);
    layout->addLayout(text, 1);
    layout->addLayout(buttons);
    layout->setAlignment(buttons, Qt::AlignTop);
    clear();
}

QString AffinityBanner::verdictText(AffinityVerdict verdict) {
    const QString name = verdictName(verdict);
    switch (verdict) {
    case AffinityVerdict::Stateless:
        return tr("%1: no session cookie kept and no long-polling endpoint found").arg(name);
    case AffinityVerdict::Shared:
        return tr("%1: every worker knows every session").arg(name);
    case AffinityVerdict::PerProcess:
        return tr("%1: a session is known only to the worker that started it").arg(name);
    case AffinityVerdict::StickyRequired:
        return tr("%1: long-polling sessions live in one worker and the policy is not sticky")
            .arg(name);
    case AffinityVerdict::StickyVerified:
        return tr("%1: sessions live in one worker and the sticky policy keeps them there")
            .arg(name);
    case AffinityVerdict::StickyBroken:
        return tr("%1: the sticky policy did not keep a session on its worker").arg(name);
    case AffinityVerdict::WebSocketOnly:
        return tr("%1: WebSocket only, fine without stickiness").arg(name);
    case AffinityVerdict::Inconclusive:
        break;
    }
    return tr("%1: Corral could not tell (the details say why)").arg(name);
}

QString AffinityBanner::evidenceText(const AffinityReport &report) {
    QStringList lines;
    lines.append(
        tr("Site %1, policy %2: %3").arg(report.site, report.policy, verdictName(report.verdict)));
    lines.append(report.summary);
    if (!report.ok()) lines.append(tr("The check could not run: %1").arg(report.error));
    for (const QString &fix : report.fixes)
        lines.append(tr("Fix: %1").arg(fix));
    for (const AffinityFinding &finding : report.findings) {
        lines.append(QString());
        QString what = finding.kind + QStringLiteral(" ") + finding.path;
        if (!finding.cookie.isEmpty()) what += tr(" (cookie %1)").arg(finding.cookie);
        lines.append(tr("%1 — %2: %3").arg(what, verdictName(finding.verdict), finding.summary));
        for (const AffinityExchange &exchange : finding.evidence) {
            lines.append(QStringLiteral("  → %1: %2").arg(exchange.endpoint, exchange.request));
            lines.append(
                exchange.status == 0
                    ? QStringLiteral("    ← %1").arg(exchange.answer)
                    : QStringLiteral("    ← %1 %2").arg(exchange.status).arg(exchange.answer));
        }
    }
    return lines.join(QLatin1Char('\n'));
}

void AffinityBanner::showChecking(const QString &site) {
    if (m_detailsDialog) m_detailsDialog->close(); // its evidence is about to be replaced
    m_site = site;
    m_checking = true;
    m_stale = false;
    m_awaitingApply.clear();
    m_report.reset();
    refresh();
}

void AffinityBanner::showReport(const AffinityReport &report) {
    m_site = report.site;
    m_checking = false;
    m_stale = false;
    m_awaitingApply.clear();
    m_report = report;
    if (m_detailsDialog) m_detailsText->setPlainText(evidenceText(report));
    refresh();
}

void AffinityBanner::setCurrentPolicy(const QString &policy, const QString &where) {
    if (!m_report || m_checking) return;
    // A report without a policy (the check could not run) states nothing a policy changes.
    const bool stale = !m_report->policy.isEmpty() && policy != m_report->policy;
    QString note;
    if (stale)
        note = where.isEmpty() ? tr("Checked under %1; the policy is now %2: check again.")
                                     .arg(m_report->policy, policy)
                               : tr("Checked under %1; the policy is now %2 (%3): check again.")
                                     .arg(m_report->policy, policy, where);
    if (stale == m_stale && note == m_staleText) return;
    m_stale = stale;
    m_staleText = note;
    refresh();
}

void AffinityBanner::setAwaitingApply(const QString &note) {
    if (note == m_awaitingApply) return;
    m_awaitingApply = note;
    refresh();
}

void AffinityBanner::clear() {
    if (m_detailsDialog) m_detailsDialog->close();
    m_site.clear();
    m_checking = false;
    m_stale = false;
    m_awaitingApply.clear();
    m_report.reset();
    refresh();
}

void AffinityBanner::refresh() {
    setVisible(m_checking || m_report);
    m_busy->setVisible(m_checking);
    m_summary->setVisible(m_report.has_value());
    const bool awaiting = m_report && !m_awaitingApply.isEmpty();
    m_staleNote->setText(awaiting ? m_awaitingApply : m_staleText);
    const bool stale = m_stale || awaiting;
    m_staleNote->setVisible(stale);
    const bool needsFix = m_report && verdictNeedsFix(m_report->verdict);
    // The fix is offered for what is true now: not for a result the policy outdated, and not
    // when the site is sticky already (a broken sticky policy needs a look, not a click).
    m_fix->setVisible(needsFix && !stale && m_report->policy != StickyCookie);
    m_fixes->setVisible(needsFix && !stale && !m_report->fixes.isEmpty());
    m_details->setVisible(m_report.has_value());
    // Not while the balancer still runs the old config: a check would report its old policy.
    m_recheck->setVisible(m_report.has_value() && !awaiting);
    m_close->setVisible(!m_checking);
    QString background = QStringLiteral("#eeeeee");
    QString border = QStringLiteral("#9e9e9e");
    if (m_checking) {
        m_verdict->setText(tr("Checking session affinity of %1…").arg(m_site));
    } else if (m_report) {
        m_verdict->setText(
            tr("Session affinity of %1: %2").arg(m_site, verdictText(m_report->verdict)));
        m_summary->setText(m_report->ok() ? m_report->summary
                                          : tr("The check could not run: %1").arg(m_report->error));
        m_fixes->setText(tr("Fix: %1").arg(m_report->fixes.join(QStringLiteral("; "))));
        if (stale) {
            // Grey: history, not the state of the site.
        } else if (needsFix) {
            background = QStringLiteral("#fdecea");
            border = QStringLiteral("#d23c3c");
        } else if (m_report->verdict == AffinityVerdict::Inconclusive) {
            background = QStringLiteral("#fff8e1");
            border = QStringLiteral("#e0a800");
        } else {
            background = QStringLiteral("#e8f5e9");
            border = QStringLiteral("#2e7d32");
        }
    }
    // Dark text on the banner's light colours, whatever the theme's text colour.
    const QString style = QStringLiteral("QFrame#affinityBanner { background: %1; border: 1px "
                                         "solid %2; border-radius: 3px; }"
                                         " QFrame#affinityBanner QLabel { color: #202020; }")
                              .arg(background, border);
    if (styleSheet() != style) setStyleSheet(style);
}

void AffinityBanner::showDetails() {
    if (!m_report) return;
    if (!m_detailsDialog) {
        auto *dialog = new QDialog(this);
        dialog->setObjectName(QStringLiteral("affinityDetailsDialog"));
        dialog->setAttribute(Qt::WA_DeleteOnClose);
        m_detailsText = new QPlainTextEdit;
        m_detailsText->setObjectName(QStringLiteral("affinityEvidence"));
        m_detailsText->setReadOnly(true);
        m_detailsText->setLineWrapMode(QPlainTextEdit::WidgetWidth);
        auto *buttons = new QDialogButtonBox(QDialogButtonBox::Close);
        connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::close);
        auto *layout = new QVBoxLayout(dialog);
        layout->addWidget(m_detailsText);
        layout->addWidget(buttons);
        dialog->resize(820, 420);
        m_detailsDialog = dialog;
    }
    m_detailsDialog->setWindowTitle(tr("Session affinity of %1: evidence").arg(m_site));
    m_detailsText->setPlainText(evidenceText(*m_report));
    m_detailsDialog->show();
    m_detailsDialog->raise();
}

} // namespace corral
