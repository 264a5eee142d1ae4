// What the schedules ask of a target. The `scalar` target is plain x86-64 (Halide's
// "x86-64-linux", SSE2 only): every schedule gives it the naive loop nest, as it does when asked
// for one (GeneratorParam schedule=naive).
#pragma once
#include <string>

#include "Halide.h"

namespace halibit {

inline bool is_scalar_target(const Halide::Target& t) {
    return t.arch == Halide::Target::X86 && !t.has_feature(Halide::Target::SSE41);
}

inline bool naive_schedule(const std::string& schedule, const Halide::Target& t) {
    return schedule == "naive" || is_scalar_target(t);
}

}  // namespace halibit
