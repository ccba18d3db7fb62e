// Fuzz target for the proxy's admin API request path: whatever bytes arrive on an admin
// connection go through AdminServer::process (head scanning and parsing with the proxy's
// HTTP parser, Origin/Host/token checks, Content-Length framing) and, when they pass, the
// router handle(), against a running engine. It must never crash, read out of bounds or
// loop, and an incomplete request must never get an answer that a complete one would not.
//
// With clang it is a libFuzzer target (-fsanitize=fuzzer); otherwise the main() below runs
// seed requests plus random mutations of them for a few seconds.

#include "proxy/AdminServer.h"
#include "proxy/ProxyEngine.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace corral;

namespace {

constexpr char Token[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

struct Target {
    ProxyEngine engine;
    std::unique_ptr<AdminServer> admin;
    AdminServer::Access tcp;
    AdminServer::Access unixSocket;
    Target() {
        ProxyConfig config;
        config.threads = 1;
        config.backends = {Backend{QStringLiteral("127.0.0.1"), 9}};
        if (!engine.start(config)) std::abort();
        admin = std::make_unique<AdminServer>(engine);
        tcp.token = Token;
        tcp.hosts = {"127.0.0.1:9000", "localhost:9000"};
    }
};

Target &target() {
    static Target t;
    return t;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Target &t = target();
    const QByteArray bytes(reinterpret_cast<const char *>(data), qsizetype(size));
    // Both transports' rules; and every prefix length the network could deliver in steps.
    for (const AdminServer::Access *access : {&t.tcp, &t.unixSocket}) {
        const auto whole = t.admin->process(bytes, *access);
        if (whole && (whole->status < 100 || whole->status > 599)) std::abort();
        const auto half = t.admin->process(bytes.left(bytes.size() / 2), *access);
        if (half && (half->status < 100 || half->status > 599)) std::abort();
    }
    // Keep the engine from growing without bound across runs.
    const QList<Backend> backends = t.engine.backends();
    if (backends.size() > 64)
        for (qsizetype i = 1; i < backends.size(); ++i)
            (void)t.engine.removeBackend(backends[i].key());
    return 0;
}

#ifndef CORRAL_LIBFUZZER
#include "SeedMutateDriver.h"

int main(int argc, char **argv) {
    const std::string auth = std::string("Authorization: Bearer ") + Token + "\r\n";
    const std::string host = "Host: 127.0.0.1:9000\r\n";
    const auto withBody = [&](const std::string &head, const std::string &body) {
        return head + host + auth + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
               body;
    };
    const std::vector<std::string> seeds = {
        "GET /stats HTTP/1.1\r\n" + host + auth + "\r\n",
        "GET /backends HTTP/1.1\r\n" + host + auth + "\r\n",
        withBody("POST /backends HTTP/1.1\r\n", R"({"address":"127.0.0.1","port":9,"weight":2})"),
        withBody("POST /backends HTTP/1.1\r\nContent-Type: text/plain\r\n", "127.0.0.1:8;backup"),
        "POST /backends/127.0.0.1:9/drain HTTP/1.1\r\n" + host + auth + "Content-Length: 0\r\n\r\n",
        "POST /backends/127.0.0.1%3A9/enable HTTP/1.1\r\n" + host + auth + "\r\n",
        "DELETE /backends/127.0.0.1:8 HTTP/1.1\r\n" + host + auth + "\r\n",
        "POST /backends HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
        "Content-Type: text/plain\r\nContent-Length: 11\r\n\r\n127.0.0.1:7",
        "POST /backends HTTP/1.1\r\n" + host + auth + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /stats HTTP/1.0\r\n\r\n",
    };
    constexpr char interesting[] = "\r\n :;,\t0/%-{}\"\x7f\x80\x00";
    return runSeedMutate(argc, argv, seeds,
                         {.name = "fuzz_admin_request",
                          .interesting = std::string(interesting, sizeof interesting - 1),
                          .batch = 200,
                          .minMutations = 0,
                          .maxMutations = 5,
                          .seed = 4242});
}
#endif
