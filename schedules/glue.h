// Glue op schedules (add, max_pool, global_avg_pool, channel_shuffle). These ops are memory
// bound: tuned vectorizes the channels (int32 lanes, a guarded tail) and runs the outer
// dimension in parallel tasks of `task_size` of its iterations; naive (the `scalar` target)
// keeps the loops as written. A task must be worth a thread pool's hand-off: with one pixel of
// 64 channels a task, the add ran slower on two threads than on one.
#pragma once
#include "Halide.h"
#include "target.h"

namespace halibit {

using namespace Halide;


inline void schedule_elementwise(Func output, Var c, Var outer, int task_size, const std::string& schedule,
                                 const Target& target) {
    if (naive_schedule(schedule, target)) return;
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    output.vectorize(c, target.natural_vector_size<int32_t>(), TailStrategy::GuardWithIf);
    if (task_size > 1)
        output.parallel(outer, task_size, TailStrategy::GuardWithIf);
    else
        output.parallel(outer);
}

// Pixels a task of the per-pixel glue ops (add, channel_shuffle).
inline constexpr int kGluePixelsPerTask = 128;

}  // namespace halibit
