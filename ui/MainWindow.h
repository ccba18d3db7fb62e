#pragma once

#include "affinity/AffinityCheck.h"
#include "agent/AgentProtocol.h"
#include "fleet/PollScheduler.h"
#include "model/Host.h"
#include "model/Site.h"

#include <QElapsedTimer>
#include <QHash>
#include <QMainWindow>
#include <QSet>

#include <functional>
#include <memory>
#include <optional>

class QAction;
class QComboBox;
class QLabel;
class QProgressBar;
class QSlider;
class QSortFilterProxyModel;
class QSpinBox;
class QSplitter;
class QStackedWidget;
class QTableView;
class QToolButton;
class QTimer;
class QTreeView;
class QLineEdit;

namespace corral {

class AddHostDialog;
class AffinityBanner;
class ApplyConfigDialog;
class Confirmer;
struct Confirmation;
class CpuChartView;
class HostConnections;
struct RemoteSiteOptions;
class SiteControl;
struct SiteResult;
class DistributionChartView;
class FleetMonitor;
class FleetOverviewView;
struct FleetSnapshot;
class InventoryTreeFilter;
class InventoryTreeModel;
class InventoryTreeSearch;
class LoadGenerator;
class LogView;
class RemoteSiteMonitor;
class SshHost;
class ThroughputChartView;
class TrayIcon;
class WorkerTableModel;
struct ClusterSnapshot;
struct RollingRestartReport;
struct SshConfig;

namespace agent {
class AgentClient;
}

/// The console's main window: hosts and sites on the left; the selected site's workers, live
/// charts and the selected worker's log in the centre; cluster actions in the toolbar.
///
/// Local sites belong to the user's agent (corral-agent): the window is one of its clients.
/// It shows every site the agent runs, whoever started it, and every action on a local site
/// is a request to the agent; two windows show the same state. Quitting leaves the sites
/// running unless the user chooses to stop them, except the ephemeral ones (`corral --demo`),
/// which the agent stops when this window's connection closes.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    struct Options {
        QString demoWorkerPath; ///< what "demo worker" runs
        /// Polling interval of production sites (RemoteSiteMonitor); local sites tick at the
        /// agent's rate.
        int tickIntervalMs = 1000;
        /// Start the agent at once when none answers (corral's main()); otherwise the window
        /// connects to a running agent only, and starts one when a local site is launched.
        bool autostartAgent = false;
        /// How the fleet overview polls every host (FleetMonitor): interval, concurrent SSH
        /// sessions, timeout and back-off (`corral --poll-interval`, `--max-ssh-sessions`).
        PollOptions poll;
    };

    explicit MainWindow(QString inventoryPath, Options options, QWidget *parent = nullptr);
    explicit MainWindow(QString inventoryPath, QWidget *parent = nullptr);
    ~MainWindow() override;

    /// Closes without the "stop or leave the sites running?" question, leaving them running
    /// in the agent (the ephemeral ones stop with this window's connection): for SIGTERM and
    /// SIGINT, where nobody may be there to answer.
    void quitWithoutAsking();

    /// Re-reads the inventory file; a bad file leaves the shown state alone and says why.
    void reloadInventory();
    /// Asks the agent to start `site` and selects it. Fails at once, with a readable message,
    /// for an invalid site, one already running or a listen address held by another program
    /// (named); the agent's answer comes later through operationFinished(site, "launch", error)
    /// and, on failure, the error shown.
    Result<void> launchCluster(const Site &site, bool ephemeral = false);
    /// The `corral --demo` site: three demo workers behind the embedded proxy on `listen`,
    /// ephemeral (stopped when this console quits). Shown as it is when it already runs.
    Result<void> startDemo(const QString &listen = QStringLiteral("127.0.0.1:8080"));
    /// Asks the agent to stop every site it runs; `done` runs once all have answered.
    void stopAllSites(std::function<void()> done = {});
    /// Connects to the agent (starting it when `autostart`), subscribes and loads its sites;
    /// true when connected. The failure is in agentError() and the status bar.
    bool connectAgent(bool autostart);
    agent::AgentClient *agentClient() const { return m_agent; }
    QString agentError() const { return m_agentError; }

    /// The agent's site on view when it runs there (starting, running or stopping); null
    /// otherwise.
    const agent::SiteStatus *currentSite() const;
    /// Every site the agent knows (stopped ones included), by name.
    const QHash<QString, agent::SiteStatus> &agentSites() const { return m_sites; }
    TrayIcon *trayIcon() const { return m_tray; }
    /// The production site shown through its balancer (selected, with a balancer, not
    /// running locally); null otherwise.
    RemoteSiteMonitor *remoteMonitor() const { return m_remoteMonitor; }
    LoadGenerator *loadGenerator() const { return m_loadGenerator; }
    QTreeView *hostTree() const { return m_tree; }
    /// The host tree's search box and state filter (InventoryTreeSearch).
    QLineEdit *treeSearch() const;
    QComboBox *treeStateFilter() const;
    /// The site on view (selected in the tree), running or not; empty for none.
    QString currentSiteName() const { return m_currentSite; }
    QTableView *workerTable() const { return m_table; }
    WorkerTableModel *workerModel() const { return m_workerModel; }
    DistributionChartView *distributionChart() const { return m_distributionChart; }
    CpuChartView *cpuChart() const { return m_cpuChart; }
    LogView *logView() const { return m_logView; }
    QString lastError() const { return m_lastError; }
    QAction *action(const QString &objectName) const;
    /// Who answers the questions before destructive actions (a modal QMessageBox by default);
    /// tests install one that answers for them.
    void setConfirmer(std::unique_ptr<Confirmer> confirmer);
    QLabel *workersLabel() const { return m_workersLabel; }
    QLabel *throughputLabel() const { return m_throughputLabel; }
    /// The session affinity check's result for the site on view, above its workers (issue 22).
    AffinityBanner *affinityBanner() const { return m_affinityBanner; }

    /// Milliseconds the UI thread spent in the last tick's update (for the responsiveness
    /// benchmark).
    double lastTickMs() const { return m_lastTickMs; }
    /// Milliseconds the UI thread spent on the last FleetMonitor::updated (the overview and
    /// the tree's production rows), for bench_fleet.
    double lastFleetTickMs() const { return m_lastFleetTickMs; }
    /// The centre when no site is selected (the tree's root, or a host: filtered to it).
    FleetOverviewView *fleetOverview() const { return m_fleetOverview; }
    bool fleetOverviewShown() const;
    /// Polls every host and production site of the inventory for the overview and the tree.
    FleetMonitor *fleetMonitor() const { return m_fleetMonitor; }

