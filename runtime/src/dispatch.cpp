#include "dispatch.h"

#include <HalideRuntime.h>

#include "halibit/error.h"
#include "halibit/isa.h"

namespace halibit {
namespace {

using Entry = KernelEntry;

// Each target's entry point, declared under its symbol name (which holds '-'): GCC writes the
// asm label into its assembly as given, so it needs the quotes; clang quotes it itself and would
// keep ours as part of the name.
#if defined(__clang__)
#define HALIBIT_ASM_LABEL(symbol) __asm__(symbol)
#else
#define HALIBIT_ASM_LABEL(symbol) __asm__("\"" symbol "\"")
#endif
#define HALIBIT_KERNEL(lib, isa, symbol) extern "C" decltype(::lib) lib##_##isa HALIBIT_ASM_LABEL(symbol);
#include "halibit_kernel_table.inc"
#undef HALIBIT_KERNEL

constexpr int kIsas = int(Isa::arm64_dotprod) + 1;  // indexed by Isa

struct Table {
    Entry entry[int(Kernel::count)][kIsas] = {};
    Table() {
#define HALIBIT_KERNEL(lib, isa, symbol) entry[int(Kernel::lib)][int(Isa::isa)] = reinterpret_cast<Entry>(lib##_##isa);
#include "halibit_kernel_table.inc"
#undef HALIBIT_KERNEL
    }
};

const Table& table() {
    static const Table t;
    return t;
}

Entry g_override[int(Kernel::count)] = {};

// Most specific first, as in the x86 target lists.
constexpr Isa kPreference[] = {Isa::avx512, Isa::avx2, Isa::arm64_dotprod, Isa::arm64, Isa::scalar};

}  // namespace

const char* kernel_name(Kernel k) {
    static const char* const names[] = {
#define HALIBIT_KERNEL(lib, ...) #lib,
#include "kernels.inc"
#undef HALIBIT_KERNEL
    };
    return int(k) >= 0 && k < Kernel::count ? names[int(k)] : "?";
}

const halide_filter_metadata_t* kernel_metadata(Kernel k) {
    switch (k) {
#define HALIBIT_BUILT_KERNEL(lib) \
    case Kernel::lib: return ::lib##_metadata();
#include "halibit_built_kernels.inc"
#undef HALIBIT_BUILT_KERNEL
    default: return nullptr;
    }
}

KernelEntry kernel_entry(Kernel k) {
    if (g_override[int(k)]) return g_override[int(k)];
    const Entry* entries = table().entry[int(k)];
    const Isa forced = forced_isa();
    if (forced != Isa::automatic) {
        // Only conv_u8 has a dot-product variant; the other kernels run their arm64 one.
        if (forced == Isa::arm64_dotprod && !entries[int(forced)] && entries[int(Isa::arm64)]) return entries[int(Isa::arm64)];
        if (!entries[int(forced)]) throw Error(std::string(kernel_name(k)) + " has no " + isa_name(forced) + " variant");
        return entries[int(forced)];
    }
    static const Isa best = [] {
        for (Isa isa : kPreference)
            if (isa_available(isa)) return isa;
        return Isa::scalar;
    }();
    // Kernels built for fewer targets (the autoscheduler baseline) take the best they have.
    for (Isa isa : kPreference)
        if (entries[int(isa)] && (isa == best || isa_available(isa))) return entries[int(isa)];
    throw Error(std::string(kernel_name(k)) + " has no variant for this CPU (best ISA " + isa_name(best) + ")");
}

void override_kernel(Kernel k, KernelEntry entry) { g_override[int(k)] = entry; }
bool kernel_overridden(Kernel k) { return g_override[int(k)] != nullptr; }

namespace {
// Halide's default error handler prints and aborts; this one keeps the message for the Error
// that finish_kernel_call throws (the kernel returns a non-zero status after calling it).
thread_local std::string t_halide_message;
void keep_halide_message(void*, const char* msg) { t_halide_message = msg; }
thread_local uint64_t t_called = 0;
}  // namespace

void start_kernel_call(Kernel k) {
    static const bool handler_installed = (halide_set_error_handler(keep_halide_message), true);
    (void)handler_installed;
    t_halide_message.clear();
    t_called |= uint64_t(1) << int(k);
}

void finish_kernel_call(Kernel k, int status) {
    if (status == 0) return;
    std::string msg = t_halide_message;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw Error(std::string(kernel_name(k)) + " failed with Halide error " + std::to_string(status) +
                (msg.empty() ? "" : ": " + msg));
}

std::vector<std::string> kernel_names(uint64_t kernels) {
    std::vector<std::string> names;
    for (int k = 0; k < int(Kernel::count); k++)
        if (kernels >> k & 1) names.push_back(kernel_name(Kernel(k)));
    return names;
}

uint64_t take_called_kernels() {
    const uint64_t called = t_called;
    t_called = 0;
    return called;
}

}  // namespace halibit
