#include "LogView.h"
#include "PlainText.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPalette>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QVBoxLayout>

namespace corral {

LogView::LogView(QWidget *parent)
    : QWidget(parent) {
    m_source = new QComboBox;
    m_source->setObjectName(QStringLiteral("logSource"));
    m_source->addItem(tr("Worker log"), int(Source::Worker));
    m_source->addItem(tr("Access log"), int(Source::AccessLog));
    m_source->setToolTip(tr("The selected worker's output, or the site's access log: one line "
                            "per request its proxy served (nginx's combined format, the "
                            "upstream and the times)"));
    m_title = plainLabel(new QLabel(tr("Select a worker to see its log.")));
    m_search = new QLineEdit;
    m_search->setObjectName(QStringLiteral("logSearch"));
    m_search->setPlaceholderText(tr("Search the log (Enter: next match)"));
    m_search->setClearButtonEnabled(true);
    m_search->setToolTip(tr("Find text in the log tail; Enter jumps to the next match"));
    m_matches = plainLabel(new QLabel);
    m_matches->setObjectName(QStringLiteral("logMatches"));
    m_follow = new QCheckBox(tr("Follow"));
    m_follow->setObjectName(QStringLiteral("logFollow"));
    m_follow->setChecked(true);
    m_follow->setToolTip(tr("Keep scrolling to the newest line"));
    m_text = new QPlainTextEdit;
    m_text->setObjectName(QStringLiteral("logText"));
    m_text->setReadOnly(true);
    m_text->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_text->setMaximumBlockCount(5000); // bounded, whatever the worker prints
    m_text->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));

    auto *bar = new QHBoxLayout;
    bar->addWidget(m_source);
    bar->addWidget(m_title, 1);
    bar->addWidget(m_search, 1);
    bar->addWidget(m_matches);
    bar->addWidget(m_follow);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(m_text);

    connect(m_search, &QLineEdit::textChanged, this, &LogView::updateMatches);
    connect(m_search, &QLineEdit::returnPressed, this, [this] {
        // Stop following only when there is a match to look at: "no match" leaves the view be.
        if (m_matchCount > 0) m_follow->setChecked(false);
        findNext();
    });
    connect(m_source, &QComboBox::currentIndexChanged, this, [this] {
        m_shownVersion = -1; // whatever comes next is shown, even the same text
        Q_EMIT sourceChanged(source());
    });
    connect(m_follow, &QCheckBox::toggled, this, [this](bool on) {
        if (on) m_text->verticalScrollBar()->setValue(m_text->verticalScrollBar()->maximum());
    });
}

LogView::Source LogView::source() const {
    return Source(m_source->currentData().toInt());
}

void LogView::setSource(Source source) {
    m_source->setCurrentIndex(m_source->findData(int(source)));
}

bool LogView::isFollowing() const {
    return m_follow->isChecked();
}

void LogView::clear() {
    m_text->clear();
    m_title->setText(tr("Select a worker to see its log."));
    m_shownTitle.clear();
    m_shownVersion = -1;
}

void LogView::showTail(const QString &title, const QStringList &lines, qint64 version) {
    if (title == m_shownTitle && version == m_shownVersion) return;
    m_shownTitle = title;
    m_shownVersion = version;
    m_title->setText(title);
    QScrollBar *scroll = m_text->verticalScrollBar();
    const int position = scroll->value();
    m_text->setPlainText(lines.join(QLatin1Char('\n')));
    scroll->setValue(isFollowing() ? scroll->maximum() : position);
    if (!m_search->text().isEmpty()) updateMatches();
}

void LogView::updateMatches() {
    const QString needle = m_search->text();
    m_matchCount =
        needle.isEmpty() ? 0 : int(m_text->toPlainText().count(needle, Qt::CaseInsensitive));
    QPalette palette = m_search->palette();
    if (needle.isEmpty()) {
        m_matches->clear();
        m_search->setPalette(QPalette());
        return;
    }
    m_matches->setText(m_matchCount == 0   ? tr("no match")
                       : m_matchCount == 1 ? tr("1 match")
                                           : tr("%1 matches").arg(m_matchCount));
    // A search field that turns red says "nothing" at a glance, as browsers do.
    if (m_matchCount == 0)
        palette.setColor(QPalette::Base, QColor(0xf6, 0xd5, 0xd5));
    else
        palette = QPalette();
    m_search->setPalette(palette);
}

void LogView::showCurrentMatch() {
    const QTextCursor selection = m_text->textCursor();
    const QString before = m_text->toPlainText().left(selection.selectionStart());
    const int index = int(before.count(m_search->text(), Qt::CaseInsensitive)) + 1;
    m_matches->setText(tr("match %1 of %2").arg(index).arg(m_matchCount));
}

bool LogView::findNext() {
    const QString needle = m_search->text();
    if (needle.isEmpty()) return false;
    updateMatches();
    // Nothing to find: leave the cursor and the scroll position where they are (wrapping to
    // the start first would jump the view to the top for nothing).
    if (m_matchCount == 0) return false;
    if (!m_text->find(needle)) {
        QTextCursor cursor = m_text->textCursor();
        cursor.movePosition(QTextCursor::Start);
        m_text->setTextCursor(cursor);
        if (!m_text->find(needle)) return false;
    }
    showCurrentMatch();
    return true;
}

} // namespace corral
