#include "PlainText.h"

#include <QLabel>
#include <QTextDocument>

namespace corral {

QString plainToolTip(const QString &text) {
    return Qt::mightBeRichText(text) ? Qt::convertFromPlainText(text, Qt::WhiteSpaceNormal) : text;
}

QLabel *plainLabel(QLabel *label) {
    label->setTextFormat(Qt::PlainText);
    return label;
}

} // namespace corral
