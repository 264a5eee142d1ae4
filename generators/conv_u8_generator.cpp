// `conv_u8`: the 8-bit convolution (first and last layers): unsigned 8-bit codes (NHWC) times
// int8 weights, int32 accumulation, groups, any stride and padding, positions outside the image
// reading a per-input-channel pad value; int32 output or requantized codes.
//
//   acc(c, g, p, n) = sum_{ky, kx, ci} padded(ci, x(p) * sx + kx - pad, g, y(p) * s + ky - pad, n)
//                                      * w(c, ky, kx, ci)
// with sx = x_stride, the stride s except in the runtime's row form (few input channels: the
// kernel_w taps of a row are one tap of kernel_w x Cg channels, read from an overlapping view).
//
// Layouts (the contract with runtime/src/conv_u8.cpp):
//   input      (c, x, y, n)  uint8, NHWC, c = groups * Cg
//   pad_values (c)           uint8, one per input channel
//   weights    (r, c, cb, kx, ky, g) int8: input channel 4 cb + r of output channel c of group g;
//              r (extent 4) innermost, so the four weights one 32-bit lane of a dot product needs
//              are adjacent and a vector of output channels is one load. Input channels are
//              padded with zero weights to Cgp = 4 * cb extent, output channels with zero weights
//              to a multiple of 64 (kWeightChannelAlign in runtime/include/halibit/kernels.h): register
//              tiles never read past the end.
//   weights16  (r, ct, cb, kx, ky, co, g) int16: the same weights widened, output channel
//              kWeights16Tile co + ct; read instead of `weights` by the AVX2 full-range library
//              (prepared once with the model, so no task widens its tile's weights), each tile's
//              weights contiguous.
//   output     (c, g, p, n)  int32 or uint8 codes, p = y * out_width + x (NHWC: x and y are one
//              dimension of stride C), c < Cog = output channels per group.
// Output pixels are one flattened dimension so that register tiles of pixels run across row ends
// (the 7x7 and 14x14 layers would otherwise waste a large part of each row's last tile); a tile
// running past the last pixel recomputes it.
#include "Halide.h"
#include "flattened_window.h"
#include "output_stage.h"
#include "../schedules/conv_u8.h"

namespace halibit {

class ConvU8 : public Generator<ConvU8> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    GeneratorParam<OutputKind> output_kind{"output_kind", OutputKind::int32, output_kind_names};
    // Register tile (output-channel vectors x output pixels); 0 takes the target's default
    // (schedules/conv_u8.h).
    GeneratorParam<int> tile_vectors{"tile_vectors", 0};
    GeneratorParam<int> tile_pixels{"tile_pixels", 0};
    // Narrow weights (the runtime runs this library only when int16 sums are exact: W <= 7 x A8,
    // W4A4, ...): on AVX2 the pairs go through vpmaddubsw and are summed in int16 over `chunk`
    // channel blocks before widening (other targets: the same code as the normal library).
    GeneratorParam<bool> narrow{"narrow", false};
    // How the narrow AVX2 library sums the vpmaddubsw pairs: `int16` (vpaddw over `chunk` blocks,
    // widened per chunk) or `madd` (vpmaddwd with ones into int32, oneDNN's sequence: one more
    // instruction per pair, slower in bench/sweep.py).
    GeneratorParam<std::string> narrow_sum{"narrow_sum", "int16"};

    Input<Buffer<uint8_t>> input{"input", 4};        // (c, x, y, n)
    Input<Buffer<uint8_t>> pad_values{"pad_values", 1};  // (c)
    Input<Buffer<int8_t>> weights{"weights", 6};     // (r, c, cb, kx, ky, g)
    // (r, ct, cb, kx, ky, co, g); read by the AVX2 full-range library only (schedules/conv_u8.h).
    Input<Buffer<int16_t>> weights16{"weights16", 7};
    Input<int32_t> stride{"stride"};
    // The step between windows along x: `stride`, except in the row form (runtime/src/conv_u8.cpp),
    // whose input view's x already steps by the layer's stride.
    Input<int32_t> x_stride{"x_stride"};
    Input<int32_t> pad{"pad"};
    Input<Buffer<int32_t>> multiplier{"multiplier", 1};  // per output channel (output_kind codes)
    Input<Buffer<int64_t>> bias{"bias", 1};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    // True exactly when the input channels per group are a multiple of 4 (no padding channels). A
    // bool input rather than an expression of the shapes so that Halide substitutes it into the
    // specialised padded copy (dense loads without a channel clamp).
    Input<bool> whole_blocks{"whole_blocks"};
    // Narrow library: channel blocks per int16 chunk (it divides the block count; every chunk's
    // pair sums fit int16). Unused otherwise.
    Input<int32_t> chunk{"chunk"};
    // Per output channel (all groups): the sum of its weights over taps and input channels, for
    // the dot-product layout's shift (schedules/conv_u8.h). Unused elsewhere.
    Input<Buffer<int32_t>> weight_sums{"weight_sums", 1};
    // {1, 1} (int16): the narrow AVX2 forms multiply int16 sums by it, so that Halide emits
    // vpmaddwd (a constant 1 would be folded away). Unused elsewhere.
    Input<Buffer<int16_t>> ones{"ones", 1};
    Output<Buffer<>> output{"output", 4};            // (c, g, p, n)

