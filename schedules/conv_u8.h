// conv_u8 schedules (docs/kernels.md, "conv_u8").
//
// tuned: a register tile of `vectors` vectors of output channels x `pixels` output pixels (of
// the flattened image) is the innermost block; the reduction (channel blocks, then taps) runs
// around it, the four (or two) input channels of one lane innermost as an atomic vectorized
// reduction, which Halide 14 turns into one instruction per vector:
//   - AVX-512 (avx512_sapphirerapids): VectorReduce(add, 4) of i32(widening_mul(u8, i8)) with the
//     accumulator as init = vpdpbusd; a tile of 4 zmm (64 channels) x 7 pixels.
//   - AVX2, narrow weights (the conv_u8_narrow library): one vpmaddubsw per 32 products (its pair
//     sums cannot saturate with such weights); `int16` (default): lanes (half, channel) of int16,
//     vpaddw over `chunk` channel blocks, then per chunk and tap one vpmaddwd with ones adds each
//     channel's two halves into its int32 lane; a tile of 4 ymm (32 channels) x 3 pixels.
//     `madd`: vpmaddwd with ones into int32 lanes and vpaddd (oneDNN's sequence), 2 ymm (16
//     channels) x 5 pixels.
//   - AVX2: lanes are (half, channel): the two pairs of a 4-channel block go to two adjacent i32
//     lanes, VectorReduce(add, 2) of i32(widening_mul(i16, i16)) = vpmaddwd (+ vpaddd); the halves
//     are added once per output. Activations are widened to int16 once, in the padded copy; the
//     weights come widened from `weights16`, prepared with the model in tiles of kWeights16Tile
//     output channels (widening each tile's weights once per task took 9.5% of the 7x7x512
//     layer); a tile of 2 ymm (8 channels) x 5 pixels. (vpmaddubsw would saturate: u8 x s8 pair
//     sums reach 65280.)
//   - ARM with the dot product (arm-64-linux-arm_dot_prod): as AVX-512, VectorReduce(add, 4) of
//     i32(widening_mul(i8, i8)) = sdot, on activations shifted to int8; 4 q (16 channels) x 6 pixels.
//   - ARM: the same as AVX2 (smull + addp); a tile of 2 q registers (4 channels) x 6 pixels.
// naive: the algorithm's loops, one output at a time (the `scalar` target).
#pragma once
#include "Halide.h"
#include "target.h"
#include "channel_tile.h"

namespace halibit {

using namespace Halide;

// How a target's dot product splits the four input channels of a block.
struct ConvU8Layout {
    int pair_lanes = 1;  // H: accumulator lanes per output channel (4 / H products per lane)
    Type activation_type = UInt(8);
    Type weight_type = Int(8);
    bool weight_tile_copy = false;  // copy each channel tile's weights (converted) once per task
    int vectors = 1;     // output-channel vectors in the register tile
    int pixels = 1;      // output pixels in the register tile
    bool int16_pairs = false;  // narrow AVX2: vpmaddubsw pairs summed in int16 (acc16) per chunk
    // arm64 dot product: activations stored as int8 code - 128 (sdot takes int8 x int8); the
    // kernel adds 128 x the output channel's weight sum back.
    bool shifted_activations = false;
    bool madd_pairs = false;   // narrow AVX2, `madd`: vpmaddubsw pairs, vpmaddwd with ones into int32
    bool prepared_int16_weights = false;  // read `weights16` (AVX2 full range), not `weights`
};

// Output channels per tile of `weights16` (the AVX2 register tile's; the runtime's copy in
// runtime/src/conv_u8.cpp must match).


inline ConvU8Layout conv_u8_layout_for(const Target& t, const std::string& schedule, bool narrow = false,
                                       bool madd = true) {
    if (naive_schedule(schedule, t)) return {1, UInt(8), Int(8), false, 1, 1};
    if (t.arch == Target::X86 && t.has_feature(Target::AVX512_SapphireRapids)) return {1, UInt(8), Int(8), false, 4, 7};
    if (t.arch == Target::X86 && narrow && madd) return {1, UInt(8), Int(8), false, 2, 5, false, false, true};
    if (t.arch == Target::X86 && narrow) return {2, UInt(8), Int(8), false, 4, 3, true};
    if (t.arch == Target::X86) return {2, Int(16), Int(16), false, 2, 5, false, false, false, true};
    if (t.has_feature(Target::ARMDotProd)) return {1, Int(8), Int(8), false, 4, 6, false, true};
    return {2, Int(16), Int(16), true, 2, 6};
}

struct ConvU8Schedule {
    Func output, acc, padded, weights_tile, window;
    Func pair, acc16;          // int16_pairs and madd_pairs layouts
    RVar rp, r16;
    std::vector<RVar> r32;
    Var cb, hh;
    Var c, g, p, n, h, ci, x, y, wr;
    RVar rr, rcb, rkx, rky;
    Expr padded_channels;  // Cgp: the padded copy's channel extent
    Expr whole_blocks;     // Cg == Cgp: no padding channels
    Expr pixels;           // output pixels per image (the flattened p extent)
    ConvU8Layout layout;
};

inline void schedule_conv_u8(ConvU8Schedule& s, const std::string& schedule, const Target& target) {
    Var c = s.c, g = s.g, p = s.p, n = s.n, h = s.h;
    s.padded.compute_root();
    // Every schedule specialises the padded copy on whole channel blocks: each branch then reads
    // the input only where its own definition does (the unclamped channel index of the whole-block
    // definition would otherwise count towards the input's bounds when Cg is not a multiple of 4).
    if (naive_schedule(schedule, target)) {
        s.padded.specialize(s.whole_blocks);
        s.acc.compute_at(s.output, c);
        return;
    }
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);

