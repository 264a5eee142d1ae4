// lut_conv: the table-lookup convolutions, a thin wrapper around the Halide kernels
// halibit_lut_{pairwise,activation_table}_{int32,codes} (generators/lut_conv_generator.cpp).
#include <algorithm>
#include <string>

#include "dispatch.h"
#include "halibit/error.h"
#include "halibit/kernels.h"
#include "kernel_args.h"

namespace halibit {
namespace {

// (k, b) extents: pairwise (1, input channels), activation_table (planes, blocks of 4 channels).
int planes(const LutWeights& w) { return w.algorithm == LutAlgorithm::pairwise ? 1 : w.bits; }
// activation_table blocks are padded with zero nibbles to a multiple of the kernel's byte
// accumulator chunk (kLutChunk, halibit/layout.h); pairwise input channels with index 0 to a
// multiple of its longest chunk (kPairwiseChunk).
int blocks(const LutWeights& w) {
    if (w.algorithm == LutAlgorithm::pairwise) return (w.in_channels_per_group + kPairwiseChunk - 1) / kPairwiseChunk * kPairwiseChunk;
    return ((w.in_channels_per_group + 3) / 4 + kLutChunk - 1) / kLutChunk * kLutChunk;
}
size_t data_size(const LutWeights& w) {
    return size_t(w.padded_channels()) * planes(w) * blocks(w) * w.kernel_w * w.kernel_h * w.groups;
}
size_t data_index(const LutWeights& w, int g, int ky, int kx, int b, int k, int c) {
    return c + size_t(w.padded_channels()) *
                   (k + size_t(planes(w)) * (b + size_t(blocks(w)) * (kx + size_t(w.kernel_w) * (ky + size_t(w.kernel_h) * g))));
}

LutWeights empty_weights(LutAlgorithm a, int out_channels, int kernel_h, int kernel_w, int cin_per_group, int groups,
                         int bits) {
    LutWeights w;
    static_cast<WeightShape&>(w) = weight_shape("lut_conv weights", out_channels, kernel_h, kernel_w, cin_per_group, groups);
    w.algorithm = a;
    w.bits = bits;
    w.data.assign(data_size(w), 0);
    return w;
}

void check(const ActivationShape& s, int act_bits, const LutWeights& w, ConvGeometry g) {
    const std::string name = std::string("lut_conv (") + lut_algorithm_name(w.algorithm) + ")";
    if (s.n < 1 || s.h < 1 || s.w < 1) throw Error(name + ": empty input");
    if (s.c != w.in_channels_per_group * w.groups)
        throw Error(name + ": activations have " + std::to_string(s.c) + " channels, weights expect " +
                    std::to_string(w.in_channels_per_group * w.groups));
    const int max_bits = w.algorithm == LutAlgorithm::pairwise ? 2 : 8;
    if (act_bits < 1 || act_bits > max_bits)
        throw Error(name + ": act_bits " + std::to_string(act_bits) + " is outside 1.." + std::to_string(max_bits));
    if (w.algorithm == LutAlgorithm::pairwise)
        for (int32_t level : w.levels)
            if (!pairwise_level_fits(level, act_bits))
                throw Error(name + ": level " + std::to_string(level) + " times the largest code " +
                            std::to_string((1 << act_bits) - 1) + " does not fit int8");
    if (g.stride < 1 || g.pad < 0) throw Error(name + ": stride must be at least 1 and padding not negative");
    const ActivationShape o = conv_output_shape(s, w, g);
    if (o.h < 1 || o.w < 1) throw Error(name + ": kernel, stride or padding leave no output pixels");
    if (w.data.size() != data_size(w) ||
        w.levels.size() != size_t(w.algorithm == LutAlgorithm::pairwise ? 4 : w.bits))
        throw Error(name + ": weights were not made by prepare_lut_weights");
}

template <typename T>
void run(Kernel k, const uint8_t* codes, const ActivationShape& s, int act_bits, const LutWeights& w, ConvGeometry geo,
         const Requantization& rq, T* out) {
    check(s, act_bits, w, geo);
    // Codes above 2^act_bits - 1 would index past their part of the tables.
    check_codes_fit(std::string("lut_conv (") + lut_algorithm_name(w.algorithm) + ")", codes, s, act_bits);
    const ActivationShape o = conv_output_shape(s, w, geo);
    const int cog = w.out_channels_per_group(), cp = w.padded_channels(), kp = planes(w), bl = blocks(w);
    auto in = view<uint8_t>(codes, {{s.c, 1}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
    auto weights = view<uint8_t>(w.data.data(), {{cp, 1}, {kp, cp}, {bl, cp * kp}, {w.kernel_w, cp * kp * bl},
                                                 {w.kernel_h, cp * kp * bl * w.kernel_w},
                                                 {w.groups, cp * kp * bl * w.kernel_w * w.kernel_h}});
    auto levels = view<int32_t>(w.levels.data(), {{int(w.levels.size()), 1}});
    int32_t fast_classes = 0;
    if (w.algorithm == LutAlgorithm::pairwise) {
        // The product table's entries are levels[w] * a less the smallest such product (the
        // kernel's `lo`); a byte sums 16 of them while they stay below 16, 4 below 64, else 1,
        // and a kernel row's sum must fit uint16.
        const int64_t amax = (1 << act_bits) - 1;
        int64_t lo = 0, hi = 0;
        for (int32_t level : w.levels) lo = std::min(lo, level * amax), hi = std::max(hi, level * amax);
        const int64_t largest_entry = hi - lo;
        const int steps = largest_entry < 16 ? 16 : largest_entry < 64 ? 4 : 1;
        if (int64_t(bl) * w.kernel_w * largest_entry <= 65535) fast_classes = steps;
    } else {
        // A kernel row's table sums fit uint16 (the byte-accumulator kernels): entries are sums
        // of 4 activation digits (<= 15 each).
        const int64_t largest_entry = 4 * std::min(15, (1 << act_bits) - 1);
        const bool sums_fit_16 = int64_t(bl) * w.kernel_w * largest_entry <= 65535;
        const int classes = kp * ((act_bits + 3) / 4);
        if (sums_fit_16 && (classes == 1 || classes == 2 || classes == 4 || classes == 8)) fast_classes = classes;
    }
    auto multiplier = multiplier_view(rq);
    auto bias = bias_view(rq);
    auto output = view<T>(out, {{cog, 1}, {w.groups, cog}, {o.h * o.w, o.c}, {o.n, o.c * o.h * o.w}});
    call_kernel_of<Kernel::halibit_lut_pairwise_int32, Kernel::halibit_lut_pairwise_codes,
                   Kernel::halibit_lut_activation_table_int32, Kernel::halibit_lut_activation_table_codes>(
        k, in.raw_buffer(), weights.raw_buffer(), levels.raw_buffer(), int32_t(act_bits), int32_t(w.activation_offset),
        int32_t(fast_classes), int32_t(geo.stride), int32_t(geo.pad), multiplier.raw_buffer(), bias.raw_buffer(),
        int32_t(rq.shift), int32_t(rq.out_bits), output.raw_buffer());
}

}  // namespace

const char* lut_algorithm_name(LutAlgorithm a) { return a == LutAlgorithm::pairwise ? "pairwise" : "activation_table"; }

LutWeights prepare_lut_weights(LutAlgorithm algorithm, const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w,
                               int cin_per_group, int groups, WeightEncoding e, int bits) {
    if (!encoding_is_fixed(e))
        throw Error("lut_conv weights: codebook weights take prepare_lut_codebook_weights (their levels)");
    if (!encoding_supports_bits(e, bits))
        throw Error(std::string("lut_conv weights: encoding ") + encoding_name(e) + " has no " + std::to_string(bits) +
                    "-bit form");
    const int max_bits = algorithm == LutAlgorithm::pairwise ? 2 : 4;
    if (bits > max_bits)
        throw Error(std::string("lut_conv weights: the ") + lut_algorithm_name(algorithm) + " algorithm takes at most " +
                    std::to_string(max_bits) + "-bit weights, not " + std::to_string(bits));
    LutWeights w = empty_weights(algorithm, out_channels, kernel_h, kernel_w, cin_per_group, groups, bits);
    const int cog = out_channels / groups;
    const size_t count = size_t(out_channels) * kernel_h * kernel_w * cin_per_group;
    for (size_t i = 0; i < count; i++)
        if (!encoding_contains(e, bits, ohwi[i]))
            throw Error("lut_conv weights: value " + std::to_string(ohwi[i]) + " at index " + std::to_string(i) +
                        " is not a " + std::to_string(bits) + "-bit " + encoding_name(e) + " weight");

    if (algorithm == LutAlgorithm::pairwise) {
        // Index = the weight's bit pattern, stored << 2 (the kernel ORs the code in); levels[index]
        // = its value.
        w.levels.assign(4, 0);
        for (int v = encoding_min(e, bits); v <= encoding_max(e, bits); v++)
            if (encoding_contains(e, bits, v)) w.levels[encode_weight(e, bits, v)] = v;
        for (int o = 0; o < out_channels; o++)
            for (int ky = 0; ky < kernel_h; ky++)
                for (int kx = 0; kx < kernel_w; kx++)
                    for (int ci = 0; ci < cin_per_group; ci++) {
                        const int8_t v = ohwi[((size_t(o) * kernel_h + ky) * kernel_w + kx) * cin_per_group + ci];
                        w.data[data_index(w, o / cog, ky, kx, ci, 0, o % cog)] = uint8_t(encode_weight(e, bits, v) << 2);
                    }
        return w;
    }

    // activation_table: w = sum_i coef_i b_i + offset0 with coef_i = +-2^shift_i. A plane with a
    // negative coefficient is stored complemented (b = 1 - b'), so that every table sum is added:
    // coef_i b_i a = |coef_i| b'_i a + coef_i a, and coef_i joins the activation offset.
    w.activation_offset = activation_offset(e, bits);
    std::vector<bool> complemented(bits);
    for (int i = 0; i < bits; i++) {
        const int coef = plane_coefficient(e, bits, i);
        int shift = 0;
        while ((1 << shift) < std::abs(coef)) shift++;
        w.levels.push_back(shift);
        complemented[i] = coef < 0;
        if (coef < 0) w.activation_offset += coef;
    }
    for (int o = 0; o < out_channels; o++)
        for (int ky = 0; ky < kernel_h; ky++)
            for (int kx = 0; kx < kernel_w; kx++)
                for (int ci = 0; ci < cin_per_group; ci++) {
                    const int8_t v = ohwi[((size_t(o) * kernel_h + ky) * kernel_w + kx) * cin_per_group + ci];
                    const uint32_t pattern = encode_weight(e, bits, v);
                    for (int i = 0; i < bits; i++) {
                        const bool bit = ((pattern >> i) & 1) != complemented[i];
                        if (bit) w.data[data_index(w, o / cog, ky, kx, ci / 4, i, o % cog)] |= uint8_t(1 << (ci % 4));
                    }
                }
    return w;
}

LutWeights prepare_lut_codebook_weights(const uint8_t* indices_ohwi, int out_channels, int kernel_h, int kernel_w,
                                        int cin_per_group, int groups, const std::vector<int32_t>& levels) {
    if (levels.empty() || levels.size() > 4)
        throw Error("lut_conv codebook: " + std::to_string(levels.size()) + " levels; the pairwise table takes 1 to 4");
    LutWeights w = empty_weights(LutAlgorithm::pairwise, out_channels, kernel_h, kernel_w, cin_per_group, groups,
                                 levels.size() > 2 ? 2 : 1);
    w.levels = levels;
    w.levels.resize(4, 0);
    const int cog = out_channels / groups;
    for (int o = 0; o < out_channels; o++)
        for (int ky = 0; ky < kernel_h; ky++)
            for (int kx = 0; kx < kernel_w; kx++)
                for (int ci = 0; ci < cin_per_group; ci++) {
                    const size_t i = ((size_t(o) * kernel_h + ky) * kernel_w + kx) * cin_per_group + ci;
                    if (indices_ohwi[i] >= levels.size())
                        throw Error("lut_conv codebook: index " + std::to_string(indices_ohwi[i]) + " at " +
                                    std::to_string(i) + " is not below the " + std::to_string(levels.size()) + " levels");
                    w.data[data_index(w, o / cog, ky, kx, ci, 0, o % cog)] = uint8_t(indices_ohwi[i] << 2);
                }
    return w;
}

ActivationShape conv_output_shape(const ActivationShape& in, const LutWeights& w, ConvGeometry g) {
    return {in.n, conv_out_size(in.h, w.kernel_h, g.stride, g.pad), conv_out_size(in.w, w.kernel_w, g.stride, g.pad),
            w.out_channels};
}

void lut_conv(const uint8_t* in, const ActivationShape& s, int act_bits, const LutWeights& w, ConvGeometry g,
              int32_t* out) {
    const Kernel k = w.algorithm == LutAlgorithm::pairwise ? Kernel::halibit_lut_pairwise_int32
                                                           : Kernel::halibit_lut_activation_table_int32;
    run(k, in, s, act_bits, w, g, no_requantization(), out);
}

void lut_conv(const uint8_t* in, const ActivationShape& s, int act_bits, const LutWeights& w, ConvGeometry g,
              const Requantization& rq, uint8_t* out) {
    check_requantization(rq, w.out_channels);
    const Kernel k = w.algorithm == LutAlgorithm::pairwise ? Kernel::halibit_lut_pairwise_codes
                                                           : Kernel::halibit_lut_activation_table_codes;
    run(k, in, s, act_bits, w, g, rq, out);
}

}  // namespace halibit
