// Run-time choice of a kernel's target: every kernel library holds one entry point per ISA;
// call_kernel() runs the forced ISA's, or the best one this CPU supports.
#pragma once
#include <string>

namespace halibit {

// The kernel libraries, as named in generators/CMakeLists.txt.
enum class Kernel {
#define HALIBIT_KERNEL_NAME(lib) lib,
#include "kernel_names.inc"
#undef HALIBIT_KERNEL_NAME
    count
};

// The library's name, e.g. "halibit_pack".
const char* kernel_name(Kernel k);

// args: Halide's argv convention (buffers as halide_buffer_t*, scalars as pointers to them), in
// the generator's argument order with the output last. A Halide error becomes a halibit::Error
// naming the kernel.
void call_kernel(Kernel k, void** args);

// For schedule experiments (bench/sweep.py): every call of kernel k runs `entry` (a variant's
// `<function>_argv`, same arguments) instead of the library's own entry points, whatever the
// ISA; nullptr restores them. Set it before any kernel runs; it is not synchronised.
using KernelEntry = int (*)(void**);
void override_kernel(Kernel k, KernelEntry entry);
bool kernel_overridden(Kernel k);

}  // namespace halibit
