// bitserial_conv against the reference convolution, bit for bit: every (W, A) in W1..4 x A1..4,
// every weight encoding, the shape sweep of conv_cases.h, and all three output kinds.
#include <algorithm>
#include <cstdlib>

#include "conv_cases.h"

namespace halibit::test {
namespace {

struct BitWidths {
    int w, a;
    WeightEncoding e;
};

std::vector<BitWidths> all_bit_widths() {
    std::vector<BitWidths> v;
    for (int w = 1; w <= 4; w++)
        for (int a = 1; a <= 4; a++)
            for (auto e : {WeightEncoding::binary, WeightEncoding::signed_, WeightEncoding::odd})
                if (encoding_supports_bits(e, w)) v.push_back({w, a, e});
    return v;
}

// The weight whose bit planes are all ones (the largest table entries): -1 for binary and
// signed, 2^W - 1 for odd.
int8_t all_ones_weight(BitWidths b) { return b.e == WeightEncoding::odd ? int8_t((1 << b.w) - 1) : int8_t(-1); }

// The int32, codes and packed outputs of one convolution against the reference's.
void check_outputs(const PackedActivations& in, const PackedWeights& pw, ConvGeometry geo,
                   const ref::Tensor4<int32_t>& expected, BitWidths b, int groups) {
    std::vector<int32_t> acc(expected.size(), -7);
    bitserial_conv(in, pw, geo, acc.data());
    EXPECT_EQ(first_mismatch(expected.data, acc.data(), acc.size()), "") << "int32 output";

    const int out_bits = 1 + (b.w + b.a) % 4;
    auto rq = random_requantization(expected, out_bits);
    auto expected_codes = requantize_all(expected, rq);
    std::vector<uint8_t> codes_out(expected.size(), 0xEE);
    bitserial_conv(in, pw, geo, rq, codes_out.data());
    EXPECT_EQ(first_mismatch(expected_codes.data, codes_out.data(), codes_out.size()), "") << "codes output";

    PackedActivations packed_out;
    bitserial_conv(in, pw, geo, rq, packed_out, /*out_border=*/1);
    auto expected_packed = ref::pack_bitplanes(expected_codes, out_bits, groups);
    auto image = packed_image(packed_out);
    ASSERT_EQ(image.size(), expected_packed.size());
    EXPECT_EQ(first_mismatch(expected_packed, image.data(), image.size()), "") << "packed output";
    EXPECT_TRUE(border_is_zero(packed_out));
}

// Runs one case through all three output kinds on both implementations. `extreme`: every code
// the largest and every weight all_ones_weight, so that every byte accumulator of the table
// kernels reaches its bound (a chunk one step too long overflows).
void check_case(const ConvCase& cc, BitWidths b, bool extreme = false) {
    SCOPED_TRACE(cc.name() + " w" + std::to_string(b.w) + "a" + std::to_string(b.a) + " " + encoding_name(b.e) +
                 (extreme ? " extreme" : ""));
    const int cin_g = cc.cin / cc.groups;
    auto codes = random_codes(cc.n, cc.h, cc.w, cc.cin, b.a);
    auto weights = random_weights(cc.cout, cc.kernel, cin_g, b.e, b.w);
    if (extreme) {
        std::fill(codes.data.begin(), codes.data.end(), uint8_t((1 << b.a) - 1));
        std::fill(weights.data.begin(), weights.data.end(), all_ones_weight(b));
    }
    auto expected = ref::conv(codes, weights, {cc.stride, cc.pad, cc.groups});

    PackedActivations in;
    pack_activations(codes.data.data(), {cc.n, cc.h, cc.w, cc.cin}, b.a, cc.groups, in, cc.pad);
    auto pw = pack_weights(weights.data.data(), cc.cout, cc.kernel, cc.kernel, cin_g, cc.groups, b.e, b.w);
    const ConvGeometry geo{cc.stride, cc.pad};

    for_each_bitserial_kernel([&] { check_outputs(in, pw, geo, expected, b, cc.groups); });
}

class BitserialConv : public ::testing::TestWithParam<BitWidths> {
protected:
    void SetUp() override { use_test_isa(); }
};

TEST_P(BitserialConv, MatchesReferenceOverShapeSweep) {
    for (const ConvCase& cc : conv_sweep()) check_case(cc, GetParam());
}

// The largest sums a window can make, through the table kernels' chunks and 16-bit sums
// (3x3x128 at A4 is 17280 per plane), with channel tails.
TEST_P(BitserialConv, LargestCodesAndAllOnesWeights) {
    check_case({1, 6, 7, 128, 70, 3, 1, 1, 1}, GetParam(), true);
    check_case({1, 5, 5, 64, 64, 3, 2, 1, 1}, GetParam(), true);
}

INSTANTIATE_TEST_SUITE_P(AllBitWidths, BitserialConv, ::testing::ValuesIn(all_bit_widths()),
                         [](const auto& info) {
                             return "w" + std::to_string(info.param.w) + "a" + std::to_string(info.param.a) + "_" +
                                    encoding_name(info.param.e);
                         });

class BitserialConvChannels : public ::testing::TestWithParam<BitWidths> {
protected:
    void SetUp() override { use_test_isa(); }
};

// Channel tails on both sides, at the widths the kernels specialize for and one they do not.
TEST_P(BitserialConvChannels, ChannelCountsInAndOut) {
    for (int c : channel_sweep()) {
        check_case({1, 4, 5, c, 17, 3, 1, 1, 1}, GetParam());
        check_case({1, 3, 3, 9, c, 1, 1, 0, 1}, GetParam());
    }
}

INSTANTIATE_TEST_SUITE_P(Specialized, BitserialConvChannels,
                         ::testing::Values(BitWidths{2, 2, WeightEncoding::signed_}, BitWidths{1, 1, WeightEncoding::binary},
                                           BitWidths{4, 4, WeightEncoding::signed_}, BitWidths{3, 2, WeightEncoding::odd}),
                         [](const auto& info) {
                             return "w" + std::to_string(info.param.w) + "a" + std::to_string(info.param.a) + "_" +
                                    encoding_name(info.param.e);
                         });

// Sums at the int16 edge (window x largest code x the encoding's coefficients just inside and
// just outside 32766: 3 x 3 x 404 and x 405 channels at scale 3 x 3), and output channels that
// end inside the first and the second 32 of a 64-channel block.
TEST(BitserialConvTableEpilogue, SumsJustInsideAndOutsideInt16) {
    use_test_isa();
    for (BitWidths b : {BitWidths{2, 2, WeightEncoding::signed_}, BitWidths{1, 2, WeightEncoding::binary},
                        BitWidths{2, 1, WeightEncoding::signed_}})
        for (int cin : {404, 405})
            for (int cout : {70, 40, 64}) check_case({1, 5, 6, cin, cout, 3, 1, 1, 1}, b);
}

// A small W2A2 layer (signed weights, 3x3, 20 -> 24 channels) for output stages at the edges:
// mismatch() is "" when bitserial_conv's codes under `rq` equal the reference's.
struct ThresholdLayer {
    static constexpr int n = 1, h = 5, w = 6, cin = 20, cout = 24, k = 3;
    ref::Tensor4<int32_t> expected;
    PackedActivations in;
    PackedWeights pw;
    ThresholdLayer() {
        auto codes = random_codes(n, h, w, cin, 2);
        auto weights = random_weights(cout, k, cin, WeightEncoding::signed_, 2);
        expected = ref::conv(codes, weights, {1, 1, 1});
        pack_activations(codes.data.data(), {n, h, w, cin}, 2, 1, in, 1);
        pw = pack_weights(weights.data.data(), cout, k, k, cin, 1, WeightEncoding::signed_, 2);
    }
    std::string mismatch(const Requantization& rq) const {
        auto expected_codes = requantize_all(expected, rq);
        std::vector<uint8_t> out(expected.size(), 0xEE);
        bitserial_conv(in, pw, {1, 1}, rq, out.data());
        return first_mismatch(expected_codes.data, out.data(), out.size());
    }
};

// The 1- and 2-bit outputs compare accumulators with int32 thresholds clamped to +-(2^31 - 1)
// (generators/output_stage.h): biases and multipliers whose exact thresholds lie far outside int32
// (always or never met), or just inside it, give the reference's codes, for both signs of M.
TEST(BitserialConvThresholds, ThresholdsBeyondInt32GiveTheReferenceCodes) {
    use_test_isa();
    const ThresholdLayer layer;
    for (int out_bits : {1, 2}) {
        Requantization rq;
        rq.shift = 30;
        rq.out_bits = out_bits;
        const int64_t big = int64_t(1) << 61, edge = int64_t(1) << 31;
        for (int c = 0; c < layer.cout; c++) {
            const int32_t m = (c % 2 ? -1 : 1) * (c % 3 == 0 ? 1 : 1 << 20);
            const int64_t b[] = {big, -big, edge << 30, -(edge << 30), (edge - 3) << 30, 0};
            rq.multiplier.push_back(m);
            rq.bias.push_back(b[c % 6]);
        }
        EXPECT_EQ(layer.mismatch(rq), "") << "out_bits " << out_bits;
    }
}

// Shifts up to 62 (the most check_requantization takes) at 4-bit codes: the table kernels'
// thresholds, l 2^S - B for l up to 15, are computed in 128 bits (in int64 they wrapped).
TEST(BitserialConvThresholds, ShiftOf62AtFourBitCodes) {
    use_test_isa();
    const ThresholdLayer layer;
    Requantization rq;
    rq.shift = 62;
    rq.out_bits = 4;
    for (int c = 0; c < layer.cout; c++) {
        rq.multiplier.push_back((c % 2 ? -1 : 1) * (1 << 30));
        rq.bias.push_back(int64_t(1) << 62);  // (acc M + 2^62 + 2^61) >> 62 = 1 for these sums
    }
    EXPECT_EQ(layer.mismatch(rq), "");
}

// Codebook weights on the level index's bit planes (pack_codebook_weights), run by the table
// kernels: 2 and 4 levels, affine in the bits (two planes) or not (three), levels at the int8
// bounds, A1..A4, over the shape sweep, and with every weight the last level and every code the
// largest (every plane all ones: the byte accumulators at their bound). Scalar builds have no
// table kernels: the call is refused there.
struct CodebookCase {
    std::vector<int> levels;
    int a;
};

void PrintTo(const CodebookCase& k, std::ostream* os) {
    *os << "levels";
    for (int l : k.levels) *os << " " << l;
    *os << ", a" << k.a;
}

class BitserialConvCodebook : public ::testing::TestWithParam<CodebookCase> {
protected:
    void SetUp() override { use_test_isa(); }
};

void check_codebook_case(const ConvCase& cc, const CodebookCase& k, bool extreme) {
    SCOPED_TRACE(cc.name() + " a" + std::to_string(k.a) + (extreme ? " extreme" : ""));
    const int cin_g = cc.cin / cc.groups, w_bits = k.levels.size() == 2 ? 1 : 2;
    auto codes = random_codes(cc.n, cc.h, cc.w, cc.cin, k.a);
    ref::Tensor4<int8_t> weights(cc.cout, cc.kernel, cc.kernel, cin_g);
    std::uniform_int_distribution<size_t> pick(0, k.levels.size() - 1);
    for (auto& v : weights.data) v = int8_t(k.levels[extreme ? k.levels.size() - 1 : pick(rng())]);
    if (extreme) std::fill(codes.data.begin(), codes.data.end(), uint8_t((1 << k.a) - 1));
    auto expected = ref::conv(codes, weights, {cc.stride, cc.pad, cc.groups});
    PackedActivations in;
    pack_activations(codes.data.data(), {cc.n, cc.h, cc.w, cc.cin}, k.a, cc.groups, in, cc.pad);
    auto pw = pack_codebook_weights(weights.data.data(), cc.cout, cc.kernel, cc.kernel, cin_g, cc.groups, k.levels);
    const bool affine = k.levels.size() == 2 || k.levels[3] - k.levels[2] - k.levels[1] + k.levels[0] == 0;
    EXPECT_EQ(pw.bits, k.levels.size() == 2 ? 1 : affine ? 2 : 3);
    if (forced_isa() == Isa::scalar) {
        std::vector<int32_t> acc(expected.size());
        EXPECT_THROW(bitserial_conv(in, pw, {cc.stride, cc.pad}, acc.data()), Error);
        return;
    }
    check_outputs(in, pw, {cc.stride, cc.pad}, expected, {w_bits, k.a, WeightEncoding::codebook}, cc.groups);
}

TEST_P(BitserialConvCodebook, MatchesReferenceOverShapeSweep) {
    for (const ConvCase& cc : conv_sweep()) check_codebook_case(cc, GetParam(), false);
    check_codebook_case({1, 6, 7, 128, 70, 3, 1, 1, 1}, GetParam(), true);
    check_codebook_case({1, 5, 5, 64, 64, 3, 2, 1, 1}, GetParam(), true);
}

std::vector<CodebookCase> codebook_cases() {
    std::vector<CodebookCase> v;
    for (int a = 1; a <= 4; a++)
        for (std::vector<int> levels : std::vector<std::vector<int>>{
                 {-7, -1, 2, 9}, {-128, -3, 100, 127}, {0, 1, -2, -1}, {127, -128, 5, 5}, {-128, 127}, {3, 5}})
            v.push_back({levels, a});
    return v;
}

INSTANTIATE_TEST_SUITE_P(Levels, BitserialConvCodebook, ::testing::ValuesIn(codebook_cases()), [](const auto& info) {
    std::string name = "a" + std::to_string(info.param.a);
    for (int l : info.param.levels) name += (l < 0 ? "_m" : "_") + std::to_string(std::abs(l));
    return name;
});

TEST(BitserialConvErrors, CodebookValueOutsideTheLevelsIsReported) {
    std::vector<int8_t> w = {-7, 9, 3};
    try {
        pack_codebook_weights(w.data(), 1, 1, 1, 3, 1, {-7, -1, 2, 9});
        FAIL() << "expected halibit::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("value 3 at [0,0,0,2] is not one of the codebook's levels"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(pack_codebook_weights(w.data(), 1, 1, 1, 3, 1, {-7, -1, 3}), Error);  // 3 levels
}

TEST(BitserialConvErrors, MismatchedGroupsAreReported) {
    auto codes = random_codes(1, 3, 3, 8, 2);
    PackedActivations in;
    pack_activations(codes.data.data(), {1, 3, 3, 8}, 2, 1, in);
    auto w = random_weights(4, 1, 4, WeightEncoding::signed_, 2);
    auto pw = pack_weights(w.data.data(), 4, 1, 1, 4, 2, WeightEncoding::signed_, 2);
    std::vector<int32_t> out(36);
    EXPECT_THROW(bitserial_conv(in, pw, {1, 0}, out.data()), Error);
}

TEST(BitserialConvErrors, PaddingBeyondTheBorderIsReported) {
    auto codes = random_codes(1, 3, 3, 8, 2);
    PackedActivations in;
    pack_activations(codes.data.data(), {1, 3, 3, 8}, 2, 1, in, /*border=*/0);
    auto w = random_weights(4, 3, 8, WeightEncoding::signed_, 2);
    auto pw = pack_weights(w.data.data(), 4, 3, 3, 8, 1, WeightEncoding::signed_, 2);
    std::vector<int32_t> out(36);
    EXPECT_THROW(bitserial_conv(in, pw, {1, 1}, out.data()), Error);
}

TEST(BitserialConvErrors, WeightOutsideEncodingIsReported) {
    std::vector<int8_t> w = {1, 2, 3};  // 2 is not an odd weight
    try {
        pack_weights(w.data(), 1, 1, 1, 3, 1, WeightEncoding::odd, 2);
        FAIL() << "expected halibit::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("value 2 at [0,0,0,1]"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace halibit::test

#if defined(__x86_64__)
namespace halibit::test {
namespace {

// The autoscheduler baseline computes the same thing (x86 builds only). Its tiles come from the
// estimates (ResNet-18's 28x28x128 layer) and assume extents at least that large, so it is a
// benchmark baseline for those shapes, not a general kernel.
TEST(BitserialConvAutoscheduled, MatchesReferenceOnTheEstimatedShape) {
    use_test_isa();
    if (forced_isa() == Isa::scalar) GTEST_SKIP() << "the autoscheduler baseline is built for avx512 and avx2 only";
    for (const ConvCase& cc : {ConvCase{1, 28, 28, 128, 128, 3, 1, 1, 1}}) {
        auto codes = random_codes(cc.n, cc.h, cc.w, cc.cin, 2);
        auto weights = random_weights(cc.cout, cc.kernel, cc.cin / cc.groups, WeightEncoding::signed_, 2);
        auto expected = ref::conv(codes, weights, {cc.stride, cc.pad, cc.groups});
        PackedActivations in;
        pack_activations(codes.data.data(), {cc.n, cc.h, cc.w, cc.cin}, 2, cc.groups, in, cc.pad);
        auto pw = pack_weights(weights.data.data(), cc.cout, cc.kernel, cc.kernel, cc.cin / cc.groups, cc.groups,
                               WeightEncoding::signed_, 2);
        auto rq = random_requantization(expected, 2);
        auto expected_codes = requantize_all(expected, rq);
        std::vector<uint8_t> out(expected.size(), 0xEE);
        bitserial_conv(in, pw, {cc.stride, cc.pad}, rq, out.data(), Schedule::autoscheduled);
        EXPECT_EQ(first_mismatch(expected_codes.data, out.data(), out.size()), "") << cc.name();
    }
}

}  // namespace
}  // namespace halibit::test
#endif
