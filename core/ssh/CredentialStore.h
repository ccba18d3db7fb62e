#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

#include <functional>

namespace corral {

struct Host;

/// Passwords and key passphrases in the OS keychain (QtKeychain, service "corral"). Nothing
/// here ever writes a secret to a file, a log or a command line: when no keychain is usable
/// the reply says so (status Unavailable, with the keychain's own reason) and callers ask
/// the user each time instead.
class CredentialStore : public QObject {
    Q_OBJECT

public:
    static inline const QString ServiceName = QStringLiteral("corral");

    enum class Status {
        Ok,          ///< read: `secret` holds the value; write/remove: done
        NotFound,    ///< no such entry
        Unavailable, ///< no usable keychain (no D-Bus session, locked, denied, ...)
    };
    struct Reply {
        Status status = Status::Unavailable;
        QString secret;
        QString error; ///< for NotFound and Unavailable: a sentence for the user
    };

    /// Entry names: "host/NAME/password" and "host/NAME/passphrase".
    static QString passwordKey(const QString &hostName);
    static QString passphraseKey(const QString &hostName);
    /// The one rule for which entry holds a host's secret: its password for password login,
    /// its key's passphrase for a key file; empty for ssh-agent logins (no secret).
    static QString keyFor(const Host &host);
    /// Every entry a host may have (removed with the host, whatever its login was).
    static QStringList keysOf(const QString &hostName);

    explicit CredentialStore(QObject *parent = nullptr);

    /// Asynchronous: `done` runs on `context`'s thread, unless `context` is gone by then.
    void read(const QString &key, QObject *context, std::function<void(Reply)> done);
    void write(const QString &key, const QString &secret, QObject *context,
               std::function<void(Reply)> done);
    void remove(const QString &key, QObject *context, std::function<void(Reply)> done);

    /// For command-line tools: the same, waiting in a local event loop.
    Reply readNow(const QString &key);
    Reply writeNow(const QString &key, const QString &secret);
    Reply removeNow(const QString &key);
};

} // namespace corral
