// Glue op schedules (add, max_pool, global_avg_pool, channel_shuffle). These ops are memory
// bound: tuned vectorizes the channels (a guarded tail) and runs the outer dimension in parallel
// tasks; naive (the `scalar` target) keeps the loops as written. A task must be worth a thread
// pool's hand-off: with one pixel of 64 channels a task, the add ran slower on two threads than
// on one.
#pragma once
#include "Halide.h"
#include "target.h"

namespace halibit {

using namespace Halide;

// The per-pixel ops and global_avg_pool: channels in int32-sized vectors, `task_size` iterations
// of `outer` a task.
inline void schedule_elementwise(Func output, Var c, Var outer, Expr task_size, const std::string& schedule,
                                 const Target& target) {
    if (naive_schedule(schedule, target)) return;
    if (schedule != "tuned") throw std::runtime_error("unknown schedule " + schedule);
    output.vectorize(c, target.natural_vector_size<int32_t>(), TailStrategy::GuardWithIf);
    const int64_t* one = Internal::as_const_int(task_size);
    if (one && *one == 1)
        output.parallel(outer);
    else
        output.parallel(outer, task_size, TailStrategy::GuardWithIf);
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

// Pixels a task of the per-pixel glue ops (add, channel_shuffle): an eighth of them, so that the
// small layers (7x7 at batch 1: 49 pixels) still give every thread a share, within 16..128.
inline Expr glue_pixels_per_task(Expr pixels) { return clamp((pixels + 7) / 8, 16, 128); }

}  // namespace halibit
