#pragma once

#include <QPointer>
#include <QSortFilterProxyModel>
#include <QWidget>

class QComboBox;
class QLineEdit;
class QTreeView;

namespace corral {

/// The host tree as shown: InventoryTreeModel filtered by a search text, a host and a state.
///
/// The search matches (case-insensitively, anywhere in the name) a host's or a site's name: a
/// matching host shows all its sites, a matching site shows with its host. The state filter
/// keeps the sites in that state (InventoryTreeModel::StateRole) with their hosts, or for
/// Unreachable the offline hosts with their sites. Filtering is recursive: a host shows as
/// soon as one of its sites does. A site's or host's change re-filters only its rows (the
/// model's dataChanged), never the whole tree.
class InventoryTreeFilter : public QSortFilterProxyModel {
    Q_OBJECT
public:
    enum class StateFilter { All, Running, Degraded, Stopped, Unreachable };

    explicit InventoryTreeFilter(QObject *parent = nullptr);

    void setSearchText(const QString &text);
    QString searchText() const { return m_text; }
    /// Only this host (its name, InventoryTreeModel::NameRole) and its sites; empty: all hosts.
    void setHostFilter(const QString &host);
    QString hostFilter() const { return m_host; }
    void setStateFilter(StateFilter state);
    StateFilter stateFilter() const { return m_state; }
    bool isFiltering() const {
        return !m_text.isEmpty() || !m_host.isEmpty() || m_state != StateFilter::All;
    }
    /// What the state combo box says for each state filter.
    static QString stateFilterName(StateFilter state);

    /// The site's row (column 0) as shown; invalid when filtered out or unknown.
    QModelIndex siteIndex(const QString &site) const;
    /// The host's row (column 0) as shown; invalid when filtered out or unknown.
    QModelIndex hostIndex(const QString &host) const;
    /// The first row, top to bottom, whose own name matches the search; with no search, the
    /// first site shown (else the first host).
    QModelIndex firstMatch() const;
    /// True while rows are being filtered out: a view's current row then moves to a neighbour
    /// (QItemSelectionModel), which is not the user choosing it.
    bool isRemovingRows() const { return m_removing > 0; }

Q_SIGNALS:
    /// A filter setting changed (after the rows were filtered).
    void filterChanged();
    /// Rows are about to be filtered out; emitted before any view hears of it.
    void aboutToRemoveRows();

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override;

private:
    bool nameMatches(const QModelIndex &sourceIndex) const;
    void refilter();

    QString m_text;
    QString m_host;
    StateFilter m_state = StateFilter::All;
    int m_removing = 0;
};

/// The search box and state filter above the host tree, and their keys: Ctrl+F (anywhere in
/// the window) focuses the search, Esc clears it and returns to the tree, Enter or Down goes
/// to the first match. Matches show expanded. The tree's current row stays what it was when
/// filtering hides other rows (and none when it hides that one).
class InventoryTreeSearch : public QWidget {
    Q_OBJECT
public:
    /// `tree` shows `filter` already (its selection model is the one followed).
    InventoryTreeSearch(QTreeView *tree, InventoryTreeFilter *filter, QWidget *parent = nullptr);

    QLineEdit *searchEdit() const { return m_search; }
    QComboBox *stateCombo() const { return m_state; }
    /// Focus on the tree, on the first match (see InventoryTreeFilter::firstMatch()).
    void goToFirstMatch();

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void keepCurrent();
    void scheduleRestore();
    void restoreCurrent();

    QTreeView *m_tree;
    InventoryTreeFilter *m_filter;
    QLineEdit *m_search;
    QComboBox *m_state;
    /// The current row while rows are filtered out: kind (InventoryTreeModel::NodeKind) and
    /// name; kind -1 when none is kept.
    int m_keptKind = -1;
    QString m_keptName;
    bool m_restorePending = false;
};

} // namespace corral
