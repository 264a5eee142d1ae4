// ISA selection: which targets this CPU can run (asked of Halide's runtime, with the same
// feature sets as the targets in cmake/targets.cmake) and which one is forced.
#include "halibit/isa.h"

#include <atomic>
#include <thread>
#include <vector>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "HalideRuntime.h"
#include "halibit/error.h"
#include "thread_pool.h"

namespace halibit {
namespace {

std::atomic<Isa> g_forced{Isa::automatic};
thread_local Isa t_scoped = Isa::automatic;  // a Session's choice while it runs

std::vector<uint64_t> feature_mask(std::initializer_list<halide_target_feature_t> fs) {
    std::vector<uint64_t> mask((halide_target_feature_end + 63) / 64, 0);
    for (auto f : fs) mask[f >> 6] |= uint64_t(1) << (f & 63);
    return mask;
}

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
    case Isa::automatic: return "auto";
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::scalar: return "scalar";
    case Isa::arm64: return "arm64";
    case Isa::arm64_dotprod: return "arm64_dotprod";
    }
    return "?";
}

Isa parse_isa(const std::string& name) {
    for (Isa i : {Isa::automatic, Isa::avx512, Isa::avx2, Isa::scalar, Isa::arm64, Isa::arm64_dotprod})
        if (name == isa_name(i)) return i;
    throw Error("unknown isa '" + name + "' (expected auto, avx512, avx2, scalar, arm64 or arm64_dotprod)");
}

bool isa_available(Isa isa) {
#if defined(__x86_64__)
    switch (isa) {
    case Isa::automatic:
    case Isa::scalar: return true;
    case Isa::avx2: {
        auto m = feature_mask({halide_target_feature_sse41, halide_target_feature_avx, halide_target_feature_f16c,
                               halide_target_feature_fma, halide_target_feature_avx2});
        return halide_default_can_use_target_features(int(m.size()), m.data());
    }
    case Isa::avx512: {
        auto m = feature_mask({halide_target_feature_sse41, halide_target_feature_avx, halide_target_feature_f16c,
                               halide_target_feature_fma, halide_target_feature_avx2, halide_target_feature_avx512,
                               halide_target_feature_avx512_skylake, halide_target_feature_avx512_cannonlake,
                               halide_target_feature_avx512_sapphirerapids});
        return halide_default_can_use_target_features(int(m.size()), m.data());
    }
    case Isa::arm64:
    case Isa::arm64_dotprod: return false;
    }
    return false;
#elif defined(__aarch64__)
    if (isa == Isa::arm64_dotprod) return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    return isa == Isa::automatic || isa == Isa::arm64;
#else
    return isa == Isa::automatic;
#endif
}

void force_isa(Isa isa) {
    if (!isa_available(isa)) throw Error(std::string("isa ") + isa_name(isa) + " is not available on this CPU or build");
    g_forced.store(isa);
}

Isa forced_isa() { return t_scoped != Isa::automatic ? t_scoped : g_forced.load(); }

Isa resolved_isa(Isa requested) {
    if (requested != Isa::automatic) return requested;
    if (forced_isa() != Isa::automatic) return forced_isa();
    for (Isa i : {Isa::avx512, Isa::avx2, Isa::arm64_dotprod, Isa::arm64})
        if (isa_available(i)) return i;
    return Isa::scalar;
}

IsaScope::IsaScope(Isa isa) : previous_(t_scoped) {
    if (!isa_available(isa)) throw Error(std::string("isa ") + isa_name(isa) + " is not available on this CPU or build");
    t_scoped = isa;
}
IsaScope::~IsaScope() { t_scoped = previous_; }

namespace {

thread_local int t_threads = 0;  // the calling thread's session threads (0: not set)

// A one-thread session's loops run in the calling thread, without a pool (two Python threads
// with one-thread sessions of their own ran slower together through Halide's shared work queue
// than one alone); more threads share thread_pool.cpp's spinning pool.
int do_par_for(void* user_context, halide_task_t task, int min, int size, uint8_t* closure) {
    const int threads = t_threads > 0 ? t_threads : int(std::thread::hardware_concurrency());
    return run_parallel_loop(threads, user_context, task, min, size, closure);
}

}  // namespace

void set_num_threads(int threads) {
    static const bool installed = (halide_set_custom_do_par_for(do_par_for), true);
    (void)installed;
    t_threads = threads;
}

}  // namespace halibit
