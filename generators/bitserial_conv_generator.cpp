// `bitserial_conv`: W1..4 x A1..4 convolution on bit planes (unsigned activation codes; weights
// binary, signed or odd):
//   acc = sum_taps sum_j 2^j [ sum_i coef_i popcount(w_i & a_j) + offset * popcount(a_j) ]
// with coef_i and offset from the weight encoding (runtime/reference/encoding.h).
#include "popcount_conv.h"

namespace halibit {

class BitserialConv : public PopcountConvGenerator<BitserialConv> {
public:
    Input<int32_t> weight_bits{"weight_bits"};
    Input<int32_t> act_bits{"act_bits"};
    Input<int32_t> encoding{"encoding"};  // 0 binary, 1 signed, 2 odd (halibit::WeightEncoding)
    // True exactly when (weight_bits, act_bits, encoding) is (2, 2, signed): selects the W2A2
    // accumulator. A bool input (not an expression of the three) so that Halide drops the other
    // accumulator from each branch.
    Input<bool> w2a2_signed{"w2a2_signed"};

    void generate() {
        Func in = padded_input();

        // The general accumulator: any bit widths and encoding, plane loops of runtime extent.
        Accumulator general = accumulator(in, "acc", weight_bits, act_bits, encoding);
        general.tile = register_tile();
        // Branches of the same Func with their plane loops unrolled, so coefficients fold to
        // constants: W4A4 signed (16 plane pairs, shifts) and W1A1 binary (binary networks on
        // unsigned 1-bit codes: and + popcount + add per word, ResNet-18 w1a1 7.0 -> 4.8 ms).
        general.constant_planes = {weight_bits == 4 && act_bits == 4 && encoding == 1,
                                   weight_bits == 1 && act_bits == 1 && encoding == 0};

        // W2A2 signed, the benchmarked case: with 32 registers (AVX-512, NEON) its own Func with
        // three accumulators per output and a tile sized for them; with 16 (AVX2) that tile
        // spills, so it stays in the general Func with its four plane pairs unrolled.
        const bool w2a2_own_func = get_target().has_feature(Target::AVX512) || get_target().arch == Target::ARM;
        Accumulator w2a2;
        if (w2a2_own_func) {
            w2a2 = accumulator_w2a2(in);
            w2a2.when = w2a2_signed;
            w2a2.tile = register_tile(4);
        } else {
            general.constant_planes.push_back(weight_bits == 2 && act_bits == 2 && encoding == 1);
        }

        // popcount(a_j) over the window, shared by all output channels. Signed weights have no
        // such term: their plane loop is empty.
        RDom ra(0, words(), 0, select(encoding == 1, 0, act_bits), 0, kernel_w(), 0, kernel_h(), "ra");
        Func act_sum("act_sum");
        act_sum(g, x, y, n) = 0;
        act_sum(g, x, y, n) += cast<int32_t>(popcount(in(ra[0], ra[1], g, window_x(ra[2]), window_y(ra[3]), n)) << ra[1]);

        Expr acc = general.acc(c, g, x, y, n);
        if (w2a2_own_func) {
            Expr w2a2_total = w2a2.acc(c, 0, g, x, y, n) + (w2a2.acc(c, 1, g, x, y, n) << 1) - (w2a2.acc(c, 2, g, x, y, n) << 2);
            acc = select(w2a2_signed, w2a2_total, acc);
        }
        Expr total = acc + cast<int64_t>(activation_offset(weight_bits, encoding) * act_sum(g, x, y, n));

        if (auto_schedule) {
            weight_bits.set_estimate(2);
            act_bits.set_estimate(2);
            encoding.set_estimate(1);
            w2a2_signed.set_estimate(true);
        }
        PopcountConvSchedule s;
        if (w2a2_own_func) s.special = {w2a2};
        s.acc = general;
        s.per_pixel = {act_sum};
        finish(total, s);
    }

private:
    // acc = sum over words, planes and taps of coef_i 2^j popcount(w_i & a_j).
    Accumulator accumulator(Func in, const std::string& name, Expr wbits, Expr abits, Expr enc) {
        RDom r(0, words(), 0, wbits, 0, abits, 0, kernel_w(), 0, kernel_h(), "r_" + name);
        RVar rk = r[0], ri = r[1], rj = r[2], rkx = r[3], rky = r[4];
        // Plane indices are clamped to the buffers: Halide checks input bounds for the union of all
        // branches, so the W2A2 branch must not claim two planes of a one-plane input.
        Expr a = in(rk, min(rj, input.dim(1).extent() - 1), g, window_x(rkx), window_y(rky), n);
        Expr w = weights(c, rk, min(ri, weights.dim(2).extent() - 1), rkx, rky, g);
        Func f(name);
        f(c, g, x, y, n) = cast<int64_t>(0);
        f(c, g, x, y, n) += cast<int64_t>(popcount(w & a)) * cast<int64_t>(plane_coefficient(ri, wbits, enc) << rj);
        Accumulator acc;
        acc.acc = f;
        acc.plane_rvars = {ri, rj};
        acc.tap_rvars = {rkx, rky};
        acc.word_rvar = rk;
        return acc;
    }
    // W2A2 signed: w = w0 - 2 w1, a = a0 + 2 a1, so the sum is
    //   p00 + 2 (p01 - p10) - 4 p11,  pij = popcount(w_i & a_j).
    // Three accumulators by power of two (s = 0, 1, 2) take one add or subtract per popcount;
    // the shifts happen once per output.
    Accumulator accumulator_w2a2(Func in) {
        RDom r(0, words(), 0, kernel_w(), 0, kernel_h(), "r_w2a2");
        RVar rk = r[0], rkx = r[1], rky = r[2];
        Expr a0 = in(rk, 0, g, window_x(rkx), window_y(rky), n);
        Expr a1 = in(rk, min(1, input.dim(1).extent() - 1), g, window_x(rkx), window_y(rky), n);
        Expr w0 = weights(c, rk, 0, rkx, rky, g);
        Expr w1 = weights(c, rk, min(1, weights.dim(2).extent() - 1), rkx, rky, g);
        auto pc = [](Expr v) { return cast<int64_t>(popcount(v)); };
        Var s("s");
        Func f("acc_w2a2");
        f(c, s, g, x, y, n) = cast<int64_t>(0);
        f(c, s, g, x, y, n) += select(s == 0, pc(w0 & a0), s == 1, pc(w0 & a1) - pc(w1 & a0), pc(w1 & a1));
        Accumulator acc;
        acc.acc = f;
        acc.classes = s;
        acc.class_count = 3;
        acc.tap_rvars = {rkx, rky};
        acc.word_rvar = rk;
        return acc;
    }

    // The encoding's plane coefficients and activation offset (runtime/include/halibit/encoding.h).
    static Expr plane_coefficient(Expr i, Expr wbits, Expr enc) {
        return select(enc == 0, -2,
                      enc == 2, 2 << i,
                      i == wbits - 1, -(1 << i), 1 << i);
    }
    static Expr activation_offset(Expr wbits, Expr enc) {
        return select(enc == 0, 1, enc == 2, -((1 << wbits) - 1), 0);
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::BitserialConv, bitserial_conv)
