#include "net/TlsContext.h"

#include <QFile>

#include <cerrno>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace corral::net {

namespace {

// Mozilla's "intermediate" TLS 1.2 list (as nginx's and HAProxy's generated configs use),
// without the DHE suites: ECDHE key exchange, AEAD ciphers only. TLS 1.3 keeps OpenSSL's
// three AEAD suites.
constexpr char Tls12Ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char Tls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr unsigned char Http11Alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// ALPN: http/1.1 when the client offers it; a client offering only other protocols (h2)
// gets no ALPN answer and may go on with HTTP/1.1 or give up, its choice.
int selectAlpn(SSL *, const unsigned char **out, unsigned char *outLength, const unsigned char *in,
               unsigned int inLength, void *) {
    unsigned char *selected = nullptr;
    if (SSL_select_next_proto(&selected, outLength, Http11Alpn, sizeof Http11Alpn, in, inLength) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

// Whether `file` can be read at all: OpenSSL's "no such file" is less clear than errno's.
Result<void> checkReadable(const QString &what, const QString &file) {
    if (file.isEmpty()) return fail(QStringLiteral("TLS: no %1 file given").arg(what));
    QFile f(file);
    if (!f.open(QIODevice::ReadOnly))
        return fail(QStringLiteral("TLS %1 %2: cannot read: %3").arg(what, file, f.errorString()));
    return {};
}

} // namespace

QString openSslError() {
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0) return QStringLiteral("unknown OpenSSL error");
    const char *reason = ERR_reason_error_string(code);
    return reason ? QString::fromUtf8(reason) : QStringLiteral("OpenSSL error %1").arg(code, 0, 16);
}

TlsContext::~TlsContext() {
    SSL_CTX_free(m_ctx);
}

Result<std::shared_ptr<TlsContext>> TlsContext::load(const QString &certFile,
                                                     const QString &keyFile) {
    if (auto r = checkReadable(QStringLiteral("certificate"), certFile); !r) return fail(r.error());
    if (auto r = checkReadable(QStringLiteral("key"), keyFile); !r) return fail(r.error());
    ERR_clear_error();
    std::shared_ptr<TlsContext> context(new TlsContext);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return fail(QStringLiteral("TLS: cannot create a context: ") + openSslError());
    context->m_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 // A client closing without close_notify is an end of
                                 // stream, as for nginx; request bodies carry their framing.
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Partial writes and a buffer that moves between retries: the event loop's out buffer
    // is compacted while OpenSSL may still hold a record of it.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, Tls12Ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, Tls13Suites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1)
        return fail(QStringLiteral("TLS: cipher setup: ") + openSslError());
    // Resumption: a server-side session cache for TLS 1.2 session ids, and tickets (one per
    // TLS 1.3 handshake: each costs an encryption, clients reuse one).
    static const unsigned char sessionContext[] = "corral";
    SSL_CTX_set_session_id_context(ctx, sessionContext, sizeof sessionContext - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20480);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, nullptr);

    const QByteArray cert = QFile::encodeName(certFile);
    const QByteArray key = QFile::encodeName(keyFile);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.constData()) != 1)
        return fail(QStringLiteral("TLS certificate %1: %2").arg(certFile, openSslError()));
    if (SSL_CTX_use_PrivateKey_file(ctx, key.constData(), SSL_FILETYPE_PEM) != 1) {
        // OpenSSL checks the pair here already; its "key values mismatch" names neither file.
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return fail(QStringLiteral("TLS key %1 does not match the certificate %2")
                            .arg(keyFile, certFile));
        }
        return fail(QStringLiteral("TLS key %1: %2").arg(keyFile, openSslError()));
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(QStringLiteral("TLS key %1 does not match the certificate %2 (%3)")
                        .arg(keyFile, certFile, openSslError()));
    return context;
}

ssl_st *TlsContext::newSession(int fd) const {
    SSL *ssl = SSL_new(m_ctx);
    if (!ssl) return nullptr;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return nullptr;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

int tlsRead(ssl_st *ssl, char *data, size_t room, bool &canRead, bool &canWrite) {
    // Until the buffer is full or the socket is drained: a record left in the socket would
    // get no new edge-triggered event.
    size_t total = 0;
    while (total < room) {
        size_t n = 0;
        const int rc = SSL_read_ex(ssl, data + total, room - total, &n);
        if (rc == 1) {
            total += n;
            continue;
        }
        const int error = SSL_get_error(ssl, rc);
        if (error == SSL_ERROR_WANT_READ) {
            canRead = false;
            break;
        }
        if (error == SSL_ERROR_WANT_WRITE) {
            canWrite = false;
            break;
        }
        ERR_clear_error();
        if (total > 0) break; // the end or the error shows on the next call
        return error == SSL_ERROR_ZERO_RETURN ? 0 : -2;
    }
    return total > 0 ? int(total) : -1;
}

int tlsWrite(ssl_st *ssl, const char *data, size_t size, bool &canWrite) {
    // A partial write sends one record at a time: go on until all is out or the socket is full.
    size_t total = 0;
    while (total < size) {
        size_t n = 0;
        const int rc = SSL_write_ex(ssl, data + total, size - total, &n);
        if (rc == 1) {
            total += n;
            continue;
        }
        const int error = SSL_get_error(ssl, rc);
        if (error == SSL_ERROR_WANT_WRITE) {
            canWrite = false;
            break;
        }
        if (error == SSL_ERROR_WANT_READ) break; // a post-handshake message first
        ERR_clear_error();
        if (total > 0) break;
        return -2;
    }
    return total > 0 ? int(total) : -1;
}

void tlsShutdown(ssl_st *ssl) {
    // Only once the handshake is done; the alert either fits the socket's buffer or is lost
    // (the TCP close that follows ends the stream anyway).
    if (SSL_is_init_finished(ssl)) SSL_shutdown(ssl);
    ERR_clear_error();
}

void tlsFree(ssl_st *ssl) {
    SSL_free(ssl);
}

} // namespace corral::net
