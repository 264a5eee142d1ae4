// Reference dyadic requantization (HAWQ-V3) and the 1-bit threshold output.
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

// A 1-bit output is a per-channel threshold compare: bit = acc >= threshold when the
// multiplier is positive, acc <= threshold when it is negative.
struct Threshold {
    int64_t threshold;
    bool greater_equal;  // true: bit = acc >= threshold; false: bit = acc <= threshold
    bool always;         // multiplier 0: the bit is constant `value`
    int value;
};

inline int threshold_bit(int32_t acc, const Threshold& t) {
    if (t.always) return t.value;
    return t.greater_equal ? int(acc >= t.threshold) : int(acc <= t.threshold);
}

// The threshold equivalent to requantize(acc, M, B, S, 1):
// bit = 1  <=>  acc*M + B + round >= 2^S.
inline Threshold threshold_from_dyadic(int32_t multiplier, int64_t bias, int shift) {
    const int64_t round = shift > 0 ? (int64_t(1) << (shift - 1)) : 0;
    const int64_t need = (int64_t(1) << shift) - bias - round;  // acc*M >= need
    Threshold t{};
    if (multiplier == 0) {
        t.always = true;
        t.value = need <= 0 ? 1 : 0;
        return t;
    }
    auto floor_div = [](int64_t a, int64_t b) { int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; };
    if (multiplier > 0) {  // acc >= ceil(need / M)
        t.greater_equal = true;
        t.threshold = -floor_div(-need, multiplier);
    } else {               // acc <= floor(need / M) with M < 0
        t.greater_equal = false;
        t.threshold = floor_div(need, multiplier);
    }
    return t;
}

}  // namespace halibit::ref
