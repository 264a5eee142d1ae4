// Inputs shared by the popcount convolution generators (bconv, bitserial_conv).
#pragma once
#include "Halide.h"

namespace halibit {

using namespace Halide;

// Packed words are 32-bit: popcount on 32-bit lanes accumulates straight into int32 lanes
// (vpopcntd on AVX-512, cnt + two pairwise adds on NEON) with no narrowing step.
//
// input   (k, j, g, x, y, n): word k of plane j of group g at pixel (x, y) of image n
// weights (c, k, i, kx, ky, g): word k of plane i of output channel c of group g; the channel
//         extent is padded to a multiple of 64 with zero words so that vector tiles never read
//         past the end (the output itself is not padded).
// output  int32 / codes: (c, g, x, y, n); packed: (kb, j, g, x, y, n) with the same groups.
constexpr int kWeightChannelAlign = 64;

}  // namespace halibit
