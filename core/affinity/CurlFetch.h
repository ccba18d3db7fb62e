#pragma once

// The affinity check's requests on a production site (issue 22): made with curl on the host
// that reaches the endpoint (a worker's own host, the balancer's host), over that host's SSH
// session, so a worker bound to 127.0.0.1 there is asked as its balancer asks it. The answer
// is read back from curl's output (the head as received, then the body) by the project's one
// HTTP head parser (http::HeadScanner, http::parseResponse).

#include "affinity/AffinityCheck.h"

#include <QByteArray>
#include <QStringList>

#include <atomic>

namespace corral {

class HostSessions;
struct ExecResult;

/// The curl command line (argv, for shellCommand()) that makes `request` to `endpoint` and
/// writes the response head as received (-D -), then the body, to stdout; the request body,
/// if any, is read from stdin (--data-binary @-). HTTP/1.1, the target sent as is
/// (--path-as-is), at most `timeoutMs` in all (--max-time); TLS without verifying the
/// certificate (like fetchDirect(): the check asks about sessions, not identity), the Host
/// header named by SNI too. The same request fetchDirect() sends: curl's own Accept,
/// User-Agent, Content-Type and Expect left out, CR, LF and NUL dropped from every field.
QStringList curlProbeCommand(const ProbeEndpoint &endpoint, const ProbeRequest &request,
                             int timeoutMs);

/// What a run of curlProbeCommand() printed: the first final response head in `output` (1xx
/// heads other than 101 are skipped) and the body after it; curl's exit status and stderr say
/// why there is none ("connection refused", "no answer within N ms": timedOut once
/// connected). `complete`: curl ended by itself (not stopped once the answer was read).
ProbeResponse parseCurlProbe(const QByteArray &output, int exitStatus, const QByteArray &stdErr,
                             bool complete, const ProbeRequest &request, int timeoutMs);

/// A ProbeFetch that runs curl on each endpoint's `host` over its session from `sessions`
/// (opened on first use); an endpoint without a host is refused (nothing runs here). A
/// WebSocket upgrade is read only until its 101 head (the connection stays open otherwise).
/// curl's output is cut on the host (a head and a body at their limits); each request ends
/// within its timeout plus a slack for SSH even when the host or link stalls, and a host
/// that stalled once is not asked again. `*cancel` set: the request under way ends (a GET
/// at once) and later ones are not made.
/// Blocking; `sessions` must outlive it and be used from its thread only.
ProbeFetch curlFetch(HostSessions &sessions, const std::atomic<bool> *cancel = nullptr);

} // namespace corral
