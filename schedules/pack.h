// pack schedules. tuned: vectorized across the bytes of a pixel (each lane one byte, i.e. eight
// channels), pixels in parallel by rows, with a branch for whole 64-bit words of codes (channels
// per group a multiple of 8) and one for the general case. naive: as written.
#pragma once
#include "Halide.h"

namespace halibit {

using namespace Halide;

inline void schedule_pack(Func packed, Expr whole_words, const std::string& schedule, const Target& target,
                          bool auto_schedule, Halide::GeneratorInput<Halide::Buffer<uint8_t>>& codes) {
    if (auto_schedule) {
        codes.set_estimates({{0, 64}, {0, 56}, {0, 56}, {0, 1}});
        packed.set_estimates({{0, 8}, {0, 2}, {0, 1}, {0, 56}, {0, 56}, {0, 1}});
        return;
    }
    if (schedule == "naive" || (target.arch == Target::X86 && !target.has_feature(Target::SSE41))) return;
    Var kb = packed.args()[0], x = packed.args()[3], y = packed.args()[4];
    const int lanes = target.natural_vector_size<uint64_t>();
    packed.specialize(whole_words).vectorize(kb, lanes, TailStrategy::GuardWithIf).parallel(y);
    packed.vectorize(kb, 8, TailStrategy::GuardWithIf).parallel(y);
}

}  // namespace halibit
