// lookup16: a 16-entry byte table lookup that Halide 14 compiles to one register shuffle per
// vector, vpshufb on x86 and tbl on arm64 (docs/kernels.md, "lookup16").
//
// Halide 14 has no lowering for a dynamic shuffle on these targets (a gather from a 16-entry
// Func becomes one vpinsrb per lane). But for an extern call `name(args)` of vector type it
// looks for a function `name` + "x" + lanes in the module and calls that with vector arguments
// (CodeGen_LLVM::find_vector_runtime_function). So the LLVM bitcode in generators/lookup16/
// defines halibit_lookup16 (scalar) and halibit_lookup16x16/x32/x64 (x86) or x8/x16 (arm64: the
// shuffle), the same for halibit_lookup16_add, and
// use_lookup16() links the target's file into the generated module (ExternalCode).
//
// The table is four uint32 words (bytes 0..3, 4..7, 8..11, 12..15, little-endian) that must be
// the same in every lane of a vector: the vector versions read lane 0. Kernels pass values that
// do not depend on the vectorized variable (the output channel); a schedule that vectorizes
// another dimension (an autoscheduler's) can break that, so such variants must be checked
// bit-exact. idx must be below 16.
#pragma once
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "Halide.h"

#ifndef HALIBIT_LOOKUP16_DIR
#error "HALIBIT_LOOKUP16_DIR (the assembled bitcode of generators/lookup16/) must be defined"
#endif

namespace halibit {

using namespace Halide;

inline std::string lookup16_file(const Target& t) {
    if (t.arch == Target::ARM) return "arm64.bc";
    if (t.has_feature(Target::AVX512_Skylake)) return "avx512.bc";
    if (t.has_feature(Target::AVX2)) return "avx2.bc";
    return "scalar.bc";
}

// Call from generate() with get_target() and get_externs_map(): links the lookup for the
// generator's target.
inline void use_lookup16(const Target& t, const std::shared_ptr<GeneratorContext::ExternsMap>& externs) {
    const std::string path = std::string(HALIBIT_LOOKUP16_DIR) + "/" + lookup16_file(t);
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("lookup16: cannot read " + path);
    std::vector<uint8_t> bitcode((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::string name = "halibit.lookup16." + lookup16_file(t);
    externs->insert({name, ExternalCode::bitcode_wrapper(t, bitcode, name)});
}

inline Expr lookup16_call(const std::string& name, std::vector<Expr> args, const std::vector<Expr>& words) {
    for (const Expr& w : words) args.push_back(cast<uint32_t>(w));
    if (words.size() != 4) throw std::logic_error("lookup16: the table is 4 words");
    return Internal::Call::make(UInt(8), name, args, Internal::Call::PureExtern);
}

// Byte idx of the table words[0..3].
inline Expr lookup16(Expr idx, const std::vector<Expr>& words) {
    return lookup16_call("halibit_lookup16", {cast<uint8_t>(idx)}, words);
}

// acc + lookup16(idx, words) as a saturating add (vpaddusb, uqadd): LLVM does not reassociate a
// chain of these into sums of lookups that keep more registers live, as it does plain adds.
// (Halide's own saturating_add is split into 32-lane halves at 64 lanes.) For sums that stay
// below 256, the same as a plain add.
inline Expr lookup16_add(Expr acc, Expr idx, const std::vector<Expr>& words) {
    return lookup16_call("halibit_lookup16_add", {cast<uint8_t>(acc), cast<uint8_t>(idx)}, words);
}

// lookup16_add at the index w | a, where a32 holds the byte a in each of its four bytes (a value
// the same in every lane, like the table): a vector version broadcasts it with one load
// (vpbroadcastd) instead of a byte shuffle. w | a must be below 16.
inline Expr lookup16_or_add(Expr acc, Expr w, Expr a32, const std::vector<Expr>& words) {
    return lookup16_call("halibit_lookup16_or_add", {cast<uint8_t>(acc), cast<uint8_t>(w), cast<uint32_t>(a32)}, words);
}

}  // namespace halibit
