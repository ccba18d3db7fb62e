#include "MainWindow.h"
#include "PlainText.h"

#include "AddHostDialog.h"
#include "AffinityBanner.h"
#include "ApplyConfigDialog.h"
#include "Confirmer.h"
#include "FleetOverviewView.h"
#include "InventoryTreeFilter.h"
#include "InventoryTreeModel.h"
#include "LaunchClusterDialog.h"
#include "LogView.h"
#include "ProductionSiteDialog.h"
#include "TrayIcon.h"
#include "WorkerTableModel.h"
#include "agent/AgentClient.h"
#include "agent/AgentSiteControl.h"
#include "charts/CpuChartView.h"
#include "charts/DistributionChartView.h"
#include "charts/ThroughputChartView.h"
#include "cluster/RemoteSite.h"
#include "cluster/RemoteSiteControl.h"
#include "cluster/RemoteSiteMonitor.h"
#include "fleet/FleetMonitor.h"
#include "inventory/Inventory.h"
#include "inventory/OperationJournal.h"
#include "loadgen/LoadGenerator.h"
#include "ssh/HostConnections.h"
#include "ssh/SshHost.h"
#include "supervisor/FailureReport.h"
#include "supervisor/LogReader.h"
#include "upstreams/RemoteAddBackend.h"
#include "upstreams/SiteLock.h"
#include "util/DemoPaths.h"
#include "util/ListeningSockets.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QCoreApplication>
#include <QDateTime>
#include <QDialogButtonBox>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPointer>
#include <QProgressBar>
#include <QSettings>
#include <QSlider>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QStyle>
#include <QTableView>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>
#include <memory>
#include <vector>

namespace corral {

static MainWindow::Options defaultOptions() {
    MainWindow::Options options;
    options.demoWorkerPath =
        QCoreApplication::applicationDirPath() + QStringLiteral("/corral-demo-worker");
    return options;
}

MainWindow::MainWindow(QString inventoryPath, QWidget *parent)
    : MainWindow(std::move(inventoryPath), defaultOptions(), parent) {}

MainWindow::MainWindow(QString inventoryPath, Options options, QWidget *parent)
    : QMainWindow(parent)
    , m_inventoryPath(std::move(inventoryPath))
    , m_options(std::move(options))
    , m_confirmer(std::make_unique<Confirmer>()) {
    setWindowTitle(QStringLiteral("Corral"));
    setObjectName(QStringLiteral("MainWindow"));

    m_treeModel = new InventoryTreeModel(this);
    // The tree shows the model through the search and state filter: its indexes are the
    // filter's (m_treeFilter->siteIndex() for a site's row).
    m_treeFilter = new InventoryTreeFilter(this);
    m_treeFilter->setSourceModel(m_treeModel);
    m_tree = new QTreeView;
    m_tree->setObjectName(QStringLiteral("hostTree"));
    m_tree->setModel(m_treeFilter);
    // One line per row, and the name column sized when the rows change (updateTree()), not
    // on every dataChanged: ResizeToContents and per-row heights measure every row each time
    // a site's state changes, which at fleet size is every row on every tick.
    m_tree->setUniformRowHeights(true);
    m_tree->header()->setSectionResizeMode(0, QHeaderView::Interactive);
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex &index) {
                // The current row moving off a row the filter hides is not the user's choice.
                if (m_treeFilter->isRemovingRows()) return;
                if (index.data(InventoryTreeModel::KindRole).toInt() ==
                    int(InventoryTreeModel::NodeKind::Site))
                    selectSite(index.data(InventoryTreeModel::NameRole).toString());
                else // nothing (the root) or a host: the fleet, or that host's part of it
                    showFleetOverview(
                        index.siblingAtColumn(0).data(InventoryTreeModel::NameRole).toString());
            });
    // Enter (or a double click) on a site shows it, e.g. the current row the search left.
    connect(m_tree, &QAbstractItemView::activated, this, [this](const QModelIndex &index) {
        if (index.data(InventoryTreeModel::KindRole).toInt() ==
            int(InventoryTreeModel::NodeKind::Site))
            selectSite(index.siblingAtColumn(0).data(InventoryTreeModel::NameRole).toString());
    });
    m_treeSearch = new InventoryTreeSearch(m_tree, m_treeFilter);
    auto *treePane = new QWidget;
    auto *treeLayout = new QVBoxLayout(treePane);
    treeLayout->setContentsMargins(0, 0, 0, 0);
    treeLayout->addWidget(m_treeSearch);
    treeLayout->addWidget(m_tree);

    m_workerModel = new WorkerTableModel(this);
    m_workerProxy = new QSortFilterProxyModel(this);
    m_workerProxy->setSourceModel(m_workerModel);
    m_workerProxy->setSortRole(WorkerTableModel::SortRole);
    m_workerProxy->setFilterKeyColumn(-1);
    m_workerProxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_table = new QTableView;
    m_table->setObjectName(QStringLiteral("workerTable"));
    m_table->setModel(m_workerProxy);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(WorkerTableModel::Port, Qt::AscendingOrder);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->horizontalHeader()->setDefaultSectionSize(80); // all twelve columns fit at 1280 px
    m_table->setAlternatingRowColors(true);
    m_table->setContextMenuPolicy(Qt::ActionsContextMenu);
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
        // Selections also change while the model updates (rows removed): only light work here.
        m_logView->clear();
        QMetaObject::invokeMethod(
            this,
            [this] {
                updateActions();
                updateLog();
            },
            Qt::QueuedConnection);
    });
    m_filter = new QLineEdit;
    m_filter->setObjectName(QStringLiteral("workerFilter"));
    m_filter->setPlaceholderText(tr("Filter workers (port, state, ...)"));
    m_filter->setClearButtonEnabled(true);
    connect(m_filter, &QLineEdit::textChanged, m_workerProxy,
            &QSortFilterProxyModel::setFilterFixedString);
    auto *tablePane = new QWidget;
    auto *tableLayout = new QVBoxLayout(tablePane);
    tableLayout->setContentsMargins(0, 0, 0, 0);
    // The site's last session affinity result (issue 22), above the whole site view: it takes
    // its height from the charts too, not only from the worker table.
    m_affinityBanner = new AffinityBanner;
    connect(m_affinityBanner, &AffinityBanner::fixRequested, this, &MainWindow::fixAffinity);
    connect(m_affinityBanner, &AffinityBanner::recheckRequested, this,
            &MainWindow::checkAffinityOf);
    connect(m_affinityBanner, &AffinityBanner::dismissed, this,
            [this](const QString &site) { m_affinityReports.remove(site); });
    tableLayout->addWidget(m_filter);
    tableLayout->addWidget(m_table);

    m_cpuChart = new CpuChartView;
    m_distributionChart = new DistributionChartView;
    m_throughputChart = new ThroughputChartView;
    m_chartSplitter = new QSplitter(Qt::Horizontal);
    m_chartSplitter->setObjectName(QStringLiteral("chartSplitter"));
    m_chartSplitter->addWidget(m_cpuChart);
    m_chartSplitter->addWidget(m_distributionChart);
    m_chartSplitter->addWidget(m_throughputChart);

    m_logView = new LogView;
    connect(m_logView, &LogView::sourceChanged, this, [this] {
        m_logView->clear();
        updateLog();
    });
    m_centreSplitter = new QSplitter(Qt::Vertical);
    m_centreSplitter->setObjectName(QStringLiteral("centreSplitter"));
    m_centreSplitter->addWidget(tablePane);
    m_centreSplitter->addWidget(m_chartSplitter);
    m_centreSplitter->addWidget(m_logView);
    m_centreSplitter->setStretchFactor(0, 2);
    m_centreSplitter->setStretchFactor(1, 3);
    m_centreSplitter->setStretchFactor(2, 1);
    m_centreSplitter->setSizes({190, 400, 150});

    m_mainSplitter = new QSplitter;
    m_mainSplitter->setObjectName(QStringLiteral("mainSplitter"));
    m_mainSplitter->addWidget(treePane);
    m_fleetOverview = new FleetOverviewView;
    connect(m_fleetOverview, &FleetOverviewView::siteActivated, this, [this](const QString &site) {
        // Through the tree, as a click there: the tree shows what the centre shows.
        m_tree->setCurrentIndex(m_treeFilter->siteIndex(site));
        if (m_currentSite != site) selectSite(site); // hidden by the tree's filter
    });
    connect(m_fleetOverview, &FleetOverviewView::hostActivated, this, [this](const QString &host) {
        for (int row = 0; row < m_treeFilter->rowCount(); ++row) {
            const QModelIndex index = m_treeFilter->index(row, 0);
            if (index.data(InventoryTreeModel::NameRole).toString() == host)
                m_tree->setCurrentIndex(index);
        }
    });
    m_centreStack = new QStackedWidget;
    m_centreStack->setObjectName(QStringLiteral("centreStack"));
    m_centreStack->addWidget(m_fleetOverview);
    m_sitePane = new QWidget;
    auto *siteLayout = new QVBoxLayout(m_sitePane);
    siteLayout->setContentsMargins(0, 0, 0, 0);
    siteLayout->addWidget(m_affinityBanner);
    siteLayout->addWidget(m_centreSplitter, 1);
    m_centreStack->addWidget(m_sitePane);
    m_mainSplitter->addWidget(m_centreStack);
    m_mainSplitter->setStretchFactor(1, 1);
    m_mainSplitter->setSizes({230, 1050});
    setCentralWidget(m_mainSplitter);

    m_loadGenerator = new LoadGenerator(this);
    m_loadGenerator->setPaths(
        {QStringLiteral("/"), QStringLiteral("/work?ms=3"), QStringLiteral("/")});
    connect(m_loadGenerator, &LoadGenerator::failed, this, [this](const QString &message) {
        statusBar()->showMessage(tr("Load generator: %1").arg(message), 5000);
    });

    m_connections = new HostConnections(this);
    // Each remote host keeps one session (HostConnections::setHosts()): its keepalive and
    // reconnects say online/offline, no periodic fresh login does.
    // Every host and production site, polled over those same sessions (capped, with
    // timeouts), for the fleet overview and the tree's production rows.
    m_fleetMonitor = new FleetMonitor(this);
    m_fleetMonitor->setOptions(m_options.poll);
    connect(m_fleetMonitor, &FleetMonitor::updated, this, &MainWindow::onFleetUpdated);
    // One source for the tree's online/offline once a host has been polled: the fleet poll,
    // as the overview shows it. A session lost is news at once (the next poll can only fail);
    // a session back waits for the poll it brings forward (PollScheduler::endBackOff), so the
    // tree never says online while the overview says unreachable, nor flips between the two.
    connect(m_connections, &HostConnections::hostStateChanged, this,
            [this](const QString &name, bool online, const QString &reason) {
                const auto &hosts = m_fleetMonitor->snapshot().hosts;
                const bool polled = std::any_of(hosts.begin(), hosts.end(), [&](const auto &h) {
                    return h.name == name && h.polled;
                });
                if (!online || !polled) m_treeModel->setHostOnline(name, online, reason);
            });

    createActions();
    createToolbar();

    m_listenButton = new QToolButton;
    m_listenButton->setObjectName(QStringLiteral("listenButton"));
    m_listenButton->setAutoRaise(true);
    m_listenButton->setToolTip(tr("The embedded balancer's address; click to copy"));
    connect(m_listenButton, &QToolButton::clicked, this, [this] {
        QApplication::clipboard()->setText(QStringLiteral("http://") + m_listenButton->text());
        statusBar()->showMessage(tr("Copied http://%1").arg(m_listenButton->text()), 3000);
    });
    m_policyLabel = plainLabel(new QLabel);
    m_workersLabel = plainLabel(new QLabel);
    m_throughputLabel = plainLabel(new QLabel);
    m_rollout = new QProgressBar;
    m_rollout->setObjectName(QStringLiteral("rolloutProgress"));
    m_rollout->setMaximumWidth(180);
    m_rollout->setFormat(tr("rolling restart %v/%m"));
    m_rollout->hide();
    statusBar()->addPermanentWidget(m_rollout);
    statusBar()->addPermanentWidget(m_listenButton);
    statusBar()->addPermanentWidget(m_policyLabel);
    statusBar()->addPermanentWidget(m_workersLabel);
    statusBar()->addPermanentWidget(m_throughputLabel);

    m_tray = new TrayIcon(this);
    connect(m_tray, &TrayIcon::openRequested, this, [this](const QString &site) {
        showNormal();
        raise();
        activateWindow();
        selectSite(site);
        updateTree();
    });
    connect(m_tray, &TrayIcon::stopRequested, this, &MainWindow::stopSiteNamed);
    connect(m_tray, &TrayIcon::showConsoleRequested, this, [this] {
        showNormal();
        raise();
        activateWindow();
    });
    connect(m_tray, &TrayIcon::quitRequested, this, &QWidget::close);
    // A rolling restart's bar goes with the agent's answer, whichever it is.
    connect(this, &MainWindow::operationFinished, this,
            [this](const QString &site, const QString &operation) {
                if (site == m_currentSite && operation == QLatin1String("rollingRestart"))
                    m_rollout->hide();
            });

    reloadInventory();
    // Polls the local machine alone when the inventory has no SSH host: nearly free.
    m_fleetMonitor->start();
    resize(1280, 800);
    restoreLayout();
    connectAgent(m_options.autostartAgent);
    updateActions();
}

