// The kernel choice table (runtime/src/kernel_choice.h): what `auto`, `bitserial`, `u8` and `lut` pick.
#include <gtest/gtest.h>

#include "../runtime/src/kernel_choice.h"

using namespace halibit;

namespace {

ConvAlgorithm pick(KernelChoice k, WeightEncoding e, int w, int a, Isa isa, int64_t macs, bool zero_padding = true,
                   int out_channels = 64, int64_t window = 64 * 9) {
    return choose_conv(k, {e, w, a, zero_padding, isa, macs, out_channels, window}).algorithm;
}

constexpr int64_t kResNetLayer = 115'605'504;  // ResNet-18 3x3 56x56x64
constexpr int64_t kFashionLayer = 7'225'344;   // Fashion-MNIST 3x3 28x28x32

}  // namespace

TEST(KernelChoice, BinaryLayersAlwaysRunBitserial) {
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::arm64, Isa::scalar})
        for (int64_t macs : {int64_t(1000), kFashionLayer, kResNetLayer})
            EXPECT_EQ(pick(KernelChoice::automatic, WeightEncoding::binary, 1, 1, isa, macs), ConvAlgorithm::bitserial);
}

TEST(KernelChoice, TwoBitLayersFollowTheIsaAndSize) {
    const WeightEncoding s = WeightEncoding::signed_;
    // avx512: two plane pairs on the bit-serial kernels from 16M MACs; four on conv_u8's VNNI.
    const WeightEncoding b = WeightEncoding::binary;
    EXPECT_EQ(pick(KernelChoice::automatic, b, 1, 2, Isa::avx512, kResNetLayer), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, b, 1, 2, Isa::avx512, kFashionLayer), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, b, 1, 2, Isa::avx512, kBitserialMinMacsAvx512), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, b, 1, 2, Isa::avx512, kBitserialMinMacsAvx512 - 1), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 1, Isa::avx512, kResNetLayer), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, b, 1, 4, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);
    // avx2: the table kernels, from 64 output channels per group and while their 16-bit sums fit.
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kResNetLayer), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kFashionLayer, true, 32, 32 * 9), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kFashionLayer, true, 64, 64 * 9), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kResNetLayer, true, 512, 21845), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::avx2, kResNetLayer, true, 512, 21846), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 1, 4, Isa::avx2, kResNetLayer, true, 512, 512 * 9), ConvAlgorithm::u8);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 2, 2, Isa::arm64, kFashionLayer), ConvAlgorithm::bitserial);
    EXPECT_EQ(pick(KernelChoice::automatic, s, 4, 4, Isa::avx512, kResNetLayer), ConvAlgorithm::u8);  // 16 pairs
}

TEST(KernelChoice, OverridesAndLimits) {
    const WeightEncoding s = WeightEncoding::signed_;
    // `bitserial` takes the bit-serial kernels wherever it applies, `u8` never does.
    EXPECT_EQ(pick(KernelChoice::bitserial, s, 4, 4, Isa::avx2, 1000), ConvAlgorithm::bitserial);
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

// Codebook layers: the table kernels on the level index's planes where they run (W <= 2, A <= 4,
// the sums inside 16 bits, not scalar) under bitserial, and under auto where they pay (avx2 at
// 64 output channels per group, arm64); the pairwise table under lut where its byte products hold
// the levels (|level| x the largest code inside int8); conv_u8 otherwise.
TEST(KernelChoice, CodebookLayersRunTheTablesWhereTheyPay) {
    const WeightEncoding cb = WeightEncoding::codebook;
    auto pick_cb = [&](KernelChoice k, int w, int a, int lo, int hi, bool zero_padding = true, Isa isa = Isa::avx2,
                       int64_t window = 64 * 9, int out_channels = 64) {
        ConvChoiceInput c{cb, w, a, zero_padding, isa, kResNetLayer, out_channels, window};
        c.min_weight = lo;
        c.max_weight = hi;
        return choose_conv(k, c).algorithm;
    };
    const auto bitserial = ConvAlgorithm::bitserial, u8 = ConvAlgorithm::u8, pairwise = ConvAlgorithm::pairwise;
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::arm64, Isa::arm64_dotprod, Isa::scalar}) {
        const bool pays = isa == Isa::avx2 || isa == Isa::arm64 || isa == Isa::arm64_dotprod;
        const auto tables = isa == Isa::scalar ? u8 : bitserial;
        for (KernelChoice k : {KernelChoice::automatic, KernelChoice::bitserial}) {
            const auto want = k == KernelChoice::bitserial || pays ? tables : u8;
            EXPECT_EQ(pick_cb(k, 2, 2, -128, 127, true, isa), want);
            EXPECT_EQ(pick_cb(k, 1, 4, -42, 42, true, isa), want);
            EXPECT_EQ(pick_cb(k, 2, 4, -5, 5, true, isa, 4369), want);  // 4369 x 15 = 65535
            EXPECT_EQ(pick_cb(k, 2, 4, -5, 5, true, isa, 4370), u8);
            EXPECT_EQ(pick_cb(k, 3, 2, -5, 5, true, isa), u8);          // 8 levels
            EXPECT_EQ(pick_cb(k, 2, 2, -5, 5, false, isa), u8);         // pad values
        }
        // Under auto on avx2, 32 output channels: conv_u8.
        EXPECT_EQ(pick_cb(KernelChoice::automatic, 2, 2, -5, 5, true, isa, 64 * 9, 32),
                  isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::scalar ? u8 : bitserial);
        EXPECT_EQ(pick_cb(KernelChoice::lut, 2, 2, -42, 42, true, isa), pairwise);
        EXPECT_EQ(pick_cb(KernelChoice::lut, 2, 2, -42, 43, true, isa), u8);  // 43 x 3 = 129
        EXPECT_EQ(pick_cb(KernelChoice::lut, 2, 2, -43, 40, true, isa), u8);  // -129
        EXPECT_EQ(pick_cb(KernelChoice::lut, 1, 1, -128, 127, true, isa), pairwise);
        EXPECT_EQ(pick_cb(KernelChoice::lut, 2, 3, -18, 18, true, isa), u8);  // the table takes A <= 2
        EXPECT_EQ(pick_cb(KernelChoice::lut, 3, 2, -5, 5, true, isa), u8);    // and 4 levels
        EXPECT_EQ(pick_cb(KernelChoice::lut, 2, 2, -5, 5, false, isa), u8);   // pad values
        EXPECT_EQ(pick_cb(KernelChoice::u8, 2, 2, -5, 5, true, isa), u8);
    }
}

