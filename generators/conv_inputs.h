// Inputs shared by the popcount convolution generators (bconv, bitserial_conv).
#pragma once
#include "Halide.h"

namespace halibit {

using namespace Halide;

// Packed words are 64-bit: one popcount per 64 channels, vpopcntq on AVX-512 and, on AVX2, a
// vpshufb nibble count plus a single vpsadbw per vector (32-bit lanes would need four more
// shuffles to sum bytes within each lane). Accumulators are int64 lanes, narrowed once per output.
//
// input   (k, j, g, x, y, n): word k of plane j of group g at pixel (x, y) of image n
// weights (c, k, i, kx, ky, g): word k of plane i of output channel c of group g; the channel
//         extent is padded with zero words to a multiple of kWeightChannelAlign
//         (runtime/include/halibit/kernels.h) so that vector tiles never read past the end (the
//         output itself is not padded).
// output  int32 / codes: (c, g, x, y, n); packed: (kb, j, g, x, y, n) with the same groups.

}  // namespace halibit
