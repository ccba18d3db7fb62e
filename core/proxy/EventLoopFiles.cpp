// The event loop's side of static files: answering from StaticFiles, sending the body with
// sendfile(2) (or pread into `out` on the copy path), and the read-ahead of large files on
// the FileReaderPool. The decisions (paths, conditionals, ranges) are StaticFiles'.

#include "proxy/EventLoop.h"

#include <algorithm>
#include <cerrno>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

namespace corral::proxy {

namespace {
// What one sendfile(2) call may send: bounded so one client cannot hold the loop long.
constexpr uint64_t MaxSendfileBytes = 1024 * 1024;
// Offloaded files are read ahead in pieces this large, at most two ahead of what was sent.
constexpr uint64_t ReadAheadBytes = 1024 * 1024;
} // namespace

int EventLoop::serveStatic(Client *c, uint32_t headLength) {
    const http::RequestHead &r = m_request;
    // GET and HEAD without a body and without an upgrade; everything else is the backends'.
    if (!(r.isHead || r.method == "GET") || c->upgrade || !c->req.done()) return 0;
    DecodedPath path;
    const int verdict = decodeStaticPath(r.target, path);
    if (verdict == PathNotStatic) return 0;
    if (!m_buffers.ensure(c->out)) {
        closeClient(c);
        return 1;
    }
    m_buffers.makeRoom(c->out);
    if (verdict == 0) {
        // The previous response may still fill `out`: the head waits for room, in order.
        const uint32_t needed = m_static->maxHeadLength() + uint32_t(path.rawPath.size());
        if (m_buffers.space(c->out) < needed) return c->out.size() > 0 ? -1 : 0;
    }
    StaticResponse response;
    if (verdict == PathRefused) {
        response.status = 400;
    } else {
        response = m_static->respond(path, staticRequestOf(r, c->keepAlive),
                                     c->out.data + c->out.end, m_buffers.space(c->out));
        if (response.status == 0) return 0;
    }
    // path.rawPath points into `in`: used up by now.
    c->in.consume(headLength);
    c->scan.reset();
    c->status = response.status;
    c->startUs = monotonicUs();
    if (response.headLength == 0) {
        // Refused (400: traversal, NUL, bad escape; 403: a symlink out of the root): the
        // proxy's error response, the connection kept.
        if (response.status == 400) m_shared.badRequests.fetch_add(1, std::memory_order_relaxed);
        respondError(c, response.status, false);
        return 1;
    }
    if (m_compression.enabled())
        response.headLength =
            gzipStaticHead(*c, response, c->out.data + c->out.end, m_buffers.space(c->out),
                           m_compression, m_gzipPool, m_response);
    c->out.end += response.headLength;
    if (response.fd < 0) { // HEAD, 304, 301, 416, an empty file
        if (m_accessLog) m_accessLog->write(*c, c->status, nullptr);
        completeResponse(c);
        return 1;
    }
    FileBody &f = c->file;
    f.fd = response.fd;
    f.offset = response.offset;
    f.end = response.offset + response.length;
    c->log.bodyBytes = c->gzip ? 0 : response.length; // compressed: counted as it goes
    f.readyEnd = response.offset;
    f.ticket = 0;
    f.offload = response.offload && m_fileReaders;
    c->phase = Phase::File;
    arm(c->timer, ClientSend);
    // A body that fits behind the head goes with it in one send (one segment for a small
    // file instead of a head segment and a sendfile); an offloaded file is not read here.
    if (!f.offload && !c->gzip && response.length <= m_buffers.space(c->out)) {
        copyFileChunk(c);
    } else if (!c->useCopyPath && !c->gzip && !f.offload && c->canWrite) {
        // nginx's tcp_nopush: the head waits in the socket (MSG_MORE) for the sendfile that
        // follows, one full segment instead of a small head segment and then the body's.
        const ssize_t n = ::send(c->fd, c->out.readPtr(), c->out.size(), MSG_NOSIGNAL | MSG_MORE);
        if (n > 0)
            c->out.consume(uint32_t(n));
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            c->canWrite = false;
        // Other errors: flushClient meets them again and closes.
    }
    return 1;
}

bool EventLoop::stepFile(Client *c) {
    FileBody &f = c->file;
    if (c->gzip && !c->gzip->finished()) { // compressed: pread, the encoder, chunks into `out`
        if (f.offload) requestReadAhead(c);
        const GzipProgress gz = pumpGzipFile(*c, m_buffers, m_gzipPool.fileInput());
        c->log.bodyBytes += gz.queued;
        if (gz.cut) closeClient(c);
        return gz.moved && !gz.cut;
    }
    if (f.offset >= f.end) {
        endFileResponse(c);
        return true;
    }
    if (f.offload) requestReadAhead(c);
    const uint64_t limit = f.offload ? f.readyEnd : f.end;
    if (f.offset >= limit) return false; // the read-ahead brings the next part
    if (c->useCopyPath) return copyFileChunk(c);
    // The head (and whatever went with it) first, then the file.
    if (c->out.size() > 0 || !c->canWrite) return false;
    off_t at = off_t(f.offset);
    const ssize_t n =
        ::sendfile(c->fd, f.fd, &at, size_t(std::min(limit - f.offset, MaxSendfileBytes)));
    if (n > 0) {
        f.offset += uint64_t(n);
        arm(c->timer, ClientSend); // it takes bytes: progress
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->canWrite = false;
        return false;
    }
    if (n < 0 && errno == EINTR) return true;
    // 0: the file shrank under us; or an error: the client must see the body cut short.
    closeClient(c);
    return false;
}

bool EventLoop::copyFileChunk(Client *c) {
    FileBody &f = c->file;
    const uint64_t limit = f.offload ? f.readyEnd : f.end;
    if (f.offset >= limit) return false;
    if (!m_buffers.ensure(c->out)) {
        closeClient(c);
        return false;
    }
    m_buffers.makeRoom(c->out);
    const uint32_t room = m_buffers.space(c->out);
    if (room == 0) return false;
    const ssize_t n = ::pread(f.fd, c->out.data + c->out.end,
                              size_t(std::min<uint64_t>(room, limit - f.offset)), off_t(f.offset));
    if (n > 0) {
        c->out.end += uint32_t(n);
        f.offset += uint64_t(n);
        return true;
    }
    if (n < 0 && errno == EINTR) return true;
    closeClient(c); // shrank or unreadable: cut short
    return false;
}

void EventLoop::requestReadAhead(Client *c) {
    FileBody &f = c->file;
    if (f.ticket || f.readyEnd >= f.end || f.readyEnd - f.offset >= 2 * ReadAheadBytes) return;
    FileReaderPool::Job job;
    job.fd = f.fd;
    job.offset = f.readyEnd;
    job.length = std::min(ReadAheadBytes, f.end - f.readyEnd);
    job.owner = c;
    job.ticket = ++m_nextFileTicket;
    job.loop = m_index;
    f.ticket = job.ticket;
    m_fileReaders->submit(job);
}

// The response's end, as finishResponse's for a proxied one.
void EventLoop::endFileResponse(Client *c) {
    if (m_accessLog) m_accessLog->write(*c, c->status, nullptr);
    closeFile(c);
    completeResponse(c);
}

void EventLoop::closeFile(Client *c) {
    FileBody &f = c->file;
    // With a read in flight the descriptor is the reader's: its completion closes it.
    if (f.fd >= 0 && f.ticket == 0) ::close(f.fd);
    f = FileBody{};
}

void EventLoop::takeFileReads() {
    m_fileReaders->takeDone(m_index, m_fileReads);
    for (const FileReaderPool::Done &done : m_fileReads) {
        // The owner may have closed meanwhile (its object possibly reused by a new client):
        // tickets are unique per loop, so only the one that asked matches.
        Client *c = static_cast<Client *>(done.job.owner);
        if (c->closed || c->phase != Phase::File || c->file.ticket != done.job.ticket) {
            ::close(done.job.fd);
            continue;
        }
        c->file.ticket = 0;
        if (done.error != 0) {
            closeClient(c); // the body cannot be read: cut short
            continue;
        }
        c->file.readyEnd = done.job.offset + done.job.length;
        pump(c);
    }
    m_fileReads.clear();
}

void EventLoop::releaseFiles() {
    if (!m_fileReaders) return;
    for (Client *c : m_clients)
        closeFile(c); // leaves descriptors of reads in flight to their completion, below
    m_fileReaders->takeDone(m_index, m_fileReads);
    for (const FileReaderPool::Done &done : m_fileReads)
        ::close(done.job.fd);
    m_fileReads.clear();
}

} // namespace corral::proxy
