// Reference packing of activation codes into bit planes (the layout contract of docs/kernels.md).
//
// Packed activations, per pixel (n, y, x): for each group g, for each plane j, ceil(Cg/64) 64-bit
// little-endian words; channel c of the group is bit (c % 64) of word (c / 64). Tail bits are zero.
// As a byte array: bytes(kb, j, g, x, y, n) with kb in [0, 8 * words).
#pragma once
#include <cstdint>
#include <vector>

#include "tensor.h"

namespace halibit::ref {

inline int packed_words(int channels_per_group) { return (channels_per_group + 63) / 64; }

// codes: NHWC unsigned codes (bits planes); returns the packed bytes.
inline std::vector<uint8_t> pack_bitplanes(const Tensor4<uint8_t>& codes, int planes, int groups) {
    const int N = codes.d0, H = codes.d1, W = codes.d2, C = codes.d3, Cg = C / groups;
    const int bytes = 8 * packed_words(Cg);
    std::vector<uint8_t> out(size_t(N) * H * W * groups * planes * bytes, 0);
    size_t pixel = 0;
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++, pixel++)
                for (int g = 0; g < groups; g++)
                    for (int j = 0; j < planes; j++)
                        for (int c = 0; c < Cg; c++) {
                            const int bit = (codes(n, y, x, g * Cg + c) >> j) & 1;
                            out[((pixel * groups + g) * planes + j) * bytes + c / 8] |= uint8_t(bit << (c % 8));
                        }
    return out;
}

// Sign activations (-1/+1) to one plane: bit 1 means -1.
inline std::vector<uint8_t> pack_signs(const Tensor4<int8_t>& signs, int groups) {
    Tensor4<uint8_t> codes(signs.d0, signs.d1, signs.d2, signs.d3);
    for (size_t i = 0; i < signs.size(); i++) codes.data[i] = signs.data[i] < 0 ? 1 : 0;
    return pack_bitplanes(codes, 1, groups);
}

}  // namespace halibit::ref
