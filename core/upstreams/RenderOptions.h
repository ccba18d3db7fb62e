#pragma once

#include <QString>

namespace corral {

/// How a site is rendered for a production balancer: the parts that depend on the machine
/// the balancer runs on rather than on the site (ports, certificate paths, log locations).
/// Every path and name here is validated by the renderers like the site's own fields.
struct RenderOptions {
    QString listenAddress; ///< IP address to bind; empty: all addresses
    quint16 httpPort = 80;
    quint16 httpsPort = 443;
    /// TLS termination at the balancer: both set, or neither. HAProxy 2.6 reads the key from
    /// the certificate file itself or from CERT.key, so for HAProxy tlsKey must be one of those.
    QString tlsCertificate;
    QString tlsKey;
    QString logDirectory;     ///< empty: /var/log/nginx or /var/log/apache2
    QString runtimeDirectory; ///< HAProxy stats socket directory; empty: /run/haproxy
    QString clientMaxBodySize = QStringLiteral("32m"); ///< nginx syntax: N, Nk, Nm or Ng
    int maxFails = 3;            ///< per server: failures before it is taken out
    int failTimeoutSeconds = 10; ///< nginx fail_timeout, Apache retry
    int keepalive = 16;          ///< idle upstream connections kept per nginx worker; 0: none
    /// For the sticky-cookie policy in nginx (which has no cookie insertion in its free
    /// version): the application's session cookie to hash on. Empty: ip_hash instead.
    QString stickyCookie;
    /// A file on the balancer's host answered instead of the balancer's own error page when
    /// no backend can serve (corralctl stop SITE --maintenance): nginx serves it as the body
    /// of its 502/503 (error_page); for HAProxy it is a complete HTTP 503 response
    /// (errorfile 503). Apache: not supported. Empty: the balancer's own pages.
    QString maintenancePage;

    bool tls() const { return !tlsCertificate.isEmpty() || !tlsKey.isEmpty(); }
};

} // namespace corral
