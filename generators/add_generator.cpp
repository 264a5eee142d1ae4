// `add`: the residual add with two dyadic multipliers (docs/design.md, "Numerics"):
//   out(c, p) = clamp((x0 M0[c] + x1 M1[c] + B[c] + 2^(S-1)) >> S, 0, 2^bits - 1), int64
// x0 and x1 are codes (uint8) or int32 accumulators: their types are the generator parameters
// x0.type and x1.type. p runs over the pixels of the whole batch.
#include "Halide.h"
#include "../schedules/glue.h"

namespace halibit {

using namespace Halide;

class Add : public Generator<Add> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    Input<Buffer<>> x0{"x0", 2};  // (c, p)
    Input<Buffer<>> x1{"x1", 2};
    Input<Buffer<int32_t>> multiplier0{"multiplier0", 1};
    Input<Buffer<int32_t>> multiplier1{"multiplier1", 1};
    Input<Buffer<int64_t>> bias{"bias", 1};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    Output<Buffer<uint8_t>> output{"output", 2};

    void generate() {
        Var c("c"), p("p");
        Expr s = cast<int64_t>(shift);
        Expr round = select(shift > 0, cast<int64_t>(1) << max(s - 1, 0), cast<int64_t>(0));
        Expr v = (cast<int64_t>(x0(c, p)) * multiplier0(c) + cast<int64_t>(x1(c, p)) * multiplier1(c) + bias(c) + round) >> s;
        output(c, p) = cast<uint8_t>(clamp(v, cast<int64_t>(0), (cast<int64_t>(1) << cast<int64_t>(out_bits)) - 1));
        for (auto* b : {&x0, &x1}) b->dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        schedule_elementwise(output, c, p, glue_pixels_per_task(output.dim(1).extent()), schedule, get_target());
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::Add, add)
