// pack schedules. tuned: vectorized across the bytes of a pixel (each lane one byte, i.e. eight
// channels), pixels in parallel by rows, with branches for whole planes (channels per group a
// multiple of 64: 2.9x faster than the whole-words branch at 56x56x64, where it took 10% of
// bitserial_w2a2_avx512), whole 64-bit words of codes (a multiple of 8) and the general case.
// naive: as written.
#pragma once
#include "Halide.h"
#include "target.h"

namespace halibit {

using namespace Halide;

inline void schedule_pack(Func packed, Expr whole_planes, Expr whole_words, const std::string& schedule, const Target& target,
                          bool auto_schedule, Halide::GeneratorInput<Halide::Buffer<uint8_t>>& codes) {
    if (auto_schedule) {
        codes.set_estimates({{0, 64}, {0, 56}, {0, 56}, {0, 1}});
        packed.set_estimates({{0, 8}, {0, 2}, {0, 1}, {0, 56}, {0, 56}, {0, 1}});
        return;
    }
    // Every schedule specialises on the word branches: each then reads code_words only where its
    // own definition does (the whole-planes index is unclamped).
    packed.specialize(whole_planes);
    packed.specialize(whole_words);
    if (naive_schedule(schedule, target)) return;
    Var kb = packed.args()[0], x = packed.args()[3], y = packed.args()[4];
    const int lanes = target.natural_vector_size<uint64_t>();
    packed.specialize(whole_planes).vectorize(kb, std::min(lanes, 8), TailStrategy::RoundUp).parallel(y);
    packed.specialize(whole_words).vectorize(kb, lanes, TailStrategy::GuardWithIf).parallel(y);
    packed.vectorize(kb, 8, TailStrategy::GuardWithIf).parallel(y);
}

}  // namespace halibit
