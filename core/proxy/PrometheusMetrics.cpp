#include "proxy/PrometheusMetrics.h"

#include "util/LatencyHistogram.h"

#include <charconv>
#include <cstdint>
#include <functional>

namespace corral {

namespace {

/// A label value as the format wants it: backslash, double quote and line feed escaped.
QByteArray escapeLabel(const QString &value) {
    QByteArray out;
    const QByteArray utf8 = value.toUtf8();
    out.reserve(utf8.size());
    for (const char c : utf8) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

QByteArray number(uint64_t value) {
    return QByteArray::number(qulonglong(value));
}

QByteArray number(int64_t value) {
    return QByteArray::number(qlonglong(value));
}

/// Microseconds as seconds in plain decimal ("0.00005", "1.5", "30"): exact, unlike a
/// double's shortest form, so `le` values read the same everywhere.
QByteArray seconds(uint64_t us) {
    QByteArray text = number(us / 1000000);
    uint64_t frac = us % 1000000;
    if (frac == 0) return text;
    int digits = 6;
    while (frac % 10 == 0) {
        frac /= 10;
        --digits;
    }
    QByteArray fraction = number(frac);
    return text + '.' + QByteArray(digits - fraction.size(), '0') + fraction;
}

class Writer {
public:
    /// Starts a family: its HELP and TYPE lines.
    void family(const char *name, const char *type, const char *help) {
        m_out += QByteArrayLiteral("# HELP ") + name + ' ' + help + '\n';
        m_out += QByteArrayLiteral("# TYPE ") + name + ' ' + type + '\n';
    }
    void sample(const QByteArray &name, const QByteArray &labels, const QByteArray &value) {
        m_out += name;
        if (!labels.isEmpty()) m_out += '{' + labels + '}';
        m_out += ' ' + value + '\n';
    }
    QByteArray take() { return std::move(m_out); }

private:
    QByteArray m_out;
};

} // namespace

QByteArray prometheusText(const ProxyStats &stats) {
    Writer w;
    const auto simple = [&](const char *name, const char *type, const char *help, auto value) {
        w.family(name, type, help);
        w.sample(name, {}, number(value));
    };
    simple("corral_proxy_connections_accepted_total", "counter", "Client connections accepted.",
           stats.connectionsAccepted);
    simple("corral_proxy_connections_open", "gauge", "Client connections open now.",
           stats.connectionsOpen);
    simple("corral_proxy_connections_rejected_total", "counter",
           "Client connections refused with 503 over the connection limit.",
           stats.connectionsRejected);
    simple("corral_proxy_bad_requests_total", "counter",
           "Requests answered 400, 414, 431, 501 or 505.", stats.badRequests);
    simple("corral_proxy_no_backend_total", "counter",
           "Requests answered 502 because no backend was usable.", stats.noBackend);
    simple("corral_proxy_access_log_lines_total", "counter", "Access log lines written.",
           stats.accessLogLines);
    simple("corral_proxy_access_log_dropped_lines_total", "counter",
           "Access log lines lost because the log writer fell behind.", stats.accessLogDropped);

    std::vector<QByteArray> labels;
    labels.reserve(size_t(stats.backends.size()));
    for (const BackendStats &b : stats.backends)
        labels.push_back("backend=\"" + escapeLabel(b.backend.key()) + '"');
    // One family at a time, every backend's samples in it: families stay contiguous.
    const auto perBackend = [&](const char *name, const char *type, const char *help,
                                const std::function<QByteArray(const BackendStats &)> &value) {
        w.family(name, type, help);
        for (qsizetype i = 0; i < stats.backends.size(); ++i)
            w.sample(name, labels[size_t(i)], value(stats.backends[i]));
    };
    perBackend("corral_proxy_backend_requests_total", "counter",
               "Requests sent to the backend (each attempt of a retried one).",
               [](const BackendStats &b) { return number(b.requests); });
    {
        const char *name = "corral_proxy_backend_responses_total";
        w.family(name, "counter",
                 "Responses by status class, the proxy's own 502 and 504 for the backend "
                 "included.");
        static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx"};
        for (qsizetype i = 0; i < stats.backends.size(); ++i)
            for (int k = 0; k < 4; ++k)
                w.sample(name, labels[size_t(i)] + ",code=\"" + classes[k] + '"',
                         number(stats.backends[i].responses[k]));
    }
    perBackend("corral_proxy_backend_in_flight", "gauge",
               "Requests and upgraded connections on the backend now.",
               [](const BackendStats &b) { return number(b.inFlight); });
    perBackend("corral_proxy_backend_failovers_total", "counter",
               "Requests moved to another backend after a failure on this one.",
               [](const BackendStats &b) { return number(b.failovers); });
    perBackend("corral_proxy_backend_failures_total", "counter",
               "Connect errors, resets, timeouts and malformed responses.",
               [](const BackendStats &b) { return number(b.failures); });
    perBackend("corral_proxy_backend_received_bytes_total", "counter",
               "Bytes received from the backend.",
               [](const BackendStats &b) { return number(b.bytesIn); });
    perBackend("corral_proxy_backend_sent_bytes_total", "counter", "Bytes sent to the backend.",
               [](const BackendStats &b) { return number(b.bytesOut); });
    {
        const char *name = "corral_proxy_backend_state";
        w.family(name, "gauge", "1 for the state the backend is in, 0 for the others.");
        const BackendState states[] = {BackendState::Up, BackendState::Down, BackendState::Draining,
                                       BackendState::Disabled};
        for (qsizetype i = 0; i < stats.backends.size(); ++i)
            for (const BackendState s : states)
                w.sample(name, labels[size_t(i)] + ",state=\"" + backendStateName(s).toUtf8() + '"',
                         stats.backends[i].state == s ? "1" : "0");
    }
    {
        const QByteArray name = "corral_proxy_backend_response_seconds";
        w.family(name.constData(), "histogram",
                 "Time from the request head to the response's last byte from the backend.");
        for (qsizetype i = 0; i < stats.backends.size(); ++i) {
            const BackendStats &b = stats.backends[i];
            const QByteArray &label = labels[size_t(i)];
            uint64_t cumulative = 0;
            // The last bucket is open-ended: it is +Inf.
            for (int k = 0; k < LatencyHistogram::Buckets - 1; ++k) {
                cumulative += b.latency.count(k);
                w.sample(name + "_bucket",
                         label + ",le=\"" + seconds(LatencyHistogram::BoundsUs[size_t(k)]) + '"',
                         number(cumulative));
            }
            cumulative += b.latency.count(LatencyHistogram::Buckets - 1);
            w.sample(name + "_bucket", label + ",le=\"+Inf\"", number(cumulative));
            char sum[32];
            const auto end = std::to_chars(sum, sum + sizeof sum, double(b.latencySumUs) / 1e6).ptr;
            w.sample(name + "_sum", label, QByteArray(sum, end - sum));
            w.sample(name + "_count", label, number(cumulative));
        }
    }
    return w.take();
}

} // namespace corral
