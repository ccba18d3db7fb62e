#include "InventoryTreeFilter.h"

#include "InventoryTreeModel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLineEdit>
#include <QShortcut>
#include <QTreeView>

namespace corral {

using RowState = InventoryTreeModel::RowState;
using NodeKind = InventoryTreeModel::NodeKind;

InventoryTreeFilter::InventoryTreeFilter(QObject *parent)
    : QSortFilterProxyModel(parent) {
    setRecursiveFilteringEnabled(true);
    // Connected before any view or selection model is: they move the current row off a row
    // being removed, and whoever follows the current row can tell that from a user's choice.
    connect(this, &QAbstractItemModel::rowsAboutToBeRemoved, this, [this] {
        ++m_removing;
        Q_EMIT aboutToRemoveRows();
    });
    connect(this, &QAbstractItemModel::rowsRemoved, this, [this] { --m_removing; });
}

QString InventoryTreeFilter::stateFilterName(StateFilter state) {
    switch (state) {
    case StateFilter::All:
        return tr("All states");
    case StateFilter::Running:
        return tr("Running");
    case StateFilter::Degraded:
        return tr("Degraded");
    case StateFilter::Stopped:
        return tr("Stopped");
    case StateFilter::Unreachable:
        return tr("Unreachable host");
    }
    return {};
}

void InventoryTreeFilter::setSearchText(const QString &text) {
    const QString trimmed = text.trimmed();
    if (trimmed == m_text) return;
    m_text = trimmed;
    refilter();
}

void InventoryTreeFilter::setHostFilter(const QString &host) {
    if (host == m_host) return;
    m_host = host;
    refilter();
}

void InventoryTreeFilter::setStateFilter(StateFilter state) {
    if (state == m_state) return;
    m_state = state;
    refilter();
}

void InventoryTreeFilter::refilter() {
    // Only on a setting's change (a keystroke): a tick's changes re-filter their rows alone.
    invalidateRowsFilter();
    Q_EMIT filterChanged();
}

bool InventoryTreeFilter::nameMatches(const QModelIndex &sourceIndex) const {
    // The name, and what column 0 shows for it ("This machine" for the local host).
    return sourceIndex.data(InventoryTreeModel::NameRole)
               .toString()
               .contains(m_text, Qt::CaseInsensitive) ||
           sourceIndex.data(Qt::DisplayRole).toString().contains(m_text, Qt::CaseInsensitive);
}

bool InventoryTreeFilter::filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const {
    const QModelIndex index = sourceModel()->index(sourceRow, 0, sourceParent);
    const bool isHost = !sourceParent.isValid();
    const QModelIndex host = isHost ? index : sourceParent.siblingAtColumn(0);
    if (!m_host.isEmpty() && host.data(InventoryTreeModel::NameRole).toString() != m_host)
        return false;
    if (!m_text.isEmpty() && !nameMatches(index) && (isHost || !nameMatches(host))) return false;
    if (m_state == StateFilter::All) return true;
    const auto state = RowState(index.data(InventoryTreeModel::StateRole).toInt());
    // A host shows for the sites it keeps (recursive filtering), or as unreachable itself.
    if (isHost) return m_state == StateFilter::Unreachable && state == RowState::Unreachable;
    switch (m_state) {
    case StateFilter::Running:
        return state == RowState::Running;
    case StateFilter::Degraded:
        return state == RowState::Degraded;
    case StateFilter::Stopped:
        return state == RowState::Stopped;
    case StateFilter::Unreachable:
        return state == RowState::Unreachable;
    case StateFilter::All:
        break;
    }
    return true;
}

QModelIndex InventoryTreeFilter::siteIndex(const QString &site) const {
    const auto *model = qobject_cast<const InventoryTreeModel *>(sourceModel());
    return model ? mapFromSource(model->siteIndex(site)) : QModelIndex();
}

QModelIndex InventoryTreeFilter::hostIndex(const QString &host) const {
    for (int row = 0; row < rowCount(); ++row)
        if (const QModelIndex shown = index(row, 0);
            shown.data(InventoryTreeModel::NameRole).toString() == host)
            return shown;
    return {};
}

QModelIndex InventoryTreeFilter::firstMatch() const {
    for (int row = 0; row < rowCount(); ++row) {
        const QModelIndex host = index(row, 0);
        if (!m_text.isEmpty() && nameMatches(mapToSource(host))) return host;
        for (int child = 0; child < rowCount(host); ++child) {
            const QModelIndex site = index(child, 0, host);
            if (m_text.isEmpty() || nameMatches(mapToSource(site))) return site;
        }
    }
    return index(0, 0);
}

InventoryTreeSearch::InventoryTreeSearch(QTreeView *tree, InventoryTreeFilter *filter,
                                         QWidget *parent)
    : QWidget(parent)
    , m_tree(tree)
    , m_filter(filter)
    , m_search(new QLineEdit)
    , m_state(new QComboBox) {
    m_search->setObjectName(QStringLiteral("treeSearch"));
    m_search->setPlaceholderText(tr("Search hosts and sites (Ctrl+F)"));
    m_search->setClearButtonEnabled(true);
    m_search->installEventFilter(this);
    m_state->setObjectName(QStringLiteral("treeStateFilter"));
    m_state->setToolTip(tr("Show only the sites in this state, with their hosts"));
    using StateFilter = InventoryTreeFilter::StateFilter;
    for (const StateFilter state : {StateFilter::All, StateFilter::Running, StateFilter::Degraded,
                                    StateFilter::Stopped, StateFilter::Unreachable})
        m_state->addItem(InventoryTreeFilter::stateFilterName(state), int(state));
    auto *layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_search, 1);
    layout->addWidget(m_state);

