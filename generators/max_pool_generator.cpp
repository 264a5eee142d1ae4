// `max_pool`: the maximum of the codes over each window's positions inside the image (codes are
// >= 0 and every window holds one, so outside positions count as 0). Any kernel, stride and
// padding (ResNet's 3x3 stride 2 pad 1).
#include "Halide.h"
#include "../schedules/glue.h"

namespace halibit {

using namespace Halide;

class MaxPool : public Generator<MaxPool> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    Input<Buffer<uint8_t>> input{"input", 4};  // (c, x, y, n)
    Input<int32_t> kernel_w{"kernel_w"};
    Input<int32_t> kernel_h{"kernel_h"};
    Input<int32_t> stride{"stride"};
    Input<int32_t> pad{"pad"};
    Output<Buffer<uint8_t>> output{"output", 4};  // (c, x, y, n)

    void generate() {
        Var c("c"), x("x"), y("y"), n("n");
        Expr w = input.dim(1).extent(), h = input.dim(2).extent();
        RDom r(0, kernel_w, 0, kernel_h, "r");
        Expr ix = x * stride + r[0] - pad, iy = y * stride + r[1] - pad;
        Expr inside = ix >= 0 && ix < w && iy >= 0 && iy < h;
        Expr v = input(c, clamp(ix, 0, w - 1), clamp(iy, 0, h - 1), n);
        output(c, x, y, n) = maximum(select(inside, v, cast<uint8_t>(0)));
        input.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        schedule_elementwise(output, c, y, 1, schedule, get_target());  // a row a task
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::MaxPool, max_pool)
