// bconv (W1A1, sign activations, xor-popcount) against the reference convolution, with exact
// zero padding and with one-padding, over the shape sweep and the channel sweep.
#include "conv_cases.h"

namespace halibit::test {
namespace {

// The int32 output and 1- and 3-bit codes and packed outputs of one convolution against the reference's.
void check_outputs(const PackedActivations& in, const PackedWeights& pw, const BConvOptions& opt,
                   const ref::Tensor4<int32_t>& expected, int groups) {
    std::vector<int32_t> acc(expected.size(), -7);
    bconv(in, pw, opt, acc.data());
    EXPECT_EQ(first_mismatch(expected.data, acc.data(), acc.size()), "") << "int32 output";

    // A 1-bit output (the next binary layer's input) and a 3-bit one.
    for (int out_bits : {1, 3}) {
        auto rq = random_requantization(expected, out_bits);
        auto expected_codes = requantize_all(expected, rq);
        std::vector<uint8_t> codes_out(expected.size(), 0xEE);
        bconv(in, pw, opt, rq, codes_out.data());
        EXPECT_EQ(first_mismatch(expected_codes.data, codes_out.data(), codes_out.size()), "") << "codes output";

        PackedActivations packed_out;
        bconv(in, pw, opt, rq, packed_out, /*out_border=*/2);
        auto expected_packed = ref::pack_bitplanes(expected_codes, out_bits, groups);
        auto image = packed_image(packed_out);
        ASSERT_EQ(image.size(), expected_packed.size());
        EXPECT_EQ(first_mismatch(expected_packed, image.data(), image.size()), "") << "packed output";
        EXPECT_TRUE(border_is_zero(packed_out));
    }
}

void check_case(const ConvCase& cc, bool one_padding) {
    SCOPED_TRACE(cc.name() + (one_padding ? " one-padding" : " zero-padding"));
    const int cin_g = cc.cin / cc.groups;
    auto signs = random_signs(cc.n, cc.h, cc.w, cc.cin);
    auto weights = random_weights(cc.cout, cc.kernel, cin_g, WeightEncoding::binary, 1);
    auto expected = ref::conv(signs, weights, {cc.stride, cc.pad, cc.groups}, one_padding ? 1 : 0);

    ref::Tensor4<uint8_t> bits(cc.n, cc.h, cc.w, cc.cin);
    for (size_t i = 0; i < bits.size(); i++) bits.data[i] = signs.data[i] < 0;
    PackedActivations in;
    pack_activations(bits.data.data(), {cc.n, cc.h, cc.w, cc.cin}, 1, cc.groups, in, cc.pad);
    ASSERT_EQ(first_mismatch(ref::pack_signs(signs, cc.groups), packed_image(in).data(), packed_image(in).size()), "");
    auto pw = pack_weights(weights.data.data(), cc.cout, cc.kernel, cc.kernel, cin_g, cc.groups, WeightEncoding::binary, 1);
    const BConvOptions opt{{cc.stride, cc.pad}, one_padding};
    for_each_bitserial_kernel([&] { check_outputs(in, pw, opt, expected, cc.groups); });
}

class BConv : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override { use_test_isa(); }
};

TEST_P(BConv, MatchesReferenceOverShapeSweep) {
    for (const ConvCase& cc : conv_sweep()) check_case(cc, GetParam());
}

TEST_P(BConv, ChannelCountsInAndOut) {
    for (int c : channel_sweep()) {
        check_case({1, 4, 5, c, 17, 3, 1, 1, 1}, GetParam());
        check_case({1, 3, 3, 9, c, 3, 2, 1, 1}, GetParam());
    }
}

INSTANTIATE_TEST_SUITE_P(Padding, BConv, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "one_padding" : "zero_padding"; });

}  // namespace
}  // namespace halibit::test
