// The thread pool behind the kernels' parallel loops (Halide's halide_do_par_for, replaced by
// isa.cpp's set_num_threads).
#pragma once
#include "HalideRuntime.h"

namespace halibit {

// Runs task(user_context, i, closure) for i in [min, min + size) on `threads` threads: the calling
// thread and threads - 1 pool workers. Workers spin for a short while after each loop before they
// sleep, so that the next loop of the same network (a few microseconds later) does not pay a
// wake-up: a network at batch 1 runs tens of parallel loops of tens of microseconds each.
// A loop started inside a task, or while another thread's loop holds the pool, runs in the
// calling thread alone. Returns the first nonzero task result, or 0.
int run_parallel_loop(int threads, void* user_context, halide_task_t task, int min, int size, uint8_t* closure);

}  // namespace halibit
