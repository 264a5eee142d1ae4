// `channel_shuffle`: PalQuant's cyclic permutation of G groups of K channels: output channel
// k G + g is input channel g K + k.
#include "Halide.h"
#include "../schedules/glue.h"

namespace halibit {

using namespace Halide;

class ChannelShuffle : public Generator<ChannelShuffle> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    Input<Buffer<uint8_t>> input{"input", 2};  // (c, p)
    Input<int32_t> groups{"groups"};
    Output<Buffer<uint8_t>> output{"output", 2};

    void generate() {
        Var c("c"), p("p");
        Expr k = input.dim(0).extent() / groups;
        output(c, p) = input((c % groups) * k + c / groups, p);
        input.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        schedule_elementwise(output, c, p, glue_pixels_per_task(output.dim(1).extent()), schedule, get_target());
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::ChannelShuffle, channel_shuffle)
