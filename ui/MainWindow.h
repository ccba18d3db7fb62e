#pragma once

#include "model/Host.h"
#include "model/Site.h"
#include "supervisor/WorkerProcess.h"

#include <QHash>
#include <QMainWindow>

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
class QTableView;
class QToolButton;
class QTreeView;
class QLineEdit;

namespace corral {

class AddHostDialog;
class Confirmer;
struct Confirmation;
class CpuChartView;
class CredentialStore;
class SshPool;
class DistributionChartView;
class InventoryTreeModel;
class LoadGenerator;
class LocalCluster;
class LogView;
class RemoteSiteMonitor;
class SshHost;
class ThroughputChartView;
class WorkerTableModel;
struct ClusterSnapshot;
struct RollingRestartReport;
struct SshConfig;

/// The console's main window: hosts and sites on the left; the selected site's workers, live
/// charts and the selected worker's log in the centre; cluster actions in the toolbar.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    struct Options {
        QString demoWorkerPath; ///< what "demo worker" runs
        int tickIntervalMs = 1000;
        SupervisionPolicy supervision; ///< for the clusters this window launches
    };

    explicit MainWindow(QString inventoryPath, Options options, QWidget *parent = nullptr);
    explicit MainWindow(QString inventoryPath, QWidget *parent = nullptr);
    ~MainWindow() override;

    /// Closes like the window's close button, stopping every running site first, but without
    /// the "quit and stop N sites?" question: for SIGTERM/SIGINT, where nobody may be there
    /// to answer and the signal already is the answer.
    void quitWithoutAsking();

    /// Re-reads the inventory file; a bad file leaves the shown state alone and says why.
    void reloadInventory();
    /// Starts a local cluster for `site` and selects it; fails with a readable message.
    Result<void> launchCluster(const Site &site);
    /// The `corral --demo` site: three demo workers behind the embedded proxy on `listen`.
    Result<void> startDemo(const QString &listen = QStringLiteral("127.0.0.1:8080"));
    /// Stops every cluster this window started; `done` runs once all are stopped.
    void stopAllClusters(std::function<void()> done = {});

    LocalCluster *currentCluster() const;
    /// The production site shown through its balancer (selected, with a balancer, not
    /// running locally); null otherwise.
    RemoteSiteMonitor *remoteMonitor() const { return m_remoteMonitor; }
    LoadGenerator *loadGenerator() const { return m_loadGenerator; }
    QTreeView *hostTree() const { return m_tree; }
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

    /// Milliseconds the UI thread spent in the last tick's update (for the responsiveness
    /// benchmark).
    double lastTickMs() const { return m_lastTickMs; }

Q_SIGNALS:
    /// After the views took a snapshot of the current cluster.
    void ticked();

protected:
    void closeEvent(QCloseEvent *event) override;

private:
    void createActions();
    void createToolbar();
    void restoreLayout();
    void saveLayout() const;
    void showError(const QString &message);
    bool confirm(const Confirmation &question);
    /// The question before `ports` of `cluster` are drained and stopped; when they hold the
    /// site's last running workers it says the site will answer 502 and cannot be silenced.
    Confirmation removalQuestion(const LocalCluster *cluster, const QList<quint16> &ports) const;
    /// The status bar's site labels from `snapshot`, or cleared (null: no running site shown).
    void showSiteStatus(const ClusterSnapshot *snapshot);
    /// "worker N of SITE failed: CAUSE" with the last lines it printed and its log's path
    /// (workerFailureReport, as `corralctl up` prints it).
    QString failureReport(const LocalCluster *cluster, quint16 port, const QString &cause) const;
    void selectSite(const QString &site);
    void onSnapshot(const QString &site, const ClusterSnapshot &snapshot);
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
    /// One-click add-backend for a production site: a worker started on the balancer's host
    /// (or, when the site lists other SSH hosts, on the one chosen), then the balancer config
    /// applied (addRemoteBackend), off the UI thread.
    void addRemoteBackend();
    /// The same with the worker on inventory host `workerHost` (the balancer's, or another
    /// of the site's hosts; the backend is then that host's address).
    void addRemoteBackendOn(const QString &workerHost);
    /// Rolling restart of a production site through its balancer (RemoteRollingRestart):
    /// drain, restart, health-check, re-enable, one backend at a time, off the UI thread.
    void remoteRollingRestart();
    /// Connects to every remote host of the inventory (off the UI thread) and shows
    /// online/offline in the tree.
    void checkHosts();
    /// How to reach an inventory host: its SshConfig with the secret this session knows.
    SshConfig sshConfigFor(const Host &host) const;

    QString m_inventoryPath;
    Options m_options;
    QString m_lastError;
    QString m_currentSite;
    QHash<QString, LocalCluster *> m_clusters;
    bool m_closing = false;
    bool m_quitWithoutAsking = false;
    bool m_selectFirstWorker = false;
    double m_lastTickMs = 0;

    InventoryTreeModel *m_treeModel = nullptr;
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
    QSplitter *m_chartSplitter = nullptr;
    LoadGenerator *m_loadGenerator = nullptr;
    SshPool *m_sshPool = nullptr;
    CredentialStore *m_credentials = nullptr;
    QList<Host> m_remoteHosts;
    /// Passwords and passphrases read from the keychain or typed into Add host, by host name.
    /// Memory only, for this session: sessions opened off the pool (a worker host's own
    /// session) need them too, and without a keychain this is all there is.
    QHash<QString, QString> m_sessionSecrets;
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
};

} // namespace corral
