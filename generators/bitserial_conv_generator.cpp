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
        general.tile = register_tile_for(get_target());
        // W4A4 signed: same Func, its 16 plane pairs unrolled (coefficients fold to shifts).
        general.constant_planes = {weight_bits == 4 && act_bits == 4 && encoding == 1};

        // W2A2 signed, the benchmarked case: its own Func with constant planes and a tile sized
        // for the four plane pairs each word feeds.
        Expr is_w2a2 = w2a2_signed;
        Accumulator w2a2 = accumulator(in, "acc_w2a2", 2, 2, 1);
        w2a2.when = is_w2a2;
        w2a2.tile = register_tile_for(get_target(), 4);
        w2a2.planes_constant = true;

        // popcount(a_j) over the window, shared by all output channels. Signed weights have no
        // such term: their plane loop is empty.
        RDom ra(0, words(), 0, select(encoding == 1, 0, act_bits), 0, kernel_w(), 0, kernel_h(), "ra");
        Func act_sum("act_sum");
        act_sum(g, x, y, n) = 0;
        act_sum(g, x, y, n) += cast<int32_t>(popcount(in(ra[0], ra[1], g, window_x(ra[2]), window_y(ra[3]), n)) << ra[1]);

        Expr acc = select(is_w2a2, w2a2.acc(c, g, x, y, n), general.acc(c, g, x, y, n));
        Expr total = acc + cast<int64_t>(activation_offset(weight_bits, encoding) * act_sum(g, x, y, n));

        if (auto_schedule) {
            weight_bits.set_estimate(2);
            act_bits.set_estimate(2);
            encoding.set_estimate(1);
            w2a2_signed.set_estimate(true);
        }
        PopcountConvSchedule s;
        s.special = {w2a2};
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