MainWindow::~MainWindow() {
    m_loadGenerator->stop();
    // Before the SSH sessions it polls over (HostConnections, an older child): their end
    // would finish its round and update views already gone.
    delete m_fleetMonitor;
    m_fleetMonitor = nullptr;
    // The agent's sites keep running; closing the connection stops the ephemeral ones.
}

bool MainWindow::connectAgent(bool autostart) {
    if (m_agent && m_agent->isConnected()) return true;
    if (m_agent) m_agent->deleteLater();
    m_agent = new agent::AgentClient(this);
    if (auto connected = m_agent->connectToAgent(autostart); !connected) {
        m_agentError = connected.error();
        delete m_agent;
        m_agent = nullptr;
        if (autostart || !m_reconnect || !m_reconnect->isActive()) // not once a second
            statusBar()->showMessage(
                autostart ? tr("Corral agent: %1").arg(m_agentError)
                          : tr("No Corral agent is running; it starts with the first local site."),
                10000);
        return false;
    }
    m_agentError.clear();
    connect(m_agent, &agent::AgentClient::snapshot, this, [this](const ClusterSnapshot &snapshot) {
        if (auto it = m_sites.find(snapshot.site); it != m_sites.end()) it->snapshot = snapshot;
        m_tray->updateSnapshot(snapshot);
        if (snapshot.site == m_historyFor) {
            m_ticksWhileLoading.append(snapshot); // shown after the history
            return;
        }
        onSnapshot(snapshot.site, snapshot);
    });
    connect(m_agent, &agent::AgentClient::workerStateChanged, this,
            [this](const QString &site, quint16 port, qint64, WorkerState state,
                   const QString &cause) { onWorkerStateChanged(site, port, state, cause); });
    connect(m_agent, &agent::AgentClient::rollingRestartProgress, this,
            [this](const QString &site, int replaced, int total) {
                if (site != m_currentSite) return;
                m_rollout->setRange(0, total);
                m_rollout->setValue(replaced);
                m_rollout->show();
            });
    connect(m_agent, &agent::AgentClient::sitesChanged, this, &MainWindow::onSitesChanged);
    connect(m_agent, &agent::AgentClient::disconnected, this, &MainWindow::onAgentDisconnected);
    m_agent->subscribe();
    // Read at once (a local round trip): the window opens showing the agent's sites.
    if (auto sites = m_agent->status(); sites)
        onSitesChanged(sites.value());
    else
        statusBar()->showMessage(sites.error(), 10000);
    return true;
}

void MainWindow::onAgentDisconnected() {
    // The agent stopped or was killed: its workers went with it. The next agent (started by
    // a launch here, by corralctl or by systemd) brings the sites back; until then nothing
    // local runs.
    if (m_agent) m_agent->deleteLater();
    m_agent = nullptr;
    m_busy.clear();
    m_rollout->hide();
    onSitesChanged({});
    statusBar()->showMessage(tr("The Corral agent went away; local sites are not running. "
                                "Launching or starting a site starts it again."),
                             10000);
    // Reconnect (without starting one) once another client or systemd brings it back: the
    // new agent brings back the sites that were running.
    if (!m_reconnect) {
        m_reconnect = new QTimer(this);
        m_reconnect->setInterval(1000);
        connect(m_reconnect, &QTimer::timeout, this, [this] {
            if (m_closing || m_agent || connectAgent(false)) m_reconnect->stop();
        });
    }
    m_reconnect->start();
}

void MainWindow::onSitesChanged(const QList<agent::SiteStatus> &sites) {
    QHash<QString, agent::SiteStatus> known;
    for (const agent::SiteStatus &site : sites) {
        agent::SiteStatus kept = site;
        // The list may come without the latest tick; keep the one seen.
        if (kept.snapshot.timestampMs == 0 && m_sites.contains(site.site.name))
            kept.snapshot = m_sites.value(site.site.name).snapshot;
        known.insert(site.site.name, kept);
    }
    const bool wasShown = currentSite() != nullptr;
    const agent::SiteStatus before = m_sites.value(m_currentSite);
    m_sites = known;
    m_tray->setSites(sites);
    const agent::SiteStatus *shown = currentSite();
    if (wasShown && !shown) {
        // The site on view stopped (here, in another console, or with corralctl).
        m_loadGenerator->stop();
        m_actions.value(QStringLiteral("generateLoad"))->setChecked(false);
        m_workerModel->clear();
        m_logView->clear();
        m_logBackend.clear();
        m_rollout->hide();
        showSiteStatus(nullptr); // not "2/2 running" for a site that is gone
        const agent::SiteStatus now = m_sites.value(m_currentSite);
        if (now.state == agent::SiteState::Failed)
            statusBar()->showMessage(tr("%1 failed: %2").arg(m_currentSite, now.error), 10000);
        else
            statusBar()->showMessage(tr("%1 stopped").arg(m_currentSite), 5000);
    } else if (!wasShown && shown) {
        // Started (here or elsewhere) while on view: show it live.
        const QString site = m_currentSite;
        m_currentSite.clear();
        selectSite(site);
    } else if (shown && before.rollingOut && !shown->rollingOut &&
               !isBusy(QStringLiteral("rollingRestart"), m_currentSite)) {
        m_rollout->hide();
    }
    updateTree();
    updateActions();
    Q_EMIT sitesChanged();
}

void MainWindow::onWorkerStateChanged(const QString &site, quint16 port, WorkerState state,
                                      const QString &cause) {
    m_tray->workerStateChanged(site, port, state, cause);
    // A worker the site list does not have yet (scaled up) or one gone (scaled down): the
    // workers' pids and log files come with the site's status.
    const auto known = m_sites.constFind(site);
    if (known != m_sites.cend() &&
        (state == WorkerState::Stopped ||
         std::none_of(known->workers.cbegin(), known->workers.cend(),
                      [port](const agent::WorkerStatus &worker) { return worker.port == port; })))
        refreshSite(site);
    if (state == WorkerState::Failed && site == m_currentSite) {
        m_failureShownMs.insert(site, QDateTime::currentMSecsSinceEpoch());
        showError(failureReport(site, port, cause));
    }
}

void MainWindow::refreshSite(const QString &site) {
    if (!m_agent || m_refreshing.contains(site)) return;
    m_refreshing.insert(site);
    const QPointer<agent::AgentClient> client(m_agent);
    m_agent->send(QLatin1String(agent::op::Status), {{QStringLiteral("site"), site}},
                  [this, client, site](Result<QJsonObject> reply) {
                      m_refreshing.remove(site);
                      if (!client || !reply) return;
                      const QJsonArray sites = reply->value(QLatin1String("sites")).toArray();
                      auto status = sites.isEmpty()
                                        ? Result<agent::SiteStatus>(fail(QString()))
                                        : agent::siteStatusFromJson(sites.first().toObject());
                      const auto it = m_sites.find(site);
                      if (!status || it == m_sites.end()) return;
                      it->workers = status->workers;
                      updateActions();
                      Q_EMIT sitesChanged();
                  });
}

bool MainWindow::isBusy(const QString &operation, const QString &site) const {
    return m_busy.contains(operation + QLatin1Char('\n') + site);
}

void MainWindow::request(const QString &operation, const QString &site, const QString &op,
                         QJsonObject arguments, std::function<void(const QJsonObject &)> done) {
    if (!m_agent && !connectAgent(true))
        return showError(tr("Cannot reach the Corral agent: %1").arg(m_agentError));
    const QString key = operation + QLatin1Char('\n') + site;
    m_busy.insert(key);
    updateActions();
    const QPointer<MainWindow> self(this);
    const qint64 sentMs = QDateTime::currentMSecsSinceEpoch();
    m_agent->send(op, std::move(arguments),
                  [self, key, site, operation, done, sentMs](Result<QJsonObject> reply) {
                      if (!self) return;
                      self->m_busy.remove(key);
                      // A worker failure shown meanwhile already said it, with its log.
                      if (!reply && self->m_failureShownMs.value(site) >= sentMs)
                          self->statusBar()->showMessage(reply.error(), 10000);
                      else if (!reply)
                          self->showError(reply.error());
                      else if (done)
                          done(reply.value());
                      self->updateActions();
                      Q_EMIT self->operationFinished(site, operation,
                                                     reply ? QString() : reply.error());
                  });
}

QAction *MainWindow::action(const QString &objectName) const {
    return m_actions.value(objectName);
}

QLineEdit *MainWindow::treeSearch() const {
    return m_treeSearch->searchEdit();
}

QComboBox *MainWindow::treeStateFilter() const {
    return m_treeSearch->stateCombo();
}

void MainWindow::setConfirmer(std::unique_ptr<Confirmer> confirmer) {
    m_confirmer = confirmer ? std::move(confirmer) : std::make_unique<Confirmer>();
}

bool MainWindow::confirm(const Confirmation &question) {
    return m_confirmer->confirm(this, question);
}

Confirmation MainWindow::removalQuestion(const agent::SiteStatus &status,
                                         const QList<quint16> &ports) const {
    const QString site = status.site.name;
    bool removesRunning = false;
    bool othersRunning = false;
    for (const auto &[port, state] : agent::workerStates(status)) {
        const bool running = state == WorkerState::Running;
        (ports.contains(port) ? removesRunning : othersRunning) |= running;
    }
    QStringList names;
    for (quint16 port : ports)
        names.append(QString::number(port));
    const QString which = tr("%n worker(s) on port(s) %1", nullptr, int(ports.size()))
                              .arg(names.join(QStringLiteral(", ")));
    Confirmation question;
    question.title = tr("Remove workers of %1").arg(site);
    if (removesRunning && !othersRunning) {
        // Never silenced: this takes the whole site down.
        question.text =
            tr("This removes the last running worker of %1 (%2). Until another worker is "
               "running, the site will answer every request with 502 Bad Gateway.")
                .arg(site, which);
        question.acceptLabel = tr("Remove the last worker");
        return question;
    }
    question.key = QStringLiteral("removeWorkers");
    question.text = tr("Drain and stop %1 of %2? They get no new requests, finish their "
                       "in-flight ones, then stop; their ports are given up.")
                        .arg(which, site);
    question.acceptLabel = tr("Drain and remove");
    return question;
}

