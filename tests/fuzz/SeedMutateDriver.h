#pragma once

// The fuzz targets' stand-in for libFuzzer when the compiler has none (g++): runs seed inputs
// plus random byte mutations of them through LLVMFuzzerTestOneInput for `--seconds N`
// (default 5), with a fixed random seed so a crash reproduces.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct SeedMutateOptions {
    const char *name;        ///< printed with the count of inputs run
    std::string interesting; ///< bytes worth inserting (delimiters, digits, controls)
    int batch = 1000;        ///< inputs between two clock reads
    int minMutations = 1;    ///< per input
    int maxMutations = 8;    ///< per input
    std::uint64_t seed = 12345;
};

inline int runSeedMutate(int argc, char **argv, const std::vector<std::string> &seeds,
                         const SeedMutateOptions &options) {
    int seconds = 5;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    std::mt19937_64 rng(options.seed);
    const std::string &interesting = options.interesting;
    const auto pick = [&] { return interesting[rng() % interesting.size()]; };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    std::uint64_t runs = 0;
    const int spread = options.maxMutations - options.minMutations + 1;
    while (std::chrono::steady_clock::now() < deadline) {
        for (int batch = 0; batch < options.batch; ++batch, ++runs) {
            std::string input = seeds[rng() % seeds.size()];
            const int mutations = options.minMutations + int(rng() % unsigned(spread));
            for (int m = 0; m < mutations && !input.empty(); ++m) {
                const size_t at = rng() % input.size();
                switch (rng() % 5) {
                case 0:
                    input[at] = char(rng());
                    break;
                case 1:
                    input[at] = pick();
                    break;
                case 2:
                    input.erase(at, 1 + rng() % 4);
                    break;
                case 3:
                    input.insert(at, 1 + rng() % 3, pick());
                    break;
                default:
                    input.insert(at, input.substr(rng() % input.size(), rng() % 16));
                    break;
                }
            }
            // A heap copy of exactly the input's size, so ASan sees any overread.
            std::vector<std::uint8_t> exact(input.begin(), input.end());
            LLVMFuzzerTestOneInput(exact.data(), exact.size());
        }
    }
    std::printf("%s: %llu inputs, no crash\n", options.name, static_cast<unsigned long long>(runs));
    return 0;
}