    const ConvU8Layout& l = s.layout;
    // Output channels per vector: int32 lanes (int16 lanes for the vpmaddubsw pairs) over pairs.
    const int lanes = (l.int16_pairs ? target.natural_vector_size<int16_t>() : target.natural_vector_size<int32_t>()) /
                      l.pair_lanes;
    const int tc = lanes * l.vectors, tp = l.pixels;
    check_channel_tile("conv_u8", l.vectors, tc);

    // Pixel tiles are grouped into balanced chunks of at most 32 tiles; a chunk runs through all
    // output-channel tiles, so each channel tile's weights are read once per chunk and reused for
    // up to 32 pixel tiles (the 7x7x512 layer's 2.4 MB of weights would otherwise be read once
    // per pixel tile), while the chunk's input windows stay in L2. (channel tile, chunk) pairs
    // run in parallel.
    Var co("co"), cii("cii"), po("po"), pi("pi"), poo("poo"), poi("poi"), task("task");
    Expr tiles = (s.pixels + tp - 1) / tp;
    Expr chunks = (tiles + 31) / 32;
    Expr chunk = (tiles + chunks - 1) / chunks;
    s.output.split(c, co, cii, tc, TailStrategy::GuardWithIf)
        .split(p, po, pi, tp, TailStrategy::GuardWithIf)
        .split(po, poo, poi, chunk, TailStrategy::GuardWithIf)
        .reorder(cii, pi, poi, co, poo, g, n)
        .vectorize(cii, lanes, TailStrategy::GuardWithIf)
        .unroll(cii)
        .unroll(pi)
        .fuse(co, poo, task)
        .parallel(task);

    s.window.compute_root();

