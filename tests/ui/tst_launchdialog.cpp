#include "LaunchClusterDialog.h"
#include "MainWindow.h"
#include "helpers/ResultVerify.h"

#include <QCheckBox>
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

    // Issue 19: the embedded proxy's settings are in the dialog (new and edited sites), go
    // into the Site field by field, and a bad value is refused with Site::problems' message.
    void proxySettingsRoundTripIntoTheSite() {
        QTcpServer probe;
        QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
        Site site;
        site.name = QStringLiteral("shop");
        site.command = QStringLiteral(DEMO_WORKER_PATH);
        site.args = {QStringLiteral("--port"), Site::PortPlaceholder};
        site.listen = QStringLiteral("127.0.0.1:%1").arg(probe.serverPort());
        probe.close();
        site.environment = {{QStringLiteral("NODE_ENV"), QStringLiteral("development")}};
        site.serverNames = {QStringLiteral("shop.test"), QStringLiteral("api.shop.test")};
        site.staticRoot = m_home.path();
        site.staticFollowSymlinks = true;
        site.cacheControl = QStringLiteral("public, max-age=600");
        site.gzip = false;
        site.accessLog = m_home.filePath(QStringLiteral("access.log"));
        site.tls = true;
        site.tlsCert = m_home.filePath(QStringLiteral("cert.pem"));
        site.tlsKey = m_home.filePath(QStringLiteral("key.pem"));
        site.redirectHttp = QStringLiteral("127.0.0.1:8081");
        QVERIFY_RESULT(site.validate());

        LaunchClusterDialog dialog(QStringLiteral(DEMO_WORKER_PATH));
        dialog.setEditing(site, false);
        auto edited = dialog.site();
        QVERIFY2(edited.ok(), qPrintable(edited.error()));
        QCOMPARE(edited.value(), site); // every field, the ones not shown (environment) too

        // The widgets write the fields.
        const auto edit = [&](const char *name) {
            auto *field = dialog.findChild<QLineEdit *>(QLatin1String(name));
            [&] { QVERIFY2(field, name); }();
            return field;
        };
        const auto box = [&](const char *name) {
            auto *field = dialog.findChild<QCheckBox *>(QLatin1String(name));
            [&] { QVERIFY2(field, name); }();
            return field;
        };
        QVERIFY(dialog.findChild<QPushButton *>(QStringLiteral("browseStaticRoot")));
        edit("cacheControl")->setText(QStringLiteral("no-cache"));
        box("gzip")->setChecked(true);
        box("staticFollowSymlinks")->setChecked(false);
        edit("accessLog")->setText(QStringLiteral("off"));
        edit("serverNames")->setText(QStringLiteral("a.test , b.test"));
        box("tls")->setChecked(false);
        edited = dialog.site();
        QVERIFY2(edited.ok(), qPrintable(edited.error()));
        QCOMPARE(edited->cacheControl, QStringLiteral("no-cache"));
        QVERIFY(edited->gzip);
        QVERIFY(!edited->staticFollowSymlinks);
        QCOMPARE(edited->accessLog, QStringLiteral("off"));
        QCOMPARE(edited->serverNames,
                 (QStringList{QStringLiteral("a.test"), QStringLiteral("b.test")}));
        QVERIFY(!edited->tls);
        QVERIFY(edited->tlsCert.isEmpty() && edited->redirectHttp.isEmpty());

        // Refused as Site::problems says it, and the button stays off.
        auto *error = dialog.findChild<QLabel *>(QStringLiteral("error"));
        QPushButton *save = dialog.findChild<QDialogButtonBox *>()->button(QDialogButtonBox::Ok);
        edit("cacheControl")->setText(QStringLiteral("max-age=1\u00e9"));
        QVERIFY2(error->text().startsWith(QStringLiteral("cacheControl: ")),
                 qPrintable(error->text()));
        QVERIFY(!save->isEnabled());
        edit("cacheControl")->clear();
        QVERIFY(save->isEnabled());
        edit("accessLog")->setText(QStringLiteral("logs/access.log"));
        QCOMPARE(error->text(),
                 QStringLiteral("accessLog: \"logs/access.log\" must be an absolute path"));
        QVERIFY(!save->isEnabled());
        edit("accessLog")->clear();
        box("tls")->setChecked(true);
        edit("tlsCert")->setText(m_home.filePath(QStringLiteral("cert.pem")));
        edit("tlsKey")->clear();
        QVERIFY2(error->text().startsWith(QStringLiteral("tlsKey: tlsCert and tlsKey")),
                 qPrintable(error->text()));
        QVERIFY(!save->isEnabled());
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
