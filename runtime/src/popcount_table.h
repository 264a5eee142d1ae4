// The AVX2 path of bconv and bitserial_conv: popcounts read from 16-entry byte tables with
// vpshufb, one table per activation nibble, indexed by weight nibbles (docs/kernels.md, "AVX2
// table kernels"). C++ with intrinsics: it computes the same int32 accumulators as the Halide
// kernels, to the bit, and the requantize generator applies the same output stage. (Halide 14's
// own vpshufb, generators/lookup16.h, came later: the lut_conv kernels built on it are slower.)
#pragma once
#include <cstdint>

#include "halibit/kernels.h"

namespace halibit {

// The most taps the table kernels take (per-pixel arrays of the epilogue).
inline constexpr int kMaxTableTaps = 64;

// The table kernels' sums fit their 16-bit accumulators: window (input channels per group x
// taps) x largest code <= 65535. Also the kernel choice table's rule (kernel_choice.h).
inline constexpr bool table_sums_fit(int64_t window, int activation_bits) {
    return window * ((int64_t(1) << activation_bits) - 1) <= 65535;
}

// True if the table kernels handle this convolution (x86 builds): sums that fit, at most
// kMaxTableTaps taps, and the weights' nibbles.
inline bool popcount_table_fits(const PackedActivations& in, const PackedWeights& w) {
    const int taps = w.kernel_h * w.kernel_w;
    return table_sums_fit(int64_t(w.in_channels_per_group) * taps, in.planes) && taps <= kMaxTableTaps &&
           !w.nibbles.empty();
}

// Where a table kernel writes: int32 accumulators, NHWC, as halibit_bconv_int32 /
// halibit_bitserial_conv_int32 compute them; or, with `rq`, the codes of that output stage, NHWC,
// as the requantize kernel makes them (rq->out_bits <= kTableMaxCodeBits: the epilogue compares
// each sum with per-channel thresholds).
struct TableOutput {
    int32_t* sums = nullptr;
    const Requantization* rq = nullptr;
    uint8_t* codes = nullptr;
};
inline constexpr int kTableMaxCodeBits = 4;

// Needs AVX2 (the caller checks the ISA) and w.nibbles.
void bconv_table_avx2(const PackedActivations& in, const PackedWeights& w, BConvOptions o, TableOutput out);
void bitserial_table_avx2(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, TableOutput out);
// The same for AVX-512 machines (AVX-512 BW: zmm vectors, 32 registers).
void bitserial_table_avx512(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, TableOutput out);

}  // namespace halibit
