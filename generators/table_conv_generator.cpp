// `table_conv`: bconv and bitserial convolutions on bit planes whose multiply-accumulate is a
// 16-entry byte table lookup in a register (lookup16.h: vpshufb on x86, tbl on arm64), four
// input channels at a time, for every output channel of a vector at once.
//
// A step is one nibble m (4 input channels) of one packed word of one tap. Its table is chosen
// by the activation's bits there and indexed by the weight nibble of each output channel:
//   bconv:     T_a[w] = popcount(a ^ w)                           (a = the activation nibble)
//   bitserial: T_lo,hi,l[w] = 4^l (popcount(lo & w) + 2 popcount(hi & w))
//              (lo, hi = the nibbles of activation planes 2l and 2l + 1: one lookup covers two
//              activation planes, so A1 and A2 take one lookup per step, A3 and A4 two)
// so that summed over the window, S_i = sum (bit i of w) x code for weight plane i, and
//   output = base + sum_i coefficients(i) S_i
//   base   = bconv: Cg x (taps inside the image, or all taps with one-padding)
//            bitserial: activation_offset x (sum of the codes in the window)
// the same int32 as the bconv and bitserial_conv generators and runtime/reference/conv.h.
//
// The table set (tables(4 t + q): bytes 4q..4q+3 of table t) is a constant of the kernel; a
// step's table offset comes from a per-call pass over the activations (`table_index`). Outside the image, bconv
// with zero padding takes the zero table (its taps are then left out of the base).
//
// Sums are kept in byte accumulators for as many steps as a byte holds (a `flush` chunk: whole
// words while 4 x 3 x 16 = 192 <= 255 (A <= 2), quarter words of 4 steps for A3 and A4),
// widened into 16-bit sums (exact while the window x largest code fits 16 bits: the runtime's
// table_sums_fit) and then into int32 with the coefficients.
//
// Layouts (the contract with runtime/src/kernels.cpp):
//   input    (k, j, g, x, y, n) uint64 words of bit planes, x and y from -pad (the zero border)
//   weights  (c % 64, i, m, word, g, c / 64) uint8 nibbles: bits 4m..4m+3 of packed word k of
//            weight plane i at tap (kx, ky), word = k + words (kx + kernel_w ky), in blocks of
//            64 output channels (PackedWeights::nibbles; the strides inside a block are constants)
//   output   (c, g, p, n), p = y * out_width + x
#include <algorithm>

#include "Halide.h"
#include "flattened_window.h"
#include "lookup16.h"
#include "output_stage.h"
#include "../schedules/table_conv.h"

namespace halibit {

class TableConv : public Generator<TableConv> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    GeneratorParam<OutputKind> output_kind{"output_kind", OutputKind::int32, output_kind_names};
    GeneratorParam<int> weight_bits{"weight_bits", 2};  // weight planes, 1..4
    // Register tile (output-channel vectors x output pixels) and the words a byte-accumulator
    // chunk spans at A1 and bconv (at most 3: 3 x 16 steps x 4 = 192 <= 255, 4 words could reach
    // 256); 0 takes the target's default (schedules/table_conv.h). For schedule experiments:
    // bench/sweep.py --family table_conv.
    GeneratorParam<int> tile_vectors{"tile_vectors", 0};
    GeneratorParam<int> tile_pixels{"tile_pixels", 0};
    GeneratorParam<int> flush_words{"flush_words", 3};
    GeneratorParam<int> step_unroll{"step_unroll", 0};  // steps unrolled in the inner loop; 0: the target's

