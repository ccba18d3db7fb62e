// Fuzz target for the HTTP toolkit, both directions: head scanning, request and response head
// parsing, chunked decoding and the load generator's ResponseReader must never crash, read
// out of bounds or loop, whatever the bytes a client or a backend sends.
//
// With clang it is a libFuzzer target (-fsanitize=fuzzer). With other compilers the same
// entry point is driven by the small main() below: seed requests plus random mutations of
// them for a few seconds, so g++ CI builds still exercise it (under ASan in the sanitizer run).

#include "http/ChunkedDecoder.h"
#include "http/HttpParser.h"
#include "http/ResponseReader.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace corral::http;

// The same bytes as the load generator reads them: responses one after another on one
// connection, arriving in uneven pieces into a buffer it consumes from the front.
static void readAsClient(const char *p, size_t size) {
    static thread_local ResponseReader reader(4096, 100);
    static thread_local std::string buffer;
    reader.reset(size % 3 == 0);
    buffer.clear();
    size_t at = 0;
    while (at < size) {
        const size_t piece = std::min<size_t>(size - at, 1 + (at % 11));
        buffer.append(p + at, piece);
        at += piece;
        size_t consumed = 0;
        const ResponseReader::Progress progress =
            reader.feed(buffer.data(), buffer.size(), consumed);
        if (consumed > buffer.size()) std::abort();
        buffer.erase(0, consumed);
        if (progress == ResponseReader::Progress::Error) return;
        if (progress == ResponseReader::Progress::Done) {
            // A final status, never an interim or a switch.
            if (reader.status() < 200 || reader.status() > 999) std::abort();
            reader.reset(false);
        }
    }
    if (reader.endOfInput() == ResponseReader::Progress::Done && reader.status() < 200)
        std::abort();
}

// As the affinity check's probe reads one answer (core/affinity/DirectFetch.cpp): with an
// observer taking the head and the de-chunked payload, and a 101 accepted when asked for. The
// payload never exceeds the bytes fed, and the observer sees views into the bytes it was fed.
static void readAsProbe(const char *p, size_t size) {
    static thread_local ResponseReader reader(4096, 100);
    static thread_local std::string buffer;
    const bool upgrade = size % 5 == 0;
    size_t payload = 0;
    int headStatus = 0;
    reader.setObserver({
        [&](const ResponseHead &head) {
            headStatus = head.status;
            for (const Header &h : head.headers)
                if (h.name.data() < buffer.data() ||
                    h.value.data() + h.value.size() > buffer.data() + buffer.size())
                    std::abort();
        },
        [&](const char *data, size_t length) {
            if (data < buffer.data() || data + length > buffer.data() + buffer.size()) std::abort();
            payload += length;
        },
    });
    reader.reset(size % 3 == 0, upgrade);
    buffer.clear();
    size_t at = 0;
    ResponseReader::Progress progress = ResponseReader::Progress::NeedMore;
    while (at < size && progress == ResponseReader::Progress::NeedMore) {
        const size_t piece = std::min<size_t>(size - at, 1 + (at % 13));
        buffer.append(p + at, piece);
        at += piece;
        size_t consumed = 0;
        progress = reader.feed(buffer.data(), buffer.size(), consumed);
        if (consumed > buffer.size()) std::abort();
        buffer.erase(0, consumed);
    }
    if (progress == ResponseReader::Progress::NeedMore) progress = reader.endOfInput();
    if (payload > size) std::abort();
    if (progress == ResponseReader::Progress::Done) {
        if (reader.status() != headStatus) std::abort();
        if (reader.status() == 101 ? !upgrade : reader.status() < 200) std::abort();
    }
    reader.setObserver({});
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = reinterpret_cast<const char *>(data);
    static thread_local RequestHead request;
    HeadLimits limits;
    limits.maxHeaderBytes = 8192;
    // Feed the scanner in two steps, as the network would.
    HeadScanner scanner;
    long head = scanner.scan(p, size / 2);
    if (head == 0) head = scanner.scan(p, size);
    if (head > 0) {
        if (parseRequest(p, size_t(head), limits, request) == 0) {
            for (const Header &h : request.headers)
                (void)request.isHopByHop(h);
            // The authority of an absolute-form target becomes the Host: never empty.
            if (request.absoluteForm && request.host.empty()) std::abort();
            (void)cookieValue(request.cookie, "CORRALID");
        }
        // The rest as a chunked body, in uneven pieces.
        ChunkedDecoder chunks;
        size_t at = size_t(head);
        while (at < size && !chunks.done()) {
            const size_t piece = std::min<size_t>(size - at, 1 + (at % 7));
            const long used = chunks.feed(p + at, piece);
            if (used < 0) break;
            if (size_t(used) > piece) std::abort();
            at += size_t(used);
            if (size_t(used) < piece && !chunks.done()) std::abort();
        }
    }
    // The same bytes as a backend's answer: head, then its body by the framing it declares.
    static thread_local ResponseHead response;
    HeadScanner responseScanner;
    long responseHead = responseScanner.scan(p, size / 3);
    if (responseHead == 0) responseHead = responseScanner.scan(p, size);
    if (responseHead > 0) {
        const bool toHead = size % 2 == 1;
        const int rc = parseResponse(p, size_t(responseHead), toHead, 100, response);
        if (rc != 0 && rc != ResponseMalformed && rc != ResponseUnsupportedCoding) std::abort();
        if (rc == 0) {
            for (const Header &h : response.headers)
                (void)response.isHopByHop(h);
            // Invariants the proxy relies on when it re-frames the response.
            if (response.body == BodyKind::Chunked && !response.framedByTransferEncoding)
                std::abort();
            if (toHead && response.body != BodyKind::None) std::abort();
            if (response.status < 100 || response.status > 999) std::abort();
            if (response.body == BodyKind::Chunked) {
                ChunkedDecoder chunks;
                size_t at = size_t(responseHead);
                while (at < size && !chunks.done()) {
                    const size_t piece = std::min<size_t>(size - at, 1 + (at % 5));
                    const long used = chunks.feed(p + at, piece);
                    if (used < 0) break;
                    if (size_t(used) > piece) std::abort();
                    if (size_t(used) < piece && !chunks.done()) std::abort();
                    at += size_t(used);
                }
            }
        }
    }
    readAsClient(p, size);
    readAsProbe(p, size);
    return 0;
}

#ifndef CORRAL_LIBFUZZER
#include "SeedMutateDriver.h"

int main(int argc, char **argv) {
    const std::vector<std::string> seeds = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        "GET /a HTTP/1.0\r\nConnection: keep-alive, X-Y\r\nX-Y: 1\r\nCookie: CORRALID=ab\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.0 200 OK\r\nConnection: keep-alive, content-length\r\nContent-Length: 1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\r\n"
        "a;x=y\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
        "GET http://a.example:80/x?y HTTP/1.1\r\nHost: b\r\nConnection: host, cookie\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\n\r\n",
    };
    constexpr char interesting[] = "\r\n :;,\t0fF-\x7f\x80\x00";
    return runSeedMutate(argc, argv, seeds,
                         {.name = "fuzz_request_parser (requests and responses)",
                          .interesting = std::string(interesting, sizeof interesting - 1)});
}
#endif
