// lut_conv (both algorithms) against the reference convolution, bit for bit: every weight
// encoding and bit width each algorithm takes, codebook weights, channel tails (input blocks of
// 4, output vectors and the 64-channel padding), groups, strides, padding, 1x1 / 3x3 / 7x7,
// batch 2, int32 and requantized outputs. Registered once per ISA (arm64 under qemu too).
#include "conv_cases.h"

namespace halibit::test {
namespace {

struct LutCase {
    ConvCase conv;
    LutAlgorithm algorithm;
    WeightEncoding encoding;
    int wbits, abits;
    int out_bits = 8;
    std::vector<int32_t> codebook = {};  // pairwise codebook levels (then `encoding` is unused)
};

std::string describe(const LutCase& u) {
    std::string s = u.conv.name() + " " + lut_algorithm_name(u.algorithm) + " W" + std::to_string(u.wbits) + "A" +
                    std::to_string(u.abits) + " out_bits " + std::to_string(u.out_bits);
    if (!u.codebook.empty()) {
        s += " codebook";
        for (int32_t l : u.codebook) s += " " + std::to_string(l);
    } else {
        s += std::string(" ") + encoding_name(u.encoding);
    }
    return s;
}

void check_case(const LutCase& u) {
    SCOPED_TRACE(describe(u));
    const ConvCase& cc = u.conv;
    const int cin_g = cc.cin / cc.groups;
    auto codes = random_codes(cc.n, cc.h, cc.w, cc.cin, u.abits);
    LutWeights w;
    ref::Tensor4<int32_t> values(cc.cout, cc.kernel, cc.kernel, cin_g);
    if (u.codebook.empty()) {
        auto weights = random_weights(cc.cout, cc.kernel, cin_g, u.encoding, u.wbits);
        for (size_t i = 0; i < values.size(); i++) values.data[i] = weights.data[i];
        w = prepare_lut_weights(u.algorithm, weights.data.data(), cc.cout, cc.kernel, cc.kernel, cin_g, cc.groups,
                                u.encoding, u.wbits);
    } else {
        std::vector<uint8_t> indices(values.size());
        std::uniform_int_distribution<int> d(0, int(u.codebook.size()) - 1);
        for (size_t i = 0; i < indices.size(); i++) {
            indices[i] = uint8_t(d(rng()));
            values.data[i] = u.codebook[indices[i]];
        }
        w = prepare_lut_codebook_weights(indices.data(), cc.cout, cc.kernel, cc.kernel, cin_g, cc.groups, u.codebook);
    }
    ref::Tensor4<int32_t> acts(codes.d0, codes.d1, codes.d2, codes.d3);
    for (size_t i = 0; i < acts.size(); i++) acts.data[i] = codes.data[i];
    auto expected = ref::conv(acts, values, {cc.stride, cc.pad, cc.groups});

    const ActivationShape shape{cc.n, cc.h, cc.w, cc.cin};
    const ConvGeometry geo{cc.stride, cc.pad};
    const ActivationShape o = conv_output_shape(shape, w, geo);
    ASSERT_EQ(size_t(o.n) * o.h * o.w * o.c, expected.size());

    std::vector<int32_t> acc(expected.size(), -7);
    lut_conv(codes.data.data(), shape, u.abits, w, geo, acc.data());
    EXPECT_EQ(first_mismatch(expected.data, acc.data(), acc.size()), "") << "int32 output";

    auto rq = random_requantization(expected, u.out_bits);
    auto expected_codes = requantize_all(expected, rq);
    std::vector<uint8_t> out(expected.size(), 0xEE);
    lut_conv(codes.data.data(), shape, u.abits, w, geo, rq, out.data());
    EXPECT_EQ(first_mismatch(expected_codes.data, out.data(), out.size()), "") << "codes output";
}

class LutConv : public ::testing::Test {
protected:
    void SetUp() override { use_test_isa(); }
};

constexpr auto kPairwise = LutAlgorithm::pairwise;
constexpr auto kTable = LutAlgorithm::activation_table;
constexpr auto kSigned = WeightEncoding::signed_;
constexpr auto kOdd = WeightEncoding::odd;
constexpr auto kBinary = WeightEncoding::binary;

// Every (encoding, W) each algorithm takes, with every activation width, on two shapes with
// tails, padding and groups.
TEST_F(LutConv, PairwiseBitWidths) {
    const std::vector<std::pair<WeightEncoding, int>> weights = {{kBinary, 1}, {kOdd, 1}, {kSigned, 2}, {kOdd, 2}};
    for (auto [e, wb] : weights)
        for (int ab = 1; ab <= 2; ab++) {
            check_case({{1, 5, 6, 7, 9, 3, 1, 1, 1}, kPairwise, e, wb, ab, 1 + (wb + ab) % 8});
            check_case({{2, 4, 5, 12, 66, 1, 2, 0, 2}, kPairwise, e, wb, ab, 2});
        }
}

TEST_F(LutConv, ActivationTableBitWidths) {
    std::vector<std::pair<WeightEncoding, int>> weights = {{kBinary, 1}};
    for (int wb = 1; wb <= 4; wb++) weights.push_back({kOdd, wb});
    for (int wb = 2; wb <= 4; wb++) weights.push_back({kSigned, wb});
    int out_bits = 1;
    for (auto [e, wb] : weights)
        for (int ab = 1; ab <= 8; ab++) {
            check_case({{1, 5, 6, 7, 9, 3, 1, 1, 1}, kTable, e, wb, ab, out_bits});
            check_case({{2, 4, 5, 12, 66, 1, 2, 0, 2}, kTable, e, wb, ab, 8});
            out_bits = out_bits % 8 + 1;
        }
}

// Codebooks: any 4 (or fewer) integer levels, non-uniform, up to the int8 product limit.
TEST_F(LutConv, CodebookWeights) {
    const std::vector<std::vector<int32_t>> books = {{-37, -5, 9, 42}, {3, 17, -1, 0}, {-42, 42}, {7, -11, 25}, {5}};
    for (const auto& book : books)
        for (int ab = 1; ab <= 2; ab++) {
            const int limit = 127 / ((1 << ab) - 1);
            std::vector<int32_t> b = book;
            for (int32_t& l : b) l = std::clamp(l * (ab == 1 ? 3 : 1), -limit, limit);
            check_case({{1, 6, 5, 9, 17, 3, 1, 1, 1}, kPairwise, kSigned, 2, ab, 8, b});
            check_case({{1, 8, 8, 16, 16, 3, 2, 1, 2}, kPairwise, kSigned, 2, ab, 3, b});
        }
}

// The foundation's shape sweep for the benchmarked configurations.
TEST_F(LutConv, ShapeSweep) {
    struct Config { LutAlgorithm a; WeightEncoding e; int wb, ab; };
    const std::vector<Config> configs = {{kPairwise, kSigned, 2, 2}, {kPairwise, kBinary, 1, 2}, {kTable, kSigned, 2, 2},
                                         {kTable, kSigned, 2, 8},   {kTable, kSigned, 4, 8},    {kTable, kSigned, 4, 4}};
    int out_bits = 1;
    for (const Config& k : configs)
        for (const ConvCase& cc : conv_sweep()) {
            check_case({cc, k.a, k.e, k.wb, k.ab, out_bits});
            out_bits = out_bits % 8 + 1;
        }
}

// Input and output channel counts 1..10, multiples of 16, powers of two +- 1.
TEST_F(LutConv, ChannelCounts) {
    for (int c : channel_sweep()) {
        check_case({{1, 4, 5, c, 17, 3, 1, 1, 1}, kTable, kSigned, 2, 2, 2});
        check_case({{1, 3, 3, 9, c, 1, 1, 0, 1}, kTable, kSigned, 4, 8, 8});
        check_case({{1, 4, 5, c, 17, 3, 1, 1, 1}, kPairwise, kSigned, 2, 2, 2});
        check_case({{1, 3, 3, 9, c, 1, 1, 0, 1}, kPairwise, kOdd, 2, 2, 8});
    }
}

// Layer-like shapes: pixel tiles across row ends, whole 64-channel tiles, 7x7 stride 2.
TEST_F(LutConv, LayerShapes) {
    check_case({{1, 14, 14, 64, 64, 3, 1, 1, 1}, kTable, kSigned, 2, 2, 2});
    check_case({{1, 14, 14, 64, 64, 3, 1, 1, 1}, kPairwise, kSigned, 2, 2, 2});
    check_case({{1, 7, 7, 128, 130, 3, 1, 1, 1}, kTable, kSigned, 4, 4, 4});
    check_case({{1, 23, 21, 3, 64, 7, 2, 3, 1}, kTable, kSigned, 4, 8, 8});
    check_case({{1, 9, 11, 64, 128, 1, 1, 0, 1}, kTable, kSigned, 2, 8, 8});
}

// Where a kernel row's uint16 sums stop fitting (blocks x kw x 60 > 65535 at A4: 364 blocks
// fit, 368 do not) the general int32 accumulator takes over from the byte accumulators.
TEST_F(LutConv, WideLayersTakeTheGeneralAccumulator) {
    for (int cin : {1456, 1472})
        for (auto [e, wb] : {std::pair{kSigned, 2}, {kSigned, 4}, {kBinary, 1}})
            check_case({{1, 3, 3, cin, 9, 3, 1, 1, 1}, kTable, e, wb, 4, 8});
}

// The pairwise byte chunks (16, 4 or 1 input channels by the largest table entry) and, where a
// kernel row's entries stop fitting uint16 (blocks x kw x largest entry > 65535), the general
// accumulator: signed W2A2 (entries up to 9: 2416 channels fit, 2432 do not) and a codebook
// with entries up to 252 (80 channels fit, 96 do not).
TEST_F(LutConv, WidePairwiseLayersTakeTheGeneralAccumulator) {
    for (int cin : {2416, 2432}) check_case({{1, 3, 3, cin, 9, 3, 1, 1, 1}, kPairwise, kSigned, 2, 2, 8});
    for (int cin : {80, 96}) check_case({{1, 3, 3, cin, 9, 3, 1, 1, 1}, kPairwise, kSigned, 2, 2, 8, {-42, 42, 17, -3}});
}

// The shape the autoscheduler baseline is estimated for (bench/sweep.py's Li2018 row runs only
// this test on it: its tiles assume the estimates); the tuned kernel passes it like any other.
TEST(LutConvAutoscheduled, MatchesReferenceOnTheEstimatedShape) {
    use_test_isa();
    check_case({{1, 28, 28, 128, 128, 3, 1, 1, 1}, kTable, kSigned, 2, 2, 2});
}

TEST(LutConvErrors, BadInputIsReported) {
    auto w = random_weights(4, 3, 8, kSigned, 2);
    auto pw = prepare_lut_weights(kTable, w.data.data(), 4, 3, 3, 8, 1, kSigned, 2);
    std::vector<uint8_t> in(3 * 3 * 8);
    std::vector<int32_t> out(64);
    EXPECT_THROW(lut_conv(in.data(), {1, 3, 3, 6}, 2, pw, {1, 1}, out.data()), Error);  // channels
    EXPECT_THROW(lut_conv(in.data(), {1, 3, 3, 8}, 9, pw, {1, 1}, out.data()), Error);  // act_bits
    EXPECT_THROW(lut_conv(in.data(), {1, 1, 1, 8}, 2, pw, {1, 0}, out.data()), Error);  // no output pixels
    EXPECT_THROW(prepare_lut_weights(kPairwise, w.data.data(), 4, 3, 3, 8, 1, kSigned, 4), Error);  // W4 pairwise
    auto pp = prepare_lut_weights(kPairwise, w.data.data(), 4, 3, 3, 8, 1, kSigned, 2);
    EXPECT_THROW(lut_conv(in.data(), {1, 3, 3, 8}, 3, pp, {1, 1}, out.data()), Error);  // A3 pairwise
    std::vector<uint8_t> idx(4 * 9 * 8, 1);
    EXPECT_THROW(prepare_lut_codebook_weights(idx.data(), 4, 3, 3, 8, 1, {1}), Error);  // index past the levels
    auto big = prepare_lut_codebook_weights(idx.data(), 4, 3, 3, 8, 1, {0, 50});
    EXPECT_THROW(lut_conv(in.data(), {1, 3, 3, 8}, 2, big, {1, 1}, out.data()), Error);  // 50 * 3 > 127
    EXPECT_NO_THROW(lut_conv(in.data(), {1, 3, 3, 8}, 1, big, {1, 1}, out.data()));
    std::vector<uint8_t> wide(3 * 3 * 8, 4);  // codes of 3 bits for a 2-bit layer
    EXPECT_THROW(lut_conv(wide.data(), {1, 3, 3, 8}, 2, pw, {1, 1}, out.data()), Error);
}

}  // namespace
}  // namespace halibit::test
