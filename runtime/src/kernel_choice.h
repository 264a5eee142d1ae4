// The kernel choice table: which convolution algorithm runs a layer of given bits, encoding,
// size and ISA. One place, consulted by Session::prepare(); docs/kernels.md ("Kernel choice")
// states the rule, docs/RESULTS.md the current per-(W, A) figures.
#pragma once
#include <cstdint>
#include <string>

#include "halibit/encoding.h"
#include "halibit/isa.h"
#include "halibit/session.h"
#include "table_conv.h"

namespace halibit {

// lut: lut_conv's activation tables (T-MAC); pairwise: lut_conv's pairwise product table (DeepGEMM).
enum class ConvAlgorithm { popcount, u8, lut, pairwise };

struct ConvChoiceInput {
    WeightEncoding encoding;
    int weight_bits;
    int activation_bits;
    bool zero_padding;  // popcount kernels pad with zero codes only
    Isa isa;            // resolved: never Isa::automatic
    int64_t macs;       // of one image: packing and tile setup repeat per image of a batch
    int out_channels_per_group;
    int64_t window;     // input channels per group x kernel taps: one output's sum
    int min_weight = -128, max_weight = 127;  // the layer's weight values (codebook: its levels)
};

// popcount (bconv / bitserial_conv) covers W1..4 x A1..4 with zero padding; conv_u8 covers
// everything up to 8 bits. A popcount layer costs one popcount pass per plane pair (W x A),
// conv_u8 the same at any width, so `auto` takes popcount where few pairs are summed
// (per layer, `halibit bench --kernels bitserial|u8`, ResNet-18 and the Fashion-MNIST models):
//   W x A = 1: always. 1.0-3.6x conv_u8 on every layer, avx512 and avx2.
//   W x A <= 4 on avx512: layers of at least 16M MACs. ResNet-18's W2A2 3x3 layers (58-116M)
//     0.97-1.40x; the Fashion-MNIST layers (0.4-7.2M: packing and tile setup dominate) 0.41-0.88x.
//   W x A <= 4 on avx2: where the table kernels run it (table_sums_fit), with at least 64
//     output channels per group (the W1 and W2 tables' tile width). ResNet-18's W2A2 layers 1.39-2.19x;
//     Fashion-MNIST's 64- and 128-channel layers 1.01-2.29x, its 32-channel ones 0.62-0.65x.
//   arm64, scalar: W x A <= 4 (not measured on hardware here: qemu only).
inline constexpr int64_t kPopcountMinMacsAvx512 = 16'000'000;
inline constexpr int kTableMinOutChannelsAvx2 = 64;

inline ConvAlgorithm choose_conv_algorithm(KernelChoice choice, const ConvChoiceInput& c) {
    // Codebook weights: the pairwise table where its byte products hold them (W <= 2, A <= 2,
    // |level| x largest code inside int8), under `auto` and `lut`; conv_u8 otherwise.
    if (c.encoding == WeightEncoding::codebook) {
        const int64_t top = (int64_t(1) << c.activation_bits) - 1;
        const bool pairwise_applies = c.zero_padding && c.weight_bits <= 2 && c.activation_bits <= 2 &&
                                      c.max_weight * top <= 127 && c.min_weight * top >= -128;
        const bool wanted = choice == KernelChoice::automatic || choice == KernelChoice::lut;
        return pairwise_applies && wanted ? ConvAlgorithm::pairwise : ConvAlgorithm::u8;
    }
    // lut_conv's activation tables: W1..4 (binary, signed, odd) x A1..8 with zero padding. Not
    // the fastest kernel for any (W, A) on the benchmark layers (docs/RESULTS.md), so only `lut`
    // picks them.
    const bool lut_applies = c.zero_padding && c.weight_bits <= 4 && c.activation_bits <= 8 &&
                             encoding_supports_bits(c.encoding, c.weight_bits);
    if (choice == KernelChoice::lut) return lut_applies ? ConvAlgorithm::lut : ConvAlgorithm::u8;
    const bool popcount_applies = c.zero_padding && c.weight_bits <= 4 && c.activation_bits <= 4 &&
                                  encoding_supports_bits(c.encoding, c.weight_bits);
    if (!popcount_applies || choice == KernelChoice::u8) return ConvAlgorithm::u8;
    if (choice == KernelChoice::bitserial) return ConvAlgorithm::popcount;
    const int pairs = c.weight_bits * c.activation_bits;
    if (pairs == 1) return ConvAlgorithm::popcount;
    if (pairs > 4) return ConvAlgorithm::u8;
    switch (c.isa) {
    case Isa::avx512: return c.macs >= kPopcountMinMacsAvx512 ? ConvAlgorithm::popcount : ConvAlgorithm::u8;
    case Isa::avx2:
        return c.out_channels_per_group >= kTableMinOutChannelsAvx2 && table_sums_fit(c.window, c.activation_bits)
                   ? ConvAlgorithm::popcount
                   : ConvAlgorithm::u8;
    default: return ConvAlgorithm::popcount;
    }
}

// Why a forced choice (`bitserial` or `lut`) does not run a layer on the family it names: ""
// when it does (`auto` and `u8` are always honoured), else the condition it fails, for the
// session's notes.
inline std::string forced_choice_refused(KernelChoice choice, const ConvChoiceInput& c) {
    if (choice == KernelChoice::automatic || choice == KernelChoice::u8) return "";
    const ConvAlgorithm ran = choose_conv_algorithm(choice, c);
    if (ran != ConvAlgorithm::u8) return "";
    const std::string w = "w" + std::to_string(c.weight_bits), a = "a" + std::to_string(c.activation_bits);
    if (!c.zero_padding) return "its input is padded with non-zero codes";
    if (c.encoding == WeightEncoding::codebook) {
        if (choice == KernelChoice::bitserial) return "codebook weights have no bit planes";
        if (c.weight_bits > 2 || c.activation_bits > 2) return "the pairwise table takes codebooks of W <= 2 on A <= 2, not " + w + a;
        return "a level times the largest code leaves int8";
    }
    if (c.weight_bits > 4) return "its " + w + " weights are wider than 4 bits";
    return "its " + a + " activations are wider than 4 bits";
}

}  // namespace halibit
