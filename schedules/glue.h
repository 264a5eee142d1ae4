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

// max_pool: a row of output pixels a task, channels in byte vectors with the window's taps
// innermost, unrolled for the 3x3 window (ResNet's).
inline void schedule_max_pool(Func output, Func pooled, Var c, Var x, Var y, RDom r, Expr three_by_three,
                              const std::string& schedule, const Target& target) {
    if (naive_schedule(schedule, target)) return;
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    const int lanes = target.natural_vector_size<uint8_t>();
    output.vectorize(c, lanes, TailStrategy::GuardWithIf).parallel(y);
    pooled.compute_at(output, c).vectorize(c, lanes, TailStrategy::GuardWithIf);
    pooled.update().reorder(c, r.x, r.y).vectorize(c, lanes, TailStrategy::GuardWithIf);
    pooled.update().specialize(three_by_three).unroll(r.x).unroll(r.y);
}

// Pixels a task of the per-pixel glue ops (add, channel_shuffle).
inline constexpr int kGluePixelsPerTask = 128;

}  // namespace halibit
