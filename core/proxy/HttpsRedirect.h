#pragma once

// The HTTP -> HTTPS redirect listener (`corralctl proxy --redirect-http ADDR:PORT`): every
// request gets a 301 to the same path on https://, then the connection closes. Low traffic
// by nature (a browser follows it once, then remembers), so one small poll() thread of its
// own rather than a mode of the proxy's event loops.

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace corral::proxy {

/// The Location a request for `target` with Host `host` is sent to: https://HOST[:PORT]TARGET
/// with the Host header's name (its port dropped) when it is a plain DNS name or IP literal,
/// `fallbackHost` otherwise (absent, or characters a header must not carry); port 443 is
/// left out. A target that is not origin-form becomes "/".
std::string httpsLocation(std::string_view host, std::string_view target, uint16_t httpsPort,
                          std::string_view fallbackHost);

class HttpsRedirector {
public:
    /// Takes over `listenFd` (bound, listening, non-blocking). `fallbackHost` is the TLS
    /// listener's address as a URL host (brackets around IPv6).
    HttpsRedirector(int listenFd, uint16_t httpsPort, std::string fallbackHost, int timeoutMs);
    ~HttpsRedirector(); ///< stops
    HttpsRedirector(const HttpsRedirector &) = delete;
    HttpsRedirector &operator=(const HttpsRedirector &) = delete;

    bool start();
    void stop();

private:
    void run();

    int m_listenFd;
    int m_wakeFd = -1;
    uint16_t m_httpsPort;
    std::string m_fallbackHost;
    int m_timeoutMs;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

} // namespace corral::proxy
