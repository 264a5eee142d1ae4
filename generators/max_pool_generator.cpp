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
        // Positions outside the image count as 0, and codes are >= 0, so the maximum is the one
        // over the window's positions inside the image. Clamping the coordinates instead of
        // selecting gives the same maximum: the window is a contiguous range that holds at least
        // one inside position, so a clamped outside position lands on one of those. The clamps
        // are per pixel and tap, not per channel, and leave the channel loads dense.
        Expr ix = clamp(x * stride + r[0] - pad, 0, w - 1), iy = clamp(y * stride + r[1] - pad, 0, h - 1);
        Func pooled("pooled");
        pooled(c, x, y, n) = cast<uint8_t>(0);
        pooled(c, x, y, n) = max(pooled(c, x, y, n), input(c, ix, iy, n));
        output(c, x, y, n) = pooled(c, x, y, n);
        input.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        schedule_max_pool(output, pooled, c, x, y, r, kernel_w == 3 && kernel_h == 3, schedule, get_target());
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::MaxPool, max_pool)
