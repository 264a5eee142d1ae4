// The runtime side of the table-lookup convolutions (generators/table_conv_generator.cpp): which
// convolutions they take.
#pragma once
#include <cstdint>

#include "halibit/kernels.h"

namespace halibit {

// The table kernels' sums fit their 16-bit accumulators: window (input channels per group x
// taps) x largest code <= 65535. Also the kernel choice table's rule (kernel_choice.h).
inline constexpr bool table_sums_fit(int64_t window, int activation_bits) {
    return window * ((int64_t(1) << activation_bits) - 1) <= 65535;
}

// True if the table kernels take this convolution: sums that fit, and the weights' nibbles
// (packed by x86 builds).
inline bool table_conv_fits(const PackedActivations& in, const PackedWeights& w) {
    return table_sums_fit(int64_t(w.in_channels_per_group) * w.kernel_h * w.kernel_w, in.planes) && !w.nibbles.empty();
}

}  // namespace halibit
