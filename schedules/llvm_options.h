// Code generation options the schedules rely on (set from generate(), before LLVM is set up).
#pragma once
#include <cstdlib>
#include <string>

namespace halibit {

// LLVM's SLP vectorizer packs a register tile's unrolled pixel addresses (table indices, codes)
// into a vector and extracts them one at a time at the head of every step group: a latency
// chain the lookups wait on (table_conv 1.03-1.13x without it, AVX2 and AVX-512). The option is
// read when LLVM is first set up, after generate(), and applies to the whole generator run,
// which compiles one kernel.
inline void disable_slp_vectorizer() {
    const char* set = std::getenv("HL_LLVM_ARGS");
    std::string args = set ? set : "";
    if (args.find("vectorize-slp") != std::string::npos) return;
    args += std::string(args.empty() ? "" : " ") + "-vectorize-slp=false";
    setenv("HL_LLVM_ARGS", args.c_str(), 1);
}

}  // namespace halibit
