// `lut_conv`: convolutions whose multiply-accumulate is a lookup in a 16-byte table held in a
// register (lookup16.h: vpshufb on x86, tbl on arm64). Two algorithms (GeneratorParam
// `algorithm`), both exact:
//
// pairwise (DeepGEMM): a weight index w < 4 and an activation code a < 4 form idx = w << 2 | a
//   (the weights are stored shifted: one OR per lookup) into the table of the 16 products
//   levels[w] * a, offset by the smallest, lo, so that they are unsigned bytes. `levels` is any
//   4 integers whose products with 0..3 fit int8, so signed, odd, binary and codebook
//   (non-uniform) weights of up to 2 bits all run the same kernel.
//     acc = sum_{ci, taps} (table[w(c, ci, tap) << 2 | a(ci, tap)] + lo)
//   summed in bytes for as many input channels as the entries allow (16, 4 or 1: fast_classes),
//   then in uint16 per kernel row and int32 per output.
//
// activation_table (T-MAC): at each input pixel and for each block of 4 input channels, the
//   table T_d[t] = sum_k bit_k(t) digit_d(a_k) of the 4-bit activation digit d over all weight
//   bit patterns t (entries <= 60); one table serves every output channel and tap that reads the
//   pixel. The weights' bit planes, one nibble per block, index it:
//     acc = sum_i 2^shift_i sum_d 16^d sum_{blocks, taps} T_d[w_i nibble] + offset * sum a
//   W1..4 (binary, signed, odd: planes with a negative coefficient are stored complemented,
//   which moves their sign into `offset`; runtime/src/lut_conv.cpp) x A1..8.
//
// Layouts (the contract with runtime/src/lut_conv.cpp):
//   input   (c, x, y, n) uint8 codes, NHWC, c = groups * Cg
//   weights (c, k, b, kx, ky, g) uint8, output channel c innermost (padded with zeros to a
//           multiple of 64): pairwise k = 0 and b = input channel (padded with zeros to a
//           multiple of 16), the value the weight index << 2;
//           activation_table k = plane, b = block of 4 input channels, the value the nibble
//   levels  (j) int32: pairwise the 4 levels; activation_table the plane shifts
//   output  (c, g, p, n), p = y * out_width + x, as conv_u8
#include "Halide.h"
#include "flattened_window.h"
#include "lookup16.h"
#include "output_stage.h"
#include "../schedules/lut_conv.h"

namespace halibit {

class LutConv : public Generator<LutConv> {
public:
    GeneratorParam<std::string> algorithm{"algorithm", "activation_table"};  // pairwise | activation_table
    GeneratorParam<std::string> schedule{"schedule", "tuned"};               // naive | tuned
    GeneratorParam<OutputKind> output_kind{"output_kind", OutputKind::int32, output_kind_names};
    // Register tile (output-channel vectors x output pixels); 0 takes the target's default.
    GeneratorParam<int> tile_vectors{"tile_vectors", 0};
    GeneratorParam<int> tile_pixels{"tile_pixels", 0};

    Input<Buffer<uint8_t>> input{"input", 4};      // (c, x, y, n)
    Input<Buffer<uint8_t>> weights{"weights", 6};  // (c, k, b, kx, ky, g)
    Input<Buffer<int32_t>> levels{"levels", 1};    // (j)
    Input<int32_t> act_bits{"act_bits"};
    Input<int32_t> activation_offset{"activation_offset"};  // activation_table only
    // Which byte-accumulator branch runs, 0 for the general accumulator. activation_table: planes
    // x digits when a kernel row's table sums fit uint16 (blocks x kw x largest entry <= 65535);
    // pairwise: the input channels a byte chunk sums (16, 4 or 1) when a row's entries fit
    // uint16. An int input compared with constants, so that Halide substitutes it into each
    // branch and drops the other branches' accumulators.
    Input<int32_t> fast_classes{"fast_classes"};
    Input<int32_t> stride{"stride"};
    Input<int32_t> pad{"pad"};
    Input<Buffer<int32_t>> multiplier{"multiplier", 1};  // per output channel (output_kind codes)
    Input<Buffer<int64_t>> bias{"bias", 1};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    Output<Buffer<>> output{"output", 4};  // (c, g, p, n)

