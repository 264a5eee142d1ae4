// The kernels' entry points under the names clang gives them in runtime/src/dispatch.cpp.
//
// dispatch.cpp declares each entry point with an asm label wrapped in double quotes (the
// names hold '-', which GCC's assembler output needs quoted); GCC strips the quotes, clang
// keeps them as part of the symbol. The fuzzers (libFuzzer) and the ThreadSanitizer build are
// compiled with clang, so in clang builds this file joins the halibit library (CMakeLists.txt)
// and defines the quoted names as calls to the real ones. (Declaring the labels without the
// quotes under clang, in dispatch.cpp, would make it unnecessary.)
#define HALIBIT_KERNEL(lib, isa, symbol)                                                \
    extern "C" int lib##_##isa##_entry(void**) __asm__(symbol);                          \
    extern "C" int lib##_##isa##_quoted(void** args) __asm__("\"" symbol "\"");          \
    extern "C" int lib##_##isa##_quoted(void** args) { return lib##_##isa##_entry(args); }
#include "halibit_kernel_table.inc"
#undef HALIBIT_KERNEL
