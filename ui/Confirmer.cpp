#include "Confirmer.h"

#include <QCheckBox>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>

namespace corral {

static QString settingsKey(const QString &key) {
    return QStringLiteral("confirm/") + key;
}

bool Confirmer::isSilenced(const QString &key) {
    return !key.isEmpty() && QSettings().value(settingsKey(key), false).toBool();
}

void Confirmer::setSilenced(const QString &key, bool silenced) {
    if (key.isEmpty()) return;
    QSettings settings;
    if (silenced)
        settings.setValue(settingsKey(key), true);
    else
        settings.remove(settingsKey(key));
}

bool Confirmer::confirm(QWidget *parent, const Confirmation &question) {
    if (isSilenced(question.key)) return true;
    QMessageBox box(QMessageBox::Warning, question.title, question.text, QMessageBox::NoButton,
                    parent);
    box.setObjectName(QStringLiteral("confirmation"));
    QPushButton *accept = box.addButton(question.acceptLabel, QMessageBox::DestructiveRole);
    accept->setObjectName(QStringLiteral("confirmAccept"));
    QPushButton *cancel = box.addButton(QMessageBox::Cancel);
    box.setDefaultButton(cancel);
    box.setEscapeButton(cancel);
    QCheckBox *dontAsk = nullptr;
    if (!question.key.isEmpty()) {
        dontAsk = new QCheckBox(QObject::tr("Don't ask again"));
        dontAsk->setObjectName(QStringLiteral("dontAskAgain"));
        box.setCheckBox(dontAsk);
    }
    box.exec();
    const bool accepted = box.clickedButton() == accept;
    if (accepted && dontAsk && dontAsk->isChecked()) setSilenced(question.key, true);
    return accepted;
}

Confirmer::Choice Confirmer::choose(QWidget *parent, const Confirmation &question) {
    // The choice made with "Don't ask again" is the answer from then on.
    const QString remembered = QStringLiteral("confirmChoice/") + question.key;
    if (isSilenced(question.key))
        return QSettings().value(remembered).toString() == QLatin1String("alternative")
                   ? Choice::Alternative
                   : Choice::Accept;
    QMessageBox box(QMessageBox::Question, question.title, question.text, QMessageBox::NoButton,
                    parent);
    box.setObjectName(QStringLiteral("confirmation"));
    QPushButton *accept = box.addButton(question.acceptLabel, QMessageBox::DestructiveRole);
    accept->setObjectName(QStringLiteral("confirmAccept"));
    QPushButton *alternative = box.addButton(question.alternativeLabel, QMessageBox::AcceptRole);
    alternative->setObjectName(QStringLiteral("confirmAlternative"));
    QPushButton *cancel = box.addButton(QMessageBox::Cancel);
    box.setDefaultButton(cancel);
    box.setEscapeButton(cancel);
    QCheckBox *dontAsk = nullptr;
    if (!question.key.isEmpty()) {
        dontAsk = new QCheckBox(QObject::tr("Don't ask again"));
        dontAsk->setObjectName(QStringLiteral("dontAskAgain"));
        box.setCheckBox(dontAsk);
    }
    box.exec();
    const Choice choice = box.clickedButton() == accept        ? Choice::Accept
                          : box.clickedButton() == alternative ? Choice::Alternative
                                                               : Choice::Cancel;
    if (choice != Choice::Cancel && dontAsk && dontAsk->isChecked()) {
        QSettings().setValue(remembered, choice == Choice::Alternative
                                             ? QStringLiteral("alternative")
                                             : QStringLiteral("accept"));
        setSilenced(question.key, true);
    }
    return choice;
}

} // namespace corral
