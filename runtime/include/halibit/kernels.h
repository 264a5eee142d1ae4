// Kernel-level API: packed tensors and the compiled convolution kernels. A Session (runtime)
// drives these; tests and benchmarks call them directly.
#pragma once
#include <cstdint>
#include <vector>

#include "halibit/encoding.h"

namespace halibit {

struct ActivationShape {
    int n = 1, h = 0, w = 0, c = 0;
};

// Activations as bit planes (layout: docs/kernels.md, runtime/reference/pack.h): per pixel, per
// group, per plane, `words()` 32-bit words; channel c of a group is bit c % 32 of word c / 32.
struct PackedActivations {
    ActivationShape shape;
    int groups = 1;
    int planes = 1;
    std::vector<uint32_t> words_data;

    int channels_per_group() const { return shape.c / groups; }
    int words() const { return (channels_per_group() + 31) / 32; }
    void resize(const ActivationShape& s, int planes, int groups);
    const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(words_data.data()); }
};

// Weights as bit planes for the popcount kernels: words(c, k, i, kx, ky, g), the output channel
// c innermost and padded with zeros to a multiple of kWeightChannelAlign.
struct PackedWeights {
    int out_channels = 0, kernel_h = 0, kernel_w = 0, in_channels_per_group = 0, groups = 1;
    WeightEncoding encoding = WeightEncoding::signed_;
    int bits = 1;
    std::vector<uint32_t> words_data;

    static constexpr int kWeightChannelAlign = 64;
    int out_channels_per_group() const { return out_channels / groups; }
    int padded_channels() const {
        return (out_channels_per_group() + kWeightChannelAlign - 1) / kWeightChannelAlign * kWeightChannelAlign;
    }
    int words() const { return (in_channels_per_group + 31) / 32; }
};

// weights: OHWI integer values (out_channels, kernel_h, kernel_w, in_channels / groups), each a
// member of `encoding` at `bits`; throws halibit::Error naming the first one that is not.
PackedWeights pack_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w, int in_channels_per_group,
                           int groups, WeightEncoding encoding, int bits);

// Per output channel dyadic requantization: clamp((acc*M + B + 2^(S-1)) >> S, 0, 2^out_bits - 1).
struct Requantization {
    std::vector<int32_t> multiplier;
    std::vector<int64_t> bias;
    int shift = 0;
    int out_bits = 8;
};

struct ConvGeometry {
    int stride = 1;
    int pad = 0;
};

int conv_out_size(int in, int kernel, int stride, int pad);
ActivationShape conv_output_shape(const PackedActivations& in, const PackedWeights& w, ConvGeometry g);

// codes: NHWC unsigned codes with values below 2^planes.
void pack_activations(const uint8_t* codes, const ActivationShape& shape, int planes, int groups, PackedActivations& out);

// bitserial_conv: unsigned activations (in.planes bits) x weights (binary, signed or odd).
void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, int32_t* out_nhwc);
void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                    uint8_t* codes_nhwc);
void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                    PackedActivations& out);

// bconv: sign activations (one plane, bit 1 = -1) x binary weights. Padding is exact zero
// padding, or one-padding (+1 outside the image) when `one_padding` is set.
struct BConvOptions {
    ConvGeometry geometry;
    bool one_padding = false;
};
void bconv(const PackedActivations& in, const PackedWeights& w, BConvOptions o, int32_t* out_nhwc);
void bconv(const PackedActivations& in, const PackedWeights& w, BConvOptions o, const Requantization& rq,
           uint8_t* codes_nhwc);
void bconv(const PackedActivations& in, const PackedWeights& w, BConvOptions o, const Requantization& rq,
           PackedActivations& out);

}  // namespace halibit