    if (l.madd_pairs) {
        // The int32 tile (rr: the two pairs of a block, vpmaddwd) and, per block, the tile of
        // vpmaddubsw pairs.
        s.acc.compute_at(s.output, poi).bound_extent(h, 1).bound_extent(c, tc).bound_extent(p, tp).reorder(h, c, p)
            .vectorize(c, lanes).unroll(c).unroll(p);
        Stage um = s.acc.update();
        um.reorder(s.rr, h, c, p, s.rcb, s.rkx, s.rky).atomic().vectorize(s.rr).vectorize(c, lanes).unroll(c).unroll(p);
        s.pair.compute_at(s.acc, s.rcb).bound_extent(s.hh, 2).bound_extent(c, tc).bound_extent(p, tp)
            .reorder(s.hh, c, p).vectorize(s.hh).vectorize(c, lanes).unroll(c).unroll(p);
        Stage up = s.pair.update();
        up.reorder(s.rp, s.hh, c, p).atomic(true).vectorize(s.rp).vectorize(s.hh).vectorize(c, lanes).unroll(c).unroll(p);
    } else if (l.int16_pairs) {
        // Three register tiles of lanes (h, c), every loop around them unrolled: the int32 sums
        // (per chunk and tap), the int16 sums of a chunk, and one block's vpmaddubsw pairs.
        // (The pair Func's own pair variable is hh.)
        auto tile = [&](Func f, Var hv) {
            f.bound_extent(hv, 2).bound_extent(c, tc).bound_extent(p, tp).reorder(hv, c, p).vectorize(hv)
                .vectorize(c, lanes).unroll(c).unroll(p);
        };
        auto tile_update = [&](Stage st, Var hv) { st.vectorize(hv).vectorize(c, lanes).unroll(c).unroll(p); };
        // acc: one int32 lane per channel (h extent 1), 8 channels a ymm; its update's rr (the
        // two halves) is the vpmaddwd reduction.
        const int lanes32 = target.natural_vector_size<int32_t>();
        s.acc.compute_at(s.output, poi).bound_extent(h, 1).bound_extent(c, tc).bound_extent(p, tp).reorder(h, c, p)
            .vectorize(c, lanes32).unroll(c).unroll(p);
        Stage u32 = s.acc.update();
        u32.reorder(s.rr, h, c, p, s.r32[0], s.r32[1], s.r32[2]).atomic().vectorize(s.rr).vectorize(c, lanes32).unroll(c).unroll(p);
        tile(s.acc16, h);
        s.acc16.compute_at(s.acc, s.r32[0]);
        Stage u16 = s.acc16.update();
        u16.reorder(h, c, p, s.r16);
        tile_update(u16, h);
        tile(s.pair, s.hh);
        s.pair.compute_at(s.acc16, s.r16);
        Stage up = s.pair.update();
        up.reorder(s.rp, s.hh, c, p).atomic(true).vectorize(s.rp);
        tile_update(up, s.hh);
    } else {
        // The accumulator tile, in registers: every loop around an access to it is unrolled.
        s.acc.compute_at(s.output, poi)
            .bound_extent(h, l.pair_lanes)
            .bound_extent(c, tc)
            .bound_extent(p, tp)
            .reorder(h, c, p);
        Stage upd = s.acc.update();
        upd.reorder(s.rr, h, c, p, s.rcb, s.rkx, s.rky).atomic().vectorize(s.rr);
        if (l.pair_lanes > 1) {
            s.acc.vectorize(h);
            upd.vectorize(h);
        }
        s.acc.vectorize(c, lanes).unroll(c).unroll(p);
        upd.vectorize(c, lanes).unroll(c).unroll(p);
    }

    // One channel tile's weights, converted, in a compact buffer (L1/L2) reused by all pixel tiles
    // of the task: the inner loop then reads them as memory operands.
    if (l.weight_tile_copy) {
        const int wl = target.natural_vector_size(l.weight_type);
        s.weights_tile.compute_at(s.output, task).bound_extent(s.wr, 4).bound_extent(c, tc).reorder(s.wr, c).fuse(s.wr, c, s.wr)
            .vectorize(s.wr, wl, TailStrategy::GuardWithIf);
    }

    // The padded copy: whole vectors of channels where there are enough, rows in parallel.
    const int bytes = target.natural_vector_size<uint8_t>();
    s.padded.reorder(s.ci, s.x, g, s.y, n).parallel(s.y);
    s.padded.specialize(s.whole_blocks).specialize(s.padded_channels >= bytes).vectorize(s.ci, bytes, TailStrategy::ShiftInwards);
    // Four padded channels (the first layer's RGB): vectorize along x, the channels unrolled.
    s.padded.specialize(s.padded_channels == 4).unroll(s.ci, 4).vectorize(s.x, 16, TailStrategy::GuardWithIf);
}

}  // namespace halibit
