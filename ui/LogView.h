#pragma once

#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;

namespace corral {

/// The selected worker's live log tail, with search and a "follow" toggle; a selector
/// switches to the site's access log (its proxy's, one line per request).
class LogView : public QWidget {
    Q_OBJECT
public:
    explicit LogView(QWidget *parent = nullptr);

    enum class Source { Worker, AccessLog };
    Source source() const;
    void setSource(Source source);
    /// The selector's entries ("Worker log", "Access log").
    QComboBox *sourceSelector() const { return m_source; }

    /// Shows `lines` under `title`; cheap when nothing changed (`version` is the log's byte count).
    void showTail(const QString &title, const QStringList &lines, qint64 version);
    void clear();
    bool isFollowing() const;
    QPlainTextEdit *text() const { return m_text; }

    /// Selects the next match of the search text, wrapping around; false when there is none,
    /// and then neither the selection nor the scroll position moves. Either way the label
    /// next to the search field says "match 2 of 5" or "no match".
    bool findNext();
    /// Matches of the search text in the shown log (case-insensitive, as findNext()).
    int matchCount() const { return m_matchCount; }
    QLabel *matchLabel() const { return m_matches; }

Q_SIGNALS:
    /// The user picked the worker's log or the access log: the owner shows the other one.
    void sourceChanged(corral::LogView::Source source);

private:
    /// Counts the matches and says so next to the search field ("5 matches", "no match").
    void updateMatches();
    /// "match N of M" for the selection findNext() made.
    void showCurrentMatch();

    QComboBox *m_source = nullptr;
    QLabel *m_title = nullptr;
    QLabel *m_matches = nullptr;
    int m_matchCount = 0;
    QLineEdit *m_search = nullptr;
    QCheckBox *m_follow = nullptr;
    QPlainTextEdit *m_text = nullptr;
    QString m_shownTitle;
    qint64 m_shownVersion = -1;
};

} // namespace corral