Q_SIGNALS:
    /// After the views took a snapshot of the current cluster.
    void ticked();
    /// The agent answered a request this window sent about `site`: `operation` is the action
    /// ("launch", "start", "addBackend", "removeBackend", "restartWorker", "rollingRestart",
    /// "scale", "policy", "toggleBackend", "stopSite", "edit"), `error` empty on success.
    void operationFinished(const QString &site, const QString &operation, const QString &error);
    /// The agent's site list changed (agentSites()).
    void sitesChanged();

protected:
    void closeEvent(QCloseEvent *event) override;

private:
    void createActions();
    void createToolbar();
    void restoreLayout();
    void saveLayout() const;
    void showError(const QString &message);
    bool confirm(const Confirmation &question);
    /// The question before `ports` of `site` are drained and stopped; when they hold the
    /// site's last running workers it says the site will answer 502 and cannot be silenced.
    Confirmation removalQuestion(const agent::SiteStatus &site, const QList<quint16> &ports) const;
    /// The status bar's site labels from `snapshot`, or cleared (null: no running site shown).
    void showSiteStatus(const ClusterSnapshot *snapshot);
    /// "worker N of SITE failed: CAUSE" with the last lines it printed and its log's path
    /// (as `corralctl up` prints it), read from the log file the agent names.
    QString failureReport(const QString &site, quint16 port, const QString &cause) const;
    void selectSite(const QString &site);
    /// The fleet overview in the centre, filtered to inventory host `host` (empty: every
    /// host); no site is on view meanwhile.
    void showFleetOverview(const QString &host);
    void onFleetUpdated(const FleetSnapshot &snapshot);
    void onSnapshot(const QString &site, const ClusterSnapshot &snapshot);
    // The agent's events.
    void onSitesChanged(const QList<agent::SiteStatus> &sites);
    void onWorkerStateChanged(const QString &site, quint16 port, WorkerState state,
                              const QString &cause);
    void onAgentDisconnected();
    /// Reads one site's status again (its workers' pids and log files after a scale).
    void refreshSite(const QString &site);
    /// Fills the charts with the site's last minutes from the agent, then follows it live.
    void loadHistory(const QString &site);
    void showHistory(const QString &site, const Result<QJsonObject> &reply);
    /// Sends `op` for `site` to the agent as the window's `operation`; the action stays
    /// disabled until the answer, which runs `done` (on success) or shows the error.
    void request(const QString &operation, const QString &site, const QString &op,
                 QJsonObject arguments, std::function<void(const QJsonObject &)> done = {});
    bool isBusy(const QString &operation, const QString &site) const;
    /// The site's workers (port, state) as of its last tick.
    /// A saved local site (no production balancer) that the agent does not run: Start.
    std::optional<Site> startableSite() const;
    /// Shows the selected production site (one with a balancer) through RemoteSiteMonitor.
    void watchRemoteSite();
    std::optional<Site> inventorySite(const QString &name) const;
    /// The SshHost of inventory host `name`; null (with the reason shown) if there is none.
    SshHost *sshHost(const QString &name);
    void updateActions();
    void updateTree();
    void updateLog();
    quint16 selectedPort() const;
    /// False (and the error shown) when the inventory could not be saved.
    bool saveSiteToInventory(const Site &site);

    // Actions
    void launchDialog();
    void addBackend();
    void removeBackend();
    void restartWorker();
    void rollingRestart();
    void stopSite();
    void stopSiteNamed(const QString &site);
    /// Starts the selected saved site in the agent.
    void startSavedSite();
    /// The Launch dialog pre-filled with the selected local site's settings; Save saves them,
    /// and a running site is restarted with them.
    void editLocalSiteDialog();
    /// Opens the Launch dialog (for a new site, or editing `editing`).
    void openLaunchDialog(const std::optional<Site> &editing);
    void toggleBackendEnabled();
    void toggleLoad(bool on);
    void addHostDialog();
    // The Host menu and the host tree's context menu: edit, reconnect, remove the SSH host
    // selected in the tree.
    void createHostActions();
    void updateHostActions();
    QString selectedHostName() const;
    void editHostDialog();
    void reconnectHost();
    void removeHost();
    /// Saves the host of an Add/Edit host dialog to the inventory and its secret to the
    /// keychain (kept in memory for this session too), then reloads.
    void saveHostFromDialog(AddHostDialog *dialog);
    /// The per-backend result of a production rolling restart, in a window kept open until
    /// dismissed.
    void showRollingRestartResult(const Site &site, const RollingRestartReport &report);
    /// Add a production site (balancer on an SSH host), or edit the selected one.
    void productionSiteDialog(bool editSelected);
    void applyBalancerDialog();
    /// The Apply balancer config dialog for the production site on view; null (the reason
    /// shown) when there is none.
    ApplyConfigDialog *openApplyDialog();
    /// Sets the embedded balancer's policy of local site `site` through the agent (the
    /// toolbar's Policy chooser); `done` runs once the agent agreed.
    void setLocalPolicy(const QString &site, BalancingPolicy policy,
                        std::function<void()> done = {});
    /// Check session affinity (issue 22): the site on view's, through its SiteControl, the
    /// result shown by m_affinityBanner and kept for the site.
    void checkAffinity();
    void checkAffinityOf(const QString &site);
    /// The banner's fix: the site switched to sticky-cookie (a local one through the agent,
    /// a production one in the inventory, then Apply balancer config), then checked again.
    void fixAffinity(const QString &site);
    /// The banner for the site on view: its check running, its last result, or nothing.
    void showAffinityOf(const QString &site);
    /// Marks the shown result stale when the site's policy is no longer the one it was
    /// checked under.
    void updateAffinityPolicy();
    /// One-click add-backend for a production site: a worker started on the balancer's host
    /// (or, when the site lists other SSH hosts, on the one chosen), then the balancer config
    /// applied (RemoteSite::addBackend), off the UI thread.
    void addProductionBackend();
    /// The same with the worker on inventory host `workerHost` (the balancer's, or another
    /// of the site's hosts; the backend is then that host's address).
    void addProductionBackendOn(const QString &workerHost);
    /// Rolling restart of a production site through its balancer (RemoteSite::rollingRestart):
    /// drain, restart, health-check, re-enable, one backend at a time, off the UI thread.
    void remoteRollingRestart();
    /// How the console runs operations on production sites (core/cluster/RemoteSite.h):
    /// never waiting behind another operation, notes on the status bar.
    RemoteSiteOptions remoteSiteOptions();
    /// The selected row's backend, "ADDRESS:PORT"; empty when none (or the balancer row).
    QString selectedBackend() const;
    /// The operations of site `site` (core/cluster/SiteControl.h): the agent's for a local
    /// site (running or saved), RemoteSite's for the production site on view; null if none.
    std::shared_ptr<SiteControl> controlFor(const QString &site);
    /// Every action on a site goes through here: `call` starts it on the site's SiteControl;
    /// its control is greyed until it ends (a production site: every operation, as the site's
    /// lock allows one at a time), a failure is shown, `finished` sees the result.
    void operate(const QString &operation, const QString &site,
                 std::function<void(SiteControl &, std::function<void(const SiteResult &)>)> call,
                 std::function<void(SiteControl &, const SiteResult &)> finished = {});
    /// Stop or Start, and the Workers box, of the production site on view (confirmed first).
    void stopOrStartProductionSite(bool stopping);
    void scaleProductionSite(int workers);

    QString m_inventoryPath;
    Options m_options;
    QString m_lastError;
    QString m_currentSite;
    agent::AgentClient *m_agent = nullptr;
    QString m_agentError;
    QHash<QString, agent::SiteStatus> m_sites; ///< the agent's, stopped ones included
    QList<Site> m_treeRunning;                 ///< what the tree was last told runs
    QSet<QString> m_busy;                      ///< "operation\nsite" of requests in flight
    QSet<QString> m_refreshing;                ///< sites whose status is being read again
    QHash<QString, qint64> m_failureShownMs;   ///< when a worker failure of the site was shown
    /// The site whose history is being loaded, and the live ticks that came meanwhile.
    QString m_historyFor;
    QList<ClusterSnapshot> m_ticksWhileLoading;
    /// The log file shown, and its size and mtime when it was read.
    /// The log view reads the selected worker's log through its SiteControl: a local one
    /// every tick, a production one (a command on its host) every ProductionLogIntervalMs,
    /// one read at a time.
    static constexpr int LocalLogLines = 2000;
    static constexpr int ProductionLogIntervalMs = 2000;
    static constexpr int ProductionLogLines = 500;
    QString m_logBackend;
    bool m_logInFlight = false;
    QElapsedTimer m_logClock;
    TrayIcon *m_tray = nullptr;
    QTimer *m_reconnect = nullptr; ///< after the agent went away: looks for the next one
    bool m_closing = false;
    bool m_quitWithoutAsking = false;
    bool m_selectFirstWorker = false;
    double m_lastTickMs = 0;
    double m_lastFleetTickMs = 0;

    InventoryTreeModel *m_treeModel = nullptr;
    InventoryTreeFilter *m_treeFilter = nullptr;
    InventoryTreeSearch *m_treeSearch = nullptr;
    QTreeView *m_tree = nullptr;
    WorkerTableModel *m_workerModel = nullptr;
    QSortFilterProxyModel *m_workerProxy = nullptr;
    QTableView *m_table = nullptr;
    QLineEdit *m_filter = nullptr;
    CpuChartView *m_cpuChart = nullptr;
    DistributionChartView *m_distributionChart = nullptr;
    ThroughputChartView *m_throughputChart = nullptr;
    LogView *m_logView = nullptr;
    QSplitter *m_mainSplitter = nullptr;
    QSplitter *m_centreSplitter = nullptr;
    QWidget *m_sitePane = nullptr; ///< the affinity banner over m_centreSplitter
    /// The fleet overview or the site on view (m_sitePane).
    QStackedWidget *m_centreStack = nullptr;
    FleetOverviewView *m_fleetOverview = nullptr;
    FleetMonitor *m_fleetMonitor = nullptr;
    QSplitter *m_chartSplitter = nullptr;
    LoadGenerator *m_loadGenerator = nullptr;
    /// Sessions, secrets and the keychain for the inventory's SSH hosts.
    HostConnections *m_connections = nullptr;
    RemoteSiteMonitor *m_remoteMonitor = nullptr;
    bool m_remoteBusy = false; ///< a remote add-backend or rolling restart is running

    std::unique_ptr<Confirmer> m_confirmer;
    QHash<QString, QAction *> m_actions;
    QSpinBox *m_scale = nullptr;
    QComboBox *m_policy = nullptr;
    QSlider *m_rate = nullptr;
    QLabel *m_rateLabel = nullptr;
    QToolButton *m_listenButton = nullptr;
    QLabel *m_policyLabel = nullptr;
    QLabel *m_workersLabel = nullptr;
    QLabel *m_throughputLabel = nullptr;
    QProgressBar *m_rollout = nullptr;
    AffinityBanner *m_affinityBanner = nullptr;
    /// Each site's last session affinity result, and the sites being checked.
    QHash<QString, AffinityReport> m_affinityReports;
    QSet<QString> m_affinityChecks;
    /// Production sites whose fix saved sticky-cookie but whose balancer config is not applied
    /// yet: their result is not re-checked until an Apply succeeds (it would show the old
    /// policy's behaviour as sticky-broken).
    QSet<QString> m_affinityAwaitingApply;
};

} // namespace corral
