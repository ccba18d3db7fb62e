#pragma once

#include "agent/AgentProtocol.h"

#include <QHash>
#include <QList>
#include <QObject>
#include <QString>

class QMenu;
class QSystemTrayIcon;

namespace corral {

/// The worst state among the local sites, as the tray icon's colour shows it.
enum class TrayColour {
    None,  ///< no local site runs: no icon
    Green, ///< every worker of every site runs
    Amber, ///< starting, stopping, rolling out, a worker down or crashed within the last minute
    Red,   ///< a site failed, a worker crash-looped to failed, or a site has no running worker
};
QString trayColourName(TrayColour colour);

/// A message worth a desktop notification.
struct TrayNotification {
    QString title;
    QString text;
};

/// What the tray shows, computed from the agent's site list, its snapshots and worker events.
/// Plain logic, so it is tested without a system tray (offscreen).
class TrayStatus {
public:
    /// A crash this recent keeps a site amber (as in the console's tree).
    static constexpr qint64 recentCrashMs = 60 * 1000;

    /// The agent's site list (every `sites` event).
    void setSites(const QList<agent::SiteStatus> &sites);
    /// One site's tick; returns a notification when the site just lost all its workers.
    QList<TrayNotification> updateSnapshot(const ClusterSnapshot &snapshot);
    /// A worker event; returns a notification when a worker crash-looped to failed.
    QList<TrayNotification> workerStateChanged(const QString &site, quint16 port, WorkerState state,
                                               const QString &cause);
    /// This console is stopping `site`: its workers going away is no news.
    void expectStop(const QString &site) { m_stopping.insert(site, true); }

    /// The worst colour of the sites listed (None without any).
    TrayColour colour(qint64 nowMs) const;
    /// Sites that are not stopped, by name.
    QStringList siteNames() const;
    /// "running, 3/3 workers", "failed: ...", for the menu.
    QString describe(const QString &site, qint64 nowMs) const;
    TrayColour siteColour(const QString &site, qint64 nowMs) const;
    /// "Corral: 2 sites running" and, per site, what is wrong.
    QString toolTip(qint64 nowMs) const;

private:
    QList<agent::SiteStatus> m_sites;  ///< not stopped, in the agent's order
    QHash<QString, int> m_lastRunning; ///< running workers at the last snapshot
    QHash<QString, bool> m_stopping;
    const agent::SiteStatus *find(const QString &site) const;
};

/// The system tray icon shown while any local site runs: coloured by the worst site state,
/// a menu listing the sites with Open and Stop, and a notification when a worker crash-loops
/// to failed or a site loses all its workers. Without a system tray
/// (QSystemTrayIcon::isSystemTrayAvailable() false, e.g. offscreen) everything is kept but
/// the icon: the menu and status stay readable for tests.
class TrayIcon : public QObject {
    Q_OBJECT
public:
    explicit TrayIcon(QObject *parent = nullptr);
    ~TrayIcon() override;

    void setSites(const QList<agent::SiteStatus> &sites);
    void updateSnapshot(const ClusterSnapshot &snapshot);
    void workerStateChanged(const QString &site, quint16 port, WorkerState state,
                            const QString &cause);
    void expectStop(const QString &site) { m_status.expectStop(site); }

    const TrayStatus &status() const { return m_status; }
    TrayColour colour() const;
    /// Whether the icon is shown (or would be, given a system tray).
    bool isShown() const { return m_shown; }
    /// Null without a system tray.
    QSystemTrayIcon *systemTrayIcon() const { return m_tray; }
    QMenu *menu() const { return m_menu; }

Q_SIGNALS:
    void openRequested(const QString &site);
    void stopRequested(const QString &site);
    void showConsoleRequested();
    void quitRequested();
    /// A notification (shown as a desktop message when there is a system tray).
    void notified(const QString &title, const QString &text);

private:
    void refresh();
    void notify(const QList<TrayNotification> &notifications);

    TrayStatus m_status;
    QSystemTrayIcon *m_tray = nullptr;
    QMenu *m_menu = nullptr;
    bool m_shown = false;
    TrayColour m_shownColour = TrayColour::None;
    QString m_menuKey; ///< what the menu was built for: rebuilt only when it changes
};

} // namespace corral
