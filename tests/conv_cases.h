// Shared test data: random tensors, the shape sweep, and the ISA the suite runs on.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../runtime/src/kernel_choice.h"
#include "conv.h"
#include "halibit/encoding.h"
#include "halibit/error.h"
#include "halibit/isa.h"
#include "halibit/kernels.h"
#include "pack.h"
#include "packed_image.h"
#include "requantize.h"

namespace halibit::test {

// The suite is registered once per ISA (ctest labels avx512, avx2, scalar, arm64, arm64_dotprod); HALIBIT_ISA
// says which. A missing instruction set skips, anything else fails.
inline void use_test_isa() {
    const char* name = std::getenv("HALIBIT_ISA");
    const Isa isa = parse_isa(name ? name : "auto");
    if (!isa_available(isa)) GTEST_SKIP() << "this CPU (or build) has no " << isa_name(isa);
    force_isa(isa);
}

// Runs `check` on both implementations of the bit-serial family on the suite's ISA: the kernels
// choose_bitserial_kernel picks (the table kernels where their sums fit on avx2, arm64 and, for
// some layers, avx512), then the popcount kernels alone.
template <class Check>
void for_each_bitserial_kernel(Check check) {
    for (bool popcount : {false, true}) {
        SCOPED_TRACE(popcount ? "popcount kernels" : "chosen kernels");
        force_popcount_kernels(popcount);
        check();
    }
    force_popcount_kernels(false);
}

struct ConvCase {
    int n, h, w, cin, cout, kernel, stride, pad, groups;
    std::string name() const {
        std::ostringstream s;
        s << n << "x" << h << "x" << w << "x" << cin << "_to" << cout << "_k" << kernel << "s" << stride << "p" << pad
          << "g" << groups;
        return s.str();
    }
};

// Edge cases in the XNNPACK / ruy spirit: tiny, odd and tail channel counts (1, 3, 7, 63, 65,
// 130), exact multiples (16, 64), groups 2 and 4, stride 2, padding, 7x7, small and large images,
// batch 2.
inline std::vector<ConvCase> conv_sweep() {
    return {
        {1, 1, 1, 1, 1, 1, 1, 0, 1},     {1, 5, 6, 3, 7, 3, 1, 1, 1},     {1, 8, 8, 16, 16, 3, 2, 1, 2},
        {1, 7, 9, 63, 65, 3, 1, 1, 1},   {1, 6, 6, 64, 64, 1, 1, 0, 4},   {1, 9, 7, 65, 130, 3, 2, 0, 1},
        {1, 9, 9, 8, 12, 7, 1, 3, 1},    {2, 4, 5, 130, 8, 1, 2, 0, 2},   {1, 33, 17, 16, 32, 3, 1, 1, 1},
        {1, 10, 10, 32, 64, 3, 2, 1, 4}, {1, 3, 3, 7, 3, 3, 1, 2, 1},
    };
}

// Channel counts 1..10, multiples of 16 and powers of two +-1, for one (W, A) at a time.
inline std::vector<int> channel_sweep() {
    return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 127, 128, 129};
}

inline std::mt19937& rng() {
    static std::mt19937 r(12345);
    return r;
}

inline ref::Tensor4<uint8_t> random_codes(int n, int h, int w, int c, int bits) {
    ref::Tensor4<uint8_t> t(n, h, w, c);
    std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
    for (auto& v : t.data) v = uint8_t(d(rng()));
    return t;
}

inline ref::Tensor4<int8_t> random_signs(int n, int h, int w, int c) {
    ref::Tensor4<int8_t> t(n, h, w, c);
    std::uniform_int_distribution<int> d(0, 1);
    for (auto& v : t.data) v = d(rng()) ? 1 : -1;
    return t;
}

inline ref::Tensor4<int8_t> random_weights(int cout, int k, int cin_g, WeightEncoding e, int bits) {
    ref::Tensor4<int8_t> t(cout, k, k, cin_g);
    std::uniform_int_distribution<int> d(encoding_min(e, bits), encoding_max(e, bits));
    for (auto& v : t.data) {
        int w;
        do w = d(rng());
        while (!encoding_contains(e, bits, w));
        v = int8_t(w);
    }
    return t;
}

// Requantization that spreads the accumulators over the whole output range (and a bit past
// both ends, so the clamps are exercised), with a negative multiplier on some channels and a
// zero one (a constant output, from the bias alone) on others.
inline Requantization random_requantization(const ref::Tensor4<int32_t>& acc, int out_bits) {
    const int cout = acc.d3;
    int32_t lo = 0, hi = 0;
    for (int32_t v : acc.data) lo = std::min(lo, v), hi = std::max(hi, v);
    const int64_t range = std::max<int64_t>(1, int64_t(hi) - lo);
    Requantization rq;
    rq.shift = 20;
    rq.out_bits = out_bits;
    std::uniform_int_distribution<int> sign(0, 5);
    for (int c = 0; c < cout; c++) {
        int64_t m = ((int64_t(1) << rq.shift) * ((1 << out_bits) + 1)) / range + 1;
        if (sign(rng()) == 0) m = -m;
        if (c % 7 == 5) {  // constant channel: a code somewhere in range, or clamped
            rq.multiplier.push_back(0);
            rq.bias.push_back((int64_t(c % 3) - 1) * (int64_t(1) << rq.shift) * out_bits);
            continue;
        }
        rq.multiplier.push_back(int32_t(m));
        rq.bias.push_back(-int64_t(m) * (m > 0 ? lo : hi) - (int64_t(1) << (rq.shift - 1)));
    }
    return rq;
}

inline ref::Tensor4<uint8_t> requantize_all(const ref::Tensor4<int32_t>& acc, const Requantization& rq) {
    ref::Tensor4<uint8_t> out(acc.d0, acc.d1, acc.d2, acc.d3);
    for (size_t i = 0; i < acc.size(); i++) {
        const int c = int(i % acc.d3);
        out.data[i] = uint8_t(ref::requantize(acc.data[i], rq.multiplier[c], rq.bias[c], rq.shift, rq.out_bits));
    }
    return out;
}

// First mismatch as a readable message, or "" when equal.
template <typename T>
std::string first_mismatch(const std::vector<T>& expected, const T* actual, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (expected[i] != actual[i]) {
            std::ostringstream s;
            s << "element " << i << " of " << count << ": expected " << int64_t(expected[i]) << ", got "
              << int64_t(actual[i]);
            return s.str();
        }
    return "";
}

}  // namespace halibit::test
