// The glue kernels (add, max_pool, global_avg_pool, channel_shuffle) against runtime/reference/
// glue.h, byte for byte: channel counts 1..10, multiples of 16, powers of two +- 1; both input
// types of the add; negative and zero multipliers; pooling windows, strides, padding; batch 2.
// Registered once per ISA.
#include "../runtime/src/glue.h"

#include "conv_cases.h"
#include "glue.h"

namespace halibit::test {
namespace {

class Glue : public ::testing::Test {
protected:
    void SetUp() override { use_test_isa(); }
};

std::vector<uint8_t> random_bytes(size_t n, int bits = 8) {
    std::vector<uint8_t> v(n);
    std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
    for (auto& x : v) x = uint8_t(d(rng()));
    return v;
}

std::vector<int32_t> random_acc(size_t n) {
    std::vector<int32_t> v(n);
    std::uniform_int_distribution<int32_t> d(-40000, 40000);
    for (auto& x : v) x = d(rng());
    return v;
}

template <typename A, typename B>
void check_add(const std::vector<A>& x0, const std::vector<B>& x1, size_t pixels, int channels, int out_bits) {
    SCOPED_TRACE("add " + std::to_string(pixels) + " x " + std::to_string(channels) + " out_bits " + std::to_string(out_bits));
    AddParams p;
    p.shift = 16;
    p.out_bits = out_bits;
    std::uniform_int_distribution<int32_t> m(-3000, 9000);
    for (int c = 0; c < channels; c++) {
        p.multiplier[0].push_back(c % 5 == 3 ? 0 : m(rng()));
        p.multiplier[1].push_back(m(rng()));
        p.bias.push_back(int64_t(m(rng())) * 64);
    }
    auto expected = ref::add(x0.data(), x1.data(), pixels, channels, p.multiplier[0], p.multiplier[1], p.bias, p.shift,
                             p.out_bits);
    std::vector<uint8_t> out(expected.size(), 0xEE);
    add({sizeof(A) == 4, x0.data()}, {sizeof(B) == 4, x1.data()}, pixels, channels, p, out.data());
    EXPECT_EQ(first_mismatch(expected, out.data(), out.size()), "");
}

TEST_F(Glue, AddBothInputTypes) {
    int bits = 1;
    for (int c : channel_sweep()) {
        const size_t pixels = 7;
        const size_t n = pixels * c;
        check_add(random_bytes(n), random_bytes(n), pixels, c, bits);
        check_add(random_acc(n), random_bytes(n), pixels, c, 8);
        check_add(random_bytes(n), random_acc(n), pixels, c, bits);
        check_add(random_acc(n), random_acc(n), pixels, c, 4);
        bits = bits % 8 + 1;
    }
}

TEST_F(Glue, MaxPool) {
    struct Case { int n, h, w, c, kh, kw, stride, pad; };
    std::vector<Case> cases = {{1, 112, 112, 64, 3, 3, 2, 1}, {2, 5, 7, 3, 3, 3, 2, 1}, {1, 9, 9, 17, 3, 3, 1, 1},
                               {1, 8, 6, 65, 2, 2, 2, 0},     {1, 1, 1, 5, 1, 1, 1, 0}, {2, 10, 11, 33, 5, 5, 3, 2},
                               {1, 7, 9, 16, 3, 2, 1, 1},     {1, 9, 7, 19, 2, 3, 2, 0}};  // and non-square windows
    for (int c : channel_sweep()) cases.push_back({1, 6, 7, c, 3, 3, 2, 1});
    for (const Case& k : cases) {
        SCOPED_TRACE("max_pool " + std::to_string(k.h) + "x" + std::to_string(k.w) + "x" + std::to_string(k.c) + " k" +
                     std::to_string(k.kh) + "x" + std::to_string(k.kw) + "s" + std::to_string(k.stride) + "p" +
                     std::to_string(k.pad));
        auto in = random_bytes(size_t(k.n) * k.h * k.w * k.c);
        auto expected = ref::max_pool(in.data(), k.n, k.h, k.w, k.c, k.kh, k.kw, k.stride, k.pad);
        std::vector<uint8_t> out(expected.size(), 0xEE);
        max_pool(in.data(), {k.n, k.h, k.w, k.c}, k.kh, k.kw, k.stride, k.pad, out.data());
        EXPECT_EQ(first_mismatch(expected, out.data(), out.size()), "");
    }
}

TEST_F(Glue, GlobalAvgPool) {
    int bits = 1;
    for (int c : channel_sweep())
        for (auto [h, w] : {std::pair{7, 7}, {1, 1}, {3, 5}}) {
            SCOPED_TRACE("global_avg_pool " + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c));
            auto in = random_bytes(size_t(2) * h * w * c);
            const int64_t multiplier = (int64_t(1) << 20) / (h * w) * (1 + c % 3);
            auto expected = ref::global_avg_pool(in.data(), 2, h, w, c, multiplier, 20, bits);
            std::vector<uint8_t> out(expected.size(), 0xEE);
            global_avg_pool(in.data(), {2, h, w, c}, multiplier, 20, bits, out.data());
            EXPECT_EQ(first_mismatch(expected, out.data(), out.size()), "");
            bits = bits % 8 + 1;
        }
}

TEST_F(Glue, ChannelShuffle) {
    for (int groups : {1, 2, 3, 4, 8})
        for (int k : {1, 3, 16, 17, 64}) {
            SCOPED_TRACE("channel_shuffle groups " + std::to_string(groups) + " x " + std::to_string(k));
            const int channels = groups * k;
            auto in = random_bytes(size_t(9) * channels);
            auto expected = ref::channel_shuffle(in.data(), 9, channels, groups);
            std::vector<uint8_t> out(expected.size(), 0xEE);
            channel_shuffle(in.data(), 9, channels, groups, out.data());
            EXPECT_EQ(first_mismatch(expected, out.data(), out.size()), "");
        }
}

TEST(GlueErrors, BadArgumentsAreReported) {
    std::vector<uint8_t> in(64), out(64);
    EXPECT_THROW(channel_shuffle(in.data(), 1, 6, 4, out.data()), Error);
    EXPECT_THROW(max_pool(in.data(), {1, 2, 2, 1}, 3, 3, 1, 0, out.data()), Error);  // no output pixels
    EXPECT_THROW(max_pool(in.data(), {1, 4, 4, 1}, 3, 3, 1, 3, out.data()), Error);  // pad >= kernel
    AddParams p;
    EXPECT_THROW(add({false, in.data()}, {false, in.data()}, 1, 4, p, out.data()), Error);  // no multipliers
}

}  // namespace
}  // namespace halibit::test
