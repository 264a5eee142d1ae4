// Kernel-level API: packed tensors and the compiled convolution kernels. A Session (runtime)
// drives these; tests and benchmarks call them directly.
#pragma once
#include <cstdint>
#include <vector>

#include "halibit/encoding.h"
#include "halibit/layout.h"

namespace halibit {

struct ActivationShape {
    int n = 1, h = 0, w = 0, c = 0;
};

// Activations as bit planes (layout: docs/kernels.md, runtime/reference/pack.h): per pixel, per
// group, per plane, `words()` 64-bit words; channel c of a group is bit c % 64 of word c / 64.
// The image is stored inside a zero border of `border` pixels on every side, so that a
// convolution with padding up to `border` reads it without bounds checks.
struct PackedActivations {
    ActivationShape shape;
    int groups = 1;
    int planes = 1;
    int border = 0;
    std::vector<uint64_t> words_data;  // (n, h + 2 border, w + 2 border, groups, planes, words)
    uint64_t* storage = nullptr;       // if set, the words live there (a Session's arena), not in words_data

    int channels_per_group() const { return shape.c / groups; }
    int words() const { return (channels_per_group() + 63) / 64; }
    // Sets the layout; owned storage is reallocated (zeroed) if the layout changes. With external
    // storage the layout must already match (see place()).
    void resize(const ActivationShape& s, int planes, int groups, int border = 0);
    // Uses external storage of image_words() * n words for this layout; zeroes it.
    void place(const ActivationShape& s, int planes, int groups, int border, uint64_t* words);
    uint64_t* data() { return storage ? storage : words_data.data(); }
    const uint64_t* data() const { return storage ? storage : words_data.data(); }
    size_t total_words() const { return size_t(shape.n) * image_words(); }
    size_t pixel_words() const { return size_t(groups) * planes * words(); }
    size_t row_words() const { return pixel_words() * (shape.w + 2 * border); }
    size_t image_words() const { return row_words() * (shape.h + 2 * border); }
    // Offset of pixel (n, y, x) of the image (y, x may reach into the border).
    size_t offset(int n, int y, int x) const {
        return n * image_words() + size_t(y + border) * row_words() + size_t(x + border) * pixel_words();
    }
    const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(data()); }
    size_t byte_size() const { return total_words() * sizeof(uint64_t); }
};

inline int padded_out_channels(int out_channels_per_group) {
    return (out_channels_per_group + kWeightChannelAlign - 1) / kWeightChannelAlign * kWeightChannelAlign;
}

// The shape of a convolution's weights, OHWI: out_channels x kernel_h x kernel_w x
// in_channels_per_group, in `groups` groups. Every prepared form of weights has it.
struct WeightShape {
    int out_channels = 0, kernel_h = 0, kernel_w = 0, in_channels_per_group = 0, groups = 1;
    int out_channels_per_group() const { return out_channels / groups; }
    int padded_channels() const { return padded_out_channels(out_channels_per_group()); }
};
// The shape, checked: groups that divide out_channels, a kernel of at least one tap and input
// channel; halibit::Error "<what>: ..." otherwise.
WeightShape weight_shape(const char* what, int out_channels, int kernel_h, int kernel_w, int in_channels_per_group,
                         int groups);

// Weights as bit planes for the bit-serial kernels: words(c, k, i, kx, ky, g), the output
// channel c innermost and padded with zeros to a multiple of kWeightChannelAlign.
struct PackedWeights : WeightShape {
    WeightEncoding encoding = WeightEncoding::signed_;
    int bits = 1;  // weight planes (codebook: 1 to 3 planes of the level index, see pack_codebook_weights)
    // sum_c w_c a_c = activation_offset x sum_c a_c + sum_i coefficients[i] x sum_c (bit i of w_c) a_c
    // (encoding.h's plane_coefficient and activation_offset for the fixed encodings).
    std::vector<int32_t> coefficients;
    int32_t activation_offset = 0;
    std::vector<uint64_t> words_data;
    // The same bits for the table kernels, one nibble (4 input channels) per byte:
    // nibbles(c % 64, i, m, k, kx, ky, g, c / 64) holds bits 4m..4m+3 of word k, each block of 64
    // output channels contiguous (docs/kernels.md).
    std::vector<uint8_t> nibbles;

    int words() const { return (in_channels_per_group + 63) / 64; }
    // Bytes of one block of 64 output channels in `nibbles`.
    size_t nibble_block_bytes() const {
        return size_t(kWeightChannelAlign) * bits * 16 * words() * kernel_w * kernel_h * groups;
    }
};

// weights: OHWI integer values (out_channels, kernel_h, kernel_w, in_channels / groups), each a
// member of `encoding` at `bits`; throws halibit::Error naming the first one that is not.
PackedWeights pack_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w, int in_channels_per_group,
                           int groups, WeightEncoding encoding, int bits);

// Codebook weights of 2 or 4 levels (W = 1, 2) as bit planes of the level index u = b0 + 2 b1, for
// the table kernels (the popcount kernels fold the fixed encodings into their code and do not
// take them): with L = levels,
//   w = L[0] + (L[1] - L[0]) b0 + (L[2] - L[0]) b1 + (L[3] - L[2] - L[1] + L[0]) b0 b1
// so the planes are b0, b1 and b0 b1, the last left out where its coefficient is 0 (levels
// affine in the bits, as every uniform encoding's are). `ohwi` holds level values; a value that
// is no level throws halibit::Error naming it.
PackedWeights pack_codebook_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w,
                                    int in_channels_per_group, int groups, const std::vector<int>& levels);

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

// codes: NHWC unsigned codes with values below 2^planes. `border`: the largest padding of the
// convolutions that will read the result.
void pack_activations(const uint8_t* codes, const ActivationShape& shape, int planes, int groups, PackedActivations& out,
                      int border = 0);

