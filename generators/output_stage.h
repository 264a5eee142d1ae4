// The output transform fused into every convolution (Larq-style): dyadic requantization per
// output channel, optionally packed straight into the bit planes the next layer reads.
#pragma once
#include <limits>

#include "Halide.h"

namespace halibit {

using namespace Halide;

// What a convolution writes: raw int32 accumulators, requantized codes (uint8, one per
// channel), or those codes packed as bit planes (the layout `pack` produces).
enum class OutputKind { int32, codes, packed };

inline const std::map<std::string, OutputKind> output_kind_names = {
    {"int32", OutputKind::int32}, {"codes", OutputKind::codes}, {"packed", OutputKind::packed}};

// out = clamp((acc * M[c] + B[c] + 2^(S-1)) >> S, 0, 2^bits - 1), in int64.
inline Expr requantize(Expr acc, Expr multiplier, Expr bias, Expr shift, Expr out_bits) {
    Expr s = cast<int64_t>(shift);
    Expr round = select(shift > 0, cast<int64_t>(1) << max(s - 1, 0), cast<int64_t>(0));
    Expr v = (cast<int64_t>(acc) * cast<int64_t>(multiplier) + bias + round) >> s;
    Expr hi = (cast<int64_t>(1) << cast<int64_t>(out_bits)) - 1;
    return cast<uint8_t>(clamp(v, cast<int64_t>(0), hi));
}

// A convolution's output from its int32 sum: the sum itself, or its requantized code with the
// output channel's multiplier and bias.
inline Expr conv_output(OutputKind kind, Expr sum, Expr multiplier, Expr bias, Expr shift, Expr out_bits) {
    return kind == OutputKind::int32 ? sum : requantize(sum, multiplier, bias, shift, out_bits);
}

// The same requantization as level thresholds: code = #{l in 1..2^bits-1 : acc*M + B + round >= l 2^S}
// = #{l : acc >= T_l} for M > 0 (acc <= T_l for M < 0), T_l = the bound on acc solved exactly
// in int64. One compare per level instead of a 64-bit multiply and shift per output, which AVX2
// and NEON do not have: used for 1- and 2-bit outputs. thresholds(l, c) is level l + 1.
//
// The compares run in int32: for M < 0, acc <= T is ~acc >= ~T (~x = -x - 1), so every channel
// compares flipped = acc ^ (M >> 31) >= thresholds(l, c) = clamp(T ^ (M >> 31), +-(2^31 - 1)).
// The clamp is exact because accumulators stay within +-(2^31 - 2) (the model loader checks it):
// flipped lies in [-(2^31 - 1), 2^31 - 2], so a clamped threshold is still always or never met.
inline Func requantization_thresholds(Func multiplier, Func bias, Expr shift) {
    Var l("l"), c("c");
    Expr m = cast<int64_t>(multiplier(c));
    Expr s = cast<int64_t>(shift);
    Expr round = select(shift > 0, cast<int64_t>(1) << max(s - 1, 0), cast<int64_t>(0));
    // acc * M >= need = l 2^S - B - round. A level beyond int64 (l 2^S > 2^63 - 1: shifts of 61
    // and 62) is never reached: the loader bounds acc * M + B + round by 2^63 - 1. Otherwise need
    // is saturated to int64 (B may be extreme): a saturated need lies beyond +-2^63, where
    // acc * M (|acc * M| <= 2^62) never or always meets it, as the exact one; its threshold
    // clamps (below) to the same value.
    const Expr i64_max = Expr(std::numeric_limits<int64_t>::max()), i64_min = Expr(std::numeric_limits<int64_t>::min());
    auto saturating_sub = [&](Expr a, Expr b) {
        return clamp(a, i64_min + max(b, cast<int64_t>(0)), i64_max + min(b, cast<int64_t>(0))) - b;
    };
    Expr level = cast<int64_t>(l + 1);
    Expr unreachable = level > (i64_max >> s);
    Expr need = saturating_sub(saturating_sub(select(unreachable, 0, level << s), bias(c)), round);
    const Expr never = Expr(std::numeric_limits<int64_t>::max()), always = Expr(std::numeric_limits<int64_t>::min());
    // Halide divides by a positive divisor rounding down: ceil(need / m) = -((-need) / m).
    Expr t = select(m > 0, -((-need) / max(m, 1)),
                    m < 0, (-need) / max(-m, 1),  // floor(need / m) for m < 0
                    select(need <= 0, always, never));
    Expr flip = select(m < 0, cast<int64_t>(-1), cast<int64_t>(0));
    const Expr limit = Expr(int64_t(std::numeric_limits<int32_t>::max()));
    Func thresholds("thresholds");
    // (Never met is the largest threshold for either sign of M: flipped <= 2^31 - 2.)
    thresholds(l, c) = select(unreachable, cast<int32_t>(limit), cast<int32_t>(clamp(t ^ flip, -limit, limit)));
    return thresholds;
}

inline Expr requantize_by_thresholds(Expr acc, Func thresholds, Expr multiplier, Expr channel, int out_bits) {
    Expr flipped = acc ^ (multiplier >> 31);
    Expr code = cast<uint8_t>(0);
    for (int l = 0; l < (1 << out_bits) - 1; l++) code = code + cast<uint8_t>(flipped >= thresholds(l, channel));
    return code;
}

// Packs codes(c, g, x, y, n) (channels_per_group valid channels) into bytes(kb, j, g, x, y, n):
// bit b of byte kb of plane j is bit j of channel 8*kb + b; channels past the end are zero.
inline Func pack_codes(Func codes, Expr channels_per_group, const std::string& name) {
    Var kb("kb"), j("j"), g("g"), x("x"), y("y"), n("n");
    Expr bits = cast<uint8_t>(0);
    for (int b = 0; b < 8; b++) {
        Expr c = 8 * kb + b;
        Expr bit = (codes(min(c, channels_per_group - 1), g, x, y, n) >> cast<uint8_t>(j)) & cast<uint8_t>(1);
        bits = bits | select(c < channels_per_group, bit << b, cast<uint8_t>(0));
    }
    Func packed(name);
    packed(kb, j, g, x, y, n) = bits;
    return packed;
}

}  // namespace halibit
