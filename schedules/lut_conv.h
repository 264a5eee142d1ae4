// lut_conv schedules (docs/kernels.md, "lut_conv").
//
// tuned: as conv_u8, a register tile of `vectors` vectors of output channels (one byte lane
// per channel: 32 on AVX2, 64 on AVX-512, 16 on arm64) x `pixels` output pixels is the
// innermost block, and the reduction runs around it; each lookup is one shuffle of a weight
// vector through a table that is the same for every lane. The tables are computed once per
// call (activation_table: for every input pixel, before the convolution).
// naive: the algorithm's loops, one output at a time (the `scalar` target).
#pragma once
#include "Halide.h"
#include "target.h"
#include "channel_tile.h"
#include "llvm_options.h"

namespace halibit {

using namespace Halide;

// Blocks (of 4 input channels) per byte-accumulator chunk: 4 entries of at most 60 fit a byte.
// The runtime pads the weights' blocks to a multiple of it (runtime/src/lut_conv.cpp).

// The activation tables' byte accumulators for `classes` (plane, digit) pairs; used where
// `when` holds.
struct FastAccumulator {
    int classes = 0;
    Func acc8, acc16, acc32;  // per chunk, per kernel row, per output
    Var cls;
    RVar r8, r32;
    std::vector<RVar> r16;
    Expr when, total;
    bool pairwise = false;  // the pairwise products' chunks (one class; lut_pairwise_tile)
};

// The pairwise kernel's register tile: per step the weight vectors, each pixel's code broadcast,
// and per (vector, pixel) an OR, a shuffle and an add into a byte accumulator.
inline std::pair<int, int> lut_pairwise_tile(const Target& t) {
    if (t.has_feature(Target::AVX512) || t.arch == Target::ARM) return {1, 12};
    return {2, 4};
}

// Register tile (output-channel vectors x pixels) by classes, from bench/sweep.py: on AVX2 two vectors (64 channels) x 3 pixels for up to 4 classes, x 1 for 8 (the
// byte and uint16 tiles spill either way; wider tiles share each table load among more
// lookups); on AVX-512 and arm64 one vector (64 / 16 channels) and as many pixels as the 32
// registers hold.
inline std::pair<int, int> lut_fast_tile(const Target& t, int classes) {
    const bool many = t.has_feature(Target::AVX512) || t.arch == Target::ARM;
    if (!many) return {2, classes <= 4 ? 3 : 1};
    switch (classes) {
    case 1: return {1, 8};
    case 2: return {1, 4};
    case 4: return {1, 2};
    default: return {1, 1};
    }
}

struct LutConvSchedule {
    Func output, acc, code, window;
    std::vector<Func> tables;     // lookup tables, computed once per call
    std::vector<Func> per_pixel;  // reductions shared by all output channels of a pixel
    RVar channel_sum_rvar;        // activation tables: the channel loop of per_pixel[0]
    std::vector<RVar> reduction;  // acc's reduction variables, innermost first
    std::vector<Var> table_vars;  // activation tables: (word, block)
    std::vector<FastAccumulator> fast;  // activation tables: specialised accumulators
    Expr general_when;                  // with `fast`: the general accumulator's condition
    Var c, g, p, n;
    Expr pixels;  // output pixels per image
    int tile_vectors = 0, tile_pixels = 0;  // 0: the target's default
};


// Splits the output (c, p) into tasks of tiles of `vectors` x lanes channels by `pixels`
// pixels, innermost loops unrolled and vectorized; returns the task variable.
inline Var tile_output(Stage out, Var c, Var g, Var p, Var n, int lanes, int vectors, int pixels, const std::string& tag) {
    Var co("co" + tag), ci("ci" + tag), po("po" + tag), pi("pi" + tag), task("task" + tag);
    out.split(c, co, ci, lanes * vectors, TailStrategy::GuardWithIf)
        .split(p, po, pi, pixels, TailStrategy::GuardWithIf)
        .reorder(ci, pi, co, po, g, n)
        .vectorize(ci, lanes, TailStrategy::GuardWithIf)
        .unroll(ci)
        .unroll(pi)
        .fuse(co, po, task)
        .parallel(task);
    return task;
}

inline void schedule_lut_conv(LutConvSchedule& s, const std::string& schedule, const Target& target) {
    Var c = s.c, g = s.g, p = s.p, n = s.n;
    if (s.table_vars.empty()) disable_slp_vectorizer();  // pairwise (the activation tables: not measured)
    for (Func t : s.tables) t.compute_root();
    for (Func f : s.per_pixel) f.compute_root();
    s.window.compute_root();
    const bool naive = naive_schedule(schedule, target);
    if (!naive && schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    const int lanes = target.natural_vector_size<uint8_t>();

    // Each fast accumulator's branch first (a specialisation copies the schedule so far), with
    // its own tile; the general accumulator is the default branch.
    for (FastAccumulator& f : s.fast) {
        Stage branch = s.output.specialize(f.when);
        Var cls = f.cls;
        if (naive) {
            f.acc32.compute_at(s.output, c);
            f.acc16.compute_at(f.acc32, f.r32);
            f.acc8.compute_at(f.acc16, f.r16[0]);
            continue;
        }
        auto [fv, fp] = f.pairwise ? lut_pairwise_tile(target) : lut_fast_tile(target, f.classes);
        if (s.tile_vectors > 0) fv = s.tile_vectors;
        if (s.tile_pixels > 0) fp = s.tile_pixels;
        check_channel_tile("lut_conv", fv, lanes * fv);
        Var task = tile_output(branch, c, g, p, n, lanes, fv, fp, "_" + std::to_string(f.classes));
        const int fc = lanes * fv;
        auto tile = [&](Func fn) { fn.bound_extent(c, fc).bound_extent(p, fp).bound_extent(cls, f.classes); };
        tile(f.acc32);
        tile(f.acc16);
        tile(f.acc8);
        f.acc32.compute_at(s.output, task).reorder(c, cls, p).vectorize(c, lanes).unroll(c).unroll(cls).unroll(p);
        f.acc32.update().reorder(c, cls, p, f.r32).vectorize(c, lanes).unroll(c).unroll(cls).unroll(p);
        f.acc16.compute_at(f.acc32, f.r32).reorder(c, cls, p).vectorize(c, lanes).unroll(c).unroll(cls).unroll(p);
        f.acc16.update().reorder(c, cls, p, f.r16[0], f.r16[1]).vectorize(c, lanes).unroll(c).unroll(cls).unroll(p);
        f.acc8.compute_at(f.acc16, f.r16[0]).reorder(c, cls, p).vectorize(c, lanes).unroll(c).unroll(cls).unroll(p);
        f.acc8.update().reorder(c, cls, p, f.r8).vectorize(c, lanes).unroll(c).unroll(cls).unroll(p).unroll(f.r8);
    }

    // With fast branches the general one is a branch too, and no other case exists: an else
    // branch would hold every accumulator.
    Stage general = s.output;
    if (!s.fast.empty()) {
        general = s.output.specialize(s.general_when);
        s.output.specialize_fail("lut_conv: fast_classes must be 0, 1, 2, 4 or 8");
    }
    if (naive) {
        s.acc.compute_at(s.output, c);
        return;
    }
    const int vectors = s.tile_vectors > 0 ? s.tile_vectors : 1;
    const int tp = s.tile_pixels > 0 ? s.tile_pixels : 3;
    const int tc = lanes * vectors;
    check_channel_tile("lut_conv", vectors, tc);
    Var task = tile_output(general, c, g, p, n, lanes, vectors, tp, "");
    s.acc.compute_at(s.output, task).bound_extent(c, tc).bound_extent(p, tp).vectorize(c, lanes).unroll(c).unroll(p);
    Stage upd = s.acc.update();
    std::vector<VarOrRVar> order = {c, p};
    for (RVar r : s.reduction) order.push_back(r);
    upd.reorder(order).vectorize(c, lanes).unroll(c).unroll(p);

    // Pairwise: the codes' words in vectors.
    if (s.table_vars.empty() && !s.per_pixel.empty()) {
        Func codes4 = s.per_pixel[0];
        codes4.vectorize(codes4.args()[0], target.natural_vector_size<uint32_t>(), TailStrategy::GuardWithIf);
    }

    // Activation tables: blocks in vectors (the four words unrolled, their stores interleaved),
    // rows in parallel; the channel sums as vector reductions.
    if (!s.table_vars.empty()) {
        Var q = s.table_vars[0], b = s.table_vars[1];
        s.tables[0].reorder(q, b).unroll(q).vectorize(b, target.natural_vector_size<uint32_t>(), TailStrategy::GuardWithIf)
            .parallel(Var("y"));
        s.per_pixel[0].update().atomic().vectorize(s.channel_sum_rvar, target.natural_vector_size<uint8_t>(),
                                                   TailStrategy::GuardWithIf);
    }
}

}  // namespace halibit
