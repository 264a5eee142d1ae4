// `bconv`: W1A1 with sign activations and binary weights (bit 1 means -1):
//   acc = sum_taps (Cg - 2 popcount(a ^ w))
// Outside the image the packed words are zero, i.e. +1: that is one-padding. With
// `zero_padding` set, the taps outside the image are taken out again exactly:
//   acc -= sum_{taps outside} (Cg - 2 popcount(w_tap))   (Larq Compute Engine's correction)
#include "popcount_conv.h"

namespace halibit {

class BConv : public PopcountConvGenerator<BConv> {
public:
    Input<int32_t> channels_per_group{"channels_per_group"};  // Cg: valid bits per group word run
    Input<bool> zero_padding{"zero_padding"};

    void generate() {
        Func in = padded_input();
        RDom r(0, words(), 0, kernel_w(), 0, kernel_h(), "r");
        RVar rk = r[0], rkx = r[1], rky = r[2];
        Expr a = in(rk, 0, g, window_x(rkx), window_y(rky), n);
        Expr w = weights(c, rk, 0, rkx, rky, g);
        Func mismatches("mismatches");
        mismatches(c, g, x, y, n) = cast<int64_t>(0);
        mismatches(c, g, x, y, n) += cast<int64_t>(popcount(a ^ w));

        // Per channel and tap: the tap's contribution when the activation is +1 everywhere.
        Var kx("kx"), ky("ky");
        RDom rw(0, words(), "rw");
        Func tap_sum("tap_sum");
        tap_sum(c, kx, ky, g) = channels_per_group;
        tap_sum(c, kx, ky, g) -= 2 * cast<int32_t>(popcount(weights(c, rw, 0, kx, ky, g)));
        RDom rt(0, kernel_w(), 0, kernel_h(), "rt");
        Expr outside = window_x(rt.x) < 0 || window_x(rt.x) >= image_width() ||
                       window_y(rt.y) < 0 || window_y(rt.y) >= image_height();
        Func correction("correction");
        correction(c, g, x, y, n) = 0;
        correction(c, g, x, y, n) += select(outside, tap_sum(c, rt.x, rt.y, g), 0);

        Expr ones = cast<int64_t>(kernel_w() * kernel_h() * channels_per_group) - 2 * mismatches(c, g, x, y, n);
        Expr total = select(zero_padding, ones - cast<int64_t>(correction(c, g, x, y, n)), ones);

        tap_sum.compute_root();
        PopcountConvSchedule s;
        s.acc.acc = mismatches;
        s.acc.tile = register_tile();
        s.acc.tap_rvars = {rkx, rky};
        s.acc.word_rvar = rk;
        s.per_tile = {correction};
        s.branches = {{zero_padding}};  // the one-padding branch drops the correction
        finish(total, s);
        if (schedule == "tuned" && !auto_schedule) {
            const int lanes = get_target().natural_vector_size<int32_t>();  // tap_sum is int32
            tap_sum.vectorize(c, lanes);
            tap_sum.update().vectorize(c, lanes);
        }
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::BConv, bconv)