void MainWindow::createActions() {
    const auto make = [this](const QString &name, const QString &text, QStyle::StandardPixmap icon,
                             const QKeySequence &shortcut, const QString &tip, auto slot) {
        auto *action = new QAction(style()->standardIcon(icon), text, this);
        action->setObjectName(name);
        action->setShortcut(shortcut);
        action->setToolTip(shortcut.isEmpty() ? tip
                                              : tip + QStringLiteral(" (") +
                                                    shortcut.toString(QKeySequence::NativeText) +
                                                    QLatin1Char(')'));
        action->setStatusTip(tip);
        connect(action, &QAction::triggered, this, slot);
        m_actions.insert(name, action);
        return action;
    };
    make(QStringLiteral("reload"), tr("&Reload inventory"), QStyle::SP_BrowserReload,
         QKeySequence::Refresh, tr("Re-read the inventory file"), &MainWindow::reloadInventory);
    make(QStringLiteral("fleetOverview"), tr("&Fleet overview"), QStyle::SP_ComputerIcon,
         QKeySequence(Qt::CTRL | Qt::Key_0),
         tr("Every host and production site, degraded ones first (nothing selected in the tree)"),
         [this] {
             m_tree->setCurrentIndex({}); // the tree's root: what the centre then shows
             showFleetOverview(QString());
         });
    make(QStringLiteral("addHost"), tr("Add &host…"), QStyle::SP_DriveNetIcon,
         QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_H),
         tr("Add a server reached over SSH (host key checked, secrets in the keychain)"),
         &MainWindow::addHostDialog);
    make(QStringLiteral("addProductionSite"), tr("Add &production site…"),
         QStyle::SP_FileDialogNewFolder, QKeySequence(),
         tr("A site whose workers run on SSH hosts behind nginx, HAProxy or Apache there"),
         [this] { productionSiteDialog(false); });
    make(QStringLiteral("editSite"), tr("&Edit production site…"),
         QStyle::SP_FileDialogDetailedView, QKeySequence(),
         tr("Change the selected production site's workers and balancer settings"),
         [this] { productionSiteDialog(true); });
    make(QStringLiteral("launch"), tr("&Launch local cluster…"), QStyle::SP_MediaPlay,
         QKeySequence::New, tr("Start workers and the embedded balancer on this machine"),
         &MainWindow::launchDialog);
    make(QStringLiteral("startSite"), tr("S&tart site"), QStyle::SP_MediaPlay,
         QKeySequence(Qt::CTRL | Qt::Key_T),
         tr("Start the selected saved site on this machine with its saved settings"),
         &MainWindow::startSavedSite);
    make(QStringLiteral("editLocalSite"), tr("Edit &site…"), QStyle::SP_FileDialogDetailedView,
         QKeySequence(),
         tr("Change the selected local site's settings (a running site restarts with them)"),
         &MainWindow::editLocalSiteDialog);
    make(QStringLiteral("addBackend"), tr("&Add backend"), QStyle::SP_FileDialogNewFolder,
         QKeySequence(Qt::CTRL | Qt::Key_B),
         tr("Start one more worker on a free port and add it to the balancer once healthy"),
         &MainWindow::addBackend);
    make(QStringLiteral("removeBackend"), tr("&Drain and remove backend"), QStyle::SP_TrashIcon,
         QKeySequence::Delete,
         tr("Stop sending the selected worker requests, wait for its in-flight ones, then stop it"),
         &MainWindow::removeBackend);
    make(QStringLiteral("restartWorker"), tr("Restart &worker"), QStyle::SP_BrowserReload,
         QKeySequence(Qt::CTRL | Qt::Key_R), tr("Drain and restart the selected worker"),
         &MainWindow::restartWorker);
    make(QStringLiteral("rollingRestart"), tr("R&olling restart"), QStyle::SP_MediaSeekForward,
         QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R),
         tr("Replace the workers one at a time; stops at the first replacement that fails"),
         &MainWindow::rollingRestart);
    make(QStringLiteral("checkAffinity"), tr("Check session &affinity"),
         QStyle::SP_MessageBoxQuestion, QKeySequence(),
         tr("Ask two workers directly whether a session one of them started is known to the "
            "other, and whether the policy keeps each client on its worker; the result shows "
            "above the workers, with its evidence and fix"),
         &MainWindow::checkAffinity);
    make(QStringLiteral("toggleBackend"), tr("&Enable/disable backend"), QStyle::SP_DialogNoButton,
         QKeySequence(Qt::CTRL | Qt::Key_E),
         tr("Take the selected worker out of the balancer's rotation, or put it back"),
         &MainWindow::toggleBackendEnabled);
    make(QStringLiteral("applyBalancer"), tr("Apply &balancer config…"),
         QStyle::SP_DialogApplyButton, QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_A),
         tr("Show the diff of the site's nginx/HAProxy/Apache config on its host, then "
            "validate, reload and verify it (rolled back on failure)"),
         &MainWindow::applyBalancerDialog);
    make(QStringLiteral("stopSite"), tr("&Stop site"), QStyle::SP_MediaStop,
         QKeySequence(Qt::CTRL | Qt::Key_Period),
         tr("Drain and stop every worker of the site, then its balancer"), &MainWindow::stopSite);
    auto *load = make(QStringLiteral("generateLoad"), tr("&Generate load"),
                      QStyle::SP_MediaSeekForward, QKeySequence(Qt::CTRL | Qt::Key_G),
                      tr("Send requests to the balancer at the chosen rate, so the charts move"),
                      &MainWindow::toggleLoad);
    load->setCheckable(true);
    auto *quit = new QAction(tr("&Quit"), this);
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, this, &QWidget::close);
    auto *about = new QAction(tr("&About Corral"), this);
    connect(about, &QAction::triggered, this, [this] {
        QMessageBox::about(this, tr("About Corral"),
                           tr("Corral %1\nRun, balance and watch multi-process web apps.")
                               .arg(QStringLiteral(CORRAL_VERSION)));
    });

    QMenu *file = menuBar()->addMenu(tr("&File"));
    file->addAction(m_actions.value(QStringLiteral("reload")));
    file->addAction(m_actions.value(QStringLiteral("addHost")));
    file->addAction(m_actions.value(QStringLiteral("addProductionSite")));
    file->addAction(m_actions.value(QStringLiteral("editSite")));
    file->addSeparator();
    file->addAction(quit);
    menuBar()->addMenu(tr("&View"))->addAction(m_actions.value(QStringLiteral("fleetOverview")));
    QMenu *cluster = menuBar()->addMenu(tr("&Cluster"));
    for (const char *name : {"launch", "startSite", "editLocalSite", "addBackend", "removeBackend",
                             "restartWorker", "toggleBackend", "rollingRestart", "checkAffinity",
                             "stopSite", "generateLoad", "applyBalancer"})
        cluster->addAction(m_actions.value(QLatin1String(name)));
    menuBar()->addMenu(tr("&Help"))->addAction(about);
    createHostActions();
    for (const char *name : {"addBackend", "removeBackend", "restartWorker", "toggleBackend"})
        m_table->addAction(m_actions.value(QLatin1String(name)));
}

void MainWindow::createToolbar() {
    QToolBar *toolbar = addToolBar(tr("Cluster"));
    toolbar->setObjectName(QStringLiteral("clusterToolbar"));
    toolbar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    for (const char *name : {"launch", "startSite", "addBackend", "removeBackend", "restartWorker",
                             "rollingRestart", "stopSite", "applyBalancer"})
        toolbar->addAction(m_actions.value(QLatin1String(name)));
    toolbar->addSeparator();
    toolbar->addWidget(new QLabel(tr(" Workers ")));
    m_scale = new QSpinBox;
    m_scale->setObjectName(QStringLiteral("scale"));
    m_scale->setRange(1, Site::MaxWorkers);
    m_scale->setToolTip(tr("Scale the site: workers start or drain and stop to reach this count"));
    m_scale->setKeyboardTracking(false); // one scale per committed value, not per keystroke
    connect(m_scale, &QSpinBox::valueChanged, this, [this](int count) {
        const agent::SiteStatus *status = currentSite();
        if (!status && m_remoteMonitor) return scaleProductionSite(count);
        if (!status) return;
        const QString site = status->site.name;
        QList<quint16> ports;
        for (const auto &worker : agent::workerStates(*status))
            ports.append(worker.first);
        std::sort(ports.begin(), ports.end());
        if (count == int(ports.size())) return;
        if (count < ports.size()) {
            // Scaling down drains and stops the highest ports.
            Confirmation question = removalQuestion(*status, ports.mid(count));
            if (!question.key.isEmpty()) question.key = QStringLiteral("scaleDown");
            question.title = tr("Scale %1 down").arg(site);
            const bool accepted = confirm(question);
            status = currentSite(); // the question ran an event loop
            if (!accepted || !status || status->site.name != site) {
                const QSignalBlocker blocker(m_scale);
                if (status) m_scale->setValue(int(agent::workerStates(*status).size()));
                return;
            }
        }
        operate(QStringLiteral("scale"), site,
                [count](SiteControl &control, SiteControl::Done done) {
                    control.scaleTo(count, {}, std::move(done));
                });
    });
    toolbar->addWidget(m_scale);
    toolbar->addWidget(new QLabel(tr(" Policy ")));
    m_policy = new QComboBox;
    m_policy->setObjectName(QStringLiteral("policy"));
    m_policy->setToolTip(tr("How the embedded balancer picks a backend"));
    for (BalancingPolicy policy : allPolicies())
        m_policy->addItem(policyName(policy), int(policy));
    connect(m_policy, &QComboBox::activated, this, [this] {
        if (const agent::SiteStatus *status = currentSite())
            setLocalPolicy(status->site.name, BalancingPolicy(m_policy->currentData().toInt()));
    });
    toolbar->addWidget(m_policy);
    toolbar->addSeparator();
    toolbar->addAction(m_actions.value(QStringLiteral("generateLoad")));
    m_rate = new QSlider(Qt::Horizontal);
    m_rate->setObjectName(QStringLiteral("loadRate"));
    m_rate->setRange(10, 5000);
    m_rate->setValue(300);
    m_rate->setMaximumWidth(160);
    m_rate->setToolTip(tr("Requests per second the load generator sends"));
    m_rateLabel = new QLabel;
    m_rateLabel->setMinimumWidth(70);
    const auto showRate = [this](int rate) {
        m_rateLabel->setText(tr("%1 req/s").arg(rate));
        m_loadGenerator->setRate(rate);
    };
    connect(m_rate, &QSlider::valueChanged, this, showRate);
    showRate(m_rate->value());
    toolbar->addWidget(m_rate);
    toolbar->addWidget(m_rateLabel);
}

void MainWindow::restoreLayout() {
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    for (QSplitter *splitter : {m_mainSplitter, m_centreSplitter, m_chartSplitter})
        splitter->restoreState(
            settings.value(QStringLiteral("window/") + splitter->objectName()).toByteArray());
    m_table->horizontalHeader()->restoreState(
        settings.value(QStringLiteral("window/workerColumns")).toByteArray());
}

void MainWindow::saveLayout() const {
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    for (QSplitter *splitter : {m_mainSplitter, m_centreSplitter, m_chartSplitter})
        settings.setValue(QStringLiteral("window/") + splitter->objectName(),
                          splitter->saveState());
    settings.setValue(QStringLiteral("window/workerColumns"),
                      m_table->horizontalHeader()->saveState());
}

void MainWindow::showError(const QString &message) {
    m_lastError = message;
    statusBar()->showMessage(message, 10000);
    // Non-modal: a failure never blocks the console (or a test driving it).
    auto *box = new QMessageBox(QMessageBox::Warning, tr("Corral"), message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::reloadInventory() {
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) {
        m_lastError = inventory.error();
        statusBar()->showMessage(m_lastError);
        return;
    }
    m_lastError.clear();
    m_treeModel->setInventory(inventory.value());
    m_tree->expandAll();
    m_tree->resizeColumnToContents(0);
    m_connections->setHosts(inventory->hosts());
    m_fleetMonitor->setInventory(inventory->hosts(), inventory->sites(), [this](const Host &host) {
        return m_connections->host(host.name);
    });
    if (m_remoteMonitor) {
        // The site on view follows the inventory; a host replaced above is looked up again.
        m_remoteMonitor->setWorkerHosts(m_connections->hosts(), [this](const Host &known) {
            return m_connections->host(known.name);
        });
        if (const Site *site = inventory->site(m_currentSite);
            site && site->balancer && *site != m_remoteMonitor->site())
            m_remoteMonitor->setSite(*site);
    }
    statusBar()->showMessage(
        tr("%n site(s) in %1", nullptr, int(inventory->sites().size())).arg(m_inventoryPath), 5000);
    if (!m_currentSite.isEmpty()) m_tree->setCurrentIndex(m_treeFilter->siteIndex(m_currentSite));
}

void MainWindow::addHostDialog() {
    auto *dialog = new AddHostDialog(this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] { saveHostFromDialog(dialog); });
    dialog->open();
}

void MainWindow::saveHostFromDialog(AddHostDialog *dialog) {
    auto host = dialog->host();
    if (!host) return showError(host.error());
    // Read again: the inventory may have changed while the dialog was open.
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return showError(inventory.error());
    auto changed = dialog->isEditing() ? inventory->updateHost(host.value())
                                       : inventory->addHost(host.value());
    if (changed) changed = inventory->save(m_inventoryPath);
    if (!changed) return showError(changed.error());
    m_connections->rememberSecret(
        host.value(), dialog->secret(), this, [this](const QString &error) {
            showError(
                tr("The secret was not stored in the keychain (%1); Corral keeps it in memory "
                   "until it quits.")
                    .arg(error));
        });
    reloadInventory();
    statusBar()->showMessage(
        (dialog->isEditing() ? tr("Saved host %1 in %2") : tr("Added host %1 to %2"))
            .arg(host->name, m_inventoryPath),
        5000);
}

