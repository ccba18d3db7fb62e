#pragma once

#include <QMainWindow>

class QLabel;
class QTreeView;

namespace corral {

class Inventory;
class InventoryTreeModel;

/// The console's main window: hosts and sites on the left, the selected site in the centre.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QString inventoryPath, QWidget *parent = nullptr);
    ~MainWindow() override;

    /// Re-reads the inventory file; a bad file leaves the shown state alone and says why.
    void reloadInventory();
    QTreeView *hostTree() const { return m_tree; }
    QString lastError() const { return m_lastError; }

private:
    void createActions();

    QString m_inventoryPath;
    QString m_lastError;
    InventoryTreeModel *m_treeModel = nullptr;
    QTreeView *m_tree = nullptr;
    QLabel *m_inventoryLabel = nullptr;
};

} // namespace corral
