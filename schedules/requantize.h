// requantize schedules. tuned: codes vectorized across channels (int32 lanes), branches for 1-
// and 2-bit outputs (threshold compares) and the int64 multiply; packed output makes a pixel of
// codes at a time and packs it eight channels to a byte. Rows in parallel. naive: as written.
#pragma once
#include "Halide.h"
#include "target.h"

namespace halibit {

using namespace Halide;

inline void schedule_requantize(Func output, Func codes, Func thresholds, bool packed, Expr out_bits,
                                const std::string& schedule, const Target& target) {
    // Channels innermost, so that a vector of channels loads each level's thresholds densely.
    thresholds.compute_root().reorder_storage(thresholds.args()[1], thresholds.args()[0]);
    if (naive_schedule(schedule, target)) {
        if (packed) codes.compute_at(output, output.args()[3]);
        return;
    }
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    const int lanes = target.natural_vector_size<int32_t>();
    auto a = output.args();
    Var y = a[packed ? 4 : 3];
    output.parallel(y);
    Func tiled = codes;
    if (packed) {
        codes.compute_at(output, a[3]);
        output.vectorize(a[0], 8, TailStrategy::GuardWithIf);
    }
    Var c = codes.args()[0];
    codes.vectorize(c, lanes, TailStrategy::GuardWithIf);
    codes.specialize(out_bits == 1);
    codes.specialize(out_bits == 2);
}

}  // namespace halibit
