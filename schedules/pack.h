// pack schedules. tuned: one pixel's bytes at a time, vectorized across bytes (each lane gathers
// its eight channels from the codes), pixels in parallel by rows. naive: as written.
#pragma once
#include "Halide.h"

namespace halibit {

using namespace Halide;

inline void schedule_pack(Func packed, const std::string& schedule, const Target& target, bool auto_schedule,
                          Halide::GeneratorInput<Halide::Buffer<uint8_t>>& codes) {
    if (auto_schedule) {
        codes.set_estimates({{0, 64}, {0, 56}, {0, 56}, {0, 1}});
        packed.set_estimates({{0, 8}, {0, 2}, {0, 1}, {0, 56}, {0, 56}, {0, 1}});
        return;
    }
    if (schedule == "naive" || (target.arch == Target::X86 && !target.has_feature(Target::SSE41))) return;
    Var kb = packed.args()[0], y = packed.args()[4];
    packed.vectorize(kb, 8, TailStrategy::GuardWithIf).parallel(y);
}

}  // namespace halibit
