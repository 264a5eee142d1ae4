// What the kernel wrappers (kernels.cpp, conv_u8.cpp) share: Halide buffers over memory the
// runtime owns (packed tensors and NHWC arrays as strided views) and the requantization
// arguments.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "HalideBuffer.h"
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

// The arguments the int32-output kernels take in place of a requantization (never read).
inline const Requantization& no_requantization() {
    static const Requantization rq{{0}, {0}, 0, 8};
    return rq;
}

}  // namespace halibit