void MainWindow::createHostActions() {
    const auto make = [this](const QString &name, const QString &text, const QString &tip,
                             void (MainWindow::*slot)()) {
        auto *action = new QAction(text, this);
        action->setObjectName(name);
        action->setStatusTip(tip);
        action->setToolTip(tip);
        connect(action, &QAction::triggered, this, slot);
        m_actions.insert(name, action);
        return action;
    };
    make(QStringLiteral("editHost"), tr("&Edit host…"),
         tr("Change the selected host's address, port, user or authentication"),
         &MainWindow::editHostDialog);
    make(QStringLiteral("reconnectHost"), tr("Re&connect host"),
         tr("Close the selected host's SSH session and connect again"), &MainWindow::reconnectHost);
    make(QStringLiteral("removeHost"), tr("&Remove host…"),
         tr("Remove the selected host from the inventory (refused while a site uses it)"),
         &MainWindow::removeHost);
    const QStringList names{QStringLiteral("addHost"), QStringLiteral("editHost"),
                            QStringLiteral("reconnectHost"), QStringLiteral("removeHost")};
    auto *menu = new QMenu(tr("H&ost"), this);
    for (const QString &name : names)
        menu->addAction(m_actions.value(name));
    // Between File and Cluster.
    const QList<QAction *> menus = menuBar()->actions();
    menuBar()->insertMenu(menus.value(1), menu);

    // Right-click on a host: the same actions, for that host.
    m_tree->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(m_tree, &QWidget::customContextMenuRequested, this, [this, names](const QPoint &at) {
        const QModelIndex index = m_tree->indexAt(at);
        const int kind = index.data(InventoryTreeModel::KindRole).toInt();
        if (!index.isValid()) return;
        m_tree->setCurrentIndex(index.siblingAtColumn(0));
        QMenu context;
        if (kind == int(InventoryTreeModel::NodeKind::Host)) {
            for (const QString &name : names.mid(1))
                context.addAction(m_actions.value(name));
        } else {
            // A site: what can be done to it as a whole (greyed ones say why in the toolbar).
            for (const char *name : {"startSite", "editLocalSite", "editSite", "rollingRestart",
                                     "checkAffinity", "stopSite"})
                if (QAction *action = m_actions.value(QLatin1String(name)); action->isEnabled())
                    context.addAction(action);
        }
        if (!context.isEmpty()) context.exec(m_tree->viewport()->mapToGlobal(at));
    });
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this,
            &MainWindow::updateHostActions);
    connect(m_treeModel, &QAbstractItemModel::modelReset, this, &MainWindow::updateHostActions);
    updateHostActions();
}

QString MainWindow::selectedHostName() const {
    const QModelIndex index = m_tree->currentIndex();
    if (index.data(InventoryTreeModel::KindRole).toInt() != int(InventoryTreeModel::NodeKind::Host))
        return {};
    const QString name = index.siblingAtColumn(0).data(InventoryTreeModel::NameRole).toString();
    for (const Host &host : m_connections->hosts())
        if (host.name == name) return name;
    return {}; // the local machine: nothing to edit, reconnect or remove
}

void MainWindow::updateHostActions() {
    const QString host = selectedHostName();
    const QString why = tr("Select an SSH host in the tree (the local machine has no settings)");
    for (const char *name : {"editHost", "reconnectHost", "removeHost"}) {
        QAction *action = m_actions.value(QLatin1String(name));
        action->setEnabled(!host.isEmpty());
        action->setToolTip(host.isEmpty() ? why : action->statusTip());
    }
}

void MainWindow::editHostDialog() {
    const QString name = selectedHostName();
    if (name.isEmpty()) return showError(tr("Select an SSH host in the tree to edit"));
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return showError(inventory.error());
    const Host *host = inventory->host(name);
    if (!host) return showError(tr("No host named %1 in %2").arg(name, m_inventoryPath));
    auto *dialog = new AddHostDialog(*host, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] { saveHostFromDialog(dialog); });
    dialog->open();
}

void MainWindow::reconnectHost() {
    const QString name = selectedHostName();
    if (name.isEmpty()) return showError(tr("Select an SSH host in the tree to reconnect"));
    // A new SshHost: its session is a new login; whoever holds the old one looks it up again
    // in reloadInventory().
    m_treeModel->setHostOnline(name, false, tr("reconnecting"));
    m_connections->reconnect(name);
    reloadInventory();
    statusBar()->showMessage(tr("Reconnecting to %1…").arg(name), 5000);
}

void MainWindow::removeHost() {
    const QString name = selectedHostName();
    if (name.isEmpty()) return showError(tr("Select an SSH host in the tree to remove"));
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return showError(inventory.error());
    // Refused before asking anything: the message names every site that uses the host.
    if (!inventory->sitesUsingHost(name).isEmpty())
        return showError(tr("Cannot remove %1: %2").arg(name, inventory->removeHost(name).error()));
    Confirmation question;
    question.key = QStringLiteral("removeHost");
    question.title = tr("Remove host %1").arg(name);
    question.text = tr("Remove %1 from the inventory %2? No site uses it; its secrets are deleted "
                       "from the keychain. Nothing on the host changes.")
                        .arg(name, m_inventoryPath);
    question.acceptLabel = tr("Remove host");
    if (!confirm(question)) return;
    // Read again: the question ran an event loop.
    inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return showError(inventory.error());
    auto removed = inventory->removeHost(name);
    if (removed) removed = inventory->save(m_inventoryPath);
    if (!removed) return showError(tr("Cannot remove %1: %2").arg(name, removed.error()));
    m_connections->forgetSecrets(name);
    reloadInventory();
    statusBar()->showMessage(tr("Removed host %1 from %2").arg(name, m_inventoryPath), 5000);
}

