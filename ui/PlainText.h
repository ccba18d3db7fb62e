#pragma once
// Text that comes from outside Corral (a host's stderr, a worker's crash reason, a remote
// command's output) shown where Qt guesses rich text from its content: QToolTip and a QLabel in
// Qt::AutoText render "<b>", "<img src=...>" or "<a href=...>" as markup when Qt::mightBeRichText
// says so. A hostile host must not restyle the console or plant a link in it.
#include <QString>

class QLabel;

namespace corral {

// TEXT as a tool tip shows it literally: unchanged when Qt would show it as plain text anyway,
// else escaped into a rich-text paragraph (line breaks kept).
QString plainToolTip(const QString &text);

// LABEL shows whatever it is given literally (Qt::PlainText), and is returned for chaining.
QLabel *plainLabel(QLabel *label);

} // namespace corral
