#include "ssh/CredentialStore.h"

#include "model/Host.h"

#include <QEventLoop>
#include <QPointer>

#include <qt6keychain/keychain.h>

#include <optional>

namespace corral {

namespace {

CredentialStore::Reply replyFor(const QKeychain::Job &job, const QString &key) {
    CredentialStore::Reply reply;
    switch (job.error()) {
    case QKeychain::NoError:
        reply.status = CredentialStore::Status::Ok;
        if (const auto *read = qobject_cast<const QKeychain::ReadPasswordJob *>(&job))
            reply.secret = read->textData();
        break;
    case QKeychain::EntryNotFound:
        reply.status = CredentialStore::Status::NotFound;
        reply.error = QStringLiteral("no entry \"%1\" in the keychain").arg(key);
        break;
    default:
        // Whatever the backend's reason (no D-Bus session, no Secret Service, locked, denied),
        // the consequence for the user is the same.
        reply.status = CredentialStore::Status::Unavailable;
        reply.error = QStringLiteral("the OS keychain is not available (%1); Corral never "
                                     "stores secrets in files, so it will ask each time")
                          .arg(job.errorString());
        break;
    }
    return reply;
}

void runJob(QKeychain::Job *job, const QString &key, QObject *context,
            std::function<void(CredentialStore::Reply)> done) {
    QPointer<QObject> guard(context);
    job->setAutoDelete(true);
    job->setKey(key);
    QObject::connect(job, &QKeychain::Job::finished, job,
                     [guard, key, done = std::move(done)](QKeychain::Job *finished) {
                         if (guard && done) done(replyFor(*finished, key));
                     });
    job->start();
}

CredentialStore::Reply
waitFor(const std::function<void(QObject *, std::function<void(CredentialStore::Reply)>)> &start) {
    QEventLoop loop;
    std::optional<CredentialStore::Reply> reply;
    start(&loop, [&](CredentialStore::Reply r) {
        reply = std::move(r);
        loop.quit();
    });
    if (!reply) loop.exec();
    return *reply;
}

} // namespace

QString CredentialStore::passwordKey(const QString &hostName) {
    return QStringLiteral("host/%1/password").arg(hostName);
}

QString CredentialStore::passphraseKey(const QString &hostName) {
    return QStringLiteral("host/%1/passphrase").arg(hostName);
}

QString CredentialStore::keyFor(const Host &host) {
    switch (host.auth) {
    case Host::Auth::Password:
        return passwordKey(host.name);
    case Host::Auth::KeyFile:
        return passphraseKey(host.name);
    case Host::Auth::Agent:
        break;
    }
    return {};
}

QStringList CredentialStore::keysOf(const QString &hostName) {
    return {passwordKey(hostName), passphraseKey(hostName)};
}

CredentialStore::CredentialStore(QObject *parent)
    : QObject(parent) {}

void CredentialStore::read(const QString &key, QObject *context, std::function<void(Reply)> done) {
    runJob(new QKeychain::ReadPasswordJob(ServiceName, this), key, context, std::move(done));
}

void CredentialStore::write(const QString &key, const QString &secret, QObject *context,
                            std::function<void(Reply)> done) {
    auto *job = new QKeychain::WritePasswordJob(ServiceName, this);
    job->setTextData(secret);
    runJob(job, key, context, std::move(done));
}

void CredentialStore::remove(const QString &key, QObject *context,
                             std::function<void(Reply)> done) {
    runJob(new QKeychain::DeletePasswordJob(ServiceName, this), key, context, std::move(done));
}

CredentialStore::Reply CredentialStore::readNow(const QString &key) {
    return waitFor([&](QObject *context, auto done) { read(key, context, std::move(done)); });
}

CredentialStore::Reply CredentialStore::writeNow(const QString &key, const QString &secret) {
    return waitFor(
        [&](QObject *context, auto done) { write(key, secret, context, std::move(done)); });
}

CredentialStore::Reply CredentialStore::removeNow(const QString &key) {
    return waitFor([&](QObject *context, auto done) { remove(key, context, std::move(done)); });
}

} // namespace corral