    void generate() {
        if (output_kind == OutputKind::packed) throw std::runtime_error("lut_conv: output_kind packed is not supported");
        const bool pairwise = algorithm.value() == "pairwise";
        if (!pairwise && algorithm.value() != "activation_table")
            throw std::runtime_error("lut_conv: algorithm must be pairwise or activation_table");
        use_lookup16(get_target(), get_externs_map());

        Expr groups = weights.dim(5).extent();
        Expr cg = input.dim(0).extent() / groups;
        Expr kw = weights.dim(3).extent(), kh = weights.dim(4).extent();
        Expr in_w = input.dim(1).extent(), in_h = input.dim(2).extent();

        // Codes of group g at image position (x, y): 0 outside the image (zero padding) and past
        // the group's channels (the last block's tail).
        Func code("code");
        Expr inside = x >= 0 && x < in_w && y >= 0 && y < in_h && ci < cg;
        code(ci, x, g, y, n) = select(inside, input(g * cg + clamp(ci, 0, cg - 1), clamp(x, 0, in_w - 1), clamp(y, 0, in_h - 1), n),
                                      cast<uint8_t>(0));

        // Output pixel p of the flattened image and its window origin.
        FlattenedWindow fw = flattened_window(p, in_w, in_h, kw, kh, stride, stride, pad);
        Func window = fw.window;
        Expr wx = fw.x, wy = fw.y;

        LutConvSchedule s;
        Func acc("acc");
        Expr total;
        if (pairwise) {
            // The product table, 4 words: byte 4q + a holds levels[q] * a - lo (a = 0..3), lo the
            // smallest product of a code below 2^act_bits (<= 0), so that entries are unsigned
            // and a chunk of byte sums saturates never (the runtime's chunk class bounds it).
            Expr amax = (1 << act_bits) - 1;
            Expr smallest = Expr(0);
            for (int q = 0; q < 4; q++) smallest = min(smallest, levels(q) * amax);
            Var q("q");
            Func lowest("lowest"), table("products");  // (computed once per call)
            lowest() = smallest;
            Expr lo = lowest();
            Expr word = cast<uint32_t>(0);
            for (int a = 0; a < 4; a++) word = word | (cast<uint32_t>(cast<uint8_t>(levels(clamp(q, 0, 3)) * a - lo)) << (8 * a));
            table(q) = word;
            std::vector<Expr> products = {table(0), table(1), table(2), table(3)};
            s.tables = {lowest, table};
            // The codes as words of four equal bytes (one load broadcasts a code to a vector).
            Func codes4("codes4");
            codes4(ci, x, g, y, n) = cast<uint32_t>(code(ci, x, g, y, n)) * cast<uint32_t>(0x01010101);

            // The general accumulator: int32 per lookup (any levels, any window).
            RDom r(0, cg, 0, kw, 0, kh, "r");
            Expr a = code(r[0], wx + r[1], g, wy + r[2], n);
            Expr w = weights(c, 0, r[0], r[1], r[2], g);
            acc(c, g, p, n) = 0;
            acc(c, g, p, n) += cast<int32_t>(lookup16(w | a, products)) + lo;
            Expr general = acc(c, g, p, n);
            s.reduction = {r[0], r[1], r[2]};

            // Byte accumulators, `steps` input channels a chunk (fast_classes: 16 while an entry
            // stays below 16, 4 below 64, 1 otherwise), widened to uint16 per kernel row (the
            // runtime says when a row fits) and to int32 per output. The weights are stored
            // shifted (index << 2) and padded to a multiple of 16 channels with index 0 (the
            // codes past the group's are 0), so a lookup's index is w | a and every chunk is
            // whole; the entries' offset comes out once: steps x lo.
            Expr blocks = weights.dim(2).extent();
            Expr fast = general;
            for (int steps : {kPairwiseChunk, 4, 1}) {
                const std::string tag = std::to_string(steps);
                Var cls("s"), bo("bo"), kx("kx"), ky("ky");
                RDom r8(0, steps, "r8_" + tag);
                Expr b = bo * steps + r8;
                Func acc8("acc8_" + tag);
                acc8(c, cls, g, p, n, bo, kx, ky) = cast<uint8_t>(0);
                acc8(c, cls, g, p, n, bo, kx, ky) = lookup16_or_add(acc8(c, cls, g, p, n, bo, kx, ky), weights(c, 0, b, kx, ky, g),
                                                                    codes4(b, wx + kx, g, wy + ky, n), products);
                FastAccumulator f = widened(acc8, cls, r8, blocks / steps, kw, kh, 1, "p" + tag);
                f.total = f.acc32(c, 0, g, p, n) + blocks * kw * kh * lo;
                f.when = fast_classes == steps;
                f.pairwise = true;
                fast = select(f.when, f.total, fast);
                s.fast.push_back(f);
            }
            total = fast;
            s.per_pixel = {codes4};
            s.general_when = fast_classes == 0;
        } else {
            // The activation tables, as 4 words per (block, digit, pixel): word q holds entries
            // 4q..4q+3; a pattern's entry is the sum of the digits its bits select (no carries:
            // entries stay below 64).
            Var q("q"), b("b"), d("d");
            Expr digit[4];
            for (int k = 0; k < 4; k++) digit[k] = cast<uint32_t>((code(4 * b + k, x, g, y, n) >> cast<uint8_t>(4 * d)) & 15);
            auto u32 = [](uint32_t v) { return Internal::make_const(UInt(32), v); };
            Expr ones = u32(0x01010101u);
            Expr w0 = digit[0] * u32(0x01000100u) + digit[1] * u32(0x01010000u), w1 = w0 + digit[2] * ones;
            Func tables("activation_tables");
            tables(q, b, d, g, x, y, n) = select(q == 0, w0, q == 1, w1, q == 2, w0 + digit[3] * ones, w1 + digit[3] * ones);

            Expr planes = weights.dim(1).extent(), blocks = weights.dim(2).extent();
            Expr digits = (act_bits + 3) / 4;
            auto table_at = [&](Expr b, Expr d, Expr ix, Expr iy) {
                std::vector<Expr> words;
                for (int k = 0; k < 4; k++) words.push_back(tables(k, b, d, g, ix, iy, n));
                return words;
            };
            // A lookup's weight: 2^(shift of its plane) x 16^digit.
            auto class_shift = [&](Expr i, Expr d) { return cast<uint32_t>(levels(clamp(i, 0, planes - 1)) + 4 * d); };

            // The general accumulator: any planes and digits, int32 per lookup.
            RDom r(0, blocks, 0, kw, 0, kh, 0, planes, 0, digits, "r");
            RVar rb = r[0], rkx = r[1], rky = r[2], ri = r[3], rd = r[4];
            Expr entry = lookup16(weights(c, ri, rb, rkx, rky, g), table_at(rb, rd, wx + rkx, wy + rky));
            acc(c, g, p, n) = 0;
            acc(c, g, p, n) += cast<int32_t>(entry) << class_shift(ri, rd);
            Expr general = acc(c, g, p, n);

            // Byte accumulators for S = planes x digits classes (plane i = s / digits, digit
            // d = s % digits), S constant: a lookup adds one byte; the bytes of kLutChunk blocks
            // (<= 4 x 60) are widened to uint16 over the blocks and kx taps of a kernel row
            // (the runtime says when those fit: fast_classes), and to int32 per row. The runtime
            // pads the blocks to a multiple of kLutChunk with zero nibbles (entry 0 is 0).
            Expr fast = general;
            for (int classes : {8, 4, 2, 1}) {
                FastAccumulator f = fast_accumulator(classes, digits, blocks, kw, kh, wx, wy, table_at, class_shift);
                Expr when = fast_classes == classes;
                fast = select(when, f.total, fast);
                f.when = when;
                s.fast.push_back(f);
            }

            // sum a over the window, for the offset: each input pixel's channel sum, then the
            // window's (shared by all output channels).
            RDom rc(0, cg, "rc");
            Func channel_sum("channel_sum");
            channel_sum(g, x, y, n) = 0;
            channel_sum(g, x, y, n) += cast<int32_t>(code(rc, x, g, y, n));
            RDom ra(0, kw, 0, kh, "ra");
            Func act_sum("act_sum");
            act_sum(g, p, n) = 0;
            act_sum(g, p, n) += channel_sum(g, wx + ra[0], wy + ra[1], n);
            total = fast + activation_offset * act_sum(g, p, n);
            s.tables = {tables};
            s.per_pixel = {channel_sum, act_sum};
            s.channel_sum_rvar = rc;
            s.reduction = {rb, rkx, rky, ri, rd};
            s.table_vars = {q, b};
            s.general_when = fast_classes == 0;
        }

        Func result("result");
        Expr co = g * (multiplier.dim(0).extent() / groups) + c;  // M, B cover all groups
        result(c, g, p, n) = conv_output(output_kind, total, multiplier(co), bias(co), shift, out_bits);
        output = result;

        input.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        weights.dim(0).set_stride(1);

        if (auto_schedule) {
            // The autoscheduler baseline (bench/sweep.py's Li2018 row): ResNet-18's 28x28x128
            // layer at W2A2.
            input.set_estimates({{0, 128}, {0, 28}, {0, 28}, {0, 1}});
            weights.set_estimates({{0, 128}, {0, 2}, {0, 32}, {0, 3}, {0, 3}, {0, 1}});
            levels.set_estimates({{0, 4}});
            multiplier.set_estimates({{0, 128}});
            bias.set_estimates({{0, 128}});
            act_bits.set_estimate(2);
            activation_offset.set_estimate(-2);
            fast_classes.set_estimate(2);
            stride.set_estimate(1);
            pad.set_estimate(1);
            shift.set_estimate(16);
            out_bits.set_estimate(2);
            output.set_estimates({{0, 128}, {0, 1}, {0, 784}, {0, 1}});
            return;
        }
        s.output = result;
        s.acc = acc;
        s.code = code;
        s.window = window;
        s.c = c; s.g = g; s.p = p; s.n = n;
        s.pixels = output.dim(2).extent();
        s.tile_vectors = tile_vectors;
        s.tile_pixels = tile_pixels;
        schedule_lut_conv(s, schedule, get_target());
    }

private:
    template <typename TableAt, typename ClassShift>
    FastAccumulator fast_accumulator(int classes, Expr digits, Expr blocks, Expr kw, Expr kh, Expr wx, Expr wy,
                                     TableAt table_at, ClassShift class_shift) {
        const std::string tag = std::to_string(classes);
        Var cls("s"), bo("bo"), kx("kx"), ky("ky");
        RDom r8(0, kLutChunk, "r8_" + tag);
        Expr b = bo * kLutChunk + r8;
        // Clamped so that Halide can bound the plane reads (digits is a run-time value).
        Expr i = clamp(cls / max(digits, 1), 0, weights.dim(1).extent() - 1), d = cls % max(digits, 1);
        Func acc8("acc8_" + tag);
        acc8(c, cls, g, p, n, bo, kx, ky) = cast<uint8_t>(0);
        acc8(c, cls, g, p, n, bo, kx, ky) += lookup16(weights(c, i, b, kx, ky, g), table_at(b, d, wx + kx, wy + ky));
        FastAccumulator f = widened(acc8, cls, r8, blocks / kLutChunk, kw, kh, classes, tag);
        f.total = Expr(0);
        for (int k = 0; k < classes; k++) f.total += f.acc32(c, k, g, p, n) << class_shift(k / digits, k % digits);
        return f;
    }

