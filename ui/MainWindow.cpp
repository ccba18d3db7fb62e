#include "MainWindow.h"

#include "InventoryTreeModel.h"
#include "inventory/Inventory.h"

#include <QAction>
#include <QApplication>
#include <QHeaderView>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSplitter>
#include <QStatusBar>
#include <QStyle>
#include <QToolBar>
#include <QTreeView>

namespace corral {

MainWindow::MainWindow(QString inventoryPath, QWidget *parent)
    : QMainWindow(parent)
    , m_inventoryPath(std::move(inventoryPath)) {
    setWindowTitle(QStringLiteral("Corral"));
    setObjectName(QStringLiteral("MainWindow"));

    m_treeModel = new InventoryTreeModel(this);
    m_tree = new QTreeView;
    m_tree->setObjectName(QStringLiteral("hostTree"));
    m_tree->setModel(m_treeModel);
    m_tree->setHeaderHidden(false);
    m_tree->header()->setSectionResizeMode(0, QHeaderView::ResizeToContents);

    auto *centre = new QLabel(tr("Select a site to see its workers."));
    centre->setAlignment(Qt::AlignCenter);
    auto *splitter = new QSplitter;
    splitter->addWidget(m_tree);
    splitter->addWidget(centre);
    splitter->setStretchFactor(1, 1);
    setCentralWidget(splitter);

    m_inventoryLabel = new QLabel;
    statusBar()->addPermanentWidget(m_inventoryLabel);
    createActions();
    reloadInventory();
    resize(1100, 700);
}

MainWindow::~MainWindow() = default;

void MainWindow::createActions() {
    auto *reload =
        new QAction(style()->standardIcon(QStyle::SP_BrowserReload), tr("&Reload inventory"), this);
    reload->setShortcut(QKeySequence::Refresh);
    reload->setToolTip(tr("Re-read the inventory file (%1)").arg(reload->shortcut().toString()));
    connect(reload, &QAction::triggered, this, &MainWindow::reloadInventory);

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
    file->addAction(reload);
    file->addSeparator();
    file->addAction(quit);
    menuBar()->addMenu(tr("&Help"))->addAction(about);

    QToolBar *toolbar = addToolBar(tr("Main"));
    toolbar->setObjectName(QStringLiteral("mainToolbar"));
    toolbar->addAction(reload);
}

void MainWindow::reloadInventory() {
    auto inventory = Inventory::load(m_inventoryPath);
    if (!inventory) {
        m_lastError = inventory.error();
        statusBar()->showMessage(m_lastError);
        m_inventoryLabel->setText(tr("Inventory not loaded"));
        m_inventoryLabel->setToolTip(m_lastError);
        return;
    }
    m_lastError.clear();
    m_treeModel->setInventory(inventory.value());
    m_tree->expandAll();
    m_inventoryLabel->setText(tr("%n site(s)", nullptr, int(inventory->sites().size())));
    m_inventoryLabel->setToolTip(m_inventoryPath);
}

} // namespace corral
