// Schedules shared by the popcount convolution families (bconv, bitserial_conv).
//
// tuned: a register tile of `vectors` vectors of output channels x `pixels` output pixels is the
// innermost block; the reduction (planes, taps, words) runs around it, so each weight vector is
// loaded once per tile and each activation word is broadcast once per pixel. Constant-extent
// plane loops (specialised bit widths) are unrolled around the tile, and on AVX2 and ARM the taps
// of 1x1 and 3x3 kernels too, so only the word loop remains. The consumer's tile loops are
// unrolled as well: every access to the accumulators has a constant index and LLVM keeps the
// whole tile in registers across the reduction. The accumulator tile always has its full extent
// (bound_extent): weights are padded to 64 channels and pixels past the right edge recompute the
// last column, so tails cost wasted lanes, never a scalar path.
//
// A family may give a specialised accumulator (e.g. W2A2) its own Func and register tile: the
// consumer is specialised on its condition and reads only that accumulator there.
//
// naive: the algorithm's loops as written, one output at a time (the `scalar` target).
#pragma once
#include "Halide.h"
#include "target.h"
#include "channel_tile.h"
#include "../generators/output_stage.h"

namespace halibit {

using namespace Halide;

struct RegisterTile {
    int vectors;  // output-channel vectors (64-bit lanes)
    int pixels;   // output pixels
};

// One accumulator Func and how to schedule it.
struct Accumulator {
    Func acc;                          // pure init + one update
    Expr when;                         // condition of its branch; undefined for the default
    RegisterTile tile;
    std::vector<RVar> plane_rvars;     // plane loops (runtime extents)
    std::vector<Expr> constant_planes; // conditions under which their extents are constant: unrolled
    std::vector<RVar> tap_rvars;       // kx, ky
    RVar word_rvar;                    // the packed-word loop, left innermost
    Var classes;                       // optional extra pure dimension (several accumulators per output)
    int class_count = 0;               // its extent, unrolled inside the tile
};

struct PopcountConvSchedule {
    Func output;                  // what the pipeline returns
    Func tiled;                   // the Func tiled over (c, x): output itself, or the codes that get packed
    std::vector<Accumulator> special;  // specialised accumulators, each with its own branch
    Accumulator acc;                   // the general one
    std::vector<Func> per_pixel;  // reductions shared by all channels of a pixel (computed per tile)
    std::vector<Func> per_tile;   // small reductions over (c, x) computed beside the general acc
    // Further conditions `tiled` is specialised on, each dropping unused work (e.g. the 64-bit
    // requantization where thresholds do): a tree with one level per inner list, each level's
    // conditions tried in order with an "else" that goes on to the next level. Every
    // accumulator branch gets the whole tree.
    std::vector<std::vector<Expr>> branches;
    std::vector<Func> per_output;  // small tables over output channels, computed once per call
    OutputKind kind = OutputKind::int32;
    Var c, g, x, y, n;
    Expr kernel_w, kernel_h;      // weights.dim(3), dim(4) extents
    std::string taps = "auto";    // auto | unrolled | rolled: the tap loops of 1x1 and 3x3 kernels
};

// In 64-bit lanes: 8 per zmm, 4 per ymm, 2 per NEON q register. `planes` is the number of weight
// plane x activation plane pairs each word feeds (1 for bconv, 4 for W2A2): more pairs keep more
// weight vectors live, so the tile shrinks to stay in registers.
inline RegisterTile register_tile_for(const Target& t, int pairs = 1) {
    if (t.arch == Target::X86 && t.has_feature(Target::AVX512)) return pairs > 1 ? RegisterTile{1, 7} : RegisterTile{2, 7};
    if (t.arch == Target::X86) return {1, 7};  // the nibble popcount needs 5 more ymm
    return pairs > 1 ? RegisterTile{2, 4} : RegisterTile{4, 4};
}

inline void specialize_tree(Stage st, const std::vector<std::vector<Expr>>& levels, size_t level = 0) {
    if (level == levels.size()) return;
    for (const Expr& cond : levels[level]) specialize_tree(st.specialize(cond), levels, level + 1);
    specialize_tree(st, levels, level + 1);
}

inline void schedule_popcount_conv(PopcountConvSchedule& s, const std::string& schedule, const Target& target,
                                   bool auto_schedule) {
    if (auto_schedule) return;
    Var c = s.c, g = s.g, x = s.x, y = s.y, n = s.n;
    std::vector<Accumulator*> accs;
    for (auto& a : s.special) accs.push_back(&a);
    accs.push_back(&s.acc);

    if (naive_schedule(schedule, target)) {
        if (s.kind == OutputKind::packed) s.tiled.compute_at(s.output, x);
        for (Accumulator* a : accs) a->acc.compute_at(s.tiled, c);
        for (Func f : s.per_tile) f.compute_at(s.tiled, c);
        for (Func f : s.per_pixel) f.compute_at(s.tiled, x);
        for (Func f : s.per_output) f.compute_root();
        for (auto& a : s.special) s.tiled.specialize(a.when);
        specialize_tree(s.tiled, s.branches);
        return;
    }
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);

