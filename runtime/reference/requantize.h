// Reference dyadic requantization (HAWQ-V3). (The kernels' threshold form of it, for 1- to
// 4-bit codes, is generators/output_stage.h; tests/test_output_stage.cpp holds them to this.)
#pragma once
#include <algorithm>
#include <cstdint>

namespace halibit::ref {

// out = clamp((acc * M + B + 2^(S-1)) >> S, 0, 2^bits - 1), computed in int64 (arithmetic shift).
inline int32_t requantize(int32_t acc, int32_t multiplier, int64_t bias, int shift, int out_bits) {
    const int64_t round = shift > 0 ? (int64_t(1) << (shift - 1)) : 0;
    const int64_t v = (int64_t(acc) * multiplier + bias + round) >> shift;
    return int32_t(std::clamp<int64_t>(v, 0, (int64_t(1) << out_bits) - 1));
}

}  // namespace halibit::ref
