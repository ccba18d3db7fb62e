#pragma once

// TLS termination for the proxy: one server context (OpenSSL SSL_CTX) shared by every event
// loop, and the non-blocking record I/O the loops do on a client's SSL object. OpenSSL's
// types stay out of the header (it is linked privately into corral_core).

#include "util/Result.h"

#include <QString>

#include <cstddef>
#include <memory>

struct ssl_st;
struct ssl_ctx_st;

namespace corral::net {

/// A server-side TLS configuration as nginx's "intermediate" profile sets it: TLS 1.2 and
/// 1.3 only, ECDHE (X25519, P-256) with AEAD ciphers in the server's order, no compression,
/// no renegotiation, session cache and tickets for resumption, ALPN http/1.1 only.
class TlsContext {
public:
    ~TlsContext();
    TlsContext(const TlsContext &) = delete;
    TlsContext &operator=(const TlsContext &) = delete;

    /// Loads a PEM certificate chain and its private key. Fails with a message naming the
    /// file and OpenSSL's reason (unreadable, not PEM, the key does not match the cert).
    static Result<std::shared_ptr<TlsContext>> load(const QString &certFile,
                                                    const QString &keyFile);

    /// A new server session on the accepted socket `fd`; the handshake runs inside the
    /// first tlsRead(). nullptr when out of memory.
    ssl_st *newSession(int fd) const;

private:
    TlsContext() = default;
    ssl_ctx_st *m_ctx = nullptr;
};

// The record I/O of a non-blocking, edge-triggered socket. Results as the proxy's plain
// socket I/O: >0 bytes, 0 end of stream (close_notify or the peer's FIN), -1 would block,
// -2 error. The readiness flags are cleared only when the socket said EAGAIN: OpenSSL may
// hold decrypted bytes (SSL_pending) that no poller event will announce.

/// Reads up to `room` bytes (running the handshake first if it is not done). A read that
/// needs the socket writable (a handshake message to send) clears `canWrite`.
int tlsRead(ssl_st *ssl, char *data, size_t room, bool &canRead, bool &canWrite);
/// Writes up to `size` bytes; a partial write returns what went out.
int tlsWrite(ssl_st *ssl, const char *data, size_t size, bool &canWrite);
/// Sends close_notify (best effort, never blocks) before the socket's write side closes.
void tlsShutdown(ssl_st *ssl);
void tlsFree(ssl_st *ssl);

/// The last OpenSSL error of this thread as text ("key values mismatch"), the queue cleared.
QString openSslError();

} // namespace corral::net