// Convolutions need `in.border >= padding` (halibit::Error otherwise). A packed output gets a
// border of `out_border` for the next layer.
// bitserial_conv: unsigned activations (in.planes bits) x weights (binary, signed or odd).
void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, int32_t* out_nhwc);
// Which compiled schedule runs: the hand-written one, or the autoscheduler baseline (Li2018;
// x86 builds, codes output only) that the benchmarks compare it with.
enum class Schedule { tuned, autoscheduled };
void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                    uint8_t* codes_nhwc, Schedule schedule = Schedule::tuned);
void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                    PackedActivations& out, int out_border = 0);

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
           PackedActivations& out, int out_border = 0);

// conv_u8: the 8-bit path (first and last layers, and any layer the bit-serial kernels do not
// cover): unsigned codes of up to 8 bits, stored one per byte (NHWC), times int8 weights of any
// encoding. Positions outside the image read `pad_values` (one code per input channel; nullptr
// means zeros), which keeps a folded input normalisation exact.
struct U8Weights : WeightShape {
    std::vector<int8_t> data;    // the kernel's own layout (runtime/src/conv_u8.cpp)
    // The same weights widened to int16 in tiles of 8 output channels, for the AVX2 kernel of
    // full-range weights (|w| > 64, where int16 pair sums of vpmaddubsw could overflow); empty
    // otherwise and on arm64 (runtime/src/conv_u8.cpp).
    std::vector<int16_t> data16;
    std::vector<int32_t> sums;   // per output channel: the sum of its weights (arm64 dot product)
    int max_abs_weight = 0;      // the largest |w| (narrow weights take vpmaddubsw on AVX2)
    // One input channel per group and one output channel per input channel: the depthwise
    // kernel runs it, with `data` laid out (c, kx, ky).
    bool depthwise = false;
    // The row form, for one group of few input channels (an RGB first layer): the kernel_w taps
    // of Cg channels, adjacent in an NHWC row, are one tap of row_channels = kernel_w x Cg
    // rounded up to 4 channels, so that the channel padding is paid once per row of the window
    // instead of once per tap (7x7 RGB: 7 x 24 products for 147 MACs, not 49 x 4). `data` is then
    // laid out as for a kernel_h x 1 kernel of row_channels channels. 0: the normal layout.
    int row_channels = 0;
};
U8Weights prepare_u8_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w, int in_channels_per_group,
                             int groups);
// act_bits: the codes are below 2^act_bits (checked: halibit::Error otherwise); narrower codes
// (and pad values) and weights let AVX2 sum products in int16 (vpmaddubsw), exactly.
void conv_u8(const uint8_t* codes_nhwc, const ActivationShape& in, const U8Weights& w, ConvGeometry g,
             const uint8_t* pad_values, int32_t* out_nhwc, int act_bits = 8);
void conv_u8(const uint8_t* codes_nhwc, const ActivationShape& in, const U8Weights& w, ConvGeometry g,
             const uint8_t* pad_values, const Requantization& rq, uint8_t* codes_out_nhwc, int act_bits = 8);
ActivationShape conv_output_shape(const ActivationShape& in, const U8Weights& w, ConvGeometry g);

// lut_conv: convolutions by table lookup on NHWC codes (generators/lut_conv_generator.cpp).
//   pairwise (DeepGEMM): W <= 2 x A <= 2; the weights are indices into 4 integer levels, any
//     codebook whose products with the codes fit int8 (|level| * (2^A - 1) <= 127 or 128).
//   activation_table (T-MAC): W1..4 (binary, signed, odd) x A1..8.
// Codes must be below 2^act_bits (checked: halibit::Error otherwise).
enum class LutAlgorithm { pairwise, activation_table };
const char* lut_algorithm_name(LutAlgorithm a);

struct LutWeights : WeightShape {
    LutAlgorithm algorithm = LutAlgorithm::activation_table;
    int bits = 1;
    std::vector<uint8_t> data;     // (c, k, b, kx, ky, g), runtime/src/lut_conv.cpp
    std::vector<int32_t> levels;   // pairwise: the 4 levels; activation_table: plane shifts
    int32_t activation_offset = 0; // activation_table: times the sum of the window's codes
};
// Weights of an encoding (OHWI values), for either algorithm; throws halibit::Error naming the
// first value the encoding does not hold, or an algorithm the bit width does not fit.
LutWeights prepare_lut_weights(LutAlgorithm algorithm, const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w,
                               int in_channels_per_group, int groups, WeightEncoding encoding, int bits);
// Whether the pairwise table holds a level: its product with every A-bit code fits int8.
inline bool pairwise_level_fits(int64_t level, int act_bits) {
    const int64_t product = level * ((int64_t(1) << act_bits) - 1);
    return product >= -128 && product <= 127;
}
// Codebook weights for the pairwise algorithm: OHWI indices (below levels.size() <= 4) into
// `levels`, any integers.
LutWeights prepare_lut_codebook_weights(const uint8_t* indices_ohwi, int out_channels, int kernel_h, int kernel_w,
                                        int in_channels_per_group, int groups, const std::vector<int32_t>& levels);
ActivationShape conv_output_shape(const ActivationShape& in, const LutWeights& w, ConvGeometry g);
void lut_conv(const uint8_t* codes_nhwc, const ActivationShape& in, int act_bits, const LutWeights& w, ConvGeometry g,
              int32_t* out_nhwc);
void lut_conv(const uint8_t* codes_nhwc, const ActivationShape& in, int act_bits, const LutWeights& w, ConvGeometry g,
              const Requantization& rq, uint8_t* codes_out_nhwc);

}  // namespace halibit
