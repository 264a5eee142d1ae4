// What the kernel wrappers (kernels.cpp, conv_u8.cpp) share: Halide buffers over memory the
// runtime owns (packed tensors and NHWC arrays as strided views) and the requantization
// arguments.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "HalideBuffer.h"
#include "dispatch.h"
#include "halibit/error.h"
#include "halibit/kernels.h"

namespace halibit {

template <typename T>
using Buffer = Halide::Runtime::Buffer<T>;

// dims: (extent, stride) pairs, innermost first, every min 0.
template <typename T>
Buffer<T> view(const T* data, std::initializer_list<std::pair<int, int>> dims) {
    std::vector<halide_dimension_t> shape;
    for (auto [extent, stride] : dims) shape.push_back(halide_dimension_t(0, extent, stride));
    return Buffer<T>(const_cast<T*>(data), int(shape.size()), shape.data());
}

inline void check_requantization(const Requantization& rq, int out_channels) {
    if (int(rq.multiplier.size()) != out_channels || int(rq.bias.size()) != out_channels)
        throw Error("requantization: multiplier and bias need one entry per output channel (" +
                    std::to_string(out_channels) + ")");
    if (rq.shift < 0 || rq.shift > 62 || rq.out_bits < 1 || rq.out_bits > 8)
        throw Error("requantization: shift must be 0..62 and out_bits 1..8");
}

// Codes read by a kernel that relies on their width (conv_u8's narrow library, lut_conv's tables)
// must be below 2^act_bits: throws halibit::Error naming `kernel` and the first value that is not.
inline void check_codes_fit(const std::string& kernel, const uint8_t* codes, const ActivationShape& s, int act_bits) {
    if (act_bits >= 8) return;
    const uint8_t* end = codes + size_t(s.n) * s.h * s.w * s.c;
    // An OR over all codes (it vectorizes; std::max_element did not, and cost 4.5% of a W4A4
    // conv_u8 call), then the search for the message only when one is too wide.
    uint8_t any = 0;
    for (const uint8_t* c = codes; c != end; c++) any |= *c;
    if ((any >> act_bits) == 0) return;
    const uint8_t* bad = std::find_if(codes, end, [&](uint8_t c) { return (c >> act_bits) != 0; });
    throw Error(kernel + ": a code is " + std::to_string(*bad) + ", above the " + std::to_string((1 << act_bits) - 1) +
                " that act_bits " + std::to_string(act_bits) + " allows");
}

// A requantization's per-channel arrays as kernel arguments.
inline Buffer<int32_t> multiplier_view(const Requantization& rq) {
    return view<int32_t>(rq.multiplier.data(), {{int(rq.multiplier.size()), 1}});
}
inline Buffer<int64_t> bias_view(const Requantization& rq) {
    return view<int64_t>(rq.bias.data(), {{int(rq.bias.size()), 1}});
}

// Int32 sums of output shape s before requantization: per thread, reused across calls.
inline int32_t* sum_scratch(const ActivationShape& s) {
    thread_local std::vector<int32_t> scratch;
    scratch.resize(size_t(s.n) * s.h * s.w * s.c);
    return scratch.data();
}

// NHWC output as (c, g, x, y, n).
template <typename T>
Buffer<T> output_view(T* data, const ActivationShape& s, int groups) {
    const int cog = s.c / groups;
    return view<T>(data, {{cog, 1}, {groups, cog}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
}

// Int32 sums (NHWC, shape s) through the requantize kernel k (codes or packed) into out.
template <typename T>
void requantize(Kernel k, const int32_t* acc, const ActivationShape& s, int groups, const Requantization& rq, Buffer<T> out) {
    auto a = output_view(acc, s, groups);
    auto m = multiplier_view(rq);
    auto b = bias_view(rq);
    call_kernel_of<Kernel::halibit_requantize_codes, Kernel::halibit_requantize_packed>(
        k, a.raw_buffer(), m.raw_buffer(), b.raw_buffer(), int32_t(rq.shift), int32_t(rq.out_bits), out.raw_buffer());
}

// The arguments the int32-output kernels take in place of a requantization (never read).
inline const Requantization& no_requantization() {
    static const Requantization rq{{0}, {0}, 0, 8};
    return rq;
}

}  // namespace halibit
