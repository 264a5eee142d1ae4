// `pack`: unsigned activation codes (NHWC) to bit planes along channels.
// Input codes(c, x, y, n), output bytes(kb, j, g, x, y, n); see runtime/reference/pack.h.
#include "Halide.h"
#include "output_stage.h"
#include "../schedules/pack.h"

namespace halibit {

class Pack : public Generator<Pack> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};

    Input<Buffer<uint8_t>> codes{"codes", 4};     // (c, x, y, n)
    Input<int32_t> groups{"groups"};
    Output<Buffer<uint8_t>> packed{"packed", 6};  // (kb, j, g, x, y, n)

    void generate() {
        Var c("c"), g("g"), x("x"), y("y"), n("n");
        Expr cg = codes.dim(0).extent() / groups;
        Func grouped("grouped");
        grouped(c, g, x, y, n) = codes(g * cg + c, x, y, n);
        Func bytes = pack_codes(grouped, cg, "bytes");
        packed = bytes;

        codes.dim(0).set_stride(1);
        packed.dim(0).set_stride(1);
        schedule_pack(packed, schedule, get_target(), auto_schedule, codes);
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::Pack, pack)
