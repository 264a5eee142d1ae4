// End-to-end golden tests: every model under HALIBIT_GOLDEN_DIR (one directory per model with
// model.halibit, input.npy and logits.npy written by `python3 -m halibit.golden`, the integer
// simulator) must give exactly the simulator's logits, with every kernel choice, on the ISA of
// HALIBIT_ISA.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "halibit/error.h"
#include "halibit/npy.h"
#include "halibit/session.h"

namespace halibit {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> golden_models() {
    std::vector<std::string> dirs;
    const char* root = std::getenv("HALIBIT_GOLDEN_DIR");
    if (!root || !fs::is_directory(root)) return dirs;
    // HALIBIT_GOLDEN_ONLY: comma-separated name prefixes (the arm64 stage runs the small models under qemu).
    std::vector<std::string> prefixes;
    if (const char* only = std::getenv("HALIBIT_GOLDEN_ONLY")) {
        std::string list = only;
        for (size_t begin = 0; begin <= list.size();) {
            const size_t end = std::min(list.find(',', begin), list.size());
            if (end > begin) prefixes.push_back(list.substr(begin, end - begin));
            begin = end + 1;
        }
    }
    auto selected = [&](const std::string& name) {
        if (prefixes.empty()) return true;
        for (const auto& p : prefixes)
            if (name.rfind(p, 0) == 0) return true;
        return false;
    };
    for (const auto& e : fs::directory_iterator(root)) {
        const std::string name = e.path().filename().string();
        if (fs::exists(e.path() / "model.halibit") && selected(name)) dirs.push_back(name);
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

Isa test_isa() {
    const char* name = std::getenv("HALIBIT_ISA");
    return parse_isa(name ? name : "auto");
}

class Golden : public ::testing::TestWithParam<std::tuple<std::string, KernelChoice>> {};

TEST(GoldenSet, IsPresent) {
    // The fixture generates them; an empty set would make the suite pass vacuously.
    ASSERT_NE(std::getenv("HALIBIT_GOLDEN_DIR"), nullptr) << "HALIBIT_GOLDEN_DIR is not set";
    EXPECT_GE(golden_models().size(), std::getenv("HALIBIT_GOLDEN_ONLY") ? 7u : 9u)
        << "expected the small ResNet precisions, the fx-exported VGG and ResNet-20 and ResNet-18 in "
                                          << std::getenv("HALIBIT_GOLDEN_DIR");
}

// Compact model files: ResNet-18 (8-bit stem and fc) with bit-packed weights.
TEST(GoldenSet, ResNet18FilesAreCompact) {
    const char* root = std::getenv("HALIBIT_GOLDEN_DIR");  // the whole set, whatever HALIBIT_GOLDEN_ONLY runs
    ASSERT_NE(root, nullptr) << "HALIBIT_GOLDEN_DIR is not set";
    for (const auto& [name, limit] : {std::pair<const char*, uintmax_t>{"resnet18_w1a1", 2'200'000}, {"resnet18_w2a2", 3'600'000}}) {
        const fs::path file = fs::path(root) / name / "model.halibit";
        ASSERT_TRUE(fs::exists(file)) << file;
        EXPECT_LE(fs::file_size(file), limit) << file;
        EXPECT_EQ(Model::load(file.string())->format_version(), 2) << file;
    }
}

TEST_P(Golden, LogitsEqualSimulator) {
    const Isa isa = test_isa();
    if (!isa_available(isa)) GTEST_SKIP() << "this CPU (or build) has no " << isa_name(isa);
    const fs::path dir = fs::path(std::getenv("HALIBIT_GOLDEN_DIR")) / std::get<0>(GetParam());
    auto model = Model::load((dir / "model.halibit").string());
    const NpyArray input = read_npy((dir / "input.npy").string());
    const NpyArray expected = read_npy((dir / "logits.npy").string());
    ASSERT_EQ(input.dtype, "u1");
    ASSERT_EQ(expected.dtype, "i4");
    ASSERT_EQ(input.shape.size(), 4u);
    const int batch = int(input.shape[0]);
    ASSERT_EQ(expected.shape, (std::vector<int64_t>{batch, model->output().c}));

    SessionOptions options;
    options.isa = isa;
    options.kernels = std::get<1>(GetParam());
    Session session(model, options);
    const std::vector<int32_t> logits = session.run(input.data.data(), batch);
    ASSERT_EQ(logits.size(), size_t(expected.elements()));
    std::vector<int32_t> want(logits.size());
    std::memcpy(want.data(), expected.data.data(), want.size() * 4);
    int mismatches = 0;
    for (size_t i = 0; i < want.size(); i++) mismatches += logits[i] != want[i];
    EXPECT_EQ(mismatches, 0) << "first logits: " << logits[0] << " vs " << want[0];
    // A second run on the same session (reused arena) gives the same answer.
    EXPECT_EQ(session.run(input.data.data(), batch), logits);
}

INSTANTIATE_TEST_SUITE_P(Models, Golden,
                         ::testing::Combine(::testing::ValuesIn(golden_models()),
                                            ::testing::Values(KernelChoice::automatic, KernelChoice::bitserial,
                                                              KernelChoice::u8, KernelChoice::lut)),
                         [](const auto& info) {
                             std::string n = std::get<0>(info.param) + "_" + kernel_choice_name(std::get<1>(info.param));
                             for (char& c : n)
                                 if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

}  // namespace
}  // namespace halibit
