// Schedule variants (shared objects built from a generator by bench/sweep.py) run in place of a
// kernel library, so the kernel tests and halibit-bench-kernels check and time them exactly as
// they do the shipped kernel:
//   HALIBIT_KERNEL_OVERRIDE="<library>=<variant.so>:<symbol>"  every call of the library runs
//     the variant (the kernel tests);
//   HALIBIT_KERNEL_VARIANTS=<file>, lines "<label> <engine> <library> <variant.so> <symbol>":
//     halibit-bench-kernels adds engine "<engine>@<label>", the engine with the variant in place,
//     so variants and the shipped kernel are timed interleaved in one run.
// Only those two programs read them; the runtime library never loads code.
#pragma once
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <HalideRuntime.h>

#include "../runtime/src/dispatch.h"

namespace halibit {

// Throws unless `variant` takes the arguments of kernel k's library (names, kinds, types, order).
inline void check_variant_arguments(Kernel k, const halide_filter_metadata_t* variant) {
    const halide_filter_metadata_t* shipped = kernel_metadata(k);
    auto describe = [](const halide_filter_argument_t& a) {
        // (An output is named after the Func the schedule computes it in.)
        return std::string(a.kind == halide_argument_kind_output_buffer ? "the output" : a.name) + " (kind " + std::to_string(a.kind) + ", dims " + std::to_string(a.dimensions) +
               ", type code " + std::to_string(a.type.code) + " bits " + std::to_string(a.type.bits) + ")";
    };
    if (!shipped) throw std::runtime_error(std::string("kernel variant: ") + kernel_name(k) + " is not built here");
    if (variant->num_arguments != shipped->num_arguments)
        throw std::runtime_error(std::string("kernel variant: ") + kernel_name(k) + " takes " +
                                 std::to_string(shipped->num_arguments) + " arguments, the variant " +
                                 std::to_string(variant->num_arguments));
    for (int i = 0; i < shipped->num_arguments; i++) {
        const std::string a = describe(shipped->arguments[i]), b = describe(variant->arguments[i]);
        if (a != b)
            throw std::runtime_error(std::string("kernel variant: argument ") + std::to_string(i) + " of " +
                                     kernel_name(k) + " is " + a + ", the variant's " + b);
    }
}

// The kernel library named `library` and the variant's entry point `symbol` in `file` (the
// generator's function, of the library's signature).
inline std::pair<Kernel, KernelEntry> load_kernel_variant(const std::string& library, const std::string& file,
                                                          const std::string& symbol) {
    for (int k = 0; k < int(Kernel::count); k++) {
        if (library != kernel_name(Kernel(k))) continue;
        void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) throw std::runtime_error("kernel variant: " + std::string(dlerror()));
        auto entry = reinterpret_cast<KernelEntry>(dlsym(handle, symbol.c_str()));
        // A variant compiled with other arguments would be called with the library's.
        using Metadata = const halide_filter_metadata_t* (*)();
        auto metadata = reinterpret_cast<Metadata>(dlsym(handle, (symbol + "_metadata").c_str()));
        if (!metadata) throw std::runtime_error("kernel variant: no symbol " + symbol + "_metadata in " + file);
        check_variant_arguments(Kernel(k), metadata());
        if (!entry) throw std::runtime_error("kernel variant: no symbol " + symbol + " in " + file);
        return {Kernel(k), entry};
    }
    throw std::runtime_error("kernel variant: no kernel library named " + library);
}

// Applies HALIBIT_KERNEL_OVERRIDE; returns the library's name, or "" when the variable is unset.
inline std::string apply_kernel_override_from_env() {
    const char* value = std::getenv("HALIBIT_KERNEL_OVERRIDE");
    if (!value || !*value) return "";
    const std::string s(value);
    const size_t eq = s.find('='), colon = s.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq)
        throw std::runtime_error("HALIBIT_KERNEL_OVERRIDE: expected <library>=<variant.so>:<symbol>, got '" + s + "'");
    const std::string lib = s.substr(0, eq), file = s.substr(eq + 1, colon - eq - 1), symbol = s.substr(colon + 1);
    const auto [kernel, entry] = load_kernel_variant(lib, file, symbol);
    override_kernel(kernel, entry);
    std::fprintf(stderr, "kernel override: %s runs %s from %s\n", lib.c_str(), symbol.c_str(), file.c_str());
    return lib;
}

struct KernelVariant {
    std::string label, engine;
    Kernel kernel;
    KernelEntry entry;
};

// The variants HALIBIT_KERNEL_VARIANTS lists (none when it is unset).
inline std::vector<KernelVariant> kernel_variants_from_env() {
    const char* path = std::getenv("HALIBIT_KERNEL_VARIANTS");
    std::vector<KernelVariant> variants;
    if (!path || !*path) return variants;
    std::ifstream in(path);
    if (!in) throw std::runtime_error(std::string("HALIBIT_KERNEL_VARIANTS: cannot read ") + path);
    std::string line;
    for (int n = 1; std::getline(in, line); n++) {
        std::istringstream fields(line);
        std::string label, engine, library, file, symbol;
        if (!(fields >> label)) continue;  // blank line
        if (!(fields >> engine >> library >> file >> symbol))
            throw std::runtime_error(std::string(path) + ":" + std::to_string(n) +
                                     ": expected <label> <engine> <library> <variant.so> <symbol>");
        const auto [kernel, entry] = load_kernel_variant(library, file, symbol);
        variants.push_back({label, engine, kernel, entry});
    }
    return variants;
}

}  // namespace halibit
