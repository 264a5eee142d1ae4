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

// args: Halide's argv convention (buffers as halide_buffer_t*, scalars as pointers to them), in
// the generator's argument order with the output last. Returns Halide's status code.
int call_kernel(Kernel k, void** args);

}  // namespace halibit
