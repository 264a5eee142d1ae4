// Schedules shared by the popcount convolution families (bconv, bitserial_conv).
//
// tuned: a register tile of `tile_c` vectors of output channels x `tile_x` output pixels is the
// innermost block; the reduction (planes, words, taps) runs around it, so each weight vector is
// loaded once per tile and each activation word is broadcast once per pixel. The accumulator tile
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
    std::vector<RVar> plane_rvars;        // unrolled where the bit widths are constant
    std::vector<Expr> constant_bit_widths;  // conditions under which they are
};

struct RegisterTile {
    int vectors;  // output-channel vectors
    int pixels;   // output pixels
};

inline RegisterTile register_tile_for(const Target& t) {
    if (t.arch == Target::X86 && t.has_feature(Target::AVX512)) return {4, 6};
    if (t.arch == Target::X86) return {2, 4};
    return {4, 4};  // NEON: 32 registers of 4 lanes
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

    const int lanes = target.natural_vector_size<int32_t>();
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
        .vectorize(ci, lanes, TailStrategy::GuardWithIf);

    s.acc.compute_at(tiled, co)
        .bound_extent(c, tc)
        .bound_extent(x, tx)
        .vectorize(c, lanes)
        .unroll(c)
        .unroll(x);
    std::vector<VarOrRVar> order = {c, x};
    for (RVar r : s.acc.rvars(0)) order.push_back(r);
    // Bring the plane loops (if any) innermost around the tile.
    Stage upd = s.acc.update();
    upd.reorder(order).vectorize(c, lanes).unroll(c).unroll(x);
    for (const Expr& cond : s.constant_bit_widths) {
        Stage sp = upd.specialize(cond);
        for (RVar r : s.plane_rvars) sp.unroll(r);
    }
    for (Func f : s.per_pixel) f.compute_at(tiled, xo).bound_extent(x, tx);
    for (Func f : s.per_tile) {
        f.compute_at(tiled, co).bound_extent(c, tc).bound_extent(x, tx).vectorize(c, lanes);
        f.update().reorder(c, x).vectorize(c, lanes);
    }
    for (const Expr& b : s.branches) tiled.specialize(b);
}

}  // namespace halibit
