#pragma once

#include <QWidget>

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;

namespace corral {

/// The selected worker's live log tail, with search and a "follow" toggle.
class LogView : public QWidget {
    Q_OBJECT
public:
    explicit LogView(QWidget *parent = nullptr);

    /// Shows `lines` under `title`; cheap when nothing changed (`version` is the log's byte count).
    void showTail(const QString &title, const QStringList &lines, qint64 version);
    void clear();
    bool isFollowing() const;
    QPlainTextEdit *text() const { return m_text; }

    /// Selects the next match of the search text, wrapping around; false when there is none.
    bool findNext();

private:
    QLabel *m_title = nullptr;
    QLineEdit *m_search = nullptr;
    QCheckBox *m_follow = nullptr;
    QPlainTextEdit *m_text = nullptr;
    QString m_shownTitle;
    qint64 m_shownVersion = -1;
};

} // namespace corral
