#pragma once

// The local development CA (mkcert's approach): created once per user, trusted once by the
// user, then every HTTPS site of the embedded proxy gets a certificate from it without a
// browser warning. Files under $XDG_DATA_HOME/corral/ca/ (default ~/.local/share/corral/ca/):
//   ca.pem, ca-key.pem                 the CA (EC P-256; the key 0600, the directory 0700)
//   cert-HASH.pem, cert-HASH-key.pem   a server certificate per set of names
// Two processes issuing at once are serialised by a lock file; every file appears whole
// (written aside, then renamed).

#include "util/Result.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace corral::net {

/// A server certificate issued by the dev CA, with the files to hand to TlsContext::load.
struct DevCertificate {
    QString caFile;
    QString certFile;
    QString keyFile;
    QStringList names;        ///< what it covers: localhost, 127.0.0.1, ::1, then the hosts
    QByteArray caFingerprint; ///< SHA-256 of the CA certificate, hex
    bool caCreated = false;   ///< the CA was made just now: tell the user how to trust it
    bool issued = false;      ///< the certificate was (re)issued just now
};

class DevCertificateAuthority {
public:
    /// `directory` empty: defaultDirectory().
    explicit DevCertificateAuthority(QString directory = {});

    /// $XDG_DATA_HOME/corral/ca (default ~/.local/share/corral/ca).
    static QString defaultDirectory();
    QString directory() const { return m_directory; }
    QString caFile() const;

    /// A certificate for localhost, 127.0.0.1, ::1 and `hostNames` (DNS names or IP
    /// addresses), creating the CA first if there is none. A cached certificate is reused
    /// until it is within 30 days of its end or no longer signed by the CA.
    Result<DevCertificate> certificateFor(const QStringList &hostNames);

    /// How to make the system and the browsers trust the CA at `caFile`.
    static QString trustInstructions(const QString &caFile);

    static constexpr int LeafValidityDays = 825; ///< the most browsers accept
    static constexpr int CaValidityDays = 3650;
    static constexpr int RenewBeforeDays = 30;

private:
    QString m_directory;
};

} // namespace corral::net
