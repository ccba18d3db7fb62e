#pragma once

#include <QString>

class QWidget;

namespace corral {

/// One question asked before a destructive action.
struct Confirmation {
    /// Where "Don't ask again" is remembered (QSettings "confirm/KEY"). Empty: the question is
    /// always asked and offers no such checkbox (removing a site's last running worker).
    QString key;
    QString title;
    QString text;        ///< what will happen, in one or two sentences
    QString acceptLabel; ///< the button that goes ahead ("Stop site", "Remove worker", ...)
    /// A second way to go ahead, offered by choose() next to acceptLabel ("Leave running and
    /// quit"); confirm() ignores it.
    QString alternativeLabel;
};

/// Asks before destructive actions. The console routes every such question through one
/// instance, so a test can answer them (a subclass) and a user can silence each kind with
/// "Don't ask again".
class Confirmer {
public:
    virtual ~Confirmer() = default;
    /// True to go ahead: at once when the question's key was silenced, else after a modal
    /// QMessageBox (Cancel is the default button).
    virtual bool confirm(QWidget *parent, const Confirmation &question);

    enum class Choice { Cancel, Accept, Alternative };
    /// For a question with two ways to go ahead (acceptLabel, alternativeLabel) and Cancel:
    /// the one chosen, at once when the question's key was silenced with a choice, else after
    /// a modal QMessageBox (Cancel is the default button).
    virtual Choice choose(QWidget *parent, const Confirmation &question);

    static bool isSilenced(const QString &key);
    static void setSilenced(const QString &key, bool silenced);
};

} // namespace corral
