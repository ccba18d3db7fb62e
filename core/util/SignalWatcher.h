#pragma once

#include <QList>
#include <QObject>

class QSocketNotifier;

namespace corral {

/// Turns Unix signals (SIGINT, SIGTERM, ...) into a Qt signal on the thread that created it,
/// through a self-pipe: the handler itself only write()s, which is async-signal-safe.
class SignalWatcher : public QObject {
    Q_OBJECT
public:
    explicit SignalWatcher(const QList<int> &signals, QObject *parent = nullptr);
    ~SignalWatcher() override;

Q_SIGNALS:
    void received(int signal);

private:
    QSocketNotifier *m_notifier = nullptr;
    QList<int> m_signals;
};

} // namespace corral
