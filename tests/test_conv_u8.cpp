// conv_u8 against the reference convolution, bit for bit: full-range uint8 codes x int8 weights,
// channel tails, groups, strides, padding with zero and per-channel pad values, 1x1 / 3x3 / 7x7
// (and larger) kernels, batch 2, int32 and requantized outputs (out_bits 1..8; positive, negative
// and zero multipliers). Registered once per ISA like the other kernel suites (and run under qemu
// in the arm64 stage: the cases are small enough for that).
#include "conv_cases.h"

namespace halibit::test {
namespace {

struct U8Case {
    ConvCase conv;
    bool pad_values = false;  // nonzero per-channel pad values (else zero padding via nullptr)
    int out_bits = 8;
    int act_bits = 8;         // codes (and pad values) below 2^act_bits
    int max_abs_weight = 128; // weights in [-max, max - 1] (narrow ones take vpmaddubsw on AVX2)
};

ref::Tensor4<uint8_t> random_u8(int n, int h, int w, int c, int bits = 8) {
    ref::Tensor4<uint8_t> t(n, h, w, c);
    std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
    for (auto& v : t.data) v = uint8_t(d(rng()));
    return t;
}

ref::Tensor4<int8_t> random_i8(int cout, int kh, int kw, int cin_g, int max_abs = 128) {
    ref::Tensor4<int8_t> t(cout, kh, kw, cin_g);
    std::uniform_int_distribution<int> d(-max_abs, max_abs - 1);
    for (auto& v : t.data) v = int8_t(d(rng()));
    return t;
}

// The reference with a pad value per input channel: the image framed by `pad` pixels of those
// values, convolved without padding.
ref::Tensor4<int32_t> reference(const ref::Tensor4<uint8_t>& in, const ref::Tensor4<int8_t>& w, const ConvCase& cc,
                                const std::vector<uint8_t>& pad_values) {
    if (pad_values.empty()) return ref::conv(in, w, {cc.stride, cc.pad, cc.groups});
    ref::Tensor4<uint8_t> framed(in.d0, in.d1 + 2 * cc.pad, in.d2 + 2 * cc.pad, in.d3);
    for (int n = 0; n < framed.d0; n++)
        for (int y = 0; y < framed.d1; y++)
            for (int x = 0; x < framed.d2; x++)
                for (int c = 0; c < framed.d3; c++) {
                    const int iy = y - cc.pad, ix = x - cc.pad;
                    const bool inside = iy >= 0 && iy < in.d1 && ix >= 0 && ix < in.d2;
                    framed(n, y, x, c) = inside ? in(n, iy, ix, c) : pad_values[c];
                }
    return ref::conv(framed, w, {cc.stride, 0, cc.groups});
}

void check_case(const U8Case& u, const ref::Tensor4<uint8_t>* codes_in = nullptr,
                const ref::Tensor4<int8_t>* weights_in = nullptr) {
    const ConvCase& cc = u.conv;
    SCOPED_TRACE(cc.name() + (u.pad_values ? " pad_values" : " zero_padding") + " out_bits " + std::to_string(u.out_bits) +
                 " act_bits " + std::to_string(u.act_bits) + " weights +-" + std::to_string(u.max_abs_weight));
    const int cin_g = cc.cin / cc.groups;
    auto codes = codes_in ? *codes_in : random_u8(cc.n, cc.h, cc.w, cc.cin, u.act_bits);
    auto weights = weights_in ? *weights_in : random_i8(cc.cout, cc.kernel, cc.kernel, cin_g, u.max_abs_weight);
    std::vector<uint8_t> pads;
    if (u.pad_values) {
        std::uniform_int_distribution<int> d(1, (1 << u.act_bits) - 1);
        for (int c = 0; c < cc.cin; c++) pads.push_back(uint8_t(d(rng())));
    }
    auto expected = reference(codes, weights, cc, pads);

    const ActivationShape shape{cc.n, cc.h, cc.w, cc.cin};
    auto w = prepare_u8_weights(weights.data.data(), cc.cout, cc.kernel, cc.kernel, cin_g, cc.groups);
    const ConvGeometry geo{cc.stride, cc.pad};
    const ActivationShape o = conv_output_shape(shape, w, geo);
    ASSERT_EQ(size_t(o.n) * o.h * o.w * o.c, expected.size());

    std::vector<int32_t> acc(expected.size(), -7);
    conv_u8(codes.data.data(), shape, w, geo, pads.empty() ? nullptr : pads.data(), acc.data(), u.act_bits);
    EXPECT_EQ(first_mismatch(expected.data, acc.data(), acc.size()), "") << "int32 output";

    auto rq = random_requantization(expected, u.out_bits);
    auto expected_codes = requantize_all(expected, rq);
    std::vector<uint8_t> out(expected.size(), 0xEE);
    conv_u8(codes.data.data(), shape, w, geo, pads.empty() ? nullptr : pads.data(), rq, out.data(), u.act_bits);
    EXPECT_EQ(first_mismatch(expected_codes.data, out.data(), out.size()), "") << "codes output";
}

class ConvU8 : public ::testing::Test {
protected:
    void SetUp() override { use_test_isa(); }
};

std::vector<int> u8_channel_sweep() { return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 31, 32, 33, 63, 64, 65}; }

// Input channel tails (blocks of 4 on every target) and output channel tails (vectors and the
// 64-channel tile), at 3x3 and 1x1.
TEST_F(ConvU8, ChannelCountsInAndOut) {
    int bits = 1;
    for (int c : u8_channel_sweep()) {
        check_case({{1, 4, 5, c, 17, 3, 1, 1, 1}, true, bits});
        check_case({{2, 3, 3, 9, c, 1, 1, 0, 1}, false, 1 + bits % 8});
        check_case({{1, 3, 4, c, c, 3, 2, 1, 1}, false, 8});
        check_case({{2, 3, 3, 2 * c, 2 * c + 2, 3, 1, 1, 2}, true, 1 + (bits + 3) % 8});  // tails per group
        bits = bits % 8 + 1;
    }
}

// Groups x stride x padding x kernel size, with zero and nonzero pad values, batch 2.
TEST_F(ConvU8, GeometrySweep) {
    int bits = 1;
    for (int kernel : {1, 3, 7})
        for (int groups : {1, 2, 4})
            for (int stride : {1, 2})
                for (int pad = 0; pad <= 3; pad++)
                    for (bool pad_values : {false, true}) {
                        if (pad_values && pad == 0) continue;  // nothing to pad
                        const int size = std::max(kernel + 2 - 2 * pad, 3) + (stride == 2 ? 2 : 0);
                        const int cin = groups * (kernel == 7 ? 3 : 5), cout = groups * (kernel == 7 ? 4 : 6);
                        check_case({{2, size, size + 1, cin, cout, kernel, stride, pad, groups}, pad_values, bits});
                        bits = bits % 8 + 1;
                    }
}

// Every output width, positive, negative and zero multipliers (random_requantization).
TEST_F(ConvU8, RequantizedOutputBits) {
    for (int bits = 1; bits <= 8; bits++) {
        check_case({{1, 5, 7, 19, 70, 3, 1, 1, 1}, true, bits});
        check_case({{2, 4, 4, 8, 12, 1, 1, 0, 4}, false, bits});
    }
}

// Layer-like shapes: pixel tiles across row ends and past the last pixel, several chunks of
// pixel tiles, whole 64-channel tiles and their tails, the first layer's 3 channels, 7x7 stride 2.
TEST_F(ConvU8, LayerShapes) {
    check_case({{1, 14, 14, 64, 64, 3, 1, 1, 1}, false, 8});
    check_case({{1, 7, 7, 128, 130, 3, 1, 1, 1}, false, 4});
    check_case({{1, 9, 11, 64, 128, 1, 1, 0, 1}, false, 8});
    check_case({{1, 23, 21, 3, 64, 7, 2, 3, 1}, true, 8});
    // The row form (runtime/src/conv_u8.cpp): the stem at batch 2, Fashion-MNIST's one-channel
    // first layer, a 5x5 window of 6 channels.
    check_case({{2, 30, 31, 3, 64, 7, 2, 3, 1}, true, 8});
    check_case({{1, 28, 28, 1, 16, 3, 1, 1, 1}, true, 8});
    check_case({{1, 12, 9, 6, 20, 5, 2, 2, 1}, false, 8});
    check_case({{1, 28, 28, 64, 128, 3, 2, 1, 1}, false, 8});
    check_case({{2, 13, 13, 96, 66, 5, 1, 2, 2}, true, 6});
    check_case({{2, 40, 41, 8, 70, 3, 1, 1, 1}, true, 8});  // many chunks of pixel tiles per image
    // 512 channels of full-range weights: one call on AVX2 (reduction chunks elsewhere).
    check_case({{1, 7, 7, 512, 70, 3, 1, 1, 1}, false, 8});
}

// |w| up to 65, one past the narrow library's bound at 8-bit codes: the AVX2 full-range library
// and its int16 copy of the weights; and 64, the narrow one, at the same shapes.
TEST_F(ConvU8, WeightsAtTheNarrowBound) {
    for (int max_abs : {65, 64})
        for (const ConvCase& cc : {ConvCase{1, 9, 8, 12, 9, 3, 1, 1, 1}, ConvCase{2, 5, 6, 16, 20, 3, 2, 1, 2}})
            check_case({cc, true, 8, 8, max_abs});
}

// The extremes of both ranges: 255 x -128 everywhere (no saturation anywhere in the dot product).
TEST_F(ConvU8, ExtremeValues) {
    for (int cin : {4, 7, 64}) {
        ConvCase cc{1, 5, 5, cin, 20, 3, 1, 1, 1};
        ref::Tensor4<uint8_t> codes(1, 5, 5, cin, 255);
        for (int8_t wv : {int8_t(-128), int8_t(127)}) {
            ref::Tensor4<int8_t> w(20, 3, 3, cin, wv);
            check_case({cc, true, 8}, &codes, &w);
        }
        auto mixed = random_i8(20, 3, 3, cin);
        for (size_t i = 0; i < mixed.data.size(); i++) mixed.data[i] = i % 2 ? int8_t(-128) : int8_t(127);
        check_case({cc, false, 3}, &codes, &mixed);
    }
}

// Large kernels and strides: 15x15, stride 3..8.
TEST_F(ConvU8, LargeKernelsAndStrides) {
    check_case({{1, 16, 17, 5, 9, 15, 1, 7, 1}, true, 8});
    for (int stride = 3; stride <= 8; stride++) {
        check_case({{1, 19, 20, 6, 10, 3, stride, 1, 2}, stride % 2 == 0, stride});
    }
}

// Narrow weights and codes (the vpmaddubsw library on AVX2): W4A4, W7 x A8 at the int16 limit
// (2 x 255 x 64 = 32640), W2A2; chunks of channel blocks from 1 (a prime block count) to 128.
TEST_F(ConvU8, NarrowWeights) {
    for (auto [act_bits, max_abs] : {std::pair{4, 8}, {8, 64}, {2, 2}, {8, 8}, {3, 4}}) {
        int out_bits = 1;
        for (const ConvCase& cc : conv_sweep()) {
            check_case({cc, act_bits == 8, out_bits, act_bits, max_abs});
            out_bits = out_bits % 8 + 1;
        }
        check_case({{1, 7, 7, 512, 64, 3, 1, 1, 1}, false, 4, act_bits, max_abs});  // 128 blocks
        check_case({{1, 5, 6, 28, 70, 3, 1, 1, 1}, true, 8, act_bits, max_abs});    // 7 blocks
        check_case({{1, 14, 14, 64, 64, 3, 1, 1, 1}, false, 8, act_bits, max_abs});
    }
    // A7 against -128: the largest exact pair sum, 2 x 127 x 128 = 32512.
    check_case({{1, 6, 6, 64, 16, 3, 1, 1, 1}, false, 8, 7, 128});
    // The extremes: every code 255 (or 15) against -64 and 63 everywhere.
    for (auto [act_bits, wv] : {std::pair{8, -64}, {8, 63}, {4, -8}, {4, 7}}) {
        ConvCase cc{1, 5, 5, 64, 20, 3, 1, 1, 1};
        ref::Tensor4<uint8_t> codes(1, 5, 5, 64, uint8_t((1 << act_bits) - 1));
        ref::Tensor4<int8_t> w(20, 3, 3, 64, int8_t(wv));
        check_case({cc, false, 8, act_bits, wv < 0 ? -wv : wv + 1}, &codes, &w);
    }
}

// Depthwise (one channel per group, one output per channel): its own kernel. 3x3 (MobileNet's),
// 5x5 and 1x1, strides 1 and 2, padding with zeros and pad values, channel counts 2..130.
TEST_F(ConvU8, Depthwise) {
    int out_bits = 1;
    for (int c : {2, 3, 7, 8, 16, 17, 31, 64, 65, 130})
        for (auto [k, stride, pad] : {std::tuple{3, 1, 1}, {3, 2, 1}, {3, 1, 0}, {5, 2, 2}, {1, 1, 0}}) {
            check_case({{2, 9, 8, c, c, k, stride, pad, c}, pad > 0 && c % 2 == 1, out_bits});
            out_bits = out_bits % 8 + 1;
        }
    check_case({{1, 56, 56, 64, 64, 3, 1, 1, 64}, true, 8});
    // A depth multiplier of 2 is a grouped convolution, not depthwise: the general kernel.
    check_case({{1, 6, 6, 8, 16, 3, 1, 1, 8}, false, 8});
}

// Pad values above the codes' range take the narrow library's bound with them: 4-bit codes, pad
// 255, |w| <= 64 (pairs of 2 x 255 x 64 at the border; a chunk of 16 blocks would overflow).
TEST_F(ConvU8, PadValuesAboveTheCodes) {
    const ConvCase cc{1, 6, 7, 64, 24, 3, 1, 1, 1};
    auto codes = random_u8(1, 6, 7, 64, 4);
    auto weights = random_i8(24, 3, 3, 64, 64);
    const std::vector<uint8_t> pads(64, 255);
    auto expected = reference(codes, weights, cc, pads);
    auto w = prepare_u8_weights(weights.data.data(), 24, 3, 3, 64, 1);
    std::vector<int32_t> acc(expected.size());
    conv_u8(codes.data.data(), {1, 6, 7, 64}, w, {1, 1}, pads.data(), acc.data(), 4);
    EXPECT_EQ(first_mismatch(expected.data, acc.data(), acc.size()), "");
}

TEST(ConvU8Errors, MismatchedShapesAreReported) {
    auto w = random_i8(4, 3, 3, 8);
    auto pw = prepare_u8_weights(w.data.data(), 4, 3, 3, 8, 1);
    std::vector<uint8_t> in(3 * 3 * 6);
    std::vector<int32_t> out(64);
    EXPECT_THROW(conv_u8(in.data(), {1, 3, 3, 6}, pw, {1, 1}, nullptr, out.data()), Error);  // channels
    std::vector<uint8_t> in8(3 * 3 * 8);
    EXPECT_NO_THROW(conv_u8(in8.data(), {1, 3, 3, 8}, pw, {1, 0}, nullptr, out.data()));
    EXPECT_THROW(conv_u8(in8.data(), {1, 1, 1, 8}, pw, {1, 0}, nullptr, out.data()), Error);  // no output pixels
    EXPECT_THROW(conv_u8(in8.data(), {1, 3, 3, 8}, pw, {0, 1}, nullptr, out.data()), Error);  // stride 0
    Requantization rq{{1, 1}, {0, 0}, 0, 8};
    std::vector<uint8_t> codes(64);
    EXPECT_THROW(conv_u8(in8.data(), {1, 3, 3, 8}, pw, {1, 1}, nullptr, rq, codes.data()), Error);  // 2 of 4 channels
    EXPECT_THROW(prepare_u8_weights(w.data.data(), 4, 3, 3, 8, 3), Error);  // groups
    std::vector<uint8_t> wide(3 * 3 * 8, 16);  // 5-bit codes said to be 4-bit
    EXPECT_THROW(conv_u8(wide.data(), {1, 3, 3, 8}, pw, {1, 1}, nullptr, out.data(), 4), Error);
    EXPECT_THROW(conv_u8(in8.data(), {1, 3, 3, 8}, pw, {1, 1}, nullptr, out.data(), 9), Error);  // act_bits
}

}  // namespace
}  // namespace halibit::test