    const int lanes = target.natural_vector_size<int64_t>();
    const int tx = s.acc.tile.pixels;  // the same for every accumulator
    Var co("co"), ci("ci"), xo("xo"), xi("xi");
    Func tiled = s.tiled;
    if (s.kind == OutputKind::packed) {
        // Whole pixels of codes are made, then packed eight channels to a byte.
        auto a = s.output.args();
        Var xpo("xpo"), xpi("xpi");
        s.output.split(a[3], xpo, xpi, tx, TailStrategy::GuardWithIf).reorder(a[0], a[1], xpi, a[2], xpo, a[4]).parallel(a[4]);
        tiled.compute_at(s.output, xpo);
    }
    auto tile_loops = [&](Stage st, RegisterTile t) {
        st.split(c, co, ci, lanes * t.vectors, TailStrategy::GuardWithIf)
            .split(x, xo, xi, tx, TailStrategy::GuardWithIf)
            .reorder(ci, xi, co, xo, g, y, n)
            .vectorize(ci, lanes, TailStrategy::GuardWithIf)
            .unroll(ci)
            .unroll(xi);
        if (s.kind != OutputKind::packed) st.parallel(y);
    };
    // Specialised branches first: each inherits nothing of the general tiling. Each then gets the
    // chain of further branches, which inherit its tiling.
    for (auto& a : s.special) {
        Stage st = tiled.specialize(a.when);
        tile_loops(st, a.tile);
        specialize_tree(st, s.branches);
    }
    tile_loops(tiled, s.acc.tile);
    specialize_tree(tiled, s.branches);
    for (Func f : s.per_output) f.compute_root();

    // Unrolled taps pay on AVX2 and NEON for accumulators without plane loops (bconv; on NEON also
    // W2A2's per-power accumulators), where loop overhead competes with a long popcount sequence.
    // On AVX-512 only for W2A2's per-power accumulators with 1x1 kernels; for 3x3 kernels, bconv
    // and around unrolled plane pairs the unrolled block's live addresses cost as much as the
    // loop or more.
    Expr kw = s.kernel_w, kh = s.kernel_h;
    if (s.taps != "auto" && s.taps != "unrolled" && s.taps != "rolled")
        throw std::runtime_error("popcount_conv: taps must be auto, unrolled or rolled");
    for (Accumulator* a : accs) {
        check_channel_tile("popcount_conv", a->tile.vectors, lanes * a->tile.vectors);
        std::vector<Expr> kernels;
        const bool avx512 = target.has_feature(Target::AVX512);
        if (s.taps == "unrolled" || (s.taps == "auto" && !avx512 && a->plane_rvars.empty()))
            kernels = {kw == 3 && kh == 3, kw == 1 && kh == 1};
        else if (s.taps == "auto" && avx512 && a->class_count)
            kernels = {kw == 1 && kh == 1};
        const int tc = lanes * a->tile.vectors;
        a->acc.compute_at(tiled, co).bound_extent(c, tc).bound_extent(x, tx).vectorize(c, lanes).unroll(c).unroll(x);
        Stage upd = a->acc.update();
        upd.vectorize(c, lanes).unroll(c).unroll(x);
        if (a->class_count) {
            a->acc.bound_extent(a->classes, a->class_count).unroll(a->classes);
            upd.unroll(a->classes);
        }
        // Constant-extent RVars unrolled around the tile, the word loop innermost.
        auto order = [&](Stage st, bool planes_constant, bool taps_constant) {
            std::vector<VarOrRVar> o = {c, x};
            if (a->class_count) o.push_back(a->classes);
            if (planes_constant)
                for (RVar r : a->plane_rvars) st.unroll(r), o.push_back(r);
            for (RVar r : a->tap_rvars) {
                if (taps_constant) st.unroll(r);
                o.push_back(r);
            }
            o.push_back(a->word_rvar);
            if (!planes_constant)
                for (RVar r : a->plane_rvars) o.push_back(r);
            st.reorder(o);
        };
        for (const Expr& k : kernels) order(upd.specialize(k), false, true);
        for (const Expr& p : a->constant_planes) order(upd.specialize(p), true, false);
        order(upd, false, false);
    }
    for (Func f : s.per_pixel) f.compute_at(tiled, xo).bound_extent(x, tx);
    const int tc = lanes * s.acc.tile.vectors;
    for (Func f : s.per_tile) {
        f.compute_at(tiled, co).bound_extent(c, tc).bound_extent(x, tx).vectorize(c, lanes);
        f.update().reorder(c, x).vectorize(c, lanes);
    }
}

}  // namespace halibit