    void generate() {
        if (output_kind == OutputKind::packed) throw std::runtime_error("conv_u8: output_kind packed is not supported");
        Var c("c"), g("g"), p("p"), n("n"), ci("ci"), x("x"), y("y"), h("h");

        if (narrow_sum.value() != "madd" && narrow_sum.value() != "int16")
            throw std::runtime_error("conv_u8: narrow_sum must be madd or int16");
        ConvU8Layout layout = conv_u8_layout_for(get_target(), schedule, narrow, narrow_sum.value() == "madd");
        if (layout.vectors > 1 || layout.pixels > 1) {
            if (tile_vectors > 0) layout.vectors = tile_vectors;
            if (tile_pixels > 0) layout.pixels = tile_pixels;
        }
        const int H = layout.pair_lanes, R = 4 / H;

        Expr groups = weights.dim(5).extent();
        Expr cg = input.dim(0).extent() / groups;         // input channels per group
        Expr kw = weights.dim(3).extent(), kh = weights.dim(4).extent();
        Expr in_w = input.dim(1).extent(), in_h = input.dim(2).extent();

        // The input with its border and per-group channels padded to Cgp (zeros past Cg).
        // x and y are image coordinates (-pad .. size + pad - 1). When Cg is a multiple of 4 there
        // are no padding channels and the channel index needs no clamp (dense vector loads; the
        // schedule specialises on `whole_blocks`).
        Expr cgp = 4 * weights.dim(2).extent();
        Expr inside = x >= 0 && x < in_w && y >= 0 && y < in_h;
        Expr ix_in = clamp(x, 0, in_w - 1), iy_in = clamp(y, 0, in_h - 1);
        Expr ch = g * cg + min(ci, cg - 1);
        Expr value = select(ci < cg, select(inside, input(ch, ix_in, iy_in, n), pad_values(ch)), cast<uint8_t>(0));
        Expr value_whole = select(inside, input(g * cg + ci, ix_in, iy_in, n), pad_values(g * cg + ci));
        Func padded("padded");
        Expr code = select(whole_blocks, value_whole, value);
        padded(ci, x, g, y, n) = layout.shifted_activations ? cast<int8_t>(code ^ cast<uint8_t>(0x80))
                                                            : cast(layout.activation_type, code);

        // Output pixel p of the flattened image and its window origin.
        FlattenedWindow fw = flattened_window(p, in_w, in_h, kw, kh, x_stride, stride, pad);
        Func window = fw.window;
        Expr wx = fw.x, wy = fw.y;

        // acc(h, c, g, p, n): the dot product over input channels 4 cb + h R + r (r < R), taps and
        // channel blocks. With H = 1 it is the whole sum and the R = 4 products of one lane reduce
        // to one 32-bit lane (vpdpbusd on AVX-512 VNNI); with H = 2 the pairs reduce to i32
        // lanes (vpmaddwd on AVX2) and the two halves are added once per output.
        RDom r(0, R, 0, weights.dim(2).extent(), 0, kw, 0, kh, "r");
        RVar rr = r[0], rcb = r[1], rkx = r[2], rky = r[3];
        Expr ix = wx + rkx, iy = wy + rky;
        Expr a = padded(4 * rcb + h * R + rr, ix, g, iy, n);
        // The weights as the dot product reads them (int16 where it takes int16 pairs; the
        // schedule may copy one channel tile's weights into a compact buffer).
        Var wr("wr");
        Func wt("weights_tile");
        if (layout.prepared_int16_weights)
            wt(wr, c, ci, x, y, g) = weights16(wr, c % kWeights16Tile, ci, x, y, c / kWeights16Tile, g);
        else
            wt(wr, c, ci, x, y, g) = cast(layout.weight_type, weights(wr, c, ci, x, y, g));
        Expr w = wt(h * R + rr, c, rcb, rkx, rky, g);
        Func acc("acc");
        ConvU8Schedule s;
        // Narrow AVX2 layouts: pair(hh, c, ..., cb, kx, ky) is the two products of channels
        // 4 cb + 2 hh + rp, one vpmaddubsw lane (Halide 14 matches a saturating sum of u8 x i8
        // products; with narrow weights it never saturates).
        RDom rp(0, 2, "rp");
        Var hh("hh"), cb("cb"), kx("kx"), ky("ky");
        Func pair("pair");
        if (layout.madd_pairs || layout.int16_pairs) {
            Expr pa = padded(4 * cb + 2 * hh + rp, wx + kx, g, wy + ky, n);
            Expr pw = weights(2 * hh + rp, c, cb, kx, ky, g);
            pair(hh, c, g, p, n, cb, kx, ky) = cast<int16_t>(0);
            pair(hh, c, g, p, n, cb, kx, ky) = saturating_add(pair(hh, c, g, p, n, cb, kx, ky),
                                                              cast<int16_t>(pa) * cast<int16_t>(pw));
            s.pair = pair;
            s.rp = rp;
            s.cb = cb;
            s.hh = hh;
        }
        if (layout.madd_pairs) {
            // The two pairs of a block summed into one int32 lane by vpmaddwd (with `ones`) and
            // added: 3 instructions per 32 products.
            RDom rm(0, 2, 0, weights.dim(2).extent(), 0, kw, 0, kh, "rm");
            acc(h, c, g, p, n) = 0;
            acc(h, c, g, p, n) += cast<int32_t>(pair(rm[0], c, g, p, n, rm[1], rm[2], rm[3])) * cast<int32_t>(ones(rm[0]));
            s.rr = rm[0];
            s.rcb = rm[1];
            s.rkx = rm[2];
            s.rky = rm[3];
        } else if (layout.int16_pairs) {
            // Lanes (h, c): acc16 sums `chunk` blocks of pairs in int16; per chunk and tap, one
            // vpmaddwd with `ones` adds the two halves of each channel into its int32 lane of acc
            // (h = 0 only): half the int32 accumulators, and 2 instructions a vector instead of 5.
            Var co("co");
            RDom r16(0, chunk, "r16");
            Func acc16("acc16");
            acc16(h, c, g, p, n, co, kx, ky) = cast<int16_t>(0);
            acc16(h, c, g, p, n, co, kx, ky) += pair(h, c, g, p, n, co * chunk + r16, kx, ky);
            RDom r32(0, 2, 0, weights.dim(2).extent() / chunk, 0, kw, 0, kh, "r32");
            acc(h, c, g, p, n) = 0;
            acc(h, c, g, p, n) += cast<int32_t>(acc16(r32[0], c, g, p, n, r32[1], r32[2], r32[3])) * cast<int32_t>(ones(r32[0]));
            s.acc16 = acc16;
            s.r16 = r16;
            s.rr = r32[0];
            s.r32 = {r32[1], r32[2], r32[3]};
        } else {
            acc(h, c, g, p, n) = 0;
            acc(h, c, g, p, n) += cast<int32_t>(a) * cast<int32_t>(w);
        }

        Expr total = acc(0, c, g, p, n);
        if (!layout.int16_pairs)  // (int16_pairs: acc already holds both halves)
            for (int i = 1; i < H; i++) total += acc(i, c, g, p, n);
        if (layout.shifted_activations) total += 128 * weight_sums(g * (weight_sums.dim(0).extent() / groups) + c);

        Func result("result");
        Expr co = g * (multiplier.dim(0).extent() / groups) + c;  // M, B cover all groups
        result(c, g, p, n) = conv_output(output_kind, total, multiplier(co), bias(co), shift, out_bits);
        output = result;

        input.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        weights.dim(0).set_bounds(0, 4).set_stride(1);
        weights.dim(1).set_stride(4);
        weights16.dim(0).set_bounds(0, 4).set_stride(1);
        weights16.dim(1).set_bounds(0, kWeights16Tile).set_stride(4);
        // Output channels from 0 (the runtime's views): a register tile's channels then fall in
        // one tile of weights16, read as dense vectors.
        if (layout.prepared_int16_weights) output.dim(0).set_min(0);

        s.output = result;
        s.acc = acc;
        s.padded = padded;
        s.weights_tile = wt;
        s.window = window;
        s.wr = wr;
        s.c = c; s.g = g; s.p = p; s.n = n; s.h = h;
        s.ci = ci; s.x = x; s.y = y;
        if (!layout.madd_pairs && !layout.int16_pairs) {
            s.rr = rr; s.rcb = rcb; s.rkx = rkx; s.rky = rky;
        }
        s.padded_channels = cgp;
        s.whole_blocks = whole_blocks;
        s.pixels = output.dim(2).extent();
        s.layout = layout;
        schedule_conv_u8(s, schedule, get_target());
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::ConvU8, conv_u8)
