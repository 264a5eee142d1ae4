// The output stage of every convolution family at the edges of what the model format allows:
// shifts 0, 30, 61 and 62, 1-, 2-, 3-, 4- and 8-bit codes, multipliers at both ends of int32 and
// biases up to the int64 bound the loader enforces (|acc| x |M| + |B| + 2^(S-1) <= 2^63 - 1 for
// the layer's largest possible |acc|), against runtime/reference/requantize.h, on the ISA of
// HALIBIT_ISA. The codes come from level thresholds in the table and popcount kernels and from
// 64-bit arithmetic in the others: both must equal the documented int64 formula.
#include <functional>

#include "conv_cases.h"

namespace halibit::test {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// One layer of a kernel family: its exact accumulators, the largest |acc| any input could give
// (the loader's bound), and its codes under a requantization.
struct Layer {
    std::string name;
    ref::Tensor4<int32_t> acc;
    int64_t bound = 0;
    std::function<std::vector<uint8_t>(const Requantization&)> codes;
};

int64_t weight_bound(const ref::Tensor4<int8_t>& w, int64_t top_code) {
    int64_t worst = 0;
    const size_t per = w.size() / size_t(w.d0);
    for (int o = 0; o < w.d0; o++) {
        int64_t s = 0;
        for (size_t i = 0; i < per; i++) s += std::abs(int(w.data[o * per + i]));
        worst = std::max(worst, s * top_code);
    }
    return worst;
}

std::vector<Layer> layers() {
    std::vector<Layer> out;
    const int n = 1, h = 5, w = 6, cin = 20, cout = 24, k = 3;
    const ConvGeometry geo{1, 1};
    {  // bconv: W1A1 on signs (the 1x1 binary layer and a 3x3 one)
        for (int kk : {1, 3}) {
            auto signs = random_signs(n, h, w, cin);
            auto weights = random_weights(cout, kk, cin, WeightEncoding::binary, 1);
            ref::Tensor4<uint8_t> bits(n, h, w, cin);
            for (size_t i = 0; i < bits.size(); i++) bits.data[i] = signs.data[i] < 0;
            auto in = std::make_shared<PackedActivations>();
            pack_activations(bits.data.data(), {n, h, w, cin}, 1, 1, *in, kk / 2);
            auto pw = std::make_shared<PackedWeights>(
                pack_weights(weights.data.data(), cout, kk, kk, cin, 1, WeightEncoding::binary, 1));
            const BConvOptions opt{{1, kk / 2}, false};
            Layer l{"bconv " + std::to_string(kk) + "x" + std::to_string(kk), ref::conv(signs, weights, {1, kk / 2, 1}),
                    weight_bound(weights, 1), nullptr};
            const size_t size = l.acc.size();
            l.codes = [=](const Requantization& rq) {
                std::vector<uint8_t> c(size, 0xEE);
                bconv(*in, *pw, opt, rq, c.data());
                return c;
            };
            out.push_back(std::move(l));
        }
    }
    for (auto [wb, ab, e] : {std::tuple{2, 2, WeightEncoding::signed_}, {1, 2, WeightEncoding::binary}}) {
        auto codes = random_codes(n, h, w, cin, ab);
        auto weights = random_weights(cout, k, cin, e, wb);
        auto in = std::make_shared<PackedActivations>();
        pack_activations(codes.data.data(), {n, h, w, cin}, ab, 1, *in, 1);
        auto pw = std::make_shared<PackedWeights>(pack_weights(weights.data.data(), cout, k, k, cin, 1, e, wb));
        Layer l{std::string("bitserial_conv w") + std::to_string(wb) + "a" + std::to_string(ab),
                ref::conv(codes, weights, {1, 1, 1}), weight_bound(weights, (1 << ab) - 1), nullptr};
        const size_t size = l.acc.size();
        l.codes = [=](const Requantization& rq) {
            std::vector<uint8_t> c(size, 0xEE);
            bitserial_conv(*in, *pw, geo, rq, c.data());
            return c;
        };
        out.push_back(std::move(l));
    }
    {  // conv_u8: 8-bit codes, full-range int8 weights
        auto codes = random_codes(n, h, w, cin, 8);
        auto weights = random_weights(cout, k, cin, WeightEncoding::signed_, 8);
        auto cw = std::make_shared<ref::Tensor4<uint8_t>>(codes);
        auto uw = std::make_shared<U8Weights>(prepare_u8_weights(weights.data.data(), cout, k, k, cin, 1));
        Layer l{"conv_u8 w8a8", ref::conv(codes, weights, {1, 1, 1}), weight_bound(weights, 255), nullptr};
        const size_t size = l.acc.size();
        l.codes = [=](const Requantization& rq) {
            std::vector<uint8_t> c(size, 0xEE);
            conv_u8(cw->data.data(), {n, h, w, cin}, *uw, geo, nullptr, rq, c.data(), 8);
            return c;
        };
        out.push_back(std::move(l));
    }
    for (LutAlgorithm a : {LutAlgorithm::activation_table, LutAlgorithm::pairwise}) {  // lut_conv, W2A2
        auto codes = random_codes(n, h, w, cin, 2);
        auto weights = random_weights(cout, k, cin, WeightEncoding::signed_, 2);
        auto cw = std::make_shared<ref::Tensor4<uint8_t>>(codes);
        auto lw = std::make_shared<LutWeights>(
            prepare_lut_weights(a, weights.data.data(), cout, k, k, cin, 1, WeightEncoding::signed_, 2));
        Layer l{std::string("lut_conv ") + lut_algorithm_name(a), ref::conv(codes, weights, {1, 1, 1}),
                weight_bound(weights, 3), nullptr};
        const size_t size = l.acc.size();
        l.codes = [=](const Requantization& rq) {
            std::vector<uint8_t> c(size, 0xEE);
            lut_conv(cw->data.data(), {n, h, w, cin}, 2, *lw, geo, rq, c.data());
            return c;
        };
        out.push_back(std::move(l));
    }
    return out;
}

// Per output channel, a multiplier and a bias from the edges of the allowed range: multipliers
// 0, +-1, +-(2^31 - 1) and -2^31 (and one that maps the accumulators onto the codes); biases 0,
// the largest magnitudes the int64 bound leaves, and values next to the code levels l 2^S.
Requantization edge_requantization(const Layer& layer, int shift, int out_bits, int variant) {
    Requantization rq;
    rq.shift = shift;
    rq.out_bits = out_bits;
    const int64_t round = shift ? int64_t(1) << (shift - 1) : 0;
    const int cout = layer.acc.d3;
    const int32_t multipliers[] = {1, -1, 0, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(),
                                   int32_t(std::min<int64_t>((int64_t(1) << std::min(shift, 40)) / 64 + 1, 1 << 30))};
    for (int c = 0; c < cout; c++) {
        const int32_t m = multipliers[(c + variant) % 6];
        const int64_t room = kInt64Max - layer.bound * std::abs(int64_t(m)) - round;  // |B| <= room
        const int64_t level = shift < 62 || out_bits == 1 ? int64_t(1) << shift : int64_t(1) << 62;
        int64_t b = 0;
        switch ((c / 6 + variant) % 6) {
        case 0: b = 0; break;
        case 1: b = room; break;
        case 2: b = -room; break;
        case 3: b = std::min(room, level); break;       // at the first level
        case 4: b = std::min(room, level) - 1; break;   // just below it
        case 5: b = -std::min(room, level) + 1; break;
        }
        rq.multiplier.push_back(m);
        rq.bias.push_back(b);
    }
    return rq;
}

class OutputStage : public ::testing::Test {
protected:
    void SetUp() override { use_test_isa(); }
};

TEST_F(OutputStage, EdgesOfTheFormatGiveTheReferenceCodes) {
    for (const Layer& layer : layers())
        for (int shift : {0, 30, 61, 62})
            for (int out_bits : {1, 2, 3, 4, 8})
                for (int variant = 0; variant < 6; variant++) {
                    const Requantization rq = edge_requantization(layer, shift, out_bits, variant);
                    const auto want = requantize_all(layer.acc, rq);
                    EXPECT_EQ(first_mismatch(want.data, layer.codes(rq).data(), want.size()), "")
                        << layer.name << " shift " << shift << " out_bits " << out_bits << " variant " << variant;
                }
}

// Multiplier 1, bias 0, shift 62: (acc + 2^61) >> 62 = 0 for every accumulator a layer can have,
// on every kernel and every output width.
TEST_F(OutputStage, ShiftOf62WithUnitMultiplierGivesZero) {
    for (const Layer& layer : layers())
        for (int out_bits : {1, 2, 3, 4, 8}) {
            Requantization rq;
            rq.shift = 62;
            rq.out_bits = out_bits;
            rq.multiplier.assign(size_t(layer.acc.d3), 1);
            rq.bias.assign(size_t(layer.acc.d3), 0);
            const auto got = layer.codes(rq);
            EXPECT_EQ(first_mismatch(std::vector<uint8_t>(got.size(), 0), got.data(), got.size()), "")
                << layer.name << " out_bits " << out_bits;
        }
}

}  // namespace
}  // namespace halibit::test
