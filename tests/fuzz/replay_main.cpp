// SPDX-License-Identifier: MIT
// Replays every file of the fuzz corpus (and any file named on the command line) through the
// same driver as the libFuzzer target: the corpus is a regression test in every build (g++ and
// clang, with and without sanitizers). Usage: fuzz_replay <dir-or-file>...
#include "reactor_driver.hpp"

#include <algorithm>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {
// A hang is a failure of its own: each input gets a watchdog that names the input and fails
// the test instead of letting the ctest timeout end it without saying which one. Inputs take
// about 30 ms (1 s under valgrind); the driver's own waits are bounded well below 60 s except
// in rare TCP persist states (reactor_driver.hpp, drain_into).
constexpr unsigned watchdog_seconds = 60;
char current[512] = "?";

extern "C" void on_alarm(int) {
    const char head[] = "fuzz_replay: HANG: input ";
    const char tail[] = " did not finish within the watchdog (an operation never completed)\n";
    [[maybe_unused]] auto a = ::write(2, head, sizeof head - 1);
    [[maybe_unused]] auto b = ::write(2, current, std::strlen(current));
    [[maybe_unused]] auto c = ::write(2, tail, sizeof tail - 1);
    ::_exit(1);
}
} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGALRM, on_alarm);
    const bool slow = std::getenv("EVIO_FUZZ_NO_WATCHDOG") != nullptr; // gdb sessions
    std::vector<std::filesystem::path> files;
    for (int i = 1; i < argc; ++i) {
        const std::filesystem::path p = argv[i];
        if (std::filesystem::is_directory(p)) {
            for (const auto& e : std::filesystem::directory_iterator(p))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.push_back(p);
        }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::fprintf(stderr, "fuzz_replay: no input files\n");
        return 1;
    }
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
        std::fprintf(stderr, "replay %s (%zu bytes)\n", f.filename().string().c_str(), bytes.size());
        std::snprintf(current, sizeof current, "%s", f.string().c_str());
        if (!slow) ::alarm(watchdog_seconds);
        evio::fuzz::run_one(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ::alarm(0);
    }
    std::printf("fuzz_replay: %zu inputs replayed, all invariants held\n", files.size());
    return 0;
}