void MainWindow::productionSiteDialog(bool editSelected) {
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return showError(inventory.error());
    QList<Host> sshHosts;
    for (const Host &host : inventory->hosts())
        if (host.kind == Host::Kind::Ssh) sshHosts.append(host);
    QStringList names;
    for (const Site &site : inventory->sites())
        names.append(site.name);
    auto *dialog = new ProductionSiteDialog(sshHosts, names, this);
    dialog->setObjectName(QStringLiteral("productionSiteDialog"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    if (editSelected) {
        const Site *site = inventory->site(m_currentSite);
        if (!site || !site->balancer) {
            delete dialog;
            return showError(tr("Select a production site to edit"));
        }
        dialog->setSite(*site);
    }
    connect(dialog, &QDialog::accepted, this, [this, dialog, editSelected] {
        auto site = dialog->site();
        if (!site) return showError(site.error());
        // Read again: the inventory may have changed while the dialog was open.
        auto inventory = Inventory::load(m_inventoryPath);
        if (!inventory) return showError(inventory.error());
        auto changed =
            editSelected ? inventory->updateSite(site.value()) : inventory->addSite(site.value());
        if (changed) changed = inventory->save(m_inventoryPath);
        if (!changed) return showError(changed.error());
        if (m_remoteMonitor && m_remoteMonitor->site().name == site->name)
            m_remoteMonitor->setSite(site.value());
        reloadInventory();
        statusBar()->showMessage(tr("Saved site %1 in %2; Apply balancer config puts it live")
                                     .arg(site->name, m_inventoryPath),
                                 10000);
        m_tree->setCurrentIndex(m_treeFilter->siteIndex(site->name));
    });
    dialog->open();
}

void MainWindow::updateTree() {
    // Sites the agent runs (or is starting, stopping), whoever started them; those not in the
    // inventory show under the local machine too. The model resets on this: only on change.
    QList<Site> running;
    for (const agent::SiteStatus &status : std::as_const(m_sites))
        if (status.state != agent::SiteState::Stopped && status.state != agent::SiteState::Failed)
            running.append(status.site);
    std::sort(running.begin(), running.end(),
              [](const Site &a, const Site &b) { return a.name < b.name; });
    if (running != m_treeRunning) {
        m_treeRunning = running;
        m_treeModel->setRunningSites(running);
        m_tree->expandAll();
        m_tree->resizeColumnToContents(0);
    }
    if (!m_currentSite.isEmpty()) {
        const QSignalBlocker blocker(m_tree->selectionModel());
        m_tree->setCurrentIndex(m_treeFilter->siteIndex(m_currentSite));
    }
}

const agent::SiteStatus *MainWindow::currentSite() const {
    const auto it = m_sites.constFind(m_currentSite);
    if (m_currentSite.isEmpty() || it == m_sites.cend()) return nullptr;
    const agent::SiteState state = it->state;
    return state == agent::SiteState::Starting || state == agent::SiteState::Running ||
                   state == agent::SiteState::Stopping
               ? &it.value()
               : nullptr;
}

void MainWindow::selectSite(const QString &site) {
    m_centreStack->setCurrentWidget(site.isEmpty() ? static_cast<QWidget *>(m_fleetOverview)
                                                   : m_sitePane);
    // The site on view again: nothing to do while it is shown live; otherwise (a production
    // site whose monitor could not start) it is set up again.
    if (site == m_currentSite && (currentSite() || m_remoteMonitor)) return;
    m_currentSite = site;
    if (m_remoteMonitor) {
        m_treeModel->clearRemoteSiteHealth(m_remoteMonitor->site().name); // no longer watched
        m_remoteMonitor->stop();
        m_remoteMonitor->deleteLater();
        m_remoteMonitor = nullptr;
    }
    m_historyFor.clear();
    m_ticksWhileLoading.clear();
    m_workerModel->clear();
    m_cpuChart->clear();
    m_distributionChart->clear();
    m_throughputChart->clear();
    m_logView->clear();
    m_logBackend.clear();
    m_rollout->hide();
    showSiteStatus(nullptr);
    showAffinityOf(site);
    if (const agent::SiteStatus *status = currentSite()) {
        if (auto listen = Endpoint::parse(status->site.listen))
            m_loadGenerator->setTarget(listen->host, listen->port);
        if (status->rollingOut) {
            m_rollout->setRange(0, int(status->workers.size()));
            m_rollout->setValue(0);
            m_rollout->show();
        }
        if (status->snapshot.timestampMs > 0) {
            // The table at once; the charts once their history is in.
            m_workerModel->updateSnapshot(status->snapshot);
            showSiteStatus(&status->snapshot);
        }
        loadHistory(site);
    } else if (const auto failed = m_sites.constFind(site);
               failed != m_sites.cend() && failed->state == agent::SiteState::Failed) {
        statusBar()->showMessage(tr("%1 failed: %2").arg(site, failed->error), 10000);
    } else {
        watchRemoteSite();
    }
    updateActions();
}

void MainWindow::showFleetOverview(const QString &host) {
    // No site on view meanwhile: its monitor stops, the toolbar's site actions grey out.
    if (!m_currentSite.isEmpty()) selectSite(QString());
    m_fleetOverview->setHostFilter(host);
    m_centreStack->setCurrentWidget(m_fleetOverview);
}

bool MainWindow::fleetOverviewShown() const {
    return m_centreStack->currentWidget() == m_fleetOverview;
}

void MainWindow::onFleetUpdated(const FleetSnapshot &snapshot) {
    QElapsedTimer clock;
    clock.start();
    m_fleetOverview->setSnapshot(snapshot);
    // The tree's production rows follow the fleet poll (the setters report changes only). The
    // site on view is left to its own monitor, whose finer reading would flicker with this.
    const QString watched = m_remoteMonitor ? m_remoteMonitor->site().name : QString();
    for (const FleetSiteRow &site : snapshot.sites)
        if (site.name != watched)
            m_treeModel->setRemoteSiteHealth(site.name, site.workersRunning, site.workersTotal,
                                             site.unreachableHosts);
    for (const FleetHostRow &host : snapshot.hosts)
        if (!host.local && host.polled)
            m_treeModel->setHostOnline(host.name, host.reachable, host.error);
    m_lastFleetTickMs = double(clock.nsecsElapsed()) / 1e6;
}

void MainWindow::loadHistory(const QString &site) {
    if (!m_agent) return;
    m_historyFor = site;
    m_ticksWhileLoading.clear();
    const QPointer<agent::AgentClient> client(m_agent);
    m_agent->send(QLatin1String(agent::op::History), {{QStringLiteral("site"), site}},
                  [this, client, site](Result<QJsonObject> reply) {
                      if (client && m_historyFor == site) showHistory(site, reply);
                  });
}

void MainWindow::showHistory(const QString &site, const Result<QJsonObject> &reply) {
    m_historyFor.clear();
    QList<ClusterSnapshot> ticks;
    if (reply) {
        // The charts span five minutes: older ticks would only be trimmed away.
        const qint64 since = QDateTime::currentMSecsSinceEpoch() - ThroughputChartView::windowMs;
        for (const QJsonValue &value : reply->value(QLatin1String("snapshots")).toArray()) {
            ClusterSnapshot tick = agent::snapshotFromJson(value.toObject());
            if (tick.site == site && tick.timestampMs >= since) ticks.append(tick);
        }
    }
    // Then the live ticks that came while the history was on its way.
    const qint64 lastHistory = ticks.isEmpty() ? 0 : ticks.last().timestampMs;
    for (const ClusterSnapshot &tick : std::as_const(m_ticksWhileLoading))
        if (tick.timestampMs > lastHistory) ticks.append(tick);
    m_ticksWhileLoading.clear();
    if (ticks.isEmpty() || site != m_currentSite) return;
    // Every tick but the last into the charts in one go each (a tick at a time, 300 ticks
    // took 250 ms); the last one as a live tick.
    const ClusterSnapshot last = ticks.takeLast();
    QHash<quint16, QList<QPointF>> cpu;
    for (const ClusterSnapshot &tick : std::as_const(ticks))
        for (const WorkerRow &row : tick.workers)
            if (row.cpuValid && row.host == QLatin1String("local"))
                cpu[row.port].append(QPointF(double(tick.timestampMs), row.cpuPercent));
    m_throughputChart->setHistory(ticks);
    onSnapshot(site, last);
    // After the live tick, and only for workers it has: no line for a worker gone by now.
    for (const WorkerRow &row : last.workers)
        if (const auto line = cpu.constFind(row.port); line != cpu.cend())
            m_cpuChart->setHistory(row.port, line.value());
}

Result<void> MainWindow::launchCluster(const Site &site, bool ephemeral) {
    if (auto valid = site.validate(); !valid) return valid;
    if (const auto known = m_sites.constFind(site.name);
        known != m_sites.cend() && known->state != agent::SiteState::Stopped &&
        known->state != agent::SiteState::Failed)
        return fail(
            tr("site %1 is already running: Edit site… changes its settings").arg(site.name));
    // Refused here, before any request: the address named with its holder.
    if (auto listen = Endpoint::parse(site.listen))
        if (auto free = checkListenAddressFree(QHostAddress(listen->host), listen->port); !free)
            return free;
    if (!m_agent && !connectAgent(true))
        return fail(tr("cannot reach the Corral agent: %1").arg(m_agentError));
    QJsonObject arguments{{QStringLiteral("site"), site.toJson()},
                          {QStringLiteral("ephemeral"), ephemeral}};
    const QString name = site.name;
    request(QStringLiteral("launch"), name, QLatin1String(agent::op::Start), arguments,
            [this, name](const QJsonObject &) {
                statusBar()->showMessage(tr("%1 is running").arg(name), 5000);
            });
    m_selectFirstWorker = true;
    selectSite(name);
    {
        const QSignalBlocker blocker(m_tree->selectionModel());
        m_tree->setCurrentIndex(m_treeFilter->siteIndex(name));
    }
    return {};
}

Result<void> MainWindow::startDemo(const QString &listen) {
    Site site;
    site.name = QStringLiteral("demo");
    site.command = m_options.demoWorkerPath;
    // Sessions in each worker's memory, as express-session's default store keeps them: the
    // session affinity check on the demo finds them per process and offers its fix (issue 22).
    site.args = {QStringLiteral("--port"), Site::PortPlaceholder, QStringLiteral("--sessions"),
                 QStringLiteral("memory")};
    site.workers = 3;
    site.basePort = 3000;
    site.healthPath = QStringLiteral("/health");
    site.listen = listen;
    // Its welcome page and stylesheet come from the proxy (nginx's try_files), each request
    // in the access log the log view shows.
    if (QFileInfo(demoPublicDirectory()).isDir()) site.staticRoot = demoPublicDirectory();
    if (const auto known = m_sites.constFind(site.name);
        known != m_sites.cend() && known->state == agent::SiteState::Running &&
        known->site.listen == listen) {
        // Another console's (or corralctl's) demo: shown, not started twice.
        selectSite(site.name);
        updateTree();
        return {};
    }
    auto started = launchCluster(site, true);
    if (!started) showError(tr("Cannot start the demo: %1").arg(started.error()));
    return started;
}

void MainWindow::launchDialog() {
    openLaunchDialog(std::nullopt);
}

void MainWindow::openLaunchDialog(const std::optional<Site> &editing) {
    auto *dialog = new LaunchClusterDialog(m_options.demoWorkerPath, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    // Proposals that do not collide: names and addresses of every site known here.
    QStringList names;
    QStringList addresses;
    if (auto inventory = Inventory::load(m_inventoryPath))
        for (const Site &site : inventory->sites()) {
            names.append(site.name);
            if (!site.listen.isEmpty()) addresses.append(site.listen);
        }
    for (const agent::SiteStatus &status : std::as_const(m_sites)) {
        names.append(status.site.name);
        if (!status.site.listen.isEmpty()) addresses.append(status.site.listen);
    }
    dialog->setTaken(names, addresses);
    const bool running = editing && m_sites.contains(editing->name) &&
                         m_sites.value(editing->name).state == agent::SiteState::Running;
    if (editing) dialog->setEditing(*editing, running);
    connect(dialog, &QDialog::accepted, this, [this, dialog, editing] {
        auto site = dialog->site();
        if (!site) return showError(site.error());
        const auto known = m_sites.constFind(site->name);
        const bool live = known != m_sites.cend() && known->state != agent::SiteState::Stopped &&
                          known->state != agent::SiteState::Failed;
        if (editing) {
            if (!saveSiteToInventory(site.value())) return;
            if (!live) {
                statusBar()->showMessage(tr("Saved %1; Start runs it").arg(site->name), 5000);
                return;
            }
            // Started again with the new settings (the agent restarts a running site).
            const QString name = site->name;
            request(QStringLiteral("edit"), name, QLatin1String(agent::op::Start),
                    {{QStringLiteral("site"), site->toJson()},
                     {QStringLiteral("ephemeral"), known->ephemeral}},
                    [this, name](const QJsonObject &) {
                        statusBar()->showMessage(tr("%1 runs with its new settings").arg(name),
                                                 5000);
                    });
            return;
        }
        if (const std::optional<Site> saved = inventorySite(site->name); saved && !live) {
            Confirmation question;
            question.title = tr("Overwrite site %1").arg(site->name);
            question.text =
                tr("The inventory already has a site named %1 (%2, %n worker(s)). "
                   "Launching saves the new settings over it.",
                   nullptr, saved->workers)
                    .arg(site->name, saved->command.isEmpty() ? tr("no command") : saved->command);
            question.acceptLabel = tr("Overwrite and launch");
            if (!confirm(question)) return;
        }
        if (auto started = launchCluster(site.value()); !started) return showError(started.error());
        saveSiteToInventory(site.value());
    });
    dialog->open();
}

std::optional<Site> MainWindow::startableSite() const {
    if (currentSite()) return std::nullopt; // runs: nothing to read (this runs every tick)
    const std::optional<Site> saved = inventorySite(m_currentSite);
    if (!saved || saved->balancer || !saved->hosts.isEmpty()) return std::nullopt;
    return saved;
}

void MainWindow::startSavedSite() {
    if (!currentSite() && m_remoteMonitor) return stopOrStartProductionSite(false);
    const std::optional<Site> site = startableSite();
    if (!site) return;
    if (auto listen = Endpoint::parse(site->listen))
        if (auto free = checkListenAddressFree(QHostAddress(listen->host), listen->port); !free)
            return showError(tr("Cannot start %1: %2").arg(site->name, free.error()));
    m_selectFirstWorker = true;
    operate(QStringLiteral("start"), site->name,
            [](SiteControl &control, SiteControl::Done done) { control.start(std::move(done)); });
}

void MainWindow::editLocalSiteDialog() {
    std::optional<Site> site = startableSite();
    if (const agent::SiteStatus *status = currentSite()) site = status->site;
    if (!site) return showError(tr("Select a local site to edit"));
    openLaunchDialog(site);
}

bool MainWindow::saveSiteToInventory(const Site &site) {
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) {
        showError(tr("The site was not saved: %1").arg(inventory.error()));
        return false;
    }
    auto changed =
        inventory->site(site.name) ? inventory->updateSite(site) : inventory->addSite(site);
    if (changed) changed = inventory->save(m_inventoryPath);
    if (!changed) {
        showError(tr("The site was not saved: %1").arg(changed.error()));
        return false;
    }
    reloadInventory();
    return true;
}

quint16 MainWindow::selectedPort() const {
    const QModelIndexList rows = m_table->selectionModel()->selectedRows();
    return rows.isEmpty() ? 0 : quint16(rows.first().data(WorkerTableModel::PortRole).toUInt());
}

void MainWindow::addBackend() {
    if (const agent::SiteStatus *status = currentSite())
        // One more worker: the agent starts it on a free port; it joins once healthy.
        operate(QStringLiteral("addBackend"), status->site.name,
                [](SiteControl &control, SiteControl::Done done) {
                    control.addBackend({}, std::move(done));
                });
    else if (m_remoteMonitor)
        addProductionBackend(); // asks which host first when the site has several
}

void MainWindow::removeBackend() {
    const QString backend = selectedBackend();
    if (backend.isEmpty() || m_currentSite.isEmpty()) return;
    const QString site = m_currentSite;
    if (const agent::SiteStatus *status = currentSite()) {
        if (!confirm(removalQuestion(*status, {selectedPort()}))) return;
    } else if (m_remoteMonitor && !m_remoteBusy) {
        const Site shown = m_remoteMonitor->site();
        Confirmation question;
        question.key = QStringLiteral("productionRemoveBackend");
        question.title = tr("Drain and remove %1").arg(backend);
        question.text = tr("%1 is drained at the %2 on %3 until no request is in flight on it, "
                           "its worker is stopped, and the balancer config is applied without "
                           "it (the previous config keeps serving if any step fails).")
                            .arg(backend, shown.balancer->format, shown.balancer->host);
        question.acceptLabel = tr("Drain and remove");
        if (!confirm(question)) return;
    } else {
        return;
    }
    if (m_currentSite != site) return; // the question ran an event loop: the view moved on
    // Drained at the balancer, stopped once its requests finished, then out of the site.
    operate(QStringLiteral("removeBackend"), site,
            [backend](SiteControl &control, SiteControl::Done done) {
                control.removeBackend(backend, std::move(done));
            });
    statusBar()->showMessage(tr("Draining %1; it stops once its requests finished").arg(backend),
                             5000);
}

void MainWindow::restartWorker() {
    const QString backend = selectedBackend();
    if (backend.isEmpty() || m_currentSite.isEmpty()) return;
    operate(QStringLiteral("restartWorker"), m_currentSite,
            [backend](SiteControl &control, SiteControl::Done done) {
                control.restartWorker(backend, std::move(done));
            });
}

void MainWindow::rollingRestart() {
    const agent::SiteStatus *status = currentSite();
    if (!status && m_remoteMonitor) return remoteRollingRestart();
    if (!status) return;
    const QString site = status->site.name;
    m_rollout->setRange(0, int(agent::workerStates(*status).size()));
    m_rollout->setValue(0);
    m_rollout->show();
    operate(QStringLiteral("rollingRestart"), site,
            [](SiteControl &control, SiteControl::Done done) {
                control.rollingRestart(std::move(done));
            });
}

void MainWindow::stopSite() {
    if (const agent::SiteStatus *status = currentSite()) return stopSiteNamed(status->site.name);
    if (m_remoteMonitor) stopOrStartProductionSite(true);
}

void MainWindow::stopSiteNamed(const QString &site) {
    const auto found = m_sites.constFind(site);
    if (found == m_sites.cend() || found->state == agent::SiteState::Stopped) return;
    const int workers = int(agent::workerStates(found.value()).size());
    Confirmation question;
    question.key = QStringLiteral("stopSite");
    question.title = tr("Stop %1").arg(site);
    question.text =
        found->site.listen.isEmpty()
            ? tr("Drain and stop the %n worker(s) of %1?", nullptr, workers).arg(site)
            : tr("Drain and stop the %n worker(s) of %1, then its balancer on %2? The site "
                 "will not answer until it is started again.",
                 nullptr, workers)
                  .arg(site, found->site.listen);
    question.acceptLabel = tr("Stop site");
    if (!confirm(question)) return;
    if (!m_sites.contains(site)) return; // the question ran an event loop
    statusBar()->showMessage(tr("Stopping %1…").arg(site));
    m_tray->expectStop(site);
    operate(QStringLiteral("stopSite"), site,
            [](SiteControl &control, SiteControl::Done done) { control.stop(std::move(done)); });
}

void MainWindow::toggleBackendEnabled() {
    const agent::SiteStatus *status = currentSite();
    const quint16 port = selectedPort();
    const WorkerRow *row = m_workerModel->rowForPort(port);
    if (!status || !row) return;
    request(QStringLiteral("toggleBackend"), status->site.name, QLatin1String(agent::op::Enable),
            {{QStringLiteral("site"), status->site.name},
             {QStringLiteral("port"), port},
             {QStringLiteral("enabled"), row->backendState == QLatin1String("disabled")}});
}

void MainWindow::toggleLoad(bool on) {
    const agent::SiteStatus *status = currentSite();
    if (!on || !status || status->site.listen.isEmpty()) {
        m_loadGenerator->stop();
        if (on) {
            m_actions.value(QStringLiteral("generateLoad"))->setChecked(false);
            showError(tr("Load needs a running site with an embedded balancer"));
        }
        return;
    }
    const Endpoint target = Endpoint::parse(status->site.listen).value();
    m_loadGenerator->setTarget(target.host, target.port);
    m_loadGenerator->setRate(m_rate->value());
    m_loadGenerator->start();
}

namespace {

/// Enables `target` (a QAction or a widget), or disables it with `whyNot` added to its tooltip:
/// a greyed control always says why it is greyed and what to do instead.
template <typename Target>
void setAvailable(Target *target, bool available, const QString &whyNot) {
    // The tooltip as created, kept the first time so the reason never accumulates.
    QVariant base = target->property("corralBaseToolTip");
    if (!base.isValid()) {
        base = target->toolTip();
        target->setProperty("corralBaseToolTip", base);
    }
    target->setEnabled(available);
    const QString tip = available || whyNot.isEmpty() ? base.toString()
                                                      : base.toString() + QStringLiteral("\n") +
                                                            QObject::tr("Unavailable: ") + whyNot;
    if (target->toolTip() != tip) target->setToolTip(tip);
}

} // namespace

void MainWindow::updateActions() {
    const agent::SiteStatus *status = currentSite();
    const bool running = status && status->state == agent::SiteState::Running;
    const bool hasProxy = running && status->hasProxy;
    const bool hasSelection = running && selectedPort() != 0;
    const bool rolling =
        running && (status->rollingOut || isBusy(QStringLiteral("rollingRestart"), m_currentSite));
    const bool remote = !status && m_remoteMonitor;
    const std::optional<Site> shown = status            ? std::nullopt
                                      : m_remoteMonitor ? m_remoteMonitor->site()
                                                        : inventorySite(m_currentSite);
    const bool production = !status && shown && shown->balancer;
    const std::optional<Site> startable = startableSite();
    // Why a control is greyed, for the site shown (the first reason that applies).
    QString notRunning;
    if (m_currentSite.isEmpty())
        notRunning = tr("select a site in the tree");
    else if (production)
        notRunning = QString(); // said per control below
    else if (status && status->state == agent::SiteState::Starting)
        notRunning = tr("site %1 is starting").arg(m_currentSite);
    else if (status && status->state == agent::SiteState::Stopping)
        notRunning = tr("site %1 is stopping").arg(m_currentSite);
    else if (!running)
        notRunning = (startable ? tr("site %1 is not running: Start runs it with its saved "
                                     "settings")
                                : tr("site %1 is not running: start it with Launch local "
                                     "cluster…"))
                         .arg(m_currentSite);
    const QString busy = tr("another operation on site %1 is still running").arg(m_currentSite);
    // A local action is greyed while its own request to the agent runs.
    const auto waiting = [this](const char *operation) {
        return isBusy(QLatin1String(operation), m_currentSite);
    };
    const QString answerPending =
        tr("waiting for the agent to finish the previous request on site %1").arg(m_currentSite);
    const bool startBusy = waiting("start") || waiting("launch");
    // A production operation runs on the site shown: one at a time.
    const bool productionIdle = production && remote && !m_remoteBusy;
    const QString productionBusy = m_remoteBusy
                                       ? busy
                                       : tr("the site's balancer host %1 is not connected yet")
                                             .arg(production ? shown->balancer->host : QString());
    setAvailable(
        m_actions.value(QStringLiteral("startSite")), (startable && !startBusy) || productionIdle,
        startBusy                 ? answerPending
        : status                  ? tr("site %1 runs already").arg(m_currentSite)
        : production              ? productionBusy
        : m_currentSite.isEmpty() ? tr("select a saved local site in the tree")
                                  : tr("site %1 is not a saved local site").arg(m_currentSite));
    const bool local = status || startable.has_value();
    setAvailable(
        m_actions.value(QStringLiteral("editLocalSite")), local && !waiting("edit"),
        waiting("edit") ? answerPending
        : production
            ? tr("site %1 is a production site: use Edit production site…").arg(m_currentSite)
            : tr("select a local site in the tree"));
    const QString balancerHost = production ? shown->balancer->host : QString();
    const auto forProduction = [&](const QString &production_, const QString &otherwise) {
        return production ? production_ : otherwise;
    };

    setAvailable(m_actions.value(QStringLiteral("applyBalancer")),
                 shown && shown->balancer && !m_remoteBusy,
                 m_remoteBusy ? busy
                 : shown      ? tr("site %1 has no production balancer (nginx, HAProxy or Apache "
                                        "on an SSH host) to apply a config to; the embedded balancer "
                                        "of a local site needs none")
                               .arg(shown->name)
                         : notRunning);
    setAvailable(m_actions.value(QStringLiteral("editSite")), production,
                 m_currentSite.isEmpty()
                     ? tr("select a production site in the tree")
                     : tr("site %1 has no production balancer; Add production site… creates one")
                           .arg(m_currentSite));
    setAvailable(m_actions.value(QStringLiteral("addBackend")),
                 (running && !waiting("addBackend")) ||
                     (remote && !m_remoteBusy && shown && !shown->command.isEmpty()),
                 m_remoteBusy ? busy
                 : running    ? answerPending
                 : production && shown->command.isEmpty()
                     ? tr("site %1 has no worker command to start one more with: set it in Edit "
                          "production site…")
                           .arg(shown->name)
                 : production
                     ? tr("the site's balancer host %1 is not connected yet").arg(balancerHost)
                     : notRunning);
    const QString selectWorker = tr("select a worker in the table");
    const bool backendSelected = !selectedBackend().isEmpty();
    setAvailable(m_actions.value(QStringLiteral("removeBackend")),
                 (hasSelection && !waiting("removeBackend")) || (productionIdle && backendSelected),
                 forProduction(productionIdle ? selectWorker : productionBusy,
                               !running                   ? notRunning
                               : waiting("removeBackend") ? answerPending
                                                          : selectWorker));
    setAvailable(m_actions.value(QStringLiteral("restartWorker")),
                 (hasSelection && !waiting("restartWorker")) || (productionIdle && backendSelected),
                 forProduction(productionIdle ? selectWorker : productionBusy,
                               !running                   ? notRunning
                               : waiting("restartWorker") ? answerPending
                                                          : selectWorker));
    setAvailable(
        m_actions.value(QStringLiteral("toggleBackend")),
        hasSelection && hasProxy && !waiting("toggleBackend"),
        forProduction(tr("on a production site, mark the backend ;down in Edit "
                         "production site…, then Apply balancer config"),
                      !running ? notRunning
                      : !hasProxy
                          ? tr("site %1 runs without Corral's embedded balancer").arg(m_currentSite)
                      : waiting("toggleBackend") ? answerPending
                                                 : selectWorker));
    setAvailable(
        m_actions.value(QStringLiteral("rollingRestart")),
        (running && !rolling) || (remote && !m_remoteBusy),
        rolling || m_remoteBusy ? tr("a rolling restart of site %1 is running").arg(m_currentSite)
        : production ? tr("the site's balancer host %1 is not connected yet").arg(balancerHost)
                     : notRunning);
    // A check only reads (requests to the workers): beside any operation, one at a time.
    const bool checking = m_affinityChecks.contains(m_currentSite);
    setAvailable(m_actions.value(QStringLiteral("checkAffinity")), (running || remote) && !checking,
                 checking ? tr("a session affinity check of site %1 is running").arg(m_currentSite)
                 : production
                     ? tr("the site's balancer host %1 is not connected yet").arg(balancerHost)
                     : notRunning);
    updateAffinityPolicy();
    const bool stoppable = status && status->state != agent::SiteState::Stopping;
    setAvailable(m_actions.value(QStringLiteral("stopSite")),
                 (stoppable && !waiting("stopSite")) || productionIdle,
                 forProduction(productionBusy, notRunning));
    setAvailable(
        m_actions.value(QStringLiteral("generateLoad")), hasProxy,
        forProduction(tr("the load generator only sends requests to a local site's "
                         "embedded balancer, never to production"),
                      running
                          ? tr("site %1 runs without Corral's embedded balancer").arg(m_currentSite)
                          : notRunning));
    setAvailable(
        m_scale,
        (running && !waiting("scale") && !waiting("addBackend") && !waiting("removeBackend")) ||
            (productionIdle && !shown->command.isEmpty()),
        running ? answerPending
                : forProduction(productionIdle ? tr("site %1 has no worker command to start "
                                                    "one more with: set it in Edit production "
                                                    "site…")
                                                     .arg(m_currentSite)
                                               : productionBusy,
                                notRunning));
    setAvailable(
        m_policy, hasProxy && !waiting("policy"),
        hasProxy
            ? answerPending
            : forProduction(
                  tr("the policy of the %1 on %2: change it in Edit production "
                     "site…, then Apply balancer config")
                      .arg(production ? shown->balancer->format : QString(), balancerHost),
                  running ? tr("site %1 runs without Corral's embedded balancer").arg(m_currentSite)
                          : notRunning));
    if (running) {
        const QSignalBlocker scaleBlocker(m_scale);
        m_scale->setMinimum(1);
        if (!m_scale->hasFocus()) m_scale->setValue(int(agent::workerStates(*status).size()));
        const QSignalBlocker policyBlocker(m_policy);
        const BalancingPolicy policy = status->snapshot.timestampMs > 0 && hasProxy
                                           ? status->snapshot.policy
                                           : status->site.policy;
        if (!waiting("policy")) m_policy->setCurrentIndex(m_policy->findData(int(policy)));
    } else if (shown) {
        // A site not run here shows what it has: its backends and its balancer's policy,
        // not the spin box's last value and the combo's first entry.
        const QSignalBlocker scaleBlocker(m_scale);
        m_scale->setMinimum(0); // a production site may have no backend yet
        m_scale->setValue(int(production ? shown->backends.size() : shown->workers));
        const QSignalBlocker policyBlocker(m_policy);
        m_policy->setCurrentIndex(m_policy->findData(int(shown->policy)));
    }
    m_listenButton->setVisible(hasProxy);
}

void MainWindow::onSnapshot(const QString &site, const ClusterSnapshot &snapshot) {
    const WorkerRow *crashed = nullptr; // the site's most recent crash
    for (const WorkerRow &row : snapshot.workers)
        if (row.lastCrashMs > 0 && (!crashed || row.lastCrashMs > crashed->lastCrashMs))
            crashed = &row;
    if (m_remoteMonitor && snapshot.site == m_remoteMonitor->site().name &&
        !m_sites.contains(snapshot.site))
        m_treeModel->setRemoteSiteHealth(snapshot.site, snapshot.running,
                                         int(snapshot.workers.size()), snapshot.unreachableHosts);
    m_treeModel->setSiteHealth(
        snapshot.site, snapshot.running, int(snapshot.workers.size()),
        crashed ? crashed->lastCrashMs : 0,
        crashed ? tr("port %1: %2").arg(crashed->port).arg(crashed->lastCrashCause) : QString(),
        snapshot.timestampMs);
    if (site != m_currentSite) return;
    QElapsedTimer timer;
    timer.start();
    m_workerModel->updateSnapshot(snapshot);
    m_cpuChart->updateSnapshot(snapshot);
    m_distributionChart->updateSnapshot(snapshot);
    m_throughputChart->updateSnapshot(snapshot);

    updateLog();
    showSiteStatus(&snapshot);
    if (m_scale->isEnabled() && !m_scale->hasFocus()) {
        const QSignalBlocker blocker(m_scale);
        m_scale->setValue(int(snapshot.workers.size()));
    }
    if (m_selectFirstWorker && m_workerProxy->rowCount() > 0) {
        // A freshly launched cluster shows its first worker's log rather than an empty pane.
        m_selectFirstWorker = false;
        m_table->selectRow(0);
    }
    m_lastTickMs = timer.nsecsElapsed() / 1e6;
    updateActions();
    Q_EMIT ticked();
}

void MainWindow::showSiteStatus(const ClusterSnapshot *snapshot) {
    if (!snapshot) {
        m_listenButton->setText(QString());
        m_policyLabel->clear();
        m_workersLabel->clear();
        m_throughputLabel->clear();
        m_throughputLabel->setToolTip(QString());
        return;
    }
    m_listenButton->setText(snapshot->listen);
    m_policyLabel->setText(snapshot->listen.isEmpty() ? QString() : policyName(snapshot->policy));
    m_workersLabel->setText(
        tr("%1/%2 running").arg(snapshot->running).arg(snapshot->workers.size()));
    // Errors include the 502/503/504 the balancer answered itself: an outage is not "0 req/s".
    m_throughputLabel->setText(tr("%1 req/s · %2 errors/s")
                                   .arg(snapshot->requestsPerSecond, 0, 'f', 0)
                                   .arg(snapshot->errorsPerSecond, 0, 'f', 1));
    // Restyled only when it changes: a style sheet change re-polishes the label.
    const QString style =
        snapshot->errorsPerSecond > 0 ? QStringLiteral("color: #d23c3c") : QString();
    if (m_throughputLabel->styleSheet() != style) m_throughputLabel->setStyleSheet(style);
    m_throughputLabel->setToolTip(
        snapshot->proxyErrorsPerSecond > 0
            ? tr("%1/s answered by the balancer itself (502/503/504): no backend is usable")
                  .arg(snapshot->proxyErrorsPerSecond, 0, 'f', 1)
            : QString());
}

QString MainWindow::failureReport(const QString &site, quint16 port, const QString &cause) const {
    // The same report `corralctl up` prints: the cause, the program's last lines, the log.
    WorkerFailureReport report;
    report.site = site;
    report.port = port;
    report.cause = cause;
    for (const agent::WorkerStatus &worker : m_sites.value(site).workers)
        if (worker.port == port) report.logPath = worker.logPath;
    if (report.logPath.isEmpty())
        return tr("Worker %1 of %2 failed: %3").arg(port).arg(site, cause);
    // Corral's own notes are left out: the cause already says it.
    const WorkerLogStream log(port, report.logPath);
    const QList<LogLine> lines = log.lastLines(200);
    for (auto line = lines.crbegin();
         line != lines.crend() && report.lastLines.size() < WorkerFailureReport::DefaultLines;
         ++line)
        if (!line->text.startsWith(QLatin1String("[corral "))) report.lastLines.prepend(line->text);
    return report.toText();
}

void MainWindow::updateLog() {
    const bool production = !currentSite() && m_remoteMonitor;
    // The access log is the site's, whichever worker is selected (a local site's proxy).
    const bool accessLog = !production && m_logView->source() == LogView::Source::AccessLog;
    const QString backend = accessLog ? AccessLogBackend : selectedBackend();
    const QString site = m_currentSite;
    if (backend.isEmpty() || site.isEmpty() || m_logInFlight) return;
    if (!production && !currentSite()) return;
    // A production worker's log is a command on its host: read again every other second.
    if (production && backend == m_logBackend && m_logClock.isValid() &&
        m_logClock.elapsed() < ProductionLogIntervalMs)
        return;
    const std::shared_ptr<SiteControl> control = controlFor(site);
    if (!control) return;
    m_logInFlight = true;
    m_logBackend = backend;
    m_logClock.start();
    const QPointer<MainWindow> self(this);
    control->logs(backend, production ? ProductionLogLines : LocalLogLines,
                  [self, control, backend, site](const LogTail &tail) {
                      if (!self) return;
                      self->m_logInFlight = false;
                      // The selection may have moved on while a host was asked.
                      const bool stillShown =
                          backend == AccessLogBackend
                              ? self->m_logView->source() == LogView::Source::AccessLog
                              : self->selectedBackend() == backend &&
                                    self->m_logView->source() == LogView::Source::Worker;
                      if (!stillShown || self->m_currentSite != site) return;
                      const QStringList lines =
                          tail.error.isEmpty() ? tail.lines : QStringList{tail.error};
                      self->m_logView->showTail(tail.title.isEmpty() ? backend : tail.title, lines,
                                                qint64(qHash(lines.join(QLatin1Char('\n')))));
                  });
}

void MainWindow::stopAllSites(std::function<void()> done) {
    m_loadGenerator->stop();
    QStringList live;
    for (const agent::SiteStatus &status : std::as_const(m_sites))
        if (status.state != agent::SiteState::Stopped && status.state != agent::SiteState::Failed)
            live.append(status.site.name);
    if (live.isEmpty() || !m_agent) {
        if (done) done();
        return;
    }
    auto remaining = std::make_shared<int>(int(live.size()));
    for (const QString &site : std::as_const(live)) {
        m_tray->expectStop(site);
        m_agent->send(QLatin1String(agent::op::Stop), {{QStringLiteral("site"), site}},
                      [remaining, done](Result<QJsonObject>) {
                          if (--*remaining == 0 && done) done();
                      });
    }
}

void MainWindow::quitWithoutAsking() {
    m_quitWithoutAsking = true;
    close();
}

void MainWindow::closeEvent(QCloseEvent *event) {
    saveLayout();
    if (m_closing) {
        event->accept();
        return;
    }
    QStringList lasting;   // outlive this window unless stopped
    QStringList ephemeral; // end with this window's connection
    for (const agent::SiteStatus &status : std::as_const(m_sites)) {
        if (status.state == agent::SiteState::Stopped || status.state == agent::SiteState::Failed)
            continue;
        (status.ephemeral ? ephemeral : lasting).append(status.site.name);
    }
    lasting.sort();
    ephemeral.sort();
    if (m_quitWithoutAsking || (lasting.isEmpty() && ephemeral.isEmpty())) {
        // Closing the connection ends this session's sites (the agent stops them).
        m_closing = true;
        delete m_agent;
        m_agent = nullptr;
        event->accept();
        return;
    }
    bool stopLasting = false;
    if (lasting.isEmpty()) {
        // Only sites of this session (corral --demo): they stop with the console.
        Confirmation question;
        question.key = QStringLiteral("quitWithRunningSites");
        question.title = tr("Quit Corral");
        question.text = tr("Quit and stop %1? It was started for this session only.")
                            .arg(ephemeral.join(QStringLiteral(", ")));
        question.acceptLabel = tr("Stop and quit");
        if (!confirm(question)) {
            event->ignore();
            return;
        }
    } else {
        Confirmation question;
        question.key = QStringLiteral("quitWithAgentSites");
        question.title = tr("Quit Corral");
        question.text =
            tr("%n site(s) run in the Corral agent: %1. Stop them, or leave them running? Left "
               "running, they keep serving; corralctl ps, or Corral opened again, shows them.",
               nullptr, int(lasting.size()))
                .arg(lasting.join(QStringLiteral(", ")));
        if (!ephemeral.isEmpty())
            question.text += QLatin1Char(' ') + tr("%1 stops either way (started for this "
                                                   "session only).")
                                                    .arg(ephemeral.join(QStringLiteral(", ")));
        question.acceptLabel = tr("Stop sites and quit");
        question.alternativeLabel = tr("Leave running and quit");
        const Confirmer::Choice choice = m_confirmer->choose(this, question);
        if (choice == Confirmer::Choice::Cancel) {
            event->ignore();
            return;
        }
        stopLasting = choice == Confirmer::Choice::Accept;
    }
    // Ephemeral sites end with the connection; the others only when asked to.
    m_closing = true;
    m_loadGenerator->stop();
    const QStringList stopping = stopLasting ? lasting + ephemeral : ephemeral;
    if (stopping.isEmpty() || !m_agent) {
        delete m_agent;
        m_agent = nullptr;
        event->accept();
        return;
    }
    event->ignore();
    statusBar()->showMessage(tr("Stopping %n site(s)…", nullptr, int(stopping.size())));
    auto remaining = std::make_shared<int>(int(stopping.size()));
    const QPointer<MainWindow> self(this);
    const auto finish = [self] {
        if (!self) return;
        // Closing the connection ends whatever of this session is left.
        if (self->m_agent) self->m_agent->deleteLater();
        self->m_agent = nullptr;
        QTimer::singleShot(0, self.data(), &QWidget::close);
    };
    for (const QString &site : stopping) {
        m_tray->expectStop(site);
        m_agent->send(QLatin1String(agent::op::Stop), {{QStringLiteral("site"), site}},
                      [remaining, finish](Result<QJsonObject>) {
                          if (--*remaining == 0) finish();
                      });
    }
    QTimer::singleShot(15000, this, finish); // a stuck stop does not keep the window
}

std::optional<Site> MainWindow::inventorySite(const QString &name) const {
    if (name.isEmpty()) return std::nullopt;
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return std::nullopt;
    const Site *site = inventory->site(name);
    return site ? std::optional<Site>(*site) : std::nullopt;
}

SshHost *MainWindow::sshHost(const QString &name) {
    if (SshHost *host = m_connections->host(name)) return host;
    showError(tr("No SSH host named %1 in %2").arg(name, m_inventoryPath));
    return nullptr;
}

void MainWindow::watchRemoteSite() {
    const std::optional<Site> site = inventorySite(m_currentSite);
    if (!site || !RemoteSiteMonitor::supports(*site)) return;
    SshHost *host = m_connections->host(site->balancer->host);
    if (!host) {
        statusBar()->showMessage(tr("%1: its balancer host %2 is not an SSH host of the inventory")
                                     .arg(site->name, site->balancer->host),
                                 10000);
        return;
    }
    m_remoteMonitor = new RemoteSiteMonitor(*site, host, this);
    m_remoteMonitor->setWorkerHosts(m_connections->hosts(), [this](const Host &known) {
        return m_connections->host(known.name);
    });
    connect(m_remoteMonitor, &RemoteSiteMonitor::snapshotReady, this,
            [this](const ClusterSnapshot &snapshot) { onSnapshot(snapshot.site, snapshot); });
    connect(m_remoteMonitor, &RemoteSiteMonitor::pollFailed, this, [this](const QString &error) {
        statusBar()->showMessage(tr("%1: %2").arg(m_currentSite, error), 5000);
    });
    m_remoteMonitor->start(m_options.tickIntervalMs);
}

void MainWindow::applyBalancerDialog() {
    openApplyDialog();
}

ApplyConfigDialog *MainWindow::openApplyDialog() {
    const std::optional<Site> site = inventorySite(m_currentSite);
    if (!site || !site->balancer) return nullptr;
    if (!sshHost(site->balancer->host)) return nullptr; // says why
    auto *dialog = new ApplyConfigDialog(*site, m_connections, remoteSiteOptions(), this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &ApplyConfigDialog::applyFinished, this,
            [this, name = site->name](bool applied, const QString &error) {
                statusBar()->showMessage(applied ? tr("Balancer config applied")
                                                 : tr("Apply failed: %1").arg(error),
                                         10000);
                // A policy the affinity fix saved is live now (by this dialog or a later
                // one): the result is checked again under it.
                if (applied && m_affinityAwaitingApply.remove(name)) checkAffinityOf(name);
            });
    dialog->open();
    return dialog;
}

void MainWindow::addProductionBackend() {
    const std::optional<Site> site = inventorySite(m_currentSite);
    if (!site || !site->balancer || m_remoteBusy) return;
    // Where the new worker may run: the balancer's host and the site's other SSH hosts.
    QStringList candidates{site->balancer->host};
    for (const QString &name : site->hosts)
        for (const Host &host : m_connections->hosts())
            if (host.name == name && !candidates.contains(name)) candidates.append(name);
    if (candidates.size() == 1) return addProductionBackendOn(candidates.first());
    auto *chooser = new QInputDialog(this);
    chooser->setObjectName(QStringLiteral("addBackendHost"));
    chooser->setAttribute(Qt::WA_DeleteOnClose);
    chooser->setWindowTitle(tr("Add backend to %1").arg(site->name));
    chooser->setLabelText(tr("Start the new worker on:"));
    chooser->setComboBoxItems(candidates);
    chooser->setComboBoxEditable(false);
    connect(chooser, &QInputDialog::textValueSelected, this, &MainWindow::addProductionBackendOn);
    chooser->open();
}

RemoteSiteOptions MainWindow::remoteSiteOptions() {
    RemoteSiteOptions options;
    options.inventoryPath = m_inventoryPath;
    options.actor = QStringLiteral("Corral console");
    // One operation at a time on the site; the console does not queue behind another.
    options.noWait = true;
    QPointer<MainWindow> self(this);
    options.onNote = [self](const QString &line) {
        QMetaObject::invokeMethod(
            self.data(),
            [self, line] {
                if (self) self->statusBar()->showMessage(line, 5000);
            },
            Qt::QueuedConnection);
    };
    return options;
}

void MainWindow::addProductionBackendOn(const QString &workerHostName) {
    if (!m_remoteMonitor || m_remoteMonitor->site().name != m_currentSite) return;
    operate(QStringLiteral("addBackend"), m_currentSite,
            [workerHostName](SiteControl &control, SiteControl::Done done) {
                control.addBackend(workerHostName, std::move(done));
            });
}

std::shared_ptr<SiteControl> MainWindow::controlFor(const QString &site) {
    if (m_remoteMonitor && m_remoteMonitor->site().name == site && !m_sites.contains(site)) {
        const Site shown = m_remoteMonitor->site();
        auto control =
            std::make_shared<RemoteSiteControl>(shown, m_connections, remoteSiteOptions(), this);
        QPointer<MainWindow> self(this);
        control->setProgressCallback([self](const SiteEvent &event) {
            if (!self) return;
            if (event.operation == QLatin1String("rolling-restart") && event.ok &&
                event.step == QLatin1String("enable"))
                self->m_rollout->setValue(self->m_rollout->value() + 1);
            self->statusBar()->showMessage(
                QStringLiteral("%1: %2 %3 %4")
                    .arg(event.operation, event.backend, event.step, event.detail),
                5000);
        });
        return control;
    }
    // A local site: the one the agent runs, else the saved one (Start).
    std::optional<Site> local;
    if (const auto found = m_sites.constFind(site); found != m_sites.cend())
        local = found->site;
    else
        local = inventorySite(site);
    if (!local) return nullptr;
    QPointer<MainWindow> self(this);
    return std::make_shared<agent::AgentSiteControl>(
        *local,
        [self]() -> agent::AgentClient * {
            return self && (self->m_agent || self->connectAgent(true)) ? self->m_agent : nullptr;
        },
        [self, site] {
            if (!self) return QList<agent::WorkerStatus>();
            const auto found = self->m_sites.constFind(site);
            return found != self->m_sites.cend() ? found->workers : QList<agent::WorkerStatus>();
        });
}

void MainWindow::operate(const QString &operation, const QString &site,
                         std::function<void(SiteControl &, SiteControl::Done)> call,
                         std::function<void(SiteControl &, const SiteResult &)> finished) {
    const std::shared_ptr<SiteControl> control = controlFor(site);
    if (!control) return showError(tr("No site named %1").arg(site));
    const bool production = dynamic_cast<RemoteSiteControl *>(control.get()) != nullptr;
    if (production && m_remoteBusy) return;
    if (!production && !m_agent && !connectAgent(true))
        return showError(tr("Cannot reach the Corral agent: %1").arg(m_agentError));
    // A production operation holds the site's lock on its balancer host: one at a time from
    // here (m_remoteBusy); a local one greys its own control until the agent answers.
    const QString key = operation + QLatin1Char('\n') + site;
    if (production)
        m_remoteBusy = true;
    else
        m_busy.insert(key);
    updateActions();
    const QPointer<MainWindow> self(this);
    const qint64 sentMs = QDateTime::currentMSecsSinceEpoch();
    // The control lives until its operation ends (captured), whatever the view does meanwhile.
    call(*control, [self, control, production, key, site, operation, finished,
                    sentMs](const SiteResult &result) {
        if (!self) return;
        if (production)
            self->m_remoteBusy = false;
        else
            self->m_busy.remove(key);
        // A worker failure shown meanwhile already said it, with its log.
        if (!result.ok() && !production && self->m_failureShownMs.value(site) >= sentMs)
            self->statusBar()->showMessage(result.error, 10000);
        else if (!result.ok())
            self->showError(result.error);
        else if (!result.summary.isEmpty())
            self->statusBar()->showMessage(result.summary, 10000);
        if (production) self->reloadInventory(); // the site as saved: tree, table, monitor
        if (finished) finished(*control, result);
        self->updateActions();
        Q_EMIT self->operationFinished(site, operation, result.error);
    });
}

QString MainWindow::selectedBackend() const {
    const QModelIndexList rows = m_table->selectionModel()->selectedRows();
    if (rows.isEmpty()) return {};
    const quint16 port = quint16(rows.first().data(WorkerTableModel::PortRole).toUInt());
    const QString host = rows.first().data(WorkerTableModel::HostRole).toString();
    return port ? Endpoint{host, port}.toString() : QString();
}

void MainWindow::scaleProductionSite(int workers) {
    if (!m_remoteMonitor || m_remoteBusy) return;
    const Site site = m_remoteMonitor->site();
    if (workers == int(site.backends.size())) return;
    if (workers < site.backends.size()) {
        Confirmation question;
        question.key = QStringLiteral("productionScaleDown");
        question.title = tr("Scale %1 down").arg(site.name);
        question.text = tr("%n backend(s) of %1 are drained and removed (those out of rotation "
                           "first, then from the host with the most workers, newest first), each "
                           "with its worker stopped and the balancer config applied without it.",
                           nullptr, int(site.backends.size()) - workers)
                            .arg(site.name);
        if (workers == 0)
            question.text += tr(" The site is then left without a backend: its balancer answers "
                                "every request with its own 502/503.");
        question.acceptLabel = tr("Scale down");
        if (!confirm(question)) {
            const QSignalBlocker blocker(m_scale);
            m_scale->setValue(int(site.backends.size()));
            return;
        }
    }
    operate(QStringLiteral("scale"), site.name,
            [workers](SiteControl &control, SiteControl::Done done) {
                // Scaling to 0 was confirmed above: the site is then left without a backend.
                if (auto *remote = dynamic_cast<RemoteSiteControl *>(&control))
                    remote->changeRequest().force = workers == 0;
                control.scaleTo(workers, {}, std::move(done));
            });
}

void MainWindow::stopOrStartProductionSite(bool stopping) {
    if (!m_remoteMonitor || m_remoteBusy) return;
    const Site site = m_remoteMonitor->site();
    if (stopping) {
        Confirmation question;
        question.key = QStringLiteral("productionStopSite");
        question.title = tr("Stop %1").arg(site.name);
        question.text = tr("Every backend of %1 is marked down at the %2 on %3, which then "
                           "answers every request itself (502/503), and the %n worker(s) are "
                           "stopped. Start brings the site back as the inventory has it.",
                           nullptr, int(site.backends.size()))
                            .arg(site.name, site.balancer->format, site.balancer->host);
        question.acceptLabel = tr("Stop site");
        if (!confirm(question)) return;
    }
    operate(stopping ? QStringLiteral("stopSite") : QStringLiteral("start"), site.name,
            [stopping](SiteControl &control, SiteControl::Done done) {
                stopping ? control.stop(std::move(done)) : control.start(std::move(done));
            });
}

void MainWindow::remoteRollingRestart() {
    if (!m_remoteMonitor || m_remoteBusy) return;
    const Site site = m_remoteMonitor->site();
    SshHost *host = sshHost(site.balancer->host);
    if (!host) return;
    Confirmation question;
    question.key = QStringLiteral("productionRollingRestart");
    question.title = tr("Rolling restart of %1").arg(site.name);
    question.text =
        // At least two: a rolling restart of a site with one backend is refused by the run.
        tr("Each of the %1 backends of %2 is taken out of rotation on the %3 on %4, "
           "restarted, health-checked and put back, one at a time, while the others serve. "
           "The run stops at the first backend that fails.")
            .arg(site.backends.size())
            .arg(site.name, site.balancer->format, site.balancer->host);
    question.acceptLabel = tr("Rolling restart");
    if (!confirm(question)) return;
    if (!m_remoteMonitor || m_remoteMonitor->site().name != site.name || m_remoteBusy)
        return; // the question ran an event loop: the view may have moved on
    m_rollout->setRange(0, int(site.backends.size()));
    m_rollout->setValue(0);
    m_rollout->show();
    operate(
        QStringLiteral("rollingRestart"), site.name,
        [](SiteControl &control, SiteControl::Done done) {
            control.rollingRestart(std::move(done));
        },
        [this, site](SiteControl &control, const SiteResult &) {
            m_rollout->hide();
            // Where each backend stands, kept until dismissed: what the user acts on.
            if (auto *remote = dynamic_cast<RemoteSiteControl *>(&control))
                showRollingRestartResult(site, remote->lastRollingReport());
        });
}

void MainWindow::showRollingRestartResult(const Site &site, const RollingRestartReport &report) {
    // Non-modal and kept until dismissed: the per-backend result is what the user acts on.
    auto *dialog = new QDialog(this);
    dialog->setObjectName(QStringLiteral("rollingRestartResult"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->setWindowTitle(tr("Rolling restart of %1").arg(site.name));
    auto *summary = plainLabel(
        new QLabel(report.ok() ? tr("All %n backend(s) were restarted and are back in rotation.",
                                    nullptr, int(report.restarted.size()))
                   : report.failedBackend.isEmpty()
                       ? tr("Nothing was changed: %1").arg(report.error)
                       : tr("Stopped at %1: %2").arg(report.failedBackend, report.error)));
    summary->setWordWrap(true);
    auto *list = new QListWidget;
    list->setObjectName(QStringLiteral("backendOutcomes"));
    // Each backend's state as the run recorded it (empty when the preflight refused: then
    // nothing was touched, and the summary says why).
    for (const RollingBackendState &backend : report.backends) {
        using State = RollingBackendState::State;
        const QStyle::StandardPixmap icon =
            backend.state == State::Restarted        ? QStyle::SP_DialogApplyButton
            : backend.state == State::OutOfRotation  ? QStyle::SP_MessageBoxCritical
            : backend.state == State::BackInRotation ? QStyle::SP_MessageBoxWarning
                                                     : QStyle::SP_MessageBoxInformation;
        auto *item = new QListWidgetItem(style()->standardIcon(icon), backend.describe(), list);
        item->setData(Qt::UserRole, int(backend.state));
    }
    if (report.backends.isEmpty()) list->hide();
    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::close);
    auto *layout = new QVBoxLayout(dialog);
    layout->addWidget(summary);
    layout->addWidget(list);
    layout->addWidget(buttons);
    dialog->resize(640, 260);
    dialog->show();
}

void MainWindow::setLocalPolicy(const QString &site, BalancingPolicy policy,
                                std::function<void()> done) {
    request(QStringLiteral("policy"), site, QLatin1String(agent::op::Policy),
            {{QStringLiteral("site"), site}, {QStringLiteral("policy"), policyName(policy)}},
            [this, site, policy, done](const QJsonObject &) {
                // The agent's site list says so too, but may come after its answer: what
                // runs next (a check) must see the policy the agent now has.
                if (const auto it = m_sites.find(site); it != m_sites.end())
                    it->site.policy = policy;
                if (done) done();
            });
}

void MainWindow::checkAffinity() {
    checkAffinityOf(m_currentSite);
}

void MainWindow::checkAffinityOf(const QString &site) {
    if (site.isEmpty() || m_affinityChecks.contains(site)) return; // one check of a site at once
    // Workers to ask: a local site running in the agent, or the production site on view (its
    // hosts reached through its monitor's sessions). Anything else would be reported as a site
    // without workers, which is not what it is.
    const auto local = m_sites.constFind(site);
    const bool running = local != m_sites.cend() && local->state == agent::SiteState::Running;
    if (!running && !(m_remoteMonitor && m_remoteMonitor->site().name == site))
        return statusBar()->showMessage(
            tr("%1 was not checked: it is neither running here nor a production site on view")
                .arg(site),
            10000);
    const std::shared_ptr<SiteControl> control = controlFor(site);
    if (!control) return showError(tr("No site named %1").arg(site));
    m_affinityChecks.insert(site);
    if (site == m_currentSite) m_affinityBanner->showChecking(site);
    updateActions();
    const QPointer<MainWindow> self(this);
    // The control lives until its check ends (captured), whatever the view does meanwhile.
    control->checkAffinity(
        {QStringLiteral("/")}, [self, control, site](const AffinityReport &report) {
            if (!self) return;
            self->m_affinityChecks.remove(site);
            AffinityReport kept = report;
            kept.site = site; // the banner and the table of results are keyed by it
            self->m_affinityReports.insert(site, kept);
            if (site == self->m_currentSite)
                self->showAffinityOf(site);
            else
                self->statusBar()->showMessage(
                    tr("Session affinity of %1: %2").arg(site, verdictName(report.verdict)), 10000);
            self->updateActions();
        });
}

void MainWindow::showAffinityOf(const QString &site) {
    if (!site.isEmpty() && m_affinityChecks.contains(site))
        return m_affinityBanner->showChecking(site);
    const auto found = m_affinityReports.constFind(site);
    if (site.isEmpty() || found == m_affinityReports.cend()) return m_affinityBanner->clear();
    m_affinityBanner->showReport(found.value());
    updateAffinityPolicy();
    if (m_affinityAwaitingApply.contains(site))
        m_affinityBanner->setAwaitingApply(
            tr("Policy sticky-cookie saved; apply the balancer config to make it live (the site "
               "is checked again once applied)."));
}

void MainWindow::updateAffinityPolicy() {
    if (!m_affinityBanner->report() || m_affinityBanner->site() != m_currentSite) return;
    if (const agent::SiteStatus *status = currentSite())
        m_affinityBanner->setCurrentPolicy(policyName(status->site.policy));
    else if (m_remoteMonitor && m_remoteMonitor->site().name == m_currentSite)
        m_affinityBanner->setCurrentPolicy(
            policyName(m_remoteMonitor->site().policy),
            tr("in the inventory; live once the balancer config is applied"));
}

void MainWindow::fixAffinity(const QString &site) {
    if (const auto found = m_sites.constFind(site);
        found != m_sites.cend() && found->state == agent::SiteState::Running) {
        // A local site: what the toolbar's Policy chooser does, then the check again.
        const QPointer<MainWindow> self(this);
        setLocalPolicy(site, BalancingPolicy::StickyCookie, [self, site] {
            if (self) self->checkAffinityOf(site);
        });
        return;
    }
    if (!m_remoteMonitor || m_remoteMonitor->site().name != site || site != m_currentSite)
        return showError(tr("%1 is neither running here nor a production site on view").arg(site));
    // A production site: as `corralctl site update SITE --policy sticky-cookie`, then the
    // Apply dialog (its diff shows the change); checked again once applied.
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) return showError(inventory.error());
    const Site *saved = inventory->site(site);
    if (!saved) return showError(tr("No site named %1 in %2").arg(site, m_inventoryPath));
    Site sticky = *saved;
    sticky.policy = BalancingPolicy::StickyCookie;
    auto updated = inventory->updateSite(sticky);
    if (updated) updated = inventory->save(m_inventoryPath);
    if (!updated)
        return showError(tr("%1 was not switched to sticky-cookie: %2").arg(site, updated.error()));
    // The site on view as saved (its monitor), and the result shown said to be checked
    // under the old policy at once; no new check is offered until the config is applied.
    m_affinityAwaitingApply.insert(site);
    reloadInventory();
    showAffinityOf(site);
    statusBar()->showMessage(
        tr("Saved %1 with policy sticky-cookie; Apply balancer config puts it live").arg(site),
        10000);
    openApplyDialog(); // once it applied, the site is checked again
}

} // namespace corral
