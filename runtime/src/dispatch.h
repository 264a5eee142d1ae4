// The kernel libraries (generators/kernels.inc, the kernel list) and the run-time choice of their
// target: every library holds one entry point per ISA; call_kernel() runs the forced ISA's, or
// the best one this CPU supports, through the signature of the library's generated header.
#pragma once
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "halibit/error.h"
#include "halibit_kernel_headers.h"  // generated: the headers of the libraries this build has

namespace halibit {

enum class Kernel {
#define HALIBIT_KERNEL(lib, ...) lib,
#include "kernels.inc"
#undef HALIBIT_KERNEL
    count
};
static_assert(int(Kernel::count) <= 64, "called_kernels() keeps one bit per kernel");

// The library's name, e.g. "halibit_pack".
const char* kernel_name(Kernel k);

// The C function type of kernel K's entry points, as its generated header declares it; void
// for a kernel of the list that this build does not have (halibit_bitserial_conv_auto on arm64).
template <Kernel K>
struct KernelFunction {
    using type = void;
};
#define HALIBIT_BUILT_KERNEL(lib)              \
    template <>                                \
    struct KernelFunction<Kernel::lib> {       \
        using type = decltype(::lib);          \
    };
#include "halibit_built_kernels.inc"  // generated: HALIBIT_BUILT_KERNEL(library) per library
#undef HALIBIT_BUILT_KERNEL

// The library's argument list (Halide's filter metadata); nullptr for a kernel this build lacks.
const halide_filter_metadata_t* kernel_metadata(Kernel k);

// An entry point of any signature (KernelFunction<K> gives the real one).
using KernelEntry = void (*)();

// The entry point call_kernel(k) runs now: an override, the forced ISA's, or the best this CPU
// supports. Throws halibit::Error naming k where there is none.
KernelEntry kernel_entry(Kernel k);
// Prepares Halide's error handler and notes k in called_kernels(); after the call,
// finish_kernel_call turns a non-zero status into a halibit::Error naming k with Halide's message.
void start_kernel_call(Kernel k);
void finish_kernel_call(Kernel k, int status);

template <typename Function>
struct KernelParameters;
template <typename... Parameters>
struct KernelParameters<int(Parameters...)> {
    template <typename... Args>
    static constexpr bool match = std::is_same_v<std::tuple<Args...>, std::tuple<Parameters...>>;
};

// Runs kernel K with its generated signature: buffers as halide_buffer_t*, scalars by value as
// exactly the generator's types (int32_t, int64_t, bool), in the generator's argument order with
// the output last. Another count, order or type does not compile.
template <Kernel K, typename... Args>
void call_kernel(Args... args) {
    using Function = typename KernelFunction<K>::type;
    if constexpr (std::is_void_v<Function>) {
        throw Error(std::string(kernel_name(K)) + " is not built for this target");
    } else {
        static_assert(KernelParameters<Function>::template match<Args...>,
                      "the arguments are not the kernel's (its generated header has the signature)");
        Function* entry = reinterpret_cast<Function*>(kernel_entry(K));
        start_kernel_call(K);
        finish_kernel_call(K, entry(args...));
    }
}

// Runs k, one of Ks (each call compiled against its own signature): for a kernel chosen at run
// time among variants.
template <Kernel... Ks, typename... Args>
void call_kernel_of(Kernel k, Args... args) {
    const bool ran = ((k == Ks ? (call_kernel<Ks>(args...), true) : false) || ...);
    if (!ran) throw Error(std::string(kernel_name(k)) + " is not one of the kernels this call takes");
}

// The kernels this thread has called since the last call (bit int(Kernel) set), and clears them:
// what the session's profile names.
uint64_t take_called_kernels();
// The names of the kernels in such a set, in the kernel list's order.
std::vector<std::string> kernel_names(uint64_t kernels);

// For schedule experiments (bench/sweep.py): every call of kernel k runs `entry` (a variant's
// `<function>`, same signature) instead of the library's own entry points, whatever the ISA;
// nullptr restores them. Set it before any kernel runs; it is not synchronised.
void override_kernel(Kernel k, KernelEntry entry);
bool kernel_overridden(Kernel k);

}  // namespace halibit