    connect(m_search, &QLineEdit::textChanged, m_filter, &InventoryTreeFilter::setSearchText);
    connect(m_state, &QComboBox::currentIndexChanged, this,
            [this] { m_filter->setStateFilter(StateFilter(m_state->currentData().toInt())); });
    auto *find = new QShortcut(QKeySequence::Find, this);
    connect(find, &QShortcut::activated, this, [this] {
        m_search->setFocus(Qt::ShortcutFocusReason);
        m_search->selectAll();
    });
    // Matches show expanded: after a filter's change, and hosts shown again later.
    connect(m_filter, &InventoryTreeFilter::filterChanged, m_tree, &QTreeView::expandAll);
    connect(m_filter, &QAbstractItemModel::rowsInserted, this,
            [this](const QModelIndex &parent, int first, int last) {
                if (!parent.isValid())
                    for (int row = first; row <= last; ++row)
                        m_tree->expand(m_filter->index(row, 0));
                // The current row the search hid is back: current again.
                if (!m_tree->currentIndex().isValid()) scheduleRestore();
            });
    connect(m_filter, &InventoryTreeFilter::aboutToRemoveRows, this,
            &InventoryTreeSearch::keepCurrent);
    // A row the user makes current replaces the one the search hid.
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this, [this] {
        if (!m_filter->isRemovingRows()) m_keptKind = -1;
    });
    connect(m_filter, &QAbstractItemModel::rowsRemoved, this,
            &InventoryTreeSearch::scheduleRestore);
    connect(m_filter, &InventoryTreeFilter::filterChanged, this,
            &InventoryTreeSearch::restoreCurrent);
}

void InventoryTreeSearch::keepCurrent() {
    // The current row as rows go; with none, the one hidden before stays kept.
    const QModelIndex current = m_tree->currentIndex().siblingAtColumn(0);
    if (!current.isValid()) return;
    m_keptKind = current.data(InventoryTreeModel::KindRole).toInt();
    m_keptName = current.data(InventoryTreeModel::NameRole).toString();
}

void InventoryTreeSearch::scheduleRestore() {
    // Not from within the proxy's own removal or insertion: its mapping is being rebuilt (an
    // index of it taken then may dangle). After a filter's change, or once the tick is over.
    if (m_restorePending || m_keptKind < 0) return;
    m_restorePending = true;
    QMetaObject::invokeMethod(this, &InventoryTreeSearch::restoreCurrent, Qt::QueuedConnection);
}

void InventoryTreeSearch::restoreCurrent() {
    m_restorePending = false;
    if (m_keptKind < 0) return;
    const QModelIndex kept = m_keptKind == int(NodeKind::Site) ? m_filter->siteIndex(m_keptName)
                                                               : m_filter->hostIndex(m_keptName);
    if (kept.isValid()) m_keptKind = -1;
    if (m_tree->currentIndex().siblingAtColumn(0) == kept) return;
    // Put back without a signal: nothing was chosen. A hidden one leaves no current row (a
    // click on any row is a change again) until the search shows it again.
    const QSignalBlocker blocker(m_tree->selectionModel());
    m_tree->selectionModel()->setCurrentIndex(kept, QItemSelectionModel::ClearAndSelect |
                                                        QItemSelectionModel::Rows);
    m_tree->viewport()->update();
}

void InventoryTreeSearch::goToFirstMatch() {
    const QModelIndex match = m_filter->firstMatch();
    m_tree->setFocus(Qt::OtherFocusReason);
    if (!match.isValid()) return;
    m_tree->setCurrentIndex(match);
    m_tree->scrollTo(match);
}

bool InventoryTreeSearch::eventFilter(QObject *watched, QEvent *event) {
    if (watched != m_search || event->type() != QEvent::KeyPress)
        return QWidget::eventFilter(watched, event);
    switch (static_cast<QKeyEvent *>(event)->key()) {
    case Qt::Key_Escape:
        m_search->clear();
        m_tree->setFocus(Qt::OtherFocusReason);
        return true;
    case Qt::Key_Down:
    case Qt::Key_Return:
    case Qt::Key_Enter:
        goToFirstMatch();
        return true;
    default:
        break;
    }
    return QWidget::eventFilter(watched, event);
}

} // namespace corral
