// `global_avg_pool`: a sum over the image and a dyadic multiply,
//   out(c, n) = clamp((sum_{x,y} in * M + 2^(S-1)) >> S, 0, 2^bits - 1), int64.
#include "Halide.h"
#include "../schedules/glue.h"

namespace halibit {

using namespace Halide;

class GlobalAvgPool : public Generator<GlobalAvgPool> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    Input<Buffer<uint8_t>> input{"input", 4};  // (c, x, y, n)
    Input<int64_t> multiplier{"multiplier"};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    Output<Buffer<uint8_t>> output{"output", 2};  // (c, n)

    void generate() {
        Var c("c"), n("n");
        RDom r(0, input.dim(1).extent(), 0, input.dim(2).extent(), "r");
        Func sum("sum");
        sum(c, n) = cast<int64_t>(0);
        sum(c, n) += cast<int64_t>(input(c, r[0], r[1], n));
        Expr s = cast<int64_t>(shift);
        Expr round = select(shift > 0, cast<int64_t>(1) << max(s - 1, 0), cast<int64_t>(0));
        Expr v = (sum(c, n) * multiplier + round) >> s;
        output(c, n) = cast<uint8_t>(clamp(v, cast<int64_t>(0), (cast<int64_t>(1) << cast<int64_t>(out_bits)) - 1));
        input.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        schedule_elementwise(output, c, n, 1, schedule, get_target());  // an image a task
        // The sum as a vector of channels, the image loop around it.
        if (!naive_schedule(schedule, get_target())) {
            const int lanes = get_target().natural_vector_size<int32_t>();
            sum.compute_at(output, n).vectorize(c, lanes, TailStrategy::GuardWithIf);
            sum.update().vectorize(c, lanes, TailStrategy::GuardWithIf);
        }
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::GlobalAvgPool, global_avg_pool)
