// The parts shared by the popcount convolution generators (bconv, bitserial_conv): inputs,
// window geometry, the fused output stage and the hand-off to the family's schedule.
#pragma once
#include "Halide.h"
#include "conv_inputs.h"
#include "output_stage.h"
#include "../schedules/popcount_conv.h"

namespace halibit {

template <typename Family>
class PopcountConvGenerator : public Generator<Family> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    GeneratorParam<OutputKind> output_kind{"output_kind", OutputKind::int32, output_kind_names};
    // Register tile (output-channel vectors x output pixels) of every accumulator; 0 takes the
    // target's default (register_tile_for). For schedule experiments: bench/sweep.py.
    GeneratorParam<int> tile_vectors{"tile_vectors", 0};
    GeneratorParam<int> tile_pixels{"tile_pixels", 0};
    // The tap loops of 1x1 and 3x3 kernels: `auto` (the target's choice, schedules/popcount_conv.h),
    // `unrolled` or `rolled`. For schedule experiments.
    GeneratorParam<std::string> taps{"taps", "auto"};

    GeneratorInput<Buffer<uint64_t>> input{"input", 6};      // (k, j, g, x, y, n)
    GeneratorInput<Buffer<uint64_t>> weights{"weights", 6};  // (c, k, i, kx, ky, g)
    GeneratorInput<int32_t> stride{"stride"};
    GeneratorInput<int32_t> pad{"pad"};
    GeneratorInput<Buffer<int32_t>> multiplier{"multiplier", 1};  // per output channel (output_kind codes/packed)
    GeneratorInput<Buffer<int64_t>> bias{"bias", 1};
    GeneratorInput<int32_t> shift{"shift"};
    GeneratorInput<int32_t> out_bits{"out_bits"};
    GeneratorOutput<Buffer<>> output{"output"};

protected:
    Var c{"c"}, g{"g"}, x{"x"}, y{"y"}, n{"n"};

    Expr words() { return input.dim(0).extent(); }
    // The target's register tile for an accumulator summing `pairs` plane pairs per word, with
    // the tile_vectors / tile_pixels overrides applied.
    RegisterTile register_tile(int pairs = 1) {
        RegisterTile t = register_tile_for(this->get_target(), pairs);
        if (tile_vectors > 0) t.vectors = tile_vectors;
        if (tile_pixels > 0) t.pixels = tile_pixels;
        return t;
    }
    Expr kernel_w() { return weights.dim(3).extent(); }
    Expr kernel_h() { return weights.dim(4).extent(); }

    // The input arrives with a zero border of `pad` pixels already in memory (x and y run from
    // -pad), so the inner loops read without bounds checks. Zero words are zero padding for
    // unsigned codes and one-padding for sign activations.
    Func padded_input() {
        Func in("in");
        in(_) = input(_);
        return in;
    }
    // The image without its border (the input view is symmetric: min = -pad).
    Expr image_width() { return input.dim(3).extent() + 2 * input.dim(3).min(); }
    Expr image_height() { return input.dim(4).extent() + 2 * input.dim(4).min(); }
    // Register tiles may run past the right edge (bound_extent in the schedule): those pixels
    // recompute the last column, so reads stay inside the border.
    Expr last_x() { return (input.dim(3).extent() - kernel_w()) / stride; }
    Expr window_x(Expr kx) { return min(x, last_x()) * stride + kx - pad; }
    Expr window_y(Expr ky) { return y * stride + ky - pad; }

    // Builds the output from `total` (int64: acc plus per-pixel or per-tile terms, see
    // PopcountConvSchedule; narrowed only for the int32 output, requantized in int64 otherwise)
    // and applies the schedule.
    // `total` is an expression in (c, g, x, y, n), not a Func: Halide substitutes a branch's
    // condition only into the definition of the Func it specialises (`tiled`), so selects on
    // bool inputs must appear there for each branch to drop the other's work.
    void finish(Expr total, PopcountConvSchedule s) {
        Func tiled("tiled"), result;
        if (output_kind == OutputKind::int32) {
            tiled(c, g, x, y, n) = cast<int32_t>(total);
            result = tiled;
        } else {
            Expr co = g * out_channels_packed() + c;
            Func thresholds = requantization_thresholds(multiplier, bias, shift);
            tiled(c, g, x, y, n) = select(out_bits == 1, requantize_by_thresholds(total, thresholds, multiplier(co), co, 1),
                                          out_bits == 2, requantize_by_thresholds(total, thresholds, multiplier(co), co, 2),
                                          requantize(total, multiplier(co), bias(co), shift, out_bits));
            s.branches.insert(s.branches.begin(), std::vector<Expr>{out_bits == 1, out_bits == 2});
            s.per_output = {thresholds};
            result = output_kind == OutputKind::codes ? tiled : pack_codes(tiled, out_channels_packed(), "packed");
        }
        output = result;

        input.dim(0).set_stride(1);
        weights.dim(0).set_stride(1);
        output.dim(0).set_stride(1);

        s.output = result;
        s.tiled = tiled;
        s.kind = output_kind;
        s.c = c; s.g = g; s.x = x; s.y = y; s.n = n;
        s.kernel_w = kernel_w();
        s.kernel_h = kernel_h();
        s.taps = taps;
        schedule_popcount_conv(s, schedule, this->get_target(), this->auto_schedule);
        if (this->auto_schedule) set_estimates();
    }

    // Output channels per group; the requantization tensors cover all groups.
    Expr out_channels_packed() { return multiplier.dim(0).extent() / input.dim(2).extent(); }

private:

    void set_estimates() {
        // ResNet-18's 28x28x128 -> 128 layer, 2-bit planes.
        input.set_estimates({{0, 2}, {0, 2}, {0, 1}, {-1, 30}, {-1, 30}, {0, 1}});
        weights.set_estimates({{0, 128}, {0, 2}, {0, 2}, {0, 3}, {0, 3}, {0, 1}});
        multiplier.set_estimates({{0, 128}});
        bias.set_estimates({{0, 128}});
        stride.set_estimate(1);
        pad.set_estimate(1);
        shift.set_estimate(16);
        out_bits.set_estimate(2);
        if (output_kind == OutputKind::packed)
            output.set_estimates({{0, 16}, {0, 2}, {0, 1}, {0, 28}, {0, 28}, {0, 1}});
        else
            output.set_estimates({{0, 128}, {0, 1}, {0, 28}, {0, 28}, {0, 1}});
    }
};

}  // namespace halibit
