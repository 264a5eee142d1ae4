// table_conv schedules (docs/kernels.md, "table_conv").
//
// tuned: the output is split into tasks of `block` pixels of one image and group, in which the
// channel blocks of the tile width run outermost (a block's weights stay in L2 while all the
// task's pixel tiles read them), then register tiles of `vectors` x lanes output channels x
// `pixels` pixels. Inside a tile, chunk by chunk: the byte accumulators (planes x vectors x
// pixels registers) take each step's lookups (the weight vectors loaded once per step, each
// pixel's table broadcast once per step), then are widened into the 16-bit sums. Everything in
// the tile is unrolled with constant indices, so LLVM keeps the byte accumulators in registers.
// The steps' table indices, the window origins, code sums and thresholds are computed once per
// call.
// naive: the algorithm's loops, one output at a time (the `scalar` target).
#pragma once
#include <algorithm>

#include "Halide.h"
#include "target.h"
#include "channel_tile.h"
#include "llvm_options.h"

namespace halibit {

using namespace Halide;

// One byte-accumulator class (its own branch of the output).
struct TableConvClass {
    Func acc8, acc16;
    std::vector<RVar> r8;   // lookup, step (nibble), word
    std::vector<RVar> r16;  // chunk: nibble quarter, word group
    int steps = 16;  // steps (nibbles) per word in a chunk
    int words = 1;   // words per chunk
    Expr when;
};

struct TableConvSchedule {
    Func output, sums, table_index, word_at, window;
    Func codes, thresholds;       // codes output: the codes (pure zero, one update per level)
    std::vector<Func> levels;     // codes output: thresholds (c, l, g) and flips (c, g), channel innermost
    std::vector<Func> per_pixel;  // code_sum (g, x, y, n), act_sum (g, p, n)
    RVar table_y;                 // table_index's scatter: the input row
    RVar codes_rvar;              // codes output: the level loop
    std::vector<TableConvClass> classes;
    Var c, i, g, p, n, m;
    int bits = 1;
    int tile_vectors = 0, tile_pixels = 0;  // 0: the target's default
    int step_unroll = 0;  // 0: step_unroll()
};

struct TableTile {
    int vectors, pixels, block;  // output-channel vectors, pixels, pixels a task
};

// The register tile by weight planes. AVX2 (16 ymm): byte accumulators (planes x vectors x
// pixels), the step's weight vectors (planes x vectors), a table and a lookup result: W1 and W2
// at 64 channels (5 and 2 pixels), W3 and W4 at 32 (3 and 2 pixels, sharing each weight load).
// AVX-512 (32 zmm, 64 channels a vector) and arm64 (32 q registers, 16 channels): as many
// pixels as the registers hold.
inline TableTile table_tile_for(const Target& t, int bits) {
    if (t.arch == Target::X86 && t.has_feature(Target::AVX512))
        return {1, bits == 1 ? 10 : bits == 2 ? 8 : bits == 3 ? 8 : 5, 80};
    if (t.arch == Target::X86) return {bits <= 2 ? 2 : 1, bits == 1 ? 5 : bits == 2 ? 2 : bits == 3 ? 3 : 2, 50};
    return {bits <= 2 ? 2 : 1, bits == 1 ? 6 : bits == 2 ? 4 : 4, 48};
}

// Steps unrolled in the inner loop (`requested` if set), from the assembly of each class: on
// AVX-512 a whole word; on AVX2 a whole word where a chunk spans words (bconv, A1) or the tile
// has one weight plane (a loop inside a word restarts the pixels' table-address arithmetic),
// 8 steps for the one-word chunks of wider weights (a whole word spilled their accumulators);
// 4 elsewhere. Never more than a chunk's steps.
inline int step_unroll(const Target& t, const TableConvClass& k, int bits, int requested) {
    if (requested > 0) return requested;
    if (t.arch != Target::X86) return 4;
    if (t.has_feature(Target::AVX512)) return 16;
    return k.words > 1 || bits == 1 ? 16 : 8;
}


inline void schedule_table_conv(TableConvSchedule& s, const std::string& schedule, const Target& target) {
    disable_slp_vectorizer();
    Var c = s.c, i = s.i, g = s.g, p = s.p, n = s.n;
    s.word_at.compute_root();
    s.window.compute_root();
    for (Func f : s.per_pixel) f.compute_root();
    if (s.thresholds.defined()) s.thresholds.compute_root();
    for (Func f : s.levels) f.compute_root();
    s.table_index.compute_root();
    const bool naive = naive_schedule(schedule, target);
    if (!naive && schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    const bool codes = s.codes.defined();

    if (naive) {
        s.sums.compute_at(s.output, c);
        if (codes) s.codes.compute_at(s.output, c);
        for (TableConvClass& k : s.classes) {
            s.output.specialize(k.when);
            k.acc16.compute_at(s.sums, c);
            k.acc8.compute_at(k.acc16, k.r16[0]);
        }
        s.output.specialize_fail("table_conv: flush_class must be 0, 1 or 2");
        return;
    }

    const int lanes = target.natural_vector_size<uint8_t>();
    TableTile tile = table_tile_for(target, s.bits);
    if (s.tile_vectors > 0) tile.vectors = s.tile_vectors;
    if (s.tile_pixels > 0) tile.pixels = s.tile_pixels;
    const int tc = lanes * tile.vectors, tp = tile.pixels;
    check_channel_tile("table_conv", tile.vectors, tc);
    const int block = tp * std::max(1, (tile.block + tp / 2) / tp);

    const int word_lanes = target.natural_vector_size<uint32_t>();
    for (Func f : s.levels) f.vectorize(f.args()[0], word_lanes, TailStrategy::GuardWithIf);
    // The per-call stages in parallel over input rows (serial, they took a fifth of a 56x56 layer's
    // time at two threads). The steps' table indices: 16 nibbles of a word a vector; the scatter
    // writes one row per (lookup, word, group, pixel), so rows never collide.
    s.table_index.update().vectorize(s.m, 16).allow_race_conditions().parallel(s.table_y);
    // Few, large tasks: each parallel loop is a fork and join on the thread pool's lock.
    Func code_sum = s.per_pixel[0], act_sum = s.per_pixel[1];
    const Var cx = code_sum.args()[1], cy = code_sum.args()[2];
    code_sum.vectorize(cx, word_lanes, TailStrategy::GuardWithIf).parallel(cy, 8, TailStrategy::GuardWithIf);
    code_sum.update().vectorize(cx, word_lanes, TailStrategy::GuardWithIf).parallel(cy, 8, TailStrategy::GuardWithIf);
    Var pa("pa"), pb("pb");
    act_sum.split(s.p, pa, pb, 512, TailStrategy::GuardWithIf).parallel(pa).vectorize(pb, word_lanes);
    act_sum.update().split(s.p, pa, pb, 512, TailStrategy::GuardWithIf).parallel(pa).vectorize(pb, word_lanes);

    // Tasks of one channel tile x `block` pixels (a layer of few pixels still has as many tasks
    // as channel tiles); a task's weights stay in L2 while its pixel tiles read them.
    Var co("co"), ci("ci"), pt("pt"), pr("pr"), po("po"), pi("pi"), task("task");
    Func out = s.output;
    const int out_lanes = out.output_types()[0] == Int(32) ? target.natural_vector_size<int32_t>() : lanes;
    out.split(p, pt, pr, block, TailStrategy::GuardWithIf)
        .split(pr, po, pi, tp, TailStrategy::GuardWithIf)
        .split(c, co, ci, tc, TailStrategy::GuardWithIf)
        .reorder(ci, pi, po, co, pt, g, n)
        .vectorize(ci, out_lanes, TailStrategy::GuardWithIf)
        .unroll(ci)
        .unroll(pi)
        .fuse(co, pt, task)
        .fuse(task, g, task)
        .fuse(task, n, task)
        .parallel(task);

    const int sum_lanes = target.natural_vector_size<int32_t>();
    s.sums.compute_at(out, po).bound_extent(c, tc).bound_extent(p, tp).vectorize(c, sum_lanes).unroll(c).unroll(p);
    if (codes) {
        // The levels a loop around the tile's compares.
        s.codes.compute_at(out, po).bound_extent(c, tc).bound_extent(p, tp).vectorize(c, sum_lanes).unroll(c).unroll(p);
        s.codes.update().reorder(c, p, s.codes_rvar).vectorize(c, sum_lanes).unroll(c).unroll(p);
    }

    for (TableConvClass& k : s.classes) {
        auto whole = [&](Func f) { f.bound_extent(c, tc).bound_extent(p, tp).bound_extent(i, s.bits); };
        whole(k.acc16);
        whole(k.acc8);
        k.acc16.compute_at(out, po).reorder(c, i, p).vectorize(c, lanes).unroll(c).unroll(i).unroll(p);
        k.acc16.update()
            .reorder(c, i, p, k.r16[0], k.r16[1])
            .vectorize(c, lanes)
            .unroll(c)
            .unroll(i)
            .unroll(p);
        k.acc8.compute_at(k.acc16, k.r16[0]).reorder(c, i, p).vectorize(c, lanes).unroll(c).unroll(i).unroll(p);
        // The steps unrolled `step_unroll` at a time: fully unrolled, LLVM's scheduler hoisted
        // the lookups of many steps above their adds and spilled the accumulators.
        RVar rmo("rmo"), rmi("rmi");
        k.acc8.update()
            .reorder(c, i, p, k.r8[0], k.r8[1], k.r8[2])
            .split(k.r8[1], rmo, rmi, std::min(step_unroll(target, k, s.bits, s.step_unroll), k.steps))
            .vectorize(c, lanes)
            .unroll(c)
            .unroll(i)
            .unroll(p)
            .unroll(rmi)
            .unroll(k.r8[0]);
    }
    // A branch per class (each copies the schedule above); no other case exists.
    for (TableConvClass& k : s.classes) out.specialize(k.when);
    out.specialize_fail("table_conv: flush_class must be 0, 1 or 2");
}

}  // namespace halibit
