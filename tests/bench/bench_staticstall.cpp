// How long the proxy's event loop stalls while it serves a large file that is not in the page
// cache, with the read-ahead offloaded to the FileReaderPool and without (offloadMinBytes 0):
// one client downloads the file while another times small static requests on the same loop.
//
//   build/tests/bench_staticstall [DIR] [MIB]   (DIR on a real disk, default /var/tmp; 64 MiB)
//
// Run as root to drop the page cache before each round (echo 1 > /proc/sys/vm/drop_caches);
// otherwise the file is warm and both rounds show the same small figures.

#include "helpers/HttpClient.h"
#include "proxy/ProxyEngine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <random>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace corral;
using Clock = std::chrono::steady_clock;

namespace {

bool dropPageCache() {
    ::sync();
    const int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0) return false;
    const bool ok = ::write(fd, "1", 1) == 1;
    ::close(fd);
    return ok;
}

void round(const std::string &dir, int64_t offloadMinBytes, size_t size) {
    ProxyConfig config;
    config.threads = 1; // one loop: its stall is what the small requests see
    Backend unused;
    unused.address = QStringLiteral("127.0.0.1");
    unused.port = 9;
    config.backends.append(unused);
    config.staticFiles.root = QString::fromStdString(dir);
    config.staticFiles.offloadMinBytes = offloadMinBytes;
    const bool cold = dropPageCache();
    ProxyEngine engine;
    if (auto r = engine.start(config); !r) {
        std::fprintf(stderr, "%s\n", qPrintable(r.error()));
        return;
    }
    corral::test::HttpClient small(engine.port());
    small.get("/stall-small.txt"); // the small file itself must not be what is cold
    std::atomic<bool> done{false};
    double downloadMs = 0;
    size_t got = 0;
    std::thread big([&] {
        const auto start = Clock::now();
        corral::test::HttpClient client(engine.port(), 60000);
        const corral::test::HttpResponse r = client.get("/stall-big.bin");
        got = r.body.size();
        downloadMs = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        done = true;
    });
    std::vector<double> latencies;
    while (!done) {
        const auto start = Clock::now();
        if (small.get("/stall-small.txt").status != 200) break;
        latencies.push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    big.join();
    std::sort(latencies.begin(), latencies.end());
    const auto over = [&](double us) {
        return size_t(latencies.end() - std::upper_bound(latencies.begin(), latencies.end(), us));
    };
    const auto at = [&](double q) {
        return latencies.empty() ? 0.0 : latencies[size_t(q * double(latencies.size() - 1))];
    };
    std::printf("%-22s %s  %3zu MiB in %7.1f ms  small requests meanwhile: %6zu  p50 %7.0f us  "
                "p99 %7.0f us  max %8.0f us  over 2 ms: %4zu  over 5 ms: %3zu%s\n",
                offloadMinBytes > 0 ? "offload (1 MiB+)" : "no offload (loop reads)",
                cold ? "cold" : "WARM", got >> 20, downloadMs, latencies.size(), at(0.5), at(0.99),
                latencies.empty() ? 0.0 : latencies.back(), over(2000), over(5000),
                got == size ? "" : "  SHORT BODY");
}

} // namespace

int main(int argc, char **argv) {
    const std::string base = argc > 1 ? argv[1] : "/var/tmp";
    const size_t mib = argc > 2 ? size_t(std::stoul(argv[2])) : 64;
    const std::string dir = base + "/corral-staticstall-" + std::to_string(::getpid());
    ::mkdir(dir.c_str(), 0755);
    // Random bytes: nothing sparse or compressible for the disk to skip.
    std::vector<char> chunk(1 << 20);
    std::mt19937_64 rng(42);
    for (auto &c : chunk)
        c = char(rng());
    const int fd = ::open((dir + "/stall-big.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (size_t i = 0; i < mib; ++i)
        if (::write(fd, chunk.data(), chunk.size()) != ssize_t(chunk.size())) return 1;
    ::fsync(fd);
    ::close(fd);
    const int s = ::open((dir + "/stall-small.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (::write(s, "small\n", 6) != 6) return 1;
    ::close(s);
    for (int i = 0; i < 3; ++i) {
        round(dir, 0, mib << 20);
        round(dir, 1 << 20, mib << 20);
    }
    ::unlink((dir + "/stall-big.bin").c_str());
    ::unlink((dir + "/stall-small.txt").c_str());
    ::rmdir(dir.c_str());
    return 0;
}
