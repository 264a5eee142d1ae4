// The reference ops themselves, on hand-computed values: the kernels are only as right as this.
#include <gtest/gtest.h>

#include "conv.h"
#include "halibit/encoding.h"
#include "pack.h"
#include "requantize.h"

namespace halibit::ref {
namespace {

TEST(ReferenceConv, HandComputed3x3WithPaddingAndStride) {
    // 1x3x3x1 image 1..9, one 3x3 filter of ones, pad 1, stride 2 -> corners of the 3x3 box sums.
    Tensor4<uint8_t> in(1, 3, 3, 1);
    for (int i = 0; i < 9; i++) in.data[i] = uint8_t(i + 1);
    Tensor4<int8_t> w(1, 3, 3, 1, 1);
    auto out = conv(in, w, {2, 1, 1});
    ASSERT_EQ(out.d1, 2);
    ASSERT_EQ(out.d2, 2);
    EXPECT_EQ(out(0, 0, 0, 0), 1 + 2 + 4 + 5);
    EXPECT_EQ(out(0, 0, 1, 0), 2 + 3 + 5 + 6);
    EXPECT_EQ(out(0, 1, 0, 0), 4 + 5 + 7 + 8);
    EXPECT_EQ(out(0, 1, 1, 0), 5 + 6 + 8 + 9);
}

TEST(ReferenceConv, GroupsOnlySeeTheirChannels) {
    Tensor4<uint8_t> in(1, 1, 1, 4);
    in.data = {1, 2, 3, 4};
    Tensor4<int8_t> w(2, 1, 1, 2);
    w.data = {1, -1, 2, 3};  // group 0: 1*1 - 1*2 = -1; group 1: 2*3 + 3*4 = 18
    auto out = conv(in, w, {1, 0, 2});
    EXPECT_EQ(out.data, (std::vector<int32_t>{-1, 18}));
}

TEST(ReferenceConv, OnePaddingAddsTheWeightsOutsideTheImage) {
    Tensor4<int8_t> in(1, 1, 1, 1, -1);
    Tensor4<int8_t> w(1, 3, 3, 1, 1);
    w(0, 0, 0, 0) = -1;
    EXPECT_EQ(conv(in, w, {1, 1, 1}, 0).data[0], -1);       // only the centre tap
    EXPECT_EQ(conv(in, w, {1, 1, 1}, 1).data[0], -1 + 6);   // plus 7 outer taps of +1 and one -1
}

TEST(ReferenceRequantize, RoundsHalfUpShiftsAndClamps) {
    EXPECT_EQ(requantize(10, 3, 0, 2, 4), 8);    // 30/4 = 7.5 -> 8
    EXPECT_EQ(requantize(9, 3, 0, 2, 4), 7);     // 27/4 = 6.75 -> 7
    EXPECT_EQ(requantize(100, 3, 0, 2, 4), 15);  // clamp high
    EXPECT_EQ(requantize(-5, 3, 0, 2, 4), 0);    // clamp low
    EXPECT_EQ(requantize(5, -3, 64, 3, 8), 6);   // (-15 + 64 + 4) >> 3 = 6
    EXPECT_EQ(requantize(7, 1, 0, 0, 8), 7);     // shift 0: no rounding term
}

TEST(ReferencePack, BitPlanesAlongChannelsWithZeroTails) {
    Tensor4<uint8_t> codes(1, 1, 1, 10);
    codes.data = {1, 2, 3, 0, 0, 0, 0, 0, 3, 2};
    auto p = pack_bitplanes(codes, 2, 1);
    ASSERT_EQ(p.size(), 16u);  // 2 planes x one 64-bit word
    EXPECT_EQ(p[0], 0b00000101);  // plane 0, channels 0..7
    EXPECT_EQ(p[1], 0b01);        // plane 0, channels 8..9
    EXPECT_EQ(p[2], 0);
    EXPECT_EQ(p[8], 0b00000110);  // plane 1
    EXPECT_EQ(p[9], 0b11);
}

TEST(Encoding, BitPlanesReconstructTheWeight) {
    for (auto e : {WeightEncoding::binary, WeightEncoding::signed_, WeightEncoding::odd})
        for (int bits = 1; bits <= 8; bits++) {
            if (!encoding_supports_bits(e, bits)) continue;
            for (int w = encoding_min(e, bits); w <= encoding_max(e, bits); w++) {
                if (!encoding_contains(e, bits, w)) continue;
                const uint32_t code = encode_weight(e, bits, w);
                int value = activation_offset(e, bits);
                for (int i = 0; i < bits; i++) value += plane_coefficient(e, bits, i) * int((code >> i) & 1);
                EXPECT_EQ(value, w) << encoding_name(e) << " " << bits << " bits";
            }
        }
}

}  // namespace
}  // namespace halibit::ref
