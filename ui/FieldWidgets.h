#pragma once

// Form fields built the same way in every dialog.

#include <QLineEdit>
#include <QString>

namespace corral {

/// An empty line edit with an object name (tests and the dialog's own checks find it by that)
/// and a tooltip that says what it takes.
inline QLineEdit *namedLineEdit(const char *objectName, const QString &toolTip) {
    auto *edit = new QLineEdit;
    edit->setObjectName(QLatin1String(objectName));
    edit->setToolTip(toolTip);
    return edit;
}

} // namespace corral