    Input<Buffer<uint64_t>> input{"input", 6};     // (k, j, g, x, y, n)
    Input<Buffer<uint8_t>> weights{"weights", 6};  // (c % 64, i, m, word, g, c / 64)
    Input<int32_t> kernel_w{"kernel_w"};
    Input<int32_t> kernel_h{"kernel_h"};
    Input<Buffer<int32_t>> coefficients{"coefficients", 1};  // per weight plane
    // The byte accumulators' chunks: 0 for bconv and A1, 1 for A2, 2 for A3 and A4 (the runtime
    // picks it; an int compared with constants, so that each branch holds only its accumulator).
    Input<int32_t> flush_class{"flush_class"};
    Input<int32_t> activation_offset{"activation_offset"};  // bitserial
    Input<bool> bconv{"bconv"};
    Input<bool> zero_padding{"zero_padding"};  // bconv: padding contributes nothing
    Input<int32_t> in_channels{"in_channels"};  // per group (bconv's base)
    Input<int32_t> stride{"stride"};
    Input<int32_t> pad{"pad"};
    Input<Buffer<int32_t>> multiplier{"multiplier", 1};  // per output channel (output_kind codes)
    Input<Buffer<int64_t>> bias{"bias", 1};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    Output<Buffer<>> output{"output", 4};  // (c, g, p, n)

