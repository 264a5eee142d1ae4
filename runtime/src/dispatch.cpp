#include "dispatch.h"

#include "halibit/error.h"
#include "halibit/isa.h"

namespace halibit {
namespace {

using Entry = int (*)(void**);

// Each target's entry point, declared under its symbol name (which holds '-').
#define HALIBIT_KERNEL(lib, isa, symbol) extern "C" int lib##_##isa(void**) __asm__("\"" symbol "\"");
#include "halibit_kernel_table.inc"
#undef HALIBIT_KERNEL

constexpr int kIsas = 5;  // indexed by Isa

struct Table {
    Entry entry[int(Kernel::count)][kIsas] = {};
    Table() {
#define HALIBIT_KERNEL(lib, isa, symbol) entry[int(Kernel::lib)][int(Isa::isa)] = lib##_##isa;
#include "halibit_kernel_table.inc"
#undef HALIBIT_KERNEL
    }
};

const Table& table() {
    static const Table t;
    return t;
}

// Most specific first, as in the x86 target lists.
constexpr Isa kPreference[] = {Isa::avx512, Isa::avx2, Isa::arm64, Isa::scalar};

}  // namespace

const char* kernel_name(Kernel k) {
    switch (k) {
#define HALIBIT_KERNEL_NAME(lib) \
    case Kernel::lib: return #lib;
#include "kernel_names.inc"
#undef HALIBIT_KERNEL_NAME
    default: return "?";
    }
}

namespace {

int run_entry(Kernel k, void** args) {
    const Entry* entries = table().entry[int(k)];
    const Isa forced = forced_isa();
    if (forced != Isa::automatic) {
        if (!entries[int(forced)]) throw Error(std::string(kernel_name(k)) + " has no " + isa_name(forced) + " variant");
        return entries[int(forced)](args);
    }
    static const Isa best = [] {
        for (Isa isa : kPreference)
            if (isa_available(isa)) return isa;
        return Isa::scalar;
    }();
    // Kernels built for fewer targets (the autoscheduler baseline) take the best they have.
    for (Isa isa : kPreference)
        if (entries[int(isa)] && (isa == best || isa_available(isa))) return entries[int(isa)](args);
    throw Error(std::string(kernel_name(k)) + " has no variant for this CPU (best ISA " + isa_name(best) + ")");
}

}  // namespace

void call_kernel(Kernel k, void** args) {
    const int status = run_entry(k, args);
    if (status != 0) throw Error(std::string(kernel_name(k)) + " failed with Halide error " + std::to_string(status));
}

}  // namespace halibit
