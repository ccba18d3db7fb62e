#pragma once

#include "upstreams/RequestCounts.h"
#include "util/Result.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QString>

namespace corral {

class SshSession;

/// Follows an access log written with Corral's log formats over SSH: nginx's
/// (upstream=$upstream_addr) or Apache's (upstream=%{BALANCER_WORKER_NAME}e): each tick runs one
/// command that returns the file's size and the bytes appended since the last offset (bounded), and
/// counts complete lines per upstream. A file that shrank was rotated and is read again from its
/// start.
class NginxLogFollower {
public:
    static constexpr qint64 DefaultChunkLimit = 4 * 1024 * 1024;

    /// `fromStart`: count what the file already holds; otherwise the first tick only finds
    /// the end and counts from there.
    explicit NginxLogFollower(QString logPath, bool fromStart = false,
                              qint64 chunkLimit = DefaultChunkLimit);

    /// The command for the next tick (built with shellCommand()).
    QString command() const;
    /// Consumes one tick's output of command(); returns the requests per backend it added.
    Result<RequestCounts> consume(const QByteArray &output);
    /// Of the requests the last consume() returned, those answered 5xx, per backend.
    const RequestCounts &lastErrors() const { return m_lastErrors; }
    /// command() + consume() over `session`.
    Result<RequestCounts> poll(SshSession &session, int timeoutMs = 15000);

    qint64 offset() const { return m_offset; }
    QString logPath() const { return m_path; }

    /// The upstream that answered one access-log line ("ADDRESS:PORT"); empty when the
    /// balancer served it itself (static file, redirect: "upstream=-") or the line is not
    /// Corral's format. With retries ($upstream_addr "a, b") the last address answered;
    /// Apache's member URLs ("http://ADDRESS:PORT") are reduced to ADDRESS:PORT.
    static QString upstreamOf(const QByteArray &line);
    /// The HTTP status the balancer answered one access-log line with: the field after the
    /// quoted request in both formats (nginx's $status, Apache's %>s); 0 when there is none.
    static int statusOf(const QByteArray &line);

private:
    QString m_path;
    qint64 m_offset = 0;
    bool m_positioned = false;
    qint64 m_limit = DefaultChunkLimit;
    RequestCounts m_lastErrors;
};

} // namespace corral
