#include "net/DevCertificateAuthority.h"

#include "net/TlsContext.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QHostAddress>
#include <QSysInfo>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace corral::net {

namespace {

struct OpenSslFree {
    void operator()(X509 *x) const { X509_free(x); }
    void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
    void operator()(BIO *b) const { BIO_free(b); }
    void operator()(BIGNUM *n) const { BN_free(n); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree>;
using BigNumPtr = std::unique_ptr<BIGNUM, OpenSslFree>;

QString systemError() {
    return QString::fromLocal8Bit(std::strerror(errno));
}

/// Holds an exclusive flock on DIR/.lock while alive: one issuer at a time per directory.
class DirectoryLock {
public:
    explicit DirectoryLock(const QString &directory) {
        const QByteArray path = QFile::encodeName(directory + QStringLiteral("/.lock"));
        m_fd = ::open(path.constData(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m_fd >= 0 && ::flock(m_fd, LOCK_EX) != 0) {
            ::close(m_fd);
            m_fd = -1;
        }
    }
    ~DirectoryLock() {
        if (m_fd >= 0) ::close(m_fd); // releases the lock
    }
    DirectoryLock(const DirectoryLock &) = delete;
    DirectoryLock &operator=(const DirectoryLock &) = delete;
    bool locked() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

/// Writes `bytes` to `path` with `mode` so that readers see the old file or the new one,
/// never a part: a file aside, flushed, then renamed over.
Result<void> writeAtomically(const QString &path, const QByteArray &bytes, mode_t mode) {
    const QString temporary = path + QStringLiteral(".tmp-%1").arg(::getpid());
    const QByteArray tmp = QFile::encodeName(temporary);
    const int fd = ::open(tmp.constData(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return fail(QStringLiteral("%1: cannot write: %2").arg(temporary, systemError()));
    ::fchmod(fd, mode); // an earlier leftover of this name may have had other permissions
    const char *p = bytes.constData();
    qsizetype left = bytes.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, size_t(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const QString why = systemError();
            ::close(fd);
            ::unlink(tmp.constData());
            return fail(QStringLiteral("%1: cannot write: %2").arg(temporary, why));
        }
        p += n;
        left -= n;
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0 ||
        ::rename(tmp.constData(), QFile::encodeName(path).constData()) != 0) {
        const QString why = systemError();
        ::unlink(tmp.constData());
        return fail(QStringLiteral("%1: cannot write: %2").arg(path, why));
    }
    return {};
}

/// Creates `directory` (and its parents) and makes it 0700: it holds a CA's private key.
Result<void> makePrivateDirectory(const QString &directory) {
    if (!QDir().mkpath(directory))
        return fail(QStringLiteral("%1: cannot create the directory").arg(directory));
    if (::chmod(QFile::encodeName(directory).constData(), 0700) != 0)
        return fail(QStringLiteral("%1: cannot make it private: %2").arg(directory, systemError()));
    return {};
}

QByteArray readAll(const QString &path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

X509Ptr parseCertificate(const QByteArray &pem) {
    BioPtr bio(BIO_new_mem_buf(pem.constData(), int(pem.size())));
    return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

KeyPtr parseKey(const QByteArray &pem) {
    BioPtr bio(BIO_new_mem_buf(pem.constData(), int(pem.size())));
    return KeyPtr(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

QByteArray bioText(BIO *bio) {
    char *data = nullptr;
    const long length = BIO_get_mem_data(bio, &data);
    return QByteArray(data, qsizetype(length));
}

QByteArray certificatePem(X509 *cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
    return bioText(bio.get());
}

QByteArray keyPem(EVP_PKEY *key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return {};
    return bioText(bio.get());
}

QByteArray fingerprint(X509 *cert) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    X509_digest(cert, EVP_sha256(), digest, &length);
    return QByteArray(reinterpret_cast<const char *>(digest), int(length)).toHex();
}

bool addExtension(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) return false;
    const bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

struct Extension {
    int nid;
    QByteArray value;
};

/// A certificate for `key`'s public half, signed by `issuerKey` (`issuer` null: self-signed).
X509Ptr makeCertificate(EVP_PKEY *key, const QString &organization, const QString &commonName,
                        X509 *issuer, EVP_PKEY *issuerKey, int days,
                        const std::vector<Extension> &extensions) {
    X509Ptr cert(X509_new());
    BigNumPtr serial(BN_new());
    if (!cert || !serial || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
        BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
        return nullptr;
    // Valid from an hour ago: a clock a little behind the issuer's still accepts it.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(days) * 86400);
    X509_NAME *name = X509_get_subject_name(cert.get());
    const QByteArray o = organization.toUtf8();
    const QByteArray cn = commonName.toUtf8().left(64);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char *>(o.constData()), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char *>(cn.constData()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    if (X509_set_pubkey(cert.get(), key) != 1) return nullptr;
    for (const Extension &e : extensions)
        if (!addExtension(cert.get(), issuer ? issuer : cert.get(), e.nid, e.value.constData()))
            return nullptr;
    if (X509_sign(cert.get(), issuerKey, EVP_sha256()) == 0) return nullptr;
    return cert;
}

/// The names a certificate covers, normalised; fails on a name that is neither an IP address
/// nor a DNS name (it would otherwise end up inside the subjectAltName text).
Result<QStringList> certificateNames(const QStringList &hostNames) {
    QStringList names = {QStringLiteral("localhost"), QStringLiteral("127.0.0.1"),
                         QStringLiteral("::1")};
    for (const QString &raw : hostNames) {
        QString name = raw.trimmed().toLower();
        if (name.isEmpty()) continue;
        QHostAddress ip;
        if (ip.setAddress(name)) {
            name = ip.toString();
        } else {
            const bool wildcard = name.startsWith(QStringLiteral("*."));
            const QString rest = wildcard ? name.mid(2) : name;
            bool valid = !rest.isEmpty() && rest.size() <= 253 && !rest.startsWith(u'.') &&
                         !rest.endsWith(u'.') && !rest.contains(QStringLiteral(".."));
            for (const QChar ch : rest)
                valid = valid && ((ch >= u'a' && ch <= u'z') || (ch >= u'0' && ch <= u'9') ||
                                  ch == u'-' || ch == u'.');
            if (!valid)
                return fail(
                    QStringLiteral("TLS host name \"%1\": not a DNS name or IP address").arg(raw));
        }
        if (!names.contains(name)) names.append(name);
    }
    return names;
}

QByteArray subjectAltName(const QStringList &names) {
    QStringList entries;
    for (const QString &name : names) {
        QHostAddress ip;
        entries.append((ip.setAddress(name) ? QStringLiteral("IP:") : QStringLiteral("DNS:")) +
                       name);
    }
    return entries.join(u',').toUtf8();
}

/// Whether the cached certificate in `certPem`/`keyPem` can be served: its key, signed by
/// `ca`, and not about to expire.
bool usable(const QByteArray &certPem, const QByteArray &keyPem, X509 *ca) {
    X509Ptr cert = parseCertificate(certPem);
    KeyPtr key = parseKey(keyPem);
    bool ok = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
    if (ok) {
        EVP_PKEY *caKey = X509_get0_pubkey(ca);
        ok = caKey && X509_verify(cert.get(), caKey) == 1;
    }
    if (ok) {
        time_t renewAt = time(nullptr) + time_t(DevCertificateAuthority::RenewBeforeDays) * 86400;
        ok = X509_cmp_time(X509_get0_notAfter(cert.get()), &renewAt) > 0;
    }
    ERR_clear_error();
    return ok;
}

QString userAtHost() {
    const QString user = qEnvironmentVariable("USER", QStringLiteral("user"));
    return user + u'@' + QSysInfo::machineHostName();
}

} // namespace

DevCertificateAuthority::DevCertificateAuthority(QString directory)
    : m_directory(directory.isEmpty() ? defaultDirectory() : std::move(directory)) {}

QString DevCertificateAuthority::defaultDirectory() {
    QString data = qEnvironmentVariable("XDG_DATA_HOME");
    if (data.isEmpty() || !QDir::isAbsolutePath(data))
        data = QDir::homePath() + QStringLiteral("/.local/share");
    return data + QStringLiteral("/corral/ca");
}

QString DevCertificateAuthority::caFile() const {
    return m_directory + QStringLiteral("/ca.pem");
}

Result<DevCertificate> DevCertificateAuthority::certificateFor(const QStringList &hostNames) {
    auto names = certificateNames(hostNames);
    if (!names) return fail(names.error());
    if (auto r = makePrivateDirectory(m_directory); !r) return fail(r.error());
    DirectoryLock lock(m_directory);
    if (!lock.locked())
        return fail(QStringLiteral("%1/.lock: cannot lock: %2").arg(m_directory, systemError()));
    ERR_clear_error();

    DevCertificate out;
    out.caFile = caFile();
    out.names = names.value();
    const QString caKeyFile = m_directory + QStringLiteral("/ca-key.pem");
    X509Ptr ca;
    KeyPtr caKey;
    if (QFile::exists(out.caFile) && QFile::exists(caKeyFile)) {
        // A CA the user may have trusted: never replaced behind their back.
        ca = parseCertificate(readAll(out.caFile));
        if (!ca) return fail(QStringLiteral("%1: not a PEM certificate").arg(out.caFile));
        caKey = parseKey(readAll(caKeyFile));
        if (!caKey)
            return fail(QStringLiteral("%1: not a readable PEM private key").arg(caKeyFile));
        if (X509_check_private_key(ca.get(), caKey.get()) != 1)
            return fail(QStringLiteral("%1 does not match the CA certificate %2 (%3)")
                            .arg(caKeyFile, out.caFile, openSslError()));
    } else {
        caKey.reset(EVP_EC_gen("P-256"));
        if (!caKey) return fail(QStringLiteral("dev CA: key generation: ") + openSslError());
        ca = makeCertificate(caKey.get(), QStringLiteral("Corral development CA"),
                             QStringLiteral("Corral dev CA ") + userAtHost(), nullptr, caKey.get(),
                             CaValidityDays,
                             {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                              {NID_key_usage, "critical,keyCertSign,cRLSign"},
                              {NID_subject_key_identifier, "hash"}});
        if (!ca) return fail(QStringLiteral("dev CA: cannot create: ") + openSslError());
        // The key first: a ca.pem without its key would be taken for a CA to keep.
        if (auto r = writeAtomically(caKeyFile, keyPem(caKey.get()), 0600); !r)
            return fail(r.error());
        if (auto r = writeAtomically(out.caFile, certificatePem(ca.get()), 0644); !r)
            return fail(r.error());
        out.caCreated = true;
    }
    out.caFingerprint = fingerprint(ca.get());

    // One cached certificate per set of names, so two sites with different hosts do not
    // keep reissuing each other's.
    QStringList sorted = out.names;
    sorted.sort();
    const QByteArray hash =
        QCryptographicHash::hash(sorted.join(u',').toUtf8(), QCryptographicHash::Sha256)
            .toHex()
            .left(16);
    const QString base = m_directory + QStringLiteral("/cert-") + QString::fromLatin1(hash);
    out.certFile = base + QStringLiteral(".pem");
    out.keyFile = base + QStringLiteral("-key.pem");
    if (!out.caCreated && usable(readAll(out.certFile), readAll(out.keyFile), ca.get())) return out;

    KeyPtr key(EVP_EC_gen("P-256"));
    if (!key) return fail(QStringLiteral("dev certificate: key generation: ") + openSslError());
    X509Ptr cert = makeCertificate(key.get(), QStringLiteral("Corral development certificate"),
                                   out.names.value(out.names.size() > 3 ? 3 : 0), ca.get(),
                                   caKey.get(), LeafValidityDays,
                                   {{NID_basic_constraints, "critical,CA:FALSE"},
                                    {NID_key_usage, "critical,digitalSignature"},
                                    {NID_ext_key_usage, "serverAuth"},
                                    {NID_subject_alt_name, subjectAltName(out.names)},
                                    {NID_subject_key_identifier, "hash"},
                                    {NID_authority_key_identifier, "keyid"}});
    if (!cert) return fail(QStringLiteral("dev certificate: cannot issue: ") + openSslError());
    if (auto r = writeAtomically(out.keyFile, keyPem(key.get()), 0600); !r) return fail(r.error());
    if (auto r = writeAtomically(out.certFile, certificatePem(cert.get()), 0644); !r)
        return fail(r.error());
    out.issued = true;
    return out;
}

QString DevCertificateAuthority::trustInstructions(const QString &caFile) {
    return QStringLiteral(
               "Corral's local development CA is %1.\n"
               "To trust it system-wide (curl, most programs):\n"
               "  sudo cp %1 /usr/local/share/ca-certificates/corral-dev-ca.crt && "
               "sudo update-ca-certificates\n"
               "For Chromium and Firefox (NSS; libnss3-tools provides certutil):\n"
               "  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n \"Corral dev CA\" -i %1\n")
        .arg(caFile);
}

} // namespace corral::net
