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

    void generate() {
        Func in = padded_input();
        RDom r(0, words(), 0, weight_bits, 0, act_bits, 0, kernel_w(), 0, kernel_h(), "r");
        RVar rk = r[0], ri = r[1], rj = r[2], rkx = r[3], rky = r[4];

        Expr a = in(rk, rj, g, window_x(rkx), window_y(rky), n);
        Expr w = weights(c, rk, ri, rkx, rky, g);
        Func acc("acc");
        acc(c, g, x, y, n) = cast<int64_t>(0);
        acc(c, g, x, y, n) += cast<int64_t>(popcount(w & a)) * cast<int64_t>(plane_coefficient(ri) << rj);

        // popcount(a_j) over the window, shared by all output channels. Signed weights have no
        // such term: their plane loop is empty.
        RDom ra(0, words(), 0, select(encoding == 1, 0, act_bits), 0, kernel_w(), 0, kernel_h(), "ra");
        Func act_sum("act_sum");
        act_sum(g, x, y, n) = 0;
        act_sum(g, x, y, n) += cast<int32_t>(popcount(in(ra[0], ra[1], g, window_x(ra[2]), window_y(ra[3]), n)) << ra[1]);

        Func total("total");
        total(c, g, x, y, n) = acc(c, g, x, y, n) + cast<int64_t>(activation_offset() * act_sum(g, x, y, n));

        // Constant bit widths let the plane loops unroll and the coefficients fold to shifts:
        // W2A2 also unrolls 1x1 and 3x3 taps, W4A4 only its 16 plane pairs (compile time).
        std::vector<Expr> constant = {weight_bits == 2 && act_bits == 2 && encoding == 1};
        std::vector<Expr> constant_planes_only = {weight_bits == 4 && act_bits == 4 && encoding == 1};
        PopcountConvSchedule s;
        s.acc = acc;
        s.per_pixel = {act_sum};
        s.plane_rvars = {ri, rj};
        s.tap_rvars = {rkx, rky};
        s.word_rvar = rk;
        s.constant_bit_widths = constant;
        s.constant_bit_widths_planes_only = constant_planes_only;
        finish(total, s);
    }

private:
    Expr plane_coefficient(Expr i) {
        return select(encoding == 0, -2,
                      encoding == 2, 2 << i,
                      i == weight_bits - 1, -(1 << i), 1 << i);
    }
    Expr activation_offset() {
        return select(encoding == 0, 1, encoding == 2, -((1 << weight_bits) - 1), 0);
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::BitserialConv, bitserial_conv)
