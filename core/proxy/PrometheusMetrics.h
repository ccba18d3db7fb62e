#pragma once

#include "proxy/ProxyEngine.h"

#include <QByteArray>

namespace corral {

/// The Content-Type of prometheusText(): the text exposition format, version 0.0.4.
inline constexpr char PrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

/// `stats` in Prometheus' text exposition format (0.0.4), as the admin API's GET /metrics
/// serves it: the proxy's connection counters and, per backend (label backend="HOST:PORT"),
/// requests, responses by status class, in flight, failovers, failures, bytes, state and the
/// response time histogram (corral_proxy_backend_response_seconds, cumulative buckets from
/// LatencyHistogram's bounds). Every family has its HELP and TYPE once, its samples together.
QByteArray prometheusText(const ProxyStats &stats);

} // namespace corral
