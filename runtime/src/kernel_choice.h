// The kernel choice table: which convolution algorithm runs a layer of given bits, encoding,
// size and ISA. One place, consulted by Session::prepare(); docs/kernels.md ("Kernel choice")
// states the rule, docs/RESULTS.md the current per-(W, A) figures.
#pragma once
#include <cstdint>
#include <string>

#include "halibit/encoding.h"
#include "halibit/isa.h"
#include "halibit/session.h"
#include "halibit/kernels.h"

namespace halibit {

// The conv families a layer can run (one name each from the model to the CLI's --kernels):
//   bitserial: bit planes and popcounts (bconv / bitserial_conv), or table lookups on the bit
//              planes (table_conv) where they are faster: choose_bitserial_kernel.
//   u8:        conv_u8, bytes of codes times int8 weights.
//   lut:       lut_conv's activation tables (T-MAC); pairwise: lut_conv's pairwise product
//              table (DeepGEMM).
enum class ConvAlgorithm { bitserial, u8, lut, pairwise };

// The table kernels' sums fit their 16-bit accumulators: window (input channels per group x
// taps) x largest code <= 65535.
inline constexpr bool table_sums_fit(int64_t window, int activation_bits) {
    return window * ((int64_t(1) << activation_bits) - 1) <= 65535;
}

// Which kernels run a bit-serial convolution (bconv: sign activations x binary weights) on isa.
// AVX2: the table kernels wherever their sums fit. AVX-512: the vpopcntq kernels but for 2-bit
// weights on A2 or A4 with more than one tap. A popcount pass costs W x A plane pairs, a table
// pass W lookups per step for every two activation planes, so the tables gain with A even and W
// above 1: halibit-bench-kernels, geomean of the 3x3 layers against oneDNN, tables / popcount:
// W2A2 0.72 / 0.63, W1A2 1.10 / 1.32, and W1A1 in ResNet-18 (halibit bench) 450-630 / 640-1400
// GMAC/s. arm64: the table kernels wherever their sums fit
// (`tbl` counts 4 input x 16 output channels, `cnt` 8 bits of one output channel; not timed on
// hardware here, qemu only). Scalar: the popcount kernels.
enum class BitserialKernel { popcount, table };
inline BitserialKernel choose_bitserial_kernel(Isa isa, bool bconv, int weight_bits, int taps, int64_t window,
                                               int activation_bits) {
    if (!table_sums_fit(window, activation_bits)) return BitserialKernel::popcount;
    switch (isa) {
    case Isa::avx2:
    case Isa::arm64:
    case Isa::arm64_dotprod: return BitserialKernel::table;
    case Isa::avx512:
        return !bconv && weight_bits == 2 && activation_bits % 2 == 0 && taps > 1 ? BitserialKernel::table
                                                                                  : BitserialKernel::popcount;
    default: return BitserialKernel::popcount;
    }
}

// Codebook weights as bit planes (pack_codebook_weights: W <= 2, up to 3 planes) run on the
// table kernels alone, on every ISA that has them (not scalar), where the sums fit and A <= 4:
// why they cannot run a layer, "" where they can.
inline std::string codebook_tables_refusal(Isa isa, int weight_bits, int64_t window, int activation_bits) {
    if (isa == Isa::scalar) return "codebook weights run on the table kernels, which scalar builds lack";
    if (weight_bits > 2 || activation_bits > 4)
        return "the table kernels take codebooks of W <= 2 on A <= 4, not w" + std::to_string(weight_bits) + "a" +
               std::to_string(activation_bits);
    if (!table_sums_fit(window, activation_bits)) return "the window's sums overflow the table kernels' 16-bit sums";
    return "";
}

// For the kernel tests, which check both implementations on every ISA: while on, bconv() and
// bitserial_conv() run the popcount kernels wherever choose_bitserial_kernel picks the tables.
// Process-wide; set it while no convolution runs.
void force_popcount_kernels(bool on);

struct ConvChoiceInput {
    WeightEncoding encoding;
    int weight_bits;
    int activation_bits;
    bool zero_padding;  // the bit-serial and table kernels pad with zero codes only
    Isa isa;            // resolved: never Isa::automatic
    int64_t macs;       // of one image: packing and tile setup repeat per image of a batch
    int out_channels_per_group;
    int64_t window;     // input channels per group x kernel taps: one output's sum
    int min_weight = -128, max_weight = 127;  // the layer's weight values (codebook: its levels)
    int taps = 1;       // kernel_h x kernel_w
};

// What runs a layer, and for a forced family (`bitserial` or `lut`) that cannot take it, why
// ("" otherwise; `auto` and `u8` are always honoured), for the session's notes.
struct ConvChoice {
    ConvAlgorithm algorithm;
    std::string refused;
};

// bitserial covers W1..4 x A1..4 with zero padding; conv_u8 covers everything up to 8 bits. A
// bit-serial layer costs one pass per plane pair (W x A), conv_u8 the same at any width, so
// `auto` takes bitserial where few pairs are summed (per layer, `halibit bench --kernels
// bitserial|u8`, ResNet-18 and the Fashion-MNIST models):
//   W x A = 1: always (1.0-3.6x conv_u8 on every layer, avx512 and avx2).
//   W x A = 2 on avx512: layers of at least 16M MACs (below, packing and tile setup dominate).
//     W x A = 4 runs conv_u8's VNNI: halibit-bench-kernels, ResNet-18 layers, the W2A2 tables
//     took 1.1-1.3x conv_u8's time on every layer on an Intel Xeon (AVX-512, AMX) and 0.70 against
//     0.77 of oneDNN on an AMD Zen 5; W1A2 on the vpopcntq kernels 0.7-1.1x its time.
//   W x A <= 4 on avx2: where the table kernels run it, with at least 64 output channels per
//     group (the W1 and W2 tables' tile width).
//   arm64, scalar: W x A <= 4 (not measured on hardware here: qemu only).
inline constexpr int64_t kBitserialMinMacsAvx512 = 16'000'000;
inline constexpr int kTableMinOutChannelsAvx2 = 64;

inline ConvChoice choose_conv(KernelChoice choice, const ConvChoiceInput& c) {
    const bool forced = choice == KernelChoice::bitserial || choice == KernelChoice::lut;
    auto u8 = [&](std::string why) { return ConvChoice{ConvAlgorithm::u8, forced ? why : ""}; };
    const std::string w = "w" + std::to_string(c.weight_bits), a = "a" + std::to_string(c.activation_bits);
    if (!c.zero_padding && choice != KernelChoice::automatic) return u8("its input is padded with non-zero codes");
    if (choice == KernelChoice::u8) return u8("");
    // Codebook weights: `bitserial` runs the table kernels on the level index's bit planes where
    // they run (codebook_tables_refusal), `lut` the pairwise table where its byte products hold the
    // levels (W <= 2, A <= 2, every level x largest code inside int8). `auto` takes the table
    // kernels where they pay (halibit-bench-kernels' codebook_w2a2 engine, three planes, against
    // u8_w4a4, and `halibit bench` per layer): on avx2 with at least 64 output channels per group
    // (1.5 against 0.9 of oneDNN on the ResNet-18 layers; slower than conv_u8 at 32 channels),
    // on arm64 always (not timed: qemu only), on avx512 never (conv_u8's VNNI: 0.75 of oneDNN
    // against 0.52). It never takes the pairwise table, slower than conv_u8 on every layer and
    // ISA measured (0.35 of oneDNN on avx512; 8x conv_u8's time on scalar).
    if (c.encoding == WeightEncoding::codebook) {
        if (!c.zero_padding) return u8("");
        const std::string refusal = codebook_tables_refusal(c.isa, c.weight_bits, c.window, c.activation_bits);
        if (choice == KernelChoice::automatic) {
            const bool pays = c.isa == Isa::arm64 || c.isa == Isa::arm64_dotprod ||
                              (c.isa == Isa::avx2 && c.out_channels_per_group >= kTableMinOutChannelsAvx2);
            return {refusal.empty() && pays ? ConvAlgorithm::bitserial : ConvAlgorithm::u8, ""};
        }
        if (choice == KernelChoice::bitserial) return refusal.empty() ? ConvChoice{ConvAlgorithm::bitserial, ""} : u8(refusal);
        if (c.weight_bits > 2 || c.activation_bits > 2)
            return u8("the pairwise table takes codebooks of W <= 2 on A <= 2, not " + w + a);
        if (!pairwise_level_fits(c.min_weight, c.activation_bits) || !pairwise_level_fits(c.max_weight, c.activation_bits))
            return u8("a level times the largest code leaves int8");
        return {ConvAlgorithm::pairwise, ""};
    }
    if (!c.zero_padding) return u8("");
    if (c.weight_bits > 4) return u8("its " + w + " weights are wider than 4 bits");
    if (!encoding_supports_bits(c.encoding, c.weight_bits))
        return u8(std::string("its ") + encoding_name(c.encoding) + " weights have no " + w + " bit planes");
    // lut_conv's activation tables: W1..4 x A1..8. Not the fastest kernel for any (W, A) on the
    // benchmark layers (docs/RESULTS.md), so only `lut` picks them.
    if (choice == KernelChoice::lut) return {ConvAlgorithm::lut, ""};
    if (c.activation_bits > 4) return u8("its " + a + " activations are wider than 4 bits");
    if (choice == KernelChoice::bitserial) return {ConvAlgorithm::bitserial, ""};
    const int pairs = c.weight_bits * c.activation_bits;
    bool bitserial = pairs == 1;
    if (pairs > 1 && pairs <= 4) {
        switch (c.isa) {
        case Isa::avx512: bitserial = pairs <= 2 && c.macs >= kBitserialMinMacsAvx512; break;
        case Isa::avx2:
            bitserial = c.out_channels_per_group >= kTableMinOutChannelsAvx2 &&
                        choose_bitserial_kernel(c.isa, false, c.weight_bits, c.taps, c.window, c.activation_bits) ==
                            BitserialKernel::table;
            break;
        default: bitserial = true;
        }
    }
    return {bitserial ? ConvAlgorithm::bitserial : ConvAlgorithm::u8, ""};
}

}  // namespace halibit
