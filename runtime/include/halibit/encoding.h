// Weight encodings and how a weight value splits into bit planes (docs/design.md, "Numerics").
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace halibit {

// One name per idea: these strings are used in the model file, the API and the CLI.
enum class WeightEncoding : int32_t {
    binary = 0,  // w in {-1,+1}; bit 1 means -1 (Larq Compute Engine convention)
    signed_ = 1, // two's complement, W = 2..8
    odd = 2,     // w = sum_i 2^i (2 b_i - 1), W = 1..4
    codebook = 3, // w = levels[i]: 2^W integer levels per layer (int8), W = 1..4; the index i is stored
};

inline const char* encoding_name(WeightEncoding e) {
    switch (e) {
    case WeightEncoding::binary: return "binary";
    case WeightEncoding::signed_: return "signed";
    case WeightEncoding::odd: return "odd";
    case WeightEncoding::codebook: return "codebook";
    }
    return "?";
}

// The encodings whose values are fixed by the bit width (every one but codebook): the bit-serial
// and activation-table kernels take these.
inline bool encoding_is_fixed(WeightEncoding e) { return e != WeightEncoding::codebook; }

inline bool encoding_supports_bits(WeightEncoding e, int bits) {
    switch (e) {
    case WeightEncoding::binary: return bits == 1;
    case WeightEncoding::signed_: return bits >= 2 && bits <= 8;
    case WeightEncoding::odd: return bits >= 1 && bits <= 4;
    case WeightEncoding::codebook: return bits >= 1 && bits <= 4;
    }
    return false;
}

// The value range of a fixed encoding (codebook: the int8 range its levels may take).
inline int encoding_min(WeightEncoding e, int bits) {
    switch (e) {
    case WeightEncoding::binary: return -1;
    case WeightEncoding::signed_: return -(1 << (bits - 1));
    case WeightEncoding::odd: return -((1 << bits) - 1);
    case WeightEncoding::codebook: return -128;
    }
    return 0;
}
inline int encoding_max(WeightEncoding e, int bits) {
    return e == WeightEncoding::codebook ? 127 : -encoding_min(e, bits) - (e == WeightEncoding::signed_ ? 1 : 0);
}

// Whether w is a value of a fixed encoding at `bits` (never for codebook: its values are the
// layer's levels).
inline bool encoding_contains(WeightEncoding e, int bits, int w) {
    if (!encoding_is_fixed(e)) return false;
    if (w < encoding_min(e, bits) || w > encoding_max(e, bits)) return false;
    if (e == WeightEncoding::binary) return w == -1 || w == 1;
    if (e == WeightEncoding::odd) return (w & 1) != 0;
    return true;
}

// The W-bit field of a fixed encoding's value: bit i is the plane the bit-serial kernels read,
// and the field is what a compact model file stores (docs/model-format.md).
inline uint32_t encode_weight(WeightEncoding e, int bits, int w) {
    switch (e) {
    case WeightEncoding::binary: return w < 0 ? 1u : 0u;
    case WeightEncoding::signed_: return uint32_t(w) & ((1u << bits) - 1);
    case WeightEncoding::odd: return uint32_t((w + (1 << bits) - 1) / 2);
    case WeightEncoding::codebook: return 0;  // the index of the level: needs the levels
    }
    return 0;
}
// Its inverse for the fixed encodings: the value of a W-bit field.
inline int decode_weight(WeightEncoding e, int bits, uint32_t field) {
    switch (e) {
    case WeightEncoding::binary: return field & 1 ? -1 : 1;
    case WeightEncoding::signed_: return field & (1u << (bits - 1)) ? int(field) - (1 << bits) : int(field);
    case WeightEncoding::odd: return 2 * int(field) - ((1 << bits) - 1);
    case WeightEncoding::codebook: return 0;
    }
    return 0;
}

// Bit-serial decomposition used by every bit-serial kernel (popcount and table):
//   sum_c w_c a_c = sum_j 2^j [ sum_i coef_i popcount(w_i & a_j) + offset * popcount(a_j) ]
// signed: coef_i = 2^i (top plane -2^(W-1)), offset 0; binary: coef_0 = -2, offset 1;
// odd: coef_i = 2^(i+1), offset -(2^W - 1).
inline int plane_coefficient(WeightEncoding e, int bits, int i) {
    switch (e) {
    case WeightEncoding::binary: return -2;
    case WeightEncoding::signed_: return i == bits - 1 ? -(1 << i) : (1 << i);
    case WeightEncoding::odd: return 2 << i;
    case WeightEncoding::codebook: break;  // no planes: the pairwise table or conv_u8 runs it
    }
    return 0;
}
inline int activation_offset(WeightEncoding e, int bits) {
    switch (e) {
    case WeightEncoding::binary: return 1;
    case WeightEncoding::signed_: return 0;
    case WeightEncoding::odd: return -((1 << bits) - 1);
    case WeightEncoding::codebook: break;
    }
    return 0;
}

}  // namespace halibit
