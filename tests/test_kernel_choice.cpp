// The kernel choice table (runtime/src/kernel_choice.h): what `auto`, `bitserial`, `u8` and `lut` pick.
#include <gtest/gtest.h>

#include "../runtime/src/kernel_choice.h"

using namespace halibit;

namespace {

ConvAlgorithm pick(KernelChoice k, WeightEncoding e, int w, int a, Isa isa, int64_t macs, bool zero_padding = true,
                   int out_channels = 64, int64_t window = 64 * 9) {
    return choose_conv_algorithm(k, {e, w, a, zero_padding, isa, macs, out_channels, window});
}

constexpr int64_t kResNetLayer = 115'605'504;  // ResNet-18 3x3 56x56x64
constexpr int64_t kFashionLayer = 7'225'344;   // Fashion-MNIST 3x3 28x28x32

}  // namespace

TEST(KernelChoice, BinaryLayersAlwaysRunPopcount) {
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::arm64, Isa::scalar})
        for (int64_t macs : {int64_t(1000), kFashionLayer, kResNetLayer})
            EXPECT_EQ(pick(KernelChoice::automatic, WeightEncoding::binary, 1, 1, isa, macs), ConvAlgorithm::popcount);
}

TEST(KernelChoice, TwoBitLayersFollowTheIsaAndSize) {
    const WeightEncoding s = WeightEncoding::signed_;
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx512, kResNetLayer), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx512, kFashionLayer), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx512, kPopcountMinMacsAvx512), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx512, kPopcountMinMacsAvx512 - 1), ConvAlgorithm::u8);
    // avx2: the table kernels, from 64 output channels per group and while their 16-bit sums fit.
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kResNetLayer), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kFashionLayer, true, 32, 32 * 9), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kFashionLayer, true, 64, 64 * 9), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kResNetLayer, true, 512, 21845), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kResNetLayer, true, 512, 21846), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 1, 4, Isa::avx2, kResNetLayer, true, 512, 512 * 9), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::arm64, kFashionLayer), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 4, 4, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);  // 16 pairs
}

TEST(KernelChoice, OverridesAndLimits) {
    const WeightEncoding s = WeightEncoding::signed_;
    // `bitserial` takes popcount wherever it applies, `u8` never does.
    EXPECT_EQ(pick(KernelChoice::bitserial, s, 4, 4, Isa::avx2, 1000), ConvAlgorithm::popcount);
    EXPECT_EQ(pick(KernelChoice::u8, WeightEncoding::binary, 1, 1, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);
    // Beyond 4 bits, or with non-zero padding codes, only conv_u8 applies.
    EXPECT_EQ(pick(KernelChoice::bitserial, s, 8, 8, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::bitserial, s, 2, 8, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::bitserial, WeightEncoding::binary, 1, 1, Isa::avx512, kResNetLayer, false),
              ConvAlgorithm::u8);
}

TEST(KernelChoice, LutRunsWhereItApplies) {
    const auto s = WeightEncoding::signed_;
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::arm64, Isa::scalar}) {
        EXPECT_EQ(pick(KernelChoice::lut, s, 2, 2, isa, kResNetLayer), ConvAlgorithm::lut);
        EXPECT_EQ(pick(KernelChoice::lut, s, 4, 8, isa, kFashionLayer), ConvAlgorithm::lut);
        EXPECT_EQ(pick(KernelChoice::lut, WeightEncoding::binary, 1, 1, isa, kResNetLayer), ConvAlgorithm::lut);
        EXPECT_EQ(pick(KernelChoice::lut, s, 8, 8, isa, kResNetLayer), ConvAlgorithm::u8);  // W8: conv_u8
        EXPECT_EQ(pick(KernelChoice::lut, s, 2, 2, isa, kResNetLayer, false), ConvAlgorithm::u8);  // pad values
        // auto never picks it: it is not the fastest kernel on any benchmark layer.
        EXPECT_NE(pick(KernelChoice::automatic, s, 2, 2, isa, kResNetLayer), ConvAlgorithm::lut);
        EXPECT_NE(pick(KernelChoice::automatic, s, 4, 8, isa, kResNetLayer), ConvAlgorithm::lut);
    }
}

// Codebook layers: the pairwise table under auto and lut where its byte products hold the levels
// (|level| x the largest code inside int8), conv_u8 otherwise.
TEST(KernelChoice, CodebookLayersRunThePairwiseTable) {
    const WeightEncoding cb = WeightEncoding::codebook;
    auto pick_cb = [&](KernelChoice k, int w, int a, int lo, int hi, bool zero_padding = true) {
        ConvChoiceInput c{cb, w, a, zero_padding, Isa::avx2, kResNetLayer, 64, 64 * 9};
        c.min_weight = lo;
        c.max_weight = hi;
        return choose_conv_algorithm(k, c);
    };
    for (KernelChoice k : {KernelChoice::automatic, KernelChoice::lut}) {
        EXPECT_EQ(pick_cb(k, 2, 2, -42, 42), ConvAlgorithm::pairwise);
        EXPECT_EQ(pick_cb(k, 2, 2, -42, 43), ConvAlgorithm::u8);   // 43 x 3 = 129
        EXPECT_EQ(pick_cb(k, 2, 2, -43, 40), ConvAlgorithm::u8);   // -129
        EXPECT_EQ(pick_cb(k, 1, 1, -128, 127), ConvAlgorithm::pairwise);
        EXPECT_EQ(pick_cb(k, 2, 3, -18, 18), ConvAlgorithm::u8);   // the table takes A <= 2
        EXPECT_EQ(pick_cb(k, 3, 2, -5, 5), ConvAlgorithm::u8);     // and 4 levels
        EXPECT_EQ(pick_cb(k, 2, 2, -5, 5, false), ConvAlgorithm::u8);  // pad values
    }
    EXPECT_EQ(pick_cb(KernelChoice::u8, 2, 2, -5, 5), ConvAlgorithm::u8);
    EXPECT_EQ(pick_cb(KernelChoice::bitserial, 2, 2, -5, 5), ConvAlgorithm::u8);  // no bit planes
}
