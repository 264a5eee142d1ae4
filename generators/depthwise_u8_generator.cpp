// `depthwise_u8`: the depthwise convolution (one input channel per group, one output channel per
// input channel) on 8-bit codes: conv_u8's numerics without its 4-channel blocks and 64-channel
// weight padding, which a group of one channel would waste.
//   acc(c, x, y, n) = sum_{ky, kx} padded(c, x s + kx - pad, y s + ky - pad, n) * w(c, kx, ky)
// Positions outside the image read pad_values(c). int32 output or requantized codes.
#include "Halide.h"
#include "output_stage.h"
#include "../schedules/target.h"

namespace halibit {

using namespace Halide;

class DepthwiseU8 : public Generator<DepthwiseU8> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    GeneratorParam<OutputKind> output_kind{"output_kind", OutputKind::int32, output_kind_names};

    Input<Buffer<uint8_t>> input{"input", 4};        // (c, x, y, n)
    Input<Buffer<uint8_t>> pad_values{"pad_values", 1};  // (c)
    Input<Buffer<int8_t>> weights{"weights", 3};     // (c, kx, ky)
    Input<int32_t> stride{"stride"};
    Input<int32_t> pad{"pad"};
    Input<Buffer<int32_t>> multiplier{"multiplier", 1};
    Input<Buffer<int64_t>> bias{"bias", 1};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    Output<Buffer<>> output{"output", 4};            // (c, x, y, n)

    void generate() {
        if (output_kind == OutputKind::packed) throw std::runtime_error("depthwise_u8: output_kind packed is not supported");
        Var c("c"), x("x"), y("y"), n("n");
        Expr w = input.dim(1).extent(), h = input.dim(2).extent();
        RDom r(0, weights.dim(1).extent(), 0, weights.dim(2).extent(), "r");
        Expr ix = x * stride + r[0] - pad, iy = y * stride + r[1] - pad;
        Expr inside = ix >= 0 && ix < w && iy >= 0 && iy < h;
        Expr a = select(inside, input(c, clamp(ix, 0, w - 1), clamp(iy, 0, h - 1), n), pad_values(c));
        Func acc("acc");
        acc(c, x, y, n) = 0;
        acc(c, x, y, n) += cast<int32_t>(cast<int16_t>(a) * cast<int16_t>(weights(c, r[0], r[1])));
        Func result("result");
        result(c, x, y, n) = conv_output(output_kind, acc(c, x, y, n), multiplier(c), bias(c), shift, out_bits);
        output = result;
        input.dim(0).set_stride(1);
        weights.dim(0).set_stride(1);
        output.dim(0).set_stride(1);

        const Target t = get_target();
        if (naive_schedule(schedule, t)) {
            acc.compute_at(result, c);
            return;
        }
        if (schedule != "tuned") throw std::runtime_error("unknown schedule " + std::string(schedule));
        // A vector of channels x 4 pixels of a row in registers, the taps around them; rows in
        // parallel.
        const int lanes = t.natural_vector_size<int32_t>();
        Var xo("xo"), xi("xi");
        result.split(x, xo, xi, 4, TailStrategy::GuardWithIf).reorder(c, xi, xo, y, n)
            .vectorize(c, lanes, TailStrategy::GuardWithIf).unroll(xi).parallel(y);
        acc.compute_at(result, xo).vectorize(c, lanes, TailStrategy::GuardWithIf).unroll(x);
        acc.update().reorder(c, x, r[0], r[1]).vectorize(c, lanes, TailStrategy::GuardWithIf).unroll(x);
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::DepthwiseU8, depthwise_u8)
