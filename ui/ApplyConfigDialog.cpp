#include "ApplyConfigDialog.h"
#include "PlainText.h"

#include "cluster/RemoteSite.h"
#include "ssh/HostConnections.h"
#include "upstreams/ConfigApplier.h"

#include <QDialogButtonBox>
#include <QFontDatabase>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSyntaxHighlighter>
#include <QVBoxLayout>

namespace corral {

namespace {

// Added lines green, removed red, hunk headers dimmed: the usual diff colouring.
class DiffHighlighter : public QSyntaxHighlighter {
public:
    using QSyntaxHighlighter::QSyntaxHighlighter;

protected:
    void highlightBlock(const QString &text) override {
        QTextCharFormat format;
        if (text.startsWith(QLatin1String("+++")) || text.startsWith(QLatin1String("---")))
            format.setFontWeight(QFont::Bold);
        else if (text.startsWith(QLatin1Char('+')))
            format.setForeground(QColor(0x1a, 0x7f, 0x37));
        else if (text.startsWith(QLatin1Char('-')))
            format.setForeground(QColor(0xcf, 0x22, 0x2e));
        else if (text.startsWith(QLatin1String("@@")))
            format.setForeground(QColor(0x82, 0x50, 0xdf));
        else
            return;
        setFormat(0, int(text.size()), format);
    }
};

} // namespace

ApplyConfigDialog::ApplyConfigDialog(const Site &site, HostConnections *connections,
                                     RemoteSiteOptions options, QWidget *parent)
    : QDialog(parent)
    , m_site(site)
    , m_connections(connections)
    , m_options(std::make_unique<RemoteSiteOptions>(std::move(options))) {
    setObjectName(QStringLiteral("applyConfigDialog"));
    setWindowTitle(tr("Apply balancer config: %1").arg(site.name));
    const QString where = site.balancer
                              ? site.balancer->host + QLatin1Char(':') + site.balancer->configPath
                              : QString();
    m_target = new QLabel(tr("<b>%1</b> config for <b>%2</b> on <b>%3</b>")
                              .arg(site.balancer ? site.balancer->format : QString(),
                                   site.name.toHtmlEscaped(), where.toHtmlEscaped()));
    m_diff = new QPlainTextEdit;
    m_diff->setObjectName(QStringLiteral("diff"));
    m_diff->setReadOnly(true);
    m_diff->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_diff->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    new DiffHighlighter(m_diff->document());
    m_steps = new QListWidget;
    m_steps->setObjectName(QStringLiteral("steps"));
    m_steps->setMaximumHeight(140);
    m_message = plainLabel(new QLabel);
    m_message->setObjectName(QStringLiteral("message"));
    m_message->setWordWrap(true);
    m_message->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    m_apply = m_buttons->addButton(tr("&Apply"), QDialogButtonBox::AcceptRole);
    m_apply->setObjectName(QStringLiteral("apply"));
    m_apply->setEnabled(false);
    m_apply->setToolTip(tr("Upload, validate, reload and verify; any failing step restores "
                           "the previous config"));
    // Accept would close the dialog: Apply runs and the dialog stays to show the steps.
    disconnect(m_buttons, &QDialogButtonBox::accepted, this, nullptr);
    connect(m_apply, &QPushButton::clicked, this, &ApplyConfigDialog::apply);
    connect(m_buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_target);
    layout->addWidget(m_diff, 1);
    layout->addWidget(m_steps);
    layout->addWidget(m_message);
    layout->addWidget(m_buttons);
    resize(820, 620);
    preview();
}

ApplyConfigDialog::~ApplyConfigDialog() = default;

QString ApplyConfigDialog::diff() const {
    return m_diff->toPlainText();
}

QStringList ApplyConfigDialog::steps() const {
    QStringList lines;
    for (int i = 0; i < m_steps->count(); ++i)
        lines.append(m_steps->item(i)->text());
    return lines;
}

QString ApplyConfigDialog::message() const {
    return m_message->text();
}

void ApplyConfigDialog::reject() {
    if (m_phase == Phase::Applying) {
        m_message->setText(tr("Applying… the dialog closes once the apply has finished or "
                              "rolled back."));
        return;
    }
    QDialog::reject();
}

void ApplyConfigDialog::setPhase(Phase phase, const QString &message) {
    m_phase = phase;
    m_message->setText(message);
    m_apply->setEnabled(phase == Phase::Reviewing);
    m_buttons->button(QDialogButtonBox::Close)->setEnabled(phase != Phase::Applying);
}

void ApplyConfigDialog::showDiff(const QString &diff) {
    m_reviewedDiff = diff;
    m_diff->setPlainText(diff.isEmpty() ? tr("(no change)") : diff);
}

void ApplyConfigDialog::showNoDiff() {
    m_reviewedDiff.clear();
    m_diff->setPlainText(tr("(no diff: the host's file could not be compared, see below)"));
}

void ApplyConfigDialog::preview() {
    setPhase(Phase::Previewing, tr("Reading the current file from the host…"));
    const QString noHost = tr("The site has no SSH balancer host to apply to.");
    if (!m_site.balancer || !m_connections || !m_connections->host(m_site.balancer->host)) {
        setPhase(Phase::Failed, noHost);
        Q_EMIT previewed();
        return;
    }
    const QString name = m_site.name;
    const RemoteSiteOptions options = *m_options;
    const bool started = m_connections->run<SiteApplyOutcome>(
        m_site.balancer->host,
        [name, options](HostSessions &sessions) {
            ApplyRequest request;
            request.dryRun = true;
            return RemoteSite(name, sessions, options).apply(request);
        },
        this,
        [this](SiteApplyOutcome outcome) {
            const ApplyReport *report = &outcome.report;
            if (!outcome.error.isEmpty()) {
                showNoDiff();
                setPhase(Phase::Failed, outcome.error);
            } else if (!report->ok()) {
                // A preview that failed before its diff step compared nothing: not "no change".
                if (report->diff.isEmpty())
                    showNoDiff();
                else
                    showDiff(report->diff);
                setPhase(Phase::Failed, report->error);
            } else if (!report->changed && !report->verifiedLive) {
                showDiff({});
                setPhase(Phase::Reviewing,
                         tr("The host's file has this content but was never verified live (an "
                            "earlier apply was cut off): Apply validates, reloads and verifies "
                            "it."));
            } else if (!report->changed) {
                showDiff({});
                setPhase(Phase::UpToDate, tr("The host's file is up to date: nothing to apply."));
            } else {
                showDiff(report->diff);
                setPhase(Phase::Reviewing,
                         tr("Review the change; Apply installs it with validation, reload, "
                            "verification and rollback."));
            }
            Q_EMIT previewed();
        });
    Q_ASSERT(started); // the host was found above
}

void ApplyConfigDialog::addStep(const QString &name, bool ok, const QString &detail) {
    auto *item = new QListWidgetItem((ok ? QStringLiteral("ok    ") : QStringLiteral("FAIL  ")) +
                                     name + QStringLiteral(": ") + detail);
    item->setForeground(ok ? palette().color(QPalette::Text) : QColor(0xcf, 0x22, 0x2e));
    m_steps->addItem(item);
    m_steps->scrollToBottom();
}

void ApplyConfigDialog::apply() {
    if (m_phase != Phase::Reviewing || !m_connections || !m_site.balancer) return;
    setPhase(Phase::Applying, tr("Applying…"));
    m_steps->clear();
    const Site site = m_site;
    // Steps finish on the SSH thread; each is shown as it happens, through this dialog's
    // thread (and dropped if the dialog is gone).
    QPointer<ApplyConfigDialog> self(this);
    ApplyRequest request;
    request.reviewedDiff = m_reviewedDiff;
    request.onStep = [self](const ApplyStep &step) {
        QMetaObject::invokeMethod(
            self.data(),
            [self, step] {
                if (self) self->addStep(step.name, step.ok, step.detail);
            },
            Qt::QueuedConnection);
    };
    const RemoteSiteOptions options = *m_options;
    const bool started = m_connections->run<SiteApplyOutcome>(
        site.balancer->host,
        [name = site.name, options, request](HostSessions &sessions) {
            return RemoteSite(name, sessions, options).apply(request);
        },
        this,
        [this, site](SiteApplyOutcome outcome) {
            if (!outcome.error.isEmpty()) {
                setPhase(Phase::Failed, outcome.error);
                Q_EMIT applyFinished(false, outcome.error);
                return;
            }
            const ApplyReport &report = outcome.report;
            if (outcome.stale) {
                showDiff(report.diff);
                const QString error = tr("The file on the host changed since the preview; "
                                         "nothing was applied. Review the new diff.");
                setPhase(report.changed ? Phase::Reviewing : Phase::UpToDate, error);
                Q_EMIT applyFinished(false, error);
                return;
            }
            if (report.ok()) {
                setPhase(Phase::Applied,
                         report.outcome == ApplyOutcome::Unchanged
                             ? tr("Nothing to change: the host's file is up to date and was "
                                  "verified live.")
                         : report.converged
                             ? tr("Applied: the installed file had never been verified "
                                  "live; it was validated, reloaded and verified.")
                             : tr("Applied: the new config is serving."));
                Q_EMIT applyFinished(true, {});
            } else {
                const QString error = describeApply(report, site.name, site.balancer->host);
                setPhase(Phase::Failed, error);
                Q_EMIT applyFinished(false, error);
            }
        });
    if (!started) {
        setPhase(Phase::Failed, tr("The site has no SSH balancer host to apply to."));
        Q_EMIT applyFinished(false, tr("no SSH balancer host"));
    }
}

} // namespace corral
