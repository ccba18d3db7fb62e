#include "LogView.h"

#include <QCheckBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QVBoxLayout>

namespace corral {

LogView::LogView(QWidget *parent)
    : QWidget(parent) {
    m_title = new QLabel(tr("Select a worker to see its log."));
    m_search = new QLineEdit;
    m_search->setObjectName(QStringLiteral("logSearch"));
    m_search->setPlaceholderText(tr("Search the log (Enter: next match)"));
    m_search->setClearButtonEnabled(true);
    m_search->setToolTip(tr("Find text in the log tail; Enter jumps to the next match"));
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
    bar->addWidget(m_title, 1);
    bar->addWidget(m_search, 1);
    bar->addWidget(m_follow);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(m_text);

    connect(m_search, &QLineEdit::returnPressed, this, [this] {
        m_follow->setChecked(false);
        findNext();
    });
    connect(m_follow, &QCheckBox::toggled, this, [this](bool on) {
        if (on) m_text->verticalScrollBar()->setValue(m_text->verticalScrollBar()->maximum());
    });
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
}

bool LogView::findNext() {
    const QString needle = m_search->text();
    if (needle.isEmpty()) return false;
    if (m_text->find(needle)) return true;
    QTextCursor cursor = m_text->textCursor();
    cursor.movePosition(QTextCursor::Start);
    m_text->setTextCursor(cursor);
    return m_text->find(needle);
}

} // namespace corral
