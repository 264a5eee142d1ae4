// Reference glue ops between convolutions (docs/design.md, "Numerics"): residual add with two dyadic
// multipliers, max pooling on codes, global average pooling as a sum and a dyadic multiply,
// PalQuant's channel shuffle. Plain loops over NHWC.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace halibit::ref {

inline int64_t round_shift(int64_t x, int shift) { return (x + (shift > 0 ? int64_t(1) << (shift - 1) : 0)) >> shift; }

// out[p, c] = clamp((x0 M0[c] + x1 M1[c] + B[c] + 2^(S-1)) >> S, 0, 2^bits - 1), int64.
template <typename A, typename B>
std::vector<uint8_t> add(const A* x0, const B* x1, size_t pixels, int channels, const std::vector<int32_t>& m0,
                         const std::vector<int32_t>& m1, const std::vector<int64_t>& bias, int shift, int out_bits) {
    std::vector<uint8_t> out(pixels * channels);
    for (size_t i = 0; i < pixels; i++)
        for (int c = 0; c < channels; c++) {
            const size_t k = i * channels + c;
            const int64_t v = round_shift(int64_t(x0[k]) * m0[c] + int64_t(x1[k]) * m1[c] + bias[c], shift);
            out[k] = uint8_t(std::clamp<int64_t>(v, 0, (int64_t(1) << out_bits) - 1));
        }
    return out;
}

inline int pool_out_size(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

// The maximum over the window positions inside the image (every window holds one: pad < kernel).
inline std::vector<uint8_t> max_pool(const uint8_t* in, int n, int h, int w, int c, int kh, int kw, int stride, int pad) {
    const int oh = pool_out_size(h, kh, stride, pad), ow = pool_out_size(w, kw, stride, pad);
    std::vector<uint8_t> out(size_t(n) * oh * ow * c, 0);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ch = 0; ch < c; ch++) {
                    uint8_t m = 0;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            const int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                m = std::max(m, in[((size_t(b) * h + iy) * w + ix) * c + ch]);
                        }
                    out[((size_t(b) * oh + oy) * ow + ox) * c + ch] = m;
                }
    return out;
}

// out[n, c] = clamp((sum_{y,x} in * M + 2^(S-1)) >> S, 0, 2^bits - 1).
inline std::vector<uint8_t> global_avg_pool(const uint8_t* in, int n, int h, int w, int c, int64_t multiplier, int shift,
                                            int out_bits) {
    std::vector<uint8_t> out(size_t(n) * c);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            int64_t sum = 0;
            for (size_t p = 0; p < size_t(h) * w; p++) sum += in[(size_t(b) * h * w + p) * c + ch];
            out[size_t(b) * c + ch] =
                uint8_t(std::clamp<int64_t>(round_shift(sum * multiplier, shift), 0, (int64_t(1) << out_bits) - 1));
        }
    return out;
}

// channels = groups * K: output channel k * groups + g is input channel g * K + k.
inline std::vector<uint8_t> channel_shuffle(const uint8_t* in, size_t pixels, int channels, int groups) {
    std::vector<uint8_t> out(pixels * channels);
    const int k = channels / groups;
    for (size_t p = 0; p < pixels; p++)
        for (int g = 0; g < groups; g++)
            for (int j = 0; j < k; j++) out[p * channels + j * groups + g] = in[p * channels + g * k + j];
    return out;
}

}  // namespace halibit::ref
