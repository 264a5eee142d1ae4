// Glue op schedules (add, max_pool, global_avg_pool, channel_shuffle). These ops are memory
// bound: tuned vectorizes the channels (int32 lanes, a guarded tail) and runs the outer
// dimension in parallel; naive (the `scalar` target) keeps the loops as written.
#pragma once
#include "Halide.h"
#include "target.h"

namespace halibit {

using namespace Halide;


inline void schedule_elementwise(Func output, Var c, Var outer, const std::string& schedule, const Target& target) {
    if (naive_schedule(schedule, target)) return;
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    output.vectorize(c, target.natural_vector_size<int32_t>(), TailStrategy::GuardWithIf).parallel(outer);
}

}  // namespace halibit