// Within the bit-serial family: the table kernels where their 16-bit sums fit, on AVX2 and arm64
// always, on AVX-512 for bitserial (not bconv) layers of W2 x A2 or A4 with more than one tap.
TEST(KernelChoice, BitserialLayersRunTheTableKernelsWhereTheirSumsFit) {
    auto pick_kernel = [](Isa isa, bool bconv, int w, int taps, int64_t window, int a) {
        return choose_bitserial_kernel(isa, bconv, w, taps, window, a);
    };
    EXPECT_EQ(pick_kernel(Isa::avx2, true, 1, 9, 64 * 9, 1), BitserialKernel::table);
    EXPECT_EQ(pick_kernel(Isa::avx2, false, 4, 1, 4369, 4), BitserialKernel::table);     // 4369 x 15 = 65535
    EXPECT_EQ(pick_kernel(Isa::avx2, false, 4, 1, 4370, 4), BitserialKernel::popcount);  // 65550
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 2, 9, 512 * 9, 2), BitserialKernel::table);
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 2, 1, 512, 2), BitserialKernel::popcount);   // 1x1
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 3, 9, 512 * 9, 2), BitserialKernel::popcount);
    EXPECT_EQ(pick_kernel(Isa::avx512, true, 1, 9, 512 * 9, 1), BitserialKernel::popcount);  // bconv
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 1, 9, 512 * 9, 1), BitserialKernel::popcount);
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 1, 9, 512 * 9, 2), BitserialKernel::popcount);
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 2, 9, 512 * 9, 1), BitserialKernel::popcount);
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 2, 9, 64 * 9, 3), BitserialKernel::popcount);
    EXPECT_EQ(pick_kernel(Isa::avx512, false, 2, 9, 64 * 9, 4), BitserialKernel::table);
    for (Isa isa : {Isa::arm64, Isa::arm64_dotprod}) {
        EXPECT_EQ(pick_kernel(isa, true, 1, 9, 64 * 9, 1), BitserialKernel::table);
        EXPECT_EQ(pick_kernel(isa, false, 2, 1, 512, 2), BitserialKernel::table);
        EXPECT_EQ(pick_kernel(isa, false, 4, 1, 4370, 4), BitserialKernel::popcount);
    }
    EXPECT_EQ(pick_kernel(Isa::scalar, false, 1, 9, 64 * 9, 1), BitserialKernel::popcount);
}

// A forced family that cannot take a layer says why (the session's notes).
TEST(KernelChoice, ForcedChoicesThatCannotRunSayWhy) {
    auto refused = [](KernelChoice k, WeightEncoding e, int w, int a, bool zero_padding = true, int lo = -128, int hi = 127) {
        ConvChoiceInput c{e, w, a, zero_padding, Isa::avx2, kResNetLayer, 64, 64 * 9};
        c.min_weight = lo;
        c.max_weight = hi;
        const ConvChoice chosen = choose_conv(k, c);
        EXPECT_EQ(chosen.refused.empty(), chosen.algorithm != ConvAlgorithm::u8 || k == KernelChoice::u8 ||
                                              k == KernelChoice::automatic);
        return chosen.refused;
    };
    const auto s = WeightEncoding::signed_, cb = WeightEncoding::codebook;
    EXPECT_EQ(refused(KernelChoice::bitserial, s, 2, 2, false), "its input is padded with non-zero codes");
    EXPECT_EQ(refused(KernelChoice::bitserial, s, 8, 2), "its w8 weights are wider than 4 bits");
    EXPECT_EQ(refused(KernelChoice::bitserial, s, 2, 8), "its a8 activations are wider than 4 bits");
    EXPECT_EQ(refused(KernelChoice::lut, s, 2, 8), "");
    EXPECT_EQ(refused(KernelChoice::bitserial, cb, 2, 2, true, -5, 5), "");
    EXPECT_EQ(refused(KernelChoice::bitserial, cb, 3, 2, true, -5, 5),
              "the table kernels take codebooks of W <= 2 on A <= 4, not w3a2");
    EXPECT_EQ(refused(KernelChoice::lut, cb, 2, 3, true, -5, 5),
              "the pairwise table takes codebooks of W <= 2 on A <= 2, not w2a3");
    EXPECT_EQ(refused(KernelChoice::lut, cb, 2, 2, true, -43, 5), "a level times the largest code leaves int8");
    EXPECT_EQ(refused(KernelChoice::automatic, s, 8, 8, false), "");
    EXPECT_EQ(refused(KernelChoice::u8, s, 2, 2), "");
}
