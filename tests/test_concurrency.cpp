// One Model shared by several threads, each with its own Session (its own ISA and thread count),
// running different inputs at the same time: every output equals the single-threaded one. Built as a
// plain test here; issue 6's ThreadSanitizer job runs the same binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "halibit/error.h"
#include "halibit/npy.h"
#include "halibit/session.h"

namespace halibit {
namespace {

namespace fs = std::filesystem;

TEST(Concurrency, SharedModelSeparateSessions) {
    const char* root = std::getenv("HALIBIT_GOLDEN_DIR");
    ASSERT_NE(root, nullptr) << "HALIBIT_GOLDEN_DIR is not set";
    const fs::path dir = fs::path(root) / "small_resnet_w2a2";
    auto model = Model::load((dir / "model.halibit").string());
    const NpyArray golden = read_npy((dir / "input.npy").string());
    const size_t image = size_t(model->input().elements());

    // Eight different inputs: the golden images, shifted and inverted.
    std::vector<std::vector<uint8_t>> inputs;
    for (int k = 0; k < 8; k++) {
        std::vector<uint8_t> x(golden.data.begin(), golden.data.begin() + image);
        for (size_t i = 0; i < x.size(); i++) x[i] = uint8_t(k % 2 ? 255 - x[(i + 37 * k) % x.size()] : x[(i + 11 * k) % x.size()]);
        inputs.push_back(std::move(x));
    }
    std::vector<Isa> isas;
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::scalar, Isa::arm64, Isa::arm64_dotprod})
        if (isa_available(isa)) isas.push_back(isa);
    ASSERT_FALSE(isas.empty());

    std::vector<std::vector<int32_t>> expected;
    {
        Session single(model);
        for (const auto& x : inputs) expected.push_back(single.run(x.data(), 1));
    }

    constexpr int kThreads = 4, kRounds = 20;
    std::vector<int> mismatches(kThreads, 0);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++)
        threads.emplace_back([&, t] {
            try {
                SessionOptions o;
                o.isa = isas[t % isas.size()];
                o.kernels = t % 2 ? KernelChoice::u8 : KernelChoice::automatic;
                // 1, 2 and 3 threads: sessions of several threads contend for the one pool (the
                // loser of a loop runs it alone) and grow it.
                o.threads = 1 + t % 3;
                Session session(model, o);
                for (int r = 0; r < kRounds; r++) {
                    const size_t k = size_t(t + r) % inputs.size();
                    mismatches[t] += session.run(inputs[k].data(), 1) != expected[k];
                }
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; t++) {
        EXPECT_EQ(errors[t], "") << "thread " << t;
        EXPECT_EQ(mismatches[t], 0) << "thread " << t << " (isa " << isa_name(isas[t % isas.size()]) << ")";
    }
}

}  // namespace
}  // namespace halibit
