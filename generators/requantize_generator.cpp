// `requantize`: the output stage on its own, after a kernel that wrote int32 accumulators (the
// table kernels, for codes wider than they compare and for packed outputs): int32 accumulators
// to requantized codes, or to those codes packed as bit planes. The arithmetic is output_stage.h's,
// the same code the convolutions fuse, so both paths give the same codes.
#include "output_stage.h"
#include "../schedules/requantize.h"

namespace halibit {

class Requantize : public Generator<Requantize> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};  // naive | tuned
    GeneratorParam<OutputKind> output_kind{"output_kind", OutputKind::codes, output_kind_names};

    Input<Buffer<int32_t>> acc{"acc", 5};  // (c, g, x, y, n): NHWC accumulators, groups split off
    Input<Buffer<int32_t>> multiplier{"multiplier", 1};  // per output channel, all groups
    Input<Buffer<int64_t>> bias{"bias", 1};
    Input<int32_t> shift{"shift"};
    Input<int32_t> out_bits{"out_bits"};
    Output<Buffer<>> output{"output"};  // codes (c, g, x, y, n) or packed bytes (kb, j, g, x, y, n)

    void generate() {
        if (output_kind == OutputKind::int32) throw std::runtime_error("requantize: output_kind must be codes or packed");
        Var c("c"), g("g"), x("x"), y("y"), n("n");
        Expr cog = acc.dim(0).extent();
        Expr co = g * cog + c;
        Expr a = acc(c, g, x, y, n);
        Func thresholds = requantization_thresholds(multiplier, bias, shift);
        Func codes("codes");
        codes(c, g, x, y, n) = select(out_bits == 1, requantize_by_thresholds(a, thresholds, multiplier(co), co, 1),
                                      out_bits == 2, requantize_by_thresholds(a, thresholds, multiplier(co), co, 2),
                                      requantize(a, multiplier(co), bias(co), shift, out_bits));
        Func result = output_kind == OutputKind::codes ? codes : pack_codes(codes, cog, "packed");
        output = result;
        acc.dim(0).set_stride(1);
        output.dim(0).set_stride(1);
        schedule_requantize(result, codes, thresholds, output_kind == OutputKind::packed, out_bits, schedule,
                            get_target());
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::Requantize, requantize)
