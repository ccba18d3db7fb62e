#include "LogView.h"

#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QTest>

using namespace corral;

class TestLogView : public QObject {
    Q_OBJECT

    static QStringList numberedLines(int count) {
        QStringList lines;
        for (int i = 1; i <= count; ++i)
            lines.append(QStringLiteral("line %1 of the worker's output").arg(i));
        return lines;
    }

private Q_SLOTS:
    // Issue 13 item 15: a search says when nothing matches and how many matches there are,
    // and a search without a match does not move the view.
    void searchSaysHowManyMatchAndDoesNotJump() {
        LogView view;
        view.resize(700, 300);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.showTail(QStringLiteral("demo · port 3000"), numberedLines(300), 1);
        auto *search = view.findChild<QLineEdit *>(QStringLiteral("logSearch"));
        auto *matches = view.findChild<QLabel *>(QStringLiteral("logMatches"));
        QVERIFY(search);
        QVERIFY2(matches, "no label tells how many lines match");

        // Reading somewhere in the middle, not following.
        view.findChild<QWidget *>(QStringLiteral("logFollow"))->setProperty("checked", false);
        QScrollBar *scroll = view.text()->verticalScrollBar();
        QVERIFY(scroll->maximum() > 100);
        scroll->setValue(120);
        const int cursorBefore = view.text()->textCursor().position();

        QTest::keyClicks(search, QStringLiteral("no such text"));
        QTest::keyClick(search, Qt::Key_Return);
        QCOMPARE(matches->text(), QStringLiteral("no match"));
        QCOMPARE(view.matchCount(), 0);
        QCOMPARE(scroll->value(), 120); // not jumped to the top
        QCOMPARE(view.text()->textCursor().position(), cursorBefore);
        QVERIFY(!view.findNext());
        QCOMPARE(scroll->value(), 120);

        // "line 12 " matches line 12 only; "line 12" also 120..129: 11 matches.
        search->clear();
        QTest::keyClicks(search, QStringLiteral("LINE 12"));
        QCOMPARE(view.matchCount(), 11);
        QCOMPARE(matches->text(), QStringLiteral("11 matches"));
        QTest::keyClick(search, Qt::Key_Return);
        QCOMPARE(view.text()->textCursor().selectedText(), QStringLiteral("line 12"));
        QCOMPARE(matches->text(), QStringLiteral("match 1 of 11"));
        QTest::keyClick(search, Qt::Key_Return);
        QCOMPARE(matches->text(), QStringLiteral("match 2 of 11"));

        // New output recounts.
        view.showTail(QStringLiteral("demo · port 3000"), numberedLines(20), 2);
        QCOMPARE(view.matchCount(), 1);
        QCOMPARE(matches->text(), QStringLiteral("1 match"));
    }
};

QTEST_MAIN(TestLogView)
#include "tst_logview.moc"