    // A byte accumulator acc8(c, cls, g, p, n, chunk, kx, ky) (its chunk summed over r8) widened
    // to uint16 over a kernel row's chunks and kx taps, and to int32 over the rows.
    FastAccumulator widened(Func acc8, Var cls, RVar r8, Expr chunks, Expr kw, Expr kh, int classes, const std::string& tag) {
        Var ky("ky");
        RDom r16(0, chunks, 0, kw, "r16_" + tag);
        Func acc16("acc16_" + tag);
        acc16(c, cls, g, p, n, ky) = cast<uint16_t>(0);
        acc16(c, cls, g, p, n, ky) += cast<uint16_t>(acc8(c, cls, g, p, n, r16[0], r16[1], ky));
        RDom r32(0, kh, "r32_" + tag);
        Func acc32("acc32_" + tag);
        acc32(c, cls, g, p, n) = 0;
        acc32(c, cls, g, p, n) += cast<int32_t>(acc16(c, cls, g, p, n, r32));
        FastAccumulator f;
        f.classes = classes;
        f.acc8 = acc8;
        f.acc16 = acc16;
        f.acc32 = acc32;
        f.cls = cls;
        f.r8 = r8;
        f.r16 = {r16[0], r16[1]};
        f.r32 = r32;
        return f;
    }

    Var c{"c"}, g{"g"}, p{"p"}, n{"n"}, ci{"ci"}, x{"x"}, y{"y"};
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::LutConv, lut_conv)
