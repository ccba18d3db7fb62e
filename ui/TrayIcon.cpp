#include "TrayIcon.h"

#include <QAction>
#include <QDateTime>
#include <QIcon>
#include <QMenu>
#include <QPainter>
#include <QPixmap>
#include <QSystemTrayIcon>

#include <algorithm>

namespace corral {

QString trayColourName(TrayColour colour) {
    switch (colour) {
    case TrayColour::None:
        return QStringLiteral("none");
    case TrayColour::Green:
        return QStringLiteral("green");
    case TrayColour::Amber:
        return QStringLiteral("amber");
    case TrayColour::Red:
        return QStringLiteral("red");
    }
    return {};
}

namespace {

TrayColour colourOf(const agent::SiteStatus &site, qint64 nowMs) {
    switch (site.state) {
    case agent::SiteState::Stopped:
        return TrayColour::None;
    case agent::SiteState::Failed:
        return TrayColour::Red;
    case agent::SiteState::Starting:
    case agent::SiteState::Stopping:
        return TrayColour::Amber;
    case agent::SiteState::Running:
        break;
    }
    const auto states = agent::workerStates(site);
    const auto running = std::count_if(states.cbegin(), states.cend(), [](const auto &worker) {
        return worker.second == WorkerState::Running;
    });
    const bool failed = std::any_of(states.cbegin(), states.cend(), [](const auto &worker) {
        return worker.second == WorkerState::Failed;
    });
    if (failed || (!states.isEmpty() && running == 0)) return TrayColour::Red;
    bool recentCrash = false;
    for (const WorkerRow &row : site.snapshot.workers)
        recentCrash |= row.lastCrashMs > 0 && nowMs - row.lastCrashMs < TrayStatus::recentCrashMs;
    if (running < states.size() || recentCrash || site.rollingOut) return TrayColour::Amber;
    return TrayColour::Green;
}

QIcon colourIcon(TrayColour colour) {
    const QColor fill = colour == TrayColour::Red     ? QColor(0xd2, 0x3c, 0x3c)
                        : colour == TrayColour::Amber ? QColor(0xd0, 0x8a, 0x1a)
                        : colour == TrayColour::Green ? QColor(0x2e, 0x9e, 0x4f)
                                                      : QColor(0x80, 0x80, 0x80);
    QPixmap pixmap(32, 32);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(QPen(fill.darker(140), 2));
    painter.setBrush(fill);
    painter.drawEllipse(QRectF(3, 3, 26, 26));
    painter.end();
    return QIcon(pixmap);
}

} // namespace

const agent::SiteStatus *TrayStatus::find(const QString &site) const {
    for (const agent::SiteStatus &status : m_sites)
        if (status.site.name == site) return &status;
    return nullptr;
}

void TrayStatus::setSites(const QList<agent::SiteStatus> &sites) {
    QList<agent::SiteStatus> shown;
    for (const agent::SiteStatus &site : sites) {
        if (site.state == agent::SiteState::Stopped) {
            m_stopping.remove(site.site.name);
            m_lastRunning.remove(site.site.name);
            continue;
        }
        agent::SiteStatus kept = site;
        // A site list may come without the latest tick; keep the one seen.
        if (kept.snapshot.timestampMs == 0)
            if (const agent::SiteStatus *old = find(site.site.name)) kept.snapshot = old->snapshot;
        shown.append(kept);
    }
    m_sites = shown;
}

QList<TrayNotification> TrayStatus::updateSnapshot(const ClusterSnapshot &snapshot) {
    QList<TrayNotification> notifications;
    auto it = std::find_if(m_sites.begin(), m_sites.end(), [&](const agent::SiteStatus &site) {
        return site.site.name == snapshot.site;
    });
    if (it == m_sites.end()) return notifications;
    it->snapshot = snapshot;
    const int before = m_lastRunning.value(snapshot.site, 0);
    m_lastRunning.insert(snapshot.site, snapshot.running);
    // Lost every worker while it should run: not a stop asked for, not a site on its way down.
    if (before > 0 && snapshot.running == 0 && !snapshot.workers.isEmpty() &&
        it->state == agent::SiteState::Running && !m_stopping.value(snapshot.site))
        notifications.append({QObject::tr("Site %1 is down").arg(snapshot.site),
                              QObject::tr("None of its %n worker(s) is running.", nullptr,
                                          int(snapshot.workers.size()))});
    return notifications;
}

QList<TrayNotification> TrayStatus::workerStateChanged(const QString &site, quint16 port,
                                                       WorkerState state, const QString &cause) {
    if (state != WorkerState::Failed || m_stopping.value(site)) return {};
    return {{QObject::tr("Worker %1 of %2 failed").arg(port).arg(site), cause}};
}

TrayColour TrayStatus::siteColour(const QString &site, qint64 nowMs) const {
    const agent::SiteStatus *status = find(site);
    return status ? colourOf(*status, nowMs) : TrayColour::None;
}

TrayColour TrayStatus::colour(qint64 nowMs) const {
    TrayColour worst = TrayColour::None;
    for (const agent::SiteStatus &site : m_sites)
        worst = std::max(worst, colourOf(site, nowMs));
    return worst;
}

QStringList TrayStatus::siteNames() const {
    QStringList names;
    for (const agent::SiteStatus &site : m_sites)
        names.append(site.site.name);
    return names;
}

QString TrayStatus::describe(const QString &site, qint64) const {
    const agent::SiteStatus *status = find(site);
    if (!status) return QObject::tr("stopped");
    if (status->state == agent::SiteState::Failed)
        return QObject::tr("failed: %1").arg(status->error);
    const auto states = agent::workerStates(*status);
    const auto running = std::count_if(states.cbegin(), states.cend(), [](const auto &worker) {
        return worker.second == WorkerState::Running;
    });
    QString text = QObject::tr("%1, %2/%3 workers")
                       .arg(agent::siteStateName(status->state))
                       .arg(running)
                       .arg(states.size());
    if (status->rollingOut) text += QObject::tr(", rolling restart");
    return text;
}

QString TrayStatus::toolTip(qint64 nowMs) const {
    QStringList lines{QObject::tr("Corral: %n local site(s)", nullptr, int(m_sites.size()))};
    for (const agent::SiteStatus &site : m_sites)
        lines.append(QStringLiteral("%1: %2").arg(site.site.name, describe(site.site.name, nowMs)));
    return lines.join(QLatin1Char('\n'));
}

TrayIcon::TrayIcon(QObject *parent)
    : QObject(parent)
    , m_menu(new QMenu) {
    m_menu->setObjectName(QStringLiteral("trayMenu"));
    if (QSystemTrayIcon::isSystemTrayAvailable()) {
        m_tray = new QSystemTrayIcon(this);
        m_tray->setContextMenu(m_menu);
        connect(m_tray, &QSystemTrayIcon::activated, this,
                [this](QSystemTrayIcon::ActivationReason reason) {
                    if (reason == QSystemTrayIcon::Trigger) Q_EMIT showConsoleRequested();
                });
    }
    refresh();
}

TrayIcon::~TrayIcon() {
    delete m_menu; // a menu has no QObject parent here: it is the tray's, not a widget's
}

TrayColour TrayIcon::colour() const {
    return m_status.colour(QDateTime::currentMSecsSinceEpoch());
}

void TrayIcon::setSites(const QList<agent::SiteStatus> &sites) {
    m_status.setSites(sites);
    refresh();
}

void TrayIcon::updateSnapshot(const ClusterSnapshot &snapshot) {
    notify(m_status.updateSnapshot(snapshot));
    refresh();
}

void TrayIcon::workerStateChanged(const QString &site, quint16 port, WorkerState state,
                                  const QString &cause) {
    notify(m_status.workerStateChanged(site, port, state, cause));
}

void TrayIcon::notify(const QList<TrayNotification> &notifications) {
    for (const TrayNotification &notification : notifications) {
        if (m_tray && m_tray->isVisible())
            m_tray->showMessage(notification.title, notification.text, QSystemTrayIcon::Warning);
        Q_EMIT notified(notification.title, notification.text);
    }
}

void TrayIcon::refresh() {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const TrayColour colour = m_status.colour(now);
    m_shown = colour != TrayColour::None;
    if (m_tray) {
        if (colour != m_shownColour) m_tray->setIcon(colourIcon(colour));
        m_tray->setToolTip(m_status.toolTip(now));
        m_tray->setVisible(m_shown);
    }
    m_shownColour = colour;

    // The menu is rebuilt only when what it says changed (not every tick).
    QStringList key;
    const QStringList names = m_status.siteNames();
    for (const QString &name : names)
        key.append(name + QLatin1Char('\t') + m_status.describe(name, now) + QLatin1Char('\t') +
                   trayColourName(m_status.siteColour(name, now)));
    const QString menuKey = key.join(QLatin1Char('\n'));
    if (menuKey == m_menuKey && !m_menu->isEmpty()) return;
    m_menuKey = menuKey;
    m_menu->clear();
    // clear() drops the site submenus' actions, not the submenus themselves.
    qDeleteAll(m_menu->findChildren<QMenu *>(Qt::FindDirectChildrenOnly));
    for (const QString &name : names) {
        QMenu *site =
            m_menu->addMenu(colourIcon(m_status.siteColour(name, now)),
                            QStringLiteral("%1 — %2").arg(name, m_status.describe(name, now)));
        site->setObjectName(QStringLiteral("site:") + name);
        QAction *open = site->addAction(tr("Open"));
        open->setObjectName(QStringLiteral("open:") + name);
        connect(open, &QAction::triggered, this, [this, name] { Q_EMIT openRequested(name); });
        QAction *stop = site->addAction(tr("Stop"));
        stop->setObjectName(QStringLiteral("stop:") + name);
        connect(stop, &QAction::triggered, this, [this, name] { Q_EMIT stopRequested(name); });
    }
    if (!names.isEmpty()) m_menu->addSeparator();
    QAction *show = m_menu->addAction(tr("Show Corral"));
    show->setObjectName(QStringLiteral("showConsole"));
    connect(show, &QAction::triggered, this, &TrayIcon::showConsoleRequested);
    QAction *quit = m_menu->addAction(tr("Quit"));
    quit->setObjectName(QStringLiteral("quit"));
    connect(quit, &QAction::triggered, this, &TrayIcon::quitRequested);
}

} // namespace corral
