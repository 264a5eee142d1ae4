// The image part of packed activations in the reference layout (no border), and a check that the
// border is still zero.
#pragma once
#include <vector>

#include "halibit/kernels.h"

namespace halibit::test {

inline std::vector<uint8_t> packed_image(const PackedActivations& a) {
    std::vector<uint8_t> out;
    const size_t pixel_bytes = 8 * a.pixel_words();
    for (int n = 0; n < a.shape.n; n++)
        for (int y = 0; y < a.shape.h; y++)
            for (int x = 0; x < a.shape.w; x++) {
                const uint8_t* p = a.bytes() + 8 * a.offset(n, y, x);
                out.insert(out.end(), p, p + pixel_bytes);
            }
    return out;
}

inline bool border_is_zero(const PackedActivations& a) {
    for (int n = 0; n < a.shape.n; n++)
        for (int y = -a.border; y < a.shape.h + a.border; y++)
            for (int x = -a.border; x < a.shape.w + a.border; x++) {
                if (y >= 0 && y < a.shape.h && x >= 0 && x < a.shape.w) continue;
                for (size_t i = 0; i < a.pixel_words(); i++)
                    if (a.data()[a.offset(n, y, x) + i]) return false;
            }
    return true;
}

}  // namespace halibit::test
