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

} // namespace corral
