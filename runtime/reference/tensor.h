// A minimal dense NHWC / OHWI tensor for the reference ops and tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace halibit::ref {

template <typename T>
struct Tensor4 {
    int d0 = 0, d1 = 0, d2 = 0, d3 = 0;  // NHWC for activations, OHWI for weights
    std::vector<T> data;

    Tensor4() = default;
    Tensor4(int a, int b, int c, int d, T fill = T(0))
        : d0(a), d1(b), d2(c), d3(d), data(size_t(a) * b * c * d, fill) {}
    T& operator()(int a, int b, int c, int d) { return data[((size_t(a) * d1 + b) * d2 + c) * d3 + d]; }
    const T& operator()(int a, int b, int c, int d) const {
        return data[((size_t(a) * d1 + b) * d2 + c) * d3 + d];
    }
    size_t size() const { return data.size(); }
};

}  // namespace halibit::ref
