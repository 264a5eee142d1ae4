// The kernel choice table: which convolution algorithm runs a layer of given bits and encoding.
// One place, consulted by Session; the figures behind it are in docs/kernels.md.
#pragma once
#include "halibit/encoding.h"
#include "halibit/session.h"

namespace halibit {

enum class ConvAlgorithm { popcount, u8 };

// popcount (bconv / bitserial_conv) covers W1..4 x A1..4 with zero padding; conv_u8 covers
// everything up to 8 bits. On the ResNet-18 layers (docs/RESULTS.md) bit-serial beats the
// 8-bit kernel while W * A <= 4 (W1A1..W2A2 run at 0.8-3.6x oneDNN int8), and loses beyond
// (each extra plane pair costs a full popcount pass), so `auto` takes popcount up to
// W * A <= 4 and `bitserial` wherever it applies.
inline ConvAlgorithm choose_conv_algorithm(KernelChoice choice, WeightEncoding encoding, int weight_bits,
                                           int activation_bits, bool zero_padding) {
    const bool popcount_applies = zero_padding && weight_bits <= 4 && activation_bits <= 4 &&
                                  encoding_supports_bits(encoding, weight_bits);
    switch (choice) {
    case KernelChoice::u8: return ConvAlgorithm::u8;
    case KernelChoice::bitserial: return popcount_applies ? ConvAlgorithm::popcount : ConvAlgorithm::u8;
    case KernelChoice::automatic: break;
    }
    return popcount_applies && weight_bits * activation_bits <= 4 ? ConvAlgorithm::popcount : ConvAlgorithm::u8;
}

}  // namespace halibit
