// Schedules shared by the popcount convolution families (bconv, bitserial_conv).
//
// tuned: a register tile of `vectors` vectors of output channels x `pixels` output pixels is the
// innermost block; the reduction (planes, taps, words) runs around it, so each weight vector is
// loaded once per tile and each activation word is broadcast once per pixel. For 1x1 and 3x3
// kernels (and the specialised bit widths) the taps and planes are unrolled around the tile and
// only the word loop remains: the accumulators then stay in registers for the whole reduction
// instead of being spilled at the end of every short word loop. The accumulator tile
// always has its full extent (bound_extent): weights are padded to 64 channels and pixels past
// the right edge read the zero border, so tails cost wasted lanes, never a scalar path.
// naive: the algorithm's loops as written, one output at a time (the `scalar` target).
#pragma once
#include "Halide.h"
#include "../generators/output_stage.h"

namespace halibit {

using namespace Halide;

struct PopcountConvSchedule {
    Func output;               // what the pipeline returns
    Func tiled;                // the Func tiled over (c, x): output itself, or the codes that get packed
    Func acc;                  // the accumulator with its reduction update
    std::vector<Func> per_pixel;  // reductions shared by all channels of a pixel (computed per tile)
    std::vector<Func> per_tile;   // small reductions over (c, x) computed beside acc
    std::vector<Expr> branches;   // conditions `tiled` is specialized on (each branch drops unused work)
    OutputKind kind = OutputKind::int32;
    Var c, g, x, y, n;
    std::vector<RVar> plane_rvars;          // unrolled where the bit widths are constant
    std::vector<Expr> constant_bit_widths;  // conditions under which they are (taps unrolled too)
    std::vector<Expr> constant_bit_widths_planes_only;  // ... (taps not unrolled: code size)
    std::vector<RVar> tap_rvars;            // kx, ky: unrolled for 1x1 and 3x3 kernels
    RVar word_rvar;                         // the packed-word loop, left as the innermost loop
    Expr kernel_w, kernel_h;                // weights.dim(3), dim(4) extents
};

struct RegisterTile {
    int vectors;  // output-channel vectors
    int pixels;   // output pixels
};

// In 64-bit lanes: 8 per zmm, 4 per ymm, 2 per NEON q register.
inline RegisterTile register_tile_for(const Target& t) {
    if (t.arch == Target::X86 && t.has_feature(Target::AVX512)) return {4, 6};  // 24 of 32 zmm
    if (t.arch == Target::X86) return {2, 4};  // 8 of 16 ymm: the nibble popcount needs the rest
    return {4, 4};                             // 16 of 32 NEON registers
}

inline bool is_scalar_target(const Target& t) {
    return t.arch == Target::X86 && !t.has_feature(Target::SSE41);
}

inline void schedule_popcount_conv(PopcountConvSchedule& s, const std::string& schedule, const Target& target,
                                   bool auto_schedule) {
    if (auto_schedule) return;
    Var c = s.c, g = s.g, x = s.x, y = s.y, n = s.n;
    if (schedule == "naive" || is_scalar_target(target)) {
        if (s.kind == OutputKind::packed) s.tiled.compute_at(s.output, x);
        s.acc.compute_at(s.tiled, c);
        for (Func f : s.per_tile) f.compute_at(s.tiled, c);
        for (Func f : s.per_pixel) f.compute_at(s.tiled, x);
        for (const Expr& b : s.branches) s.tiled.specialize(b);
        return;
    }
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);

    const int lanes = target.natural_vector_size<int64_t>();
    const RegisterTile tile = register_tile_for(target);
    const int tc = lanes * tile.vectors, tx = tile.pixels;
    Var co("co"), ci("ci"), xo("xo"), xi("xi");

    Func tiled = s.tiled;
    if (s.kind == OutputKind::packed) {
        // Whole pixels of codes are made, then packed eight channels to a byte.
        Var kb = s.output.args()[0], xp = s.output.args()[3], yp = s.output.args()[4];
        Var xpo("xpo"), xpi("xpi");
        s.output.split(xp, xpo, xpi, tx, TailStrategy::GuardWithIf).reorder(kb, s.output.args()[1], xpi, s.output.args()[2], xpo, yp).parallel(yp);
        tiled.compute_at(s.output, xpo);
    } else {
        tiled.parallel(y);
    }
    tiled.split(c, co, ci, tc, TailStrategy::GuardWithIf)
        .split(x, xo, xi, tx, TailStrategy::GuardWithIf)
        .reorder(ci, xi, co, xo, g, y, n)
        .vectorize(ci, lanes, TailStrategy::GuardWithIf)
        .unroll(ci)
        .unroll(xi);  // constant indices into acc, so LLVM keeps the whole tile in registers

    s.acc.compute_at(tiled, co)
        .bound_extent(c, tc)
        .bound_extent(x, tx)
        .vectorize(c, lanes)
        .unroll(c)
        .unroll(x);
    Stage upd = s.acc.update();
    upd.vectorize(c, lanes).unroll(c).unroll(x);
    // Specialisations: {bit widths} x {1x1, 3x3}, bit widths alone, then each kernel size alone.
    // Inside each, every constant-extent RVar is unrolled around the tile and the word loop is
    // innermost. Each one is compiled for every target and output kind: keep the list short.
    auto plane_tap_order = [&](Stage st, bool planes_constant, bool taps_constant) {
        std::vector<VarOrRVar> order = {c, x};
        for (RVar r : s.plane_rvars) {
            if (planes_constant) st.unroll(r);
            if (planes_constant) order.push_back(r);
        }
        for (RVar r : s.tap_rvars) {
            if (taps_constant) st.unroll(r);
            order.push_back(r);
        }
        order.push_back(s.word_rvar);
        if (!planes_constant)
            for (RVar r : s.plane_rvars) order.push_back(r);
        st.reorder(order);
    };
    Expr kw = s.kernel_w, kh = s.kernel_h;
    std::vector<Expr> kernels = {kw == 3 && kh == 3, kw == 1 && kh == 1};
    for (const Expr& bits : s.constant_bit_widths)
        for (const Expr& k : kernels) plane_tap_order(upd.specialize(bits && k), true, true);
    for (const Expr& bits : s.constant_bit_widths) plane_tap_order(upd.specialize(bits), true, false);
    for (const Expr& bits : s.constant_bit_widths_planes_only) plane_tap_order(upd.specialize(bits), true, false);
    if (s.plane_rvars.empty())  // bconv: taps are all there is to unroll
        for (const Expr& k : kernels) plane_tap_order(upd.specialize(k), false, true);
    plane_tap_order(upd, false, false);
    for (Func f : s.per_pixel) f.compute_at(tiled, xo).bound_extent(x, tx);
    for (Func f : s.per_tile) {
        f.compute_at(tiled, co).bound_extent(c, tc).bound_extent(x, tx).vectorize(c, lanes);
        f.update().reorder(c, x).vectorize(c, lanes);
    }
    for (const Expr& b : s.branches) tiled.specialize(b);
}

}  // namespace halibit
