#pragma once

// Answers the console's confirmations in a test and remembers what was asked, so a test
// drives destructive actions without a modal box and asserts on the question's text.

#include "Confirmer.h"
#include "MainWindow.h"

#include <QList>

#include <memory>

namespace corral::test {

class ScriptedConfirmer : public Confirmer {
public:
    bool answer = true;
    /// What choose() answers when `answer` is true (false: Cancel).
    Choice choice = Choice::Accept;
    QList<Confirmation> asked;
    bool confirm(QWidget *, const Confirmation &question) override {
        asked.append(question);
        return answer;
    }
    Choice choose(QWidget *, const Confirmation &question) override {
        asked.append(question);
        return answer ? choice : Choice::Cancel;
    }
};

/// Installs a ScriptedConfirmer answering `answer` in `window`; the window owns it.
inline ScriptedConfirmer *installConfirmer(MainWindow &window, bool answer = true) {
    auto owned = std::make_unique<ScriptedConfirmer>();
    ScriptedConfirmer *raw = owned.get();
    raw->answer = answer;
    window.setConfirmer(std::move(owned));
    return raw;
}

} // namespace corral::test