    void generate() {
        if (output_kind == OutputKind::packed) throw std::runtime_error("table_conv: output_kind packed is not supported");
        const int bits = weight_bits;
        if (bits < 1 || bits > 4) throw std::runtime_error("table_conv: weight_bits must be 1..4");
        if (flush_words < 1 || flush_words > 3) throw std::runtime_error("table_conv: flush_words must be 1..3");
        use_lookup16(get_target(), get_externs_map());

        Expr words = input.dim(0).extent(), planes = input.dim(1).extent();
        Expr in_w = input.dim(3).extent() + 2 * input.dim(3).min(), in_h = input.dim(4).extent() + 2 * input.dim(4).min();
        Expr total_words = words * kernel_w * kernel_h;

        // The table set: 16 bconv tables, then the bitserial ones by (l, hi, lo); table 16
        // (l = 0, lo = hi = 0) is all zeros. A constant of the compiled kernel (built here, not
        // per call), flat: tables(4 t + q) = bytes 4q..4q+3 of table t, so that a step's word
        // offset 4 t (table_index's value) scales into an address with no shift.
        const int table_count = 16 + 2 * 256;
        Buffer<uint32_t> tables(4 * table_count, "tables");
        for (int t = 0; t < table_count; t++)
            for (int q = 0; q < 4; q++) {
                const bool bitserial = t >= 16;
                const int u = std::max(t - 16, 0), l = u / 256, hi = (u / 16) % 16, lo = u % 16;
                uint32_t word = 0;
                for (int b = 0; b < 4; b++) {
                    const int w = 4 * q + b;
                    const int v = bitserial ? (__builtin_popcount(lo & w) + 2 * __builtin_popcount(hi & w)) << (2 * l)
                                            : __builtin_popcount(t ^ w);
                    word |= uint32_t(v) << (8 * b);
                }
                tables(4 * t + q) = word;
            }

        // A step's table: table_index(m, row) with row = (l, k, g, x, y, n) flattened over the
        // padded input, so that a tile's index is a pixel's row plus a word's offset
        // (multi-dimensional, the index arithmetic per word cost as much as a word's lookups).
        // Written by a scatter over that domain; lookups past the activation planes' are not
        // computed.
        Var m("m"), row("row"), x("x"), y("y");
        Expr G = input.dim(2).extent(), X = input.dim(3).extent(), Y = input.dim(4).extent();
        Expr xmin = input.dim(3).min(), ymin = input.dim(4).min();
        Expr lookups = select(planes > 2, 2, 1);
        auto flat_row = [&](Expr l, Expr k, Expr g, Expr x, Expr y, Expr n) {
            return l + 2 * (k + words * (g + G * ((x - xmin) + X * ((y - ymin) + Y * n))));
        };
        Expr rows = 2 * words * G * X * Y * input.dim(5).extent();
        Func table_index("table_index");
        RDom rt(0, lookups, 0, words, 0, G, xmin, X, ymin, Y, 0, input.dim(5).extent(), "rt");
        {
            Expr l = rt[0], k = rt[1], g = rt[2], x = rt[3], y = rt[4], n = rt[5];
            // (From the word's 32-bit halves: m is vectorized, and 64-bit lanes cost twice.)
            auto nibble = [&](Expr word) {
                Expr half = select(m < 8, cast<uint32_t>(word), cast<uint32_t>(word >> 32));
                return cast<int32_t>((half >> cast<uint32_t>(4 * (m % 8))) & 15);
            };
            Expr j0 = min(2 * l, planes - 1), j1 = min(2 * l + 1, planes - 1);
            Expr lo = nibble(input(k, j0, g, x, y, n));
            Expr hi = select(2 * l + 1 < planes, nibble(input(k, j1, g, x, y, n)), 0);
            Expr outside = x < 0 || x >= in_w || y < 0 || y >= in_h;
            Expr b = select(zero_padding && outside, 16, lo);
            table_index(m, row) = undef<uint16_t>();
            table_index(m, flat_row(l, k, g, x, y, n)) = cast<uint16_t>(4 * select(bconv, b, 16 + 256 * l + 16 * hi + lo));
        }

        // Each packed word of the window (k, kx, ky): its offset in table_index's rows.
        Var wd("wd");
        Func word_at("word_at");
        {
            Expr k = wd % words, kx = (wd / words) % kernel_w, ky = wd / (words * kernel_w);
            word_at(wd) = 2 * (k + words * G * (kx + X * ky));
        }

        FlattenedWindow fw = flattened_window(p, in_w, in_h, kernel_w, kernel_h, stride, stride, pad);
        Expr wx = fw.x, wy = fw.y;

        // Byte accumulators, one Func per flush class: (steps per chunk in a word, words per
        // chunk, lookups per step). A chunk is (mq, wq): nibbles mq*MF.. of words wq*WF.. .
        TableConvSchedule s;
        struct Class {
            int mf, wf, lookups;
        };
        const std::vector<Class> classes = {
            {16, int(flush_words), 1},  // bconv, A1: growth 4 a step, 63 steps
            {16, 1, 1},                 // A2: growth 12, 21 steps
            {4, 1, 2},                  // A3, A4: growth 28 and 60
        };
        std::vector<Expr> class_sums;
        for (const Class& cl : classes) {
            const std::string tag = std::to_string(s.classes.size());
            Var mq("mq"), wq("wq");
            RDom r(0, cl.lookups, 0, cl.mf, 0, cl.wf, "r" + tag);
            RVar rl = r[0], rm = r[1], rw = r[2];
            Expr wdi = wq * cl.wf + rw;
            if (cl.wf > 1) r.where(wdi < total_words);
            Expr wclamped = min(wdi, total_words - 1);
            Expr mm = mq * cl.mf + rm;
            Expr at = unsafe_promise_clamped(flat_row(rl, 0, g, wx, wy, n) + word_at(wclamped), 0, rows - 1);
            Expr idx = unsafe_promise_clamped(cast<int32_t>(table_index(mm, at)), 0, 4 * (table_count - 1));
            std::vector<Expr> table;
            for (int w = 0; w < 4; w++) table.push_back(tables(idx + w));
            Func acc8("acc8_" + tag);
            acc8(c, i, p, g, n, mq, wq) = cast<uint8_t>(0);
            // (lookup16_add: each step's lookups go straight into the accumulators; summed
            // first, they kept more registers live and spilled. A chunk never saturates.)
            const int B = kWeightChannelAlign;
            acc8(c, i, p, g, n, mq, wq) =
                lookup16_add(acc8(c, i, p, g, n, mq, wq), weights(c % B, i, mm, wclamped, g, c / B), table);
            RDom rc(0, 16 / cl.mf, 0, (total_words + cl.wf - 1) / cl.wf, "rc" + tag);
            Func acc16("acc16_" + tag);
            acc16(c, i, p, g, n) = cast<uint16_t>(0);
            acc16(c, i, p, g, n) += cast<uint16_t>(acc8(c, i, p, g, n, rc[0], rc[1]));
            Expr sum = cast<int32_t>(0);
            for (int b = 0; b < bits; b++) sum += coefficients(b) * cast<int32_t>(acc16(c, b, p, g, n));
            class_sums.push_back(sum);
            TableConvClass tc;
            tc.acc8 = acc8;
            tc.acc16 = acc16;
            tc.r8 = {rl, rm, rw};
            tc.r16 = {rc[0], rc[1]};
            tc.steps = cl.mf;
            tc.words = cl.wf;
            tc.when = flush_class == int(s.classes.size());
            s.classes.push_back(tc);
        }
        Expr total = class_sums.back();
        for (int k = int(class_sums.size()) - 2; k >= 0; k--) total = select(flush_class == k, class_sums[k], total);

        // The base: bconv Cg x counted taps; bitserial the window's code sum x offset.
        RDom rj(0, planes, 0, words, "rj");
        Func code_sum("code_sum");
        code_sum(g, x, y, n) = 0;
        code_sum(g, x, y, n) += cast<int32_t>(popcount(input(rj[1], rj[0], g, x, y, n))) << rj[0];
        RDom ra(0, kernel_w, 0, kernel_h, "ra");
        Func act_sum("act_sum");
        act_sum(g, p, n) = 0;
        act_sum(g, p, n) += code_sum(g, wx + ra[0], wy + ra[1], n);
        Expr inside_x = min(wx + kernel_w, in_w) - max(wx, 0), inside_y = min(wy + kernel_h, in_h) - max(wy, 0);
        Expr taps = select(zero_padding, inside_x * inside_y, kernel_w * kernel_h);
        Expr base = select(bconv, in_channels * taps, activation_offset * act_sum(g, p, n));

        Func sums("sums");
        sums(c, g, p, n) = base + total;
        Func result("result");
        if (output_kind == OutputKind::int32) {
            result(c, g, p, n) = sums(c, g, p, n);
        } else {
            // Codes by level thresholds (output_stage.h), the levels a loop: 2^out_bits - 1.
            // The thresholds and flips per (channel of the group, group), over the tiles'
            // channels (those past the group's last repeat its last: their codes are not
            // stored), so that a tile reads them as whole vectors.
            Expr cog = multiplier.dim(0).extent() / input.dim(2).extent();
            Expr co = g * cog + min(c, cog - 1);
            Func thresholds = requantization_thresholds(multiplier, bias, shift);
            Var l("l");
            Func levels("levels"), flips("flips");
            levels(c, l, g) = thresholds(l, co);
            flips(c, g) = multiplier(co) >> 31;
            RDom rl(0, (1 << out_bits) - 1, "levels");
            Func codes("codes");
            codes(c, g, p, n) = cast<uint8_t>(0);
            codes(c, g, p, n) += cast<uint8_t>((sums(c, g, p, n) ^ flips(c, g)) >= levels(c, rl, g));
            result(c, g, p, n) = codes(c, g, p, n);
            s.thresholds = thresholds;
            s.levels = {levels, flips};
            s.codes = codes;
            s.codes_rvar = rl;
        }
        output = result;

        input.dim(0).set_stride(1);
        const int B = kWeightChannelAlign;  // the nibbles' channel block
        weights.dim(0).set_min(0).set_extent(B).set_stride(1);
        weights.dim(1).set_min(0).set_extent(bits).set_stride(B);
        weights.dim(2).set_min(0).set_extent(16).set_stride(B * bits);
        weights.dim(3).set_stride(B * bits * 16);
        output.dim(0).set_min(0).set_stride(1);

        s.output = result;
        s.sums = sums;
        s.table_index = table_index;
        s.word_at = word_at;
        s.window = fw.window;
        s.per_pixel = {code_sum, act_sum};
        s.table_y = rt[4];
        s.c = c; s.i = i; s.g = g; s.p = p; s.n = n; s.m = m;
        s.bits = bits;
        s.tile_vectors = tile_vectors;
        s.tile_pixels = tile_pixels;
        s.step_unroll = step_unroll;
        schedule_table_conv(s, schedule, get_target());
    }

private:
    Var c{"c"}, i{"i"}, g{"g"}, p{"p"}, n{"n"};
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::TableConv, table_conv)
