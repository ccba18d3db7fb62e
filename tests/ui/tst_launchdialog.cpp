#include "LaunchClusterDialog.h"
#include "MainWindow.h"

#include <QDialogButtonBox>
#include <QDir>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

#include <unistd.h>

using namespace corral;

// One address, one owner (issue 13): the console says who holds a listen address before it
// launches anything, and the demo refuses a taken address naming the holder.
class TestLaunchDialog : public QObject {
    Q_OBJECT

    QTemporaryDir m_home;

private Q_SLOTS:
    void initTestCase() {
        // Never the user's agent (the window connects to one when it runs).
        qputenv("XDG_RUNTIME_DIR", m_home.filePath(QStringLiteral("runtime")).toUtf8());
        QDir().mkpath(m_home.filePath(QStringLiteral("runtime")));
        qputenv("XDG_STATE_HOME", m_home.filePath(QStringLiteral("state")).toUtf8());
        qputenv("XDG_CONFIG_HOME", m_home.filePath(QStringLiteral("config")).toUtf8());
        QCoreApplication::setOrganizationName(QStringLiteral("corral-test"));
    }

    void takenListenAddressIsShownInline() {
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, 0));
        const QString taken = QStringLiteral("127.0.0.1:%1").arg(holder.serverPort());
        QTcpServer probe;
        QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
        const QString free = QStringLiteral("127.0.0.1:%1").arg(probe.serverPort());
        probe.close();

        LaunchClusterDialog dialog(QStringLiteral(DEMO_WORKER_PATH));
        auto *listen = dialog.findChild<QLineEdit *>(QStringLiteral("listen"));
        auto *status = dialog.findChild<QLabel *>(QStringLiteral("listenStatus"));
        auto *buttons = dialog.findChild<QDialogButtonBox *>();
        QVERIFY(listen && buttons);
        QVERIFY2(status, "no status line under the listen address");
        QPushButton *launch = buttons->button(QDialogButtonBox::Ok);

        listen->setText(taken);
        QTRY_VERIFY(status->text().contains(QStringLiteral("pid %1").arg(::getpid())));
        QVERIFY2(status->text().contains(taken), qPrintable(status->text()));
        QVERIFY(!launch->isEnabled());
        QVERIFY(!dialog.site().ok());

        listen->setText(free);
        QTRY_VERIFY(!status->text().contains(QStringLiteral("pid")));
        QVERIFY(launch->isEnabled());

        // Freed while the dialog is open: a recheck on the next edit sees it.
        listen->setText(taken);
        QTRY_VERIFY(!launch->isEnabled());
        holder.close();
        listen->setText(taken + QLatin1Char(' '));
        QTRY_VERIFY(launch->isEnabled());
    }

    void demoOnATakenAddressNamesTheHolder() {
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, 0));
        const QString taken = QStringLiteral("127.0.0.1:%1").arg(holder.serverPort());
        MainWindow::Options options;
        options.demoWorkerPath = QStringLiteral(DEMO_WORKER_PATH);
        MainWindow window(m_home.filePath(QStringLiteral("inventory.json")), options);
        const auto started = window.startDemo(taken);
        QVERIFY(!started.ok());
        QVERIFY2(started.error().contains(QStringLiteral("pid %1").arg(::getpid())),
                 qPrintable(started.error()));
    }
};

QTEST_MAIN(TestLaunchDialog)
#include "tst_launchdialog.moc"
