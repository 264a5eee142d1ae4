// A spinning thread pool for the kernels' parallel loops. Halide's own pool puts its workers to
// sleep as soon as a loop ends, and a network at batch 1 is tens of loops of tens of
// microseconds: waking the workers for each one cost ResNet-18 more than a layer's worth at two
// threads. Here a worker spins for kSpin after each loop before it sleeps, as OpenMP runtimes do.
#include "thread_pool.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace halibit {
namespace {

// Long enough to bridge the gaps between a network's layers, short enough that idle workers give
// the CPU back soon after a run.
constexpr auto kSpin = std::chrono::milliseconds(2);

thread_local bool t_in_task = false;  // nested loops run in the calling task's thread

void cpu_relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

int run_serial(void* user_context, halide_task_t task, int min, int size, uint8_t* closure) {
    for (int i = min; i < min + size; i++)
        if (const int r = task(user_context, i, closure)) return r;
    return 0;
}

class Pool {
public:
    // Returns false when another thread's loop holds the pool (the caller then runs alone).
    bool try_run(int threads, void* user_context, halide_task_t task, int min, int size, uint8_t* closure,
                 int* result) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        while (int(workers_.size()) < threads - 1) {
            const int index = int(workers_.size());
            const uint64_t now = generation_.load(std::memory_order_relaxed);
            workers_.emplace_back([this, index, now] { worker(index, now); });
        }
        // The job, published by the generation's release store.
        task_ = task;
        user_context_ = user_context;
        closure_ = closure;
        end_ = min + size;
        participants_ = threads - 1;
        next_.store(min, std::memory_order_relaxed);
        result_.store(0, std::memory_order_relaxed);
        pending_.store(int(workers_.size()), std::memory_order_relaxed);
        {
            std::lock_guard<std::mutex> lock(sleep_);
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        work();
        while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
        *result = result_.load(std::memory_order_relaxed);
        return true;
    }

private:
    void work() {
        t_in_task = true;
        for (int i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < end_;) {
            if (const int r = task_(user_context_, i, closure_)) {
                int none = 0;
                result_.compare_exchange_strong(none, r);
                next_.store(end_, std::memory_order_relaxed);  // the rest is not started
            }
        }
        t_in_task = false;
    }

    void worker(int index, uint64_t seen) {
        for (;;) {
            auto spin_start = std::chrono::steady_clock::now();
            for (int spins = 1; generation_.load(std::memory_order_acquire) == seen; spins++) {
                if (spins % 256 == 0 && std::chrono::steady_clock::now() - spin_start > kSpin) {
                    std::unique_lock<std::mutex> lock(sleep_);
                    wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
                    spin_start = std::chrono::steady_clock::now();
                } else {
                    cpu_relax();
                }
            }
            seen = generation_.load(std::memory_order_acquire);
            if (index < participants_) work();
            pending_.fetch_sub(1, std::memory_order_release);
        }
    }

    std::mutex busy_;  // held by the thread whose loop runs
    std::vector<std::thread> workers_;
    std::atomic<uint64_t> generation_{0};  // one per loop; workers wait for it to change
    std::mutex sleep_;
    std::condition_variable wake_;
    halide_task_t task_ = nullptr;
    void* user_context_ = nullptr;
    uint8_t* closure_ = nullptr;
    int end_ = 0, participants_ = 0;
    std::atomic<int> next_{0}, result_{0}, pending_{0};
};

// Never destroyed: its workers live until the process ends. A child process after fork() has no
// workers, so it starts a new pool (the parent's is left as it was).
Pool* g_pool = nullptr;
std::once_flag g_pool_once;

Pool& pool() {
    std::call_once(g_pool_once, [] {
        g_pool = new Pool;
        pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool; });
    });
    return *g_pool;
}

}  // namespace

int run_parallel_loop(int threads, void* user_context, halide_task_t task, int min, int size, uint8_t* closure) {
    if (threads <= 1 || size <= 1 || t_in_task) return run_serial(user_context, task, min, size, closure);
    int result = 0;
    if (pool().try_run(threads, user_context, task, min, size, closure, &result)) return result;
    return run_serial(user_context, task, min, size, closure);
}

}  // namespace halibit
